package io.github.sparkinfer.compression;

import java.util.Objects;

/**
 * One dimension of a declared tensor shape: a fixed size, a symbolic name such as {@code "batch"}
 * (equal names mean equal sizes at run time), or unknown.
 */
public final class Dimension {
  private static final Dimension UNKNOWN = new Dimension(-1, null);

  private final long size;
  private final String symbol;

  private Dimension(long size, String symbol) {
    this.size = size;
    this.symbol = symbol;
  }

  public static Dimension fixed(long size) {
    if (size < 0) {
      throw new IllegalArgumentException("Dimension size must be >= 0: " + size);
    }
    return new Dimension(size, null);
  }

  public static Dimension symbolic(String symbol) {
    Objects.requireNonNull(symbol, "symbol");
    if (symbol.isEmpty()) {
      throw new IllegalArgumentException("Dimension symbol must not be empty");
    }
    return new Dimension(-1, symbol);
  }

  public static Dimension unknown() {
    return UNKNOWN;
  }

  /**
   * A dimension from a builder argument: an {@link Integer} or {@link Long} size, a {@link String}
   * symbol, or a {@link Dimension}.
   */
  static Dimension from(Object dimension) {
    if (dimension instanceof Dimension) {
      return (Dimension) dimension;
    } else if (dimension instanceof Integer || dimension instanceof Long) {
      return fixed(((Number) dimension).longValue());
    } else if (dimension instanceof String) {
      return symbolic((String) dimension);
    }
    throw new IllegalArgumentException(
        "A dimension is an Integer or Long size, a String symbol or a Dimension, not: "
            + (dimension == null ? "null" : dimension.getClass().getName()));
  }

  public boolean isFixed() {
    return symbol == null && size >= 0;
  }

  public boolean isSymbolic() {
    return symbol != null;
  }

  /** The fixed size; only for {@link #isFixed()} dimensions. */
  public long size() {
    if (!isFixed()) {
      throw new IllegalStateException("Not a fixed dimension: " + this);
    }
    return size;
  }

  /** The symbolic name; only for {@link #isSymbolic()} dimensions. */
  public String symbol() {
    if (!isSymbolic()) {
      throw new IllegalStateException("Not a symbolic dimension: " + this);
    }
    return symbol;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Dimension
        && ((Dimension) other).size == size
        && Objects.equals(((Dimension) other).symbol, symbol);
  }

  @Override
  public int hashCode() {
    return Objects.hash(size, symbol);
  }

  @Override
  public String toString() {
    if (isSymbolic()) {
      return symbol;
    }
    return isFixed() ? Long.toString(size) : "?";
  }
}
