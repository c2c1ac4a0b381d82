package io.github.sparkinfer.spark.batch;

import org.apache.spark.util.AccumulatorV2;

/**
 * How long each model batch took (the model call alone), over all tasks of a plan node: a histogram
 * of eight buckets per power of two of microseconds (about 9 % wide), so percentiles merge across
 * tasks exactly as counts do. An accumulator, as Spark's SQL metrics only sum or average.
 */
public final class BatchLatencies extends AccumulatorV2<Long, BatchLatencies> {
  private static final long serialVersionUID = 1L;
  private static final int PER_OCTAVE = 8;
  private static final int BUCKETS = 42 * PER_OCTAVE;

  private long[] counts = new long[BUCKETS];
  private long total;

  @Override
  public boolean isZero() {
    return total == 0;
  }

  @Override
  public BatchLatencies copy() {
    BatchLatencies copy = new BatchLatencies();
    copy.counts = counts.clone();
    copy.total = total;
    return copy;
  }

  @Override
  public void reset() {
    counts = new long[BUCKETS];
    total = 0;
  }

  /** One batch's run time, in nanoseconds. */
  @Override
  public void add(Long nanos) {
    double micros = Math.max(1.0, nanos / 1000.0);
    int bucket = (int) Math.min(BUCKETS - 1, Math.floor(Math.log(micros) / Math.log(2) * PER_OCTAVE));
    counts[bucket]++;
    total++;
  }

  @Override
  public void merge(AccumulatorV2<Long, BatchLatencies> other) {
    BatchLatencies that = (BatchLatencies) other;
    for (int i = 0; i < BUCKETS; i++) {
      counts[i] += that.counts[i];
    }
    total += that.total;
  }

  @Override
  public BatchLatencies value() {
    return this;
  }

  /**
   * What the Spark UI and its status listener print for this accumulator's value (the value is the
   * histogram itself, so AccumulatorV2's own toString would recurse).
   */
  @Override
  public String toString() {
    return total == 0 ? "no batches" : String.format(java.util.Locale.ROOT, "%d batches, p50 %.2f ms, p99 %.2f ms",
        total, percentileMillis(0.5), percentileMillis(0.99));
  }

  /** Batches counted. */
  public long count() {
    return total;
  }

  /**
   * The run time, in milliseconds, that a fraction {@code quantile} (0.5 for the median, 0.99) of
   * the batches did not exceed: the upper edge of its bucket. NaN when no batch ran.
   */
  public double percentileMillis(double quantile) {
    if (total == 0) {
      return Double.NaN;
    }
    long rank = (long) Math.ceil(quantile * total);
    long seen = 0;
    for (int i = 0; i < BUCKETS; i++) {
      seen += counts[i];
      if (seen >= Math.max(rank, 1)) {
        return Math.pow(2, (i + 1) / (double) PER_OCTAVE) / 1000.0;
      }
    }
    return Math.pow(2, BUCKETS / (double) PER_OCTAVE) / 1000.0;
  }
}
