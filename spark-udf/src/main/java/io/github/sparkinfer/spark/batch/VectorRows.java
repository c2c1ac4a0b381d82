package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.registry.VectorLayout;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.unsafe.Platform;

/**
 * Checks of one Spark ML vector row before any of it reaches native memory. VectorUDT's struct
 * comes from files other tools wrote (Parquet, Delta), where nothing holds SparseVector's own
 * invariants: an index is an offset into the tensor buffer, so each one is checked against the
 * size, and the size against the input's width, before the first write.
 */
final class VectorRows {
  static final byte DENSE = 1;

  private VectorRows() {}

  /**
   * Why a vector row cannot be written, or null when it can. {@code width}: the values per row the
   * batch takes, or -1 while a dynamic width is not set yet.
   */
  static String problem(InternalRow vector, int width) {
    if (vector.isNullAt(VectorLayout.TYPE_FIELD)) {
      return "its type field is null (VectorUDT: 0 for sparse, 1 for dense)";
    }
    byte type = vector.getByte(VectorLayout.TYPE_FIELD);
    if (type != VectorLayout.SPARSE && type != DENSE) {
      return "it has type " + type + " (VectorUDT: 0 for sparse, 1 for dense)";
    }
    if (vector.isNullAt(VectorLayout.VALUES_FIELD)) {
      return "its values array is null";
    }
    ArrayData values = vector.getArray(VectorLayout.VALUES_FIELD);
    if (hasNullElement(values)) {
      return "its values array holds a null";
    }
    if (type == DENSE) {
      return null;  // its length is checked as an array's
    }
    if (vector.isNullAt(VectorLayout.SIZE_FIELD) || vector.isNullAt(VectorLayout.INDICES_FIELD)) {
      return "it is sparse with a null size or indices array";
    }
    int size = vector.getInt(VectorLayout.SIZE_FIELD);
    if (size < 0) {
      return "it is sparse with size " + size;
    }
    if (width >= 0 && size != width) {
      return null;  // the length check names the width
    }
    ArrayData indices = vector.getArray(VectorLayout.INDICES_FIELD);
    int count = indices.numElements();
    if (count != values.numElements()) {
      return "it is sparse with " + count + " indices and " + values.numElements() + " values (one value per index)";
    }
    if (hasNullElement(indices)) {
      return "its indices array holds a null";
    }
    int previous = -1;
    for (int i = 0; i < count; i++) {
      int index = indices.getInt(i);
      if (index < 0 || index >= size) {
        return "it is sparse with index " + index + " (position " + i + " of its indices), outside its size and"
            + " the input's width " + size + ": indices must be from 0 to " + (size - 1);
      }
      if (index <= previous) {
        return "it is sparse with index " + index + " after index " + previous + " (position " + i
            + "): indices must be strictly increasing";
      }
      previous = index;
    }
    return null;
  }

  static boolean hasNullElement(ArrayData array) {
    int length = array.numElements();
    if (array instanceof UnsafeArrayData) {
      // Null bits are whole words after the 8-byte length: test them at once.
      UnsafeArrayData unsafe = (UnsafeArrayData) array;
      int words = (length + 63) / 64;
      for (int word = 0; word < words; word++) {
        if (Platform.getLong(unsafe.getBaseObject(), unsafe.getBaseOffset() + 8 + 8L * word) != 0) {
          return true;
        }
      }
      return false;
    }
    for (int i = 0; i < length; i++) {
      if (array.isNullAt(i)) {
        return true;
      }
    }
    return false;
  }
}
