package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.registry.BufferSizes;
import io.github.sparkinfer.spark.registry.InputLayout;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.TensorInfo;
import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;
import java.nio.ByteBuffer;
import java.util.Map;
import org.apache.spark.sql.catalyst.expressions.SpecificInternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.unsafe.Platform;
import org.apache.spark.unsafe.array.ByteArrayMethods;

/**
 * One model output's direct buffer for a batch. When the output's shape is known before the run
 * (fixed dimensions, or symbolic ones that an input names), ONNX Runtime writes into this buffer
 * as a pinned output; otherwise the run's own tensor is copied in once. Rows are then read straight
 * from native memory into Spark's array format, one memory copy per row.
 */
final class OutputBuffer {
  private final String modelName;
  private final TensorSpec output;
  private final TensorElementType type;
  private final int elementSize;
  private ByteBuffer buffer;
  private long address;
  private long[] shape;
  private int valuesPerRow;
  private byte[] arrayBytes = new byte[0];
  private final UnsafeArrayData arrayView = new UnsafeArrayData();

  OutputBuffer(String modelName, TensorSpec output, int batchSize) {
    this.modelName = modelName;
    this.output = output;
    this.type = output.elementType();
    this.elementSize = type.byteSize();
    // Allocated for the rows of the first batch that runs: memory follows the data.
    ensureCapacity(8);
    int fixed = InputLayout.fixedValuesPerRow(output);
    this.valuesPerRow = Math.max(fixed, 0);
  }

  /** Bytes of one row's output, as the last batch had it (0 before the first; fixed shapes: known). */
  long rowBytes() {
    return (long) valuesPerRow * elementSize;
  }

  /** Bytes this buffer holds now. */
  long capacity() {
    return buffer.capacity();
  }

  String name() {
    return output.name();
  }

  /** Where the batch's values are: row after row, {@link #valuesPerRow()} values each. */
  long address() {
    return address;
  }

  /** Values per row of the batch that ran last. */
  int valuesPerRow() {
    return valuesPerRow;
  }

  /** Bytes per value. */
  int elementSize() {
    return elementSize;
  }

  /** Rank of the output, the batch dimension included: 1 a scalar per row, 2 an array, 3 arrays of arrays. */
  int rank() {
    return output.rank();
  }

  /** Length of dimension {@code dimension} in the batch that ran last. */
  int dimension(int dimension) {
    return (int) shape[dimension];
  }

  /**
   * Works out the output's shape for a batch of {@code rows}; returns false when a dimension is
   * only known after the run.
   */
  boolean prepare(int rows, Map<String, Long> inputDimensions) {
    long[] expected = output.shape();
    expected[0] = rows;
    for (int i = 1; i < expected.length; i++) {
      if (expected[i] < 0) {
        Long size = inputDimensions.get(output.dimensionName(i));
        if (output.dimensionName(i).isEmpty() || size == null) {
          shape = null;
          return false;
        }
        expected[i] = size;
      }
    }
    setShape(expected);
    return true;
  }

  /**
   * A tensor over this buffer that the run writes its output into, no copy. The caller (the task
   * thread that runs the batch) owns it and closes it after the run.
   */
  OnnxTensor pinnedTensor(OrtEnvironment environment) throws OrtException {
    long bytes = (long) shape[0] * valuesPerRow * elementSize;
    return OnnxTensor.createTensor(
        environment, DirectBuffers.prefix(buffer, bytes), shape.clone(), ElementConversion.javaType(type));
  }

  /**
   * Copies the first {@code rows} rows of an output that ONNX Runtime allocated itself (for a
   * tensor of {@code tensorRows} rows) into this buffer, from row {@code offset} on.
   */
  void collect(OnnxValue value, int tensorRows, int rows, int offset) {
    long[] expected = new long[output.rank()];
    java.util.Arrays.fill(expected, -1);
    expected[0] = tensorRows;
    OnnxTensor tensor = OutputShapes.check(modelName, output, value, expected, ElementConversion.javaType(type),
        "a batch of " + tensorRows + " rows");
    long[] actual = ((TensorInfo) tensor.getInfo()).getShape();
    if (offset > 0 && shape != null && valuesPerRow != valuesPerRow(actual)) {
      throw new PredictionException(
          "Model '" + modelName + "' output '" + output.name() + "' has shape " + java.util.Arrays.toString(actual)
              + " for a part of a batch whose other rows had " + valuesPerRow + " values each");
    }
    setShape(actual);
    ByteBuffer data = tensor.getByteBuffer();
    long rowBytes = (long) valuesPerRow * elementSize;
    if (data.remaining() != tensorRows * rowBytes) {
      throw new PredictionException(
          "Model '" + modelName + "' output '" + output.name() + "' returned " + data.remaining()
              + " bytes for shape " + java.util.Arrays.toString(actual) + ", expected " + tensorRows * rowBytes);
    }
    ensureCapacity((offset + rows) * rowBytes);
    data.limit((int) (rows * rowBytes));
    DirectBuffers.slice(buffer, offset * rowBytes, rows * rowBytes).put(data);
  }

