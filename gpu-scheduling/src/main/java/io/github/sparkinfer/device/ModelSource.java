package io.github.sparkinfer.device;

import java.io.Serializable;
import java.util.Objects;

/** Where a registered model's ONNX file lives: a model name and any Hadoop FileSystem URI. Immutable. */
public final class ModelSource implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String name;
  private final String uri;
  private final String registrationKey;

  private ModelSource(String name, String uri, String registrationKey) {
    this.name = Objects.requireNonNull(name, "name");
    this.uri = Objects.requireNonNull(uri, "uri");
    this.registrationKey = registrationKey;
  }

  public static ModelSource of(String name, String uri) {
    return new ModelSource(name, uri, null);
  }

  /**
   * Another file of model {@code name} (a tokenizer, say), registered under {@code
   * registrationKey}, which error messages name as the setting to fix.
   */
  public static ModelSource ofFile(String name, String uri, String registrationKey) {
    return new ModelSource(name, uri, Objects.requireNonNull(registrationKey, "registrationKey"));
  }

  /** The setting that registered this file, when it is not the model's .path. */
  public java.util.Optional<String> registrationKey() {
    return java.util.Optional.ofNullable(registrationKey);
  }

  public String name() {
    return name;
  }

  public String uri() {
    return uri;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof ModelSource
        && ((ModelSource) other).name.equals(name)
        && ((ModelSource) other).uri.equals(uri)
        && Objects.equals(((ModelSource) other).registrationKey, registrationKey);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, uri, registrationKey);
  }

  @Override
  public String toString() {
    return "model '" + name + "' at " + uri;
  }
}
