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

  /** "Cannot load model 'm' from uri: why. fix", with {@code cause} when there is one. */
  static ModelLoadException of(ModelSource source, String why, String fix, Throwable cause) {
    String message =
        "Cannot load model '" + source.name() + "' from " + source.uri() + ": " + why + ". " + fix;
    return cause == null ? new ModelLoadException(message) : new ModelLoadException(message, cause);
  }
}
