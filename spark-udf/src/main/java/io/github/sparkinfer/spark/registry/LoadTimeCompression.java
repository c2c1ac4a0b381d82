package io.github.sparkinfer.spark.registry;

import java.io.Serializable;

/**
 * What each executor does to a model's file before loading it: structured pruning at a ratio
 * (spark.sparkinfer.model.&lt;name&gt;.pruneRatio), then compression to a precision with int8's weight
 * scheme. Immutable.
 */
final class LoadTimeCompression implements Serializable {
  private static final long serialVersionUID = 1L;

  static final LoadTimeCompression NONE = new LoadTimeCompression("fp32", "auto", 0);

  final String precision;
  final String int8Scheme;
  final double pruneRatio;

  LoadTimeCompression(String precision, String int8Scheme, double pruneRatio) {
    this.precision = precision;
    this.int8Scheme = int8Scheme;
    this.pruneRatio = pruneRatio;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof LoadTimeCompression that && precision.equals(that.precision)
        && int8Scheme.equals(that.int8Scheme) && pruneRatio == that.pruneRatio;
  }

  @Override
  public int hashCode() {
    return java.util.Objects.hash(precision, int8Scheme, pruneRatio);
  }
}
