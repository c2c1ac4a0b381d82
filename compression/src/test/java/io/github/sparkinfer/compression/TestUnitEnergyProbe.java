package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.util.Map;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * The activation probe checked against a forward pass written here in Java from the MLP's weights,
 * against padding (a text's sums alone equal its sums padded in a batch), and pruning by its sums
 * checked to remove the units that never fire, which scoring by weights keeps.
 */
class TestUnitEnergyProbe {
  private static final int BATCH = 32;

  @Test
  void sumsEqualSquaredActivationsOfAJavaForwardPass() throws Exception {
    OnnxModel model = MultilayerPerceptronModel.builder().layerSizes(64, 128, 96, 16).seed(5)
        .inputName("features").outputName("scores").build().model();
    UnitEnergyProbe probe = UnitEnergyProbe.of(model);
    assertThat(probe.chains()).containsExactly("layer0.weight", "layer1.weight");
    assertThat(probe.totalUnits()).isEqualTo(128 + 96);
    float[] input = TestStructuredPruner.random(BATCH * 64, 11);
    float[] energy = TestStructuredPruner.run(probe.model(), Map.of("features", input), new long[] {BATCH, 64},
        UnitEnergyProbe.OUTPUT);
    GraphProto graph = model.proto().getGraph();
    float[] hidden1 = reluLayer(graph, "layer0", input, 64, 128);
    float[] hidden2 = reluLayer(graph, "layer1", hidden1, 128, 96);
    assertThat(energy).hasSize(BATCH * (128 + 96));
    for (int r = 0; r < BATCH; r++) {
      for (int j = 0; j < 128; j++) {
        float a = hidden1[r * 128 + j];
        assertThat(energy[r * 224 + j]).isCloseTo(a * a, Offset.offset(1e-4f + 1e-4f * a * a));
      }
      for (int j = 0; j < 96; j++) {
        float a = hidden2[r * 96 + j];
        assertThat(energy[r * 224 + 128 + j]).isCloseTo(a * a, Offset.offset(1e-4f + 1e-4f * a * a));
      }
    }
    // The original outputs are still there, unchanged.
    assertThat(TestStructuredPruner.run(probe.model(), Map.of("features", input), new long[] {BATCH, 64}, "scores"))
        .containsExactly(TestStructuredPruner.run(model, Map.of("features", input), new long[] {BATCH, 64}, "scores"),
            Offset.offset(0f));
  }

  @Test
  void unitsThatNeverFireGoFirstWhenScoredByActivations() throws Exception {
    OnnxModel model = MultilayerPerceptronModel.builder().layerSizes(64, 256, 16).seed(2)
        .inputName("features").outputName("scores").build().model();
    // Every fourth unit gets a bias of -100: relu keeps it at 0 on every input in [-1, 1], while its
    // large bias gives it one of the highest scores by weights.
    int[] dead = new int[64];
    for (int i = 0; i < dead.length; i++) {
      dead[i] = 4 * i;
    }
    OnnxModel silent = withBias(model, "layer0.bias", dead, -100f);
    UnitEnergyProbe probe = UnitEnergyProbe.of(silent);
    float[] input = TestStructuredPruner.random(BATCH * 64, 4);
    float[] energy = TestStructuredPruner.run(probe.model(), Map.of("features", input), new long[] {BATCH, 64},
        UnitEnergyProbe.OUTPUT);
    double[] sums = new double[probe.totalUnits()];
    for (int r = 0; r < BATCH; r++) {
      for (int j = 0; j < sums.length; j++) {
        sums[j] += energy[r * sums.length + j];
      }
    }
    StructuredPruner.Result byData = StructuredPruner.ofRatio(0.25).withUnitEnergy(probe.split(sums)).prune(silent);
    StructuredPruner.Result byWeights = StructuredPruner.ofRatio(0.25).prune(silent);
    float[] expected = TestStructuredPruner.run(silent, Map.of("features", input), new long[] {BATCH, 64}, "scores");
    // Removing units that are always 0 changes nothing; the weight score removed live units instead.
    assertThat(TestStructuredPruner.run(byData.model(), Map.of("features", input), new long[] {BATCH, 64}, "scores"))
        .containsExactly(expected, Offset.offset(1e-5f));
    float[] weighted = TestStructuredPruner.run(byWeights.model(), Map.of("features", input), new long[] {BATCH, 64},
        "scores");
    double largest = 0;
    for (int i = 0; i < expected.length; i++) {
      largest = Math.max(largest, Math.abs(weighted[i] - expected[i]));
    }
    assertThat(largest).isGreaterThan(1e-2);
  }

  @Test
  void miniLmSumsLeavePaddedTokensOut() throws Exception {
    OnnxModel model = TestStructuredPruner.miniLm();
    UnitEnergyProbe probe = UnitEnergyProbe.of(model);
    assertThat(probe.chains()).hasSize(6);
    assertThat(probe.totalUnits()).isEqualTo(6 * 1536);
    long[] ids = {101, 7592, 2088, 1010, 2023, 102};
    float[] alone = TestStructuredPruner.runLongs(probe.model(), Map.of("input_ids", ids, "attention_mask",
        new long[] {1, 1, 1, 1, 1, 1}, "token_type_ids", new long[6]), new long[] {1, 6}, UnitEnergyProbe.OUTPUT);
    // The same text padded to 10 tokens (mask 0 after the sixth).
    long[] padded = {101, 7592, 2088, 1010, 2023, 102, 0, 0, 0, 0};
    float[] inBatch = TestStructuredPruner.runLongs(probe.model(), Map.of("input_ids", padded, "attention_mask",
        new long[] {1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, "token_type_ids", new long[10]), new long[] {1, 10},
        UnitEnergyProbe.OUTPUT);
    for (float value : alone) {
      assertThat(value).isFinite().isGreaterThanOrEqualTo(0f);
    }
    for (int j = 0; j < alone.length; j++) {
      assertThat(inBatch[j]).isCloseTo(alone[j], Offset.offset(1e-4f + 1e-3f * alone[j]));
    }
    Map<String, double[]> split = probe.split(toDoubles(alone));
    assertThat(split.keySet()).containsExactlyElementsOf(probe.chains());
    StructuredPruner.Result result = StructuredPruner.ofRatio(0.5).withUnitEnergy(split).prune(model);
    assertThat(result.chains()).hasSize(6).allSatisfy(chain -> assertThat(chain.unitsAfter()).isEqualTo(768));
  }

  @Test
  void refusesSumsOfAnotherModel() {
    OnnxModel model = MultilayerPerceptronModel.builder().layerSizes(8, 32, 4).seed(1).build().model();
    assertThatThrownBy(() -> StructuredPruner.ofRatio(0.5).withUnitEnergy(Map.of("layer0.weight", new double[16]))
        .prune(model)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'layer0.weight' (32 hidden units): 16 were given");
    assertThatThrownBy(() -> StructuredPruner.ofRatio(0.5).withUnitEnergy(Map.of()).prune(model))
        .hasMessageContaining("No activation sums for the chain starting at weights 'layer0.weight'");
    OnnxModel linear = MultilayerPerceptronModel.builder().layerSizes(8, 4).seed(1).build().model();
    assertThatThrownBy(() -> UnitEnergyProbe.of(linear)).hasMessageContaining("no linear → elementwise → linear chain");
    assertThatThrownBy(() -> UnitEnergyProbe.of(model).split(new double[3])).hasMessageContaining("Got 3 sums");
  }

  /** relu(x · Wᵀ + b) with the Gemm's [out, in] weights. */
  private static float[] reluLayer(GraphProto graph, String layer, float[] x, int in, int out) {
    float[] w = Tensors.floats(TestStructuredPruner.initializer(graph, layer + ".weight"));
    float[] b = Tensors.floats(TestStructuredPruner.initializer(graph, layer + ".bias"));
    int rows = x.length / in;
    float[] y = new float[rows * out];
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < out; j++) {
        double sum = b[j];
        for (int k = 0; k < in; k++) {
          sum += (double) x[r * in + k] * w[j * in + k];
        }
        y[r * out + j] = (float) Math.max(0, sum);
      }
    }
    return y;
  }

  private static OnnxModel withBias(OnnxModel model, String name, int[] units, float value) {
    GraphProto.Builder graph = model.proto().getGraph().toBuilder();
    for (int i = 0; i < graph.getInitializerCount(); i++) {
      TensorProto tensor = graph.getInitializer(i);
      if (tensor.getName().equals(name)) {
        float[] values = Tensors.floats(tensor);
        for (int unit : units) {
          values[unit] = value;
        }
        graph.setInitializer(i, Tensors.floatTensor(name, values, tensor.getDimsList().stream()
            .mapToLong(Long::longValue).toArray()));
      }
    }
    return new OnnxModel(model.proto().toBuilder().setGraph(graph).build());
  }

  private static double[] toDoubles(float[] values) {
    double[] result = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = values[i];
    }
    return result;
  }
}
