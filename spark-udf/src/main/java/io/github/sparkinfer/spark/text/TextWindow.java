package io.github.sparkinfer.spark.text;

import java.util.concurrent.Future;
import org.apache.spark.sql.catalyst.InternalRow;

/** One window of rows, with its texts and, once run, its vectors in row order. */
final class TextWindow {
  final InternalRow[] rows;
  final String[] texts;
  int count;
  Future<long[][]> tokens;
  float[] vectors = new float[0];
  int dimension;
  boolean[] isNull;
  // The reason a row got no vector (onError=null), else null; and the first row's index in the partition.
  final String[] errors;
  long firstRow;

  TextWindow(int capacity) {
    rows = new InternalRow[capacity];
    texts = new String[capacity];
    isNull = new boolean[capacity];
    errors = new String[capacity];
  }
}
