package io.github.sparkinfer.compression;

import static io.github.sparkinfer.compression.OnnxElementType.FLOAT;
import static io.github.sparkinfer.compression.OrtTesting.attribute;
import static io.github.sparkinfer.compression.OrtTesting.cosine;
import static io.github.sparkinfer.compression.OrtTesting.hasInitializer;
import static io.github.sparkinfer.compression.OrtTesting.initializer;
import static io.github.sparkinfer.compression.OrtTesting.nodes;
import static io.github.sparkinfer.compression.OrtTesting.operatorCounts;
import static io.github.sparkinfer.compression.OrtTesting.randomValues;
import static io.github.sparkinfer.compression.OrtTesting.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.entry;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.util.List;
import org.junit.jupiter.api.Test;

class TestModelCompressorInt4 {
  private static final MultilayerPerceptronModel MLP =
      MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 32).seed(8).build();

  @Test
  void gemmsBecomeMatMulNBitsThatOrtComputesAsTheSpecSays() throws Exception {
    CompressedModel compressed =
        ModelCompressor.builder().precision(Precision.INT4).build().compress(MLP.model());
    OnnxModel model = compressed.model();

    assertThat(operatorCounts(model))
        .containsExactly(
            entry("Add", 3L), entry("Relu", 2L), entry("com.microsoft:MatMulNBits", 3L));
    assertThat(model.opsetImports()).containsExactly(entry("", 17L), entry("com.microsoft", 1L));
    int[] sizes = MLP.layerSizes();
    List<NodeProto> matMuls = nodes(model, "MatMulNBits");
    int rows = 16;
    float[] input = randomValues(rows * 64, 1);
    float[] expected = input;
    for (int layer = 0; layer < 3; layer++) {
      NodeProto node = matMuls.get(layer);
      int k = sizes[layer];
      int n = sizes[layer + 1];
      assertThat(node.getDomain()).isEqualTo("com.microsoft");
      assertThat(attribute(node, "K")).isEqualTo(k);
      assertThat(attribute(node, "N")).isEqualTo(n);
      assertThat(attribute(node, "bits")).isEqualTo(4);
      assertThat(attribute(node, "block_size")).isEqualTo(32);
      TensorProto packed = initializer(model, node.getInput(1));
      TensorProto scales = initializer(model, node.getInput(2));
      TensorProto zeroPoints = initializer(model, node.getInput(3));
      assertThat(packed.getDataType()).isEqualTo(OnnxElementType.UINT8.onnxNumber());
      assertThat(packed.getDimsList()).containsExactly((long) n, k / 32L, 16L);
      assertThat(scales.getDimsList()).containsExactly((long) n, k / 32L);
      assertThat(zeroPoints.getDimsList()).containsExactly((long) n, (k / 32L + 1) / 2);
      assertThat(hasInitializer(model, "layer" + layer + ".weight")).isFalse();

      float[] dequantized = dequantize(packed, scales, zeroPoints, k, n, 32);
      float[] original =
          transpose(Tensors.floats(initializer(MLP.model(), "layer" + layer + ".weight")), n, k);
      assertThat(relativeFrobeniusError(dequantized, original)).isLessThan(0.1);
      expected =
          linear(
              expected,
              rows,
              k,
              dequantized,
              n,
              Tensors.floats(initializer(model, "layer" + layer + ".bias")));
      if (layer < 2) {
        expected = QuantizationReference.relu(expected);
      }
    }
    float[] actual = OrtTesting.run(model, "features", input, new long[] {rows, 64}, "scores");
    // ORT against the weights as the spec decodes them: only float rounding apart.
    assertThat(relativeError(actual, expected)).isLessThan(1e-4);
    float[] fp32 = OrtTesting.run(MLP.model(), "features", input, new long[] {rows, 64}, "scores");
    assertThat(cosine(actual, fp32)).isGreaterThan(0.99);
  }

  @Test
  void oddBlockCountsPadZeroPointsAndKOffTheBlockSizeIsLeft() throws Exception {
    // K=96 with blocks of 32: three blocks, so each row's last zero point byte is half padding.
    // K=80 is no multiple of 32 and stays a MatMul.
    OnnxModel original =
        OnnxModelBuilder.create("blocks")
            .input("x", FLOAT, "batch", 96)
            .initializer("w", randomValues(96 * 80, 2), 96, 80)
            .initializer("w2", randomValues(80 * 64, 3), 80, 64)
            .node("MatMul", List.of("x", "w"), List.of("h"))
            .node("MatMul", List.of("h", "w2"), List.of("y"))
            .output("y", FLOAT, "batch", 64)
            .build();
    CompressedModel compressed =
        ModelCompressor.builder()
            .precision(Precision.INT4)
            .blockSize(32)
            .build()
            .compress(original);
    OnnxModel model = compressed.model();

    assertThat(nodes(model, "MatMulNBits")).hasSize(1);
    assertThat(nodes(model, "MatMul")).extracting(node -> node.getInput(1)).containsExactly("w2");
    assertThat(compressed.report().left())
        .singleElement()
        .extracting(CompressionReport.Entry::detail)
        .asString()
        .contains("K=80", "block size 32");
    TensorProto zeroPoints = initializer(model, "w_zero_points");
    assertThat(zeroPoints.getDimsList()).containsExactly(80L, 2L);
    byte[] bytes = zeroPoints.getRawData().toByteArray();
    for (int row = 0; row < 80; row++) {
      assertThat(bytes[row * 2 + 1] & 0xf0).isZero();
    }

    int rows = 4;
    float[] x = randomValues(rows * 96, 4);
    float[] hidden =
        linear(
            x,
            rows,
            96,
            dequantize(
                initializer(model, "w_Q4"), initializer(model, "w_scales"), zeroPoints, 96, 80, 32),
            80,
            null);
    float[] expected =
        linear(hidden, rows, 80, Tensors.floats(initializer(original, "w2")), 64, null);
    float[] actual = OrtTesting.run(model, "x", x, new long[] {rows, 96}, "y");
    assertThat(relativeError(actual, expected)).isLessThan(1e-4);
  }

  @Test
  void blockSize128IsCoarserAndSmaller() throws Exception {
    OnnxModel original =
        OnnxModelBuilder.create("wide")
            .input("x", FLOAT, "batch", 256)
            .initializer("w", randomValues(256 * 64, 5), 256, 64)
            .node("MatMul", List.of("x", "w"), List.of("y"))
            .output("y", FLOAT, "batch", 64)
            .build();
    CompressedModel fine =
        ModelCompressor.builder()
            .precision(Precision.INT4)
            .blockSize(32)
            .build()
            .compress(original);
    CompressedModel coarse =
        ModelCompressor.builder()
            .precision(Precision.INT4)
            .blockSize(128)
            .build()
            .compress(original);
    NodeProto node = nodes(coarse.model(), "MatMulNBits").get(0);
    assertThat(attribute(node, "block_size")).isEqualTo(128);
    assertThat(initializer(coarse.model(), "w_Q4").getDimsList()).containsExactly(64L, 2L, 64L);
    assertThat(coarse.report().initializerBytesAfter())
        .isLessThan(fine.report().initializerBytesAfter());

    float[] x = randomValues(8 * 256, 6);
    float[] fp32 = OrtTesting.run(original, "x", x, new long[] {8, 256}, "y");
    double fineCosine =
        cosine(OrtTesting.run(fine.model(), "x", x, new long[] {8, 256}, "y"), fp32);
    double coarseCosine =
        cosine(OrtTesting.run(coarse.model(), "x", x, new long[] {8, 256}, "y"), fp32);
    assertThat(coarseCosine).isGreaterThan(0.98).isLessThan(fineCosine);
  }

  /** MatMulNBits' B, scales and packed zero points back to a float [K, N] weight, per the spec. */
  static float[] dequantize(
      TensorProto packed, TensorProto scales, TensorProto zeroPoints, int k, int n, int blockSize) {
    byte[] codes = packed.getRawData().toByteArray();
    float[] scaleValues = Tensors.floats(scales);
    byte[] zeroPointBytes = zeroPoints.getRawData().toByteArray();
    int blocks = k / blockSize;
    int zeroPointRow = (blocks + 1) / 2;
    float[] weight = new float[k * n];
    for (int column = 0; column < n; column++) {
      for (int block = 0; block < blocks; block++) {
        int zeroPointByte = zeroPointBytes[column * zeroPointRow + block / 2] & 0xff;
        int zeroPoint = block % 2 == 0 ? zeroPointByte & 0xf : zeroPointByte >> 4;
        float scale = scaleValues[column * blocks + block];
        for (int i = 0; i < blockSize; i++) {
          int codeByte = codes[(column * blocks + block) * blockSize / 2 + i / 2] & 0xff;
          int code = i % 2 == 0 ? codeByte & 0xf : codeByte >> 4;
          weight[(block * blockSize + i) * n + column] = (code - zeroPoint) * scale;
        }
      }
    }
    return weight;
  }

  /** x [rows, k] times w [k, n] plus bias, in double. */
  static float[] linear(float[] x, int rows, int k, float[] w, int n, float[] bias) {
    float[] y = new float[rows * n];
    for (int row = 0; row < rows; row++) {
      for (int column = 0; column < n; column++) {
        double sum = bias == null ? 0 : bias[column];
        for (int i = 0; i < k; i++) {
          sum += (double) x[row * k + i] * w[i * n + column];
        }
        y[row * n + column] = (float) sum;
      }
    }
    return y;
  }

  private static float[] transpose(float[] values, int rows, int columns) {
    float[] result = new float[values.length];
    for (int row = 0; row < rows; row++) {
      for (int column = 0; column < columns; column++) {
        result[column * rows + row] = values[row * columns + column];
      }
    }
    return result;
  }

  private static double relativeFrobeniusError(float[] actual, float[] expected) {
    double error = 0;
    double norm = 0;
    for (int i = 0; i < expected.length; i++) {
      error += Math.pow(actual[i] - expected[i], 2);
      norm += Math.pow(expected[i], 2);
    }
    return Math.sqrt(error / norm);
  }
}
