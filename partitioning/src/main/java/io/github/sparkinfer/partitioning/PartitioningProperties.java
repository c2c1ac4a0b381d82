package io.github.sparkinfer.partitioning;

/**
 * Configuration keys of the partitioning module: the resources of the inference stage.
 *
 * <p>Each key can be set session-wide ({@code spark.sparkinfer.stage.<option>}) or for one model
 * ({@code spark.sparkinfer.model.<name>.stage.<option>}, which wins key by key). None is set by
 * default: the inference stage then runs with the application's default resource profile, like
 * every other stage. A DataFrame API setting ({@code Inference.stageResources}) replaces all keys.
 */
public final class PartitioningProperties {
  private PartitioningProperties() {}

  /**
   * Where one model's keys start: {@code spark.sparkinfer.model.<name>.<option>}. Defined here, the
   * lowest module that reads per-model keys; spark-udf's InferenceProperties.MODEL_PREFIX is this.
   */
  public static final String MODEL_PREFIX = "spark.sparkinfer.model.";

  /** Session-wide prefix of the stage keys. */
  public static final String STAGE_PREFIX = "spark.sparkinfer.stage.";

  /** Per-model prefix of the stage keys: {@code spark.sparkinfer.model.<name>.stage.<option>}. */
  public static final String MODEL_STAGE_INFIX = ".stage.";

  /** Option: CPUs per inference task. Unset: spark.task.cpus. */
  public static final String TASK_CPUS = "task.cpus";

  /**
   * Option {@code task.resource.<resource>.amount}: amount of a resource (gpu, npu, ...) per
   * inference task, as spark.task.resource.gpu.amount: a fraction up to 1 (tasks share an address)
   * or a whole number.
   */
  public static final String TASK_RESOURCE_PREFIX = "task.resource.";

  /**
   * Options that ask for new executors for the stage (needs dynamic allocation): {@code
   * executor.cores}, {@code executor.memory}, {@code executor.memoryOverhead}, and {@code
   * executor.resource.<resource>.amount} with optional {@code .discoveryScript} and {@code .vendor}.
   */
  public static final String EXECUTOR_CORES = "executor.cores";

  public static final String EXECUTOR_MEMORY = "executor.memory";

  public static final String EXECUTOR_MEMORY_OVERHEAD = "executor.memoryOverhead";

  public static final String EXECUTOR_RESOURCE_PREFIX = "executor.resource.";

  /** Suffix of a resource's amount, as in Spark's spark.task.resource.gpu.amount. */
  public static final String AMOUNT_SUFFIX = ".amount";

  public static final String DISCOVERY_SCRIPT_SUFFIX = ".discoveryScript";

  public static final String VENDOR_SUFFIX = ".vendor";
}
