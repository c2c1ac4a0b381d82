package io.github.sparkinfer.spark.batch;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.unsafe.Platform;

/** Keeping rows past their iterator while a batch runs, reusing each slot's memory. */
public final class HeldRows {
  private HeldRows() {}

  /**
   * A copy of {@code row} that stays valid after the child's iterator moves on; reuses the byte
   * array of {@code slot} (the row held in this place before) when it is big enough.
   */
  public static InternalRow hold(InternalRow row, InternalRow slot) {
    if (!(row instanceof UnsafeRow)) {
      return row.copy();
    }
    UnsafeRow source = (UnsafeRow) row;
    int size = source.getSizeInBytes();
    UnsafeRow target = slot instanceof UnsafeRow && ((UnsafeRow) slot).numFields() == source.numFields()
        ? (UnsafeRow) slot
        : new UnsafeRow(source.numFields());
    byte[] bytes = target.getBaseObject() instanceof byte[] ? (byte[]) target.getBaseObject() : null;
    if (bytes == null || bytes.length < size) {
      bytes = new byte[Math.max(size, 8)];
    }
    Platform.copyMemory(source.getBaseObject(), source.getBaseOffset(), bytes, Platform.BYTE_ARRAY_OFFSET, size);
    target.pointTo(bytes, size);
    return target;
  }
}
