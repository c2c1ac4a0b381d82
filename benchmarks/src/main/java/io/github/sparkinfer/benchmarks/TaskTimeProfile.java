package io.github.sparkinfer.benchmarks;

import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.execution.metric.SQLMetric;

/**
 * Where one query's task time went, from its batch-prediction node's metrics: the model's runs
 * (copies to and from the device included), waiting for a run permit of the device, waiting for
 * the tokenizer thread, and the rest (Java: reading rows, writing input buffers, pooling, output
 * rows, and Spark's own per-task work). Task time is wall time × task slots, all slots busy; the
 * tokenizer's own time runs on a helper thread per task and is shown beside.
 */
final class TaskTimeProfile {
  private final double taskSeconds;
  private final double runSeconds;
  private final double deviceWaitSeconds;
  private final double tokenizerWaitSeconds;
  private final double tokenizeSeconds;
  private final long batches;
  private final long modelRows;

  private TaskTimeProfile(double taskSeconds, double runSeconds, double deviceWaitSeconds,
      double tokenizerWaitSeconds, double tokenizeSeconds, long batches, long modelRows) {
    this.taskSeconds = taskSeconds;
    this.runSeconds = runSeconds;
    this.deviceWaitSeconds = deviceWaitSeconds;
    this.tokenizerWaitSeconds = tokenizerWaitSeconds;
    this.tokenizeSeconds = tokenizeSeconds;
    this.batches = batches;
    this.modelRows = modelRows;
  }

  /** The profile of {@code executed}, one pass of which took {@code wallSeconds} on {@code slots} task slots. */
  static TaskTimeProfile of(Dataset<?> executed, double wallSeconds, int slots) {
    double[] seconds = new double[4];
    long[] counts = new long[2];
    QueryRunner.visit(executed.queryExecution().executedPlan(), node -> {
      scala.collection.Map<String, SQLMetric> metrics = node.metrics();
      if (metrics.contains("modelTime") && metrics.contains("batches")) {
        seconds[0] += metrics.apply("modelTime").value() / 1e9;
        seconds[1] += metrics.contains("deviceWaitTime") ? metrics.apply("deviceWaitTime").value() / 1e9 : 0;
        seconds[2] += metrics.contains("tokenizerWaitTime") ? metrics.apply("tokenizerWaitTime").value() / 1e9 : 0;
        seconds[3] += metrics.contains("tokenizeTime") ? metrics.apply("tokenizeTime").value() / 1e9 : 0;
        counts[0] += metrics.apply("batches").value();
        counts[1] += metrics.apply("modelRows").value();
      }
    });
    return new TaskTimeProfile(wallSeconds * slots, seconds[0], seconds[1], seconds[2], seconds[3], counts[0],
        counts[1]);
  }

  /**
   * Sets every metric of {@code executed}'s plan (and its nodes' batch latencies) back to zero, so
   * that passes after a first one (which compiles the plan's code) are measured alone.
   */
  static void reset(Dataset<?> executed) {
    QueryRunner.visit(executed.queryExecution().executedPlan(), node -> {
      scala.collection.Iterator<SQLMetric> metrics = node.metrics().valuesIterator();
      while (metrics.hasNext()) {
        metrics.next().reset();
      }
      if (node instanceof io.github.sparkinfer.spark.plan.BatchPredictExec) {
        ((io.github.sparkinfer.spark.plan.BatchPredictExec) node).batchLatencies().reset();
      }
    });
  }

  static List<String> header() {
    return List.of("| query | task time s | model runs | waiting for the device | waiting for the tokenizer"
        + " | the rest (Java) | tokenizing, helper threads | batches × mean rows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|");
  }

  String row(String query) {
    double rest = Math.max(0, taskSeconds - runSeconds - deviceWaitSeconds - tokenizerWaitSeconds);
    return String.format(Locale.ROOT, "| %s | %.1f | %s | %s | %s | %s | %.1f s | %,d × %.0f |", query, taskSeconds,
        share(runSeconds), share(deviceWaitSeconds), share(tokenizerWaitSeconds), share(rest), tokenizeSeconds,
        batches, batches == 0 ? 0.0 : (double) modelRows / batches);
  }

  private String share(double seconds) {
    return String.format(Locale.ROOT, "%.1f s (%.0f %%)", seconds, 100 * seconds / taskSeconds);
  }
}
