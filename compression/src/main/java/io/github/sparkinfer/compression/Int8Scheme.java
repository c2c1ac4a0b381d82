package io.github.sparkinfer.compression;

import java.util.Locale;

/**
 * How int8 weights are stored for ONNX Runtime's MatMulInteger kernels, which multiply uint8
 * activations with them. The three differ in which CPUs compute them exactly and how fast:
 *
 * <table>
 *   <caption>int8 weight schemes on ONNX Runtime's CPU provider (MLAS)</caption>
 *   <tr><th>scheme</th><th>weights</th><th>exact on</th><th>speed</th></tr>
 *   <tr><td>u8s8</td><td>int8 in [-127, 127]</td><td>x86 with AVX-VNNI, AVX512-VNNI or AMX; ARM
 *       </td><td>fastest there</td></tr>
 *   <tr><td>u8s8-paired</td><td>int8 in [-127, 127], each pair of rows 2i, 2i+1 of a column at
 *       most 128 in magnitude together</td><td>x86 whose kernel adds those pairs in 16 bits (AVX2,
 *       AVX-512 without VNNI: checked by the probe), and wherever u8s8 is</td><td>as u8s8</td></tr>
 *   <tr><td>u8u8</td><td>uint8 in [1, 255], zero point 128</td><td>every CPU</td><td>16-bit
 *       multiply-adds on x86: about half of u8s8's speed, no faster than float32</td></tr>
 *   <tr><td>u8s8-reduced</td><td>int8 in [-64, 64]</td><td>every CPU</td><td>as u8s8, one bit
 *       less weight precision</td></tr>
 * </table>
 *
 * <p>Why u8s8 is not exact everywhere: on x86 CPUs without VNNI (AVX2, and AVX-512 without VNNI)
 * MLAS multiplies uint8 by int8 with {@code vpmaddubsw}, which adds two products into a saturating
 * 16-bit lane: 255 x 127 x 2 = 64,770 does not fit in 32,767. u8u8 widens both to 16 bits first
 * ({@code vpmaddwd}, 32-bit sums); u8u8's weights hold the same values as u8s8's, shifted by 128,
 * so it computes the same integers, at a cost. u8s8-reduced keeps every pair under 255 x 64 x 2 =
 * 32,640, as ONNX Runtime's quantizer's {@code reduce_range}, but halves every weight's precision.
 * u8s8-paired limits only what saturates: the two weights that one 16-bit lane adds (rows 2i and
 * 2i+1 along K of a column, in MLAS's packing) to 128 in magnitude together, 255 x 128 = 32,640;
 * in a real model both weights of a pair are rarely above half their column's largest, so nearly
 * every weight keeps its full 8 bits.
 *
 * <p>{@link #forThisProcessor()} picks, by a probe of this process's ONNX Runtime: u8s8 where its
 * u8 x s8 kernel is exact; u8s8-paired where it saturates but pairs within the limit are exact;
 * u8u8 elsewhere.
 */
public enum Int8Scheme {
  U8S8("u8s8", OnnxElementType.INT8, 127, 0, 0),
  U8S8_PAIRED("u8s8-paired", OnnxElementType.INT8, 127, 0, 128),
  U8U8("u8u8", OnnxElementType.UINT8, 127, 128, 0),
  U8S8_REDUCED("u8s8-reduced", OnnxElementType.INT8, 64, 0, 0);

  private final String shortName;
  private final OnnxElementType weightType;
  private final int largestMagnitude;
  private final int zeroPoint;
  private final int pairLimit;

  Int8Scheme(String shortName, OnnxElementType weightType, int largestMagnitude, int zeroPoint, int pairLimit) {
    this.shortName = shortName;
    this.weightType = weightType;
    this.largestMagnitude = largestMagnitude;
    this.zeroPoint = zeroPoint;
    this.pairLimit = pairLimit;
  }

  /** u8s8, u8s8-paired, u8u8 or u8s8-reduced: the name the CLI, Spark settings and file names use. */
  public String shortName() {
    return shortName;
  }

  /** INT8 or UINT8. */
  public OnnxElementType weightType() {
    return weightType;
  }

  /** Weights are rounded to integers in [-largestMagnitude, largestMagnitude] before the shift. */
  public int largestMagnitude() {
    return largestMagnitude;
  }

  /** What is added to each rounded weight before it is stored: 0, or 128 for u8u8. */
  public int zeroPoint() {
    return zeroPoint;
  }

  /**
   * The most that the magnitudes of rows 2i and 2i+1 of a weight column may add up to, after
   * rounding: 128 for u8s8-paired, 0 for no limit.
   */
  public int pairLimit() {
    return pairLimit;
  }

  /**
   * @throws IllegalArgumentException naming the accepted values
   */
  public static Int8Scheme fromShortName(String name) {
    String normalized = name.trim().toLowerCase(Locale.ROOT);
    for (Int8Scheme scheme : values()) {
      if (scheme.shortName.equals(normalized)) {
        return scheme;
      }
    }
    throw new IllegalArgumentException(
        "Unknown int8 scheme '" + name + "': use u8s8, u8s8-paired, u8u8 or u8s8-reduced (or auto to choose for this"
            + " CPU)");
  }

  /**
   * The fastest, most accurate scheme that is exact on the CPU this JVM runs on: u8s8 where ONNX
   * Runtime's u8 x s8 kernel does not saturate, u8s8-paired where it saturates only past the pair
   * limit, u8u8 elsewhere (see {@link Int8KernelProbe}).
   */
  public static Int8Scheme forThisProcessor() {
    return Int8KernelProbe.result().scheme();
  }
}
