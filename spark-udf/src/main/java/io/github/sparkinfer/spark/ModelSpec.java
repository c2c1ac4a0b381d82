package io.github.sparkinfer.spark;

import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * A model registration: a name, the URI of its ONNX file and optional settings. Immutable; build
 * with {@link #builder(String)} and register with {@link SparkInference#register}.
 */
public final class ModelSpec {
  private final String name;
  private final String path;
  private final OptionalInt batchSize;
  private final OptionalInt intraOpThreads;
  private final List<String> outputs;

  private ModelSpec(Builder builder) {
    this.name = builder.name;
    this.path = builder.path;
    this.batchSize = builder.batchSize;
    this.intraOpThreads = builder.intraOpThreads;
    this.outputs = List.copyOf(builder.outputs);
  }

  public static Builder builder(String name) {
    return new Builder(name);
  }

  public String name() {
    return name;
  }

  public String path() {
    return path;
  }

  public OptionalInt batchSize() {
    return batchSize;
  }

  public OptionalInt intraOpThreads() {
    return intraOpThreads;
  }

  /** Outputs to return; empty means all. */
  public List<String> outputs() {
    return outputs;
  }

  @Override
  public String toString() {
    return "ModelSpec{name=" + name + ", path=" + path + ", batchSize=" + batchSize
        + ", intraOpThreads=" + intraOpThreads + ", outputs=" + outputs + "}";
  }

  public static final class Builder {
    private final String name;
    private String path;
    private OptionalInt batchSize = OptionalInt.empty();
    private OptionalInt intraOpThreads = OptionalInt.empty();
    private List<String> outputs = List.of();

    private Builder(String name) {
      this.name = ModelNames.validate(name);
    }

    /** Any Hadoop FileSystem URI of an .onnx file; a plain path means the local file system. */
    public Builder path(String uri) {
      this.path = Objects.requireNonNull(uri, "path");
      return this;
    }

    public Builder batchSize(int rows) {
      this.batchSize = OptionalInt.of(ModelNames.positive(rows, "batch size", name));
      return this;
    }

    public Builder intraOpThreads(int threads) {
      this.intraOpThreads = OptionalInt.of(ModelNames.positive(threads, "intra-op threads", name));
      return this;
    }

    public Builder outputs(String... outputNames) {
      this.outputs = List.of(outputNames);
      return this;
    }

    public ModelSpec build() {
      if (path == null) {
        throw new IllegalArgumentException(
            "Cannot register model '" + name + "' without a path: call path(\"hdfs://.../model.onnx\")");
      }
      return new ModelSpec(this);
    }
  }

}
