package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestMultilayerPerceptronModel {
  private static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment();

  private static final MultilayerPerceptronModel MODEL =
      MultilayerPerceptronModel.builder()
          .layerSizes(64, 256, 256, 16)
          .seed(42)
          .inputName("features")
          .outputName("scores")
          .build();

  @Test
  void ortSeesTheDeclaredInputAndOutput() throws OrtException {
    try (OrtSession session = ENVIRONMENT.createSession(MODEL.toBytes())) {
      assertThat(session.getInputNames()).containsExactly("features");
      assertThat(session.getOutputNames()).containsExactly("scores");
      assertFloatBatchOf(session.getInputInfo().get("features"), 64);
      assertFloatBatchOf(session.getOutputInfo().get("scores"), 16);
    }
    assertThat(MODEL.inputSize()).isEqualTo(64);
    assertThat(MODEL.outputSize()).isEqualTo(16);
    assertThat(MODEL.model().inputs()).hasToString("[features: FLOAT[batch, 64]]");
    assertThat(MODEL.model().outputs()).hasToString("[scores: FLOAT[batch, 16]]");
  }

  private static void assertFloatBatchOf(NodeInfo node, long width) {
    TensorInfo info = (TensorInfo) node.getInfo();
    assertThat(info.type).isEqualTo(OnnxJavaType.FLOAT);
    assertThat(info.getShape()).containsExactly(-1, width);
    assertThat(info.getDimensionNames()).containsExactly("batch", "");
  }

  @Test
  void ortOutputEqualsTheJavaForwardPass() throws OrtException {
    int rows = 50;
    float[] batch = randomRows(rows, MODEL.inputSize(), 7);
    float[] actual = run(MODEL, batch, rows);

    double largestRelativeError = 0;
    for (int row = 0; row < rows; row++) {
      float[] input = new float[MODEL.inputSize()];
      System.arraycopy(batch, row * input.length, input, 0, input.length);
      float[] expected = MODEL.forward(input);
      for (int o = 0; o < expected.length; o++) {
        // Relative, with a floor of 1 so that outputs near zero are not held to float noise.
        double error =
            Math.abs(actual[row * expected.length + o] - expected[o])
                / Math.max(1.0, Math.abs(expected[o]));
        largestRelativeError = Math.max(largestRelativeError, error);
      }
    }
    assertThat(largestRelativeError).isLessThan(1e-4);
    // He scaling keeps outputs in a sane range: not all zero, not exploding.
    assertThat(maxAbs(actual)).isBetween(0.1f, 100f);
  }

  @Test
  void sameSeedGivesTheSameBytesAndAnotherSeedOtherWeights() {
    MultilayerPerceptronModel again =
        MultilayerPerceptronModel.builder()
            .layerSizes(64, 256, 256, 16)
            .seed(42)
            .inputName("features")
            .outputName("scores")
            .build();
    MultilayerPerceptronModel other =
        MultilayerPerceptronModel.builder()
            .layerSizes(64, 256, 256, 16)
            .seed(43)
            .inputName("features")
            .outputName("scores")
            .build();
    assertThat(again.toBytes()).isEqualTo(MODEL.toBytes());
    assertThat(other.toBytes()).isNotEqualTo(MODEL.toBytes()).hasSameSizeAs(MODEL.toBytes());
  }

  @Test
  void writtenFileLoadsFromItsPath(@TempDir Path directory) throws Exception {
    MultilayerPerceptronModel small =
        MultilayerPerceptronModel.builder().layerSizes(3, 2).seed(1).build();
    Path file = directory.resolve("mlp.onnx");
    small.writeTo(file);
    assertThat(Files.readAllBytes(file)).isEqualTo(small.toBytes());

    try (OrtSession session = ENVIRONMENT.createSession(file.toString())) {
      assertThat(session.getInputNames()).containsExactly("features");
      assertThat(session.getOutputNames()).containsExactly("scores");
    }
    float[] row = {0.5f, -1f, 2f};
    assertThat(run(small, row, 1)).containsExactly(small.forward(row), within(1e-5f));
  }

  @Test
  void singleLayerIsOneGemmAndDeeperOnesHaveReluBetween() {
    MultilayerPerceptronModel linear =
        MultilayerPerceptronModel.builder().layerSizes(4, 2).build();
    assertThat(linear.model().proto().getGraph().getNodeList())
        .extracting(node -> node.getOpType())
        .containsExactly("Gemm");
    assertThat(MODEL.model().proto().getGraph().getNodeList())
        .extracting(node -> node.getOpType())
        .containsExactly("Gemm", "Relu", "Gemm", "Relu", "Gemm");
    assertThat(MODEL.model().opsetImports()).isEqualTo(Map.of("", 17L));
  }

  @Test
  void rejectsBadSizesAndRows() {
    assertThatThrownBy(() -> MultilayerPerceptronModel.builder().layerSizes(4))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> MultilayerPerceptronModel.builder().layerSizes(4, 0, 2))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> MultilayerPerceptronModel.builder().build())
        .isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> MODEL.forward(new float[63]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("63");
  }

  static float[] run(MultilayerPerceptronModel model, float[] batch, int rows)
      throws OrtException {
    try (OrtSession session = ENVIRONMENT.createSession(model.toBytes());
        OnnxTensor input =
            OnnxTensor.createTensor(
                ENVIRONMENT, FloatBuffer.wrap(batch), new long[] {rows, model.inputSize()});
        OrtSession.Result result = session.run(Map.of(model.inputName(), input))) {
      OnnxTensor output = (OnnxTensor) result.get(model.outputName()).orElseThrow();
      assertThat(output.getInfo().getShape()).containsExactly(rows, model.outputSize());
      FloatBuffer values = output.getFloatBuffer();
      float[] array = new float[values.remaining()];
      values.get(array);
      return array;
    }
  }

  static float[] randomRows(int rows, int width, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] values = new float[rows * width];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) random.nextDouble(-1, 1);
    }
    return values;
  }

  private static float maxAbs(float[] values) {
    float max = 0;
    for (float value : values) {
      max = Math.max(max, Math.abs(value));
    }
    return max;
  }

  @Test
  void operatorTypesListTheGraphsNodes() {
    MultilayerPerceptronModel model =
        MultilayerPerceptronModel.builder().layerSizes(4, 8, 2).seed(1).build();
    assertThat(OnnxModel.parse(model.toBytes()).operatorTypes()).containsExactly("Gemm", "Relu");
  }
}
