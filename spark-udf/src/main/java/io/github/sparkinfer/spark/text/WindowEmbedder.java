package io.github.sparkinfer.spark.text;

import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.batch.DirectBuffers;
import io.github.sparkinfer.spark.batch.ExecutorSessions;
import io.github.sparkinfer.spark.batch.PredictionMetrics;
import io.github.sparkinfer.spark.batch.RetryInHalves;
import io.github.sparkinfer.spark.registry.DevicePooling;
import io.github.sparkinfer.spark.registry.ModelBinding;
import io.github.sparkinfer.spark.registry.TextSettings;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.TensorInfo;
import io.github.sparkinfer.device.ModelRun;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.device.TensorSpec;
import io.github.sparkinfer.partitioning.LengthBatchPlanner;
import io.github.sparkinfer.spark.InferenceProperties;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;

/**
 * Turns a tokenized window into vectors on the task thread: batches its texts by token length
 * under the token budget, runs the model on each batch (the shared retry halves a batch ONNX Runtime rejects) and
 * pools each batch's output into the window's vectors.
 */
final class WindowEmbedder {
  private final ModelBinding binding;
  private final TextSettings text;
  private final PredictionMetrics metrics;
  private final EmbeddingPooling pooling;
  private final TensorSpec embeddingOutput;
  private final List<TensorSpec> modelInputs;
  private LengthBatchPlanner planner;
  private io.github.sparkinfer.device.LoadedModel loaded;
  private RetryInHalves retry;
  private final TokenBuffers tokenBuffers = new TokenBuffers();
  private ByteBuffer outputBuffer = DirectBuffers.allocate(8);
  private long tokenCount;
  private long paddedCount;
  /** One batch's pooled vectors in position order, before they go to their windows. */
  private float[] pooled = new float[0];
  private Boolean pooledOnDevice;
  /** The embeddings' width, once the first batch has run: -1 before. */
  private int dimension = -1;

  /** {@code metrics}: the task's whose thread runs the batches (with cross-task batching, other tasks' rows too). */
  WindowEmbedder(ModelBinding binding, PredictionMetrics metrics) {
    this.binding = binding;
    this.text = binding.text();
    this.metrics = metrics;
    this.pooling = new EmbeddingPooling(text.pooling(), text.normalize());
    this.embeddingOutput = binding.signature().outputs().stream()
        .filter(output -> output.name().equals(text.embeddingOutput())).findFirst().orElseThrow();
    this.modelInputs = binding.signature().inputs();
  }

  /** Embeds the window's rows whose texts have token ids (the per-task path); the others keep no vector. */
  void embed(TextWindow window) {
    long[][] ids = window.ids;
    int[] present = new int[window.count];
    int[] lengths = new int[window.count];
    int rows = 0;
    for (int i = 0; i < window.count; i++) {
      if (ids[i] != null) {
        present[rows] = i;
        lengths[rows] = ids[i].length;
        rows++;
      }
    }
    for (int[] batch : planner().plan(lengths, rows)) {
      for (int i = 0; i < batch.length; i++) {
        batch[i] = present[batch[i]];
      }
      if (runOrSplit(TextBatch.of(window, batch))) {
        planner = null;  // later batches get the smaller token budget
      }
    }
  }

  /**
   * Runs a batch through the shared retry ({@link RetryInHalves}): the texts ONNX Runtime cannot
   * take are found (each one's reason kept in its window) and the others still get their vectors.
   * Returns whether a part was split for memory, so that later batches are formed under the lowered
   * token budget.
   */
  boolean runOrSplit(TextBatch batch) {
    RetryInHalves.Batch parts = new RetryInHalves.Batch() {
      @Override
      public void run(int from, int to, boolean whole, boolean alone) throws OrtException {
        int[] positions = new int[to - from];
        for (int i = 0; i < positions.length; i++) {
          positions[i] = from + i;
        }
        WindowEmbedder.this.run(batch, positions, alone);
      }

      @Override
      public long memorySize(int from, int to) {
        long tokens = 0;
        for (int i = from; i < to; i++) {
          tokens = Math.max(tokens, batch.ids[i].length);
        }
        return tokens * (to - from);
      }

      @Override
      public String memoryUnit() {
        return "padded tokens";
      }

      @Override
      public String describe(int position) {
        return batch.windows[position].describeRow(batch.rows[position]) + " (" + batch.ids[position].length
            + " tokens)";
      }

      @Override
      public void reject(int position, OrtException e) {
        batch.windows[position].reject(batch.rows[position], "Model '" + binding.modelName()
            + "' cannot take this text (" + batch.ids[position].length + " tokens): " + e.getMessage()
            + ". Its inputs are " + binding.describeInputs(), e);
        batch.finish(position);
      }
    };
    return retry().run(parts, batch.size());
  }

