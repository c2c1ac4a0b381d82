package io.github.sparkinfer.device;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/** Reads the spark.sparkinfer.cuda/tensorrt/cann keys into provider options, naming the key in every error. */
final class ProviderSettingsReader {
  private static final String CUDA_PREFIX = SchedulingProperties.CUDA_PREFIX;
  private static final String TENSORRT_PREFIX = SchedulingProperties.TENSORRT_PREFIX;
  private static final String CANN_PREFIX = SchedulingProperties.CANN_PREFIX;
  private static final Set<String> KNOWN_KEYS =
      Set.of(
          SchedulingProperties.CUDA_GPU_MEMORY_LIMIT,
          SchedulingProperties.CUDA_ARENA_EXTEND_STRATEGY,
          SchedulingProperties.CUDA_CUDNN_CONV_ALGO_SEARCH,
          SchedulingProperties.CUDA_TF32,
          SchedulingProperties.TENSORRT_ENABLED,
          SchedulingProperties.TENSORRT_FP16,
          SchedulingProperties.TENSORRT_ENGINE_CACHE_PATH,
          SchedulingProperties.CANN_NPU_MEMORY_LIMIT,
          SchedulingProperties.CANN_ARENA_EXTEND_STRATEGY,
          SchedulingProperties.CANN_PRECISION_MODE,
          SchedulingProperties.CANN_GRAPH);

  private final Map<String, String> settings;
  private final ExecutionProviderOptions.Builder builder = ExecutionProviderOptions.builder();
  // ORT option (prefixed by provider) -> the Spark key that set it, to report double settings.
  private final Map<String, String> origins = new LinkedHashMap<>();

  ProviderSettingsReader(Map<String, String> settings) {
    this.settings = Objects.requireNonNull(settings, "settings");
  }

  ExecutionProviderOptions read() {
    for (Map.Entry<String, String> entry : new TreeMap<>(settings).entrySet()) {
      String key = entry.getKey();
      boolean ours =
          key.startsWith(CUDA_PREFIX)
              || key.startsWith(TENSORRT_PREFIX)
              || key.startsWith(CANN_PREFIX);
      if (!ours || KNOWN_KEYS.contains(key)) {
        continue;
      }
      if (key.startsWith(SchedulingProperties.CUDA_OPTION_PREFIX)) {
        option(key, SchedulingProperties.CUDA_OPTION_PREFIX, "cuda", builder::cudaOption);
      } else if (key.startsWith(SchedulingProperties.TENSORRT_OPTION_PREFIX)) {
        option(
            key,
            SchedulingProperties.TENSORRT_OPTION_PREFIX,
            "tensorrt",
            builder::tensorrtOption);
      } else if (key.startsWith(SchedulingProperties.CANN_OPTION_PREFIX)) {
        option(key, SchedulingProperties.CANN_OPTION_PREFIX, "cann", builder::cannOption);
      } else {
        throw new IllegalArgumentException(
            "Unknown setting "
                + key
                + ": the execution provider settings are "
                + String.join(", ", new TreeSet<>(KNOWN_KEYS))
                + ", and "
                + SchedulingProperties.CUDA_OPTION_PREFIX
                + "<ORT option> (likewise for tensorrt and cann)");
      }
    }

    typed(
        SchedulingProperties.CUDA_GPU_MEMORY_LIMIT,
        value -> builder.gpuMemoryLimit(bytes(value)),
        "cuda.gpu_mem_limit");
    typed(
        SchedulingProperties.CUDA_ARENA_EXTEND_STRATEGY,
        builder::cudaArenaExtendStrategy,
        "cuda.arena_extend_strategy");
    typed(
        SchedulingProperties.CUDA_CUDNN_CONV_ALGO_SEARCH,
        builder::cudnnConvAlgorithmSearch,
        "cuda.cudnn_conv_algo_search");
    typed(SchedulingProperties.CUDA_TF32, value -> builder.tf32(bool(value)), "cuda.use_tf32");
    typed(SchedulingProperties.TENSORRT_ENABLED, value -> builder.tensorrt(bool(value)));
    typed(
        SchedulingProperties.TENSORRT_FP16,
        value -> builder.tensorrtFp16(bool(value)),
        "tensorrt.trt_fp16_enable");
    typed(
        SchedulingProperties.TENSORRT_ENGINE_CACHE_PATH,
        builder::tensorrtEngineCache,
        "tensorrt.trt_engine_cache_enable",
        "tensorrt.trt_engine_cache_path");
    typed(
        SchedulingProperties.CANN_NPU_MEMORY_LIMIT,
        value -> builder.npuMemoryLimit(bytes(value)),
        "cann.npu_mem_limit");
    typed(
        SchedulingProperties.CANN_ARENA_EXTEND_STRATEGY,
        builder::cannArenaExtendStrategy,
        "cann.arena_extend_strategy");
    typed(
        SchedulingProperties.CANN_PRECISION_MODE,
        builder::cannPrecisionMode,
        "cann.precision_mode");
    typed(
        SchedulingProperties.CANN_GRAPH,
        value -> builder.cannGraph(bool(value)),
        "cann.enable_cann_graph");
    return builder.build();
  }

