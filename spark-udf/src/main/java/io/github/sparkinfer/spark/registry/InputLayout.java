package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;
import java.io.Serializable;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;

/**
 * How one model input is fed from one Spark value: a numeric scalar (one value per row), a numeric
 * array (a fixed number of values per row, reshaped to the input's shape, or a dynamic length for
 * inputs of shape [batch, n]), or a Spark ML vector.
 */
public final class InputLayout implements Serializable {
  private static final long serialVersionUID = 1L;

  public enum Kind {
    SCALAR,
    ARRAY,
    VECTOR
  }

  private final TensorSpec input;
  private final Kind kind;
  private final DataType sparkElementType;
  private final int fixedValuesPerRow;
  private final int argumentOrdinal;
  private final int structFieldOrdinal;

  private InputLayout(
      TensorSpec input,
      Kind kind,
      DataType sparkElementType,
      int fixedValuesPerRow,
      int argumentOrdinal,
      int structFieldOrdinal) {
    this.input = input;
    this.kind = kind;
    this.sparkElementType = sparkElementType;
    this.fixedValuesPerRow = fixedValuesPerRow;
    this.argumentOrdinal = argumentOrdinal;
    this.structFieldOrdinal = structFieldOrdinal;
  }

  static InputLayout bind(
      ModelBinding model, TensorSpec input, DataType argumentType, int argument, int structField) {
    if (input.elementType() == TensorElementType.UNSUPPORTED) {
      throw failure(model, input, argumentType,
          "sparkinfer feeds only float, double, int32 and int64 inputs");
    }
    if (input.rank() < 1) {
      throw failure(model, input, argumentType,
          "the input has no batch dimension, so rows cannot be batched");
    }
    Kind kind;
    DataType elementType;
    if (VectorLayout.isVector(argumentType)) {
      kind = Kind.VECTOR;
      elementType = DataTypes.DoubleType;
    } else if (argumentType instanceof ArrayType) {
      kind = Kind.ARRAY;
      elementType = ((ArrayType) argumentType).elementType();
      if (elementType instanceof ArrayType) {
        throw failure(model, input, argumentType,
            "nested arrays are not fed yet; pass one flat array per row (flatten(...)) with the"
                + " values in row-major order");
      }
    } else {
      kind = Kind.SCALAR;
      elementType = argumentType;
    }
    if (!isNumeric(elementType)) {
      throw failure(model, input, argumentType, "the column is not numeric");
    }
    if (!convertible(elementType, input.elementType())) {
      throw failure(model, input, argumentType,
          elementType.simpleString() + " values cannot be converted to "
              + input.onnxTypeName().toLowerCase() + " without losing information; cast the column");
    }
    int valuesPerRow;
    if (kind == Kind.SCALAR) {
      boolean fits =
          input.rank() == 1 || (input.rank() == 2 && (input.dimension(1) == 1 || input.dimension(1) < 0));
      if (!fits) {
        throw failure(model, input, argumentType,
            "a scalar column gives one value per row, but the input takes "
                + describeRowShape(input) + " per row; pass an array or vector column");
      }
      valuesPerRow = 1;
    } else {
      if (input.rank() < 2) {
        throw failure(model, input, argumentType,
            "the input takes one value per row; pass a numeric scalar column");
      }
      valuesPerRow = fixedValuesPerRow(input);
      if (valuesPerRow < 0 && input.rank() != 2) {
        throw failure(model, input, argumentType,
            "inputs with several dynamic dimensions cannot be fed from a flat array");
      }
    }
    return new InputLayout(input, kind, elementType, valuesPerRow, argument, structField);
  }

  /** The most values one row of a tensor may have: a row of 8-byte values fits one buffer. */
  static final long MAX_VALUES_PER_ROW = Integer.MAX_VALUE / 8;

  /** Product of the non-batch dimensions, or -1 when one of them is dynamic. */
  public static int fixedValuesPerRow(TensorSpec input) {
    long[] perRow = new long[Math.max(input.rank() - 1, 0)];
    for (int dimension = 1; dimension < input.rank(); dimension++) {
      if (input.dimension(dimension) < 0) {
        return -1;
      }
      perRow[dimension - 1] = input.dimension(dimension);
    }
    // In long and saturating: dimensions a model file declares can make any product wrap around.
    long product = BufferSizes.product(perRow);
    if (product > MAX_VALUES_PER_ROW) {
      throw new ModelBindingException("Tensor '" + input.name() + "' " + input.shapeString() + " is too large per row: "
          + (product == Long.MAX_VALUE ? "more than 2^63" : Long.toString(product)) + " values, more than a batch"
          + " buffer can hold (" + MAX_VALUES_PER_ROW + " values of up to 8 bytes)");
    }
    return (int) product;
  }

  private static String describeRowShape(TensorSpec input) {
    int values = fixedValuesPerRow(input);
    return values < 0 ? "a variable number of values" : values + " values";
  }

  private static ModelBindingException failure(
      ModelBinding model, TensorSpec input, DataType argumentType, String why) {
    return new ModelBindingException(
        "Cannot feed column of type " + argumentType.simpleString() + " to model '" + model.modelName()
            + "' input '" + input.name() + "', which expects a " + ModelBinding.expectation(input)
            + " (first dimension: the batch): " + why + ". Model inputs: " + model.describeInputs());
  }

  static boolean isNumeric(DataType type) {
    return type instanceof ByteType
        || type instanceof ShortType
        || type instanceof IntegerType
        || type instanceof LongType
        || type instanceof FloatType
        || type instanceof DoubleType;
  }

  /** Floating inputs take any number; integer inputs take only integers that fit. */
  static boolean convertible(DataType from, TensorElementType to) {
    switch (to) {
      case FLOAT:
      case DOUBLE:
        return true;
      case INT64:
        return from instanceof ByteType || from instanceof ShortType || from instanceof IntegerType
            || from instanceof LongType;
      case INT32:
        return from instanceof ByteType || from instanceof ShortType || from instanceof IntegerType;
      default:
        return false;
    }
  }

  public TensorSpec input() {
    return input;
  }

  public Kind kind() {
    return kind;
  }

  public DataType sparkElementType() {
    return sparkElementType;
  }

  /** Values per row, or -1 for a dynamic length fixed per batch by its first row. */
  public int fixedValuesPerRow() {
    return fixedValuesPerRow;
  }

  public int argumentOrdinal() {
    return argumentOrdinal;
  }

  /** Field of the struct argument, or -1 when the argument itself is the value. */
  public int structFieldOrdinal() {
    return structFieldOrdinal;
  }
}
