package io.github.sparkinfer.device;

import java.nio.file.Paths;
import java.time.Duration;
import org.apache.spark.SparkEnv;
import org.apache.spark.network.util.JavaUtils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one {@link ModelCache} of this JVM, created on first use (so that SparkEnv exists when its
 * folder is read), with the shutdown hook that closes its sessions when the JVM ends (SIGTERM
 * included) after waiting up to the grace period for runs in flight.
 */
final class SharedModelCache {
  private static final Logger LOG = LoggerFactory.getLogger(ModelCache.class);

  private SharedModelCache() {}

  static final ModelCache INSTANCE = create();

  private static ModelCache create() {
    AllowedRoots roots = AllowedRoots.parseOrRefuseAll(configured(SchedulingProperties.MODEL_ALLOWED_ROOTS, ""));
    CachePolicy policy = CachePolicy.fromSettings(SharedModelCache::configured);
    ModelCache cache = new ModelCache(Paths.get(configured(SchedulingProperties.CACHE_DIRECTORY,
        SchedulingProperties.CACHE_DIRECTORY_DEFAULT)), roots, policy, System::nanoTime);
    if (!policy.idleTimeout().isZero()) {
      // Idle sessions close even when no task comes: a long-lived executor or server gives memory back.
      long period = Math.max(1_000, Math.min(60_000, policy.idleTimeout().toMillis() / 4));
      java.util.concurrent.ScheduledExecutorService timer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
          runnable -> {
            Thread thread = new Thread(runnable, "sparkinfer-model-cache-eviction");
            thread.setDaemon(true);
            return thread;
          });
      timer.scheduleWithFixedDelay(() -> {
        try {
          cache.evictUnused();
        } catch (RuntimeException e) {
          LOG.warn("Closing unused model sessions failed", e);
        }
      }, period, period, java.util.concurrent.TimeUnit.MILLISECONDS);
    }
    Duration grace = gracePeriod();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      ShutdownSummary summary = cache.closeAll(grace);
      if (summary.sessions() > 0) {
        // Also straight to stderr: log4j's own shutdown hook may have stopped logging already
        // (seen on standalone executors), and this line says whether runs were cut short.
        System.err.println("sparkinfer: " + summary);
      }
    }, "sparkinfer-model-cache-shutdown"));
    return cache;
  }

  /** The executor's setting; a bad value is logged and the default used: it must not stop a JVM. */
  private static Duration gracePeriod() {
    String value = configured(SchedulingProperties.SHUTDOWN_GRACE_PERIOD,
        SchedulingProperties.SHUTDOWN_GRACE_PERIOD_DEFAULT_MS + "ms");
    try {
      long millis = JavaUtils.timeStringAsMs(value.trim());
      if (millis < 0) {
        throw new NumberFormatException("negative");
      }
      return Duration.ofMillis(millis);
    } catch (RuntimeException e) {
      LOG.warn("Invalid {}={} ({}): use a duration such as 10s or 500ms; using {} ms",
          SchedulingProperties.SHUTDOWN_GRACE_PERIOD, value, e.getMessage(),
          SchedulingProperties.SHUTDOWN_GRACE_PERIOD_DEFAULT_MS);
      return Duration.ofMillis(SchedulingProperties.SHUTDOWN_GRACE_PERIOD_DEFAULT_MS);
    }
  }

  private static String configured(String key, String defaultValue) {
    SparkEnv environment = SparkEnv.get();
    if (environment == null) {
      return defaultValue;
    }
    return environment.conf().get(key, defaultValue);
  }
}