  private interface Setter {
    void set(String value);
  }

  private interface OptionSetter {
    void set(String key, String value);
  }

  private void option(String key, String prefix, String provider, OptionSetter setter) {
    String option = key.substring(prefix.length());
    origins.put(provider + "." + option, key);
    // Only ORT's documented options pass, never a pointer (ProviderOptionPolicy).
    apply(key, () -> {
      ProviderOptionPolicy.access(provider, option);
      setter.set(option, settings.get(key));
    });
  }

  /** Applies {@code key}, which sets the given ORT options (provider.option). */
  private void typed(String key, Setter setter, String... options) {
    String value = settings.get(key);
    if (value == null) {
      return;
    }
    for (String option : options) {
      String earlier = origins.get(option);
      if (earlier != null) {
        throw new IllegalArgumentException(
            "The ONNX Runtime option "
                + option
                + " is set twice, by "
                + key
                + " and by "
                + earlier
                + ": remove one of them");
      }
    }
    apply(key, () -> setter.set(value));
  }

  private static void apply(String key, Runnable set) {
    try {
      set.run();
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("Invalid " + key + ": " + e.getMessage(), e);
    }
  }

  private static boolean bool(String value) {
    String normalized = value.trim().toLowerCase(Locale.ROOT);
    if (normalized.equals("true") || normalized.equals("false")) {
      return Boolean.parseBoolean(normalized);
    }
    throw new IllegalArgumentException("'" + value + "' is not true or false");
  }

  /** Bytes, or a number with a binary suffix k, m, g or t (an optional b after it). */
  static long bytes(String value) {
    String normalized = value.trim().toLowerCase(Locale.ROOT);
    if (normalized.endsWith("b")
        && normalized.length() > 1
        && !Character.isDigit(normalized.charAt(normalized.length() - 2))) {
      normalized = normalized.substring(0, normalized.length() - 1);
    }
    int shift = 0;
    if (!normalized.isEmpty()) {
      switch (normalized.charAt(normalized.length() - 1)) {
        case 'k':
          shift = 10;
          break;
        case 'm':
          shift = 20;
          break;
        case 'g':
          shift = 30;
          break;
        case 't':
          shift = 40;
          break;
        default:
          break;
      }
    }
    String digits = shift == 0 ? normalized : normalized.substring(0, normalized.length() - 1);
    try {
      long number = Long.parseLong(digits.trim());
      if (number > 0 && number <= (Long.MAX_VALUE >> shift)) {
        return number << shift;
      }
    } catch (NumberFormatException e) {
      // Reported below with the accepted forms.
    }
    throw new IllegalArgumentException(
        "'"
            + value
            + "' is not a positive size: use bytes or a number with k, m, g or t, as in 8g");
  }
}
