package io.github.sparkinfer.spark.registry;

/** Package-private counters, for tests in other packages. */
public final class TestAccess {
  private TestAccess() {}

  public static java.util.List<String> compressedFileNames() {
    return CompressedModels.compressedFiles().stream().map(path -> path.getFileName().toString())
        .collect(java.util.stream.Collectors.toList());
  }

  public static long compressions() {
    return CompressedModels.compressionCount();
  }
}
