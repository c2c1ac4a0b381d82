package io.github.sparkinfer.compression;

/**
 * Where {@link PipelineSplit} cuts a graph's node sequence: into K non-empty runs, the heaviest
 * within 10 % of the fewest weight bytes possible and the runs as even as that allows.
 */
final class StageCuts {
  private StageCuts() {}

  /**
   * Cuts the node sequence into {@code count} non-empty runs whose largest weight is as small as it
   * can be (binary search on that largest weight): the slowest stage sets a pipeline's pace.
   */
  static int[] assign(long[] weights, int count) {
    int n = weights.length;
    long total = 0;
    long heaviest = 0;
    for (long weight : weights) {
      total += weight;
      heaviest = Math.max(heaviest, weight);
    }
    // Without weights, nodes stand for work.
    long[] cost = new long[n];
    for (int i = 0; i < n; i++) {
      cost[i] = total == 0 ? 1 : weights[i];
    }
    long low = total == 0 ? 1 : heaviest;
    long high = total == 0 ? n : total;
    while (low < high) {
      long middle = low + (high - low) / 2;
      if (runsNeeded(cost, middle) <= count) {
        high = middle;
      } else {
        low = middle + 1;
      }
    }
    // 10 % above the smallest heaviest stage: with one very heavy node (an embedding table) exactly
    // that limit leaves the small nodes before it a stage of their own and every other node another.
    long slack = low + low / 10;
    return n <= BALANCED_NODES_MAX ? balanced(cost, count, slack) : greedy(cost, count, low);
  }

  /** Graphs up to this many nodes are cut by {@link #balanced}; larger ones greedily. */
  private static final int BALANCED_NODES_MAX = 5000;

  /**
   * Within {@code limit} per stage, the cut whose stage weights are most even (least sum of
   * squares), by dynamic programming.
   */
  private static int[] balanced(long[] cost, int count, long limit) {
    int n = cost.length;
    long[] prefix = new long[n + 1];
    for (int i = 0; i < n; i++) {
      prefix[i + 1] = prefix[i] + cost[i];
    }
    double[][] best = new double[count + 1][n + 1];
    int[][] cut = new int[count + 1][n + 1];
    for (double[] row : best) {
      java.util.Arrays.fill(row, Double.POSITIVE_INFINITY);
    }
    best[0][0] = 0;
    for (int k = 1; k <= count; k++) {
      for (int j = k; j <= n - (count - k); j++) {
        for (int i = j - 1; i >= k - 1; i--) {
          long weight = prefix[j] - prefix[i];
          if (weight > limit) {
            break;
          }
          double value = best[k - 1][i] + (double) weight * weight;
          if (value < best[k][j]) {
            best[k][j] = value;
            cut[k][j] = i;
          }
        }
      }
    }
    int[] stageOf = new int[n];
    int end = n;
    for (int k = count; k >= 1; k--) {
      int start = cut[k][end];
      for (int i = start; i < end; i++) {
        stageOf[i] = k - 1;
      }
      end = start;
    }
    return stageOf;
  }

  /** Each run filled up to {@code limit}, leaving one node for each run still to start. */
  private static int[] greedy(long[] cost, int count, long limit) {
    int n = cost.length;
    int[] stageOf = new int[n];
    int stage = 0;
    long filled = 0;
    int members = 0;
    for (int i = 0; i < n; i++) {
      boolean full = filled > 0 && filled + cost[i] > limit;
      boolean mustStart = n - i == count - 1 - stage;
      if ((full || mustStart) && members > 0 && stage < count - 1) {
        stage++;
        filled = 0;
        members = 0;
      }
      stageOf[i] = stage;
      filled += cost[i];
      members++;
    }
    return stageOf;
  }

  private static int runsNeeded(long[] cost, long limit) {
    int runs = 1;
    long filled = 0;
    for (long value : cost) {
      if (filled > 0 && filled + value > limit) {
        runs++;
        filled = 0;
      }
      filled += value;
    }
    return runs;
  }

}
