package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.registry.BufferSizes;
import io.github.sparkinfer.spark.registry.InputLayout;
import io.github.sparkinfer.spark.registry.ModelBinding;
import io.github.sparkinfer.spark.registry.VectorLayout;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import io.github.sparkinfer.device.TensorElementType;
import java.nio.ByteBuffer;
import java.util.Map;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.SpecializedGetters;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.unsafe.Platform;

/**
 * One model input's direct buffer for a batch. Rows are written straight from Spark's row format
 * into native memory (one memory copy per array when the element types match, a conversion loop
 * otherwise) and handed to ONNX Runtime as a tensor over that same memory.
 */
final class InputBuffer {
  private final String modelName;
  private final InputLayout layout;
  private final TensorElementType modelType;
  private final int elementSize;
  private final ElementConversion conversion;
  private final int ordinal;
  private final int batchRows;
  private final long maxRowBytes;
  private ByteBuffer buffer;
  private long address;
  private int valuesPerRow;
  // The array column of the columnar batch rows come from, when its elements are copied in bulk.
  private WritableColumnVector column;
  private ColumnVector columnElements;
  // Rows written from the column but not copied yet: a run of consecutive rows whose elements are
  // consecutive in the column, copied at once by flush().
  private int runElement;
  private int runRow;
  private int runRows;

  /** {@code maxBatchBytes}: the batch byte budget, which one row alone must not exceed either. */
  InputBuffer(String modelName, InputLayout layout, int ordinal, int batchSize, long maxBatchBytes) {
    this.modelName = modelName;
    this.maxRowBytes = Math.min(BufferSizes.MAX_BYTES, maxBatchBytes);
    this.layout = layout;
    this.modelType = layout.input().elementType();
    this.elementSize = modelType.byteSize();
    this.conversion = new ElementConversion(layout.sparkElementType(), modelType);
    this.ordinal = ordinal;
    this.valuesPerRow = layout.fixedValuesPerRow();
    this.batchRows = batchSize;
    // Memory follows the rows that arrive, not the batch size: room for a few rows to start with.
    ensureRows(Math.min(batchSize, INITIAL_ROWS));
  }

  /** Rows the buffer holds at first; it doubles as rows arrive, up to the batch size. */
  static final int INITIAL_ROWS = 64;

  /** Bytes of one row in this batch (0 before a dynamic-length batch's first row). */
  long rowBytes() {
    return (long) Math.max(valuesPerRow, 0) * elementSize;
  }

  /** Bytes this buffer holds now. */
  long capacity() {
    return buffer.capacity();
  }

  InputLayout layout() {
    return layout;
  }

  /** Called before the first row of each batch: dynamic lengths are set by that batch's first row. */
  void startBatch() {
    if (layout.fixedValuesPerRow() < 0) {
      valuesPerRow = -1;
    }
  }

  boolean isNull(SpecializedGetters source) {
    return source.isNullAt(ordinal);
  }

  /** Where this input's argument is in the rows (or the struct) it is read from. */
  int ordinal() {
    return ordinal;
  }

  /**
   * The columns of the columnar batch the next rows come from, or null for rows of any other kind.
   * An array argument whose column Spark wrote itself (a vectorized Parquet scan, nested columns
   * included) and whose elements already have the model's type is then copied by runs of rows,
   * not row by row; everything else is read from the row as before.
   */
  void useColumns(ColumnVector[] columns) {
    flush();
    column = null;
    columnElements = null;
    if (columns != null && layout.kind() == InputLayout.Kind.ARRAY && conversion.sameElementType()
        && columns[ordinal] instanceof WritableColumnVector) {
      column = (WritableColumnVector) columns[ordinal];
      columnElements = column.arrayData();
    }
  }

  /**
   * Writes the value of {@code source} as row {@code row} of the batch. {@code columnRow}: the
   * row's index in the batch given to {@link #useColumns}, or -1 for a row of any other kind.
   */
  void write(SpecializedGetters source, int row, int batchSize, int columnRow) {
    switch (layout.kind()) {
      case SCALAR:
        writeScalar(source, row);
        break;
      case ARRAY:
        if (column != null && columnRow >= 0) {
          writeFromColumn(columnRow, row, batchSize);
        } else {
          writeArray(source.getArray(ordinal), row, batchSize);
        }
        break;
      case VECTOR:
        writeVector(source.getStruct(ordinal, VectorLayout.FIELD_COUNT), row, batchSize);
        break;
      default:
        throw new IllegalStateException(layout.kind().toString());
    }
  }

