package io.github.sparkinfer.spark;

/**
 * Configuration keys of the Spark surface. Precedence, highest first: a function argument or
 * DataFrame API setting, then the per-model session key ({@code spark.sparkinfer.model.<name>.*}),
 * then the session-wide key, then the default.
 */
public final class InferenceProperties {
  private InferenceProperties() {}

  /** Prefix of every per-model key: {@code spark.sparkinfer.model.<name>.<option>}. */
  public static final String MODEL_PREFIX = "spark.sparkinfer.model.";

  /** Per-model: Hadoop FileSystem URI of the .onnx file (file:, hdfs:, s3a:, ...). Required. */
  public static final String MODEL_PATH_SUFFIX = ".path";

  /** Per-model: rows per model call. Falls back to {@link #BATCH_SIZE}. */
  public static final String MODEL_BATCH_SIZE_SUFFIX = ".batchSize";

  /** Per-model: comma-separated model outputs to return; default all outputs. */
  public static final String MODEL_OUTPUTS_SUFFIX = ".outputs";

  /** Per-model: ONNX Runtime intra-op threads per session. Falls back to {@link #INTRA_OP_THREADS}. */
  public static final String MODEL_INTRA_OP_THREADS_SUFFIX = ".intraOpThreads";

  /** Session-wide rows per model call. */
  public static final String BATCH_SIZE = "spark.sparkinfer.batchSize";

  public static final int BATCH_SIZE_DEFAULT = 1024;

  /**
   * Session-wide ONNX Runtime intra-op threads per session; 0 means "follow spark.task.cpus" of the
   * task that runs the model.
   */
  public static final String INTRA_OP_THREADS = "spark.sparkinfer.intraOpThreads";

  public static final int INTRA_OP_THREADS_DEFAULT = 0;

  static String modelKey(String modelName, String suffix) {
    return MODEL_PREFIX + modelName + suffix;
  }
}
