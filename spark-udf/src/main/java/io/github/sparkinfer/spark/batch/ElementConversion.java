package io.github.sparkinfer.spark.batch;

import ai.onnxruntime.OnnxJavaType;
import io.github.sparkinfer.device.TensorElementType;
import org.apache.spark.sql.catalyst.expressions.SpecializedGetters;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.unsafe.Platform;

/**
 * Writes Spark values of one numeric element type as elements of a model input's type into native
 * memory: the conversion loop {@link InputBuffer} uses when the two types differ (when they match,
 * it copies the memory as it is).
 */
final class ElementConversion {
  private static final int BYTE = 0;
  private static final int SHORT = 1;
  private static final int INT = 2;
  private static final int LONG = 3;
  private static final int FLOAT = 4;
  private static final int DOUBLE = 5;

  private final TensorElementType modelType;
  private final int sparkElementCode;
  private final boolean sameElementType;

  ElementConversion(DataType sparkElementType, TensorElementType modelType) {
    this.modelType = modelType;
    this.sparkElementCode = code(sparkElementType);
    this.sameElementType = matches(sparkElementCode, modelType);
  }

  /** Whether Spark's elements already have the model's type and layout: a memory copy feeds them. */
  boolean sameElementType() {
    return sameElementType;
  }

  /** Writes the value at {@code ordinal} of {@code source} as one element at {@code destination}. */
  void putScalar(SpecializedGetters source, int ordinal, long destination) {
    if (modelType == TensorElementType.FLOAT || modelType == TensorElementType.DOUBLE) {
      putFloating(destination, readDouble(source, sparkElementCode, ordinal));
    } else {
      putIntegral(destination, readLong(source, sparkElementCode, ordinal));
    }
  }

  /** Writes one value of an ML vector (a double) as one element at {@code destination}. */
  void putVectorValue(double value, long destination) {
    if (modelType == TensorElementType.FLOAT || modelType == TensorElementType.DOUBLE) {
      putFloating(destination, value);
    } else {
      putIntegral(destination, (long) value);
    }
  }

  /** Converts the first {@code length} elements of an array of the column's element type. */
  void copyConverted(ArrayData array, int length, long destination) {
    copyConverted(array, sparkElementCode, length, destination);
  }

  /** Converts the first {@code length} values of an ML vector's values (doubles). */
  void copyVectorValues(ArrayData values, int length, long destination) {
    copyConverted(values, DOUBLE, length, destination);
  }

  private void copyConverted(ArrayData array, int fromCode, int length, long destination) {
    if (modelType == TensorElementType.FLOAT) {
      for (int i = 0; i < length; i++) {
        Platform.putFloat(null, destination + 4L * i, (float) readDouble(array, fromCode, i));
      }
    } else if (modelType == TensorElementType.DOUBLE) {
      for (int i = 0; i < length; i++) {
        Platform.putDouble(null, destination + 8L * i, readDouble(array, fromCode, i));
      }
    } else if (modelType == TensorElementType.INT64) {
      for (int i = 0; i < length; i++) {
        Platform.putLong(null, destination + 8L * i, readLong(array, fromCode, i));
      }
    } else {
      for (int i = 0; i < length; i++) {
        Platform.putInt(null, destination + 4L * i, (int) readLong(array, fromCode, i));
      }
    }
  }

  private void putFloating(long destination, double value) {
    if (modelType == TensorElementType.FLOAT) {
      Platform.putFloat(null, destination, (float) value);
    } else {
      Platform.putDouble(null, destination, value);
    }
  }

  private void putIntegral(long destination, long value) {
    if (modelType == TensorElementType.INT64) {
      Platform.putLong(null, destination, value);
    } else {
      Platform.putInt(null, destination, (int) value);
    }
  }

  private static double readDouble(SpecializedGetters source, int code, int index) {
    switch (code) {
      case BYTE:
        return source.getByte(index);
      case SHORT:
        return source.getShort(index);
      case INT:
        return source.getInt(index);
      case LONG:
        return source.getLong(index);
      case FLOAT:
        return source.getFloat(index);
      default:
        return source.getDouble(index);
    }
  }

  private static long readLong(SpecializedGetters source, int code, int index) {
    switch (code) {
      case BYTE:
        return source.getByte(index);
      case SHORT:
        return source.getShort(index);
      case INT:
        return source.getInt(index);
      default:
        return source.getLong(index);
    }
  }

  /** The model's element type as ONNX Runtime's Java type, for a tensor over a direct buffer. */
  static OnnxJavaType javaType(TensorElementType type) {
    switch (type) {
      case FLOAT:
        return OnnxJavaType.FLOAT;
      case DOUBLE:
        return OnnxJavaType.DOUBLE;
      case INT32:
        return OnnxJavaType.INT32;
      case INT64:
        return OnnxJavaType.INT64;
      default:
        throw new IllegalArgumentException("Unsupported tensor element type " + type);
    }
  }

  private static int code(DataType type) {
    if (type instanceof ByteType) {
      return BYTE;
    } else if (type instanceof ShortType) {
      return SHORT;
    } else if (type instanceof IntegerType) {
      return INT;
    } else if (type instanceof LongType) {
      return LONG;
    } else if (type instanceof FloatType) {
      return FLOAT;
    } else if (type instanceof DoubleType) {
      return DOUBLE;
    }
    throw new IllegalArgumentException("Not a numeric type: " + type);
  }

  private static boolean matches(int sparkCode, TensorElementType modelType) {
    return (sparkCode == FLOAT && modelType == TensorElementType.FLOAT)
        || (sparkCode == DOUBLE && modelType == TensorElementType.DOUBLE)
        || (sparkCode == INT && modelType == TensorElementType.INT32)
        || (sparkCode == LONG && modelType == TensorElementType.INT64);
  }
}
