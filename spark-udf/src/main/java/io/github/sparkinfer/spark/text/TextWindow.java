package io.github.sparkinfer.spark.text;

import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;

/**
 * One window of a task's rows, with its texts and, once run, its vectors in row order. With
 * cross-task batching ({@link TextBatchQueue}) other tasks' threads run its rows and write their
 * vectors and rejections here; the owning task reads them once {@link #unfinished} is zero (the
 * queue's lock orders the writes before that read).
 */
final class TextWindow {
  final InternalRow[] rows;
  final String[] texts;
  int count;
  /** The per-task path's tokenizing of the whole window, on the task's helper thread. */
  Future<long[][]> tokens;
  /** Each row's token ids once tokenized; null for a null text or one the tokenizer failed on. */
  long[][] ids;
  float[] vectors = new float[0];
  int dimension;
  boolean[] isNull;
  // The reason a row got no vector (onError=null), else null; and the first row's index in the partition.
  final String[] errors;
  /** Why the model could not take a row, found by whichever thread ran it; the owner applies its row error policy. */
  final String[] rejections;
  final Throwable[] rejectionCauses;
  long firstRow;
  /** The owning task (null outside Spark): a killed owner's rows are dropped as soon as a runner sees them. */
  final TaskContext task;
  /** The owning task's partition, for errors raised on other tasks' threads. */
  final int partition;
  /** Rows not yet through the tokenizer and the model (cross-task batching). */
  final AtomicInteger unfinished = new AtomicInteger();
  final AtomicLong tokenizeNanos = new AtomicLong();
  /** The error that failed this window's rows on another thread: the owner throws it. */
  volatile RuntimeException failure;
  /** Set when the owning task ended: its rows still queued are dropped, its results are not read. */
  volatile boolean withdrawn;

  /** The task's runner this window belongs to: batches whose windows have several owners mix tasks. */
  final Object owner;

  TextWindow(int capacity, Object owner) {
    this.owner = owner;
    rows = new InternalRow[capacity];
    texts = new String[capacity];
    isNull = new boolean[capacity];
    errors = new String[capacity];
    rejections = new String[capacity];
    rejectionCauses = new Throwable[capacity];
    ids = new long[capacity][];
    task = TaskContext.get();
    partition = task == null ? -1 : task.partitionId();
  }

  /** Clears the last window's state before reading rows into it again. */
  void reset(long firstRow) {
    this.firstRow = firstRow;
    count = 0;
    tokens = null;
    failure = null;
    tokenizeNanos.set(0);
    dimension = 0;
    java.util.Arrays.fill(errors, null);
    java.util.Arrays.fill(rejections, null);
    java.util.Arrays.fill(rejectionCauses, null);
    java.util.Arrays.fill(ids, null);
  }

  /** "row 5 of partition 2", as {@link io.github.sparkinfer.spark.batch.RowErrors#describeRow} says it. */
  String describeRow(int row) {
    return "row " + (firstRow + row) + " of partition " + partition;
  }

  /** Room for this window's vectors of {@code width} values; the first batch to run sizes it. */
  synchronized float[] vectorsOf(String modelName, int width) {
    if (dimension != 0 && dimension != width) {
      // One array of one width: a batch of another width would misplace the vectors.
      throw new io.github.sparkinfer.spark.PredictionException("Model '" + modelName + "' returned embeddings of "
          + width + " values for one batch and of " + dimension + " for an earlier one: an embedding model must"
          + " give every text the same width");
    }
    if (vectors.length < count * width) {
      // Room for the rows this window holds, not its capacity: memory follows the data.
      vectors = new float[count * width];
    }
    dimension = width;
    return vectors;
  }

  /** Whether nobody wants this window's results any more: its task ended or is being killed. */
  boolean abandoned() {
    return withdrawn || (task != null && task.isInterrupted());
  }

  void reject(int row, String reason, Throwable cause) {
    rejections[row] = reason;
    rejectionCauses[row] = cause;
  }
}
