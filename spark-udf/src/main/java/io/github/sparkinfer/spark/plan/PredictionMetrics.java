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

  PredictionMetrics(
      SQLMetric outputRows,
      SQLMetric modelRows,
      SQLMetric nullRows,
      SQLMetric batches,
      SQLMetric modelTime) {
    this.outputRows = outputRows;
    this.modelRows = modelRows;
    this.nullRows = nullRows;
    this.batches = batches;
    this.modelTime = modelTime;
  }
}
