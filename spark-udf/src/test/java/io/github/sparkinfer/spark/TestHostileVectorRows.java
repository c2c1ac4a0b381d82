package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.ml.linalg.VectorUDT;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Spark ML vectors as another tool may write them to Parquet (VectorUDT's struct, with nothing
 * checked): sparse indices far outside the vector, more values than indices, negative or unsorted
 * indices, a size that is not the input's width, null arrays. Each is that row's error (the query
 * fails naming the model, the input, the row, the index and the width; onError=null gives the row
 * a null result and its reason), never a write outside the batch's buffer: the JVM survives and
 * the good rows of the same batches match a direct ONNX Runtime run.
 */
class TestHostileVectorRows {
  private static final int WIDTH = 64;
  private static final int GOOD_ROWS = 40;

  @TempDir static Path folder;
  private static SparkSession spark;
  private static Path model;
  private static float[][] features;
  /** The bad rows by id, with a part of the reason each must give. */
  private static final Map<Long, String> BAD = new TreeMap<>();

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    model = folder.resolve("mlp64.onnx");
    MultilayerPerceptronModel.builder().layerSizes(WIDTH, 32, 4).seed(11).inputName("features")
        .outputName("scores").build().writeTo(model);
    features = TestModels.randomRows(GOOD_ROWS, WIDTH, 3);

    StructType vectorStruct = new StructType()
        .add("type", DataTypes.ByteType, false)
        .add("size", DataTypes.IntegerType, true)
        .add("indices", DataTypes.createArrayType(DataTypes.IntegerType, false), true)
        .add("values", DataTypes.createArrayType(DataTypes.DoubleType, false), true);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < GOOD_ROWS; i++) {
      rows.add(RowFactory.create((long) i, i % 2 == 0 ? dense(features[i]) : sparse(features[i])));
    }
    // The rows of the issue: index 500,000,000 in a vector of the input's width.
    bad(rows, 100, sparseRow(WIDTH, new int[] {3, 500_000_000}, new double[] {1, 2}), "index 500000000");
    bad(rows, 101, sparseRow(WIDTH, new int[] {500_000_000}, new double[] {1}), "index 500000000");
    bad(rows, 102, sparseRow(WIDTH, new int[] {1, 2}, new double[] {1, 2, 3}), "2 indices and 3 values");
    bad(rows, 103, sparseRow(WIDTH, new int[] {-5}, new double[] {1}), "index -5");
    bad(rows, 104, sparseRow(WIDTH, new int[] {4, 2}, new double[] {1, 2}), "strictly increasing");
    bad(rows, 105, sparseRow(WIDTH, new int[] {64}, new double[] {1}), "index 64");
    bad(rows, 106, sparseRow(500_000_000, new int[] {499_999_999}, new double[] {1}), "500000000");
    bad(rows, 107, sparseRow(-3, new int[] {}, new double[] {}), "size -3");
    bad(rows, 108, RowFactory.create((byte) 0, WIDTH, null, new double[] {1}), "null");
    bad(rows, 109, RowFactory.create((byte) 1, null, null, null), "null");
    bad(rows, 110, RowFactory.create((byte) 7, WIDTH, null, new double[WIDTH]), "type 7");
    bad(rows, 111, sparseRow(WIDTH, new int[] {1, 2, 3}, new double[] {1}), "3 indices and 1 values");
    StructType schema = new StructType().add("id", DataTypes.LongType, false).add("v", vectorStruct, true);
    // Shuffled into one partition so bad rows share batches with good ones.
    List<Row> ordered = new ArrayList<>(rows);
    java.util.Collections.shuffle(ordered, new java.util.Random(5));
    Path parquet = folder.resolve("vectors.parquet");
    spark.createDataFrame(ordered, schema).coalesce(1).write().parquet(parquet.toString());
    // Read back as ML vectors, as a job reading another tool's files declares them.
    StructType asVectors = new StructType().add("id", DataTypes.LongType, false).add("v", new VectorUDT(), true);
    spark.read().schema(asVectors).parquet(parquet.toString()).createOrReplaceTempView("hostile_vectors");
    spark.conf().set("spark.sparkinfer.model.mlp64.path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.mlp64.batchSize", "16");
  }

  @AfterAll
  static void tearDown() {
    spark.catalog().dropTempView("hostile_vectors");
    SparkInference.unregister(spark, "mlp64");
  }

  @AfterEach
  void resetPolicy() {
    SparkTestSessions.reset("spark.sparkinfer.model.mlp64.onError");
  }

  @Test
  void aSparseIndexOutsideTheVectorFailsTheQueryNamingModelInputRowIndexAndWidth() {
    assertThatThrownBy(() -> spark.sql("SELECT id, predict('mlp64', v) FROM hostile_vectors WHERE id = 100").collect())
        .hasMessageContaining("model 'mlp64'")
        .hasMessageContaining("input 'features'")
        .hasMessageContaining("index 500000000")
        .hasMessageContaining("width 64")
        .hasMessageContaining("(row 0 of partition 0)")
        .hasMessageContaining("onError=null");
    // The JVM is alive and the model still serves.
    assertThat(spark.sql("SELECT predict('mlp64', v) FROM hostile_vectors WHERE id = 0").collectAsList()).hasSize(1);
  }

  @Test
  void everyKindOfBadVectorIsItsRowsErrorAndTheOtherRowsAreExact() throws Exception {
    spark.conf().set("spark.sparkinfer.model.mlp64.onError", "null");
    List<Row> rows = spark.sql(
        "SELECT id, p.result, p.error FROM (SELECT id, predict_with_error('mlp64', v) AS p FROM hostile_vectors)")
        .collectAsList();
    assertThat(rows).hasSize(GOOD_ROWS + BAD.size());
    float[][] reference = TestModels.runFloatModel(model, "features", features);
    for (Row row : rows) {
      long id = row.getLong(0);
      if (BAD.containsKey(id)) {
        assertThat(row.isNullAt(1)).as("result of bad row %d", id).isTrue();
        assertThat(row.getString(2)).as("reason of bad row %d", id)
            .contains("model 'mlp64'").contains("input 'features'").contains(BAD.get(id));
      } else {
        assertThat(row.isNullAt(2)).as("reason of good row %d: %s", id, row.get(2)).isTrue();
        List<Float> scores = row.getList(1);
        for (int k = 0; k < reference[(int) id].length; k++) {
          assertThat(scores.get(k)).as("score %d of row %d", k, id).isCloseTo(reference[(int) id][k], within(1e-5f));
        }
      }
    }
  }

  private static void bad(List<Row> rows, long id, Row vector, String reason) {
    rows.add(RowFactory.create(id, vector));
    BAD.put(id, reason);
  }

  private static Row dense(float[] values) {
    double[] doubles = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      doubles[i] = values[i];
    }
    return RowFactory.create((byte) 1, null, null, doubles);
  }

  /** A valid sparse vector of the row: every other value kept, the rest zero in the reference. */
  private static Row sparse(float[] values) {
    List<Integer> indices = new ArrayList<>();
    for (int i = 0; i < values.length; i++) {
      if (i % 3 == 0) {
        values[i] = 0f;
      } else {
        indices.add(i);
      }
    }
    int[] kept = indices.stream().mapToInt(Integer::intValue).toArray();
    double[] doubles = Arrays.stream(kept).mapToDouble(i -> values[i]).toArray();
    return sparseRow(values.length, kept, doubles);
  }

  private static Row sparseRow(int size, int[] indices, double[] values) {
    return RowFactory.create((byte) 0, size, indices, values);
  }
}
