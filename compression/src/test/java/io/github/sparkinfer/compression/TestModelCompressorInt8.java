package io.github.sparkinfer.compression;

import static io.github.sparkinfer.compression.OnnxElementType.DOUBLE;
import static io.github.sparkinfer.compression.OnnxElementType.FLOAT;
import static io.github.sparkinfer.compression.OrtTesting.attribute;
import static io.github.sparkinfer.compression.OrtTesting.hasInitializer;
import static io.github.sparkinfer.compression.OrtTesting.initializer;
import static io.github.sparkinfer.compression.OrtTesting.nodes;
import static io.github.sparkinfer.compression.OrtTesting.operatorCounts;
import static io.github.sparkinfer.compression.OrtTesting.randomValues;
import static io.github.sparkinfer.compression.OrtTesting.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.entry;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestModelCompressorInt8 {
  private static final MultilayerPerceptronModel MLP =
      MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 32).seed(5).build();
  private static final ModelCompressor PER_CHANNEL =
      ModelCompressor.builder().precision(Precision.INT8).perChannel(true).build();
  private static final ModelCompressor PER_TENSOR =
      ModelCompressor.builder().precision(Precision.INT8).build();

  @Test
  void gemmsBecomeDynamicQuantizationMatchingAJavaReference() throws Exception {
    CompressedModel compressed = PER_CHANNEL.compress(MLP.model());
    OnnxModel model = compressed.model();

    assertThat(operatorCounts(model))
        .containsExactly(
            entry("Add", 3L),
            entry("Cast", 3L),
            entry("DynamicQuantizeLinear", 3L),
            entry("MatMulInteger", 3L),
            entry("Mul", 6L),
            entry("Relu", 2L));
    assertThat(compressed.report().rewritten())
        .extracting(CompressionReport.Entry::name)
        .containsExactly("Gemm_0", "Gemm_2", "Gemm_4");
    assertThat(compressed.report().left()).isEmpty();
    for (NodeProto cast : nodes(model, "Cast")) {
      assertThat(attribute(cast, "to")).isEqualTo(FLOAT.onnxNumber());
    }
    // The weights are transposed offline (transB=1), int8, one scale per output column; the
    // float32 originals are gone and the biases are reused as they are.
    int[] sizes = MLP.layerSizes();
    for (int layer = 0; layer < 3; layer++) {
      TensorProto weight = initializer(model, "layer" + layer + ".weight_transposed_quantized");
      assertThat(weight.getDataType())
          .isEqualTo(PER_CHANNEL.resolvedInt8Scheme().weightType().onnxNumber());
      assertThat(weight.getDimsList())
          .containsExactly((long) sizes[layer], (long) sizes[layer + 1]);
      assertThat(initializer(model, "layer" + layer + ".weight_transposed_scale").getDimsList())
          .containsExactly((long) sizes[layer + 1]);
      assertThat(hasInitializer(model, "layer" + layer + ".weight")).isFalse();
      assertThat(hasInitializer(model, "layer" + layer + ".bias")).isTrue();
    }
    assertThat(compressed.report().initializerBytesAfter())
        .isLessThan(compressed.report().initializerBytesBefore() / 3);

    int rows = 16;
    float[] input = randomValues(rows * 64, 3);
    float[] actual = OrtTesting.run(model, "features", input, new long[] {rows, 64}, "scores");

    float[] expected = input;
    for (int layer = 0; layer < 3; layer++) {
      expected =
          QuantizationReference.dynamicInt8Linear(
              expected,
              rows,
              sizes[layer],
              QuantizationReference.int8(
                  initializer(model, "layer" + layer + ".weight_transposed_quantized")),
              Tensors.floats(initializer(model, "layer" + layer + ".weight_transposed_scale")),
              sizes[layer + 1],
              Tensors.floats(initializer(model, "layer" + layer + ".bias")));
      if (layer < 2) {
        expected = QuantizationReference.relu(expected);
      }
    }
    assertThat(relativeError(actual, expected)).isLessThan(1e-3);
    assertThat(relativeError(actual, forward(MLP, input, rows))).isLessThan(0.02);
  }

  /**
   * The stored weights and scales against this test's own symmetric per-channel quantization of
   * the fp32 weights (scale = column's largest / steps, round half up), for every scheme: the
   * layer reference above starts from the compressor's integers, this checks the integers.
   */
  @Test
  void weightsAreTheHandQuantizedFp32WeightsForEveryScheme() {
    int[] sizes = MLP.layerSizes();
    for (Int8Scheme scheme : Int8Scheme.values()) {
      OnnxModel model = ModelCompressor.builder().precision(Precision.INT8).perChannel(true).int8Scheme(scheme)
          .build().compress(MLP.model()).model();
      for (int layer = 0; layer < 3; layer++) {
        int k = sizes[layer];
        int n = sizes[layer + 1];
        // Gemm with transB=1 stores W as [N, K].
        float[] stored = Tensors.floats(initializer(MLP.model(), "layer" + layer + ".weight"));
        byte[] actual = QuantizationReference.int8(initializer(model, "layer" + layer + ".weight_transposed_quantized"));
        float[] scales = Tensors.floats(initializer(model, "layer" + layer + ".weight_transposed_scale"));
        for (int column = 0; column < n; column++) {
          double largest = 0;
          double largestPair = 0;
          for (int row = 0; row < k; row++) {
            largest = Math.max(largest, Math.abs(stored[column * k + row]));
            if (row % 2 == 0 && row + 1 < k) {
              largestPair = Math.max(largestPair,
                  Math.abs(stored[column * k + row]) + Math.abs(stored[column * k + row + 1]));
            }
          }
          double scale = largest / scheme.largestMagnitude();
          if (scheme == Int8Scheme.U8S8_PAIRED) {
            scale = Math.max(scale, largestPair / 128);
          }
          assertThat((double) scales[column]).as("%s layer %d column %d scale", scheme, layer, column)
              .isCloseTo(scale, org.assertj.core.data.Offset.offset(scale * 1e-6));
          for (int row = 0; row < k; row++) {
            long expected = Math.round(stored[column * k + row] / (double) scales[column]);
            int value = actual[row * n + column];
            if (scheme == Int8Scheme.U8S8_PAIRED) {
              // A pair that rounding took past 128 gives one step back.
              assertThat(Math.abs(value - expected)).as("%s layer %d [%d, %d]", scheme, layer, row, column)
                  .isLessThanOrEqualTo(1);
            } else {
              assertThat((long) value).as("%s layer %d [%d, %d]", scheme, layer, row, column).isEqualTo(expected);
            }
          }
        }
      }
    }
  }

  @Test
  void perChannelScalesFollowColumnsOfDifferentMagnitudes() throws Exception {
    // Column j's weights are 2^(j % 8) times larger: one scale for all crushes the small columns.
    float[] weights = randomValues(64 * 64, 6);
    for (int i = 0; i < weights.length; i++) {
      weights[i] *= 1 << (i % 64 % 8);
    }
    OnnxModel original =
        OnnxModelBuilder.create("columns")
            .input("x", FLOAT, "batch", 64)
            .initializer("w", weights, 64, 64)
            .node("MatMul", List.of("x", "w"), List.of("y"))
            .output("y", FLOAT, "batch", 64)
            .build();
    OnnxModel perTensor = PER_TENSOR.compress(original).model();
    OnnxModel perChannel = PER_CHANNEL.compress(original).model();
    assertThat(initializer(perTensor, "w_scale").getDimsList()).isEmpty();
    assertThat(initializer(perChannel, "w_scale").getDimsList()).containsExactly(64L);

    int rows = 8;
    float[] x = randomValues(rows * 64, 7);
    long[] shape = {rows, 64};
    float[] fp32 = OrtTesting.run(original, "x", x, shape, "y");
    float[] tensorResult = OrtTesting.run(perTensor, "x", x, shape, "y");
    float[] channelResult = OrtTesting.run(perChannel, "x", x, shape, "y");
    for (OnnxModel model : List.of(perTensor, perChannel)) {
      float[] expected =
          QuantizationReference.dynamicInt8Linear(
              x,
              rows,
              64,
              QuantizationReference.int8(initializer(model, "w_quantized")),
              Tensors.floats(initializer(model, "w_scale")),
              64,
              null);
      assertThat(relativeError(OrtTesting.run(model, "x", x, shape, "y"), expected))
          .isLessThan(1e-3);
    }
    // Error on the smallest columns (j % 8 == 0), relative to their own size.
    assertThat(columnError(channelResult, fp32)).isLessThan(0.02);
    assertThat(columnError(tensorResult, fp32)).isGreaterThan(3 * columnError(channelResult, fp32));
  }

  private static double columnError(float[] actual, float[] expected) {
    double error = 0;
    double size = 0;
    for (int i = 0; i < expected.length; i += 8) {
      error = Math.max(error, Math.abs(actual[i] - expected[i]));
      size = Math.max(size, Math.abs(expected[i]));
    }
    return error / size;
  }

  @Test
  void ortFusesEachQuantizedGemmIntoOneKernel(@TempDir Path directory) throws Exception {
    Map<String, Long> operators =
        OrtTesting.operatorsAfterOrtOptimization(
            PER_CHANNEL.compress(MLP.model()).model(), directory);
    // DynamicQuantizeLinear + MatMulInteger + Cast + Mul + Mul + Add, all in one.
    assertThat(operators).containsEntry("com.microsoft:DynamicQuantizeMatMul", 3L);
    assertThat(operators)
        .doesNotContainKeys("MatMulInteger", "DynamicQuantizeLinear", "Cast", "Mul", "Add");
  }

  /** x: [batch, 5, 64], read by two MatMuls (like attention's Q and K), each with a bias Add. */
  private static OnnxModel sharedActivationModel() {
    return OnnxModelBuilder.create("shared")
        .input("x", FLOAT, "batch", 5, 64)
        .initializer("wq", randomValues(64 * 96, 1), 64, 96)
        .initializer("wk", randomValues(64 * 96, 2), 64, 96)
        .initializer("bq", randomValues(96, 3), 96)
        .initializer("bk", randomValues(96, 4), 96)
        .node("MatMul", List.of("x", "wq"), List.of("q_matmul"))
        .node("Add", List.of("bq", "q_matmul"), List.of("q"))
        .node("MatMul", List.of("x", "wk"), List.of("k_matmul"))
        .node("Add", List.of("bk", "k_matmul"), List.of("k"))
        .node("Sub", List.of("q", "k"), List.of("y"))
        .output("y", FLOAT, "batch", 5, 96)
        .build();
  }

  @Test
  void matMulsReadingOneActivationShareItsQuantization(@TempDir Path directory) throws Exception {
    OnnxModel original = sharedActivationModel();
    OnnxModel model = PER_CHANNEL.compress(original).model();

    assertThat(nodes(model, "DynamicQuantizeLinear")).hasSize(1);
    assertThat(nodes(model, "MatMulInteger")).hasSize(2);
    // The model's own bias Adds are untouched, their inputs in the exported order.
    assertThat(nodes(model, "Add")).isEqualTo(nodes(original, "Add"));
    Map<String, Long> operators = OrtTesting.operatorsAfterOrtOptimization(model, directory);
    assertThat(operators).containsEntry("com.microsoft:MatMulIntegerToFloat", 2L);
    assertThat(operators).containsEntry("DynamicQuantizeLinear", 1L);
    assertThat(operators).doesNotContainKeys("MatMulInteger", "Add");

    int rows = 2 * 5;
    float[] x = randomValues(rows * 64, 5);
    float[] actual = OrtTesting.run(model, "x", x, new long[] {2, 5, 64}, "y");
    float[] q =
        QuantizationReference.dynamicInt8Linear(
            x,
            rows,
            64,
            QuantizationReference.int8(initializer(model, "wq_quantized")),
            Tensors.floats(initializer(model, "wq_scale")),
            96,
            Tensors.floats(initializer(model, "bq")));
    float[] k =
        QuantizationReference.dynamicInt8Linear(
            x,
            rows,
            64,
            QuantizationReference.int8(initializer(model, "wk_quantized")),
            Tensors.floats(initializer(model, "wk_scale")),
            96,
            Tensors.floats(initializer(model, "bk")));
    float[] expected = new float[q.length];
    for (int i = 0; i < q.length; i++) {
      expected[i] = q[i] - k[i];
    }
    assertThat(relativeError(actual, expected)).isLessThan(1e-3);
    float[] fp32 = OrtTesting.run(original, "x", x, new long[] {2, 5, 64}, "y");
    assertThat(relativeError(actual, fp32)).isLessThan(0.03);
  }

  @Test
  void gemmAlphaBetaAndTransposesAreFoldedIn() throws Exception {
    // y = 0.5 * x W + 2 * c with W stored [K, N] (transB=0) and c as [1, N]; z = x W2^T + d where
    // d is computed, so it stays an input of an Add.
    OnnxModel original =
        OnnxModelBuilder.create("gemms")
            .input("x", FLOAT, "batch", 64)
            .initializer("w", randomValues(64 * 80, 6), 64, 80)
            .initializer("c", randomValues(80, 7), 1, 80)
            .initializer("w2", randomValues(80 * 64, 8), 80, 64)
            .node(
                "Gemm",
                List.of("x", "w", "c"),
                List.of("y"),
                Attribute.ofFloat("alpha", 0.5f),
                Attribute.ofFloat("beta", 2f))
            .node("Neg", List.of("y"), List.of("d"))
            .node("Gemm", List.of("x", "w2", "d"), List.of("z"), Attribute.ofInt("transB", 1))
            .output("z", FLOAT, "batch", 80)
            .build();
    CompressedModel compressed = PER_CHANNEL.compress(original);
    OnnxModel model = compressed.model();

    assertThat(nodes(model, "Gemm")).isEmpty();
    assertThat(nodes(model, "MatMulInteger")).hasSize(2);
    assertThat(hasInitializer(model, "c")).isFalse();
    assertThat(Tensors.floats(initializer(model, "Gemm_0_bias")))
        .containsExactly(times(2f, Tensors.floats(initializer(original, "c"))));
    NodeProto secondAdd = nodes(model, "Add").get(1);
    assertThat(secondAdd.getInputList()).containsExactly("z_unbiased", "d");

    int rows = 8;
    float[] x = randomValues(rows * 64, 9);
    float[] expected = OrtTesting.run(original, "x", x, new long[] {rows, 64}, "z");
    float[] actual = OrtTesting.run(model, "x", x, new long[] {rows, 64}, "z");
    assertThat(relativeError(actual, expected)).isLessThan(0.03);
  }

  @Test
  void leavesWhatItCannotOrNeedNotQuantizeAndSaysWhy() {
    OnnxModel built =
        OnnxModelBuilder.create("left")
            .input("x", FLOAT, "batch", 64)
            .input("override", FLOAT, 64, 64)
            .input("xd", DOUBLE, "batch", 64)
            .initializer("tiny", randomValues(64 * 8, 1), 64, 8)
            .initializer("wd", new double[64 * 64], 64, 64)
            .initializer("w", randomValues(64 * 64, 2), 64, 64)
            .initializer("external_w", randomValues(64 * 64, 3), 64, 64)
            .node("MatMul", List.of("x", "tiny"), List.of("a"))
            .node("MatMul", List.of("x", "override"), List.of("b"))
            .node("MatMul", List.of("xd", "wd"), List.of("c"))
            .node("Relu", List.of("w"), List.of("computed"))
            .node("MatMul", List.of("x", "computed"), List.of("d"))
            .node("Gemm", List.of("x", "w"), List.of("e"), Attribute.ofInt("transA", 1))
            .node("MatMul", List.of("x", "external_w"), List.of("f"))
            .output("a", FLOAT, "batch", 8)
            .output("b", FLOAT, "batch", 64)
            .output("c", DOUBLE, "batch", 64)
            .output("d", FLOAT, "batch", 64)
            .output("e", FLOAT, 64, 64)
            .output("f", FLOAT, "batch", 64)
            .build();
    // As a model saved with its weights outside: a reference to a file, which we never read.
    TensorProto external =
        TensorProto.newBuilder()
            .setName("external_w")
            .setDataType(FLOAT.onnxNumber())
            .addDims(64)
            .addDims(64)
            .setDataLocation(TensorProto.DataLocation.EXTERNAL)
            .addExternalData(
                StringStringEntryProto.newBuilder().setKey("location").setValue("w.bin"))
            .build();
    ModelProto proto = built.proto();
    OnnxModel original =
        new OnnxModel(
            proto.toBuilder()
                .setGraph(proto.getGraph().toBuilder().setInitializer(3, external))
                .build());

    CompressedModel compressed = PER_CHANNEL.compress(original);

    assertThat(compressed.model()).isEqualTo(original);
    assertThat(compressed.report().rewritten()).isEmpty();
    Map<String, String> reasons =
        compressed.report().left().stream()
            .collect(
                Collectors.toMap(CompressionReport.Entry::name, CompressionReport.Entry::detail));
    assertThat(reasons).hasSize(6);
    assertThat(reasons.get("MatMul_0")).contains("tiny", "[64, 8]", "fewer than 4096 values");
    assertThat(reasons.get("MatMul_1")).contains("override", "graph input");
    assertThat(reasons.get("MatMul_2")).contains("wd", "DOUBLE");
    assertThat(reasons.get("MatMul_4")).contains("computed", "not a constant");
    assertThat(reasons.get("Gemm_5")).contains("transA=1");
    assertThat(reasons.get("MatMul_6")).contains("external_w", "external data");

    OnnxModel everything =
        ModelCompressor.builder()
            .precision(Precision.INT8)
            .minimumWeightElements(0)
            .build()
            .compress(original)
            .model();
    assertThat(nodes(everything, "MatMulInteger")).hasSize(1);
  }

  @Test
  void keepsEverythingItDoesNotRewrite() {
    ModelProto proto = MLP.model().proto();
    ModelProto decorated =
        proto.toBuilder()
            .setDocString("model doc")
            .setProducerVersion("9.9")
            .setModelVersion(3)
            .addMetadataProps(StringStringEntryProto.newBuilder().setKey("author").setValue("test"))
            .setGraph(
                proto.getGraph().toBuilder()
                    .setDocString("graph doc")
                    .setNode(1, proto.getGraph().getNode(1).toBuilder().setDocString("relu doc")))
            .setUnknownFields(
                UnknownFieldSet.newBuilder()
                    .addField(
                        1000,
                        UnknownFieldSet.Field.newBuilder()
                            .addLengthDelimited(ByteString.copyFromUtf8("newer ONNX"))
                            .build())
                    .build())
            .build();
    OnnxModel model = PER_CHANNEL.compress(new OnnxModel(decorated)).model();
    ModelProto result = model.proto();

    assertThat(result.getUnknownFields()).isEqualTo(decorated.getUnknownFields());
    assertThat(result.getDocString()).isEqualTo("model doc");
    assertThat(result.getProducerName()).isEqualTo(decorated.getProducerName());
    assertThat(result.getProducerVersion()).isEqualTo("9.9");
    assertThat(result.getModelVersion()).isEqualTo(3);
    assertThat(result.getIrVersion()).isEqualTo(decorated.getIrVersion());
    assertThat(result.getOpsetImportList()).isEqualTo(decorated.getOpsetImportList());
    assertThat(model.metadata()).containsExactly(entry("author", "test"));
    assertThat(result.getGraph().getName()).isEqualTo("mlp");
    assertThat(result.getGraph().getDocString()).isEqualTo("graph doc");
    assertThat(result.getGraph().getInputList()).isEqualTo(decorated.getGraph().getInputList());
    assertThat(result.getGraph().getOutputList()).isEqualTo(decorated.getGraph().getOutputList());
    assertThat(nodes(model, "Relu")).isEqualTo(nodes(new OnnxModel(decorated), "Relu"));
  }

  @Test
  void sharedWeightIsQuantizedOnceAndKeptWhileAnotherNodeReadsIt() throws Exception {
    OnnxModel original =
        OnnxModelBuilder.create("tied")
            .input("x", FLOAT, "batch", 64)
            .initializer("w", randomValues(64 * 64, 3), 64, 64)
            .node("MatMul", List.of("x", "w"), List.of("a"))
            .node("MatMul", List.of("a", "w"), List.of("b"))
            .node("ReduceSum", List.of("w"), List.of("w_sum"))
            .node("Add", List.of("b", "w_sum"), List.of("y"))
            .output("y", FLOAT, "batch", 64)
            .build();
    OnnxModel model = PER_TENSOR.compress(original).model();

    assertThat(nodes(model, "MatMulInteger"))
        .extracting(node -> node.getInput(1))
        .containsExactly("w_quantized", "w_quantized");
    assertThat(hasInitializer(model, "w")).isTrue();
    float[] x = randomValues(4 * 64, 4);
    assertThat(
            relativeError(
                OrtTesting.run(model, "x", x, new long[] {4, 64}, "y"),
                OrtTesting.run(original, "x", x, new long[] {4, 64}, "y")))
        .isLessThan(0.03);
  }

  @Test
  void opsetBeforeDynamicQuantizeLinearIsLeftWithTheReason() {
    OnnxModel old =
        OnnxModelBuilder.create("old")
            .opset(10)
            .input("x", FLOAT, "batch", 64)
            .initializer("w", randomValues(64 * 64, 3), 64, 64)
            .node("MatMul", List.of("x", "w"), List.of("y"))
            .output("y", FLOAT, "batch", 64)
            .build();
    CompressedModel compressed = PER_TENSOR.compress(old);
    assertThat(compressed.model()).isEqualTo(old);
    assertThat(compressed.report().left())
        .singleElement()
        .extracting(CompressionReport.Entry::detail)
        .asString()
        .contains("opset 11", "opset 10");
  }

  private static float[] forward(MultilayerPerceptronModel mlp, float[] input, int rows) {
    int width = mlp.inputSize();
    float[] result = new float[rows * mlp.outputSize()];
    for (int row = 0; row < rows; row++) {
      float[] inputRow = new float[width];
      System.arraycopy(input, row * width, inputRow, 0, width);
      System.arraycopy(mlp.forward(inputRow), 0, result, row * mlp.outputSize(), mlp.outputSize());
    }
    return result;
  }

  static float[] times(float factor, float[] values) {
    float[] result = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = factor * values[i];
    }
    return result;
  }
}
