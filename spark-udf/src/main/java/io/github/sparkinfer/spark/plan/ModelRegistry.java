package io.github.sparkinfer.spark.plan;

import static io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE;
import static io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_DEFAULT;
import static io.github.sparkinfer.spark.InferenceProperties.INTRA_OP_THREADS;
import static io.github.sparkinfer.spark.InferenceProperties.INTRA_OP_THREADS_DEFAULT;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_BATCH_SIZE_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_INTRA_OP_THREADS_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_OUTPUTS_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_PATH_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_PREFIX;

import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelLoadException;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.SessionSettings;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.stream.Collectors;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.classic.SparkSession;
import org.apache.spark.sql.internal.SQLConf;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Models registered in a session, read from its SQL configuration: {@code
 * spark.sparkinfer.model.<name>.path} and friends. Internal: users register through SET or
 * SparkInference.register.
 */
public final class ModelRegistry {
  private ModelRegistry() {}

  /** Names of the models registered in the current session, sorted. */
  public static List<String> registeredModels() {
    Map<String, String> all = CollectionConverters.asJava(SQLConf.get().getAllConfs());
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
    SQLConf conf = SQLConf.get();
    String path = conf.getConfString(MODEL_PREFIX + name + MODEL_PATH_SUFFIX, null);
    if (path == null || path.isBlank()) {
      List<String> registered = registeredModels();
      throw Errors.analysis(
          "Unknown model '" + name + "': no model of that name is registered in this session"
              + (registered.isEmpty() ? " (none are)" : "; registered models: " + registered)
              + ". Register it with SET " + MODEL_PREFIX + name + MODEL_PATH_SUFFIX + "=<URI of the .onnx file>"
              + " or SparkInference.register(spark, ModelSpec.builder(\"" + name + "\").path(...).build())");
    }
    int batchSize = batchSizeArgument.isPresent()
        ? batchSizeArgument.getAsInt()
        : positiveInt(conf, name, MODEL_PREFIX + name + MODEL_BATCH_SIZE_SUFFIX,
            positiveInt(conf, name, BATCH_SIZE, BATCH_SIZE_DEFAULT));
    int threads = nonNegativeInt(conf, name, MODEL_PREFIX + name + MODEL_INTRA_OP_THREADS_SUFFIX,
        nonNegativeInt(conf, name, INTRA_OP_THREADS, INTRA_OP_THREADS_DEFAULT));
    List<String> outputs = outputsArgument;
    if (outputs.isEmpty()) {
      String configured = conf.getConfString(MODEL_PREFIX + name + MODEL_OUTPUTS_SUFFIX, "");
      outputs = Arrays.stream(configured.split(","))
          .map(String::trim)
          .filter(output -> !output.isEmpty())
          .collect(Collectors.toList());
    }
    ModelSource source = ModelSource.of(name, path.trim());
    LoadedModel model;
    try {
      model = ModelCache.shared().acquire(source, driverSettings(threads), driverHadoopConfiguration());
    } catch (ModelLoadException e) {
      throw Errors.analysis(e.getMessage(), e);
    }
    try {
      return new ModelBinding(name, source, model.signature(), batchSize, threads, outputs);
    } catch (ModelBindingException e) {
      throw Errors.analysis(e.getMessage(), e);
    }
  }

  /**
   * The driver reads signatures with the settings a one-core task would use, so in local mode the
   * executor's tasks find the same session in the cache instead of loading the model again.
   */
  private static SessionSettings driverSettings(int threads) {
    return SessionSettings.builder().intraOpThreads(threads > 0 ? threads : 1).build();
  }

  private static Configuration driverHadoopConfiguration() {
    return SparkSession.active().sessionState().newHadoopConf();
  }

  private static int positiveInt(SQLConf conf, String model, String key, int fallback) {
    int value = parseInt(conf, model, key, fallback);
    if (value < 1) {
      throw Errors.analysis(
          "Invalid value " + value + " for " + key + " (model '" + model + "'): must be at least 1");
    }
    return value;
  }

  private static int nonNegativeInt(SQLConf conf, String model, String key, int fallback) {
    int value = parseInt(conf, model, key, fallback);
    if (value < 0) {
      throw Errors.analysis(
          "Invalid value " + value + " for " + key + " (model '" + model + "'): must be 0 (follow"
              + " spark.task.cpus) or more");
    }
    return value;
  }

  private static int parseInt(SQLConf conf, String model, String key, int fallback) {
    String text = conf.getConfString(key, null);
    if (text == null || text.isBlank()) {
      return fallback;
    }
    try {
      return Integer.parseInt(text.trim());
    } catch (NumberFormatException e) {
      throw Errors.analysis(
          "Invalid value '" + text + "' for " + key + " (model '" + model + "'): not a whole number");
    }
  }
}
