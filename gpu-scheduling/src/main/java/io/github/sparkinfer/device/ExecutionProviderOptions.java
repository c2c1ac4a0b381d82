package io.github.sparkinfer.device;

import java.io.Serializable;
import java.util.Collections;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import org.apache.spark.SparkConf;

/**
 * How the execution providers of accelerator sessions are set up: the string options of ONNX
 * Runtime's CUDA, TensorRT and CANN providers (the keys ORT documents for each, such as
 * gpu_mem_limit), and whether TensorRT is used. The device id is not among them: it comes from the
 * {@link Device} of the {@link SessionSettings}. Part of the model cache key, through the session
 * settings, for the options that apply to the session's device. Immutable; build with {@link
 * #builder()} or read from Spark settings with {@link #fromSettings}.
 *
 * <p>CANN (Ascend NPUs): ONNX Runtime 1.29.0's Java API cannot add the CANN provider to a session.
 * {@code SessionOptions} has no addCANN method (the CANN provider was only given C, C++ and Python
 * APIs); the one generic route, the private {@code addExecutionProvider(String, Map)} behind
 * addXnnpack and addQnn, calls the C API's SessionOptionsAppendExecutionProvider, which in 1.29.0
 * answers "Unknown provider name 'CANN'" (it takes DML, QNN, OpenVINO, SNPE, XNNPACK, WEBNN,
 * WebGPU, AZURE, JS, VitisAI, CoreML, NvTensorRtRtx, MIGraphX and CPU); CANN needs the C API's
 * SessionOptionsAppendExecutionProvider_CANN with an OrtCANNProviderOptions, which the JNI library
 * does not bind. The Java enum of providers has no CANN either, and ORT's Java initialisation maps
 * every provider name of the native library through it, which throws for an unknown name, so even a
 * native library built with CANN would not load under the 1.29.0 Java classes. Sessions asked for
 * an NPU therefore follow the {@link DeviceFallback} policy; the CANN options are kept and checked
 * so that configurations carry over once a route exists.
 */
public final class ExecutionProviderOptions implements Serializable {
  private static final long serialVersionUID = 1L;

  private static final ExecutionProviderOptions NONE = builder().build();

  // The device comes from the session's Device: an option could only contradict it.
  private static final String DEVICE_ID = "device_id";
  private static final Set<String> ARENA_EXTEND_STRATEGIES =
      Set.of("kNextPowerOfTwo", "kSameAsRequested");
  private static final Set<String> CONV_ALGORITHM_SEARCHES =
      Set.of("EXHAUSTIVE", "HEURISTIC", "DEFAULT");

  // Sorted, so that equal options print and compare the same whatever order they were set in.
  private final SortedMap<String, String> cudaOptions;
  private final boolean tensorrtEnabled;
  private final SortedMap<String, String> tensorrtOptions;
  private final SortedMap<String, String> cannOptions;

  private ExecutionProviderOptions(Builder builder) {
    this.cudaOptions = Collections.unmodifiableSortedMap(new TreeMap<>(builder.cudaOptions));
    this.tensorrtEnabled = builder.tensorrtEnabled;
    this.tensorrtOptions =
        Collections.unmodifiableSortedMap(new TreeMap<>(builder.tensorrtOptions));
    this.cannOptions = Collections.unmodifiableSortedMap(new TreeMap<>(builder.cannOptions));
  }

