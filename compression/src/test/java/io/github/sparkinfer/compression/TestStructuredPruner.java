package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import java.io.InputStream;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Structured pruning checked by what it must keep: units whose outgoing weights are zero add nothing,
 * so removing exactly them leaves the outputs as they were (an MLP, and all-MiniLM-L6-v2's six
 * feed-forward blocks with their GELU); and a pruned model equals the original with the removed
 * units' outgoing weights zeroed, run by ONNX Runtime.
 */
class TestStructuredPruner {
  private static final int BATCH = 16;

  @Test
  void removingDeadUnitsOfAnMlpKeepsItsOutputs() throws Exception {
    OnnxModel model = MultilayerPerceptronModel.builder().layerSizes(64, 256, 16).seed(9)
        .inputName("features").outputName("scores").build().model();
    // Kill 64 of the 256 hidden units: zero their columns in the second layer's [16, 256] weights.
    OnnxModel dead = zeroOutgoing(model, "layer1.weight", 16, 256, everyFourth(256), false);
    StructuredPruner.Result result = StructuredPruner.ofRatio(0.25).prune(dead);
    assertThat(result.chains()).extracting(StructuredPruner.Chain::toString)
        .containsExactly("layer0.weight: 256 → 192 hidden units");
    // The dead units scored 0, so exactly they went.
    assertThat(removedRows(dead, result.model(), "layer0.weight", 64)).containsExactly(everyFourth(256));
    assertThat(result.model().toBytes().length).isLessThan(dead.toBytes().length);
    float[] input = random(BATCH * 64, 3);
    float[] expected = run(dead, Map.of("features", input), new long[] {BATCH, 64}, "scores");
    float[] actual = run(result.model(), Map.of("features", input), new long[] {BATCH, 64}, "scores");
    assertThat(actual).containsExactly(expected, org.assertj.core.data.Offset.offset(1e-5f));
  }

  @Test
  void aPrunedMlpEqualsTheOriginalWithItsRemovedUnitsSilenced() throws Exception {
    OnnxModel model = MultilayerPerceptronModel.builder().layerSizes(64, 256, 16).seed(4)
        .inputName("features").outputName("scores").build().model();
    StructuredPruner.Result result = StructuredPruner.ofRatio(0.5).prune(model);
    assertThat(result.chains()).hasSize(1).allSatisfy(chain -> assertThat(chain.unitsAfter()).isEqualTo(128));
    // Which units went: the rows of the first layer's [256, 64] weights the pruned model no longer has.
    int[] removed = removedRows(model, result.model(), "layer0.weight", 64);
    assertThat(removed).hasSize(128);
    // A silenced unit still computes relu(x·w + b), times 0 outgoing weights: nothing. So the outputs agree.
    OnnxModel silenced = zeroOutgoing(model, "layer1.weight", 16, 256, removed, false);
    float[] input = random(BATCH * 64, 8);
    float[] expected = run(silenced, Map.of("features", input), new long[] {BATCH, 64}, "scores");
    float[] actual = run(result.model(), Map.of("features", input), new long[] {BATCH, 64}, "scores");
    assertThat(actual).containsExactly(expected, org.assertj.core.data.Offset.offset(1e-5f));
  }

