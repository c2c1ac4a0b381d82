package io.github.sparkinfer.spark.config;

import static io.github.sparkinfer.spark.config.SettingScope.APPLICATION;
import static io.github.sparkinfer.spark.config.SettingScope.MODEL;
import static io.github.sparkinfer.spark.config.SettingScope.SESSION;

import io.github.sparkinfer.device.ProviderOptionPolicy;
import io.github.sparkinfer.device.SchedulingProperties;
import io.github.sparkinfer.partitioning.PartitioningProperties;
import io.github.sparkinfer.spark.InferenceProperties;
import io.github.sparkinfer.spark.generate.GenerateOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;

/**
 * Every key of sparkinfer, declared once: key, type, default, scope, documentation line (the way
 * Spark's {@code SQLConf} and Delta's {@code DeltaSQLConf} declare theirs). The scope is the trust
 * boundary: {@link SettingScope#APPLICATION} keys are read from the application's SparkConf only,
 * and a session that sets one differently is refused ({@link ApplicationSettings}). The precedence
 * of the others, highest first: a function argument or DataFrame API setting, the per-model key, the
 * session key, the default. docs/configuration.md is tested against this list, scopes included.
 */
public final class SparkinferSettings {
  private SparkinferSettings() {}

  private static final String M = InferenceProperties.MODEL_PREFIX + "<name>";
  private static final String STAGE = PartitioningProperties.STAGE_PREFIX;
  private static final List<Setting> ALL = new ArrayList<>();

  private static Setting.Builder key(String key) {
    return Setting.builder(key);
  }

  private static void declare(Setting.Builder builder) {
    ALL.add(builder.build());
  }

