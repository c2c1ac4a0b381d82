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
  /** Batches run again alone (the device's other runs waited for) after running out of its memory beside them. */
  public final SQLMetric memoryRetriesAlone;
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
  /** Batches that held texts of more than one task (cross-task batching), counted by the task that ran them. */
  public final SQLMetric crossTaskBatches;
  /** generate() batches that went through the Java decode loop where the loop inside ONNX Runtime was chosen. */
  public final SQLMetric decodeFallbackBatches;
  final SQLMetric fallbackTasks;
  /** Where the tasks ran their model, a bounded summary (not a named accumulator: see the class). */
  final DeviceBindingSummary deviceBindings;
  /** Each batch's model run time, for p50 and p99 over the node's tasks. */
  public final BatchLatencies batchLatencies;

  /**
   * The node's metrics by name, as BatchPredictExec declares them (the one list, with each one's
   * description in the Spark UI): a missing metric is a programming error, named here; the text
   * metrics are absent for other models.
   */
  public PredictionMetrics(
      java.util.Map<String, SQLMetric> metrics, DeviceBindingSummary deviceBindings, BatchLatencies batchLatencies) {
    this.outputRows = required(metrics, "numOutputRows");
    this.modelRows = required(metrics, "modelRows");
    this.nullRows = required(metrics, "nullRows");
    this.errorRows = required(metrics, "errorRows");
    this.batches = required(metrics, "batches");
    this.bufferBytes = required(metrics, "bufferBytes");
    this.memorySplits = required(metrics, "memorySplits");
    this.memoryRetriesAlone = required(metrics, "memoryRetriesAlone");
    this.modelTime = required(metrics, "modelTime");
    this.deviceWaitTime = required(metrics, "deviceWaitTime");
    this.fallbackTasks = required(metrics, "fallbackTasks");
    this.tokens = metrics.get("tokens");
    this.paddingTokens = metrics.get("paddingTokens");
    this.paddingPercent = metrics.get("paddingPercent");
    this.tokenizeTime = metrics.get("tokenizeTime");
    this.tokenizerWaitTime = metrics.get("tokenizerWaitTime");
    this.crossTaskBatches = metrics.get("crossTaskBatches");
    this.decodeFallbackBatches = metrics.get("decodeFallbackBatches");
    this.deviceBindings = java.util.Objects.requireNonNull(deviceBindings, "deviceBindings");
    this.batchLatencies = java.util.Objects.requireNonNull(batchLatencies, "batchLatencies");
  }

  private static SQLMetric required(java.util.Map<String, SQLMetric> metrics, String name) {
    SQLMetric metric = metrics.get(name);
    if (metric == null) {
      throw new IllegalArgumentException("No metric '" + name + "' among the node's metrics " + metrics.keySet());
    }
    return metric;
  }
}
