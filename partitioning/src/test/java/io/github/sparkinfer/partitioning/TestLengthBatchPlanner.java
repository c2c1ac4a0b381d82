package io.github.sparkinfer.partitioning;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TestLengthBatchPlanner {

  @Test
  void everyRowOnceLongestFirstWithinBudgets() {
    SplittableRandom random = new SplittableRandom(3);
    int[] lengths = new int[1000];
    for (int i = 0; i < lengths.length; i++) {
      lengths[i] = 3 + random.nextInt(250);
    }
    LengthBatchPlanner planner = LengthBatchPlanner.builder().maxRows(32).tokenBudget(4096).build();
    List<int[]> batches = planner.plan(lengths, 900);
    int[] seen = new int[1000];
    int previousLongest = Integer.MAX_VALUE;
    for (int[] batch : batches) {
      assertThat(batch.length).isBetween(1, 32);
      int longest = lengths[batch[0]];
      assertThat(longest).isLessThanOrEqualTo(previousLongest);
      previousLongest = longest;
      assertThat((long) batch.length * longest).isLessThanOrEqualTo(4096);
      for (int row : batch) {
        assertThat(lengths[row]).isLessThanOrEqualTo(longest).isGreaterThanOrEqualTo((int) Math.ceil(longest * 0.8));
        seen[row]++;
      }
    }
    assertThat(Arrays.copyOf(seen, 900)).containsOnly(1);
    assertThat(Arrays.copyOfRange(seen, 900, 1000)).containsOnly(0);
  }

  @Test
  void sortingCutsPaddingAgainstFixedOrderBatches() {
    SplittableRandom random = new SplittableRandom(9);
    int[] lengths = new int[2048];
    for (int i = 0; i < lengths.length; i++) {
      lengths[i] = 5 + random.nextInt(250);
    }
    long real = Arrays.stream(lengths).sum();
    long sortedPadded = 0;
    for (int[] batch : LengthBatchPlanner.builder().maxRows(32).tokenBudget(1 << 20).build().plan(lengths, lengths.length)) {
      sortedPadded += (long) batch.length * lengths[batch[0]];
    }
    long fixedPadded = 0;
    for (int start = 0; start < lengths.length; start += 32) {
      int longest = Arrays.stream(lengths, start, start + 32).max().orElseThrow();
      fixedPadded += 32L * longest;
    }
    // Uniform lengths: fixed-order batches pad to near the maximum, sorted ones almost not at all.
    assertThat((double) sortedPadded / real).isLessThan(1.05);
    assertThat((double) fixedPadded / real).isGreaterThan(1.7);
  }

  @Test
  void aWindowThatFitsTheBudgetIsStillSplitByLength() {
    // All 8 rows fit 8192 tokens at once, but one batch would pad the short ones to 100.
    int[] lengths = {100, 95, 90, 50, 48, 45, 10, 9};
    List<int[]> batches = LengthBatchPlanner.builder().build().plan(lengths, lengths.length);
    assertThat(batches).containsExactly(new int[] {0, 1, 2}, new int[] {3, 4, 5}, new int[] {6, 7});
    assertThat(LengthBatchPlanner.builder().maxPadding(1).build().plan(lengths, lengths.length)).hasSize(1);
    assertThatThrownBy(() -> LengthBatchPlanner.builder().maxPadding(1.5))
        .hasMessageContaining("Invalid maximum padding 1.5");
  }

  @Test
  void aRowLongerThanTheBudgetRunsAlone() {
    List<int[]> batches = LengthBatchPlanner.builder().maxRows(8).tokenBudget(100).build()
        .plan(new int[] {500, 10, 10, 10}, 4);
    // 500 then three rows of 10: the padding rule and the budget both start a new batch.
    assertThat(batches).hasSize(2);
    assertThat(batches.get(0)).containsExactly(0);
    assertThat(batches.get(1)).containsExactly(1, 2, 3);
  }

  @Test
  void equalLengthsKeepRowOrderAndEmptyWindowHasNoBatch() {
    assertThat(LengthBatchPlanner.builder().maxRows(2).build().plan(new int[] {4, 4, 4}, 3))
        .containsExactly(new int[] {0, 1}, new int[] {2});
    assertThat(LengthBatchPlanner.builder().build().plan(new int[0], 0)).isEmpty();
  }

  @Test
  void invalidSettingsAreRejected() {
    assertThatThrownBy(() -> LengthBatchPlanner.builder().maxRows(0))
        .hasMessageContaining("Invalid maximum rows per batch 0");
    assertThatThrownBy(() -> LengthBatchPlanner.builder().tokenBudget(0))
        .hasMessageContaining("Invalid token budget 0");
    assertThatThrownBy(() -> LengthBatchPlanner.builder().build().plan(new int[] {-1}, 1))
        .hasMessageContaining("Invalid length -1 of row 0");
  }
}
