package io.github.sparkinfer.spark.batch;

import ai.onnxruntime.OrtException;
import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.spark.registry.ModelBinding;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one retry path of every model function (predict, embed and the next ones). A batch ONNX
 * Runtime rejects is run again in halves, down to single rows, so the rows it cannot take are found
 * and the others still get their results.
 *
 * <p>A batch that ran out of device memory while other runs could share the device (an accelerator
 * with more than one run permit) is first run again alone: it waits until the device's other runs
 * are done and holds the device while it runs. Only when it fails alone too is it split, and the
 * size that failed lowers later batches on that device ({@link DeviceMemory}); a single row out of
 * memory alone fails the task, naming the row. Without this a row could fail for memory another
 * task's batch held at that moment (measured on an H100: "Available memory of 0" for one row).
 */
public final class RetryInHalves {
  private static final Logger LOG = LoggerFactory.getLogger(RetryInHalves.class);

  /** A formed batch whose positions can run in parts. */
  public interface Batch {
    /**
     * Runs positions [from, to). {@code whole}: the batch as formed, on its first run (buffers in
     * place); {@code alone}: hold the device alone while running (see
     * {@link ExecutorSessions#run}).
     */
    void run(int from, int to, boolean whole, boolean alone) throws OrtException;

    /** The size of positions [from, to) in {@link #memoryUnit()}, which {@link DeviceMemory} limits. */
    long memorySize(int from, int to);

    /** What {@link #memorySize} counts: "rows", "padded tokens". */
    String memoryUnit();

    /** Where a position's row is, for an error: "row 5 of partition 2 (31 tokens)". */
    String describe(int position);

    /** ONNX Runtime rejected the row at {@code position} alone, not for memory: the row's error. */
    void reject(int position, OrtException failure);
  }

  private final ModelBinding binding;
  private final LoadedModel model;
  private final PredictionMetrics metrics;
  private boolean ranOutOfMemory;

  public RetryInHalves(ModelBinding binding, LoadedModel model, PredictionMetrics metrics) {
    this.binding = binding;
    this.model = model;
    this.metrics = metrics;
  }

  /**
   * Runs positions [0, count) of {@code batch}, in parts where needed. Returns whether a part was
   * split for memory, so the caller forms later batches under the lowered limit.
   */
  public boolean run(Batch batch, int count) {
    ranOutOfMemory = false;
    if (count > 0) {
      runOrSplit(batch, 0, count, true);
    }
    return ranOutOfMemory;
  }

  private void runOrSplit(Batch batch, int from, int to, boolean whole) {
    OrtException failure;
    try {
      batch.run(from, to, whole, false);
      return;
    } catch (OrtException e) {
      failure = e;
    }
    boolean outOfMemory = DeviceMemory.isOutOfMemory(failure);
    if (outOfMemory && ExecutorSessions.sharesDevice(model)) {
      // Other runs may have held the memory: the same rows again, alone on the device, before any split.
      metrics.memoryRetriesAlone.add(1);
      LOG.debug("Model '{}' ran out of memory on {} with {} {} beside other runs; running it again alone",
          binding.modelName(), model.device(), batch.memorySize(from, to), batch.memoryUnit());
      try {
        batch.run(from, to, whole, true);
        return;
      } catch (OrtException e) {
        failure = e;
        outOfMemory = DeviceMemory.isOutOfMemory(e);
      }
    }
    if (to - from == 1) {
      if (outOfMemory) {
        throw DeviceMemory.tooLarge(binding.modelName(), model.device(), batch.describe(from) + " alone", failure);
      }
      batch.reject(from, failure);
      return;
    }
    if (outOfMemory) {
      DeviceMemory.ranOutOfMemory(binding.modelName(), binding.source().uri(), model, batch.memorySize(from, to),
          batch.memoryUnit(), metrics, failure);
      ranOutOfMemory = true;
    }
    int middle = (from + to) >>> 1;
    runOrSplit(batch, from, middle, false);
    runOrSplit(batch, middle, to, false);
  }
}
