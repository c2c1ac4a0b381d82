package io.github.sparkinfer.spark.registry;

import static io.github.sparkinfer.spark.InferenceProperties.MODEL_EMBEDDING_OUTPUT_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_MAX_LENGTH_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_NORMALIZE_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_POOLING_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_PREFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_TOKENIZER_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_TOKEN_BUDGET_SUFFIX;
import static io.github.sparkinfer.spark.InferenceProperties.SORT_WINDOW_ROWS;
import static io.github.sparkinfer.spark.InferenceProperties.TOKEN_BUDGET;

import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelLoadException;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.spark.InferenceProperties;

/**
 * A text model's settings (tokenizer, max length, pooling, token budget, sort window, embedding
 * output, pooling on the device), read from the session's keys and checked against the model at
 * analysis, so that a setting a task would refuse fails the query before any job starts.
 */
final class TextModelSettings {
  private TextModelSettings() {}

  /**
   * The text settings of model {@code binding} (it has a tokenizer at {@code tokenizerUri}),
   * checked against the model's inputs and outputs now, at analysis.
   */
  static TextSettings read(SettingsView conf, ModelBinding binding, String tokenizerUri) {
    String name = binding.modelName();
    String prefix = MODEL_PREFIX + name;
    for (io.github.sparkinfer.device.TensorSpec input : binding.signature().inputs()) {
      boolean known = input.name().equals(TextSettings.INPUT_IDS)
          || input.name().equals(TextSettings.ATTENTION_MASK)
          || input.name().equals(TextSettings.TOKEN_TYPE_IDS);
      boolean integral = input.elementType() == io.github.sparkinfer.device.TensorElementType.INT64
          || input.elementType() == io.github.sparkinfer.device.TensorElementType.INT32;
      if (!known || !integral || input.rank() != 2) {
        throw Errors.analysis(
            "Model '" + name + "' has a tokenizer (" + prefix + MODEL_TOKENIZER_SUFFIX + ") but its input '"
                + input.name() + "' (" + input.onnxTypeName().toLowerCase() + input.shapeString() + ") is not"
                + " one a tokenizer fills: text models take input_ids and optionally attention_mask and"
                + " token_type_ids, integer tensors of shape [batch, tokens]. Remove the tokenizer key to"
                + " call it with predict() on numeric columns");
      }
    }
    if (binding.signature().inputs().stream().noneMatch(input -> input.name().equals(TextSettings.INPUT_IDS))) {
      throw Errors.analysis("Model '" + name + "' has a tokenizer but no input_ids input: its inputs are "
          + binding.describeInputs());
    }
    ModelSource tokenizer = ModelSource.ofFile(name, tokenizerUri, prefix + MODEL_TOKENIZER_SUFFIX);
    java.nio.file.Path localTokenizer;
    try {
      localTokenizer = ModelCache.shared().localFile(tokenizer, ModelRegistry.driverHadoopConfiguration());
    } catch (ModelLoadException e) {
      throw Errors.analysis(e.getMessage().replace("Cannot load model", "Cannot load the tokenizer of model"), e);
    }
    int maxLength = conf.positiveInt(name, prefix + MODEL_MAX_LENGTH_SUFFIX,
        defaultMaxLength(binding, localTokenizer));
    TextSettings.Pooling pooling = TextSettings.Pooling.parse(name, prefix + MODEL_POOLING_SUFFIX,
        conf.get(prefix + MODEL_POOLING_SUFFIX, "mean"));
    String normalizeText = conf.get(prefix + MODEL_NORMALIZE_SUFFIX, "true").trim();
    if (!normalizeText.equalsIgnoreCase("true") && !normalizeText.equalsIgnoreCase("false")) {
      throw Errors.analysis("Invalid value '" + normalizeText + "' for " + prefix + MODEL_NORMALIZE_SUFFIX
          + " (model '" + name + "'): use true or false");
    }
    // 0: unset, chosen on the executor by the device the model runs on.
    long tokenBudget = conf.optionalPositiveInt(name, prefix + MODEL_TOKEN_BUDGET_SUFFIX);
    if (tokenBudget == 0) {
      tokenBudget = conf.optionalPositiveInt(name, TOKEN_BUDGET);
    }
    // 0: unset, chosen on the executor by the device the model runs on.
    int windowRows = (int) Math.min(Integer.MAX_VALUE, conf.optionalPositiveInt(name, SORT_WINDOW_ROWS));
    if (windowRows > io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_MAX) {
      throw Errors.analysis("Invalid value " + windowRows + " for " + SORT_WINDOW_ROWS + " (model '" + name + "'): must be"
          + " from 1 to " + io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_MAX + " rows");
    }
    String output = conf.get(prefix + MODEL_EMBEDDING_OUTPUT_SUFFIX, "").trim();
    if (output.isEmpty()) {
      output = TextSettings.defaultEmbeddingOutput(binding);
    } else {
      String chosen = output;
      if (binding.signature().outputs().stream().noneMatch(spec -> spec.name().equals(chosen))) {
        throw Errors.analysis("Model '" + name + "' has no output '" + output + "' (" + prefix
            + MODEL_EMBEDDING_OUTPUT_SUFFIX + "): its outputs are " + binding.signature().outputs());
      }
    }
    tokenBudget = BatchMemory.fitTokenBudget(binding, output, tokenBudget);
    checkWindowBytes(binding, output, windowRows);
    String poolKey = modelOrSessionKey(conf, prefix + InferenceProperties.MODEL_POOL_ON_DEVICE_SUFFIX,
        InferenceProperties.POOL_ON_DEVICE);
    String poolOnDevice = autoTrueFalse(conf, name, poolKey, InferenceProperties.POOL_ON_DEVICE_DEFAULT,
        "auto (pool in the model's graph on GPUs and NPUs), true (on every device) or false (in Java)");
    String unpoolable = DevicePooling.whyNot(binding, output, pooling);
    if (poolOnDevice.equals("true") && unpoolable != null) {
      throw Errors.analysis("Cannot pool the token states of model '" + name + "' in its graph (" + poolKey
          + "=true): " + unpoolable + ". Set " + poolKey + "=auto or false");
    }
    String crossTask = autoTrueFalse(conf, name,
        modelOrSessionKey(conf, prefix + InferenceProperties.MODEL_CROSS_TASK_BATCHING_SUFFIX,
            InferenceProperties.CROSS_TASK_BATCHING),
        InferenceProperties.CROSS_TASK_BATCHING_DEFAULT, "auto (batch the texts of all an executor's tasks together"
            + " on GPUs and NPUs), true (on every device) or false (each task batches its own texts)");
    return new TextSettings(tokenizer, maxLength, pooling, Boolean.parseBoolean(normalizeText), tokenBudget,
        windowRows, output, unpoolable == null ? poolOnDevice : "false", crossTask);
  }

