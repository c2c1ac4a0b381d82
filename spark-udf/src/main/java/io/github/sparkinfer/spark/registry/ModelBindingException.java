package io.github.sparkinfer.spark.registry;

/** A call does not fit the model; the message names the model, the input, and the fix. */
public final class ModelBindingException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  ModelBindingException(String message) {
    super(message);
  }
}
