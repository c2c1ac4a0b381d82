package io.github.sparkinfer.spark;

import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test class that leaves a sparkinfer setting behind in the shared test session: every test
 * class shares one SparkSession (a SparkContext is per JVM), so a key one class sets and does not
 * reset would change what the next class tests. Registered for every test class through
 * META-INF/services and junit-platform.properties.
 */
public final class NoSettingsLeftBehind implements AfterAllCallback {
  @Override
  public void afterAll(ExtensionContext context) {
    SparkSession spark = SparkTestSessions.ifCreated();
    if (spark == null) {
      return;
    }
    Map<String, String> now = sparkinferSettings(spark);
    Map<String, String> initial = SparkTestSessions.initialSettings();
    if (!now.equals(initial)) {
      Map<String, String> changed = new TreeMap<>(now);
      initial.forEach(changed::remove);
      Map<String, String> removed = new TreeMap<>(initial);
      now.keySet().forEach(removed::remove);
      // Put the session back, so that one class's leak fails only that class.
      changed.keySet().forEach(key -> spark.conf().unset(key));
      initial.forEach((key, value) -> spark.conf().set(key, value));
      throw new AssertionError(context.getRequiredTestClass().getSimpleName()
          + " left sparkinfer settings behind in the shared test session: set or changed " + changed
          + ", removed " + removed.keySet() + ". Reset them after the test (spark.conf().unset, or"
          + " SparkInference.unregister for a model's keys)");
    }
  }

  static Map<String, String> sparkinferSettings(SparkSession spark) {
    Map<String, String> settings = new TreeMap<>();
    JavaCollections.asJava(spark.conf().getAll()).forEach((key, value) -> {
      if (key.startsWith("spark.sparkinfer.")) {
        settings.put(key, value);
      }
    });
    return settings;
  }
}
