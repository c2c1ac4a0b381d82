package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.spark.JavaCollections;
import io.github.sparkinfer.spark.config.ApplicationSettings;
import io.github.sparkinfer.spark.config.SparkinferSettings;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.internal.SQLConf;
import scala.Tuple2;

/**
 * The settings one model call is resolved with: the session's SQL configuration with the call's
 * own settings (a DataFrame API or ML stage option, by full key) over it, so the precedence is
 * call > per-model key > session key > default; application keys ({@link SparkinferSettings}) come
 * from the application's SparkConf alone, as on the executors. Whole-number values are checked
 * here, naming the key, the model and the value.
 */
final class SettingsView {
  private static final String SPARKINFER_PREFIX = "spark.sparkinfer.";

  private final SQLConf conf;
  private final Map<String, String> overrides;
  private final SparkConf application;

  /**
   * @throws IllegalArgumentException when the session or the call sets an application key to a
   *     value other than the application's ({@link ApplicationSettings})
   */
  SettingsView(SQLConf conf, Map<String, String> overrides, SparkConf application) {
    ApplicationSettings.checkSession(JavaCollections.asJava(conf.getAllConfs()), application);
    ApplicationSettings.checkSession(overrides, application);
    this.conf = conf;
    this.overrides = Map.copyOf(overrides);
    this.application = application;
  }

  String get(String key, String fallback) {
    // Every key read here is one SparkinferSettings declares (type, scope, default, doc): a key read
    // without a declaration would have no scope, so the trust boundary could not hold for it.
    if (key.startsWith(SPARKINFER_PREFIX) && SparkinferSettings.find(key).isEmpty()) {
      throw new IllegalStateException("sparkinfer reads " + key + ", which SparkinferSettings does not declare;"
          + " declare it there with its type, scope, default and doc");
    }
    if (SparkinferSettings.isApplicationOnly(key)) {
      return application.get(key, fallback);
    }
    return overrides.containsKey(key) ? overrides.get(key) : conf.getConfString(key, fallback);
  }

  boolean isSet(String key) {
    String value = get(key, null);
    return value != null && !value.isBlank();
  }

  /** Every setting, the call's over the session's. */
  Map<String, String> all() {
    Map<String, String> all = new TreeMap<>(JavaCollections.asJava(conf.getAllConfs()));
    all.putAll(overrides);
    all = new TreeMap<>(ApplicationSettings.withoutApplicationKeys(all));
    for (Tuple2<String, String> entry : application.getAllWithPrefix("spark.sparkinfer.")) {
      String key = "spark.sparkinfer." + entry._1();
      if (SparkinferSettings.isApplicationOnly(key)) {
        all.put(key, entry._2());
      }
    }
    return all;
  }

  int positiveInt(String model, String key, int fallback) {
    int value = parseInt(model, key, fallback);
    if (value < 1) {
      throw Errors.analysis(
          "Invalid value " + value + " for " + key + " (model '" + model + "'): must be at least 1");
    }
    return value;
  }

  /** The key's value, at least 1, or 0 when it is not set. */
  int optionalPositiveInt(String model, String key) {
    return isSet(key) ? positiveInt(model, key, 1) : 0;
  }

  int nonNegativeInt(String model, String key, int fallback) {
    int value = parseInt(model, key, fallback);
    if (value < 0) {
      throw Errors.analysis(
          "Invalid value " + value + " for " + key + " (model '" + model + "'): must be 0 (follow"
              + " spark.task.cpus) or more");
    }
    return value;
  }

  private int parseInt(String model, String key, int fallback) {
    String text = get(key, null);
    if (text == null || text.isBlank()) {
      return fallback;
    }
    try {
      return Integer.parseInt(text.trim());
    } catch (NumberFormatException e) {
      throw Errors.analysis(
          "Invalid value '" + text + "' for " + key + " (model '" + model + "'): not a whole number");
    }
  }
}