  @Test
  void aDeeperMlpHasEachChainPrunedOnTheModelPrunedSoFar() throws Exception {
    OnnxModel model = MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 16).seed(2)
        .inputName("features").outputName("scores").build().model();
    StructuredPruner.Result result = StructuredPruner.ofRatio(0.5).prune(model);
    // The middle layer loses input columns to the first chain and output rows to the second.
    assertThat(result.chains()).extracting(StructuredPruner.Chain::toString)
        .containsExactly("layer0.weight: 256 → 128 hidden units", "layer1.weight: 256 → 128 hidden units");
    TensorProto middle = initializer(result.model().proto().getGraph(), "layer1.weight");
    assertThat(middle.getDimsList()).containsExactly(128L, 128L);
    float[] actual = run(result.model(), Map.of("features", random(BATCH * 64, 1)), new long[] {BATCH, 64}, "scores");
    assertThat(actual).hasSize(BATCH * 16);
  }

  @Test
  void miniLmFeedForwardBlocksArePrunedThroughTheirGelu() throws Exception {
    OnnxModel model = miniLm();
    StructuredPruner.Result probe = StructuredPruner.ofRatio(0).prune(model);
    assertThat(probe.chains()).as("the six feed-forward blocks").hasSize(6)
        .allSatisfy(chain -> assertThat(chain.unitsBefore()).isEqualTo(1536));
    // Kill every fourth unit of each block (zero its row of the second MatMul's [1536, 384] weights),
    // then remove exactly those units.
    OnnxModel dead = model;
    Map<String, int[]> forced = new HashMap<>();
    GraphProto graph = model.proto().getGraph();
    for (StructuredPruner.Chain chain : probe.chains()) {
      String second = secondWeight(graph, chain.firstWeight());
      dead = zeroOutgoing(dead, second, 384, 1536, everyFourth(1536), true);
      forced.put(chain.firstWeight(), everyFourth(1536));
    }
    StructuredPruner.Result result = StructuredPruner.ofRatio(0).prune(dead, forced);
    assertThat(result.chains()).allSatisfy(chain -> assertThat(chain.unitsAfter()).isEqualTo(1152));
    long[] ids = {101, 7592, 2088, 1010, 2023, 2003, 1037, 3231, 102};
    Map<String, long[]> inputs = Map.of("input_ids", ids, "attention_mask", ones(ids.length),
        "token_type_ids", new long[ids.length]);
    float[] expected = runLongs(dead, inputs, new long[] {1, ids.length}, "last_hidden_state");
    float[] actual = runLongs(result.model(), inputs, new long[] {1, ids.length}, "last_hidden_state");
    assertThat(actual).containsExactly(expected, org.assertj.core.data.Offset.offset(1e-5f));
    assertThat(result.model().toBytes().length).isLessThan(dead.toBytes().length - 6 * 2 * 384 * 384 * 4);
  }

  @Test
  void refusesRatiosOutsideZeroToOne() {
    assertThatThrownBy(() -> StructuredPruner.ofRatio(1)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("Invalid pruning ratio 1.0");
    assertThatThrownBy(() -> StructuredPruner.ofRatio(-0.1)).isInstanceOf(IllegalArgumentException.class);
  }

  private static String secondWeight(GraphProto graph, String firstWeight) {
    // In MiniLM a block's second MatMul weights follow its first ones among the initializers' readers.
    boolean seen = false;
    for (ai.onnx.proto.OnnxMl.NodeProto node : graph.getNodeList()) {
      if (node.getOpType().equals("MatMul") && node.getInputCount() == 2) {
        if (node.getInput(1).equals(firstWeight)) {
          seen = true;
        } else if (seen) {
          TensorProto weight = initializer(graph, node.getInput(1));
          if (weight != null && weight.getDims(0) == 1536) {
            return weight.getName();
          }
        }
      }
    }
    throw new AssertionError("no second MatMul after " + firstWeight);
  }

  private static int[] everyFourth(int size) {
    int[] units = new int[size / 4];
    for (int i = 0; i < units.length; i++) {
      units[i] = 4 * i + 1;
    }
    return units;
  }

  /** Rows of {@code name} ([out, in], Gemm transB) in the original that the pruned model no longer has. */
  private static int[] removedRows(OnnxModel original, OnnxModel pruned, String name, int columns) {
    float[] before = Tensors.floats(initializer(original.proto().getGraph(), name));
    float[] after = Tensors.floats(initializer(pruned.proto().getGraph(), name));
    int rowsBefore = before.length / columns;
    int rowsAfter = after.length / columns;
    int[] removed = new int[rowsBefore - rowsAfter];
    int kept = 0;
    int gone = 0;
    for (int r = 0; r < rowsBefore; r++) {
      boolean same = kept < rowsAfter;
      for (int c = 0; same && c < columns; c++) {
        same = before[r * columns + c] == after[kept * columns + c];
      }
      if (same) {
        kept++;
      } else {
        removed[gone++] = r;
      }
    }
    assertThat(gone).isEqualTo(removed.length);
    return removed;
  }

  /**
   * Zeroes the weights that hidden units {@code units} feed: columns of a [rows, hidden] matrix
   * (Gemm transB), or rows of a [hidden, columns] one (MatMul).
   */
  private static OnnxModel zeroOutgoing(OnnxModel model, String name, int other, int hidden, int[] units,
      boolean hiddenFirst) {
    GraphProto.Builder graph = model.proto().getGraph().toBuilder();
    for (int i = 0; i < graph.getInitializerCount(); i++) {
      TensorProto tensor = graph.getInitializer(i);
      if (tensor.getName().equals(name)) {
        float[] values = Tensors.floats(tensor);
        for (int unit : units) {
          for (int k = 0; k < other; k++) {
            values[hiddenFirst ? unit * other + k : k * hidden + unit] = 0;
          }
        }
        long[] dimensions = tensor.getDimsList().stream().mapToLong(Long::longValue).toArray();
        graph.setInitializer(i, Tensors.floatTensor(name, values, dimensions));
      }
    }
    return new OnnxModel(model.proto().toBuilder().setGraph(graph).build());
  }

  /** all-MiniLM-L6-v2 fp32 from langchain4j's artifact on the test class path. */
  static OnnxModel miniLm() throws java.io.IOException {
    try (InputStream in = TestStructuredPruner.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
      assertThat(in).as("all-minilm-l6-v2.onnx on the test class path (langchain4j's artifact)").isNotNull();
      return OnnxModel.parse(in.readAllBytes());
    }
  }

  static TensorProto initializer(GraphProto graph, String name) {
    return graph.getInitializerList().stream().filter(tensor -> tensor.getName().equals(name)).findFirst().orElse(null);
  }

  static float[] random(int count, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) random.nextDouble(-1, 1);
    }
    return values;
  }

  private static long[] ones(int count) {
    long[] values = new long[count];
    java.util.Arrays.fill(values, 1);
    return values;
  }

  static float[] run(OnnxModel model, Map<String, float[]> inputs, long[] shape, String output) throws Exception {
    Map<String, Object> buffers = new HashMap<>();
    inputs.forEach((name, values) -> buffers.put(name, FloatBuffer.wrap(values)));
    return runBuffers(model, buffers, shape, output);
  }

  static float[] runLongs(OnnxModel model, Map<String, long[]> inputs, long[] shape, String output)
      throws Exception {
    Map<String, Object> buffers = new HashMap<>();
    inputs.forEach((name, values) -> buffers.put(name, LongBuffer.wrap(values)));
    return runBuffers(model, buffers, shape, output);
  }

  /** One ORT run on float or long input buffers; the float output {@code output}. */
  private static float[] runBuffers(OnnxModel model, Map<String, Object> inputs, long[] shape, String output)
      throws Exception {
    try (OrtSession session = OrtTesting.ENVIRONMENT.createSession(model.toBytes())) {
      Map<String, OnnxTensor> tensors = new HashMap<>();
      try {
        for (Map.Entry<String, Object> entry : inputs.entrySet()) {
          Object buffer = entry.getValue();
          tensors.put(entry.getKey(), buffer instanceof FloatBuffer floats
              ? OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, floats, shape)
              : OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, (LongBuffer) buffer, shape));
        }
        try (OrtSession.Result result = session.run(tensors)) {
          FloatBuffer buffer = ((OnnxTensor) result.get(output).orElseThrow()).getFloatBuffer();
          float[] values = new float[buffer.remaining()];
          buffer.get(values);
          return values;
        }
      } finally {
        tensors.values().forEach(OnnxTensor::close);
      }
    }
  }
}
