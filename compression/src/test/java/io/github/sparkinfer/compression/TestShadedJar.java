package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.google.protobuf.Value;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.jar.JarFile;
import org.junit.jupiter.api.Test;

/**
 * Runs (through failsafe) on the packaged jar, with protobuf-java at Spark's version on the class
 * path and neither Tribuo nor the bundled protobuf unrelocated: the setting of a Spark job. Must
 * only touch this module's public API and protobuf's stable API, never the ONNX classes by name:
 * those are compiled against the unrelocated names, which the jar does not have.
 */
class TestShadedJar {
  private static final String SHADED = "io.github.sparkinfer.compression.shaded.";

  @Test
  void sparkProtobufIsTheOneOnTheClassPath() throws Exception {
    // RuntimeVersion exists from protobuf 4 on; 3.x, the bundled version, has none.
    Class<?> runtimeVersion = Class.forName("com.google.protobuf.RuntimeVersion");
    String version =
        runtimeVersion.getField("MAJOR").get(null)
            + "."
            + runtimeVersion.getField("MINOR").get(null)
            + "."
            + runtimeVersion.getField("PATCH").get(null);
    assertThat(version).isEqualTo(System.getProperty("sparkinfer.spark.protobuf.version"));

    // Spark's protobuf works beside ours in one JVM.
    Value value = Value.newBuilder().setStringValue("spark").build();
    assertThat(Value.parseFrom(value.toByteArray())).isEqualTo(value);
  }

  @Test
  void onnxClassesUseTheRelocatedProtobuf() throws Exception {
    assertThatThrownBy(() -> Class.forName("ai.onnx.proto.OnnxMl"))
        .isInstanceOf(ClassNotFoundException.class);
    Class<?> modelProto = Class.forName(SHADED + "onnx.OnnxMl$ModelProto");
    assertThat(modelProto.getSuperclass().getName())
        .isEqualTo(SHADED + "protobuf.GeneratedMessageV3");
  }

  @Test
  void jarHoldsNothingUnrelocated() throws IOException {
    List<String> strays = new ArrayList<>();
    Path jarPath = Path.of(System.getProperty("sparkinfer.compression.jar"));
    try (JarFile jar = new JarFile(jarPath.toFile())) {
      jar.stream()
          .map(entry -> entry.getName())
          .filter(
              name ->
                  name.startsWith("com/google/")
                      || name.startsWith("ai/onnx/")
                      || name.startsWith("org/tribuo/")
                      || name.startsWith("google/"))
          .forEach(strays::add);
      assertThat(jar.getEntry("io/github/sparkinfer/compression/shaded/protobuf/Message.class"))
          .isNotNull();
      String notices =
          new String(
              jar.getInputStream(jar.getEntry("META-INF/THIRD-PARTY-NOTICES")).readAllBytes(),
              StandardCharsets.UTF_8);
      assertThat(notices).contains("protobuf-java 3.25.").doesNotContain("${");
    }
    assertThat(strays).isEmpty();
  }

  @Test
  void modelsBuildParseAndRunInOrt() throws Exception {
    MultilayerPerceptronModel mlp =
        MultilayerPerceptronModel.builder().layerSizes(8, 32, 4).seed(11).build();
    byte[] bytes = mlp.toBytes();
    OnnxModel parsed = OnnxModel.parse(bytes);
    assertThat(parsed.toBytes()).isEqualTo(bytes);
    assertThat(parsed.inputs()).hasToString("[features: FLOAT[batch, 8]]");

    float[] row = {1, -1, 0.5f, -0.5f, 0.25f, -0.25f, 2, -2};
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (OrtSession session = environment.createSession(parsed.toBytes());
        OnnxTensor input =
            OnnxTensor.createTensor(environment, FloatBuffer.wrap(row), new long[] {1, 8});
        OrtSession.Result result = session.run(Map.of("features", input))) {
      float[][] output = (float[][]) result.get("scores").orElseThrow().getValue();
      float[] expected = mlp.forward(row);
      for (int i = 0; i < expected.length; i++) {
        assertThat(output[0][i]).isCloseTo(expected[i], within(1e-4f));
      }
    }
  }

  /**
   * Largest error relative to the largest score, two layers: float16 rounds weights, inputs and the
   * hidden layer to 11 bits (4.9e-4 relative each; measured 1.9e-3 here, bound 5e-3); int8 quantizes weights to 1/254 of
   * a column's largest and activations to 1/255 of the batch's range (TestInt8Schemes: under 0.5%
   * per layer, 2% for two; measured 4.1e-3 here); int4 to 1/15 of a block's range (measured 0.063
   * here; TestModelCompressorInt4 bounds the dequantized weights' error by 0.1; 0.15 for two layers).
   */
  private static double bound(Precision precision) {
    switch (precision) {
      case FLOAT16: return 5e-3;
      case INT8: return 0.02;
      default: return 0.15;
    }
  }

  @Test
  void compressorWorksFromThePackagedJar() throws Exception {
    MultilayerPerceptronModel mlp =
        MultilayerPerceptronModel.builder().layerSizes(64, 128, 8).seed(12).build();
    float[] row = new float[64];
    for (int i = 0; i < row.length; i++) {
      row[i] = (i % 7 - 3) / 3f;
    }
    float[] expected = mlp.forward(row);
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    for (ModelCompressor compressor :
        List.of(
            ModelCompressor.builder().precision(Precision.INT8).perChannel(true).build(),
            ModelCompressor.builder().precision(Precision.FLOAT16).build(),
            ModelCompressor.builder().precision(Precision.INT4).build())) {
      CompressedModel compressed = compressor.compress(OnnxModel.parse(mlp.toBytes()));
      assertThat(compressed.report().rewritten()).isNotEmpty();
      assertThat(compressed.report().toString())
          .startsWith(compressor.precision().shortName() + ":");
      try (OrtSession session = environment.createSession(compressed.model().toBytes());
          OnnxTensor input =
              OnnxTensor.createTensor(environment, FloatBuffer.wrap(row), new long[] {1, 64});
          OrtSession.Result result = session.run(Map.of("features", input))) {
        float[] output = ((float[][]) result.get("scores").orElseThrow().getValue())[0];
        double largest = 0;
        double error = 0;
        for (int i = 0; i < expected.length; i++) {
          largest = Math.max(largest, Math.abs(expected[i]));
          error = Math.max(error, Math.abs(output[i] - expected[i]));
        }
        System.out.printf("%s: largest error %.5f of largest score %.5f%n", compressor, error, largest);
        assertThat(error / largest).as(compressor.toString()).isLessThan(bound(compressor.precision()));
      }
    }
  }
}
