package io.github.sparkinfer.spark.plan;

import org.apache.spark.sql.execution.metric.SQLMetric;

/** The SQL metrics one batch-prediction node reports in the Spark UI. */
final class PredictionMetrics implements java.io.Serializable {
  private static final long serialVersionUID = 1L;

  final SQLMetric outputRows;
  final SQLMetric modelRows;
  final SQLMetric nullRows;
  final SQLMetric batches;
  final SQLMetric modelTime;
  // Text models only; null otherwise.
  final SQLMetric tokens;
  final SQLMetric paddingTokens;
  final SQLMetric paddingPercent;
  final SQLMetric tokenizeTime;
  final SQLMetric fallbackTasks;
  final org.apache.spark.util.CollectionAccumulator<String> deviceBindings;

  PredictionMetrics(
      SQLMetric outputRows,
      SQLMetric modelRows,
      SQLMetric nullRows,
      SQLMetric batches,
      SQLMetric modelTime,
      SQLMetric tokens,
      SQLMetric paddingTokens,
      SQLMetric paddingPercent,
      SQLMetric tokenizeTime,
      SQLMetric fallbackTasks,
      org.apache.spark.util.CollectionAccumulator<String> deviceBindings) {
    this.outputRows = outputRows;
    this.modelRows = modelRows;
    this.nullRows = nullRows;
    this.batches = batches;
    this.modelTime = modelTime;
    this.tokens = tokens;
    this.paddingTokens = paddingTokens;
    this.paddingPercent = paddingPercent;
    this.tokenizeTime = tokenizeTime;
    this.fallbackTasks = fallbackTasks;
    this.deviceBindings = deviceBindings;
  }
}