  private void writeScalar(SpecializedGetters source, int row) {
    ensureRows(row + 1);
    conversion.putScalar(source, ordinal, address + (long) row * elementSize);
  }

  private void writeArray(ArrayData array, int row, int batchSize) {
    int length = array.numElements();
    long destination = rowAddress(row, length, batchSize);
    if (VectorRows.hasNullElement(array)) {
      throw nullElement(row);
    }
    if (array instanceof UnsafeArrayData) {
      UnsafeArrayData unsafe = (UnsafeArrayData) array;
      if (conversion.sameElementType()) {
        long headerBytes = UnsafeArrayData.calculateHeaderPortionInBytes(length);
        Platform.copyMemory(
            unsafe.getBaseObject(), unsafe.getBaseOffset() + headerBytes, null, destination,
            (long) length * elementSize);
        return;
      }
    }
    conversion.copyConverted(array, length, destination);
  }

  /**
   * Row {@code columnRow} of the column as row {@code row}: checked as the row path checks it (the
   * same errors, in the same order), its elements copied later with the run it extends.
   */
  private void writeFromColumn(int columnRow, int row, int batchSize) {
    int length = column.getArrayLength(columnRow);
    int first = column.getArrayOffset(columnRow);
    rowAddress(row, length, batchSize);
    if (columnElements.hasNull()) {
      for (int i = first; i < first + length; i++) {
        if (columnElements.isNullAt(i)) {
          throw nullElement(row);
        }
      }
    }
    if (runRows > 0 && row == runRow + runRows && first == runElement + runRows * length) {
      runRows++;
    } else {
      flush();
      runElement = first;
      runRow = row;
      runRows = 1;
    }
  }

  /** Forgets row {@code row} if it ends the run not copied yet: a row rejected by another input. */
  void dropRow(int row) {
    if (runRows > 0 && runRow + runRows - 1 == row) {
      runRows--;
    }
  }

  /** Copies the rows written from a column and not copied yet; called before the buffer is read. */
  void flush() {
    if (runRows == 0) {
      return;
    }
    long destination = address + (long) runRow * valuesPerRow * elementSize;
    long count = (long) runRows * valuesPerRow;
    runRows = 0;
    if (columnElements instanceof OffHeapColumnVector && !((OffHeapColumnVector) columnElements).hasDictionary()) {
      Platform.copyMemory(null, ((OffHeapColumnVector) columnElements).valuesNativeAddress()
          + (long) runElement * elementSize, null, destination, count * elementSize);
      return;
    }
    // On-heap or dictionary-encoded: Spark's bulk getter, in pieces so that no large array is made.
    for (long done = 0; done < count; done += COPY_CHUNK) {
      int piece = (int) Math.min(COPY_CHUNK, count - done);
      int from = (int) (runElement + done);
      long target = destination + done * elementSize;
      switch (modelType) {
        case FLOAT:
          Platform.copyMemory(columnElements.getFloats(from, piece), Platform.FLOAT_ARRAY_OFFSET, null, target,
              (long) piece * elementSize);
          break;
        case DOUBLE:
          Platform.copyMemory(columnElements.getDoubles(from, piece), Platform.DOUBLE_ARRAY_OFFSET, null, target,
              (long) piece * elementSize);
          break;
        case INT32:
          Platform.copyMemory(columnElements.getInts(from, piece), Platform.INT_ARRAY_OFFSET, null, target,
              (long) piece * elementSize);
          break;
        default:
          Platform.copyMemory(columnElements.getLongs(from, piece), Platform.LONG_ARRAY_OFFSET, null, target,
              (long) piece * elementSize);
      }
    }
  }

  /** Elements per bulk read from an on-heap column: 256 KiB of floats. */
  private static final int COPY_CHUNK = 1 << 16;

