package io.github.sparkinfer.device;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * One model input or output: name, element type and shape. A dimension of -1 is dynamic; its
 * symbolic name (for example "batch_size" or "sequence_length") is kept when the model has one.
 * Immutable.
 */
public final class TensorSpec implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String name;
  private final TensorElementType elementType;
  private final String onnxTypeName;
  private final long[] shape;
  private final String[] dimensionNames;

  public TensorSpec(
      String name,
      TensorElementType elementType,
      String onnxTypeName,
      long[] shape,
      String[] dimensionNames) {
    this.name = Objects.requireNonNull(name, "name");
    this.elementType = Objects.requireNonNull(elementType, "elementType");
    this.onnxTypeName = Objects.requireNonNull(onnxTypeName, "onnxTypeName");
    this.shape = shape.clone();
    this.dimensionNames = new String[shape.length];
    for (int i = 0; i < shape.length; i++) {
      String dimensionName = dimensionNames != null && i < dimensionNames.length ? dimensionNames[i] : null;
      this.dimensionNames[i] = dimensionName == null ? "" : dimensionName;
    }
  }

  public String name() {
    return name;
  }

  public TensorElementType elementType() {
    return elementType;
  }

  /** ONNX Runtime's name for the element type, also for types sparkinfer cannot feed. */
  public String onnxTypeName() {
    return onnxTypeName;
  }

  public int rank() {
    return shape.length;
  }

  public long dimension(int index) {
    return shape[index];
  }

  public long[] shape() {
    return shape.clone();
  }

  /** Symbolic name of a dimension, or "" when it has none. */
  public String dimensionName(int index) {
    return dimensionNames[index];
  }

  /** Shape as people read it, for example [batch_size, 64] or [-1, 16]. */
  public String shapeString() {
    StringBuilder text = new StringBuilder("[");
    for (int i = 0; i < shape.length; i++) {
      if (i > 0) {
        text.append(", ");
      }
      if (shape[i] < 0 && !dimensionNames[i].isEmpty()) {
        text.append(dimensionNames[i]);
      } else {
        text.append(shape[i]);
      }
    }
    return text.append(']').toString();
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof TensorSpec)) {
      return false;
    }
    TensorSpec that = (TensorSpec) other;
    return name.equals(that.name)
        && elementType == that.elementType
        && onnxTypeName.equals(that.onnxTypeName)
        && Arrays.equals(shape, that.shape)
        && Arrays.equals(dimensionNames, that.dimensionNames);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, elementType, Arrays.hashCode(shape));
  }

  @Override
  public String toString() {
    return name + ": " + onnxTypeName + shapeString();
  }
}
