package io.github.sparkinfer.device;

import java.time.Duration;
import java.util.function.BiFunction;
import org.apache.spark.network.util.JavaUtils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * When the model cache closes sessions nobody uses: after {@link SchedulingProperties#CACHE_IDLE_TIMEOUT}
 * without a run or a task holding them, beyond {@link SchedulingProperties#CACHE_MAX_SESSIONS} or
 * {@link SchedulingProperties#CACHE_MAX_BYTES} per device (least recently used first), and, always,
 * once a newer version of their file is loaded. Executor-wide settings (its SparkConf). Immutable.
 */
final class CachePolicy {
  private static final Logger LOG = LoggerFactory.getLogger(CachePolicy.class);

  static final CachePolicy DEFAULT = new CachePolicy(
      Duration.ofMillis(JavaUtils.timeStringAsMs(SchedulingProperties.CACHE_IDLE_TIMEOUT_DEFAULT)),
      SchedulingProperties.CACHE_MAX_SESSIONS_DEFAULT, 0);

  private final Duration idleTimeout;
  private final int maxSessionsPerDevice;
  private final long maxBytesPerDevice;

  CachePolicy(Duration idleTimeout, int maxSessionsPerDevice, long maxBytesPerDevice) {
    this.idleTimeout = idleTimeout;
    this.maxSessionsPerDevice = maxSessionsPerDevice;
    this.maxBytesPerDevice = maxBytesPerDevice;
  }

  /** Read from settings by key; a bad value is logged and its default used: it must not stop a JVM. */
  static CachePolicy fromSettings(BiFunction<String, String, String> settings) {
    Duration idle = DEFAULT.idleTimeout;
    int sessions = DEFAULT.maxSessionsPerDevice;
    long bytes = DEFAULT.maxBytesPerDevice;
    String value = settings.apply(SchedulingProperties.CACHE_IDLE_TIMEOUT, null);
    try {
      if (value != null) {
        idle = Duration.ofMillis(JavaUtils.timeStringAsMs(value.trim()));
      }
    } catch (RuntimeException e) {
      warn(SchedulingProperties.CACHE_IDLE_TIMEOUT, value, "a duration such as 30min or 0 (never)");
    }
    value = settings.apply(SchedulingProperties.CACHE_MAX_SESSIONS, null);
    try {
      if (value != null) {
        sessions = Math.max(0, Integer.parseInt(value.trim()));
      }
    } catch (RuntimeException e) {
      warn(SchedulingProperties.CACHE_MAX_SESSIONS, value, "a whole number, 0 for no limit");
    }
    value = settings.apply(SchedulingProperties.CACHE_MAX_BYTES, null);
    try {
      if (value != null) {
        bytes = Math.max(0, JavaUtils.byteStringAsBytes(value.trim()));
      }
    } catch (RuntimeException e) {
      warn(SchedulingProperties.CACHE_MAX_BYTES, value, "a size such as 20g, 0 for no limit");
    }
    return new CachePolicy(idle, sessions, bytes);
  }

  private static void warn(String key, String value, String expected) {
    LOG.warn("Invalid {}={}: use {}; using its default", key, value, expected);
  }

  /** Zero: sessions are never closed for being idle. */
  Duration idleTimeout() {
    return idleTimeout;
  }

  /** Zero: no limit. */
  int maxSessionsPerDevice() {
    return maxSessionsPerDevice;
  }

  /** Zero: no limit. Measured as the model files' bytes (the .onnx and its external data). */
  long maxBytesPerDevice() {
    return maxBytesPerDevice;
  }

  @Override
  public String toString() {
    return "idle timeout " + idleTimeout + ", at most " + (maxSessionsPerDevice == 0 ? "any number of" : maxSessionsPerDevice)
        + " sessions and " + (maxBytesPerDevice == 0 ? "any size" : maxBytesPerDevice + " bytes") + " per device";
  }
}
