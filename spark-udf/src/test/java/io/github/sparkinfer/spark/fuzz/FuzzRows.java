package io.github.sparkinfer.spark.fuzz;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * One row fuzzer value: a dense array for the MLP's input, or an ML vector written as VectorUDT's
 * storage struct (type, size, indices, values), as another tool writing Parquet may write it, with
 * what a correct predict() must give for it.
 */
final class FuzzRows {
  static final int WIDTH = 16;
  private static final int[] BAD_INDICES = {WIDTH, WIDTH + 1, 100, 4096, 500_000_000, Integer.MAX_VALUE, -1, -17, Integer.MIN_VALUE};
  private static final int[] BAD_SIZES = {-1, 0, 1, WIDTH - 1, WIDTH + 1, 1 << 20, Integer.MAX_VALUE, Integer.MIN_VALUE};
  private static final int[] BAD_LENGTHS = {0, 1, WIDTH - 1, WIDTH + 1, 1000};

  /**
   * What predict() must give: the reference, any 4 values (NaN or Inf in), null, a clear error, the
   * reference or a clear error, or any 4 values or a clear error.
   */
  enum Expect { GOOD, LOOSE, NULL_IN, BAD, EITHER, ANY }

  /** A value, what it must give, its reference (for GOOD and EITHER) and how it was made. */
  static final class Value {
    Object value;
    Expect expect;
    float[] reference;
    String description;

    Value(Object value, Expect expect, float[] reference, String description) {
      this.value = value;
      this.expect = expect;
      this.reference = reference;
      this.description = description;
    }
  }

  private FuzzRows() {}

  /** A dense array; {@code hostile}: any kind, else a good one. */
  static Value dense(SplittableRandom random, boolean hostile) {
    float[] values = randomValues(random, WIDTH);
    switch (hostile ? random.nextInt(8) : 0) {
      case 4:
        values[random.nextInt(WIDTH)] = nonFinite(random);
        return new Value(floats(values), Expect.LOOSE, null, "array with NaN/Inf");
      case 5:
        return new Value(null, Expect.NULL_IN, null, "null array");
      case 6: {
        int length = BAD_LENGTHS[random.nextInt(BAD_LENGTHS.length)];
        return new Value(floats(randomValues(random, length)), Expect.BAD, null, "array of " + length);
      }
      case 7: {
        List<Float> list = floats(values);
        list.set(random.nextInt(WIDTH), null);
        return new Value(list, Expect.BAD, null, "array with a null element");
      }
      default:
        return new Value(floats(values), Expect.GOOD, values, "array");
    }
  }

