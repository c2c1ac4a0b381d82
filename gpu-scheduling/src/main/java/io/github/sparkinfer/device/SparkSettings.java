package io.github.sparkinfer.device;

import java.util.HashMap;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import scala.Tuple2;

/** sparkinfer's settings out of a SparkConf, as the plain map the parsers of this module read. */
final class SparkSettings {
  private static final String PREFIX = SchedulingProperties.PREFIX;

  private SparkSettings() {}

  static Map<String, String> of(SparkConf conf) {
    Map<String, String> settings = new HashMap<>();
    for (Tuple2<String, String> entry : conf.getAll()) {
      if (entry._1().startsWith(PREFIX)) {
        settings.put(entry._1(), entry._2());
      }
    }
    return settings;
  }

  /** The executor's (or driver's) settings; none outside Spark, as in unit tests. */
  static Map<String, String> ofThisJvm() {
    SparkEnv environment = SparkEnv.get();
    return environment == null ? Map.of() : of(environment.conf());
  }
}
