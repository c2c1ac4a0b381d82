package io.github.sparkinfer.spark.batch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

/** Per-batch run time percentiles: buckets about 9 % wide, merged across tasks by their counts. */
class TestBatchLatencies {
  @Test
  void percentilesOfKnownRunTimes() {
    BatchLatencies first = new BatchLatencies();
    BatchLatencies second = new BatchLatencies();
    for (int i = 0; i < 98; i++) {
      first.add(2_000_000L);  // 2 ms
    }
    second.add(50_000_000L);  // 50 ms
    second.add(400_000_000L);  // 400 ms
    first.merge(second);
    assertThat(first.count()).isEqualTo(100);
    // The upper edge of the bucket that holds 2 ms: within 9 % above it.
    assertThat(first.percentileMillis(0.5)).isBetween(2.0, 2.0 * 1.091);
    assertThat(first.percentileMillis(0.98)).isBetween(2.0, 2.0 * 1.091);
    assertThat(first.percentileMillis(0.99)).isBetween(50.0, 50.0 * 1.091);
    assertThat(first.percentileMillis(1.0)).isBetween(400.0, 400.0 * 1.091);
    assertThat(new BatchLatencies().percentileMillis(0.5)).isNaN();
    BatchLatencies copy = first.copy();
    first.reset();
    assertThat(first.isZero()).isTrue();
    assertThat(copy.percentileMillis(0.5)).isCloseTo(first.isZero() ? copy.percentileMillis(0.5) : 0, within(0.0));
  }
}
