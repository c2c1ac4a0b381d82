package io.github.sparkinfer.benchmarks;

import io.github.sparkinfer.spark.SparkInferenceExtensions;
import org.apache.spark.sql.SparkSession;

/** The embedded Spark every benchmark runs in. */
final class LocalSpark {
  private LocalSpark() {}

  /** {@code local[cores]} with sparkinfer installed, as many shuffle partitions as cores, no UI. */
  static SparkSession session(String appName, int cores) {
    return SparkSession.builder()
        .appName(appName)
        .master("local[" + cores + "]")
        .config("spark.sql.extensions", SparkInferenceExtensions.class.getName())
        .config("spark.sql.shuffle.partitions", cores)
        .config("spark.ui.enabled", false)
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate();
  }
}
