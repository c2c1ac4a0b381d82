package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.entry;

import java.util.Map;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

class TestExecutionProviderOptions {
  @Test
  void noSettingsAreNoOptions() {
    ExecutionProviderOptions options = ExecutionProviderOptions.fromSettings(Map.of());

    assertThat(options).isEqualTo(ExecutionProviderOptions.none());
    assertThat(options.cudaOptions()).isEmpty();
    assertThat(options.tensorrtEnabled()).isFalse();
    assertThat(options.tensorrtOptions()).isEmpty();
    assertThat(options.cannOptions()).isEmpty();
    assertThat(options).hasToString("provider defaults");
  }

  @Test
  void cudaSettingsBecomeOrtOptions() {
    ExecutionProviderOptions options =
        ExecutionProviderOptions.fromSettings(
            Map.of(
                "spark.sparkinfer.cuda.gpuMemLimit", "2g",
                "spark.sparkinfer.cuda.arenaExtendStrategy", "ksameasrequested",
                "spark.sparkinfer.cuda.cudnnConvAlgoSearch", "heuristic",
                "spark.sparkinfer.cuda.tf32", "FALSE",
                "spark.sparkinfer.cuda.option.enable_cuda_graph", "1",
                "spark.sparkinfer.model.m.path", "ignored",
                "spark.executor.cores", "ignored"));

    assertThat(options.cudaOptions())
        .containsExactly(
            entry("arena_extend_strategy", "kSameAsRequested"),
            entry("cudnn_conv_algo_search", "HEURISTIC"),
            entry("enable_cuda_graph", "1"),
            entry("gpu_mem_limit", "2147483648"),
            entry("use_tf32", "0"));
    assertThat(options.tensorrtEnabled()).isFalse();
    assertThat(options)
        .hasToString(
            "cuda {arena_extend_strategy=kSameAsRequested, cudnn_conv_algo_search=HEURISTIC,"
                + " enable_cuda_graph=1, gpu_mem_limit=2147483648, use_tf32=0}");
  }

  @Test
  void memoryLimitsTakeBytesOrBinarySuffixes() {
    assertThat(gpuMemoryLimit("1073741824")).isEqualTo("1073741824");
    assertThat(gpuMemoryLimit("512k")).isEqualTo("524288");
    assertThat(gpuMemoryLimit("512KB")).isEqualTo("524288");
    assertThat(gpuMemoryLimit("8m")).isEqualTo("8388608");
    assertThat(gpuMemoryLimit(" 4G ")).isEqualTo("4294967296");
    assertThat(gpuMemoryLimit("1t")).isEqualTo("1099511627776");
    for (String invalid : new String[] {"", "0", "-1g", "g", "1.5g", "4x", "9999999999t"}) {
      assertThatThrownBy(() -> gpuMemoryLimit(invalid))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage(
              "Invalid spark.sparkinfer.cuda.gpuMemLimit: '"
                  + invalid
                  + "' is not a positive size: use bytes or a number with k, m, g or t, as in 8g");
    }
  }

  @Test
  void tensorrtSettings() {
    ExecutionProviderOptions options =
        ExecutionProviderOptions.fromSettings(
            Map.of(
                "spark.sparkinfer.tensorrt.enabled", "true",
                "spark.sparkinfer.tensorrt.fp16", "true",
                "spark.sparkinfer.tensorrt.engineCachePath", "/var/cache/trt",
                "spark.sparkinfer.tensorrt.option.trt_max_workspace_size", "2147483648"));

    assertThat(options.tensorrtEnabled()).isTrue();
    assertThat(options.tensorrtOptions())
        .containsExactly(
            entry("trt_engine_cache_enable", "1"),
            entry("trt_engine_cache_path", "/var/cache/trt"),
            entry("trt_fp16_enable", "1"),
            entry("trt_max_workspace_size", "2147483648"));
  }

  @Test
  void cannSettings() {
    ExecutionProviderOptions options =
        ExecutionProviderOptions.fromConf(
            new SparkConf(false)
                .set("spark.sparkinfer.cann.npuMemLimit", "16g")
                .set("spark.sparkinfer.cann.arenaExtendStrategy", "kNextPowerOfTwo")
                .set("spark.sparkinfer.cann.precisionMode", "force_fp16")
                .set("spark.sparkinfer.cann.graph", "true")
                .set("spark.sparkinfer.cann.option.dump_graphs", "0"));

    assertThat(options.cannOptions())
        .containsExactly(
            entry("arena_extend_strategy", "kNextPowerOfTwo"),
            entry("dump_graphs", "0"),
            entry("enable_cann_graph", "1"),
            entry("npu_mem_limit", "17179869184"),
            entry("precision_mode", "force_fp16"));
  }