  /** No options: every provider runs with ONNX Runtime's defaults, and TensorRT is not used. */
  public static ExecutionProviderOptions none() {
    return NONE;
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * The options set in Spark settings (keys under spark.sparkinfer.cuda, .tensorrt and .cann; see
   * {@link SchedulingProperties}). Other keys are ignored.
   *
   * @throws IllegalArgumentException for an unknown key under those prefixes, a value that is not
   *     valid for its key, or an option set twice (by its own key and by an .option. key)
   */
  public static ExecutionProviderOptions fromSettings(Map<String, String> settings) {
    return new ProviderSettingsReader(settings).read();
  }

  /** {@link #fromSettings} of a SparkConf. */
  public static ExecutionProviderOptions fromConf(SparkConf conf) {
    return fromSettings(SparkSettings.of(conf));
  }

  /** CUDA execution provider options (ORT's keys, such as gpu_mem_limit), sorted by key. */
  public Map<String, String> cudaOptions() {
    return cudaOptions;
  }

  /** Whether CUDA devices run through the TensorRT provider first, then the CUDA provider. */
  public boolean tensorrtEnabled() {
    return tensorrtEnabled;
  }

  /** TensorRT execution provider options (ORT's keys, such as trt_fp16_enable), sorted by key. */
  public Map<String, String> tensorrtOptions() {
    return tensorrtOptions;
  }

  /** CANN execution provider options (ORT's keys, such as npu_mem_limit), sorted by key. */
  public Map<String, String> cannOptions() {
    return cannOptions;
  }

  /**
   * Only the options that shape a session on {@code device}: none for the CPU, CUDA and TensorRT
   * for a CUDA device, CANN for an NPU. Two sessions differing only in options their device ignores
   * are the same session.
   */
  ExecutionProviderOptions forDevice(Device device) {
    Builder relevant = builder();
    switch (device.type()) {
      case CUDA:
        relevant.cudaOptions.putAll(cudaOptions);
        relevant.tensorrtEnabled = tensorrtEnabled;
        if (tensorrtEnabled) {
          relevant.tensorrtOptions.putAll(tensorrtOptions);
        }
        break;
      case NPU:
        relevant.cannOptions.putAll(cannOptions);
        break;
      default:
        return NONE;
    }
    ExecutionProviderOptions options = relevant.build();
    return options.equals(NONE) ? NONE : options;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof ExecutionProviderOptions)) {
      return false;
    }
    ExecutionProviderOptions that = (ExecutionProviderOptions) other;
    return tensorrtEnabled == that.tensorrtEnabled
        && cudaOptions.equals(that.cudaOptions)
        && tensorrtOptions.equals(that.tensorrtOptions)
        && cannOptions.equals(that.cannOptions);
  }

  @Override
  public int hashCode() {
    return Objects.hash(cudaOptions, tensorrtEnabled, tensorrtOptions, cannOptions);
  }

  /** The options that are set, such as {@code cuda {gpu_mem_limit=1073741824}, tensorrt {}}. */
  @Override
  public String toString() {
    StringBuilder text = new StringBuilder();
    if (!cudaOptions.isEmpty()) {
      text.append("cuda ").append(cudaOptions);
    }
    if (tensorrtEnabled || !tensorrtOptions.isEmpty()) {
      text.append(text.length() > 0 ? ", " : "")
          .append(tensorrtEnabled ? "tensorrt " : "tensorrt (disabled) ")
          .append(tensorrtOptions);
    }
    if (!cannOptions.isEmpty()) {
      text.append(text.length() > 0 ? ", " : "").append("cann ").append(cannOptions);
    }
    return text.length() == 0 ? "provider defaults" : text.toString();
  }

  /**
   * Builds options. The typed setters write the ORT option they name; the {@code *Option} methods
   * set any ORT option by its key. A later call for the same ORT key replaces the earlier value.
   */
  public static final class Builder {
    private final Map<String, String> cudaOptions = new TreeMap<>();
    private boolean tensorrtEnabled = SchedulingProperties.TENSORRT_ENABLED_DEFAULT;
    private final Map<String, String> tensorrtOptions = new TreeMap<>();
    private final Map<String, String> cannOptions = new TreeMap<>();

    private Builder() {}

    /** Upper bound in bytes of the CUDA memory arena on each GPU (gpu_mem_limit). */
    public Builder gpuMemoryLimit(long bytes) {
      cudaOptions.put("gpu_mem_limit", Long.toString(positive(bytes, "GPU memory limit")));
      return this;
    }

    /** kNextPowerOfTwo or kSameAsRequested (arena_extend_strategy of the CUDA provider). */
    public Builder cudaArenaExtendStrategy(String strategy) {
      cudaOptions.put("arena_extend_strategy", arenaExtendStrategy(strategy, "CUDA"));
      return this;
    }

    /** EXHAUSTIVE, HEURISTIC or DEFAULT (cudnn_conv_algo_search). */
    public Builder cudnnConvAlgorithmSearch(String search) {
      String canonical = Objects.requireNonNull(search, "search").trim().toUpperCase(Locale.ROOT);
      if (!CONV_ALGORITHM_SEARCHES.contains(canonical)) {
        throw new IllegalArgumentException(
            "Invalid cuDNN convolution algorithm search '"
                + search
                + "': expected EXHAUSTIVE, HEURISTIC or DEFAULT");
      }
      cudaOptions.put("cudnn_conv_algo_search", canonical);
      return this;
    }

    /** Whether float32 math may use TF32 on Ampere and newer GPUs (use_tf32). */
    public Builder tf32(boolean allowed) {
      cudaOptions.put("use_tf32", allowed ? "1" : "0");
      return this;
    }

    /** Any CUDA execution provider option, by ORT's key; not device_id. */
    public Builder cudaOption(String key, String value) {
      put(cudaOptions, key, value, "CUDA");
      return this;
    }

    /** Whether CUDA devices run through TensorRT first (default false). */
    public Builder tensorrt(boolean enabled) {
      this.tensorrtEnabled = enabled;
      return this;
    }

    /** Whether TensorRT may build float16 engines (trt_fp16_enable). */
    public Builder tensorrtFp16(boolean enabled) {
      tensorrtOptions.put("trt_fp16_enable", enabled ? "1" : "0");
      return this;
    }

    /** Keep built TensorRT engines in this local folder (trt_engine_cache_enable and _path). */
    public Builder tensorrtEngineCache(String folder) {
      String path = nonEmpty(folder, "TensorRT engine cache folder");
      tensorrtOptions.put("trt_engine_cache_enable", "1");
      tensorrtOptions.put("trt_engine_cache_path", path);
      return this;
    }

    /** Any TensorRT execution provider option, by ORT's key; not device_id. */
    public Builder tensorrtOption(String key, String value) {
      put(tensorrtOptions, key, value, "TensorRT");
      return this;
    }

    /** Upper bound in bytes of the CANN memory arena on each NPU (npu_mem_limit). */
    public Builder npuMemoryLimit(long bytes) {
      cannOptions.put("npu_mem_limit", Long.toString(positive(bytes, "NPU memory limit")));
      return this;
    }

    /** kNextPowerOfTwo or kSameAsRequested (arena_extend_strategy of the CANN provider). */
    public Builder cannArenaExtendStrategy(String strategy) {
      cannOptions.put("arena_extend_strategy", arenaExtendStrategy(strategy, "CANN"));
      return this;
    }

    /** CANN operator precision mode (precision_mode), such as force_fp16. */
    public Builder cannPrecisionMode(String mode) {
      cannOptions.put("precision_mode", nonEmpty(mode, "CANN precision mode"));
      return this;
    }

    /** Whether CANN runs whole graphs with its graph engine (enable_cann_graph). */
    public Builder cannGraph(boolean enabled) {
      cannOptions.put("enable_cann_graph", enabled ? "1" : "0");
      return this;
    }

    /** Any CANN execution provider option, by ORT's key; not device_id. */
    public Builder cannOption(String key, String value) {
      put(cannOptions, key, value, "CANN");
      return this;
    }

    public ExecutionProviderOptions build() {
      return new ExecutionProviderOptions(this);
    }

    private static void put(
        Map<String, String> options, String key, String value, String provider) {
      String name = nonEmpty(key, provider + " option key");
      if (name.equals(DEVICE_ID)) {
        throw new IllegalArgumentException(
            "The "
                + provider
                + " option device_id cannot be set: the device comes from the task's Spark-assigned"
                + " resources or "
                + SchedulingProperties.DEVICE);
      }
      options.put(name, nonEmpty(value, provider + " option " + name));
    }

    private static String arenaExtendStrategy(String strategy, String provider) {
      for (String known : ARENA_EXTEND_STRATEGIES) {
        if (known.equalsIgnoreCase(Objects.requireNonNull(strategy, "strategy").trim())) {
          return known;
        }
      }
      throw new IllegalArgumentException(
          "Invalid "
              + provider
              + " arena extend strategy '"
              + strategy
              + "': expected kNextPowerOfTwo or kSameAsRequested");
    }

    private static long positive(long bytes, String what) {
      if (bytes <= 0) {
        throw new IllegalArgumentException(
            "Invalid " + what + " " + bytes + ": must be a positive number of bytes");
      }
      return bytes;
    }

    // ORT refuses empty provider option keys and values.
    private static String nonEmpty(String text, String what) {
      if (text == null || text.trim().isEmpty()) {
        throw new IllegalArgumentException("Invalid " + what + ": must not be empty");
      }
      return text.trim();
    }
  }
}
