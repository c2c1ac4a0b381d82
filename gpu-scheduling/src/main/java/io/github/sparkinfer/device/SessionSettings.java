package io.github.sparkinfer.device;

import java.io.Serializable;
import java.util.Objects;

/**
 * How an ONNX Runtime session is built: its threads, the device it is bound to, the options of that
 * device's execution providers and what happens when the device cannot be used. Part of the model
 * cache key: two tasks share a session only when their settings are equal, so tasks bound to one
 * GPU share one session (one copy of the weights on that GPU) and tasks on another GPU get their
 * own. Immutable; build with {@link #builder()}, which defaults to the CPU.
 *
 * <p>Only what shapes the session is kept: for the CPU the provider options and the fallback policy
 * do not apply and are dropped, and for an accelerator only its own providers' options are kept
 * ({@link ExecutionProviderOptions#forDevice}).
 */
public final class SessionSettings implements Serializable {
  private static final long serialVersionUID = 2L;

  private final int intraOpThreads;
  private final int interOpThreads;
  private final Device device;
  private final ExecutionProviderOptions providerOptions;
  private final DeviceFallback fallback;

  private SessionSettings(Builder builder) {
    this.intraOpThreads = builder.intraOpThreads;
    this.interOpThreads = builder.interOpThreads;
    this.device = builder.device;
    this.providerOptions = builder.providerOptions.forDevice(builder.device);
    this.fallback = builder.device.isAccelerator() ? builder.fallback : DeviceFallback.CPU;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A builder holding these settings, to derive others from them. */
  public Builder toBuilder() {
    return new Builder()
        .intraOpThreads(intraOpThreads)
        .interOpThreads(interOpThreads)
        .device(device)
        .providerOptions(providerOptions)
        .fallback(fallback);
  }

  /** Threads ONNX Runtime uses inside one operator; follows spark.task.cpus on executors. */
  public int intraOpThreads() {
    return intraOpThreads;
  }

  /** Threads across independent operators; 1 keeps ORT from oversubscribing the task's cores. */
  public int interOpThreads() {
    return interOpThreads;
  }

  /** The device the session is asked for; the CPU unless set. */
  public Device device() {
    return device;
  }

  /** The options of the execution providers that {@link #device()} uses; none for the CPU. */
  public ExecutionProviderOptions providerOptions() {
    return providerOptions;
  }

  /** What happens when {@link #device()} cannot be used; always cpu for the CPU itself. */
  public DeviceFallback fallback() {
    return fallback;
  }

  /** The same threads on the CPU: what a fallback session is built with. */
  SessionSettings onCpu() {
    return builder().intraOpThreads(intraOpThreads).interOpThreads(interOpThreads).build();
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof SessionSettings)) {
      return false;
    }
    SessionSettings that = (SessionSettings) other;
    return intraOpThreads == that.intraOpThreads
        && interOpThreads == that.interOpThreads
        && device.equals(that.device)
        && providerOptions.equals(that.providerOptions)
        && fallback == that.fallback;
  }

  @Override
  public int hashCode() {
    return Objects.hash(intraOpThreads, interOpThreads, device, providerOptions, fallback);
  }

  /**
   * {@code cpu, intraOpThreads=1, interOpThreads=1}, and for an accelerator also its fallback
   * policy and provider options: {@code cuda:0 (fallback cpu, cuda {gpu_mem_limit=1073741824}),
   * ...}.
   */
  @Override
  public String toString() {
    String threads = "intraOpThreads=" + intraOpThreads + ", interOpThreads=" + interOpThreads;
    if (!device.isAccelerator()) {
      return device + ", " + threads;
    }
    return device + " (fallback " + fallback + ", " + providerOptions + "), " + threads;
  }

  public static final class Builder {
    private int intraOpThreads = 1;
    private int interOpThreads = 1;
    private Device device = Device.cpu();
    private ExecutionProviderOptions providerOptions = ExecutionProviderOptions.none();
    private DeviceFallback fallback =
        DeviceFallback.parse(SchedulingProperties.DEVICE_FALLBACK_DEFAULT);

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

    /** The device to bind the session to, as {@link DeviceResolver} resolves it for a task. */
    public Builder device(Device device) {
      this.device = Objects.requireNonNull(device, "device");
      return this;
    }

    /** Options of the execution providers; those the device does not use are dropped. */
    public Builder providerOptions(ExecutionProviderOptions options) {
      this.providerOptions = Objects.requireNonNull(options, "options");
      return this;
    }

    /** What happens when the device cannot be used (default cpu). */
    public Builder fallback(DeviceFallback fallback) {
      this.fallback = Objects.requireNonNull(fallback, "fallback");
      return this;
    }

    public SessionSettings build() {
      return new SessionSettings(this);
    }
  }
}
