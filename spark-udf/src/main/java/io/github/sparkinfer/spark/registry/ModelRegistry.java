package io.github.sparkinfer.spark.registry;

import static io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE;
import static io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_DEFAULT;
import static io.github.sparkinfer.spark.InferenceProperties.INTRA_OP_THREADS;
import static io.github.sparkinfer.spark.InferenceProperties.INTRA_OP_THREADS_DEFAULT;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_BATCH_SIZE_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_INTRA_OP_THREADS_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_OUTPUTS_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_PATH_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_PREFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_PRECISION_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_TOKENIZER_SUFFIX;

import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelLoadException;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.SessionSettings;
import io.github.sparkinfer.partitioning.StageResourceProfiles;
import io.github.sparkinfer.partitioning.StageResources;
import io.github.sparkinfer.spark.InferenceProperties;
import io.github.sparkinfer.spark.JavaCollections;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.stream.Collectors;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.internal.SQLConf;

/**
 * Models registered in a session, read from its SQL configuration: {@code
 * spark.sparkinfer.model.<name>.path} and friends. Internal: users register through SET or
 * SparkInference.register.
 */
public final class ModelRegistry {
  private ModelRegistry() {}

  /** Names of the models registered in the current session, sorted. */
  public static List<String> registeredModels() {
    Map<String, String> all = JavaCollections.asJava(SQLConf.get().getAllConfs());
    List<String> names = new ArrayList<>();
    for (String key : all.keySet()) {
      if (key.startsWith(MODEL_PREFIX) && key.endsWith(MODEL_PATH_SUFFIX)) {
        names.add(key.substring(MODEL_PREFIX.length(), key.length() - MODEL_PATH_SUFFIX.length()));
      }
    }
    Collections.sort(names);
    return names;
  }

  /**
   * Resolves a registered model: settings by precedence (argument > per-model key > session key >
   * default), and its signature, read by loading the model once in this JVM's cache.
   */
  public static ModelBinding resolve(String name, OptionalInt batchSizeArgument, List<String> outputsArgument) {
    return resolve(name, CallSettings.none().withBatchSize(batchSizeArgument).withOutputs(outputsArgument));
  }

  /**
   * As {@link #resolve(String, OptionalInt, List)}, with the inference stage's resources given by
   * the caller ({@code null}: read from the session's stage keys).
   */
  public static ModelBinding resolve(String name, OptionalInt batchSizeArgument, List<String> outputsArgument,
      StageResources stageResourcesArgument) {
    return resolve(name, CallSettings.none().withBatchSize(batchSizeArgument).withOutputs(outputsArgument)
        .withStageResources(stageResourcesArgument));
  }

