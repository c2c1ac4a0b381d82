package io.github.sparkinfer.spark.config;

/**
 * Who may set a key. The trust boundary of a shared session (a Spark Connect or notebook server, a
 * Thrift server): its SQL users may set {@link #SESSION} and {@link #MODEL} keys and nothing else.
 */
public enum SettingScope {
  /**
   * Read from the application's SparkConf on the driver and on each executor (spark-submit
   * {@code --conf}, spark-defaults.conf). A session value that differs is refused: by the SET itself
   * where the extensions are installed, and by every model call. Keys that name a path, a library,
   * a host or a pointer, or that size what the whole executor shares, are of this scope.
   */
  APPLICATION("application"),
  /** Settable by SET for the whole session; travels to the executors inside the query plan. */
  SESSION("session"),
  /** One model's key ({@code spark.sparkinfer.model.<name>.*}), settable by SET or per call. */
  MODEL("model");

  private final String label;

  SettingScope(String label) {
    this.label = label;
  }

  /** The word docs/configuration.md shows in its scope column. */
  public String label() {
    return label;
  }
}
