package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
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
 * Rows a model cannot take: with onError=fail (the default) the query fails naming the model, the
 * input, the shapes and the row; with null, or predict_with_error(), only those rows get a null
 * result (and the reason), counted, and the other rows of their batches are computed, checked
 * against direct ONNX Runtime calls and against the model's own table.
 */
class TestRowErrors {
  private static final int ROWS = 300;
  /** Rows whose array does not fit the MLP's [batch, 16]: too short, too long, a null element. */
  private static final Set<Integer> SHORT = Set.of(7, 150);
  private static final Set<Integer> LONG = Set.of(31);
  private static final Set<Integer> NULL_ELEMENT = Set.of(0, 299);
  /** Rows whose index is outside the lookup model's table, which ONNX Runtime rejects. */
  private static final Set<Integer> OUT_OF_TABLE = Set.of(5, 6, 100, 299);
  private static final int TABLE_ROWS = 10;
  private static final int TABLE_WIDTH = 3;

  @TempDir static Path folder;
  private static SparkSession spark;
  private static Path mlpFile;
  private static float[][] features;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    mlpFile = TestModels.writeMlp(folder);
    features = TestModels.randomRows(ROWS, TestModels.MLP_INPUTS, 5);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      List<Float> values = new ArrayList<>();
      int length = SHORT.contains(i) ? 15 : LONG.contains(i) ? 17 : 16;
      for (int k = 0; k < length; k++) {
        values.add(NULL_ELEMENT.contains(i) && k == 3 ? null : features[i][Math.min(k, 15)]);
      }
      long index = OUT_OF_TABLE.contains(i) ? (i % 2 == 0 ? TABLE_ROWS + i : -TABLE_ROWS - 1) : i % TABLE_ROWS;
      rows.add(RowFactory.create((long) i, values, index));
    }
    StructType schema = new StructType()
        .add("id", DataTypes.LongType, false)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, true), false)
        .add("idx", DataTypes.LongType, false);
    // One partition, in id order: a row's index in its partition is its id.
    spark.createDataFrame(rows, schema).coalesce(1).createOrReplaceTempView("bumpy");
    spark.sql("SET spark.sparkinfer.model.mlp.path=" + mlpFile.toUri());
    spark.sql("SET spark.sparkinfer.model.mlp.batchSize=32");
    spark.sql("SET spark.sparkinfer.model.lookup.path=" + writeLookup(folder).toUri());
    spark.sql("SET spark.sparkinfer.model.lookup.batchSize=32");
  }

  @AfterAll
  static void tearDown() {
    spark.catalog().dropTempView("bumpy");
    SparkInference.unregister(spark, "mlp");
    SparkInference.unregister(spark, "lookup");
  }

  @AfterEach
  void resetPolicy() {
    SparkTestSessions.reset("spark.sparkinfer.model.mlp.onError");
    SparkTestSessions.reset("spark.sparkinfer.onError");
  }

  @Test
  void byDefaultTheFirstBadRowFailsTheQueryNamingModelInputShapeAndRow() {
    assertThatThrownBy(() -> spark.sql("SELECT id, predict('mlp', features) FROM bumpy WHERE id > 0").collect())
        .hasMessageContaining("Cannot run model 'mlp': input 'features' expects 16 values per row")
        .hasMessageContaining("but a row has 15 values")
        // id 7 is the 7th row that reaches the call (id 0 is filtered out)
        .hasMessageContaining("(row 6 of partition 0)")
        .hasMessageContaining("SET spark.sparkinfer.model.mlp.onError=null");
    assertThatThrownBy(() -> spark.sql("SELECT id, predict('lookup', idx) FROM bumpy").collect())
        .hasMessageContaining("Model 'lookup' cannot take this row: ")
        .hasMessageContaining("indices")
        .hasMessageContaining("(row 5 of partition 0)")
        .hasMessageContaining("input 'idx' shape [1]");
  }

  @Test
  void withOnErrorNullOnlyTheBadRowsAreNullAndCounted() throws Exception {
    spark.conf().set("spark.sparkinfer.model.mlp.onError", "null");
    Dataset<Row> result = spark.sql("SELECT id, predict('mlp', features) AS scores FROM bumpy");
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(ROWS);
    float[][] reference = TestModels.runFloatModel(mlpFile, "features", features);
    for (Row row : rows) {
      int id = (int) row.getLong(0);
      if (fitsMlp(id)) {
        assertClose(row.getList(1), reference[id]);
      } else {
        assertThat(row.isNullAt(1)).as("row %d", id).isTrue();
      }
    }
    int bad = SHORT.size() + LONG.size() + NULL_ELEMENT.size();
    assertThat(TestPredictSql.metric(result, "errorRows")).isEqualTo(bad);
    assertThat(TestPredictSql.metric(result, "modelRows")).isEqualTo(ROWS - bad);
    assertThat(TestPredictSql.metric(result, "nullRows")).isZero();
  }

  @Test
  void predictWithErrorGivesTheReasonAndTheOtherRowsOfTheBatch() throws Exception {
    Dataset<Row> result = spark.sql(
        "SELECT id, p.result, p.error FROM (SELECT id, predict_with_error('lookup', idx) AS p FROM bumpy)");
    assertThat(result.schema().apply("error").dataType()).isEqualTo(DataTypes.StringType);
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(ROWS);
    for (Row row : rows) {
      int id = (int) row.getLong(0);
      if (OUT_OF_TABLE.contains(id)) {
        assertThat(row.isNullAt(1)).isTrue();
        assertThat(row.getString(2)).startsWith("Model 'lookup' cannot take this row: ").contains("indices");
      } else {
        // The table's row idx: 10 * idx + column, as writeLookup made it.
        List<Float> values = row.getList(1);
        for (int k = 0; k < TABLE_WIDTH; k++) {
          assertThat(values.get(k)).isEqualTo((float) (10 * (id % TABLE_ROWS) + k));
        }
        assertThat(row.isNullAt(2)).isTrue();
      }
    }
    assertThat(TestPredictSql.metric(result, "errorRows")).isEqualTo(OUT_OF_TABLE.size());
    assertThat(TestPredictSql.metric(result, "modelRows")).isEqualTo(ROWS - OUT_OF_TABLE.size());
  }

  @Test
  void dataFrameApiTakesThePolicyAndAnErrorColumn() throws Exception {
    Dataset<Row> scored = Inference.model("mlp").input("features").onError("null").errorColumn("why")
        .as("scores").transform(spark.table("bumpy"));
    assertThat(scored.columns()).containsExactly("id", "features", "idx", "scores", "why");
    float[][] reference = TestModels.runFloatModel(mlpFile, "features", features);
    for (Row row : scored.select("id", "scores", "why").collectAsList()) {
      int id = (int) row.getLong(0);
      if (fitsMlp(id)) {
        assertClose(row.getList(1), reference[id]);
        assertThat(row.isNullAt(2)).isTrue();
      } else {
        assertThat(row.isNullAt(1)).isTrue();
        assertThat(row.getString(2)).contains("Cannot run model 'mlp'")
            .contains(NULL_ELEMENT.contains(id) ? "null element" : "values per row");
      }
    }
    assertThat(io.github.sparkinfer.spark.plan.BatchPredictNodes.in(scored.queryExecution().executedPlan())).hasSize(1);
    // The call's own policy over the session key.
    spark.conf().set("spark.sparkinfer.model.mlp.onError", "null");
    assertThatThrownBy(() -> Inference.model("mlp").input("features").onError("fail").transform(spark.table("bumpy"))
        .collect()).hasMessageContaining("(row 0 of partition 0)");
    assertThatThrownBy(() -> Inference.model("mlp").onError("skip"))
        .hasMessageContaining("Invalid onError 'skip' for model 'mlp': use fail");
  }

  @Test
  void policyKeysFollowThePrecedenceAndBadValuesFailAtAnalysis() {
    spark.conf().set("spark.sparkinfer.onError", "null");
    assertThat(spark.sql("SELECT predict('mlp', features) AS s FROM bumpy").where("s IS NULL").count())
        .isEqualTo(SHORT.size() + LONG.size() + NULL_ELEMENT.size());
    spark.conf().set("spark.sparkinfer.model.mlp.onError", "fail");
    assertThatThrownBy(() -> spark.sql("SELECT predict('mlp', features) FROM bumpy").collect())
        .hasMessageContaining("(row 0 of partition 0)");
    spark.conf().set("spark.sparkinfer.model.mlp.onError", "skip");
    assertThatThrownBy(() -> spark.sql("SELECT predict('mlp', features) FROM bumpy"))
        .isInstanceOf(org.apache.spark.sql.AnalysisException.class)
        .hasMessageContaining("Invalid value 'skip' for spark.sparkinfer.model.mlp.onError (model 'mlp'): use fail");
  }

  private static boolean fitsMlp(int id) {
    return !SHORT.contains(id) && !LONG.contains(id) && !NULL_ELEMENT.contains(id);
  }

  private static void assertClose(List<Float> actual, float[] expected) {
    assertThat(actual).hasSize(expected.length);
    for (int k = 0; k < expected.length; k++) {
      // The same model on the same CPU, another batch composition: fp32 sums of 16 and 32 terms.
      assertThat(actual.get(k)).isCloseTo(expected[k], within(1e-5f));
    }
  }

  /** idx int64 [batch] → Gather from a 10 × 3 table whose row r is (10r, 10r + 1, 10r + 2). */
  private static Path writeLookup(Path folder) throws Exception {
    float[] table = new float[TABLE_ROWS * TABLE_WIDTH];
    for (int r = 0; r < TABLE_ROWS; r++) {
      for (int k = 0; k < TABLE_WIDTH; k++) {
        table[r * TABLE_WIDTH + k] = 10 * r + k;
      }
    }
    Path file = folder.resolve("lookup.onnx");
    OnnxModelBuilder.create("lookup")
        .input("idx", OnnxElementType.INT64, "batch")
        .initializer("table", table, TABLE_ROWS, TABLE_WIDTH)
        .node("Gather", List.of("table", "idx"), List.of("values"))
        .output("values", OnnxElementType.FLOAT, "batch", TABLE_WIDTH)
        .writeTo(file);
    return file;
  }
}