  private void writeVector(InternalRow vector, int row, int batchSize) {
    // Everything an index or a size decides is checked before the first write.
    String problem = VectorRows.problem(vector, layout.fixedValuesPerRow() > 0 ? layout.fixedValuesPerRow() : valuesPerRow);
    if (problem != null) {
      throw new PredictionException("Cannot run model '" + modelName + "': the vector for input '"
          + layout.input().name() + "' (" + describeArgument() + ", width " + expectedWidth() + ") cannot be fed: "
          + problem + ". Fix or filter out such rows; a null vector gives a null result");
    }
    ArrayData values = vector.getArray(VectorLayout.VALUES_FIELD);
    if (vector.getByte(VectorLayout.TYPE_FIELD) == VectorLayout.SPARSE) {
      int size = vector.getInt(VectorLayout.SIZE_FIELD);
      long destination = rowAddress(row, size, batchSize);
      Platform.setMemory(destination, (byte) 0, (long) size * elementSize);
      ArrayData indices = vector.getArray(VectorLayout.INDICES_FIELD);
      for (int i = 0; i < values.numElements(); i++) {
        conversion.putVectorValue(values.getDouble(i), destination + (long) indices.getInt(i) * elementSize);
      }
    } else {
      int size = values.numElements();
      long destination = rowAddress(row, size, batchSize);
      if (conversion.sameElementType() && values instanceof UnsafeArrayData) {
        UnsafeArrayData unsafe = (UnsafeArrayData) values;
        Platform.copyMemory(
            unsafe.getBaseObject(),
            unsafe.getBaseOffset() + UnsafeArrayData.calculateHeaderPortionInBytes(size),
            null, destination, (long) size * elementSize);
      } else {
        conversion.copyVectorValues(values, size, destination);
      }
    }
  }

  private String describeArgument() {
    return layout.structFieldOrdinal() >= 0 ? "struct field " + (layout.structFieldOrdinal() + 1)
        : "argument " + (layout.argumentOrdinal() + 1);
  }

  private String expectedWidth() {
    return layout.fixedValuesPerRow() >= 0 ? Integer.toString(layout.fixedValuesPerRow())
        : valuesPerRow >= 0 ? valuesPerRow + ", this batch's" : "dynamic";
  }

  /** Checks the row's length against the input and returns where the row's values go. */
  private long rowAddress(int row, int length, int batchSize) {
    if ((long) length * elementSize > maxRowBytes) {
      // A dynamic width is set by the row itself: one row must fit a buffer, and the batch budget
      // the application set (a batch never holds more, not even for one row), before it sets it.
      boolean budget = maxRowBytes < BufferSizes.MAX_BYTES;
      throw new PredictionException("Cannot run model '" + modelName + "': a row of input '" + layout.input().name()
          + "' has " + length + " values, " + (long) length * elementSize + " bytes, more than "
          + (budget ? "a whole batch may hold (spark.sparkinfer.maxBatchBytes=" + maxRowBytes + " bytes)"
              : "one tensor buffer can hold (" + BufferSizes.MAX_BYTES + " bytes)")
          + ". Fix or filter out such rows" + (budget ? ", or raise spark.sparkinfer.maxBatchBytes in the application's"
              + " configuration" : ""));
    }
    if (valuesPerRow < 0) {
      // Dynamic length: the batch's first row sets it.
      valuesPerRow = length;
    } else if (length != valuesPerRow) {
      throw wrongLength(length);
    }
    ensureRows(row + 1);
    return address + (long) row * valuesPerRow * elementSize;
  }


  /** Shape of this batch's tensor: [rows, ...] with the dynamic dimension filled in. */
  long[] shape(int rows) {
    long[] shape = layout.input().shape();
    shape[0] = rows;
    if (layout.kind() == InputLayout.Kind.SCALAR) {
      if (shape.length == 2) {
        shape[1] = 1;
      }
    } else if (layout.fixedValuesPerRow() < 0) {
      shape[1] = Math.max(valuesPerRow, 0);
    }
    return shape;
  }

