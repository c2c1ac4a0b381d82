package io.github.sparkinfer.spark.plan;

/** Package-private counters, for tests in other packages. */
public final class TestAccess {
  private TestAccess() {}

  public static long compressions() {
    return CompressedModels.compressionCount();
  }
}
