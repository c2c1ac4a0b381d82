package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.registry.ModelBinding;
import java.nio.charset.StandardCharsets;
import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.unsafe.Platform;

/**
 * predict()'s result column of one columnar batch, filled from the model's output buffers in bulk:
 * one memory copy per output and model batch into the column's values, then each row's null bit
 * or array offset. The same values as {@link ModelCall#result}: a null argument or a row the model
 * could not take gives a null value, and under predict_with_error the struct&lt;result, error&gt;
 * with the row's reason.
 *
 * <p>The vectors are off-heap, so that the copy goes from native memory to native memory; they
 * are reused from batch to batch (a batch's consumer reads it before asking for the next, as with
 * a scan's batches) and freed by {@link #close}, which the task calls when it completes.
 */
public final class ResultColumns implements AutoCloseable {
  private final OffHeapColumnVector column;
  /** The value: the column itself, or its field 0 under predict_with_error. */
  private final WritableColumnVector value;
  /** The error field under predict_with_error, else null. */
  private final WritableColumnVector errors;
  /** One per output: the value itself (one output) or its fields (several). */
  private final WritableColumnVector[] outputColumns;
  /** Per output: elements used so far in its array levels (0: outer arrays' elements, 1: inner). */
  private final int[][] used;
  /** Per row of the last append: whether it has a value. */
  private boolean[] valued = new boolean[0];
  private int rows;

  public ResultColumns(ModelBinding binding, int capacity) {
    DataType type = binding.resultType();
    if (!supports(type)) {
      throw new IllegalArgumentException("No columnar result for type " + type.simpleString());
    }
    this.column = new OffHeapColumnVector(Math.max(capacity, 1), type);
    this.value = binding.reportsErrors() ? column.getChild(0) : column;
    this.errors = binding.reportsErrors() ? column.getChild(1) : null;
    int outputs = binding.selectedOutputs().size();
    this.outputColumns = new WritableColumnVector[outputs];
    for (int i = 0; i < outputs; i++) {
      outputColumns[i] = outputs == 1 ? value : value.getChild(i);
    }
    this.used = new int[outputs][2];
  }

  /**
   * Whether a result of this type can be written as columns: a number, an array of numbers or an
   * array of such arrays (outputs of rank 1 to 3), a struct of those (several outputs), each alone
   * or in struct&lt;result, error: string&gt;. Every type predict() gives today is one.
   */
  public static boolean supports(DataType type) {
    if (type instanceof StructType) {
      StructField[] fields = ((StructType) type).fields();
      if (fields.length == 2 && fields[0].name().equals(ModelBinding.RESULT_FIELD)
          && fields[1].dataType() instanceof StringType) {
        return supportsValue(fields[0].dataType());
      }
    }
    return supportsValue(type);
  }

  private static boolean supportsValue(DataType type) {
    if (type instanceof StructType) {
      for (StructField field : ((StructType) type).fields()) {
        if (!supportsOutput(field.dataType(), 0)) {
          return false;
        }
      }
      return true;
    }
    return supportsOutput(type, 0);
  }

  private static boolean supportsOutput(DataType type, int depth) {
    if (type instanceof ArrayType) {
      return depth < 2 && supportsOutput(((ArrayType) type).elementType(), depth + 1);
    }
    return type instanceof FloatType || type instanceof DoubleType || type instanceof IntegerType
        || type instanceof LongType;
  }

  /** The column: read the batch it is in before the next {@link #startBatch}. */
  public ColumnVector column() {
    return column;
  }

  /** Starts the results of the next columnar batch. */
  void startBatch() {
    column.reset();
    rows = 0;
    for (int[] levels : used) {
      levels[0] = 0;
      levels[1] = 0;
    }
  }

