package io.github.sparkinfer.compression;

import static io.github.sparkinfer.compression.OnnxElementType.FLOAT;
import static io.github.sparkinfer.compression.OrtTesting.initializer;
import static io.github.sparkinfer.compression.OrtTesting.nodes;
import static io.github.sparkinfer.compression.OrtTesting.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The weight schemes on a layer built to make uint8 x int8 saturate: every weight of a column is
 * within 10% of the column's largest (quantized to 115..127 in magnitude) and every activation is
 * positive and near the top of its range (quantized to 230..255), so each pair of products is about
 * 2 x 255 x 127 = 64,770, twice what a 16-bit lane holds. On a CPU whose ONNX Runtime kernel adds
 * such pairs in 16 bits (x86 without VNNI) u8s8 gives about half the exact sums; every scheme
 * sparkinfer chooses must give the exact integer result on every CPU.
 */
class TestInt8Schemes {
  private static final int DEPTH = 256;
  private static final int COLUMNS = 32;
  private static final int ROWS = 8;
  private static final long[] SHAPE = {ROWS, DEPTH};

  /**
   * The bound on this layer, from the quantization steps alone: each weight is off by at most half
   * a step (1/254 of its column's largest), each activation by half of 1/255 of the largest; both
   * are positive here, so errors cannot cancel and the relative error is at most about their sum,
   * 0.4%. Reduced range has half as many steps: 0.6%.
   */
  private static final double FULL_RANGE_BOUND = 0.005;
  private static final double REDUCED_RANGE_BOUND = 0.007;

  private static final OnnxModel LAYER = saturatingLayer();
  private static final float[] INPUT = nearTopActivations();

  private static OnnxModel saturatingLayer() {
    SplittableRandom random = new SplittableRandom(11);
    float[] weights = new float[DEPTH * COLUMNS];
    for (int k = 0; k < DEPTH; k++) {
      for (int n = 0; n < COLUMNS; n++) {
        // Both signs across columns, one sign within a column: pairs add up instead of cancelling.
        weights[k * COLUMNS + n] = (float) random.nextDouble(0.9, 1.0) * (n % 2 == 0 ? 3f : -3f);
      }
    }
    return OnnxModelBuilder.create("saturating")
        .input("x", FLOAT, "batch", DEPTH)
        .initializer("w", weights, DEPTH, COLUMNS)
        .node("MatMul", List.of("x", "w"), List.of("y"))
        .output("y", FLOAT, "batch", COLUMNS)
        .build();
  }