  @Test
  void invalidValuesNameTheirKey() {
    assertInvalid(
        Map.of("spark.sparkinfer.cuda.arenaExtendStrategy", "grow"),
        "Invalid spark.sparkinfer.cuda.arenaExtendStrategy: Invalid CUDA arena extend strategy"
            + " 'grow': expected kNextPowerOfTwo or kSameAsRequested");
    assertInvalid(
        Map.of("spark.sparkinfer.cuda.cudnnConvAlgoSearch", "fast"),
        "Invalid spark.sparkinfer.cuda.cudnnConvAlgoSearch: Invalid cuDNN convolution algorithm"
            + " search 'fast': expected EXHAUSTIVE, HEURISTIC or DEFAULT");
    assertInvalid(
        Map.of("spark.sparkinfer.cuda.tf32", "yes"),
        "Invalid spark.sparkinfer.cuda.tf32: 'yes' is not true or false");
    assertInvalid(
        Map.of("spark.sparkinfer.tensorrt.enabled", "1"),
        "Invalid spark.sparkinfer.tensorrt.enabled: '1' is not true or false");
    assertInvalid(
        Map.of("spark.sparkinfer.cuda.option.enable_cuda_graph", " "),
        "Invalid spark.sparkinfer.cuda.option.enable_cuda_graph: Invalid CUDA option"
            + " enable_cuda_graph: must not be empty");
  }

