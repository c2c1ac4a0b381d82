package io.github.sparkinfer.spark.batch;

import org.apache.spark.sql.execution.metric.SQLMetric;

/** The SQL metrics one batch-prediction node reports in the Spark UI. */
public final class PredictionMetrics implements java.io.Serializable {
  private static final long serialVersionUID = 1L;

  public final SQLMetric outputRows;
  public final SQLMetric modelRows;
  public final SQLMetric nullRows;
  /** Rows the model could not take, given a null result (onError=null). */
  public final SQLMetric errorRows;
  public final SQLMetric batches;
  /** Peak bytes of one task's batch buffers (a size metric: per task, summed over tasks). */
  public final SQLMetric bufferBytes;
  /** Batches run again in halves because they ran out of device memory. */
  public final SQLMetric memorySplits;
  /** Time in the model's runs, the copies to and from the device included, not the wait for a run permit. */
  public final SQLMetric modelTime;
  /** Time tasks waited for a run permit of their device (spark.sparkinfer.device.concurrentRuns). */
  public final SQLMetric deviceWaitTime;
  // Text models only; null otherwise.
  public final SQLMetric tokens;
  public final SQLMetric paddingTokens;
  public final SQLMetric paddingPercent;
  public final SQLMetric tokenizeTime;
  /** Time tasks waited for their tokenizer thread to finish the next window. */
  public final SQLMetric tokenizerWaitTime;
  final SQLMetric fallbackTasks;
  /** Where the tasks ran their model, a bounded summary (not a named accumulator: see the class). */
  final DeviceBindingSummary deviceBindings;
  /** Each batch's model run time, for p50 and p99 over the node's tasks. */
  public final BatchLatencies batchLatencies;

  public PredictionMetrics(
      SQLMetric outputRows,
      SQLMetric modelRows,
      SQLMetric nullRows,
      SQLMetric errorRows,
      SQLMetric batches,
      SQLMetric bufferBytes,
      SQLMetric memorySplits,
      SQLMetric modelTime,
      SQLMetric deviceWaitTime,
      SQLMetric tokens,
      SQLMetric paddingTokens,
      SQLMetric paddingPercent,
      SQLMetric tokenizeTime,
      SQLMetric tokenizerWaitTime,
      SQLMetric fallbackTasks,
      DeviceBindingSummary deviceBindings,
      BatchLatencies batchLatencies) {
    this.outputRows = outputRows;
    this.modelRows = modelRows;
    this.nullRows = nullRows;
    this.errorRows = errorRows;
    this.batches = batches;
    this.bufferBytes = bufferBytes;
    this.memorySplits = memorySplits;
    this.modelTime = modelTime;
    this.deviceWaitTime = deviceWaitTime;
    this.tokens = tokens;
    this.paddingTokens = paddingTokens;
    this.paddingPercent = paddingPercent;
    this.tokenizeTime = tokenizeTime;
    this.tokenizerWaitTime = tokenizerWaitTime;
    this.fallbackTasks = fallbackTasks;
    this.deviceBindings = deviceBindings;
    this.batchLatencies = batchLatencies;
  }
}
