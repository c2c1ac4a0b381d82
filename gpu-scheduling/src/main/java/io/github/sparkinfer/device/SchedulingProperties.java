package io.github.sparkinfer.device;

/** Configuration keys of the gpu-scheduling module. Read from the executor's SparkConf. */
public final class SchedulingProperties {
  private SchedulingProperties() {}

  /** Local folder where model files are copied from their URIs, once per file version. */
  public static final String CACHE_DIRECTORY = "spark.sparkinfer.cache.dir";

  /** Default: a folder under java.io.tmpdir, shared by the executors of one machine. */
  public static final String CACHE_DIRECTORY_DEFAULT =
      System.getProperty("java.io.tmpdir") + "/sparkinfer-model-cache";
}
