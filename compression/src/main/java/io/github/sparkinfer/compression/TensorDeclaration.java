package io.github.sparkinfer.compression;

import java.util.List;
import java.util.Objects;

/** A graph input or output as a model declares it: name, element type and dimensions. */
public final class TensorDeclaration {
  private final String name;
  private final OnnxElementType elementType;
  private final List<Dimension> dimensions;
  private final boolean shapeKnown;

  TensorDeclaration(
      String name, OnnxElementType elementType, List<Dimension> dimensions, boolean shapeKnown) {
    this.name = Objects.requireNonNull(name, "name");
    this.elementType = Objects.requireNonNull(elementType, "elementType");
    this.dimensions = List.copyOf(dimensions);
    this.shapeKnown = shapeKnown;
    if (!shapeKnown && !dimensions.isEmpty()) {
      throw new IllegalArgumentException("A tensor of unknown rank has no dimensions: " + name);
    }
  }

  public String name() {
    return name;
  }

  public OnnxElementType elementType() {
    return elementType;
  }

  /** The dimensions, outermost first; empty for a scalar and when the rank is unknown. */
  public List<Dimension> dimensions() {
    return dimensions;
  }

  /** False when the model declares no shape at all, so that even the rank is unknown. */
  public boolean isShapeKnown() {
    return shapeKnown;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof TensorDeclaration)) {
      return false;
    }
    TensorDeclaration that = (TensorDeclaration) other;
    return name.equals(that.name)
        && elementType == that.elementType
        && dimensions.equals(that.dimensions)
        && shapeKnown == that.shapeKnown;
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, elementType, dimensions, shapeKnown);
  }

  /** For example {@code features: FLOAT[batch, 64]}. */
  @Override
  public String toString() {
    return name + ": " + elementType + (shapeKnown ? dimensions.toString() : "[unknown rank]");
  }
}
