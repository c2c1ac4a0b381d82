package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.registry.ModelBinding;
import io.github.sparkinfer.spark.registry.RowErrorPolicy;
import org.apache.spark.TaskContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One task's rows that its model could not take, under the binding's row error policy: with fail
 * the task fails, naming the row (its partition and its index there); with null the row's reason
 * is kept for its result, counted in the node's metric, and the first of the task is logged at
 * WARN, so that no row is dropped in silence.
 */
public final class RowErrors {
  private static final Logger LOG = LoggerFactory.getLogger(RowErrors.class);

  private final ModelBinding binding;
  private final PredictionMetrics metrics;
  private final int partition;
  private long count;

  public RowErrors(ModelBinding binding, PredictionMetrics metrics) {
    this.binding = binding;
    this.metrics = metrics;
    TaskContext task = TaskContext.get();
    this.partition = task == null ? -1 : task.partitionId();
  }

  /** Where a row is: its index among the rows of its partition that reached this call. */
  public String describeRow(long rowIndex) {
    return "row " + rowIndex + " of partition " + partition;
  }

  /**
   * The model cannot take row {@code rowIndex}, for {@code reason} (which names the model and the
   * input). Throws under fail; under null counts it and returns the reason for its result.
   */
  public synchronized String reject(long rowIndex, String reason, Throwable cause) {
    if (binding.onError() == RowErrorPolicy.FAIL) {
      throw new PredictionException(reason + " (" + describeRow(rowIndex) + "). To give such rows a null result"
          + " and go on, SET spark.sparkinfer.model." + binding.modelName() + ".onError=null, or call "
          + "predict_with_error()/embed_with_error()/generate_with_error() to see each row's reason", cause);
    }
    count++;
    metrics.errorRows.add(1);
    if (count == 1) {
      LOG.warn("Model '{}': {} gets a null result (onError=null): {}. Further such rows of this task are counted"
          + " in the node's metric \"rows the model could not take\"", binding.modelName(), describeRow(rowIndex), reason);
    }
    return reason;
  }

  /** Rows of this task rejected so far. */
  public synchronized long count() {
    return count;
  }
}
