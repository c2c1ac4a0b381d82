package io.github.sparkinfer.device;

/**
 * Configuration keys of the gpu-scheduling module. Read from the executor's SparkConf.
 *
 * <p>Keys without a {@code _DEFAULT} constant are unset by default, which leaves the setting to
 * ONNX Runtime's own default.
 */
public final class SchedulingProperties {
  private SchedulingProperties() {}

  /** Every sparkinfer key starts with this. */
  public static final String PREFIX = "spark.sparkinfer.";

  /** The CUDA provider's keys. */
  public static final String CUDA_PREFIX = PREFIX + "cuda.";

  /** The TensorRT provider's keys. */
  public static final String TENSORRT_PREFIX = PREFIX + "tensorrt.";

  /** The CANN (Ascend) provider's keys. */
  public static final String CANN_PREFIX = PREFIX + "cann.";

  /**
   * The keys that decide where and how a session runs: the device keys and the providers' keys.
   * A session's values of these travel with its query plan to the executors.
   */
  public static final java.util.List<String> DEVICE_SETTING_PREFIXES =
      java.util.List.of(PREFIX + "device", CUDA_PREFIX, TENSORRT_PREFIX, CANN_PREFIX);

  /**
   * Application-wide (static: read from the SparkConf of the driver and the executors; a SQL SET
   * cannot change it): comma-separated folders (URIs) that model and tokenizer files must lie
   * under, such as {@code hdfs://nn/models/,s3a://bucket/models/,file:/opt/models/}. Unset: any
   * storage URI, and no URL scheme (http, https, ftp, sftp). See {@link AllowedRoots}.
   */
  public static final String MODEL_ALLOWED_ROOTS = "spark.sparkinfer.model.allowedRoots";

  /**
   * Executor-wide: a session no run and no task has used for this long is closed, and its local copy
   * deleted; 0 never. Replaced versions are closed as soon as their last user is done, whatever this says.
   */
  public static final String CACHE_IDLE_TIMEOUT = "spark.sparkinfer.cache.idleTimeout";

  public static final String CACHE_IDLE_TIMEOUT_DEFAULT = "30min";

  /** Executor-wide: most open sessions per device; beyond it the least recently used unused one is closed. 0: no limit. */
  public static final String CACHE_MAX_SESSIONS = "spark.sparkinfer.cache.maxSessionsPerDevice";

  public static final int CACHE_MAX_SESSIONS_DEFAULT = 16;

  /**
   * Executor-wide: most bytes of model files (the .onnx and its external data) with an open session
   * per device, such as 40g; beyond it the least recently used unused session is closed. 0: no limit.
   */
  public static final String CACHE_MAX_BYTES = "spark.sparkinfer.cache.maxBytesPerDevice";

  /** Local folder where model files are copied from their URIs, once per file version. */
  public static final String CACHE_DIRECTORY = "spark.sparkinfer.cache.dir";

  /**
   * Default: a folder under java.io.tmpdir for each user, shared by that user's executors on one
   * machine and readable by that user alone.
   */
  public static final String CACHE_DIRECTORY_DEFAULT =
      System.getProperty("java.io.tmpdir") + "/sparkinfer-model-cache-" + System.getProperty("user.name");

  /**
   * Executor-wide: how long the model cache's shutdown (a JVM shutdown hook, so also after SIGTERM)
   * waits for model runs in flight before closing sessions, as a duration (10s, 500ms). A session
   * still running at the end is left open for the exiting process, never closed under the run.
   */
  public static final String SHUTDOWN_GRACE_PERIOD = "spark.sparkinfer.shutdown.gracePeriod";

  public static final long SHUTDOWN_GRACE_PERIOD_DEFAULT_MS = 10_000;

  /**
   * The device for tasks that Spark assigned no GPU or NPU (local mode, clusters without resource
   * scheduling): {@code auto}, {@code cpu}, {@code cuda} (cuda:0), {@code cuda:<index>}, {@code
   * npu} (npu:0) or {@code npu:<index>}. A task's Spark-assigned resources always take precedence;
   * see {@link DeviceResolver}.
   */
  public static final String DEVICE = "spark.sparkinfer.device";

  /**
   * {@code auto}: cuda:0 when ONNX Runtime has the CUDA execution provider (the onnxruntime_gpu
   * build) and this machine shows an NVIDIA GPU, otherwise the CPU.
   */
  public static final String DEVICE_DEFAULT = "auto";

  /**
   * What happens when a session cannot be created on its accelerator (the provider is missing from
   * ONNX Runtime's build, or creating the session with it fails): {@code cpu} logs a WARN once per
   * model and device, counts it ({@link ModelCache#fallbackCount()}) and runs the model on the CPU;
   * {@code fail} fails the load with a {@link ModelLoadException}.
   */
  public static final String DEVICE_FALLBACK = "spark.sparkinfer.device.fallback";

  public static final String DEVICE_FALLBACK_DEFAULT = "cpu";

  /**
   * How many session runs may use one GPU or NPU at once in an executor ({@link DeviceRunLimiter});
   * more tasks wait. Runs on the CPU are not limited: Spark's task slots already bound them.
   */
  public static final String DEVICE_CONCURRENT_RUNS = "spark.sparkinfer.device.concurrentRuns";

