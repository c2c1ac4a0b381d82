package io.github.sparkinfer.spark;

/** A batch could not be run; the message names the model, the input, the values, and the fix. */
public final class PredictionException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public PredictionException(String message) {
    super(message);
  }

  public PredictionException(String message, Throwable cause) {
    super(message, cause);
  }
}
