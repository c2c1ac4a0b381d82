package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.spark.InferenceProperties;
import java.util.Locale;

/**
 * What a model call does with a row the model cannot take (an array of the wrong length, a null
 * element, a value ONNX Runtime rejects, a text the tokenizer fails on).
 */
public enum RowErrorPolicy {
  /** Fail the task, naming the model, the input, the shapes and the row (the default). */
  FAIL,
  /** Give the row a null result, count it, and compute the other rows of its batch. */
  NULL;

  /** Reads fail or null, in any case; anything else is an analysis error naming the key. */
  public static RowErrorPolicy parse(String model, String key, String value) {
    RowErrorPolicy policy = named(value);
    if (policy != null) {
      return policy;
    }
    throw Errors.analysis("Invalid value '" + value + "' for " + key + " (model '" + model + "'): use fail"
        + " (the default: a row the model cannot take fails the query) or null (it gets a null result"
        + " and is counted; " + InferenceProperties.MODEL_PREFIX + "<name>" + InferenceProperties.MODEL_ON_ERROR_SUFFIX
        + ", or predict_with_error() for the reason)");
  }

  /** fail or null in any case, else null. */
  public static RowErrorPolicy named(String value) {
    switch (value.trim().toLowerCase(Locale.ROOT)) {
      case "fail":
        return FAIL;
      case "null":
        return NULL;
      default:
        return null;
    }
  }

  @Override
  public String toString() {
    return name().toLowerCase(Locale.ROOT);
  }
}
