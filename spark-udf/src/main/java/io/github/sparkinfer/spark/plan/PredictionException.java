package io.github.sparkinfer.spark.plan;

/** A batch could not be run; the message names the model, the input, the values, and the fix. */
public final class PredictionException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  PredictionException(String message) {
    super(message);
  }

  PredictionException(String message, Throwable cause) {
    super(message, cause);
  }
}