  /** A window's vectors are one array: sortWindowRows × the embedding's width must fit one (issue 28). */
  /** The per-model key when it is set, else the session-wide one (the documented precedence). */
  private static String modelOrSessionKey(SettingsView conf, String modelKey, String sessionKey) {
    return conf.isSet(modelKey) ? modelKey : sessionKey;
  }

  /** An auto | true | false setting, lower-cased; any other value is an analysis error naming the key. */
  private static String autoTrueFalse(SettingsView conf, String model, String key, String defaultValue,
      String choices) {
    String value = conf.get(key, defaultValue).trim().toLowerCase(java.util.Locale.ROOT);
    if (!value.equals("auto") && !value.equals("true") && !value.equals("false")) {
      throw Errors.analysis("Invalid value '" + value + "' for " + key + " (model '" + model + "'): use " + choices);
    }
    return value;
  }

  private static void checkWindowBytes(ModelBinding binding, String output, int windowRows) {
    binding.signature().outputs().stream().filter(spec -> spec.name().equals(output)).findFirst().ifPresent(spec -> {
      long width = spec.rank() > 0 ? spec.dimension(spec.rank() - 1) : -1;
      if (windowRows > 0 && width > 0) {
        try {
          BufferSizes.checkWindow(binding.modelName(), windowRows, width, SORT_WINDOW_ROWS);
        } catch (IllegalArgumentException e) {
          throw Errors.analysis(e.getMessage());
        }
      }
    });
  }

  /** The tokenizer.json's own truncation length, else the model's fixed sequence length, else 512. */
  private static int defaultMaxLength(ModelBinding binding, java.nio.file.Path tokenizer) {
    try {
      // Streamed, stopping at truncation: the file is the user's, of any size and nesting.
      int maxLength = io.github.sparkinfer.spark.text.TokenizerJson.truncationMaxLength(tokenizer);
      if (maxLength > 0) {
        return maxLength;
      }
    } catch (java.io.IOException | RuntimeException e) {
      throw Errors.analysis("Cannot read the tokenizer of model '" + binding.modelName() + "' ("
          + tokenizer + ") as JSON: " + e.getMessage() + ". Register a Hugging Face tokenizer.json", e);
    }
    for (io.github.sparkinfer.device.TensorSpec input : binding.signature().inputs()) {
      // Read from the model file: a length past an int is no real sequence length (and would wrap).
      if (input.name().equals(TextSettings.INPUT_IDS) && input.dimension(1) > 0
          && input.dimension(1) <= Integer.MAX_VALUE) {
        return (int) input.dimension(1);
      }
    }
    return 512;
  }
}
