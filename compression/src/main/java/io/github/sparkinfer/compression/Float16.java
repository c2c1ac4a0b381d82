package io.github.sparkinfer.compression;

/**
 * IEEE 754 binary16 conversions. Java 17 has no {@code Float.floatToFloat16} (that is Java 20), and
 * the main code must not need ONNX Runtime's native library for plain arithmetic.
 */
final class Float16 {
  /** The largest finite float16. */
  static final float MAX_VALUE = 65504f;

  /** The smallest positive float16, a subnormal: 2^-24. */
  static final float MIN_VALUE = 0x1p-24f;

  private Float16() {}

  /** Rounds to the nearest float16, ties to even; too large becomes infinity, as in IEEE 754. */
  static short fromFloat(float value) {
    int bits = Float.floatToRawIntBits(value);
    int sign = (bits >>> 16) & 0x8000;
    int exponent = (bits >>> 23) & 0xff;
    int mantissa = bits & 0x7fffff;
    if (exponent == 0xff) {
      // Infinity stays infinity; NaN stays a quiet NaN, keeping the top payload bits.
      return (short) (sign | 0x7c00 | (mantissa == 0 ? 0 : 0x200 | (mantissa >>> 13)));
    }
    int halfExponent = exponent - 127 + 15;
    if (halfExponent >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (halfExponent <= 0) {
      if (halfExponent < -10) {
        // Below half the smallest subnormal: rounds to zero.
        return (short) sign;
      }
      // A float16 subnormal counts 2^-24 steps: shift the full significand into that unit.
      int significand = mantissa | 0x800000;
      int shift = 14 - halfExponent;
      return (short) (sign | roundShifted(significand, shift));
    }
    // A carry out of the mantissa rounds into the exponent, up to infinity: the encoding is
    // ordered.
    int shifted = (halfExponent << 10) | (mantissa >>> 13);
    int remainder = mantissa & 0x1fff;
    if (remainder > 0x1000 || (remainder == 0x1000 && (shifted & 1) != 0)) {
      shifted++;
    }
    return (short) (sign | shifted);
  }

  private static int roundShifted(int value, int shift) {
    int result = value >>> shift;
    int remainder = value & ((1 << shift) - 1);
    int half = 1 << (shift - 1);
    if (remainder > half || (remainder == half && (result & 1) != 0)) {
      result++;
    }
    return result;
  }

  /**
   * As {@link #fromFloat}, but finite values stay finite and non-zero values stay non-zero: beyond
   * ±65504 becomes ±65504 (a float32 mask constant such as -3.4e38 stays a large negative number,
   * not -infinity, whose products can turn into NaN), and magnitudes below 2^-24 become ±2^-24 (an
   * epsilon such as LayerNorm's 1e-12 keeps guarding its division).
   */
  static short fromFloatClamped(float value) {
    if (Float.isFinite(value)) {
      if (value > MAX_VALUE) {
        value = MAX_VALUE;
      } else if (value < -MAX_VALUE) {
        value = -MAX_VALUE;
      } else if (value != 0 && Math.abs(value) < MIN_VALUE) {
        value = Math.copySign(MIN_VALUE, value);
      }
    }
    return fromFloat(value);
  }

  /** True when {@link #fromFloatClamped} has to change the value to keep it finite or non-zero. */
  static boolean needsClamping(float value) {
    return Float.isFinite(value)
        && (Math.abs(value) > MAX_VALUE || (value != 0 && Math.abs(value) < MIN_VALUE));
  }

  /** Exact: every float16 is a float. */
  static float toFloat(short half) {
    int bits = half & 0xffff;
    int sign = (bits & 0x8000) << 16;
    int exponent = (bits >>> 10) & 0x1f;
    int mantissa = bits & 0x3ff;
    if (exponent == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
    }
    if (exponent == 0) {
      float subnormal = mantissa * MIN_VALUE;
      return sign == 0 ? subnormal : -subnormal;
    }
    return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
  }
}
