package io.github.sparkinfer.spark.batch;

import java.util.Iterator;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * Runs one model over one partition of columnar batches and gives columnar batches: each child
 * batch's kept column vectors as they are (no copy) beside the result column, filled in bulk from
 * the model's output buffers ({@link ResultColumns}). A child batch of more rows than a model batch
 * takes runs as several model batches, in row order, into the one result column; a model batch
 * never spans two child batches, since a scan reuses its vectors for the next one.
 *
 * <p>Row errors, null arguments and the retry are {@link ModelCall}'s, as on the row path: the
 * same rows, in the same order, reach the same {@link ModelCall#add}.
 */
public final class ColumnarOutputRunner implements Iterator<ColumnarBatch> {
  private final ModelCall call;
  private final Iterator<ColumnarBatch> input;
  private final int[] keptOrdinals;
  private final ResultColumns results;
  private final PredictionMetrics metrics;
  private int[] positions;

  /**
   * @param keptOrdinals the child's columns the output keeps, in output order (the result follows)
   * @param results the result column; the caller closes it when the task completes
   */
  public ColumnarOutputRunner(
      ModelCall call,
      int[] keptOrdinals,
      ResultColumns results,
      PredictionMetrics metrics,
      Iterator<ColumnarBatch> input) {
    this.call = call;
    this.input = input;
    this.keptOrdinals = keptOrdinals;
    this.results = results;
    this.metrics = metrics;
    this.positions = new int[Math.min(call.batchSize(), InputBuffer.INITIAL_ROWS)];
  }

  @Override
  public boolean hasNext() {
    return input.hasNext();
  }

  @Override
  public ColumnarBatch next() {
    ColumnarBatch batch = input.next();
    int batchRows = batch.numRows();
    results.startBatch();
    call.useColumns(batch);
    int row = 0;
    while (row < batchRows) {
      int start = row;
      call.clear();
      int limit = (int) Math.min(batchRows, (long) start + call.batchSize());
      while (row < limit && !call.full()) {
        if (row - start == positions.length) {
          positions = java.util.Arrays.copyOf(positions, (int) Math.min(call.batchSize(), 2L * positions.length));
        }
        positions[row - start] = call.add(batch.getRow(row), row);
        row++;
      }
      call.run();
      results.append(call, positions, row - start);
      metrics.outputRows.add(row - start);
    }
    call.useColumns(null);
    ColumnVector[] columns = new ColumnVector[keptOrdinals.length + 1];
    for (int i = 0; i < keptOrdinals.length; i++) {
      columns[i] = batch.column(keptOrdinals[i]);
    }
    columns[keptOrdinals.length] = results.column();
    return new ColumnarBatch(columns, batchRows);
  }
}
