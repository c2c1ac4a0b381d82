package io.github.sparkinfer.spark.text;

import io.github.sparkinfer.device.DeviceRunLimiter;
import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.partitioning.LengthBatchPlanner;
import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.batch.PredictionMetrics;
import io.github.sparkinfer.spark.registry.ModelBinding;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongConsumer;
import org.apache.spark.TaskContext;

/**
 * Cross-task batching: one queue per executor and loaded model (a session on one device) that every
 * task's tokenized rows join, so that a batch is formed from the rows of all tasks at once, by token
 * length under the token budget, instead of from one task's window. There is no worker thread of
 * its own: a task waiting for its window's rows runs batches from the queue, its own rows or other
 * tasks' (the threads Spark already gives the stage drive the device). At most {@link #runners}
 * threads form and run batches at a time (the device's run permits and one more, so that one fills
 * its inputs while the others run): a batch is formed when a runner is free, so rows pile up while
 * the device is busy and batches grow with the load.
 *
 * <p>A batch is the planner's fullest one (rows × longest row) among the pending rows, except that a
 * row pending longer than {@link #MAX_WAIT_NANOS} goes in the next batch, so no text waits for
 * others of its length for long. A task that ends (done, failed or killed) withdraws its queued
 * rows; a runner whose task is killed puts the rows it had not finished back. An error that is not
 * one row's (a model that returns a wrong shape) fails the tasks whose rows were in that batch.
 */
final class TextBatchQueue {
  /** How long a row may wait for a fuller batch before it goes in the next one. */
  static final long MAX_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(200);
  /** How often a waiting task looks whether it was killed. */
  private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

  // Weak keys: a model the cache closed and dropped takes its queues with it. Per model, one queue
  // per way of embedding (tokenizer, pooling, output, batch size): only such rows may share a batch.
  private static final Map<LoadedModel, Map<List<Object>, TextBatchQueue>> QUEUES = new WeakHashMap<>();

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private final Semaphore runners;
  private final int runnerCount;
  // The pending rows, in the order they came: row rows[i] of windows[i], lengths[i] tokens, queued at since[i].
  private TextWindow[] windows = new TextWindow[256];
  private int[] rows = new int[256];
  private int[] lengths = new int[256];
  private long[] since = new long[256];
  private int size;
  private LengthBatchPlanner planner;

  private TextBatchQueue(int runners) {
    this.runnerCount = runners;
    this.runners = new Semaphore(runners, true);
  }

  /** The executor's queue for this loaded model and these text settings (their rows may share batches). */
  static TextBatchQueue of(LoadedModel model, ModelBinding binding) {
    List<Object> key = List.of(binding.text(), binding.batchSizeOn(model.device()));
    synchronized (QUEUES) {
      return QUEUES.computeIfAbsent(model, loaded -> new java.util.HashMap<>())
          .computeIfAbsent(key, settings -> new TextBatchQueue(runnersFor(model)));
    }
  }

  /** Threads that form and run batches at once: the accelerator's run permits and one, else the executor's cores. */
  static int runnersFor(LoadedModel model) {
    return model.device().isAccelerator() ? DeviceRunLimiter.shared().concurrentRuns() + 1 : TokenizerPool.threads();
  }

  int runners() {
    return runnerCount;
  }

