package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.registry.ModelBinding;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.SpecificInternalRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * The one-field row every model function gives per input row, joined to the row's kept columns:
 * the value, or null; under a _with_error function, struct&lt;result, error&gt; with the row's reason.
 * The one builder of result and error rows. Reused from row to row: read it before the next.
 */
public final class ResultRow {
  private final SpecificInternalRow row;
  /** struct<result, error> when the call reports errors; null otherwise. */
  private final SpecificInternalRow reported;

  /** {@code valueType}: the function's value (predict: the outputs' type; embed: array&lt;float&gt;). */
  public ResultRow(ModelBinding binding, DataType valueType) {
    DataType resultType = binding.resultType(valueType);
    this.row = new SpecificInternalRow(new StructType().add("result", resultType));
    this.reported = binding.reportsErrors() ? new SpecificInternalRow((StructType) resultType) : null;
  }

  /** Where the value goes: write field 0, then take {@link #withValue()}. */
  public SpecificInternalRow valueSlot() {
    return reported != null ? reported : row;
  }

  /** The row with the value written into {@link #valueSlot()}. */
  public InternalRow withValue() {
    if (reported != null) {
      reported.setNullAt(1);
      row.update(0, reported);
    }
    return row;
  }

  /**
   * The row with the value written into {@link #valueSlot()} and, when the call reports errors, the
   * reason beside it (generate()'s rows that fail keep a value whose finish_reason is error).
   */
  public InternalRow withValue(String error) {
    if (reported != null && error != null) {
      reported.update(1, UTF8String.fromString(error));
      row.update(0, reported);
      return row;
    }
    return withValue();
  }

  /** The row with a null value: a null argument ({@code error} null) or a row the model could not take. */
  public InternalRow withoutValue(String error) {
    valueSlot().setNullAt(0);
    if (reported != null) {
      if (error == null) {
        reported.setNullAt(1);
      } else {
        reported.update(1, UTF8String.fromString(error));
      }
      row.update(0, reported);
    }
    return row;
  }
}