  private static long valuesPerRow(long[] shape) {
    return BufferSizes.product(java.util.Arrays.copyOfRange(shape, 1, shape.length));
  }

  private void setShape(long[] newShape) {
    long perRow = valuesPerRow(newShape);
    if (perRow > Integer.MAX_VALUE / 8) {
      throw new PredictionException(
          "Model '" + modelName + "' output '" + output.name() + "' is too large per row: "
              + java.util.Arrays.toString(newShape));
    }
    this.shape = newShape;
    this.valuesPerRow = (int) perRow;
    ensureCapacity((long) newShape[0] * valuesPerRow * elementSize);
  }

  /** Writes row {@code row}'s value into field {@code field} of {@code target}. */
  void read(int row, SpecificInternalRow target, int field) {
    long source = address + (long) row * valuesPerRow * elementSize;
    switch (shape.length) {
      case 1:
        readScalar(source, target, field);
        break;
      case 2:
        target.update(field, readArray(source, valuesPerRow));
        break;
      default:
        target.update(field, readNestedArray(source, (int) shape[1], (int) shape[2]));
    }
  }

  private void readScalar(long source, SpecificInternalRow target, int field) {
    switch (type) {
      case FLOAT:
        target.setFloat(field, Platform.getFloat(null, source));
        break;
      case DOUBLE:
        target.setDouble(field, Platform.getDouble(null, source));
        break;
      case INT32:
        target.setInt(field, Platform.getInt(null, source));
        break;
      default:
        target.setLong(field, Platform.getLong(null, source));
    }
  }

  /** One UnsafeArrayData over a reused byte array: header (length, no null bits set), then values. */
  private UnsafeArrayData readArray(long source, int length) {
    int size = arrayBytes(length);
    ensureArrayBytes(size);
    writeArray(source, length, 0);
    arrayView.pointTo(arrayBytes, Platform.BYTE_ARRAY_OFFSET, size);
    return arrayView;
  }

  /** array&lt;array&lt;T&gt;&gt;: outer header, one offset-and-size word per inner array, inner arrays. */
  private UnsafeArrayData readNestedArray(long source, int outerLength, int innerLength) {
    int outerHeader = UnsafeArrayData.calculateHeaderPortionInBytes(outerLength);
    int innerSize = arrayBytes(innerLength);
    long longSize = outerHeader + 8L * outerLength + (long) outerLength * innerSize;
    if (longSize > BufferSizes.MAX_BYTES) {
      throw new PredictionException("Model '" + modelName + "' output '" + output.name() + "' gives each row "
          + outerLength + " arrays of " + innerLength + " values, " + longSize + " bytes, more than one Spark value can"
          + " hold (" + BufferSizes.MAX_BYTES + " bytes)");
    }
    int size = (int) longSize;
    ensureArrayBytes(size);
    java.util.Arrays.fill(arrayBytes, 0, outerHeader, (byte) 0);
    Platform.putLong(arrayBytes, Platform.BYTE_ARRAY_OFFSET, outerLength);
    int offset = outerHeader + 8 * outerLength;
    for (int i = 0; i < outerLength; i++) {
      Platform.putLong(arrayBytes, Platform.BYTE_ARRAY_OFFSET + outerHeader + 8L * i,
          ((long) offset << 32) | innerSize);
      writeArray(source + (long) i * innerLength * elementSize, innerLength, offset);
      offset += innerSize;
    }
    arrayView.pointTo(arrayBytes, Platform.BYTE_ARRAY_OFFSET, size);
    return arrayView;
  }

  private int arrayBytes(int length) {
    return UnsafeArrayData.calculateHeaderPortionInBytes(length)
        + ByteArrayMethods.roundNumberOfBytesToNearestWord(length * elementSize);
  }

  private void writeArray(long source, int length, int offset) {
    int header = UnsafeArrayData.calculateHeaderPortionInBytes(length);
    int valueBytes = length * elementSize;
    // Only the null bits and the word padding need zeros; the values are overwritten.
    java.util.Arrays.fill(arrayBytes, offset, offset + header, (byte) 0);
    java.util.Arrays.fill(arrayBytes, offset + header + valueBytes, offset + arrayBytes(length), (byte) 0);
    Platform.putLong(arrayBytes, Platform.BYTE_ARRAY_OFFSET + offset, length);
    Platform.copyMemory(null, source, arrayBytes, Platform.BYTE_ARRAY_OFFSET + offset + header,
        (long) length * elementSize);
  }

  private void ensureArrayBytes(int size) {
    if (arrayBytes.length < size) {
      arrayBytes = new byte[size];
    }
  }

  /** Grows the buffer, keeping what it holds: parts of a batch run again are collected one by one. */
  private void ensureCapacity(long bytes) {
    if (buffer == null || buffer.capacity() < bytes) {
      ByteBuffer grown = DirectBuffers.allocate(bytes);
      if (buffer != null) {
        Platform.copyMemory(null, address, null, DirectBuffers.address(grown), buffer.capacity());
      }
      buffer = grown;
      address = DirectBuffers.address(buffer);
    }
  }
}