  /** Rows {@code rowIndices[0 .. count)} of {@code window}, tokenized, join the queue. */
  void add(TextWindow window, int[] rowIndices, int count) {
    long now = System.nanoTime();
    lock.lock();
    try {
      if (window.abandoned()) {
        return;
      }
      ensure(size + count);
      for (int i = 0; i < count; i++) {
        int row = rowIndices[i];
        windows[size] = window;
        rows[size] = row;
        lengths[size] = window.ids[row].length;
        since[size] = now;
        size++;
      }
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** The window's owner ended: its queued rows leave the queue and nobody runs them. */
  void withdraw(TextWindow window) {
    lock.lock();
    try {
      window.withdrawn = true;
      int kept = 0;
      for (int i = 0; i < size; i++) {
        if (windows[i] != window) {
          move(i, kept++);
        }
      }
      clear(kept);
    } finally {
      lock.unlock();
    }
  }

  /** Wakes the tasks waiting on the queue: a window finished or failed. */
  void signal() {
    lock.lock();
    try {
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** Rows waiting in the queue. */
  int pending() {
    lock.lock();
    try {
      return size;
    } finally {
      lock.unlock();
    }
  }

  /** Rows waiting in all of this executor's queues: none once every task has ended. */
  static int pendingInAllQueues() {
    List<TextBatchQueue> queues = new java.util.ArrayList<>();
    synchronized (QUEUES) {
      QUEUES.values().forEach(byKey -> queues.addAll(byKey.values()));
    }
    return queues.stream().mapToInt(TextBatchQueue::pending).sum();
  }

  /**
   * Runs batches from the queue on this thread until every row of {@code window} is done (its
   * vector or its rejection stored), or throws the error that failed one of them. Into the task's
   * metrics: time waiting for a runner's turn as deviceWaitTime, time with nothing to run (rows
   * still being tokenized, or run by other tasks) as tokenizerWaitTime.
   */
  void await(TextWindow window, WindowEmbedder embedder, TaskContext task, PredictionMetrics metrics) {
    LongConsumer deviceWait = metrics.deviceWaitTime::add;
    LongConsumer idleWait = metrics.tokenizerWaitTime::add;
    while (true) {
      RuntimeException failure = window.failure;
      if (failure != null) {
        throw failure;
      }
      if (window.unfinished.get() == 0) {
        return;
      }
      if (task != null) {
        task.killTaskIfInterrupted();
      }
      long asked = System.nanoTime();
      boolean turn;
      try {
        turn = runners.tryAcquire(POLL_NANOS, TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new PredictionException("Interrupted while waiting to run model '" + embedder.modelName() + "'", e);
      }
      deviceWait.accept(System.nanoTime() - asked);
      if (!turn) {
        continue;
      }
      TextBatch batch;
      try {
        batch = take(embedder);
        if (batch == null) {
          runners.release();
          turn = false;
          waitForChange(window, idleWait);
          continue;
        }
        if (batch.mixesTasks()) {
          metrics.crossTaskBatches.add(1);
        }
        run(batch, embedder, task);
      } finally {
        if (turn) {
          runners.release();
        }
      }
    }
  }

  private void waitForChange(TextWindow window, LongConsumer idleWait) {
    long start = System.nanoTime();
    lock.lock();
    try {
      if (size == 0 && window.unfinished.get() > 0 && window.failure == null) {
        changed.awaitNanos(POLL_NANOS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new PredictionException("Interrupted while waiting for texts to embed", e);
    } finally {
      lock.unlock();
      idleWait.accept(System.nanoTime() - start);
    }
  }

  /** Runs a taken batch; rows it could not finish go back (a killed runner) or fail their windows. */
  private void run(TextBatch batch, WindowEmbedder embedder, TaskContext task) {
    try {
      if (embedder.runOrSplit(batch)) {
        lock.lock();
        try {
          planner = null;  // later batches get the lowered token budget
        } finally {
          lock.unlock();
        }
      }
    } catch (RuntimeException e) {
      if (Thread.currentThread().isInterrupted() || (task != null && task.isInterrupted())) {
        putBack(batch);  // this task was killed: the other tasks' rows are still wanted
      } else {
        fail(batch, e);
      }
      throw e;
    } finally {
      signal();
    }
  }

  /** An error not of one row: every window with a row in the batch fails with it. */
  private void fail(TextBatch batch, RuntimeException e) {
    RuntimeException failure = !batch.mixesTasks() ? e
        : new PredictionException(e.getMessage() + " (in a batch this task's texts shared with other tasks' texts)", e);
    for (int p = 0; p < batch.size(); p++) {
      if (!batch.finished[p] && batch.windows[p].failure == null) {
        batch.windows[p].failure = failure;
      }
    }
  }

  private void putBack(TextBatch batch) {
    long now = System.nanoTime();
    lock.lock();
    try {
      ensure(size + batch.size());
      for (int p = 0; p < batch.size(); p++) {
        if (!batch.finished[p] && !batch.windows[p].abandoned()) {
          windows[size] = batch.windows[p];
          rows[size] = batch.rows[p];
          lengths[size] = batch.ids[p].length;
          since[size] = now;
          size++;
        }
      }
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** The next batch: the fullest the planner forms from the pending rows, or the oldest row's when it waited too long. */
  private TextBatch take(WindowEmbedder embedder) {
    lock.lock();
    try {
      dropAbandoned();
      if (size == 0) {
        return null;
      }
      if (planner == null) {
        planner = embedder.planner();
      }
      List<int[]> batches = planner.plan(lengths, size);
      int oldest = 0;
      for (int i = 1; i < size; i++) {
        if (since[i] < since[oldest]) {
          oldest = i;
        }
      }
      boolean overdue = System.nanoTime() - since[oldest] > MAX_WAIT_NANOS;
      int[] chosen = null;
      long best = -1;
      for (int[] candidate : batches) {
        if (overdue) {
          if (contains(candidate, oldest)) {
            chosen = candidate;
            break;
          }
          continue;
        }
        long padded = (long) candidate.length * Math.max(1, lengths[candidate[0]]);
        if (padded > best) {
          best = padded;
          chosen = candidate;
        }
      }
      TextWindow[] batchWindows = new TextWindow[chosen.length];
      int[] batchRows = new int[chosen.length];
      boolean[] taken = new boolean[size];
      for (int i = 0; i < chosen.length; i++) {
        batchWindows[i] = windows[chosen[i]];
        batchRows[i] = rows[chosen[i]];
        taken[chosen[i]] = true;
      }
      int kept = 0;
      for (int i = 0; i < size; i++) {
        if (!taken[i]) {
          move(i, kept++);
        }
      }
      clear(kept);
      return new TextBatch(batchWindows, batchRows);
    } finally {
      lock.unlock();
    }
  }

  /** Rows of tasks being killed leave at once, before their tasks end (a kill waits for a run in flight). */
  private void dropAbandoned() {
    int kept = 0;
    for (int i = 0; i < size; i++) {
      if (!windows[i].abandoned()) {
        move(i, kept++);
      }
    }
    clear(kept);
  }

  private static boolean contains(int[] batch, int index) {
    for (int i : batch) {
      if (i == index) {
        return true;
      }
    }
    return false;
  }

  private void move(int from, int to) {
    windows[to] = windows[from];
    rows[to] = rows[from];
    lengths[to] = lengths[from];
    since[to] = since[from];
  }

  private void clear(int newSize) {
    java.util.Arrays.fill(windows, newSize, size, null);  // no reference to an ended task's rows
    size = newSize;
  }

  private void ensure(int capacity) {
    if (capacity > windows.length) {
      int grown = Math.max(capacity, windows.length * 2);
      windows = java.util.Arrays.copyOf(windows, grown);
      rows = java.util.Arrays.copyOf(rows, grown);
      lengths = java.util.Arrays.copyOf(lengths, grown);
      since = java.util.Arrays.copyOf(since, grown);
    }
  }
}
