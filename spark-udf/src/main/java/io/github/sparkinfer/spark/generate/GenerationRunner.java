package io.github.sparkinfer.spark.generate;

import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.device.ModelRun;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.device.TensorSpec;
import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.batch.DeviceMemory;
import io.github.sparkinfer.spark.batch.ExecutorSessions;
import io.github.sparkinfer.spark.batch.HeldRows;
import io.github.sparkinfer.spark.batch.PredictionMetrics;
import io.github.sparkinfer.spark.batch.ResultRow;
import io.github.sparkinfer.spark.batch.RetryInHalves;
import io.github.sparkinfer.spark.batch.RowErrors;
import io.github.sparkinfer.spark.registry.ModelBinding;
import io.github.sparkinfer.spark.text.TokenizerCache;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.Set;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * generate() over one partition. Rows come in windows of a few batches: each prompt goes through
 * the template and the tokenizer, the window's prompts are sorted by token length so a batch pads
 * little, each batch decodes with the model's cache ({@link DecodeLoop}) until every row of it has
 * stopped, and rows leave in the order they came. A batch ONNX Runtime rejects runs again in halves
 * (the shared {@link RetryInHalves}), so a row it cannot take gets its own error and the others their
 * text; a prompt the tokenizer, the vocabulary or the context refuses is a row error before any run.
 */
public final class GenerationRunner implements Iterator<InternalRow> {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(GenerationRunner.class);

  /** text, tokens, finish_reason: what generate() gives per row. */
  public static final StructType RESULT_TYPE = new StructType()
      .add("text", DataTypes.StringType, true)
      .add("tokens", DataTypes.IntegerType, false)
      .add("finish_reason", DataTypes.StringType, false);

  /** Batches of prompts read, tokenized and sorted by length together. */
  static final int WINDOW_BATCHES = 4;


  private final ModelBinding binding;
  private final GenerationSettings settings;
  private final Iterator<InternalRow> input;
  private final int promptOrdinal;
  private final UnsafeProjection argumentProjection;
  private final UnsafeProjection holdProjection;
  private final UnsafeProjection outputProjection;
  private final PredictionMetrics metrics;
  private final RowErrors rowErrors;
  private final ResultRow result;
  private final JoinedRow joined = new JoinedRow();
  private final org.apache.spark.TaskContext task = org.apache.spark.TaskContext.get();
  private TextGenerator generator;
  private RetryInHalves retry;
  /** The session batches run on (for the device's memory limit). */
  private LoadedModel device;
  private int batchSize;
  private boolean runAlone;
  /** The loop inside ONNX Runtime, when the task decodes there; null otherwise. */
  private GraphDecoding graph;

  private InternalRow[] rows = new InternalRow[0];
  private boolean[] isNull;
  private String[] errors;
  private int[][] encoded;
  private TextGenerator.Result[] results;
  private int count;
  private int cursor;
  private long rowsRead;
  private long firstRow;

  public GenerationRunner(ModelBinding binding, int promptOrdinal, UnsafeProjection argumentProjection,
      UnsafeProjection holdProjection, UnsafeProjection outputProjection, PredictionMetrics metrics,
      Iterator<InternalRow> input) {
    this.binding = binding;
    this.settings = binding.generation();
    this.input = input;
    this.promptOrdinal = promptOrdinal;
    this.argumentProjection = argumentProjection;
    this.holdProjection = holdProjection;
    this.outputProjection = outputProjection;
    this.metrics = metrics;
    this.rowErrors = new RowErrors(binding, metrics);
    this.result = new ResultRow(binding, RESULT_TYPE);
  }

  @Override
  public boolean hasNext() {
    if (cursor < count) {
      return true;
    }
    if (!input.hasNext()) {
      return false;
    }
    if (generator == null) {
      start();
    }
    read();
    generateWindow();
    cursor = 0;
    return count > 0;
  }

