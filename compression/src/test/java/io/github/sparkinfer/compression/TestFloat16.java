package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.platform.Fp16Conversions;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Our float16 arithmetic against ONNX Runtime's own Java conversions, an independent reference. */
class TestFloat16 {
  @Test
  void everyFloat16WidensAsOrtDoesAndNarrowsBackToItself() {
    for (int bits = 0; bits <= 0xffff; bits++) {
      short half = (short) bits;
      float widened = Float16.toFloat(half);
      float expected = Fp16Conversions.fp16ToFloat(half);
      if (Float.isNaN(expected)) {
        assertThat(widened).isNaN();
        assertThat(Float16.toFloat(Float16.fromFloat(widened))).isNaN();
      } else {
        assertThat(Float.floatToIntBits(widened))
            .as("bits 0x%04x", bits)
            .isEqualTo(Float.floatToIntBits(expected));
        assertThat(Float16.fromFloat(widened)).as("bits 0x%04x", bits).isEqualTo(half);
      }
    }
  }

  @Test
  void narrowsLikeOrtForRandomFloatsOfEveryMagnitude() {
    SplittableRandom random = new SplittableRandom(16);
    for (int i = 0; i < 2_000_000; i++) {
      // Exponents around the float16 range, including subnormals, ties and overflow.
      float value =
          Float.intBitsToFloat(random.nextInt() & 0x807fffff | random.nextInt(90, 160) << 23);
      assertThat(Float16.fromFloat(value))
          .as("%s (0x%08x)", value, Float.floatToRawIntBits(value))
          .isEqualTo(Fp16Conversions.floatToFp16(value));
    }
  }

  @Test
  void roundsHalfwayCasesToEven() {
    // 1 + 2^-11 lies halfway between 1 and the next float16 (1 + 2^-10): even mantissa wins.
    assertThat(Float16.toFloat(Float16.fromFloat(1f + 0x1p-11f))).isEqualTo(1f);
    assertThat(Float16.toFloat(Float16.fromFloat(1f + 3 * 0x1p-11f))).isEqualTo(1f + 0x1p-9f);
    // Halfway below the smallest subnormal rounds to zero, just above it to the subnormal.
    assertThat(Float16.toFloat(Float16.fromFloat(0x1p-25f))).isEqualTo(0f);
    assertThat(Float16.toFloat(Float16.fromFloat(0x1.01p-25f))).isEqualTo(0x1p-24f);
    assertThat(Float16.toFloat(Float16.fromFloat(65519f))).isEqualTo(65504f);
    assertThat(Float16.toFloat(Float16.fromFloat(65520f))).isEqualTo(Float.POSITIVE_INFINITY);
  }

  @Test
  void clampingKeepsFiniteValuesFiniteAndNonZeroValuesNonZero() {
    assertThat(Float16.toFloat(Float16.fromFloatClamped(-3.4028235e38f))).isEqualTo(-65504f);
    assertThat(Float16.toFloat(Float16.fromFloatClamped(1e5f))).isEqualTo(65504f);
    assertThat(Float16.toFloat(Float16.fromFloatClamped(1e-12f))).isEqualTo(0x1p-24f);
    assertThat(Float16.toFloat(Float16.fromFloatClamped(-1e-12f))).isEqualTo(-0x1p-24f);
    assertThat(Float16.toFloat(Float16.fromFloatClamped(0f))).isEqualTo(0f);
    assertThat(Float16.toFloat(Float16.fromFloatClamped(Float.NEGATIVE_INFINITY)))
        .isEqualTo(Float.NEGATIVE_INFINITY);
    assertThat(Float16.toFloat(Float16.fromFloatClamped(Float.NaN))).isNaN();
    assertThat(Float16.toFloat(Float16.fromFloatClamped(0.1f)))
        .isEqualTo(Float16.toFloat(Float16.fromFloat(0.1f)));
    assertThat(Float16.needsClamping(-3.4028235e38f)).isTrue();
    assertThat(Float16.needsClamping(1e-12f)).isTrue();
    assertThat(Float16.needsClamping(0.1f)).isFalse();
    assertThat(Float16.needsClamping(Float.POSITIVE_INFINITY)).isFalse();
  }
}
