package io.github.sparkinfer.spark.text;

import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.batch.HeldRows;
import io.github.sparkinfer.spark.batch.ExecutorSessions;
import io.github.sparkinfer.spark.batch.PredictionMetrics;
import io.github.sparkinfer.spark.batch.ResultRow;
import io.github.sparkinfer.spark.batch.RowErrors;
import io.github.sparkinfer.spark.registry.ModelBinding;
import io.github.sparkinfer.spark.registry.TextSettings;

import io.github.sparkinfer.spark.InferenceProperties;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.types.DataTypes;

/**
 * embed() over one partition. Rows come in windows of {@code sortWindowRows}: while the model runs
 * on one window, the next is already read and being tokenized (one window of prefetch). Rows are
 * batched by token length under the token budget so padding stays small; token states are pooled
 * (mean over the attention mask, or the first token) and normalized; rows leave in the order they
 * came, each with its own vector.
 *
 * <p>Two ways to batch, by {@code crossTaskBatching} and the device: each task its own windows
 * (tokenized on a helper thread of the task, batched by {@link WindowEmbedder} on the task's
 * thread; the CPU's default), or the windows of all the executor's tasks together: chunks of a
 * window are tokenized on the executor's {@link TokenizerPool} and join the model's
 * {@link TextBatchQueue}, whose batches mix tasks' rows and are run by the waiting tasks' threads
 * (the default on GPUs and NPUs, where a task's own rows made batches of 144 texts on average).
 */
public final class TextEmbeddingRunner implements Iterator<InternalRow> {
  /** Texts tokenized together on the executor's pool: small enough that batches start early, large enough to amortize the hand-off. */
  static final int CHUNK_ROWS = 256;

  private final ModelBinding binding;
  private final TextSettings text;
  private final Iterator<InternalRow> input;
  private final int textOrdinal;
  private final UnsafeProjection argumentProjection;
  private final UnsafeProjection holdProjection;
  private final UnsafeProjection outputProjection;
  private final PredictionMetrics metrics;
  private final ExecutorService tokenizerThread;
  private TextWindow[] windows;
  private final JoinedRow joined = new JoinedRow();
  private final ResultRow result;
  private final RowErrors rowErrors;
  private long rowsRead;
  private final WindowEmbedder embedder;
  private TokenizerCache.Handle tokenizer;
  private TextWindow current;
  private TextWindow next;
  private int cursor;
  /** The shared queue when this task's texts are batched with other tasks' texts, else null. */
  private TextBatchQueue queue;
  private final TaskContext task = TaskContext.get();

