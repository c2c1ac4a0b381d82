package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.device.Device;
import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.spark.PredictionException;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Batches that ran out of device memory: such a batch is split in halves and run again (down to
 * one row, then the error), and the largest size that fitted becomes the most rows (or tokens) a
 * batch of that model gets on that device, with those provider options (a larger gpuMemLimit starts
 * afresh), in this JVM, so later batches do not fail the same way.
 * Counted in the node's metric and logged at WARN once per model and device.
 */
public final class DeviceMemory {
  private static final Logger LOG = LoggerFactory.getLogger(DeviceMemory.class);

  // (model file, device, provider options) → the most rows or tokens a batch may have there.
  private static final ConcurrentMap<String, Long> LIMITS = new ConcurrentHashMap<>();

  private DeviceMemory() {}

  /** Whether ONNX Runtime failed for want of memory (the CUDA arena, cudaMalloc, or the CPU allocator). */
  public static boolean isOutOfMemory(Throwable failure) {
    for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
      String message = cause.getMessage() == null ? "" : cause.getMessage().toLowerCase(Locale.ROOT);
      if (message.contains("out of memory") || message.contains("failed to allocate memory")
          || message.contains("available memory of") || message.contains("cudaerrormemoryallocation")
          || message.contains("bad_alloc")) {
        return true;
      }
    }
    return false;
  }

  /** The most a batch may hold on {@code device}: {@code configured}, or less after a batch ran out of memory there. */
  public static long limit(String modelUri, LoadedModel session, long configured) {
    Long learned = LIMITS.get(key(modelUri, session));
    return learned == null ? configured : Math.min(configured, learned);
  }

  /**
   * A batch of {@code size} rows or tokens ran out of memory on {@code device}: later batches get at
   * most half of it.
   */
  public static void ranOutOfMemory(String model, String modelUri, LoadedModel session, long size, String unit,
      PredictionMetrics metrics, Throwable failure) {
    metrics.memorySplits.add(1);
    long half = Math.max(1, size / 2);
    Device device = session.device();
    Long before = LIMITS.get(key(modelUri, session));
    LIMITS.merge(key(modelUri, session), half, Math::min);
    if (before == null) {
      LOG.warn("Model '{}' ran out of memory on {} with a batch of {} {}; running it again in halves, and giving later"
          + " batches on {} at most {} {} ({})", model, device, size, unit, device, half, unit, failure.getMessage());
    }
  }

  private static String key(String modelUri, LoadedModel session) {
    return modelUri + "@" + session.device() + "#" + session.settings().providerOptions();
  }

  /** The error for a single row or text that does not fit the device's memory. */
  public static PredictionException tooLarge(String model, Device device, String row, Throwable failure) {
    return new PredictionException("Model '" + model + "' ran out of memory on " + device + " even for " + row + ": "
        + failure.getMessage() + ". Give the device more memory (spark.sparkinfer.cuda.gpuMemLimit), let fewer runs"
        + " share it (spark.sparkinfer.device.concurrentRuns: other runs may hold its memory), run a smaller precision"
        + " (spark.sparkinfer.model." + model + ".precision=fp16), or run it on another device", failure);
  }
}
