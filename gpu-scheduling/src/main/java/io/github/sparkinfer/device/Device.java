package io.github.sparkinfer.device;

import java.io.Serializable;
import java.util.Locale;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * Where a model runs: the CPU, a CUDA device (an NVIDIA GPU) or an Ascend NPU, written {@code cpu},
 * {@code cuda:0}, {@code npu:1}. The index is the device's ordinal as its runtime counts them in
 * this process (CUDA's device ordinal, CANN's logical device id), which is also what the discovery
 * scripts print as Spark resource addresses. Immutable.
 */
public final class Device implements Serializable {
  private static final long serialVersionUID = 1L;

  private static final Device CPU = new Device(Type.CPU, -1);

  /** The kinds of device sparkinfer binds sessions to. */
  public enum Type {
    CPU("cpu"),
    CUDA("cuda"),
    NPU("npu");

    private final String prefix;

    Type(String prefix) {
      this.prefix = prefix;
    }

    /** How the type is written in device names and settings: cpu, cuda or npu. */
    public String prefix() {
      return prefix;
    }
  }

  private final Type type;
  // -1 for the CPU, which has no index.
  private final int index;

  private Device(Type type, int index) {
    this.type = type;
    this.index = index;
  }

  public static Device cpu() {
    return CPU;
  }

  public static Device cuda(int index) {
    return new Device(Type.CUDA, checkIndex(index, Type.CUDA));
  }

  public static Device npu(int index) {
    return new Device(Type.NPU, checkIndex(index, Type.NPU));
  }

  /**
   * Reads {@code cpu}, {@code cuda:<index>} or {@code npu:<index>}, as {@link #toString()} writes
   * them; case and surrounding spaces do not matter.
   *
   * @throws IllegalArgumentException naming the text and the accepted forms
   */
  public static Device parse(String text) {
    Objects.requireNonNull(text, "text");
    String normalized = text.trim().toLowerCase(Locale.ROOT);
    if (normalized.equals(Type.CPU.prefix)) {
      return CPU;
    }
    int colon = normalized.indexOf(':');
    if (colon > 0) {
      String prefix = normalized.substring(0, colon);
      String digits = normalized.substring(colon + 1);
      for (Type type : new Type[] {Type.CUDA, Type.NPU}) {
        if (type.prefix.equals(prefix) && isIndex(digits)) {
          return new Device(type, Integer.parseInt(digits));
        }
      }
    }
    throw new IllegalArgumentException(
        "Invalid device '"
            + text
            + "': expected cpu, cuda:<index> or npu:<index>, with the index a non-negative"
            + " integer, such as cuda:0");
  }

  public Type type() {
    return type;
  }

  /** The device's ordinal; empty for the CPU. */
  public OptionalInt index() {
    return type == Type.CPU ? OptionalInt.empty() : OptionalInt.of(index);
  }

  /** Whether this is a GPU or NPU, a device whose sessions need their own execution provider. */
  public boolean isAccelerator() {
    return type != Type.CPU;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Device
        && ((Device) other).type == type
        && ((Device) other).index == index;
  }

  @Override
  public int hashCode() {
    return Objects.hash(type, index);
  }

  /** {@code cpu}, {@code cuda:0}, {@code npu:1}: the form {@link #parse} reads. */
  @Override
  public String toString() {
    return type == Type.CPU ? type.prefix : type.prefix + ":" + index;
  }

  // One CPU instance, so that deserialized CPUs are the same object as cpu().
  private Object readResolve() {
    return type == Type.CPU ? CPU : this;
  }

  private static boolean isIndex(String digits) {
    // At most 9 digits so that Integer.parseInt cannot overflow; no device count comes close.
    if (digits.isEmpty() || digits.length() > 9) {
      return false;
    }
    for (int i = 0; i < digits.length(); i++) {
      if (digits.charAt(i) < '0' || digits.charAt(i) > '9') {
        return false;
      }
    }
    return true;
  }

  private static int checkIndex(int index, Type type) {
    if (index < 0) {
      throw new IllegalArgumentException(
          "Invalid " + type.prefix + " device index " + index + ": must be 0 or more");
    }
    return index;
  }
}