  /**
   * Appends the results of {@code count} rows, the rows of the model batch that ran last, whose
   * places in that batch are {@code positions} as {@link ModelCall#add} gave them.
   */
  void append(ModelCall call, int[] positions, int count) {
    int first = rows;
    column.reserve(first + count);
    if (value != column) {
      value.reserve(first + count);
      errors.reserve(first + count);
    }
    // Positions of rows with a value rise in row order; the last one bounds what was written.
    int lastValued = -1;
    boolean allValued = true;
    if (valued.length < count) {
      valued = new boolean[Math.max(count, 2 * valued.length)];
    }
    for (int i = 0; i < count; i++) {
      int position = positions[i];
      String error = call.error(position);
      valued[i] = position >= 0 && error == null;
      if (valued[i]) {
        lastValued = position;
      } else {
        allValued = false;
        value.putNull(first + i);
      }
      if (errors != null) {
        if (error == null) {
          errors.putNull(first + i);
        } else {
          errors.putByteArray(first + i, error.getBytes(StandardCharsets.UTF_8));
        }
      }
    }
    if (lastValued >= 0) {
      OutputBuffer[] outputs = call.outputs();
      for (int o = 0; o < outputs.length; o++) {
        writeOutput(outputs[o], outputColumns[o], used[o], positions, count, first, lastValued + 1, allValued);
      }
    }
    rows = first + count;
  }

  /** One output's values for rows [first, first + count): {@code written} model rows in bulk. */
  private void writeOutput(OutputBuffer output, WritableColumnVector target, int[] used, int[] positions,
      int count, int first, int written, boolean allValued) {
    target.reserve(first + count);
    int size = output.elementSize();
    switch (output.rank()) {
      case 1:
        if (allValued && positions[count - 1] - positions[0] == count - 1) {
          copy(output.address() + (long) positions[0] * size, target, first, (long) count * size, size);
        } else {
          for (int i = 0; i < count; i++) {
            if (valued[i]) {
              copy(output.address() + (long) positions[i] * size, target, first + i, size, size);
            }
          }
        }
        break;
      case 2: {
        int length = output.dimension(1);
        int base = used[0];
        int elements = elements(output, written, length);
        WritableColumnVector data = target.arrayData();
        data.reserve(base + elements);
        copy(output.address(), data, base, (long) elements * size, size);
        putArrays(target, positions, count, first, base, length);
        used[0] = base + elements;
        break;
      }
      default: {
        int outer = output.dimension(1);
        int inner = output.dimension(2);
        int base = used[0];
        int innerBase = used[1];
        int arrays = elements(output, written, outer);
        int elements = elements(output, arrays, inner);
        WritableColumnVector middle = target.arrayData();
        WritableColumnVector data = middle.arrayData();
        middle.reserve(base + arrays);
        data.reserve(innerBase + elements);
        copy(output.address(), data, innerBase, (long) elements * size, size);
        for (int j = 0; j < arrays; j++) {
          middle.putArray(base + j, innerBase + j * inner, inner);
        }
        putArrays(target, positions, count, first, base, outer);
        used[0] = base + arrays;
        used[1] = innerBase + elements;
      }
    }
  }

  /** Each row with a value points at its {@code length} elements, from {@code base} on. */
  private void putArrays(WritableColumnVector target, int[] positions, int count, int first, int base,
      int length) {
    for (int i = 0; i < count; i++) {
      if (valued[i]) {
        target.putArray(first + i, base + positions[i] * length, length);
      }
    }
  }

  /** {@code rows * length}, which one column vector must be able to index. */
  private static int elements(OutputBuffer output, long rows, long length) {
    long elements = rows * length;
    if (elements > Integer.MAX_VALUE / 8) {
      throw new PredictionException("Model output '" + output.name() + "' gives " + elements + " values for "
          + rows + " rows of one columnar batch, more than a column vector can hold. Set"
          + " spark.sparkinfer.columnarOutput=false to build the results row by row, or lower the batch size");
    }
    return (int) elements;
  }

  /** Copies {@code bytes} from native memory to element {@code element} of an off-heap vector. */
  private static void copy(long source, WritableColumnVector target, int element, long bytes, int size) {
    Platform.copyMemory(null, source, null,
        ((OffHeapColumnVector) target).valuesNativeAddress() + (long) element * size, bytes);
  }

  @Override
  public void close() {
    column.close();
  }
}