  /** Runs positions {@code positions} of a batch and stores their pooled vectors in their windows. */
  private void run(TextBatch batch, int[] positions, boolean alone) throws OrtException {
    int rows = positions.length;
    int length = 0;
    for (int p : positions) {
      length = Math.max(length, batch.ids[p].length);
    }
    long cells = (long) rows * length;
    long realTokens = tokenBuffers.fill(batch.ids, positions, length);
    OrtEnvironment environment = OrtEnvironments.get();
    io.github.sparkinfer.device.LoadedModel model = model();
    Map<String, OnnxTensor> inputs = new LinkedHashMap<>();
    OnnxTensor pinned = null;
    long[] shape = {rows, length};
    try {
      for (TensorSpec spec : modelInputs) {
        inputs.put(spec.name(), tokenBuffers.tensor(environment, spec, shape));
      }
      boolean pooledOnDevice = pooledOnDevice();
      String outputName = pooledOnDevice ? DevicePooling.output() : embeddingOutput.name();
      long[] outputShape = outputShape(rows, length, pooledOnDevice);
      if (outputShape[outputShape.length - 1] >= 0) {
        long outputCells = outputShape.length == 3 ? cells * outputShape[2] : rows * outputShape[1];
        if (outputCells > io.github.sparkinfer.spark.registry.BufferSizes.MAX_BYTES / 4) {
          throw new PredictionException("Model '" + binding.modelName() + "': a batch of " + rows + " texts of " + length
              + " tokens gives an output of shape " + java.util.Arrays.toString(outputShape) + ", more than one buffer"
              + " can hold (" + io.github.sparkinfer.spark.registry.BufferSizes.MAX_BYTES + " bytes). Lower "
              + InferenceProperties.TOKEN_BUDGET + " or spark.sparkinfer.model." + binding.modelName() + ".batchSize");
        }
        outputBuffer = ensure(outputBuffer, outputCells * 4);
        pinned = OnnxTensor.createTensor(environment, DirectBuffers.prefix(outputBuffer, outputCells * 4), outputShape,
            OnnxJavaType.FLOAT);
        try (ModelRun ignored =
            ExecutorSessions.run(model, inputs, java.util.Set.of(), Map.of(outputName, pinned), metrics, alone)) {
          // The output is in outputBuffer.
        }
      } else {
        try (ModelRun result =
            ExecutorSessions.run(model, inputs, java.util.Set.of(outputName), Map.of(), metrics, alone)) {
          // Checked before pooling reads it at offsets its shape decides.
          OnnxTensor tensor = io.github.sparkinfer.spark.batch.OutputShapes.check(binding.modelName(),
              outputSpec(outputName), result.result().get(0), outputShape, OnnxJavaType.FLOAT,
              "a batch of " + rows + " texts of " + length + " tokens");
          outputShape = ((TensorInfo) tensor.getInfo()).getShape();
          ByteBuffer data = tensor.getByteBuffer();
          outputBuffer = ensure(outputBuffer, data.remaining());
          DirectBuffers.prefix(outputBuffer, data.remaining()).put(data);
        }
      }
      pool(batch, positions, length, outputShape);
    } finally {
      inputs.values().forEach(OnnxTensor::close);
      if (pinned != null) {
        pinned.close();
      }
    }
    metrics.batches.add(1);
    metrics.modelRows.add(rows);
    metrics.tokens.add(realTokens);
    metrics.paddingTokens.add(cells - realTokens);
    tokenCount += realTokens;
    paddedCount += cells;
    metrics.paddingPercent.set(Math.round(100.0 * (paddedCount - tokenCount) / paddedCount));
  }

