package io.github.sparkinfer.spark.config;

import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.SparkConf;

/**
 * Keeps {@link SettingScope#APPLICATION} keys the application's: a session (a SQL SET, {@code
 * spark.conf.set}, a Spark Connect client's config call, a DataFrame API option) can neither set
 * them nor ship them to the executors. The SET itself is refused where sparkinfer's extensions are
 * installed (a check rule); every model call checks the whole session again, since {@code
 * spark.conf.set} and Spark Connect's config calls change the session without a query to check.
 */
public final class ApplicationSettings {
  private ApplicationSettings() {}

  /**
   * Refuses a session value of an application key that differs from the application's own.
   *
   * @throws IllegalArgumentException naming the key, both values and the fix
   */
  public static void checkSessionValue(String key, String sessionValue, SparkConf application) {
    if (!SparkinferSettings.isApplicationOnly(key)) {
      return;
    }
    String applicationValue = application.get(key, null);
    if (sessionValue != null && !sessionValue.equals(applicationValue)) {
      throw new IllegalArgumentException(key + " is an application setting: it names a path, a library or a host,"
          + " or sizes what every task of an executor shares, so only the application's configuration"
          + " (spark-submit --conf, spark-defaults.conf) sets it, and the driver and every executor read it there."
          + " A session cannot set it: its value '" + sessionValue + "' differs from the application's ("
          + (applicationValue == null ? "unset" : "'" + applicationValue + "'") + "). RESET " + key
          + " in this session, or set it in the application's configuration");
    }
  }

  /** {@link #checkSessionValue} for every sparkinfer key of a session (or of a call's own settings). */
  public static void checkSession(Map<String, String> settings, SparkConf application) {
    for (Map.Entry<String, String> entry : new TreeMap<>(settings).entrySet()) {
      if (entry.getKey().startsWith("spark.sparkinfer.")) {
        checkSessionValue(entry.getKey(), entry.getValue(), application);
      }
    }
  }

  /**
   * The settings that may travel inside a query plan to the executors: every application key is
   * left out, so an executor reads those from its own SparkConf alone.
   */
  public static Map<String, String> withoutApplicationKeys(Map<String, String> settings) {
    Map<String, String> shipped = new TreeMap<>();
    settings.forEach((key, value) -> {
      if (!SparkinferSettings.isApplicationOnly(key)) {
        shipped.put(key, value);
      }
    });
    return shipped;
  }
}
