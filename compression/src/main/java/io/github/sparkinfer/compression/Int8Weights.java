package io.github.sparkinfer.compression;

/**
 * A float weight matrix [K, N] as 8-bit integers and scales under an {@link Int8Scheme}: symmetric,
 * one scale per output column or one for all, rounded to the nearest step; u8s8-paired also keeps
 * every pair of rows 2i, 2i+1 of a column within its limit; u8u8 stores each value plus 128.
 */
final class Int8Weights {
  private final Int8Scheme scheme;
  private final boolean perChannel;
  private final float[] weight;
  private final int k;
  private final int n;
  private final float[] scales;
  private final int[] values;

  /** @param weight row-major [k, n], row = input feature */
  Int8Weights(Int8Scheme scheme, boolean perChannel, float[] weight, int k, int n) {
    this.scheme = scheme;
    this.perChannel = perChannel;
    this.weight = weight;
    this.k = k;
    this.n = n;
    this.scales = new float[perChannel ? n : 1];
    this.values = new int[weight.length];
    chooseScales();
    round();
  }

  /** One scale, or one per output column. */
  float[] scales() {
    return scales;
  }

  /** The bytes the model stores, [k, n]. */
  byte[] stored() {
    byte[] stored = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      // u8u8 stores value + 128 in [1, 255]: the same integer once ORT subtracts the zero point.
      stored[i] = (byte) (values[i] + scheme.zeroPoint());
    }
    return stored;
  }

  private float scaleOf(int column) {
    return scales[perChannel ? column : 0];
  }

  private void chooseScales() {
    for (int row = 0; row < k; row++) {
      for (int column = 0; column < n; column++) {
        int scale = perChannel ? column : 0;
        scales[scale] = Math.max(scales[scale], Math.abs(weight[row * n + column]));
      }
    }
    int largest = scheme.largestMagnitude();
    for (int i = 0; i < scales.length; i++) {
      // Symmetric over [-largest, largest]: -128 would make the range lopsided for no gain.
      scales[i] = scales[i] == 0 ? 1f : scales[i] / largest;
    }
    if (scheme.pairLimit() > 0) {
      fitScalesToPairs();
    }
  }

  /**
   * u8s8-paired: widens a scale until the largest pair of its weights (rows 2i and 2i+1 of a
   * column, the two that one 16-bit lane of MLAS's kernels without VNNI adds) fits the pair limit,
   * so no weight is clipped. Trained weights have heavy tails: a column's largest pair is mostly its
   * largest weight plus an ordinary one, and the scale grows little.
   */
  private void fitScalesToPairs() {
    float[] largestPair = new float[scales.length];
    for (int row = 0; row < k; row += 2) {
      for (int column = 0; column < n; column++) {
        float pair = Math.abs(weight[row * n + column]) + (row + 1 < k ? Math.abs(weight[(row + 1) * n + column]) : 0);
        int scale = perChannel ? column : 0;
        largestPair[scale] = Math.max(largestPair[scale], pair);
      }
    }
    for (int i = 0; i < scales.length; i++) {
      scales[i] = Math.max(scales[i], largestPair[i] / scheme.pairLimit());
    }
  }

  private void round() {
    int largest = scheme.largestMagnitude();
    for (int row = 0; row < k; row++) {
      for (int column = 0; column < n; column++) {
        long value = Math.round((double) weight[row * n + column] / scaleOf(column));
        values[row * n + column] = (int) Math.max(-largest, Math.min(largest, value));
      }
    }
    if (scheme.pairLimit() > 0) {
      limitPairs();
    }
  }

  /**
   * u8s8-paired, after rounding with scales that fit the pairs: two weights that both rounded up
   * can pass the limit by a step or two; the one that rounded up more gives them back, so its error
   * stays under one step.
   */
  private void limitPairs() {
    int limit = scheme.pairLimit();
    for (int row = 0; row + 1 < k; row += 2) {
      for (int column = 0; column < n; column++) {
        int first = row * n + column;
        int second = first + n;
        float scale = scaleOf(column);
        while (Math.abs(values[first]) + Math.abs(values[second]) > limit) {
          double firstUp = Math.abs(values[first]) - Math.abs(weight[first] / scale);
          double secondUp = Math.abs(values[second]) - Math.abs(weight[second] / scale);
          int lower = firstUp >= secondUp ? first : second;
          values[lower] -= Integer.signum(values[lower]);
        }
      }
    }
  }
}
