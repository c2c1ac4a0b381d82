package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.TensorSpec;
import io.github.sparkinfer.spark.InferenceProperties;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.network.util.JavaUtils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How much memory one model batch may hold: {@link InferenceProperties#MAX_BATCH_BYTES}, by
 * default a share of an executor's memory per task slot. A batch size whose fixed-size rows would
 * need more is lowered to fit, with a WARN, so that no setting can make a task allocate more than
 * that; rows of dynamic size are cut into batches by the same budget as they arrive.
 */
final class BatchMemory {
  private static final Logger LOG = LoggerFactory.getLogger(BatchMemory.class);
  private static final long DEFAULT_CAP = 256L << 20;
  private static final long DEFAULT_FLOOR = 1L << 20;

  private BatchMemory() {}

  /** The setting, else min(256 MiB, executor memory / (4 × task slots per executor)). */
  static long maxBatchBytes(SettingsView settings, String model, SparkContext context) {
    String value = settings.get(InferenceProperties.MAX_BATCH_BYTES, null);
    if (value == null || value.isBlank()) {
      return defaultBytes(context);
    }
    long bytes;
    try {
      bytes = JavaUtils.byteStringAsBytes(value.trim());
    } catch (RuntimeException e) {
      throw Errors.analysis("Invalid value '" + value + "' for " + InferenceProperties.MAX_BATCH_BYTES + " (model '"
          + model + "'): use a size such as 64m or 1g");
    }
    if (bytes < 1024 || bytes > Integer.MAX_VALUE) {
      throw Errors.analysis("Invalid value '" + value + "' for " + InferenceProperties.MAX_BATCH_BYTES + " (model '"
          + model + "'): must be from 1k to 2g (one buffer of a batch cannot exceed 2 GiB)");
    }
    return bytes;
  }

  static long defaultBytes(SparkContext context) {
    SparkConf conf = context.getConf();
    long memory = conf.getSizeAsBytes(context.isLocal() ? "spark.driver.memory" : "spark.executor.memory", "1g");
    int cores = context.isLocal() ? context.defaultParallelism() : conf.getInt("spark.executor.cores", 1);
    int slots = Math.max(1, cores / Math.max(1, conf.getInt("spark.task.cpus", 1)));
    // A quarter of a slot's share of the memory: input and output buffers of one batch, with room to spare.
    return Math.min(DEFAULT_CAP, Math.max(DEFAULT_FLOOR, memory / (4L * slots)));
  }

  /** Bytes per row of the model's inputs and selected outputs, or -1 when any of them has a dynamic size. */
  static long fixedRowBytes(ModelSignature signature, java.util.List<TensorSpec> outputs) {
    long bytes = 0;
    for (TensorSpec spec : signature.inputs()) {
      int values = InputLayout.fixedValuesPerRow(spec);
      if (values < 0 || spec.elementType().byteSize() <= 0) {
        return -1;
      }
      bytes += (long) values * spec.elementType().byteSize();
    }
    for (TensorSpec spec : outputs) {
      int values = InputLayout.fixedValuesPerRow(spec);
      if (values < 0) {
        return -1;
      }
      bytes += (long) values * spec.elementType().byteSize();
    }
    return bytes;
  }

  /**
   * A text model's token budget, lowered (with a WARN) so that a batch's token inputs (three int64
   * tensors) and its embedding output fit the budget. 0 (unset: the device's default) is kept.
   */
  static long fitTokenBudget(ModelBinding binding, String embeddingOutput, long tokenBudget) {
    TensorSpec output = binding.signature().outputs().stream()
        .filter(spec -> spec.name().equals(embeddingOutput)).findFirst().orElse(null);
    if (tokenBudget <= 0 || output == null || output.dimension(output.rank() - 1) <= 0) {
      return tokenBudget;
    }
    long bytesPerToken = 3 * 8 + (output.rank() == 3 ? output.dimension(2) * 4 : 0);
    if (tokenBudget * bytesPerToken <= binding.maxBatchBytes()) {
      return tokenBudget;
    }
    long fitted = Math.max(1, binding.maxBatchBytes() / bytesPerToken);
    LOG.warn("Model '{}': token budget {} needs {} bytes per batch, more than {}={}; using {} tokens per batch",
        binding.modelName(), tokenBudget, tokenBudget * bytesPerToken, InferenceProperties.MAX_BATCH_BYTES,
        binding.maxBatchBytes(), fitted);
    return fitted;
  }

  /** A default {@code batchSize}, lowered without a WARN (no one asked for it) so that a batch fits the budget. */
  static int fitQuietly(int batchSize, long rowBytes, long maxBatchBytes) {
    if (rowBytes <= 0 || (long) batchSize * rowBytes <= maxBatchBytes) {
      return batchSize;
    }
    return (int) Math.max(1, maxBatchBytes / rowBytes);
  }

  /** {@code batchSize}, lowered (with a WARN) so that a batch of fixed-size rows fits the budget. */
  static int fit(String model, int batchSize, long rowBytes, long maxBatchBytes) {
    int fitted = fitQuietly(batchSize, rowBytes, maxBatchBytes);
    if (fitted == batchSize) {
      return batchSize;
    }
    LOG.warn("Model '{}': batch size {} needs {} bytes per batch ({} bytes per row), more than {}={}; using {} rows"
        + " per batch. Raise {} to allow larger batches", model, batchSize, (long) batchSize * rowBytes, rowBytes,
        InferenceProperties.MAX_BATCH_BYTES, maxBatchBytes, fitted, InferenceProperties.MAX_BATCH_BYTES);
    return fitted;
  }
}
