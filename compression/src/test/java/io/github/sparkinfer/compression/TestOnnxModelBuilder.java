package io.github.sparkinfer.compression;

import static io.github.sparkinfer.compression.OnnxElementType.DOUBLE;
import static io.github.sparkinfer.compression.OnnxElementType.FLOAT;
import static io.github.sparkinfer.compression.OnnxElementType.INT32;
import static io.github.sparkinfer.compression.OnnxElementType.INT64;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestOnnxModelBuilder {
  private static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment();

  /**
   * a: [batch], b: [batch, 3]; one output per attribute kind: int (ReduceSum keepdims, Cast to),
   * ints (Transpose perm), string (Pad mode), float (LeakyRelu alpha).
   */
  private static OnnxModelBuilder smallGraph() {
    return OnnxModelBuilder.create("small")
        .input("a", FLOAT, "batch")
        .input("b", FLOAT, "batch", 3)
        .initializer("sum_axes", new long[] {1}, 1)
        .initializer("unsqueeze_axes", new long[] {2}, 1)
        .initializer("pads", new long[] {0, 1, 0, 1}, 4)
        .node(
            "ReduceSum",
            List.of("b", "sum_axes"),
            List.of("b_sum"),
            Attribute.ofInt("keepdims", 0))
        .node("Add", List.of("a", "b_sum"), List.of("sum"))
        .node("Cast", List.of("sum"), List.of("sum_int"), Attribute.ofInt("to", INT64.onnxNumber()))
        .node("Unsqueeze", List.of("b", "unsqueeze_axes"), List.of("b_column"))
        .node("Transpose", List.of("b_column"), List.of("cube"), Attribute.ofInts("perm", 0, 2, 1))
        .node("Pad", List.of("b", "pads"), List.of("padded"), Attribute.ofString("mode", "reflect"))
        .node("LeakyRelu", List.of("a"), List.of("leaky"), Attribute.ofFloat("alpha", 0.5f))
        .output("sum", FLOAT, "batch")
        .output("sum_int", INT64, "batch")
        .output("cube", FLOAT, "batch", 1, 3)
        .output("padded", FLOAT, "batch", 5)
        .output("leaky", FLOAT, "batch");
  }

  @Test
  void smallGraphRunsInOrtWithExactValues() throws OrtException {
    float[] a = {1, -2};
    float[][] b = {{1, 2, 3}, {4, 5, 6}};
    try (OrtSession session = ENVIRONMENT.createSession(smallGraph().toBytes());
        OnnxTensor aTensor = OnnxTensor.createTensor(ENVIRONMENT, a);
        OnnxTensor bTensor = OnnxTensor.createTensor(ENVIRONMENT, b);
        OrtSession.Result result = session.run(Map.of("a", aTensor, "b", bTensor))) {
      assertThat((float[]) value(result, "sum")).containsExactly(7, 13);
      assertThat((long[]) value(result, "sum_int")).containsExactly(7, 13);
      assertThat((float[][][]) value(result, "cube"))
          .isDeepEqualTo(new float[][][] {{{1, 2, 3}}, {{4, 5, 6}}});
      assertThat((float[][]) value(result, "padded"))
          .isDeepEqualTo(new float[][] {{2, 1, 2, 3, 2}, {5, 4, 5, 6, 5}});
      assertThat((float[]) value(result, "leaky")).containsExactly(1, -1);
    }
  }

  @Test
  void ortSeesTheDeclaredNamesTypesAndShapes() throws OrtException {
    try (OrtSession session = ENVIRONMENT.createSession(smallGraph().toBytes())) {
      assertThat(session.getInputNames()).containsExactly("a", "b");
      assertThat(session.getOutputNames())
          .containsExactly("sum", "sum_int", "cube", "padded", "leaky");
      assertTensor(session.getInputInfo().get("b").getInfo(), OnnxJavaType.FLOAT, -1, 3);
      assertTensor(session.getOutputInfo().get("sum_int").getInfo(), OnnxJavaType.INT64, -1);
      assertTensor(session.getOutputInfo().get("cube").getInfo(), OnnxJavaType.FLOAT, -1, 1, 3);
      TensorInfo cube = (TensorInfo) session.getOutputInfo().get("cube").getInfo();
      assertThat(cube.getDimensionNames()).containsExactly("batch", "", "");
    }
  }

  private static void assertTensor(Object info, OnnxJavaType type, long... shape) {
    assertThat(info).isInstanceOf(TensorInfo.class);
    assertThat(((TensorInfo) info).type).isEqualTo(type);
    assertThat(((TensorInfo) info).getShape()).containsExactly(shape);
  }

  @Test
  void initializersOfEveryTypeKeepTheirValues() throws OrtException {
    OnnxModel model =
        OnnxModelBuilder.create("constants")
            .initializer("f", new float[] {1.5f, -0f, Float.MAX_VALUE, Float.MIN_VALUE}, 2, 2)
            .initializer("d", new double[] {Math.PI, -1e300}, 2)
            .initializer("l", new long[] {Long.MIN_VALUE, 42, Long.MAX_VALUE}, 3)
            .initializer("i", new int[] {Integer.MIN_VALUE, -1, 7}, 3)
            .initializer("scalar", new float[] {3f})
            .node("Identity", List.of("f"), List.of("f_out"))
            .node("Identity", List.of("d"), List.of("d_out"))
            .node("Identity", List.of("l"), List.of("l_out"))
            .node("Identity", List.of("i"), List.of("i_out"))
            .node("Identity", List.of("scalar"), List.of("scalar_out"))
            .output("f_out", FLOAT, 2, 2)
            .output("d_out", DOUBLE, 2)
            .output("l_out", INT64, 3)
            .output("i_out", INT32, 3)
            .output("scalar_out", FLOAT)
            .build();
    assertThat(model.inputs()).isEmpty();
    try (OrtSession session = ENVIRONMENT.createSession(model.toBytes());
        OrtSession.Result result = session.run(Map.of())) {
      assertThat((float[][]) value(result, "f_out"))
          .isDeepEqualTo(new float[][] {{1.5f, -0f}, {Float.MAX_VALUE, Float.MIN_VALUE}});
      assertThat((double[]) value(result, "d_out")).containsExactly(Math.PI, -1e300);
      assertThat((long[]) value(result, "l_out"))
          .containsExactly(Long.MIN_VALUE, 42, Long.MAX_VALUE);
      assertThat((int[]) value(result, "i_out")).containsExactly(Integer.MIN_VALUE, -1, 7);
      assertThat((float) value(result, "scalar_out")).isEqualTo(3f);
    }
  }

  @Test
  void defaultsAndSettings() {
    OnnxModel defaults = smallGraph().build();
    assertThat(defaults.irVersion()).isEqualTo(OnnxModelBuilder.DEFAULT_IR_VERSION).isEqualTo(10);
    assertThat(defaults.producerName()).isEqualTo("sparkinfer");
    assertThat(defaults.opsetImports()).containsExactly(Map.entry("", 17L));
    assertThat(defaults.graphName()).isEqualTo("small");
    assertThat(defaults.inputs())
        .containsExactly(
            new TensorDeclaration("a", FLOAT, List.of(Dimension.symbolic("batch")), true),
            new TensorDeclaration(
                "b", FLOAT, List.of(Dimension.symbolic("batch"), Dimension.fixed(3)), true));

    OnnxModel custom =
        smallGraph()
            .opset(18)
            .opset("com.microsoft", 1)
            .irVersion(9)
            .producerName("test")
            .metadata("purpose", "testing")
            .build();
    assertThat(custom.opsetImports())
        .containsExactly(Map.entry("", 18L), Map.entry("com.microsoft", 1L));
    assertThat(custom.irVersion()).isEqualTo(9);
    assertThat(custom.producerName()).isEqualTo("test");
    assertThat(custom.metadata()).containsExactly(Map.entry("purpose", "testing"));
  }

  @Test
  void writeToWritesTheSameBytes(@TempDir Path directory) throws Exception {
    Path file = directory.resolve("small.onnx");
    smallGraph().writeTo(file);
    assertThat(file).hasBinaryContent(smallGraph().toBytes());
  }

  @Test
  void rejectsGraphsThatCannotRun() {
    OnnxModelBuilder undefinedInput =
        OnnxModelBuilder.create("g")
            .input("x", FLOAT, 1)
            .node("Relu", List.of("y"), List.of("z"))
            .output("z", FLOAT, 1);
    assertThatThrownBy(undefinedInput::build)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("Relu_0 uses y");

    OnnxModelBuilder neverProduced =
        OnnxModelBuilder.create("g").input("x", FLOAT, 1).output("y", FLOAT, 1);
    assertThatThrownBy(neverProduced::build)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("y is never produced");

    OnnxModelBuilder definedTwice =
        OnnxModelBuilder.create("g")
            .input("x", FLOAT, 1)
            .node("Relu", List.of("x"), List.of("x"))
            .output("x", FLOAT, 1);
    assertThatThrownBy(definedTwice::build)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("x is defined twice");

    assertThatThrownBy(() -> OnnxModelBuilder.create("g").build())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("no outputs");
  }

  @Test
  void rejectsBadArguments() {
    OnnxModelBuilder builder = OnnxModelBuilder.create("g");
    assertThatThrownBy(() -> builder.initializer("w", new float[5], 2, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("5 values")
        .hasMessageContaining("hold 4");
    assertThatThrownBy(() -> builder.input("x", FLOAT, 2.5))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("java.lang.Double");
    assertThatThrownBy(() -> builder.input("x", FLOAT, -1))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> builder.opset(0)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> OnnxModelBuilder.create(""))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void dimensionsAndElementTypes() {
    assertThat(Dimension.from(3)).isEqualTo(Dimension.fixed(3));
    assertThat(Dimension.from(3L)).isEqualTo(Dimension.fixed(3));
    assertThat(Dimension.from("batch")).isEqualTo(Dimension.symbolic("batch"));
    assertThat(Dimension.unknown()).hasToString("?");
    assertThatThrownBy(() -> Dimension.symbolic("batch").size())
        .isInstanceOf(IllegalStateException.class);
    for (OnnxElementType type : OnnxElementType.values()) {
      assertThat(OnnxElementType.fromOnnxNumber(type.onnxNumber())).isSameAs(type);
    }
    assertThatThrownBy(() -> OnnxElementType.fromOnnxNumber(0))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> OnnxElementType.fromOnnxNumber(23))
        .isInstanceOf(IllegalArgumentException.class);
  }

  private static Object value(OrtSession.Result result, String name) throws OrtException {
    return result.get(name).orElseThrow().getValue();
  }
}