  private static float[] nearTopActivations() {
    SplittableRandom random = new SplittableRandom(12);
    float[] values = new float[ROWS * DEPTH];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) random.nextDouble(0.9, 1.0);
    }
    return values;
  }

  /** A standard normal value (Box-Muller): SplittableRandom has no nextGaussian in Java 17. */
  private static double gaussian(SplittableRandom random) {
    return Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble());
  }

  private static OnnxModel compress(Int8Scheme scheme) {
    ModelCompressor.Builder builder = ModelCompressor.builder().precision(Precision.INT8).perChannel(true);
    if (scheme != null) {
      builder.int8Scheme(scheme);
    }
    return builder.build().compress(LAYER).model();
  }

  /** What the quantized graph computes in exact integer arithmetic (the ONNX operators' definition). */
  private static float[] exactIntegerResult(OnnxModel model) {
    return QuantizationReference.dynamicInt8Linear(INPUT, ROWS, DEPTH,
        QuantizationReference.int8(initializer(model, "w_quantized")),
        Tensors.floats(initializer(model, "w_scale")), COLUMNS, null);
  }

  private static float[] run(OnnxModel model) throws Exception {
    return OrtTesting.run(model, "x", INPUT, SHAPE, "y");
  }

  @Test
  void theLayerReallyPushesPairSumsPastSixteenBits() {
    byte[] weights = QuantizationReference.int8(initializer(compress(Int8Scheme.U8S8), "w_quantized"));
    int smallest = 127;
    for (byte weight : weights) {
      smallest = Math.min(smallest, Math.abs(weight));
    }
    // Activations quantize to at least 0.9 x 255 = 229 (scale max/255, zero point 0).
    assertThat(229 * smallest * 2).isGreaterThan(Short.MAX_VALUE);
  }

  @Test
  void theDefaultSchemeIsExactOnThisCpu() throws Exception {
    OnnxModel model = compress(null);
    Int8Scheme chosen = Int8Scheme.forThisProcessor();

    float[] actual = run(model);
    assertThat(relativeError(actual, exactIntegerResult(model))).as(chosen.shortName()).isLessThan(1e-5);
    // On this layer every pair is over u8s8-paired's limit, so its weights get about 64 steps each,
    // as reduced range's do; on real weights few pairs are (see the paired test).
    double bound = chosen == Int8Scheme.U8S8_PAIRED ? REDUCED_RANGE_BOUND : FULL_RANGE_BOUND;
    assertThat(relativeError(actual, run(LAYER))).as(chosen.shortName()).isLessThan(bound);
  }

  @Test
  void pairedSchemeChangesOnlyPairsOverTheLimitAndIsExactWhereTheProbeSaysSo() throws Exception {
    // Weights shaped like a trained layer's: normal, so a column's largest is about 2.9 sigma over
    // K = 256 and a pair of steps has |q0| + |q1| > 128 about 6% of the time.
    SplittableRandom random = new SplittableRandom(21);
    float[] weights = new float[DEPTH * COLUMNS];
    for (int i = 0; i < weights.length; i++) {
      weights[i] = (float) gaussian(random);
    }
    OnnxModel layer = OnnxModelBuilder.create("uniform")
        .input("x", FLOAT, "batch", DEPTH)
        .initializer("w", weights, DEPTH, COLUMNS)
        .node("MatMul", List.of("x", "w"), List.of("y"))
        .output("y", FLOAT, "batch", COLUMNS)
        .build();
    ModelCompressor.Builder builder = ModelCompressor.builder().precision(Precision.INT8).perChannel(true);
    byte[] full = QuantizationReference.int8(initializer(
        builder.int8Scheme(Int8Scheme.U8S8).build().compress(layer).model(), "w_quantized"));
    byte[] paired = QuantizationReference.int8(initializer(
        builder.int8Scheme(Int8Scheme.U8S8_PAIRED).build().compress(layer).model(), "w_quantized"));
    int[] fullLargest = new int[COLUMNS];
    int[] pairedLargest = new int[COLUMNS];
    for (int k = 0; k < DEPTH; k += 2) {
      for (int n = 0; n < COLUMNS; n++) {
        int first = k * COLUMNS + n;
        int second = first + COLUMNS;
        assertThat(Math.abs(paired[first]) + Math.abs(paired[second])).isLessThanOrEqualTo(128);
        fullLargest[n] = Math.max(fullLargest[n], Math.max(Math.abs(full[first]), Math.abs(full[second])));
        pairedLargest[n] = Math.max(pairedLargest[n], Math.max(Math.abs(paired[first]), Math.abs(paired[second])));
      }
    }
    for (int n = 0; n < COLUMNS; n++) {
      assertThat(fullLargest[n]).isEqualTo(127);
      // The scale widened so that the largest pair fits: fewer steps than 127, far more than 64.
      assertThat(pairedLargest[n]).as("column %d", n).isBetween(70, 127);
    }
    float[] x = OrtTesting.randomValues(ROWS * DEPTH, 22);
    OnnxModel pairedModel = builder.int8Scheme(Int8Scheme.U8S8_PAIRED).build().compress(layer).model();
    OnnxModel reducedModel = builder.int8Scheme(Int8Scheme.U8S8_REDUCED).build().compress(layer).model();
    float[] fp32 = OrtTesting.run(layer, "x", x, SHAPE, "y");
    double pairedError = relativeError(OrtTesting.run(pairedModel, "x", x, SHAPE, "y"), fp32);
    double reducedError = relativeError(OrtTesting.run(reducedModel, "x", x, SHAPE, "y"), fp32);
    System.out.printf("normal weights: relative error to fp32, u8s8-paired %.5f, u8s8-reduced %.5f%n", pairedError,
        reducedError);
    assertThat(pairedError).isLessThan(reducedError);

    OnnxModel model = compress(Int8Scheme.U8S8_PAIRED);
    double error = relativeError(run(model), exactIntegerResult(model));
    if (Int8KernelProbe.result().pairedWeightsExact() || Int8KernelProbe.result().signedWeightsExact()) {
      assertThat(error).isLessThan(1e-5);
    }
    assertThat(relativeError(run(model), run(LAYER))).isLessThan(REDUCED_RANGE_BOUND);
  }

  @Test
  void u8u8StoresShiftedWeightsWithOneZeroPointAndIsExactOnEveryCpu(@TempDir Path directory) throws Exception {
    OnnxModel model = compress(Int8Scheme.U8U8);
    TensorProto weight = initializer(model, "w_quantized");
    assertThat(weight.getDataType()).isEqualTo(OnnxElementType.UINT8.onnxNumber());
    NodeProto matMul = nodes(model, "MatMulInteger").get(0);
    assertThat(matMul.getInputCount()).isEqualTo(4);
    TensorProto zeroPoint = initializer(model, matMul.getInput(3));
    assertThat(zeroPoint.getDataType()).isEqualTo(OnnxElementType.UINT8.onnxNumber());
    assertThat(zeroPoint.getDimsList()).isEmpty();
    assertThat(zeroPoint.getRawData().toByteArray()).containsExactly((byte) 128);
    // Same integers as u8s8's, only shifted: the schemes differ in storage, not in value.
    assertThat(QuantizationReference.int8(weight))
        .containsExactly(QuantizationReference.int8(initializer(compress(Int8Scheme.U8S8), "w_quantized")));
    // ORT still fuses the quantized layer into one kernel.
    assertThat(OrtTesting.operatorsAfterOrtOptimization(model, directory))
        .containsEntry("com.microsoft:DynamicQuantizeMatMul", 1L)
        .doesNotContainKeys("MatMulInteger", "DynamicQuantizeLinear");

    float[] actual = run(model);
    assertThat(relativeError(actual, exactIntegerResult(model))).isLessThan(1e-5);
    assertThat(relativeError(actual, run(LAYER))).isLessThan(FULL_RANGE_BOUND);
  }

  @Test
  void reducedRangeIsExactOnEveryCpuWithHalfTheWeightSteps() throws Exception {
    OnnxModel model = compress(Int8Scheme.U8S8_REDUCED);
    byte[] weights = QuantizationReference.int8(initializer(model, "w_quantized"));
    int largest = 0;
    for (byte weight : weights) {
      largest = Math.max(largest, Math.abs(weight));
    }
    assertThat(largest).isEqualTo(64);

    float[] actual = run(model);
    assertThat(relativeError(actual, exactIntegerResult(model))).isLessThan(1e-5);
    double error = relativeError(actual, run(LAYER));
    assertThat(error).isLessThan(REDUCED_RANGE_BOUND)
        .isGreaterThan(relativeError(run(compress(Int8Scheme.U8U8)), run(LAYER)));
  }

  @Test
  void u8s8SaturatesExactlyWhereTheProbeSaysItDoes() throws Exception {
    OnnxModel model = compress(Int8Scheme.U8S8);
    Int8KernelProbe.Result probe = Int8KernelProbe.result();
    double error = relativeError(run(model), exactIntegerResult(model));
    System.out.printf("u8s8 on the saturating layer: relative error %.4f to exact integers; probe: %s%n", error, probe);
    if (probe.signedWeightsExact()) {
      assertThat(error).isLessThan(1e-5);
      assertThat(Int8Scheme.forThisProcessor()).isEqualTo(Int8Scheme.U8S8);
    } else {
      assertThat(error).isGreaterThan(0.1);
      assertThat(Int8Scheme.forThisProcessor()).isIn(Int8Scheme.U8S8_PAIRED, Int8Scheme.U8U8);
    }
  }

  @Test
  void theReportSaysWhichSchemeAndWhy() {
    CompressionReport chosen = ModelCompressor.builder().precision(Precision.INT8).build().compress(LAYER).report();
    assertThat(chosen.int8Scheme()).contains(Int8Scheme.forThisProcessor());
    assertThat(chosen.int8SchemeReason()).contains("chosen for this CPU", "exactly 2072640", "exactly 1044480",
        ProcessorDescription.current().model());
    assertThat(chosen.toString()).contains("int8 scheme " + Int8Scheme.forThisProcessor().shortName());

    CompressionReport forced =
        ModelCompressor.builder().precision(Precision.INT8).int8Scheme(Int8Scheme.U8U8).build().compress(LAYER).report();
    assertThat(forced.int8Scheme()).contains(Int8Scheme.U8U8);
    assertThat(forced.int8SchemeReason()).startsWith("set explicitly");
    assertThat(forced.rewritten().get(0).detail()).contains("u8u8: uint8 x uint8");
    assertThat(ModelCompressor.builder().precision(Precision.FLOAT16).build().compress(LAYER).report().int8Scheme())
        .isEmpty();
  }

  @Test
  void schemeNamesAndMisuseHaveClearErrors() {
    assertThat(Int8Scheme.fromShortName(" U8U8 ")).isEqualTo(Int8Scheme.U8U8);
    assertThat(Int8Scheme.fromShortName("u8s8-reduced")).isEqualTo(Int8Scheme.U8S8_REDUCED);
    assertThat(Int8Scheme.fromShortName("u8s8-paired")).isEqualTo(Int8Scheme.U8S8_PAIRED);
    assertThatThrownBy(() -> Int8Scheme.fromShortName("s8s8"))
        .hasMessageContaining("Unknown int8 scheme 's8s8'")
        .hasMessageContaining("u8s8, u8s8-paired, u8u8 or u8s8-reduced");
    assertThatThrownBy(() -> ModelCompressor.builder().precision(Precision.INT4).int8Scheme(Int8Scheme.U8U8).build())
        .hasMessageContaining("int8Scheme applies to INT8 only");
  }
}
