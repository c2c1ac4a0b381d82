package io.github.sparkinfer.device;

import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.SparkConf;

/**
 * What the {@link ModelCache} does when a session cannot be created on the accelerator it was asked
 * for: the execution provider is missing from ONNX Runtime's build, or creating the session with it
 * fails. Set with {@link SchedulingProperties#DEVICE_FALLBACK}.
 */
public enum DeviceFallback {
  /**
   * Run the model on the CPU: the cache logs one WARN per model and device, counts the fallback
   * ({@link ModelCache#fallbackCount()}) and returns a model whose {@link LoadedModel#device()} is
   * the CPU while {@link LoadedModel#requestedDevice()} is the accelerator.
   */
  CPU,
  /**
   * Fail the load with a {@link ModelLoadException} naming the device, the provider and the fix.
   */
  FAIL;

  /** Reads {@code cpu} or {@code fail}, in any case. */
  public static DeviceFallback parse(String text) {
    Objects.requireNonNull(text, "text");
    switch (text.trim().toLowerCase(Locale.ROOT)) {
      case "cpu":
        return CPU;
      case "fail":
        return FAIL;
      default:
        throw new IllegalArgumentException(
            "Invalid "
                + SchedulingProperties.DEVICE_FALLBACK
                + " '"
                + text
                + "': expected cpu (run on the CPU when the accelerator cannot be used) or fail");
    }
  }

  /** The policy set in {@code settings} (Spark settings by key), or the default, cpu. */
  public static DeviceFallback fromSettings(Map<String, String> settings) {
    return parse(
        settings.getOrDefault(
            SchedulingProperties.DEVICE_FALLBACK, SchedulingProperties.DEVICE_FALLBACK_DEFAULT));
  }

  /** {@link #fromSettings} of a SparkConf. */
  public static DeviceFallback fromConf(SparkConf conf) {
    return fromSettings(SparkSettings.of(conf));
  }

  @Override
  public String toString() {
    return name().toLowerCase(Locale.ROOT);
  }
}
