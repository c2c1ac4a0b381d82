package io.github.sparkinfer.device;

import org.apache.hadoop.conf.Configuration;

/**
 * The per-JVM (per-executor) model cache. STUB: being implemented.
 */
public final class ModelCache {
  public static ModelCache shared() {
    throw new UnsupportedOperationException("not yet implemented");
  }

  public LoadedModel acquire(
      ModelSource source, SessionSettings settings, Configuration hadoopConfiguration) {
    throw new UnsupportedOperationException("not yet implemented");
  }

  public long loadCount() {
    throw new UnsupportedOperationException("not yet implemented");
  }

  public long loadCount(ModelSource source) {
    throw new UnsupportedOperationException("not yet implemented");
  }
}