  /** Resolves model {@code name} with what the call sets for itself over the session's keys. */
  public static ModelBinding resolve(String name, CallSettings call) {
    SettingsView conf;
    try {
      conf = new SettingsView(SQLConf.get(), call.settings(), SparkSession.active().sparkContext().getConf());
    } catch (IllegalArgumentException e) {
      throw Errors.analysis("Cannot call model '" + name + "': " + e.getMessage(), e);
    }
    String path = conf.get(MODEL_PREFIX + name + MODEL_PATH_SUFFIX, null);
    if (path == null || path.isBlank()) {
      List<String> registered = registeredModels();
      throw Errors.analysis(
          "Unknown model '" + name + "': no model of that name is registered in this session"
              + (registered.isEmpty() ? " (none are)" : "; registered models: " + registered)
              + ". Register it with SET " + MODEL_PREFIX + name + MODEL_PATH_SUFFIX + "=<URI of the .onnx file>"
              + " or SparkInference.register(spark, ModelSpec.builder(\"" + name + "\").path(...).build())");
    }
    OptionalInt batchSizeArgument = call.batchSize();
    boolean explicitBatchSize = batchSizeArgument.isPresent() || conf.isSet(MODEL_PREFIX + name + MODEL_BATCH_SIZE_SUFFIX);
    int batchSize = batchSizeArgument.isPresent()
        ? batchSizeInRange(name, "the call's batch size", batchSizeArgument.getAsInt())
        : batchSizeInRange(name, MODEL_PREFIX + name + MODEL_BATCH_SIZE_SUFFIX,
            conf.positiveInt(name, MODEL_PREFIX + name + MODEL_BATCH_SIZE_SUFFIX,
                batchSizeInRange(name, BATCH_SIZE, conf.positiveInt(name, BATCH_SIZE, BATCH_SIZE_DEFAULT))));
    // Unset anywhere, the device chooses on the executor: large batches keep a GPU busy, small ones
    // stay in a CPU's caches.
    boolean deviceChosenBatchSize = !explicitBatchSize && !conf.isSet(BATCH_SIZE);
    int cpuBatchSize = batchSize;
    if (deviceChosenBatchSize) {
      batchSize = InferenceProperties.BATCH_SIZE_ACCELERATOR_DEFAULT;
    }
    int threads = conf.nonNegativeInt(name, MODEL_PREFIX + name + MODEL_INTRA_OP_THREADS_SUFFIX,
        conf.nonNegativeInt(name, INTRA_OP_THREADS, INTRA_OP_THREADS_DEFAULT));
    List<String> outputs = call.outputs();
    if (outputs.isEmpty()) {
      String configured = conf.get(MODEL_PREFIX + name + MODEL_OUTPUTS_SUFFIX, "");
      outputs = Arrays.stream(configured.split(","))
          .map(String::trim)
          .filter(output -> !output.isEmpty())
          .collect(Collectors.toList());
    }
    ModelSource source = ModelSource.registered(name, path.trim(), MODEL_PREFIX + name + MODEL_PATH_SUFFIX);
    String sha256Key = MODEL_PREFIX + name + InferenceProperties.MODEL_SHA256_SUFFIX;
    if (conf.isSet(sha256Key)) {
      try {
        source = source.withSha256(conf.get(sha256Key, null), sha256Key);
      } catch (IllegalArgumentException e) {
        throw Errors.analysis(e.getMessage(), e);
      }
    }
    LoadedModel model;
    try {
      model = ModelCache.shared().acquire(source, driverSettings(threads), driverHadoopConfiguration());
    } catch (ModelLoadException e) {
      throw Errors.analysis(e.getMessage(), e);
    }
    String precision = CompressedModels.parse(name, MODEL_PREFIX + name + MODEL_PRECISION_SUFFIX,
        conf.get(MODEL_PREFIX + name + MODEL_PRECISION_SUFFIX, "fp32"));
    String tokenizer = conf.get(MODEL_PREFIX + name + MODEL_TOKENIZER_SUFFIX, null);
    boolean textModel = tokenizer != null && !tokenizer.isBlank();
    boolean decoder = io.github.sparkinfer.spark.generate.DecoderLayout.isGenerative(model.signature());
    boolean dynamicallyQuantized = precision.equals("int8") || precision.equals("auto") || isDynamicallyQuantized(source);
    if (textModel && !decoder && !explicitBatchSize && dynamicallyQuantized) {
      // One scale per batch: a text's vector would depend on its batch mates. Exact unless asked otherwise.
      batchSize = 1;
      cpuBatchSize = 1;
    }
    long maxBatchBytes = BatchMemory.maxBatchBytes(conf, name, SparkSession.active().sparkContext());
    ModelBinding binding;
    try {
      binding = ModelBinding.builder(name, source, model.signature()).batchSizes(batchSize, cpuBatchSize)
          .intraOpThreads(threads).outputs(outputs).build();
      long rowBytes = BatchMemory.fixedRowBytes(model.signature(), binding.selectedOutputs());
      // A default that does not fit is lowered quietly; a setting that does not fit, with a WARN.
      int fitted = deviceChosenBatchSize ? BatchMemory.fitQuietly(binding.batchSize(), rowBytes, maxBatchBytes)
          : BatchMemory.fit(name, binding.batchSize(), rowBytes, maxBatchBytes);
      int cpuFitted = BatchMemory.fit(name, cpuBatchSize, rowBytes, maxBatchBytes);
      if (fitted != binding.batchSize() || cpuFitted != cpuBatchSize) {
        binding = binding.toBuilder().batchSizes(fitted, cpuFitted).build();
      }
    } catch (ModelBindingException e) {
      throw Errors.analysis(e.getMessage(), e);
    }
    String pruneKey = MODEL_PREFIX + name + InferenceProperties.MODEL_PRUNE_RATIO_SUFFIX;
    double pruneRatio = CompressedModels.pruneRatio(name, pruneKey, conf.get(pruneKey, "0"));
    if (pruneRatio > 0) {
      CompressedModels.checkPrunable(source, pruneKey, driverHadoopConfiguration());
    }
    Map<String, String> all = conf.all();
    Map<String, String> deviceSettings = deviceSettings(all);
    checkDeviceSettings(name, deviceSettings);
    // Application keys never travel: executors read those from their own SparkConf.
    ModelBindingBuilder builder = binding.toBuilder()
        .deviceSettings(io.github.sparkinfer.spark.config.ApplicationSettings.withoutApplicationKeys(deviceSettings))
        .precision(precision, CompressedModels.int8Scheme(name, all))
        .pruneRatio(pruneRatio)
        .stageResources(stageResources(name, all, call.stageResources()))
        .rowErrors(rowErrorPolicy(name, conf, call), call.reportErrors())
        .maxBatchBytes(maxBatchBytes);
    if (textModel && decoder) {
      builder.generation(GenerationSettingsReader.read(conf, builder.build(), tokenizer.trim()));
    } else if (textModel) {
      builder.text(TextModelSettings.read(conf, builder.build(), tokenizer.trim()));
    }
    return builder.build();
  }

  /** The call's policy, else the model's key, else the session's, else fail. */
  private static RowErrorPolicy rowErrorPolicy(String name, SettingsView conf, CallSettings call) {
    if (call.onError() != null) {
      return call.onError();
    }
    String modelKey = MODEL_PREFIX + name + InferenceProperties.MODEL_ON_ERROR_SUFFIX;
    String key = conf.isSet(modelKey) ? modelKey : InferenceProperties.ON_ERROR;
    return RowErrorPolicy.parse(name, key, conf.get(key, InferenceProperties.ON_ERROR_DEFAULT));
  }

