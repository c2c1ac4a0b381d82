package io.github.sparkinfer.partitioning;

import java.util.ArrayList;
import java.util.List;

/**
 * Forms model batches from a window of rows by their token length, so that rows of similar length
 * share a batch and padding stays small. Rows are taken longest first; each batch holds at most
 * {@code maxRows} rows, at most {@code tokenBudget} padded tokens (rows × its longest row), only
 * rows at least {@code 1 - maxPadding} as long as its longest row, and always at least one row.
 * Immutable; build with {@link #builder()}.
 */
public final class LengthBatchPlanner {
  private final int maxRows;
  private final long tokenBudget;
  private final double maxPadding;

  private LengthBatchPlanner(int maxRows, long tokenBudget, double maxPadding) {
    this.maxRows = maxRows;
    this.tokenBudget = tokenBudget;
    this.maxPadding = maxPadding;
  }

  public static Builder builder() {
    return new Builder();
  }

  public int maxRows() {
    return maxRows;
  }

  public long tokenBudget() {
    return tokenBudget;
  }

  public double maxPadding() {
    return maxPadding;
  }

  /**
   * Plans batches for rows {@code 0 .. count-1} of {@code lengths}: each batch is the row indices
   * it holds, longest first. Every row is in exactly one batch.
   */
  public List<int[]> plan(int[] lengths, int count) {
    if (count < 0 || count > lengths.length) {
      throw new IllegalArgumentException("Invalid row count " + count + " for " + lengths.length + " lengths");
    }
    int[] order = byLengthDescending(lengths, count);
    List<int[]> batches = new ArrayList<>();
    int start = 0;
    while (start < count) {
      long longest = Math.max(lengths[order[start]], 1);
      int rows = (int) Math.max(1, Math.min(maxRows, tokenBudget / longest));
      // Without this a window that fits the budget would be one batch padded to its longest row.
      double shortestAllowed = longest * (1 - maxPadding);
      int end = start + 1;
      while (end < count && end - start < rows && lengths[order[end]] >= shortestAllowed) {
        end++;
      }
      int[] batch = new int[end - start];
      System.arraycopy(order, start, batch, 0, batch.length);
      batches.add(batch);
      start = end;
    }
    return batches;
  }

  /** Counting sort when lengths are small (token counts are), else a stable boxed-free sort. */
  private static int[] byLengthDescending(int[] lengths, int count) {
    int longest = 0;
    for (int i = 0; i < count; i++) {
      if (lengths[i] < 0) {
        throw new IllegalArgumentException("Invalid length " + lengths[i] + " of row " + i);
      }
      longest = Math.max(longest, lengths[i]);
    }
    int[] starts = new int[longest + 2];
    for (int i = 0; i < count; i++) {
      starts[longest - lengths[i] + 1]++;
    }
    for (int i = 1; i < starts.length; i++) {
      starts[i] += starts[i - 1];
    }
    int[] order = new int[count];
    for (int i = 0; i < count; i++) {
      order[starts[longest - lengths[i]]++] = i;
    }
    return order;
  }

  @Override
  public String toString() {
    return "LengthBatchPlanner{maxRows=" + maxRows + ", tokenBudget=" + tokenBudget + ", maxPadding=" + maxPadding + "}";
  }

  public static final class Builder {
    private int maxRows = 64;
    private long tokenBudget = 8192;
    private double maxPadding = 0.2;

    private Builder() {}

    /** Most rows in one batch. */
    public Builder maxRows(int rows) {
      if (rows < 1) {
        throw new IllegalArgumentException("Invalid maximum rows per batch " + rows + ": must be at least 1");
      }
      this.maxRows = rows;
      return this;
    }

    /** Most padded tokens (rows × longest row) in one batch; a longer single row still runs alone. */
    public Builder tokenBudget(long tokens) {
      if (tokens < 1) {
        throw new IllegalArgumentException("Invalid token budget " + tokens + ": must be at least 1");
      }
      this.tokenBudget = tokens;
      return this;
    }

    /**
     * Largest share of a row's batch slots that may be padding: a row joins a batch only if it has
     * at least {@code 1 - fraction} of the batch's longest row. 1 turns this off.
     */
    public Builder maxPadding(double fraction) {
      if (!(fraction >= 0 && fraction <= 1)) {
        throw new IllegalArgumentException("Invalid maximum padding " + fraction + ": must be between 0 and 1");
      }
      this.maxPadding = fraction;
      return this;
    }

    public LengthBatchPlanner build() {
      return new LengthBatchPlanner(maxRows, tokenBudget, maxPadding);
    }
  }
}
