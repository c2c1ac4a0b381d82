package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.compression.Attribute;
import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Dataset;
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
 * Memory follows the rows, not the setting: batch buffers grow with the rows that arrive, and a
 * batch holds at most spark.sparkinfer.maxBatchBytes, whatever the batch size says.
 */
class TestBatchMemory {
  private static final int ROWS = 1000;

  @TempDir static Path folder;
  private static SparkSession spark;
  private static Path mlpFile;
  private static float[][] features;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    mlpFile = TestModels.writeMlp(folder);
    features = TestModels.randomRows(ROWS, TestModels.MLP_INPUTS, 23);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      List<Float> values = new ArrayList<>();
      for (float value : features[i]) {
        values.add(value);
      }
      rows.add(RowFactory.create((long) i, values));
    }
    spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType)
            .add("features", DataTypes.createArrayType(DataTypes.FloatType, false)))
        .coalesce(1).createOrReplaceTempView("thousand");
    spark.sql("SET spark.sparkinfer.model.mlp.path=" + mlpFile.toUri());
    Path sum = folder.resolve("sum.onnx");
    OnnxModelBuilder.create("sum")
        .input("x", OnnxElementType.FLOAT, "batch", "n")
        .initializer("axes", new long[] {1}, 1)
        .node("ReduceSum", List.of("x", "axes"), List.of("total"), Attribute.ofInt("keepdims", 0))
        .output("total", OnnxElementType.FLOAT, "batch")
        .writeTo(sum);
    spark.sql("SET spark.sparkinfer.model.sum.path=" + sum.toUri());
  }

  @AfterAll
  static void tearDown() {
    spark.catalog().dropTempView("thousand");
    SparkInference.unregister(spark, "mlp");
    SparkInference.unregister(spark, "sum");
  }

  @AfterEach
  void reset() {
    SparkTestSessions.resetApplication("spark.sparkinfer.maxBatchBytes");
    SparkTestSessions.reset("spark.sparkinfer.maxBatchBytes");
    SparkTestSessions.reset("spark.sparkinfer.model.mlp.batchSize");
  }

  @Test
  void aMillionRowBatchSizeOverAThousandRowsHoldsBuffersForAThousand() throws Exception {
    spark.conf().set("spark.sparkinfer.model.mlp.batchSize", "1000000");
    SparkTestSessions.setApplication("spark.sparkinfer.maxBatchBytes", "1g");
    Dataset<Row> result = spark.sql("SELECT id, predict('mlp', features) AS scores FROM thousand");
    float[][] reference = TestModels.runFloatModel(mlpFile, "features", features);
    for (Row row : result.collectAsList()) {
      List<Float> scores = row.getList(1);
      for (int k = 0; k < TestModels.MLP_OUTPUTS; k++) {
        // One batch of 1,000 vs ORT's own batch of 1,000: the same sums.
        assertThat(scores.get(k)).isCloseTo(reference[(int) row.getLong(0)][k], within(1e-5f));
      }
    }
    assertThat(TestPredictSql.metric(result, "batches")).isEqualTo(1);
    // Inputs 16 floats and outputs 4 floats a row: 80 kB for 1,000 rows; buffers for the batch size
    // would take 80 MB. Growth by doubling may hold up to twice the rows.
    assertThat(TestPredictSql.metric(result, "bufferBytes")).isBetween(80_000L, 2L * 80_000);
  }

  @Test
  void aBatchSizeAboveTheByteBudgetIsLoweredToFit() {
    spark.conf().set("spark.sparkinfer.model.mlp.batchSize", "10000");
    SparkTestSessions.setApplication("spark.sparkinfer.maxBatchBytes", "64k");
    Dataset<Row> result = spark.sql("SELECT predict('mlp', features) FROM thousand");
    assertThat(result.collectAsList()).hasSize(ROWS).noneMatch(row -> row.isNullAt(0));
    // 80 bytes a row: 65,536 / 80 = 819 rows a batch, so two batches for 1,000 rows.
    assertThat(TestPredictSql.metric(result, "batches")).isEqualTo(2);
    assertThat(TestPredictSql.metric(result, "bufferBytes")).isLessThanOrEqualTo(2L * 65_536);
  }

  @Test
  void rowsOfDynamicSizeEndABatchAtTheByteBudget() {
    SparkTestSessions.setApplication("spark.sparkinfer.maxBatchBytes", "1k");
    // 100 floats a row (400 bytes) and one float out: a batch is full at 3 rows (1,212 bytes).
    Dataset<Row> result = spark.sql(
        "SELECT id, predict('sum', array_repeat(CAST(id AS FLOAT), 100)) AS total FROM range(0, 30, 1, 1)");
    for (Row row : result.collectAsList()) {
      assertThat(row.getFloat(1)).isEqualTo(100f * row.getLong(0));
    }
    assertThat(TestPredictSql.metric(result, "batches")).isEqualTo(10);
  }

  /** Issue 28: the budget bounds every batch, a batch of one row too (60a06ee took any first row). */
  @Test
  void aRowLargerThanTheBudgetIsThatRowsError() {
    SparkTestSessions.setApplication("spark.sparkinfer.maxBatchBytes", "1k");
    // 300 floats (1,200 bytes) in id 2 only; 100 floats (400 bytes) in the others.
    String query = "SELECT id, predict_with_error('sum', array_repeat(CAST(id AS FLOAT), IF(id = 2, 300, 100))) AS r"
        + " FROM range(0, 4, 1, 1)";
    spark.conf().set("spark.sparkinfer.model.sum.onError", "null");
    try {
      for (Row row : spark.sql(query).collectAsList()) {
        Row result = row.getStruct(1);
        if (row.getLong(0) == 2) {
          assertThat(result.isNullAt(0)).isTrue();
          assertThat(result.getString(1)).contains("Cannot run model 'sum'", "300 values, 1200 bytes",
              "more than a whole batch may hold (spark.sparkinfer.maxBatchBytes=1024 bytes)");
        } else {
          assertThat(result.getFloat(0)).isEqualTo(100f * row.getLong(0));
        }
      }
    } finally {
      SparkTestSessions.reset("spark.sparkinfer.model.sum.onError");
    }
  }

  @Test
  void invalidBudgetsAreRefusedAtAnalysis() {
    SparkTestSessions.setApplication("spark.sparkinfer.maxBatchBytes", "lots");
    assertThatThrownBy(() -> spark.sql("SELECT predict('mlp', features) FROM thousand"))
        .hasMessageContaining("Invalid value 'lots' for spark.sparkinfer.maxBatchBytes (model 'mlp'): use a size");
    SparkTestSessions.setApplication("spark.sparkinfer.maxBatchBytes", "3g");
    assertThatThrownBy(() -> spark.sql("SELECT predict('mlp', features) FROM thousand"))
        .hasMessageContaining("must be from 1k to 2g");
  }

  /** Issue 28: the budget sizes what a whole executor shares, so it is the application's, not a session's. */
  @Test
  void aSessionCannotSetTheBudget() {
    assertThatThrownBy(() -> spark.sql("SET spark.sparkinfer.maxBatchBytes=2g"))
        .hasMessageContaining("Cannot SET spark.sparkinfer.maxBatchBytes: spark.sparkinfer.maxBatchBytes is an"
            + " application setting")
        .hasMessageContaining("RESET spark.sparkinfer.maxBatchBytes");
    // A client that sets it without a statement (spark.conf.set, Spark Connect) is refused at the model call.
    spark.conf().set("spark.sparkinfer.maxBatchBytes", "2g");
    assertThatThrownBy(() -> spark.sql("SELECT predict('mlp', features) FROM thousand"))
        .hasMessageContaining("Cannot call model 'mlp': spark.sparkinfer.maxBatchBytes is an application setting")
        .hasMessageContaining("its value '2g' differs from the application's (unset)");
  }
}
