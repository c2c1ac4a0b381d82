package io.github.sparkinfer.device;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fallback policy's bookkeeping: sessions that run on the CPU because their device could not be
 * used, counted, and one WARN per model and device per JVM; and the fix a failure names when the
 * policy is fail. Thread-safe.
 */
final class DeviceFallbacks {
  private static final Logger LOG = LoggerFactory.getLogger(ModelCache.class);

  private final AtomicLong fallbacks = new AtomicLong();
  private final ConcurrentMap<ModelSource, LongAdder> bySource = new ConcurrentHashMap<>();
  // Model name, URI and device of each fallback warned about.
  private final Set<String> warned = ConcurrentHashMap.newKeySet();
  private final AtomicLong warnings = new AtomicLong();

  void record(ModelSource source, Device device, String reason, Throwable cause) {
    fallbacks.incrementAndGet();
    bySource.computeIfAbsent(source, ignored -> new LongAdder()).increment();
    if (warned.add(source.name() + '\n' + source.uri() + '\n' + device)) {
      warnings.incrementAndGet();
      LOG.warn(
          "Model '{}' from {} runs on the CPU instead of {}: {}. This is the fallback policy"
              + " {}=cpu; set it to fail to stop instead. Logged once per model and device in this JVM",
          source.name(), source.uri(), device, reason, SchedulingProperties.DEVICE_FALLBACK);
      if (cause != null) {
        LOG.debug("Why model '{}' could not be loaded on {}", source.name(), device, cause);
      }
    }
  }

  long count() {
    return fallbacks.get();
  }

  long count(ModelSource source) {
    LongAdder count = bySource.get(source);
    return count == null ? 0 : count.sum();
  }

  long warningCount() {
    return warnings.get();
  }

  /** What to do when {@code device} cannot be used: its provider is missing, or it failed. */
  static String fix(Device device, SessionSettings settings, boolean providerMissing) {
    String orFallBack = "; or set " + SchedulingProperties.DEVICE_FALLBACK + "=cpu to run on the CPU instead";
    if (device.type() == Device.Type.NPU) {
      return "Give these tasks a GPU or the CPU instead of an Ascend NPU (no spark.task.resource."
          + SchedulingProperties.NPU_RESOURCE_DEFAULT + ".amount, and " + SchedulingProperties.DEVICE
          + "=cpu or cuda:<index>)" + orFallBack;
    }
    String version = OrtEnvironments.get().getVersion();
    boolean tensorrt = settings.providerOptions().tensorrtEnabled();
    if (providerMissing) {
      return "Put ONNX Runtime's GPU build on the executors' classpath (com.microsoft.onnxruntime:onnxruntime_gpu:"
          + version + " in place of com.microsoft.onnxruntime:onnxruntime)"
          + (tensorrt ? ", or set " + SchedulingProperties.TENSORRT_ENABLED + "=false" : "") + orFallBack;
    }
    return "Check that " + device + " exists and is visible to the executor (nvidia-smi; CUDA_VISIBLE_DEVICES), that"
        + " the CUDA and cuDNN libraries"
        + (tensorrt ? " and TensorRT's (or set " + SchedulingProperties.TENSORRT_ENABLED + "=false)" : "")
        + " match what ONNX Runtime " + version + " was built for, and that the provider options ["
        + settings.providerOptions() + "] are valid" + orFallBack;
  }
}