  /** A vector's storage struct; {@code hostile}: any kind, else a good dense or sparse one. */
  static Value vector(SplittableRandom random, boolean hostile) {
    float[] dense = randomValues(random, WIDTH);
    List<Integer> indices = new ArrayList<>();
    List<Double> values = new ArrayList<>();
    for (int i = 0; i < WIDTH; i++) {
      if (random.nextInt(3) == 0 || (i == WIDTH - 1 && indices.isEmpty())) {
        indices.add(i);
        values.add((double) dense[i]);
      } else {
        dense[i] = 0f;
      }
    }
    List<Double> all = new ArrayList<>();
    for (float value : dense) {
      all.add((double) value);
    }
    int at = random.nextInt(indices.size());
    switch (hostile ? random.nextInt(16) : random.nextInt(4)) {
      case 0:
      case 1:
        return new Value(struct((byte) 1, null, null, all), Expect.GOOD, dense, "dense vector");
      case 2:
      case 3:
        return new Value(struct((byte) 0, WIDTH, indices, values), Expect.GOOD, dense, "sparse vector " + indices);
      case 4:
        return new Value(null, Expect.NULL_IN, null, "null vector");
      case 5: {
        int field = random.nextInt(4);
        Object[] fields = {(byte) 0, WIDTH, indices, values};
        fields[field] = null;
        // VectorUDT declares its type field non-null: Spark's projection erases a null there (the
        // slot's value is read), so the row may arrive as a valid sparse vector.
        return new Value(RowFactory.create(fields), field == 0 ? Expect.ANY : Expect.BAD, null,
            "sparse vector with null field " + field);
      }
      case 6:
        return new Value(struct((byte) 1, null, null, null), Expect.BAD, null, "dense vector with null values");
      case 7: {
        if (random.nextBoolean()) {
          indices.set(at, null);
        } else {
          values.set(at, null);
        }
        // VectorUDT declares its arrays' elements non-null, so Spark's projection of the file's struct
        // erases the null (it reads whatever the slot holds): the row reaches predict() with no null
        // left to refuse. It must not crash, and an index it turns into must still be checked.
        return new Value(struct((byte) 0, WIDTH, indices, values), Expect.ANY, null, "sparse vector with a null element");
      }
      case 8: {
        int index = BAD_INDICES[random.nextInt(BAD_INDICES.length)];
        indices.set(indices.size() - 1, index);
        return new Value(struct((byte) 0, WIDTH, indices, values), Expect.BAD, null, "sparse index " + index);
      }
      case 9: {
        if (random.nextBoolean()) {
          values.add(1.0);
        } else {
          indices.add(Math.min(WIDTH - 1, indices.get(indices.size() - 1) + 1));
        }
        return new Value(struct((byte) 0, WIDTH, indices, values), Expect.BAD, null,
            "sparse vector with " + indices.size() + " indices and " + values.size() + " values");
      }
      case 10: {
        List<Integer> reversed = new ArrayList<>(indices);
        java.util.Collections.reverse(reversed);
        List<Double> reversedValues = new ArrayList<>(values);
        java.util.Collections.reverse(reversedValues);
        return new Value(struct((byte) 0, WIDTH, reversed, reversedValues), indices.size() > 1 ? Expect.EITHER : Expect.GOOD,
            dense, "sparse vector, indices unsorted " + reversed);
      }
      case 11: {
        // A duplicate index: Spark's SparseVector.toArray keeps the last value.
        indices.add(indices.get(at));
        values.add(2.5);
        dense[indices.get(at)] = 2.5f;
        return new Value(struct((byte) 0, WIDTH, indices, values), Expect.EITHER, dense, "sparse vector, duplicate index " + indices.get(at));
      }
      case 12: {
        int size = BAD_SIZES[random.nextInt(BAD_SIZES.length)];
        List<Integer> inRange = new ArrayList<>();
        List<Double> kept = new ArrayList<>();
        for (int i = 0; i < indices.size(); i++) {
          if (indices.get(i) < Math.max(size, 0)) {
            inRange.add(indices.get(i));
            kept.add(values.get(i));
          }
        }
        return new Value(struct((byte) 0, size, inRange, kept), Expect.BAD, null, "sparse vector of size " + size);
      }
      case 13: {
        int length = BAD_LENGTHS[random.nextInt(BAD_LENGTHS.length)];
        List<Double> wrong = new ArrayList<>();
        for (float value : randomValues(random, length)) {
          wrong.add((double) value);
        }
        return new Value(struct((byte) 1, null, null, wrong), Expect.BAD, null, "dense vector of " + length);
      }
      case 14: {
        byte type = new byte[] {2, -1, 127}[random.nextInt(3)];
        return new Value(struct(type, WIDTH, null, all), Expect.EITHER, dense, "vector of type " + type);
      }
      default: {
        double bad = nonFinite(random);
        values.set(at, bad);
        return new Value(struct((byte) 0, WIDTH, indices, values), Expect.LOOSE, null, "sparse vector with " + bad);
      }
    }
  }

  private static Row struct(Byte type, Integer size, List<Integer> indices, List<Double> values) {
    return RowFactory.create(type, size, indices, values);
  }

  private static float nonFinite(SplittableRandom random) {
    return new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}[random.nextInt(3)];
  }

  private static float[] randomValues(SplittableRandom random, int length) {
    float[] values = new float[length];
    for (int i = 0; i < length; i++) {
      values[i] = (float) (random.nextDouble() * 2 - 1);
    }
    return values;
  }

  private static List<Float> floats(float[] values) {
    List<Float> list = new ArrayList<>(values.length);
    for (float value : values) {
      list.add(value);
    }
    return list;
  }

  static String show(float[] values) {
    return values == null ? "null" : Arrays.toString(values);
  }
}