  @Test
  void deviceIdCannotBeSet() {
    assertThatThrownBy(
            () ->
                ExecutionProviderOptions.fromSettings(
                    Map.of("spark.sparkinfer.cuda.option.device_id", "1")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "Invalid spark.sparkinfer.cuda.option.device_id: The CUDA option device_id cannot be"
                + " set: the device comes from the task's Spark-assigned resources or"
                + " spark.sparkinfer.device");
    assertThatThrownBy(() -> ExecutionProviderOptions.builder().tensorrtOption("device_id", "0"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("The TensorRT option device_id cannot be set");
  }

  /**
   * Issue 28: ORT acts on provider option strings inside the executor: pointers it would call and
   * options that are not ORT's documented ones never pass; options that name a path, a library or
   * size a shared arena are the application's alone.
   */
  @Test
  void pointerAndUndocumentedProviderOptionsAreRefused() {
    for (String pointer : java.util.List.of("spark.sparkinfer.cuda.option.gpu_external_alloc",
        "spark.sparkinfer.cuda.option.gpu_external_free", "spark.sparkinfer.cuda.option.user_compute_stream",
        "spark.sparkinfer.tensorrt.option.user_compute_stream",
        "spark.sparkinfer.tensorrt.option.has_user_compute_stream")) {
      assertThatThrownBy(() -> ExecutionProviderOptions.fromSettings(Map.of(pointer, "140737488355328")))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("Invalid " + pointer + ": The ONNX Runtime ")
          .hasMessageContaining("takes a pointer into the executor's process");
    }
    assertThatThrownBy(() -> ExecutionProviderOptions.fromSettings(
            Map.of("spark.sparkinfer.tensorrt.option.trt_made_up_option", "1")))
        .hasMessageContaining("Unknown ONNX Runtime tensorrt option 'trt_made_up_option'")
        .hasMessageContaining("trt_fp16_enable");
    // Documented ones still pass, the application's among them (scope is enforced by the SQL surface).
    assertThat(ExecutionProviderOptions.fromSettings(Map.of(
            "spark.sparkinfer.tensorrt.option.trt_extra_plugin_lib_paths", "/opt/plugins/libp.so",
            "spark.sparkinfer.cuda.option.enable_cuda_graph", "1")).tensorrtOptions())
        .containsEntry("trt_extra_plugin_lib_paths", "/opt/plugins/libp.so");
  }

  @Test
  void optionsThatNameFilesLibrariesOrSizesAreApplicationKeys() {
    for (String key : java.util.List.of("spark.sparkinfer.tensorrt.option.trt_extra_plugin_lib_paths",
        "spark.sparkinfer.tensorrt.option.trt_engine_decryption_lib_path",
        "spark.sparkinfer.tensorrt.option.trt_engine_cache_path", "spark.sparkinfer.tensorrt.option.trt_max_workspace_size",
        "spark.sparkinfer.cuda.option.gpu_mem_limit", "spark.sparkinfer.cuda.option.gpu_external_alloc",
        "spark.sparkinfer.cuda.option.made_up", "spark.sparkinfer.cuda.gpuMemLimit",
        "spark.sparkinfer.tensorrt.engineCachePath")) {
      assertThat(ProviderOptionPolicy.isApplicationKey(key)).as(key).isTrue();
    }
    for (String key : java.util.List.of("spark.sparkinfer.cuda.option.enable_cuda_graph",
        "spark.sparkinfer.tensorrt.option.trt_fp16_enable", "spark.sparkinfer.cuda.tf32", "spark.sparkinfer.device")) {
      assertThat(ProviderOptionPolicy.isApplicationKey(key)).as(key).isFalse();
    }
  }

  @Test
  void unknownKeysUnderTheProviderPrefixesAreRejected() {
    assertThatThrownBy(
            () ->
                ExecutionProviderOptions.fromSettings(
                    Map.of("spark.sparkinfer.cuda.gpuMemoryLimit", "1g")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith(
            "Unknown setting spark.sparkinfer.cuda.gpuMemoryLimit: the execution provider settings"
                + " are spark.sparkinfer.cann.arenaExtendStrategy,")
        .hasMessageContaining("spark.sparkinfer.cuda.gpuMemLimit")
        .hasMessageEndingWith(
            "and spark.sparkinfer.cuda.option.<ORT option> (likewise for tensorrt and cann)");
  }

  @Test
  void anOptionSetTwiceIsRejected() {
    assertThatThrownBy(
            () ->
                ExecutionProviderOptions.fromSettings(
                    Map.of(
                        "spark.sparkinfer.cuda.gpuMemLimit", "1g",
                        "spark.sparkinfer.cuda.option.gpu_mem_limit", "2147483648")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "The ONNX Runtime option cuda.gpu_mem_limit is set twice, by"
                + " spark.sparkinfer.cuda.gpuMemLimit and by"
                + " spark.sparkinfer.cuda.option.gpu_mem_limit: remove one of them");
  }

  @Test
  void builderMatchesSettings() {
    ExecutionProviderOptions built =
        ExecutionProviderOptions.builder()
            .gpuMemoryLimit(1L << 30)
            .tf32(true)
            .tensorrt(true)
            .tensorrtEngineCache("/tmp/trt")
            .build();
    ExecutionProviderOptions read =
        ExecutionProviderOptions.fromSettings(
            Map.of(
                "spark.sparkinfer.cuda.gpuMemLimit", "1g",
                "spark.sparkinfer.cuda.tf32", "true",
                "spark.sparkinfer.tensorrt.enabled", "true",
                "spark.sparkinfer.tensorrt.engineCachePath", "/tmp/trt"));

    assertThat(read).isEqualTo(built).hasSameHashCodeAs(built);
    assertThat(read)
        .isNotEqualTo(ExecutionProviderOptions.builder().gpuMemoryLimit(1L << 30).build());
  }

  @Test
  void forDeviceKeepsOnlyTheDevicesProviders() {
    ExecutionProviderOptions everything =
        ExecutionProviderOptions.builder()
            .gpuMemoryLimit(1024)
            .tensorrt(true)
            .tensorrtFp16(true)
            .npuMemoryLimit(2048)
            .build();

    assertThat(everything.forDevice(Device.cpu())).isSameAs(ExecutionProviderOptions.none());
    ExecutionProviderOptions cuda = everything.forDevice(Device.cuda(0));
    assertThat(cuda.cudaOptions()).containsExactly(entry("gpu_mem_limit", "1024"));
    assertThat(cuda.tensorrtEnabled()).isTrue();
    assertThat(cuda.tensorrtOptions()).containsExactly(entry("trt_fp16_enable", "1"));
    assertThat(cuda.cannOptions()).isEmpty();
    ExecutionProviderOptions npu = everything.forDevice(Device.npu(0));
    assertThat(npu.cudaOptions()).isEmpty();
    assertThat(npu.tensorrtEnabled()).isFalse();
    assertThat(npu.cannOptions()).containsExactly(entry("npu_mem_limit", "2048"));
    // TensorRT options without TensorRT shape nothing.
    assertThat(
            ExecutionProviderOptions.builder().tensorrtFp16(true).build().forDevice(Device.cuda(0)))
        .isSameAs(ExecutionProviderOptions.none());
  }

  @Test
  void survivesJavaSerialization() throws Exception {
    ExecutionProviderOptions options =
        ExecutionProviderOptions.builder().gpuMemoryLimit(1024).cannGraph(false).build();

    assertThat(TestDevice.roundTrip(options)).isEqualTo(options);
  }

  private static String gpuMemoryLimit(String value) {
    return ExecutionProviderOptions.fromSettings(Map.of("spark.sparkinfer.cuda.gpuMemLimit", value))
        .cudaOptions()
        .get("gpu_mem_limit");
  }

  private static void assertInvalid(Map<String, String> settings, String message) {
    assertThatThrownBy(() -> ExecutionProviderOptions.fromSettings(settings))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(message);
  }
}