  /** Records this batch's sizes of symbolic dimensions, so output shapes can be known in advance. */
  void recordDimensions(int rows, Map<String, Long> dimensions) {
    long[] shape = shape(rows);
    for (int i = 0; i < shape.length; i++) {
      String name = layout.input().dimensionName(i);
      if (!name.isEmpty()) {
        dimensions.put(name, shape[i]);
      }
    }
  }

  /**
   * A tensor over this buffer's first rows, no copy. The caller (the task thread that runs the
   * batch) owns it and closes it after the run, before the buffer is written again.
   */
  OnnxTensor tensor(OrtEnvironment environment, int rows) throws OrtException {
    long[] shape = shape(rows);
    long elements = 1;
    for (long dimension : shape) {
      elements *= dimension;
    }
    return OnnxTensor.createTensor(
        environment, DirectBuffers.prefix(buffer, elements * elementSize), shape,
        ElementConversion.javaType(modelType));
  }

  /**
   * A tensor of {@code tensorRows} rows holding a copy of rows [from, from + rows) of this batch,
   * zeros after them: a part of a failed batch, run again on its own. The caller closes it.
   */
  OnnxTensor tensor(OrtEnvironment environment, int from, int rows, int tensorRows) throws OrtException {
    long rowBytes = (long) Math.max(valuesPerRow, 1) * elementSize;
    ByteBuffer part = DirectBuffers.allocate(tensorRows * rowBytes);
    long partAddress = DirectBuffers.address(part);
    Platform.copyMemory(null, address + from * rowBytes, null, partAddress, rows * rowBytes);
    Platform.setMemory(partAddress + rows * rowBytes, (byte) 0, (tensorRows - rows) * rowBytes);
    return OnnxTensor.createTensor(
        environment, DirectBuffers.prefix(part, tensorRows * rowBytes), shape(tensorRows),
        ElementConversion.javaType(modelType));
  }

  /** Fills rows [from, to) with zeros: padding for models with a fixed batch size. */
  void zeroRows(int from, int to) {
    ensureRows(to);
    int perRow = Math.max(valuesPerRow, 1);
    Platform.setMemory(address + (long) from * perRow * elementSize, (byte) 0,
        (long) (to - from) * perRow * elementSize);
  }

  /** Room for {@code rows} rows, growing by doubling and keeping the rows written so far. */
  private void ensureRows(int rows) {
    long needed = (long) rows * Math.max(valuesPerRow, 1) * elementSize;
    if (buffer != null && buffer.capacity() >= needed) {
      return;
    }
    long rowBytes = (long) Math.max(valuesPerRow, 1) * elementSize;
    long grown = buffer == null ? needed : Math.max(needed, Math.min(2L * buffer.capacity(), batchRows * rowBytes));
    ByteBuffer larger = DirectBuffers.allocate(grown);
    if (buffer != null) {
      Platform.copyMemory(null, address, null, DirectBuffers.address(larger), buffer.capacity());
    }
    buffer = larger;
    address = DirectBuffers.address(buffer);
  }

  private PredictionException wrongLength(int length) {
    String expected = layout.fixedValuesPerRow() > 0
        ? layout.fixedValuesPerRow() + " values per row (" + ModelBinding.expectation(layout.input()) + ")"
        : valuesPerRow + " values per row, the length of the first row of this batch (input shape "
            + layout.input().shapeString() + " has a dynamic length that must be equal within a batch)";
    String fix = layout.fixedValuesPerRow() > 0
        ? "Fix the column so that every array or vector has " + layout.fixedValuesPerRow() + " values,"
            + " or filter out the rows that do not"
        : "Pad the arrays to one length, or set spark.sparkinfer.model." + modelName + ".batchSize=1";
    return new PredictionException(
        "Cannot run model '" + modelName + "': input '" + layout.input().name() + "' expects "
            + expected + ", but a row has " + length + " values. " + fix);
  }

  private PredictionException nullElement(int row) {
    return new PredictionException(
        "Cannot run model '" + modelName + "': the array for input '" + layout.input().name()
            + "' contains a null element, which a tensor cannot hold. Replace nulls first (for"
            + " example transform(col, x -> coalesce(x, 0))) or filter those rows out; a null array"
            + " itself gives a null result");
  }
}
