package io.github.sparkinfer.spark.registry;

import java.io.Serializable;
import java.util.Objects;

/**
 * How a model's rows are batched and run, as resolved on the driver: the most rows of one call on
 * any device and on a CPU, ONNX Runtime's intra-op threads (0 follows the task's CPUs) and the most
 * bytes one batch's buffers may hold. Immutable; part of a {@link ModelBinding}.
 */
public final class BatchSettings implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int batchSize;
  private final int cpuBatchSize;
  private final int intraOpThreads;
  private final long maxBatchBytes;

  BatchSettings(int batchSize, int cpuBatchSize, int intraOpThreads, long maxBatchBytes) {
    this.batchSize = batchSize;
    this.cpuBatchSize = cpuBatchSize;
    this.intraOpThreads = intraOpThreads;
    this.maxBatchBytes = maxBatchBytes;
  }

  /** The most rows of one model call, on any device (buffers never grow past it). */
  public int batchSize() {
    return batchSize;
  }

  /** Rows of one model call on a CPU (at most {@link #batchSize()}). */
  public int cpuBatchSize() {
    return cpuBatchSize;
  }

  /** 0 means "follow spark.task.cpus". */
  public int intraOpThreads() {
    return intraOpThreads;
  }

  /** The most bytes one batch's buffers may hold (spark.sparkinfer.maxBatchBytes). */
  public long maxBatchBytes() {
    return maxBatchBytes;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof BatchSettings)) {
      return false;
    }
    BatchSettings that = (BatchSettings) other;
    return batchSize == that.batchSize && cpuBatchSize == that.cpuBatchSize && intraOpThreads == that.intraOpThreads
        && maxBatchBytes == that.maxBatchBytes;
  }

  @Override
  public int hashCode() {
    return Objects.hash(batchSize, cpuBatchSize, intraOpThreads, maxBatchBytes);
  }

  @Override
  public String toString() {
    return "batchSize " + batchSize + " (CPU " + cpuBatchSize + "), intraOpThreads " + intraOpThreads
        + ", maxBatchBytes " + maxBatchBytes;
  }
}
