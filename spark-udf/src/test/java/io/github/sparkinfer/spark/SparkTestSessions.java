package io.github.sparkinfer.spark;

import org.apache.spark.sql.SparkSession;

/**
 * One local Spark for the whole test JVM (a SparkContext is per JVM): local[4], sparkinfer's
 * extensions installed the way a spark-submit job does it.
 */
final class SparkTestSessions {
  private static SparkSession shared;
  private static java.util.Map<String, String> initialSettings;

  private SparkTestSessions() {}

  static synchronized SparkSession shared() {
    if (shared == null) {
      shared = SparkSession.builder()
          .master("local[4]")
          .appName("sparkinfer-tests")
          .config("spark.sql.extensions", SparkInferenceExtensions.class.getName())
          .config("spark.ui.enabled", "false")
          .config("spark.sql.shuffle.partitions", "4")
          .config("spark.driver.host", "127.0.0.1")
          .config("spark.sql.adaptive.enabled", "false")
          // Results are checked against ORT on the CPU at 1e-6: auto would pick a GPU on a GPU host
          // (TF32). TestGpuInference asks for cuda:0 itself, and puts this back with reset().
          .config("spark.sparkinfer.device", "cpu")
          // A fresh model cache folder per test JVM: copies and compressions are counted from zero.
          .config("spark.sparkinfer.cache.dir", cacheDirectory())
          .getOrCreate();
      initialSettings = NoSettingsLeftBehind.sparkinferSettings(shared);
    }
    return shared;
  }

  /** The shared session, or null when no test has asked for it yet. */
  static synchronized SparkSession ifCreated() {
    return shared;
  }

  /** Puts {@code key} back as the session was created: its initial value, or unset. */
  static synchronized void reset(String key) {
    String initial = initialSettings == null ? null : initialSettings.get(key);
    if (initial == null) {
      shared().conf().unset(key);
    } else {
      shared().conf().set(key, initial);
    }
  }

  /**
   * Sets an application key as spark-submit --conf would have: on the application's SparkConf, which
   * the driver and (in local mode, the same object) the executors read. Tests only: a running
   * application's configuration is not meant to change. Undo with {@link #resetApplication}.
   */
  static synchronized void setApplication(String key, String value) {
    shared().sparkContext().conf().set(key, value);
  }

  /** Removes what {@link #setApplication} set. */
  static synchronized void resetApplication(String key) {
    shared().sparkContext().conf().remove(key);
  }

  /** The session's spark.sparkinfer.* settings as it was created. */
  static synchronized java.util.Map<String, String> initialSettings() {
    return initialSettings;
  }

  private static String cacheDirectory() {
    try {
      java.nio.file.Path folder = java.nio.file.Files.createTempDirectory("sparkinfer-test-model-cache");
      folder.toFile().deleteOnExit();
      return folder.toString();
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** A session on the same SparkContext with no extensions at all, as a notebook may have. */
  static SparkSession withoutExtensions() {
    return SessionsWithoutExtensions.on(shared().sparkContext());
  }
}
