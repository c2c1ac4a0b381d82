package io.github.sparkinfer.device;

/** A model could not be loaded; the message names the model, the URI, why, and the fix. */
public final class ModelLoadException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ModelLoadException(String message, Throwable cause) {
    super(message, cause);
  }

  public ModelLoadException(String message) {
    super(message);
  }
}
