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
 * on one window, the next is already read and being tokenized on a helper thread (one window of
 * prefetch). Within a window ({@link WindowEmbedder}), rows are batched by token length under the
 * token budget so padding stays small; token states are pooled (mean over the attention mask, or
 * the first token) and normalized; rows leave in the order they came, each with its own vector.
 */
public final class TextEmbeddingRunner implements Iterator<InternalRow> {
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
    this.embedder = new WindowEmbedder(binding, metrics, rowErrors);
    this.tokenizerThread = Executors.newSingleThreadExecutor(runnable -> {
      Thread thread = new Thread(runnable, "sparkinfer-tokenizer-" + binding.modelName());
      thread.setDaemon(true);
      return thread;
    });
    TaskContext task = TaskContext.get();
    if (task != null) {
      // A task that ends early (LIMIT, failure, kill) must not leave the thread behind.
      task.addTaskCompletionListener(
          (org.apache.spark.util.TaskCompletionListener) context -> tokenizerThread.shutdownNow());
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
      windows = new TextWindow[] {new TextWindow(windowRows), new TextWindow(windowRows)};
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
    window.count = 0;
    window.firstRow = rowsRead;
    java.util.Arrays.fill(window.errors, null);
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
    window.tokens = count == 0 ? null : tokenizerThread.submit(() -> tokenize(window, count));
    metrics.outputRows.add(count);
    return window;
  }

  /** On the tokenizer thread; a text the tokenizer fails on goes by the row error policy. */
  private long[][] tokenize(TextWindow window, int count) {
    long start = System.nanoTime();
    TokenizerCache.Handle words = tokenizer();
    String[] texts = window.texts;
    long[][] ids = new long[count][];
    for (int i = 0; i < count; i++) {
      if (texts[i] != null) {
        try {
          ids[i] = words.ids(texts[i]);
        } catch (RuntimeException e) {
          window.errors[i] = rowErrors.reject(window.firstRow + i, "The tokenizer of model '" + binding.modelName()
              + "' failed on this text (" + texts[i].length() + " characters): " + e, e);
        }
      }
    }
    metrics.tokenizeTime.add(System.nanoTime() - start);
    return ids;
  }

  private TokenizerCache.Handle tokenizer() {
    if (tokenizer == null) {
      tokenizer = TokenizerCache.get(binding.modelName(), text, ExecutorSessions.hadoopConfiguration());
    }
    return tokenizer;
  }

  /** Waits for the window's token ids, then embeds it. */
  private void embed(TextWindow window) {
    long[][] ids;
    long waitStart = System.nanoTime();
    try {
      ids = window.tokens.get();
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
    embedder.embed(window, ids);
  }
}