  public TextEmbeddingRunner(
      ModelBinding binding,
      int textOrdinal,
      UnsafeProjection argumentProjection,
      UnsafeProjection holdProjection,
      UnsafeProjection outputProjection,
      PredictionMetrics metrics,
      Iterator<InternalRow> input) {
    this.binding = binding;
    this.text = binding.text();
    this.input = input;
    this.textOrdinal = textOrdinal;
    this.argumentProjection = argumentProjection;
    this.holdProjection = holdProjection;
    this.outputProjection = outputProjection;
    this.metrics = metrics;
    this.rowErrors = new RowErrors(binding, metrics);
    this.result = new ResultRow(binding, DataTypes.createArrayType(DataTypes.FloatType, false));
    this.embedder = new WindowEmbedder(binding, metrics);
    this.tokenizerThread = Executors.newSingleThreadExecutor(runnable -> {
      Thread thread = new Thread(runnable, "sparkinfer-tokenizer-" + binding.modelName());
      thread.setDaemon(true);
      return thread;
    });
    if (task != null) {
      // A task that ends early (LIMIT, failure, kill) must not leave the thread, or rows in the queue, behind.
      task.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) context -> {
        tokenizerThread.shutdownNow();
        if (queue != null && windows != null) {
          for (TextWindow window : windows) {
            queue.withdraw(window);
          }
        }
      });
    }
  }

  @Override
  public boolean hasNext() {
    if (current != null && cursor < current.count) {
      return true;
    }
    if (next == null) {
      if (!input.hasNext()) {
        tokenizerThread.shutdown();
        return false;
      }
      int windowRows = text.windowRows() > 0 ? text.windowRows()
          : embedder.model().device().isAccelerator() ? InferenceProperties.SORT_WINDOW_ROWS_ACCELERATOR_DEFAULT
          : InferenceProperties.SORT_WINDOW_ROWS_DEFAULT;
      if (text.batchesAcrossTasks(embedder.model().device())) {
        queue = TextBatchQueue.of(embedder.model(), binding);
      }
      windows = new TextWindow[] {new TextWindow(windowRows, this), new TextWindow(windowRows, this)};
      next = read(windows[0]);
    }
    current = next;
    if (current.count == 0) {
      tokenizerThread.shutdown();
      return false;
    }
    // Read and start tokenizing the next window before running this one: the overlap.
    next = read(current == windows[0] ? windows[1] : windows[0]);
    embed(current);
    cursor = 0;
    return true;
  }

  @Override
  public InternalRow next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    int row = cursor++;
    String error = current.errors[row];
    InternalRow resultRow;
    if (current.isNull[row] || error != null) {
      resultRow = result.withoutValue(error);
    } else {
      result.valueSlot().update(0, embedder.vector(current, row));
      resultRow = result.withValue();
    }
    return outputProjection.apply(joined.apply(current.rows[row], resultRow));
  }

  private TextWindow read(TextWindow window) {
    window.reset(rowsRead);
    while (window.count < window.rows.length && input.hasNext()) {
      InternalRow row = input.next();
      InternalRow arguments = argumentProjection == null ? row : argumentProjection.apply(row);
      int slot = window.count++;
      boolean isNull = arguments.isNullAt(textOrdinal);
      window.isNull[slot] = isNull;
      window.texts[slot] = isNull ? null : arguments.getUTF8String(textOrdinal).toString();
      window.rows[slot] = HeldRows.hold(holdProjection == null ? row : holdProjection.apply(row), window.rows[slot]);
    }
    int count = window.count;
    rowsRead += count;
    metrics.outputRows.add(count);
    if (count == 0) {
      return window;
    }
    if (queue == null) {
      window.tokens = tokenizerThread.submit(() -> {
        tokenize(window, 0, count);
        return window.ids;
      });
    } else {
      window.unfinished.set(count);
      TokenizerCache.Handle words = tokenizer();
      for (int from = 0; from < count; from += CHUNK_ROWS) {
        int start = from;
        int end = Math.min(count, from + CHUNK_ROWS);
        TokenizerPool.shared().execute(() -> tokenizeIntoQueue(window, words, start, end));
      }
    }
    return window;
  }

  /**
   * Tokenizes rows [from, to) of the window into its ids; a text the tokenizer fails on keeps its
   * reason for the row error policy, which the owning task applies.
   */
  private int[] tokenize(TextWindow window, int from, int to) {
    long start = System.nanoTime();
    TokenizerCache.Handle words = tokenizer();
    String[] texts = window.texts;
    int[] present = new int[to - from];
    int count = 0;
    for (int i = from; i < to; i++) {
      if (texts[i] != null) {
        try {
          window.ids[i] = words.ids(texts[i]);
          present[count++] = i;
        } catch (RuntimeException e) {
          window.reject(i, "The tokenizer of model '" + binding.modelName() + "' failed on this text ("
              + texts[i].length() + " characters): " + e, e);
        }
      }
    }
    window.tokenizeNanos.addAndGet(System.nanoTime() - start);
    return java.util.Arrays.copyOf(present, count);
  }

  /** On the executor's tokenizer pool: a chunk of the window, tokenized, joins the queue. */
  private void tokenizeIntoQueue(TextWindow window, TokenizerCache.Handle words, int from, int to) {
    if (window.withdrawn) {
      return;
    }
    try {
      int[] present = tokenize(window, from, to);
      queue.add(window, present, present.length);
      // Null texts and those the tokenizer rejected are done: no model run for them.
      if (window.unfinished.addAndGet(-(to - from - present.length)) == 0) {
        queue.signal();
      }
    } catch (RuntimeException | Error e) {
      window.failure = new PredictionException("Tokenizing for model '" + binding.modelName() + "' failed: " + e, e);
      queue.signal();
    }
  }

  private TokenizerCache.Handle tokenizer() {
    if (tokenizer == null) {
      tokenizer = TokenizerCache.get(binding.modelName(), text, ExecutorSessions.hadoopConfiguration());
    }
    return tokenizer;
  }

  /** Embeds the window: waits for its token ids and runs its batches, or waits for the queue to run its rows. */
  private void embed(TextWindow window) {
    if (queue != null) {
      queue.await(window, embedder, task, metrics);
    } else {
      long waitStart = System.nanoTime();
      try {
        window.tokens.get();
        metrics.tokenizerWaitTime.add(System.nanoTime() - waitStart);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new PredictionException("Interrupted while tokenizing for model '" + binding.modelName() + "'", e);
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof RuntimeException) {
          throw (RuntimeException) cause;
        }
        throw new PredictionException("Tokenizing for model '" + binding.modelName() + "' failed: " + cause, cause);
      }
      embedder.embed(window);
    }
    metrics.tokenizeTime.add(window.tokenizeNanos.get());
    // The row error policy of this task, for the texts the tokenizer or the model could not take.
    for (int row = 0; row < window.count; row++) {
      if (window.rejections[row] != null) {
        window.errors[row] = rowErrors.reject(window.firstRow + row, window.rejections[row], window.rejectionCauses[row]);
      } else if (window.isNull[row]) {
        metrics.nullRows.add(1);
      }
    }
  }
}
