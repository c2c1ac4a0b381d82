package io.github.sparkinfer.spark.plan;

/** A call does not fit the model; the message names the model, the input, and the fix. */
final class ModelBindingException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  ModelBindingException(String message) {
    super(message);
  }
}