  /**
   * The resources the model's inference stage asks for, checked against the application's
   * executors now, so that a request Spark would reject or never schedule fails the query at
   * analysis instead of leaving a job waiting.
   */
  private static StageResources stageResources(String name, Map<String, String> settings, StageResources argument) {
    StageResources resources;
    try {
      resources = argument != null ? argument : StageResources.fromConfiguration(settings, name);
      StageResourceProfiles.check(SparkSession.active().sparkContext().getConf(), resources, name);
    } catch (IllegalArgumentException e) {
      throw Errors.analysis(e.getMessage(), e);
    }
    return resources;
  }

  private static final List<String> DEVICE_PREFIXES = io.github.sparkinfer.device.SchedulingProperties.DEVICE_SETTING_PREFIXES;

  /**
   * The device keys, the session's and the application's; the session's are shipped in the plan, so
   * a SET in a notebook reaches the executors.
   */
  private static java.util.Map<String, String> deviceSettings(Map<String, String> all) {
    java.util.Map<String, String> settings = new java.util.TreeMap<>();
    all.forEach((key, value) -> {
      if (DEVICE_PREFIXES.stream().anyMatch(key::startsWith)) {
        settings.put(key, value);
      }
    });
    return settings;
  }

  /**
   * The device keys as the executors will read them, checked now: a value a task would refuse
   * fails the query at analysis, before any job starts. (An executor's own SparkConf may add keys;
   * the session's take precedence.)
   */
  private static void checkDeviceSettings(String name, java.util.Map<String, String> settings) {
    String device = settings.get(io.github.sparkinfer.device.SchedulingProperties.DEVICE);
    if (device != null && !device.trim().equalsIgnoreCase(io.github.sparkinfer.device.SchedulingProperties.DEVICE_DEFAULT)) {
      try {
        io.github.sparkinfer.device.Device.parse(device);
      } catch (IllegalArgumentException e) {
        throw Errors.analysis("Invalid value '" + device + "' for " + io.github.sparkinfer.device.SchedulingProperties.DEVICE
            + " (model '" + name + "'): expected auto, cpu, cuda:<index> or npu:<index>, such as cuda:0. Fix it with SET "
            + io.github.sparkinfer.device.SchedulingProperties.DEVICE + "=auto", e);
      }
    }
    try {
      io.github.sparkinfer.device.DeviceFallback.fromSettings(settings);
      io.github.sparkinfer.device.DeviceRunLimiter.fromSettings(settings);
      io.github.sparkinfer.device.ExecutionProviderOptions.fromSettings(settings);
    } catch (IllegalArgumentException e) {
      throw Errors.analysis("Cannot call model '" + name + "': " + e.getMessage()
          + ". Fix the setting with SET <key>=<value>, or unset it with RESET <key>", e);
    }
  }

  private static final java.util.concurrent.ConcurrentMap<java.nio.file.Path, Boolean> DYNAMICALLY_QUANTIZED =
      new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * Whether the model quantizes activations at run time (DynamicQuantizeLinear, as ONNX Runtime's
   * dynamic int8 quantizer makes): it picks one scale for the whole batch tensor, so a row's result
   * depends on the other rows of its batch. Read once per file version, node types only (the
   * weights are skipped, so a large model costs the driver no heap).
   */
  static boolean isDynamicallyQuantized(ModelSource source) {
    java.nio.file.Path local = ModelCache.shared().localFile(source, driverHadoopConfiguration());
    return DYNAMICALLY_QUANTIZED.computeIfAbsent(local, file -> {
      try {
        return io.github.sparkinfer.compression.OnnxModel.operatorTypes(file).contains("DynamicQuantizeLinear");
      } catch (java.io.IOException | RuntimeException e) {
        throw Errors.analysis("Cannot read the graph of model '" + source.name() + "' (" + source.uri() + "): "
            + e.getMessage(), e);
      }
    });
  }

  /**
   * The driver reads signatures with the settings a one-core task would use, so in local mode the
   * executor's tasks find the same session in the cache instead of loading the model again.
   */
  private static SessionSettings driverSettings(int threads) {
    return SessionSettings.builder().intraOpThreads(threads > 0 ? threads : 1).build();
  }

  /**
   * The application's Hadoop configuration (its SparkConf's spark.hadoop.* entries), as executors
   * read models with: never the session's, which takes every SQL SET (a SET of fs.s3a endpoints,
   * fs.*.impl classes or viewfs mount tables would redirect the driver's reads).
   */
  static Configuration driverHadoopConfiguration() {
    return io.github.sparkinfer.spark.batch.ExecutorSessions.hadoopConfiguration();
  }

  private static int batchSizeInRange(String model, String setting, int value) {
    if (value < 1 || value > io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_MAX) {
      throw Errors.analysis("Invalid batch size " + value + " for model '" + model + "' (" + setting + "): must be"
          + " from 1 to " + io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_MAX + " rows per model call."
          + " Larger batches do not run faster; they only hold more rows in memory");
    }
    return value;
  }
}
