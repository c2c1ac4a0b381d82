package io.github.sparkinfer.spark.batch;

import java.util.Iterator;
import java.util.NoSuchElementException;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * Runs one model over one partition of columnar batches (a vectorized Parquet or ORC scan, say).
 * A columnar batch stays valid until the next one is asked for, so its rows need no copy: the
 * arguments are read from the column vectors into the model's buffers, the model runs, and the
 * output rows are projected from the same batch.
 */
public final class ColumnarPredictionRunner implements Iterator<InternalRow> {
  private final ModelCall call;
  private final Iterator<ColumnarBatch> input;
  private final UnsafeProjection outputProjection;
  private final PredictionMetrics metrics;
  private int[] positions;
  private final JoinedRow joined = new JoinedRow();
  private ColumnarBatch batch;
  private int batchRows;
  private int start;
  private int end;
  private int cursor;

  public ColumnarPredictionRunner(
      ModelCall call,
      UnsafeProjection outputProjection,
      PredictionMetrics metrics,
      Iterator<ColumnarBatch> input) {
    this.call = call;
    this.input = input;
    this.outputProjection = outputProjection;
    this.metrics = metrics;
    this.positions = new int[Math.min(call.batchSize(), InputBuffer.INITIAL_ROWS)];
  }

  @Override
  public boolean hasNext() {
    while (cursor >= end) {
      if (batch != null && end < batchRows) {
        runSlice(end);
      } else if (input.hasNext()) {
        batch = input.next();
        batchRows = batch.numRows();
        call.useColumns(batch);
        end = 0;
        cursor = 0;
        if (batchRows > 0) {
          runSlice(0);
        }
      } else {
        return false;
      }
    }
    return true;
  }

  @Override
  public InternalRow next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    InternalRow result = call.result(positions[cursor - start]);
    InternalRow row = batch.getRow(cursor);
    cursor++;
    return outputProjection.apply(joined.apply(row, result));
  }

  /** Runs the model over the batch's rows from {@code from}, at most one model batch of them. */
  private void runSlice(int from) {
    start = from;
    cursor = from;
    call.clear();
    int row = start;
    int limit = (int) Math.min(batchRows, (long) from + call.batchSize());
    while (row < limit && !call.full()) {
      if (row - start == positions.length) {
        positions = java.util.Arrays.copyOf(positions, (int) Math.min(call.batchSize(), 2L * positions.length));
      }
      positions[row - start] = call.add(batch.getRow(row), row);
      row++;
    }
    end = row;
    call.run();
    metrics.outputRows.add(end - start);
  }
}