  /**
   * The output's shape for a batch: [rows, length, d] or [rows, d], with d -1 when only the run
   * tells it (the output is then checked against this shape before it is read).
   */
  private long[] outputShape(int rows, int length, boolean pooledOnDevice) {
    long dimension = embeddingOutput.dimension(embeddingOutput.rank() - 1);
    dimension = dimension > 0 ? dimension : -1;
    if (!pooledOnDevice && embeddingOutput.rank() != 2) {
      // Token states [rows, length, d]; an output of another rank fails the check with its shape.
      return new long[] {rows, length, embeddingOutput.rank() == 3 ? dimension : -1};
    }
    return new long[] {rows, pooledOnDevice && embeddingOutput.rank() != 3 ? -1 : dimension};
  }

  private TensorSpec outputSpec(String name) {
    return model().signature().outputs().stream().filter(spec -> spec.name().equals(name)).findFirst()
        .orElse(embeddingOutput);
  }

  /** Pools the output of {@code positions} and copies each vector to its row's place in its window. */
  private void pool(TextBatch batch, int[] positions, int length, long[] shape) {
    long size = shape[shape.length - 1];
    if (dimension >= 0 && size != dimension) {
      // A window's vectors are one array of one width: a batch of another width would misplace them.
      throw new PredictionException("Model '" + binding.modelName() + "' returned embeddings of " + size
          + " values for one batch and of " + dimension + " for an earlier one (output shape "
          + java.util.Arrays.toString(shape) + "): an embedding model must give every text the same width");
    }
    try {
      int capacity = 0;
      for (int p : positions) {
        capacity = Math.max(capacity, batch.windows[p].rows.length);
      }
      io.github.sparkinfer.spark.registry.BufferSizes.checkWindow(binding.modelName(), capacity, size,
          InferenceProperties.SORT_WINDOW_ROWS);
    } catch (IllegalArgumentException e) {
      throw new PredictionException(e.getMessage(), e);
    }
    dimension = (int) size;
    if (pooled.length < positions.length * dimension) {
      pooled = new float[positions.length * dimension];
    }
    // Pooled in position order, then each vector to its window: the batch may hold several windows' rows.
    int[] order = new int[positions.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    long[][] ids = new long[positions.length][];
    for (int i = 0; i < positions.length; i++) {
      ids[i] = batch.ids[positions[i]];
    }
    pooling.pool(DirectBuffers.address(outputBuffer), shape, ids, order, length, pooled);
    for (int i = 0; i < positions.length; i++) {
      int p = positions[i];
      float[] vectors = batch.windows[p].vectorsOf(binding.modelName(), dimension);
      System.arraycopy(pooled, i * dimension, vectors, batch.rows[p] * dimension, dimension);
      batch.finish(p);
    }
  }

  UnsafeArrayData vector(TextWindow window, int row) {
    return pooling.vector(window.vectors, row, window.dimension);
  }

  /** Batches under the model's token budget: its setting, else the default for the device it runs on. */
  LengthBatchPlanner planner() {
    if (planner == null) {
      long budget = text.tokenBudget() > 0 ? text.tokenBudget()
          : !model().device().isAccelerator() ? InferenceProperties.TOKEN_BUDGET_CPU_DEFAULT
          : InferenceProperties.TOKEN_BUDGET_ACCELERATOR_DEFAULT;
      budget = io.github.sparkinfer.spark.batch.DeviceMemory.limit(binding.source().uri(), model(), budget);
      planner = LengthBatchPlanner.builder().maxRows(binding.batchSizeOn(model().device())).tokenBudget(budget).build();
    }
    return planner;
  }

  /** Whether the session's model has the pooling head (spark.sparkinfer.poolOnDevice): its output is pooled. */
  private boolean pooledOnDevice() {
    if (pooledOnDevice == null) {
      pooledOnDevice = model().signature().outputs().stream()
          .anyMatch(spec -> spec.name().equals(DevicePooling.output()));
    }
    return pooledOnDevice;
  }

  private RetryInHalves retry() {
    if (retry == null) {
      retry = new RetryInHalves(binding, model(), metrics);
    }
    return retry;
  }

  String modelName() {
    return binding.modelName();
  }

  io.github.sparkinfer.device.LoadedModel model() {
    if (loaded == null) {
      loaded = ExecutorSessions.acquire(binding, metrics);
    }
    return loaded;
  }

  private static ByteBuffer ensure(ByteBuffer buffer, long bytes) {
    return buffer.capacity() >= bytes ? buffer : DirectBuffers.allocate(bytes);
  }
}
