package io.github.sparkinfer.device;

import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Which ONNX Runtime provider options a {@code spark.sparkinfer.<provider>.option.<ortKey>} key may
 * pass, and who may set them. ORT takes provider options as strings and acts on them inside the
 * executor: some name files it reads or writes, libraries it loads ({@code trt_extra_plugin_lib_paths},
 * {@code trt_engine_decryption_lib_path}), or raw pointers it calls ({@code gpu_external_alloc},
 * {@code user_compute_stream}). So the options are an allow-list of ORT's documented keys: those that
 * only tune a session are session options, those that name a path or a library or size what the
 * executor shares are application options (the executor's SparkConf only), and pointers are never
 * passed (no configuration value can be a valid pointer in another process).
 */
public final class ProviderOptionPolicy {
  private ProviderOptionPolicy() {}

  /** Who may set an option. */
  public enum Access {
    SESSION,
    APPLICATION
  }

  private static final Map<String, Access> CUDA = Map.ofEntries(
      Map.entry("arena_extend_strategy", Access.SESSION),
      Map.entry("cudnn_conv_algo_search", Access.SESSION),
      Map.entry("cudnn_conv_use_max_workspace", Access.SESSION),
      Map.entry("cudnn_conv1d_pad_to_nc1d", Access.SESSION),
      Map.entry("do_copy_in_default_stream", Access.SESSION),
      Map.entry("enable_cuda_graph", Access.SESSION),
      Map.entry("enable_skip_layer_norm_strict_mode", Access.SESSION),
      Map.entry("fuse_conv_bias", Access.SESSION),
      Map.entry("prefer_nhwc", Access.SESSION),
      Map.entry("sdpa_kernel", Access.SESSION),
      Map.entry("tunable_op_enable", Access.SESSION),
      Map.entry("tunable_op_max_tuning_duration_ms", Access.SESSION),
      Map.entry("tunable_op_tuning_enable", Access.SESSION),
      Map.entry("use_ep_level_unified_stream", Access.SESSION),
      Map.entry("use_tf32", Access.SESSION),
      // Sizes the arena every session on the GPU shares.
      Map.entry("gpu_mem_limit", Access.APPLICATION));

  private static final Map<String, Access> TENSORRT = Map.ofEntries(
      Map.entry("trt_auxiliary_streams", Access.SESSION),
      Map.entry("trt_bf16_enable", Access.SESSION),
      Map.entry("trt_build_heuristics_enable", Access.SESSION),
      Map.entry("trt_builder_optimization_level", Access.SESSION),
      Map.entry("trt_context_memory_sharing_enable", Access.SESSION),
      Map.entry("trt_cuda_graph_enable", Access.SESSION),
      Map.entry("trt_detailed_build_log", Access.SESSION),
      Map.entry("trt_dla_core", Access.SESSION),
      Map.entry("trt_dla_enable", Access.SESSION),
      Map.entry("trt_engine_hw_compatible", Access.SESSION),
      Map.entry("trt_force_sequential_engine_build", Access.SESSION),
      Map.entry("trt_force_timing_cache", Access.SESSION),
      Map.entry("trt_fp16_enable", Access.SESSION),
      Map.entry("trt_int8_enable", Access.SESSION),
      Map.entry("trt_int8_use_native_calibration_table", Access.SESSION),
      Map.entry("trt_layer_norm_fp32_fallback", Access.SESSION),
      Map.entry("trt_max_partition_iterations", Access.SESSION),
      Map.entry("trt_min_subgraph_size", Access.SESSION),
      Map.entry("trt_op_types_to_exclude", Access.SESSION),
      Map.entry("trt_profile_max_shapes", Access.SESSION),
      Map.entry("trt_profile_min_shapes", Access.SESSION),
      Map.entry("trt_profile_opt_shapes", Access.SESSION),
      Map.entry("trt_sparsity_enable", Access.SESSION),
      Map.entry("trt_tactic_sources", Access.SESSION),
      // Sizes shared GPU memory.
      Map.entry("trt_max_workspace_size", Access.APPLICATION),
      // Name or write files in the executor's folders.
      Map.entry("trt_dump_ep_context_model", Access.APPLICATION),
      Map.entry("trt_dump_subgraphs", Access.APPLICATION),
      Map.entry("trt_engine_cache_enable", Access.APPLICATION),
      Map.entry("trt_engine_cache_path", Access.APPLICATION),
      Map.entry("trt_engine_cache_prefix", Access.APPLICATION),
      Map.entry("trt_ep_context_file_path", Access.APPLICATION),
      Map.entry("trt_int8_calibration_table_name", Access.APPLICATION),
      Map.entry("trt_onnx_model_folder_path", Access.APPLICATION),
      Map.entry("trt_timing_cache_enable", Access.APPLICATION),
      Map.entry("trt_timing_cache_path", Access.APPLICATION),
      // Load a native library into the executor.
      Map.entry("trt_engine_decryption_enable", Access.APPLICATION),
      Map.entry("trt_engine_decryption_lib_path", Access.APPLICATION),
      Map.entry("trt_extra_plugin_lib_paths", Access.APPLICATION));

  private static final Map<String, Access> CANN = Map.ofEntries(
      Map.entry("arena_extend_strategy", Access.SESSION),
      Map.entry("enable_cann_graph", Access.SESSION),
      Map.entry("op_select_impl_mode", Access.SESSION),
      Map.entry("optypelist_for_implmode", Access.SESSION),
      Map.entry("precision_mode", Access.SESSION),
      Map.entry("npu_mem_limit", Access.APPLICATION),
      Map.entry("dump_graphs", Access.APPLICATION),
      Map.entry("dump_om_model", Access.APPLICATION));

  private static final String DEVICE_ID = "device_id";

  // Raw pointers: never passed, whoever sets them.
  private static final Set<String> NEVER = Set.of("user_compute_stream", "has_user_compute_stream",
      "gpu_external_alloc", "gpu_external_free", "gpu_external_empty_cache", "default_memory_arena_cfg");

  /**
   * Who may set {@code ortKey} of {@code provider} ("cuda", "tensorrt" or "cann").
   *
   * @throws IllegalArgumentException for an option that is not passed at all, naming the allowed ones
   */
  public static Access access(String provider, String ortKey) {
    Map<String, Access> options = options(provider);
    if (ortKey.equals(DEVICE_ID)) {
      // Refused by the options' builder, which says where the device comes from.
      return Access.SESSION;
    }
    if (NEVER.contains(ortKey)) {
      throw new IllegalArgumentException("The ONNX Runtime " + provider + " option " + ortKey + " cannot be set: it"
          + " takes a pointer into the executor's process, which no configuration value can safely be. Remove the key");
    }
    Access access = options.get(ortKey);
    if (access == null) {
      throw new IllegalArgumentException("Unknown ONNX Runtime " + provider + " option '" + ortKey + "': the options"
          + " sparkinfer passes are " + new TreeSet<>(options.keySet()) + ". Remove the key, or ask for the option to"
          + " be added to sparkinfer's list");
    }
    return access;
  }

  /** Whether a Spark key ({@code spark.sparkinfer.cuda.option.gpu_mem_limit}) is the application's alone. */
  public static boolean isApplicationKey(String sparkKey) {
    for (Map.Entry<String, String> prefix : OPTION_PREFIXES.entrySet()) {
      if (sparkKey.startsWith(prefix.getKey())) {
        String option = sparkKey.substring(prefix.getKey().length());
        return NEVER.contains(option) || option.equals(DEVICE_ID) || !options(prefix.getValue()).containsKey(option)
            || options(prefix.getValue()).get(option) == Access.APPLICATION;
      }
    }
    return APPLICATION_TYPED_KEYS.contains(sparkKey);
  }

  /** The typed provider keys that name a path or size a shared arena. */
  static final Set<String> APPLICATION_TYPED_KEYS = Set.of(SchedulingProperties.CUDA_GPU_MEMORY_LIMIT,
      SchedulingProperties.TENSORRT_ENGINE_CACHE_PATH, SchedulingProperties.CANN_NPU_MEMORY_LIMIT);

  private static final Map<String, String> OPTION_PREFIXES = Map.of(
      SchedulingProperties.CUDA_OPTION_PREFIX, "cuda",
      SchedulingProperties.TENSORRT_OPTION_PREFIX, "tensorrt",
      SchedulingProperties.CANN_OPTION_PREFIX, "cann");

  private static Map<String, Access> options(String provider) {
    switch (provider) {
      case "cuda":
        return CUDA;
      case "tensorrt":
        return TENSORRT;
      case "cann":
        return CANN;
      default:
        throw new IllegalArgumentException("Unknown execution provider '" + provider + "'");
    }
  }
}