  @Override
  public InternalRow next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    int row = cursor++;
    InternalRow resultRow;
    if (isNull[row]) {
      resultRow = result.withoutValue(null);
    } else if (errors[row] != null) {
      // A row the model could not take, under onError=null: no text, and why in finish_reason (and in error).
      result.valueSlot().update(0, new GenericInternalRow(new Object[] {null, 0, UTF8String.fromString("error")}));
      resultRow = result.withValue(errors[row]);
    } else {
      TextGenerator.Result generated = results[row];
      result.valueSlot().update(0, new GenericInternalRow(new Object[] {UTF8String.fromString(generated.text),
          generated.tokens, UTF8String.fromString(generated.finishReason)}));
      resultRow = result.withValue();
    }
    return outputProjection.apply(joined.apply(rows[row], resultRow));
  }

  /** The task's model session, tokenizer and batch size: on the first row, on the device the task was given. */
  private void start() {
    // Which loop: known once the task's device is: the Java loop's session first, unless the loop runs in the graph.
    LoadedModel wrapped = null;
    LoadedModel model = null;
    io.github.sparkinfer.compression.PackagedSearch packaged = settings.packaged();
    if (packaged != null) {
      // The model is its own decode loop: it runs as it is, and has no Java loop to fall back on.
      wrapped = ExecutorSessions.acquire(binding, metrics);
    } else if (settings.decodeLoop().equals("graph")) {
      wrapped = acquireWrapped();
    } else if (settings.decodesInGraph(ExecutorSessions.requestedDevice(binding))) {
      // auto on a GPU or NPU: one session on the device, the wrapped one; the Java loop's only if a batch needs it.
      try {
        wrapped = acquireWrapped();
      } catch (PredictionException e) {
        LOG.warn("Model '{}': cannot run the decode loop inside ONNX Runtime ({}); this task decodes in Java."
            + " Set decodeLoop=java to skip the attempt", binding.modelName(), e.getMessage());
        metrics.decodeFallbackBatches.add(1);
      }
    }
    if (wrapped == null) {
      model = ExecutorSessions.acquire(binding, metrics);
    }
    LoadedModel plain = model;
    java.util.function.Supplier<BatchDecoder> javaLoop = () -> javaLoop(plain != null ? plain
        : ExecutorSessions.acquire(binding, metrics));
    BatchDecoder decoder;
    if (packaged != null) {
      graph = new GraphDecoding(wrapped, binding.modelName(), packaged.vocabularySize(), (int) packaged.eosTokenId(),
          (int) packaged.padTokenId(), metrics, null);
      decoder = graph;
    } else if (wrapped != null) {
      graph = new GraphDecoding(wrapped, settings.layout(), settings.graphStopToken(), metrics, javaLoop);
      decoder = graph;
    } else {
      decoder = javaLoop.get();
    }
    // 0: the tokenizer keeps every token; the context limit (maxContext, contextOverflow) is applied here.
    TokenizerCache.Handle tokenizer = TokenizerCache.get(binding.modelName(), settings.tokenizer(), 0,
        ExecutorSessions.hadoopConfiguration());
    TextGenerator.Tokens tokens = new TextGenerator.Tokens() {
      @Override
      public long[] encode(String text) {
        return tokenizer.ids(text);
      }

      @Override
      public String decode(long[] ids) {
        return tokenizer.decode(ids);
      }
    };
    // Padding is masked: any id of the vocabulary will do.
    generator = new TextGenerator(decoder, tokens, settings.template(), 0, settings.stopStrings(),
        settings.maxContext(), settings.truncateLeft(), packaged == null ? -1 : (int) packaged.padTokenId());
    device = wrapped != null ? wrapped : model;
    retry = new RetryInHalves(binding, device, metrics);
    batchSize = settings.batchSizeOn(device.device());
  }

  /** The decoder wrapped into ONNX Runtime's GreedySearch, made on this executor from the registered model. */
  private LoadedModel acquireWrapped() {
    int stop = settings.graphStopToken();
    return ExecutorSessions.acquire(binding, metrics, (source, configuration) ->
        GraphDecoding.source(source, stop, configuration));
  }

  /** The Java loop over the registered model's runs. */
  private BatchDecoder javaLoop(LoadedModel model) {
    Set<String> outputs = new LinkedHashSet<>();
    for (TensorSpec output : model.signature().outputs()) {
      outputs.add(output.name());
    }
    DecodeLoop.StepRunner runner = inputs -> {
      // A killed task (a cancelled job, a lost speculative copy) stops between tokens, not after its window.
      if (task != null) {
        task.killTaskIfInterrupted();
      }
      return step(ExecutorSessions.run(model, inputs, outputs, Map.of(), metrics, runAlone));
    };
    return new DecodeLoop(OrtEnvironments.get(), runner, settings.layout(), settings.leftPadding());
  }

  private static DecodeLoop.Step step(ModelRun run) {
    return new DecodeLoop.Step() {
      @Override
      public Optional<OnnxValue> get(String name) {
        return run.result().get(name);
      }

      @Override
      public void close() {
        run.close();
      }
    };
  }

  private void read() {
    int capacity = batchSize * WINDOW_BATCHES;
    if (rows.length != capacity) {
      rows = new InternalRow[capacity];
      isNull = new boolean[capacity];
      errors = new String[capacity];
      encoded = new int[capacity][];
      results = new TextGenerator.Result[capacity];
    }
    firstRow = rowsRead;
    count = 0;
    while (count < capacity && input.hasNext()) {
      InternalRow row = input.next();
      InternalRow arguments = argumentProjection == null ? row : argumentProjection.apply(row);
      int slot = count++;
      isNull[slot] = arguments.isNullAt(promptOrdinal);
      errors[slot] = null;
      results[slot] = null;
      encoded[slot] = null;
      if (!isNull[slot]) {
        String prompt = arguments.getUTF8String(promptOrdinal).toString();
        try {
          encoded[slot] = generator.encode(prompt, settings.options());
        } catch (IllegalArgumentException e) {
          errors[slot] = rowErrors.reject(firstRow + slot, "Model '" + binding.modelName() + "' cannot take the prompt"
              + " (" + prompt.length() + " characters): " + e.getMessage(), e);
        } catch (RuntimeException e) {
          errors[slot] = rowErrors.reject(firstRow + slot, "The tokenizer of model '" + binding.modelName()
              + "' failed on the prompt (" + prompt.length() + " characters): " + e, e);
        }
      } else {
        metrics.nullRows.add(1);
      }
      rows[slot] = HeldRows.hold(holdProjection == null ? row : holdProjection.apply(row), rows[slot]);
    }
    rowsRead += count;
    metrics.outputRows.add(count);
  }

  /** Decodes the window's prompts, sorted by length, a batch at a time. */
  private void generateWindow() {
    Integer[] order = new Integer[count];
    int present = 0;
    for (int row = 0; row < count; row++) {
      if (encoded[row] != null) {
        order[present++] = row;
      }
    }
    Integer[] sorted = Arrays.copyOf(order, present);
    Arrays.sort(sorted, Comparator.comparingInt(row -> encoded[row].length));
    // The Java loop's first step returns logits for every prompt position: rows x beams x longest x vocabulary floats,
    // copied to the heap. Batches stay within maxBatchBytes for them, and within the prompts a device ran out of
    // memory at.
    long vocabulary = settings.vocabularySize();
    long beams = settings.options().numBeams();
    int rowsLimit = (int) Math.min(batchSize, DeviceMemory.limit(binding.source().uri(), device, batchSize));
    int[] batch = new int[rowsLimit];
    int size = 0;
    for (int i = 0; i < present; i++) {
      int row = sorted[i];
      long longest = encoded[row].length;
      if (beams * longest * vocabulary > Integer.MAX_VALUE) {
        errors[row] = rowErrors.reject(firstRow + row, "Model '" + binding.modelName() + "' cannot take a prompt of "
            + longest + " tokens: its first step's logits (" + longest + " x " + vocabulary + " vocabulary" + (beams > 1
            ? " x " + beams + " beams" : "") + ") are more than the 2^31 values one ONNX Runtime output can hold in"
            + " Java. Set maxContext with contextOverflow=truncate, or shorten the prompt", null);
        encoded[row] = null;
        continue;
      }
      // Inside ONNX Runtime's loop the logits stay there: only the Java loop copies them out.
      boolean overBudget = graph == null
          && (size + 1) * beams * longest * vocabulary * Float.BYTES > binding.maxBatchBytes();
      if (size > 0 && (size == rowsLimit || overBudget)) {
        retry.run(new Batch(Arrays.copyOf(batch, size)), size);
        size = 0;
      }
      batch[size++] = row;
    }
    if (size > 0) {
      retry.run(new Batch(Arrays.copyOf(batch, size)), size);
    }
  }

  /** One batch's rows (window slots), run whole or in parts by the shared retry. */
  private final class Batch implements RetryInHalves.Batch {
    private final int[] slots;

    Batch(int[] slots) {
      this.slots = slots;
    }

    @Override
    public void run(int from, int to, boolean whole, boolean alone) throws OrtException {
      int[][] prompts = new int[to - from][];
      long tokens = 0;
      for (int i = from; i < to; i++) {
        prompts[i - from] = encoded[slots[i]];
        tokens += prompts[i - from].length;
      }
      runAlone = alone;
      if (graph != null) {
        graph.runAlone = alone;
      }
      TextGenerator.Result[] generated;
      try {
        generated = generator.generate(prompts, settings.options());
      } finally {
        runAlone = false;
        if (graph != null) {
          graph.runAlone = false;
        }
      }
      long newTokens = 0;
      for (int i = from; i < to; i++) {
        results[slots[i]] = generated[i - from];
        newTokens += generated[i - from].tokens;
      }
      metrics.batches.add(1);
      metrics.modelRows.add(to - from);
      metrics.tokens.add(tokens + newTokens);
    }

    @Override
    public long memorySize(int from, int to) {
      return to - from;
    }

    @Override
    public String memoryUnit() {
      return "prompts";
    }

    @Override
    public String describe(int position) {
      return rowErrors.describeRow(firstRow + slots[position]) + " (" + encoded[slots[position]].length + " prompt tokens)";
    }

    @Override
    public void reject(int position, OrtException failure) {
      int slot = slots[position];
      errors[slot] = rowErrors.reject(firstRow + slot, "Model '" + binding.modelName() + "' failed on the prompt of "
          + encoded[slot].length + " tokens: " + failure.getMessage(), failure);
    }
  }
}