  static {
    // Where files may come from, and the executor's own resources: the application's.
    declare(key(SchedulingProperties.MODEL_ALLOWED_ROOTS).type(Setting.Type.URI_LIST).scope(APPLICATION)
        .defaultText("any storage URI except URL schemes and /proc, /sys, /dev")
        .doc("folders that model, tokenizer and external-data files must lie under"));
    declare(key(SchedulingProperties.CACHE_DIRECTORY).type(Setting.Type.PATH).scope(APPLICATION)
        .defaultText("${java.io.tmpdir}/sparkinfer-model-cache-${user.name}")
        .doc("executor-local folder of the model copies"));
    declare(key(SchedulingProperties.CACHE_IDLE_TIMEOUT).type(Setting.Type.DURATION).scope(APPLICATION)
        .defaultText(SchedulingProperties.CACHE_IDLE_TIMEOUT_DEFAULT).doc("unused sessions are closed after this"));
    declare(key(SchedulingProperties.CACHE_MAX_SESSIONS).type(Setting.Type.INT).scope(APPLICATION)
        .defaultText(String.valueOf(SchedulingProperties.CACHE_MAX_SESSIONS_DEFAULT))
        .doc("most open sessions per device in an executor"));
    declare(key(SchedulingProperties.CACHE_MAX_BYTES).type(Setting.Type.SIZE).scope(APPLICATION)
        .defaultText("0 (no limit)").doc("most bytes of model files with an open session per device"));
    declare(key(SchedulingProperties.SHUTDOWN_GRACE_PERIOD).type(Setting.Type.DURATION).scope(APPLICATION)
        .defaultText("10s").doc("how long the JVM's shutdown waits for runs in flight"));
    declare(key(InferenceProperties.MAX_BATCH_BYTES).type(Setting.Type.SIZE).scope(APPLICATION)
        .defaultText("min(256 MiB, executor memory / (4 x task slots))")
        .doc("most bytes the buffers of one model batch may hold"));

    // Devices.
    declare(key(SchedulingProperties.DEVICE).scope(SESSION).defaultText(SchedulingProperties.DEVICE_DEFAULT)
        .doc("device when Spark assigned the task no GPU or NPU"));
    declare(key(SchedulingProperties.DEVICE_FALLBACK).choices("cpu", "fail").scope(SESSION)
        .defaultText(SchedulingProperties.DEVICE_FALLBACK_DEFAULT).doc("when the device cannot be used"));
    declare(key(SchedulingProperties.DEVICE_CONCURRENT_RUNS).type(Setting.Type.INT).scope(APPLICATION)
        .defaultText(String.valueOf(SchedulingProperties.DEVICE_CONCURRENT_RUNS_DEFAULT))
        .doc("model runs at once per GPU or NPU in one executor"));
    declare(key(SchedulingProperties.GPU_RESOURCE).scope(APPLICATION).defaultText(SchedulingProperties.GPU_RESOURCE_DEFAULT)
        .doc("the Spark resource name of CUDA devices"));
    declare(key(SchedulingProperties.NPU_RESOURCE).scope(APPLICATION).defaultText(SchedulingProperties.NPU_RESOURCE_DEFAULT)
        .doc("the Spark resource name of NPUs"));

    // Execution providers: typed keys, then ORT's own options through an allow-list.
    declare(key(SchedulingProperties.CUDA_GPU_MEMORY_LIMIT).type(Setting.Type.SIZE).scope(APPLICATION)
        .defaultText("no limit").doc("CUDA arena cap per GPU"));
    declare(key(SchedulingProperties.CUDA_ARENA_EXTEND_STRATEGY).choices("kNextPowerOfTwo", "kSameAsRequested")
        .scope(SESSION).defaultText("ORT's").doc("how the CUDA arena grows"));
    declare(key(SchedulingProperties.CUDA_CUDNN_CONV_ALGO_SEARCH).choices("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
        .scope(SESSION).defaultText("ORT's").doc("cuDNN convolution algorithm search"));
    declare(key(SchedulingProperties.CUDA_TF32).type(Setting.Type.BOOLEAN).scope(SESSION).defaultText("ORT's")
        .doc("TF32 math on Ampere and later"));
    declare(key(SchedulingProperties.CUDA_OPTION_PREFIX + "<ortKey>").scope(SESSION)
        .scopeByKey(SparkinferSettings::providerOptionScope, "session or application, by option").defaultText("-")
        .doc("an ONNX Runtime CUDA option from sparkinfer's allow-list"));
    declare(key(SchedulingProperties.TENSORRT_ENABLED).type(Setting.Type.BOOLEAN).scope(SESSION).defaultText("false")
        .doc("TensorRT first, then CUDA"));
    declare(key(SchedulingProperties.TENSORRT_FP16).type(Setting.Type.BOOLEAN).scope(SESSION).defaultText("ORT's")
        .doc("whether TensorRT may build float16 engines"));
    declare(key(SchedulingProperties.TENSORRT_ENGINE_CACHE_PATH).type(Setting.Type.PATH).scope(APPLICATION)
        .defaultText("no cache").doc("folder of built TensorRT engines"));
    declare(key(SchedulingProperties.TENSORRT_OPTION_PREFIX + "<ortKey>").scope(SESSION)
        .scopeByKey(SparkinferSettings::providerOptionScope, "session or application, by option").defaultText("-")
        .doc("an ONNX Runtime TensorRT option from sparkinfer's allow-list"));
    declare(key(SchedulingProperties.CANN_NPU_MEMORY_LIMIT).type(Setting.Type.SIZE).scope(APPLICATION)
        .defaultText("no limit").doc("CANN arena cap per NPU"));
    declare(key(SchedulingProperties.CANN_ARENA_EXTEND_STRATEGY).choices("kNextPowerOfTwo", "kSameAsRequested")
        .scope(SESSION).defaultText("ORT's").doc("how the CANN arena grows"));
    declare(key(SchedulingProperties.CANN_PRECISION_MODE).scope(SESSION).defaultText("ORT's")
        .doc("CANN operator precision"));
    declare(key(SchedulingProperties.CANN_GRAPH).type(Setting.Type.BOOLEAN).scope(SESSION).defaultText("ORT's")
        .doc("CANN graph engine"));
    declare(key(SchedulingProperties.CANN_OPTION_PREFIX + "<ortKey>").scope(SESSION)
        .scopeByKey(SparkinferSettings::providerOptionScope, "session or application, by option").defaultText("-")
        .doc("an ONNX Runtime CANN option from sparkinfer's allow-list"));

    // The inference stage's resources: tasks may be sized by a session; executors are the application's.
    declare(key(STAGE + PartitioningProperties.TASK_CPUS).type(Setting.Type.INT).scope(SESSION)
        .defaultText("spark.task.cpus").doc("CPUs per task of the inference stage"));
    declare(key(STAGE + PartitioningProperties.TASK_RESOURCE_PREFIX + "<resource>" + PartitioningProperties.AMOUNT_SUFFIX)
        .type(Setting.Type.DOUBLE).scope(SESSION).defaultText("(none)").doc("a resource per task of the inference stage"));
    for (String option : List.of(PartitioningProperties.EXECUTOR_CORES, PartitioningProperties.EXECUTOR_MEMORY,
        PartitioningProperties.EXECUTOR_MEMORY_OVERHEAD)) {
      declare(key(STAGE + option).type(option.equals(PartitioningProperties.EXECUTOR_CORES) ? Setting.Type.INT
          : Setting.Type.SIZE).scope(APPLICATION).defaultText("(none)").doc("the inference stage's executors: " + option));
    }
    for (String suffix : List.of(PartitioningProperties.AMOUNT_SUFFIX, PartitioningProperties.DISCOVERY_SCRIPT_SUFFIX,
        PartitioningProperties.VENDOR_SUFFIX)) {
      declare(key(STAGE + PartitioningProperties.EXECUTOR_RESOURCE_PREFIX + "<resource>" + suffix)
          .type(suffix.equals(PartitioningProperties.DISCOVERY_SCRIPT_SUFFIX) ? Setting.Type.PATH : Setting.Type.STRING)
          .scope(APPLICATION).defaultText("(none)").doc("the inference stage's executors' resources"));
    }
    declare(key(M + PartitioningProperties.MODEL_STAGE_INFIX + "<option>").scope(MODEL)
        .scopeByKey(SparkinferSettings::modelStageScope, "model; its executor.* options application")
        .defaultText("the session-wide key").doc("a stage option for one model"));

    // Batching and execution, session-wide.
    declare(key(InferenceProperties.BATCH_SIZE).type(Setting.Type.INT).scope(SESSION)
        .defaultText("1024 on the CPU, 16384 on a GPU/NPU").doc("rows per model call"));
    declare(key(InferenceProperties.COLUMNAR_OUTPUT).type(Setting.Type.BOOLEAN).scope(SESSION)
        .defaultText(InferenceProperties.COLUMNAR_OUTPUT_DEFAULT)
        .doc("predict() over a columnar child gives columnar batches"));
    declare(key(InferenceProperties.INTRA_OP_THREADS).type(Setting.Type.INT).scope(SESSION).defaultText("0")
        .doc("ONNX Runtime intra-op threads; 0 follows the task's CPUs"));
    declare(key(InferenceProperties.ON_ERROR).choices("fail", "null").scope(SESSION)
        .defaultText(InferenceProperties.ON_ERROR_DEFAULT).doc("what a row the model cannot take does"));
    declare(key(InferenceProperties.TOKEN_BUDGET).type(Setting.Type.INT).scope(SESSION)
        .defaultText("256 on the CPU, 32768 on a GPU/NPU")
        .doc("padded tokens per text batch"));
    declare(key(InferenceProperties.SORT_WINDOW_ROWS).type(Setting.Type.INT).scope(SESSION)
        .defaultText("1024 on the CPU, 8192 on a GPU/NPU").doc("rows tokenized and sorted by length together"));
    declare(key(InferenceProperties.POOL_ON_DEVICE).choices("auto", "true", "false").scope(SESSION)
        .defaultText(InferenceProperties.POOL_ON_DEVICE_DEFAULT).doc("where embed() pools token states"));
    declare(key(InferenceProperties.CROSS_TASK_BATCHING).choices("auto", "true", "false").scope(SESSION)
        .defaultText(InferenceProperties.CROSS_TASK_BATCHING_DEFAULT)
        .doc("whether embed() batches the texts of all an executor's tasks together"));
    declare(key(InferenceProperties.INT8_SCHEME).choices("auto", "u8s8", "u8s8-paired", "u8u8", "u8s8-reduced")
        .scope(SESSION).defaultText(InferenceProperties.INT8_SCHEME_DEFAULT).doc("int8 weight scheme"));

    // One model's keys.
    declare(key(M + InferenceProperties.MODEL_PATH_SUFFIX).type(Setting.Type.URI).scope(MODEL).defaultText("(required)")
        .doc("URI of the model's .onnx file; registers the model"));
    declare(key(M + InferenceProperties.MODEL_SHA256_SUFFIX).scope(MODEL).defaultText("(none)")
        .doc("the SHA-256 the .onnx file must have"));
    declare(key(M + InferenceProperties.MODEL_BATCH_SIZE_SUFFIX).type(Setting.Type.INT).scope(MODEL)
        .defaultText(InferenceProperties.BATCH_SIZE).doc("rows per model call for this model"));
    declare(key(M + InferenceProperties.MODEL_ON_ERROR_SUFFIX).choices("fail", "null").scope(MODEL)
        .defaultText(InferenceProperties.ON_ERROR).doc("what a row this model cannot take does"));
    declare(key(M + InferenceProperties.MODEL_OUTPUTS_SUFFIX).scope(MODEL).defaultText("all outputs")
        .doc("outputs predict() returns"));
    declare(key(M + InferenceProperties.MODEL_INTRA_OP_THREADS_SUFFIX).type(Setting.Type.INT).scope(MODEL)
        .defaultText(InferenceProperties.INTRA_OP_THREADS).doc("intra-op threads of this model's sessions"));
    declare(key(M + InferenceProperties.MODEL_TOKENIZER_SUFFIX).type(Setting.Type.URI).scope(MODEL).defaultText("(none)")
        .doc("URI of a Hugging Face tokenizer.json"));
    declare(key(M + InferenceProperties.MODEL_MAX_LENGTH_SUFFIX).type(Setting.Type.INT).scope(MODEL)
        .defaultText("tokenizer.json's, else the model's, else 512").doc("longest token sequence"));
    declare(key(M + InferenceProperties.MODEL_POOLING_SUFFIX).choices("mean", "cls").scope(MODEL).defaultText("mean")
        .doc("embed() pooling"));
    declare(key(M + InferenceProperties.MODEL_POOL_ON_DEVICE_SUFFIX).choices("auto", "true", "false").scope(MODEL)
        .defaultText(InferenceProperties.POOL_ON_DEVICE).doc("where embed() pools, for this model"));
    declare(key(M + InferenceProperties.MODEL_CROSS_TASK_BATCHING_SUFFIX).choices("auto", "true", "false").scope(MODEL)
        .defaultText(InferenceProperties.CROSS_TASK_BATCHING).doc("cross-task batching of embed(), for this model"));
    declare(key(M + InferenceProperties.MODEL_NORMALIZE_SUFFIX).type(Setting.Type.BOOLEAN).scope(MODEL)
        .defaultText("true").doc("embed() scales vectors to unit length"));
    declare(key(M + InferenceProperties.MODEL_EMBEDDING_OUTPUT_SUFFIX).scope(MODEL)
        .defaultText("first float output of rank 3, else of rank 2").doc("the output embed() reads"));
    declare(key(M + InferenceProperties.MODEL_TOKEN_BUDGET_SUFFIX).type(Setting.Type.INT).scope(MODEL)
        .defaultText(InferenceProperties.TOKEN_BUDGET).doc("padded tokens per text batch for this model"));
    declare(key(M + InferenceProperties.MODEL_PRECISION_SUFFIX).choices("fp32", "int8", "fp16", "int4", "auto")
        .scope(MODEL).defaultText("fp32").doc("precision the executors compress the model to"));
    declare(key(M + InferenceProperties.MODEL_PRUNE_RATIO_SUFFIX).type(Setting.Type.DOUBLE).scope(MODEL)
        .defaultText("0").doc("ratio of hidden units removed before loading"));
    declare(key(M + InferenceProperties.MODEL_INT8_SCHEME_SUFFIX)
        .choices("auto", "u8s8", "u8s8-paired", "u8u8", "u8s8-reduced").scope(MODEL)
        .defaultText(InferenceProperties.INT8_SCHEME).doc("int8 weight scheme for this model"));

    // generate()'s options: one list (GenerateOption), as session keys and per model.
    for (GenerateOption option : GenerateOption.values()) {
      Setting.Builder builder = key(GenerateOption.SESSION_PREFIX + option.key()).scope(SESSION)
          .defaultText(option.defaultText()).doc("generate(): " + option.doc());
      switch (option) {
        case MAX_NEW_TOKENS: case TOP_K: case MAX_CONTEXT: case BATCH_SIZE: case NUM_BEAMS:
          builder.type(Setting.Type.INT);
          break;
        case TEMPERATURE: case TOP_P: case REPETITION_PENALTY:
          builder.type(Setting.Type.DOUBLE);
          break;
        case CONTEXT_OVERFLOW:
          builder.choices("error", "truncate");
          break;
        case DECODE_LOOP:
          builder.choices("auto", "java", "graph");
          break;
        default:
          break;
      }
      declare(builder);
    }
    declare(key(M + GenerateOption.MODEL_INFIX + "<option>").scope(MODEL)
        .defaultText(GenerateOption.SESSION_PREFIX + "<option>").doc("a generate() option for this model"));
  }

  /** Every declared setting, in declaration order. */
  public static List<Setting> all() {
    return Collections.unmodifiableList(ALL);
  }

  /** The setting a concrete key is, if sparkinfer declares it. */
  public static Optional<Setting> find(String concreteKey) {
    for (Setting setting : ALL) {
      if (setting.matches(concreteKey)) {
        return Optional.of(setting);
      }
    }
    return Optional.empty();
  }

  /** Whether a concrete key is read from the application's configuration only. */
  public static boolean isApplicationOnly(String concreteKey) {
    return find(concreteKey).map(setting -> setting.scopeOf(concreteKey) == APPLICATION).orElse(false);
  }

  private static SettingScope providerOptionScope(String concreteKey) {
    return ProviderOptionPolicy.isApplicationKey(concreteKey) ? APPLICATION : SESSION;
  }

  // spark.sparkinfer.model.<name>.stage.executor.*: a new executor shape, a ResourceProfile Spark never frees.
  private static SettingScope modelStageScope(String concreteKey) {
    int stage = concreteKey.indexOf(PartitioningProperties.MODEL_STAGE_INFIX, InferenceProperties.MODEL_PREFIX.length());
    String option = stage < 0 ? "" : concreteKey.substring(stage + PartitioningProperties.MODEL_STAGE_INFIX.length());
    return option.startsWith("executor.") ? APPLICATION : MODEL;
  }
}