  /**
   * Two runs keep a GPU busy while one of them copies its inputs and outputs, without letting every
   * task of an executor queue kernels and allocate activations on it at once.
   */
  public static final int DEVICE_CONCURRENT_RUNS_DEFAULT = 2;

  /**
   * The Spark resource name whose addresses are CUDA devices, as in spark.task.resource.gpu.amount.
   */
  public static final String GPU_RESOURCE = "spark.sparkinfer.device.gpuResource";

  public static final String GPU_RESOURCE_DEFAULT = "gpu";

  /** The Spark resource name whose addresses are Ascend NPUs (CANN logical device ids). */
  public static final String NPU_RESOURCE = "spark.sparkinfer.device.npuResource";

  public static final String NPU_RESOURCE_DEFAULT = "npu";

  /**
   * Upper bound of the CUDA execution provider's memory arena on each GPU, in bytes or with a
   * binary suffix (k, m, g, t: {@code 8g}). Unset: no bound. ORT option gpu_mem_limit.
   */
  public static final String CUDA_GPU_MEMORY_LIMIT = "spark.sparkinfer.cuda.gpuMemLimit";

  /**
   * How the CUDA arena grows: {@code kNextPowerOfTwo} (ORT's default) or {@code kSameAsRequested},
   * which wastes less memory when sessions share a GPU. ORT option arena_extend_strategy.
   */
  public static final String CUDA_ARENA_EXTEND_STRATEGY =
      "spark.sparkinfer.cuda.arenaExtendStrategy";

  /**
   * How cuDNN picks convolution algorithms: {@code EXHAUSTIVE} (ORT's default: benchmarks them on
   * first use), {@code HEURISTIC} or {@code DEFAULT}. ORT option cudnn_conv_algo_search.
   */
  public static final String CUDA_CUDNN_CONV_ALGO_SEARCH =
      "spark.sparkinfer.cuda.cudnnConvAlgoSearch";

  /**
   * Whether float32 matrix multiplications and convolutions may use TF32 on Ampere and newer GPUs
   * (faster, about 10 mantissa bits): {@code true} or {@code false}. Unset: ORT's default
   * (allowed). ORT option use_tf32.
   */
  public static final String CUDA_TF32 = "spark.sparkinfer.cuda.tf32";

  /**
   * Prefix for any other CUDA execution provider option, passed to ONNX Runtime as is: {@code
   * spark.sparkinfer.cuda.option.enable_cuda_graph=1}. device_id is not allowed: it comes from the
   * device the task is bound to.
   */
  public static final String CUDA_OPTION_PREFIX = "spark.sparkinfer.cuda.option.";

  /**
   * Whether CUDA devices run models through the TensorRT execution provider first, with the CUDA
   * provider for what TensorRT does not take. Needs TensorRT's libraries on the executors.
   */
  public static final String TENSORRT_ENABLED = "spark.sparkinfer.tensorrt.enabled";

  public static final boolean TENSORRT_ENABLED_DEFAULT = false;

  /**
   * Whether TensorRT may build float16 engines: {@code true} or {@code false}. ORT option
   * trt_fp16_enable.
   */
  public static final String TENSORRT_FP16 = "spark.sparkinfer.tensorrt.fp16";

  /**
   * A local folder where TensorRT keeps the engines it builds, so that executors after the first
   * skip the (minutes long) build. Unset: no cache. ORT options trt_engine_cache_enable and
   * trt_engine_cache_path.
   */
  public static final String TENSORRT_ENGINE_CACHE_PATH =
      "spark.sparkinfer.tensorrt.engineCachePath";

  /** Prefix for any other TensorRT execution provider option, passed to ONNX Runtime as is. */
  public static final String TENSORRT_OPTION_PREFIX = "spark.sparkinfer.tensorrt.option.";

  /**
   * Upper bound of the CANN execution provider's memory arena on each NPU, in bytes or with a
   * binary suffix. ORT option npu_mem_limit. The CANN options are kept for when a Java route to the
   * CANN provider exists: ONNX Runtime 1.29.0's Java API has none (see {@link
   * ExecutionProviderOptions}).
   */
  public static final String CANN_NPU_MEMORY_LIMIT = "spark.sparkinfer.cann.npuMemLimit";

  /** How the CANN arena grows: {@code kNextPowerOfTwo} or {@code kSameAsRequested}. */
  public static final String CANN_ARENA_EXTEND_STRATEGY =
      "spark.sparkinfer.cann.arenaExtendStrategy";

  /**
   * CANN operator precision: force_fp32, force_fp16, allow_fp32_to_fp16, must_keep_origin_dtype or
   * allow_mix_precision. ORT option precision_mode.
   */
  public static final String CANN_PRECISION_MODE = "spark.sparkinfer.cann.precisionMode";

  /**
   * Whether CANN runs whole graphs with its graph engine: {@code true} or {@code false}. ORT option
   * enable_cann_graph.
   */
  public static final String CANN_GRAPH = "spark.sparkinfer.cann.graph";

  /** Prefix for any other CANN execution provider option, passed to ONNX Runtime as is. */
  public static final String CANN_OPTION_PREFIX = "spark.sparkinfer.cann.option.";
}
