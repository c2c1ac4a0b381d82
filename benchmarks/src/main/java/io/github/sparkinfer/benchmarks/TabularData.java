package io.github.sparkinfer.benchmarks;

import java.util.SplittableRandom;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;

/**
 * The benchmark's input: row {@code id} has 64 features uniform in [-1, 1], a pure function of the
 * id. Spark writes the rows through that function and the raw ONNX Runtime variant fills its
 * buffers from it, so both see the same values without collecting a million rows to the driver.
 */
final class TabularData {
  static final int FEATURES = 64;
  private static final long SEED = 0x5EED_7AB1_E000L;

  private TabularData() {}

  /** Writes row {@code id}'s features into {@code target} from {@code offset}. */
  static void features(long id, float[] target, int offset) {
    // One generator per row: any row is computed alone, in any order, on any executor.
    SplittableRandom random = new SplittableRandom(SEED ^ (id * 0x9E3779B97F4A7C15L));
    for (int i = 0; i < FEATURES; i++) {
      target[offset + i] = (float) random.nextDouble(-1.0, 1.0);
    }
  }

  static float[] features(long id) {
    float[] row = new float[FEATURES];
    features(id, row, 0);
    return row;
  }

  /** {@code rows} rows of (id long, features array&lt;float&gt;) in {@code partitions} partitions. */
  static Dataset<Row> generate(SparkSession spark, long rows, int partitions) {
    UDF1<Long, float[]> generator = TabularData::features;
    return spark
        .range(0, rows, 1, partitions)
        .select(
            functions.col("id"),
            functions
                .udf(generator, DataTypes.createArrayType(DataTypes.FloatType, false))
                .apply(functions.col("id"))
                .as("features"));
  }
}
