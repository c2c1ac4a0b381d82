package io.github.sparkinfer.spark.batch;

import java.util.Iterator;
import java.util.NoSuchElementException;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;

/**
 * Runs one model over one partition of rows, a batch at a time: it holds up to batchSize rows
 * (only the columns used above the node), writes their arguments into the model's direct input
 * buffers as they arrive, runs the model once, then emits each held row joined with its own result.
 */
public final class BatchPredictionRunner implements Iterator<InternalRow> {
  private final ModelCall call;
  private final Iterator<InternalRow> input;
  private final UnsafeProjection argumentProjection;
  private final UnsafeProjection holdProjection;
  private final UnsafeProjection outputProjection;
  private final PredictionMetrics metrics;
  // Grown as rows arrive, up to the batch size: memory follows the data.
  private InternalRow[] rows;
  private int[] positions;
  private final JoinedRow joined = new JoinedRow();
  private int filled;
  private int cursor;

  /**
   * @param argumentProjection computes the arguments when they are not plain columns, else null
   * @param holdProjection keeps only the columns used above the node, or null to keep all
   */
  public BatchPredictionRunner(
      ModelCall call,
      UnsafeProjection argumentProjection,
      UnsafeProjection holdProjection,
      UnsafeProjection outputProjection,
      PredictionMetrics metrics,
      Iterator<InternalRow> input) {
    this.call = call;
    this.input = input;
    this.argumentProjection = argumentProjection;
    this.holdProjection = holdProjection;
    this.outputProjection = outputProjection;
    this.metrics = metrics;
    this.rows = new InternalRow[Math.min(call.batchSize(), InputBuffer.INITIAL_ROWS)];
    this.positions = new int[rows.length];
  }

  @Override
  public boolean hasNext() {
    if (cursor < filled) {
      return true;
    }
    fillBatch();
    return filled > 0;
  }

  @Override
  public InternalRow next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    InternalRow row = rows[cursor];
    InternalRow result = call.result(positions[cursor]);
    cursor++;
    return outputProjection.apply(joined.apply(row, result));
  }

  private void fillBatch() {
    filled = 0;
    cursor = 0;
    call.clear();
    while (filled < call.batchSize() && !call.full() && input.hasNext()) {
      if (filled == rows.length) {
        int grown = (int) Math.min(call.batchSize(), 2L * rows.length);
        rows = java.util.Arrays.copyOf(rows, grown);
        positions = java.util.Arrays.copyOf(positions, grown);
      }
      InternalRow row = input.next();
      positions[filled] = call.add(argumentProjection == null ? row : argumentProjection.apply(row));
      rows[filled] = HeldRows.hold(holdProjection == null ? row : holdProjection.apply(row), rows[filled]);
      filled++;
    }
    call.run();
    metrics.outputRows.add(filled);
  }

}
