package io.github.sparkinfer.spark.text;

/**
 * Texts that run through the model as one batch, from one window or, with cross-task batching,
 * from several tasks' windows: position p is row {@code rows[p]} of {@code windows[p]}, with token
 * ids {@code ids[p]}, longest first. {@link #finished} marks the positions whose vector or
 * rejection is stored, so that a batch given up part way (its runner's task was killed) puts only
 * the rest back in the queue.
 */
final class TextBatch {
  final TextWindow[] windows;
  final int[] rows;
  final long[][] ids;
  final boolean[] finished;

  TextBatch(TextWindow[] windows, int[] rows) {
    this.windows = windows;
    this.rows = rows;
    this.ids = new long[rows.length][];
    for (int p = 0; p < rows.length; p++) {
      ids[p] = windows[p].ids[rows[p]];
    }
    this.finished = new boolean[rows.length];
  }

  /** Whether the batch holds rows of more than one task. */
  boolean mixesTasks() {
    for (TextWindow window : windows) {
      if (window.owner != windows[0].owner) {
        return true;
      }
    }
    return false;
  }

  /** Rows {@code rows} of one window. */
  static TextBatch of(TextWindow window, int[] rows) {
    TextWindow[] windows = new TextWindow[rows.length];
    java.util.Arrays.fill(windows, window);
    return new TextBatch(windows, rows);
  }

  int size() {
    return rows.length;
  }

  /** Position p is done: its window has one row fewer to wait for. */
  void finish(int p) {
    if (!finished[p]) {
      finished[p] = true;
      windows[p].unfinished.decrementAndGet();
    }
  }
}
