package io.github.sparkinfer.compression;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** What {@link ModelCompressor} turns a float32 model into. */
public enum Precision {
  /**
   * Dynamic int8 quantization of MatMul and Gemm with constant 2-D weights, for CPUs: weights int8
   * offline, activations uint8 at run time (DynamicQuantizeLinear), the pattern ONNX Runtime's CPU
   * provider fuses into DynamicQuantizeMatMul or MatMulIntegerToFloat.
   */
  INT8("int8"),
  /**
   * float16 weights and intermediate tensors for GPUs; graph inputs and outputs stay float32 and
   * operators without float16 kernels stay float32 between Casts.
   */
  FLOAT16("fp16"),
  /**
   * Weight-only 4-bit block quantization: MatMul and Gemm with constant 2-D weights become ONNX
   * Runtime's com.microsoft MatMulNBits; activations stay float.
   */
  INT4("int4");

  private final String shortName;

  Precision(String shortName) {
    this.shortName = shortName;
  }

  /** The name the command line uses: {@code int8}, {@code fp16} or {@code int4}. */
  public String shortName() {
    return shortName;
  }

  /**
   * The precision of a short name, case-insensitive.
   *
   * @throws IllegalArgumentException for any other name, listing the valid ones
   */
  public static Precision fromShortName(String name) {
    for (Precision precision : values()) {
      if (precision.shortName.equals(name.toLowerCase(Locale.ROOT))) {
        return precision;
      }
    }
    throw new IllegalArgumentException(
        "Unknown precision '"
            + name
            + "': use one of "
            + Arrays.stream(values()).map(Precision::shortName).collect(Collectors.joining(", ")));
  }
}
