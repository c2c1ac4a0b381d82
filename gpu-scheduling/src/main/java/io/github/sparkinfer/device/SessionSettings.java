package io.github.sparkinfer.device;

import java.io.Serializable;
import java.util.Objects;

/**
 * How an ONNX Runtime session is built. Part of the model cache key: two tasks share a session only
 * when their settings are equal. Immutable; build with {@link #builder()}.
 */
public final class SessionSettings implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int intraOpThreads;
  private final int interOpThreads;

  private SessionSettings(Builder builder) {
    this.intraOpThreads = builder.intraOpThreads;
    this.interOpThreads = builder.interOpThreads;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Threads ONNX Runtime uses inside one operator; follows spark.task.cpus on executors. */
  public int intraOpThreads() {
    return intraOpThreads;
  }

  /** Threads across independent operators; 1 keeps ORT from oversubscribing the task's cores. */
  public int interOpThreads() {
    return interOpThreads;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof SessionSettings
        && ((SessionSettings) other).intraOpThreads == intraOpThreads
        && ((SessionSettings) other).interOpThreads == interOpThreads;
  }

  @Override
  public int hashCode() {
    return Objects.hash(intraOpThreads, interOpThreads);
  }

  @Override
  public String toString() {
    return "cpu, intraOpThreads=" + intraOpThreads + ", interOpThreads=" + interOpThreads;
  }

  public static final class Builder {
    private int intraOpThreads = 1;
    private int interOpThreads = 1;

    private Builder() {}

    public Builder intraOpThreads(int threads) {
      if (threads < 1) {
        throw new IllegalArgumentException(
            "Invalid intra-op thread count " + threads + ": must be at least 1");
      }
      this.intraOpThreads = threads;
      return this;
    }

    public Builder interOpThreads(int threads) {
      if (threads < 1) {
        throw new IllegalArgumentException(
            "Invalid inter-op thread count " + threads + ": must be at least 1");
      }
      this.interOpThreads = threads;
      return this;
    }

    public SessionSettings build() {
      return new SessionSettings(this);
    }
  }
}
