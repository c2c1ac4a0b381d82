package io.github.sparkinfer.device;

import java.io.Serializable;
import java.util.Objects;

/** Where a registered model's ONNX file lives: a model name and any Hadoop FileSystem URI. Immutable. */
public final class ModelSource implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String name;
  private final String uri;

  private ModelSource(String name, String uri) {
    this.name = Objects.requireNonNull(name, "name");
    this.uri = Objects.requireNonNull(uri, "uri");
  }

  public static ModelSource of(String name, String uri) {
    return new ModelSource(name, uri);
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
        && ((ModelSource) other).uri.equals(uri);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, uri);
  }

  @Override
  public String toString() {
    return "model '" + name + "' at " + uri;
  }
}
