package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.sparkinfer.compression.Attribute;
import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The input rules of predict() (docs/sql-functions.md), on small models whose outputs are simple arithmetic, so
 * every expected value is computed by hand in the test: int32 inputs and which columns feed them,
 * a scalar column for [batch, 1], a flat array for [batch, d1, d2] in row-major order, a model with a
 * fixed batch size, struct arguments (case, extra fields, nulls), a null array element, and the
 * columnar path over cached columns. Each model has a name of its own, unregistered at the end.
 */
class TestPredictInputRules {
  @TempDir static Path folder;

  private static SparkSession spark;

  @BeforeAll
  static void registerModels() throws Exception {
    spark = SparkTestSessions.shared();
    // int32 [batch, 3] -> sum int32 [batch] and twice int32 [batch, 3].
    Path ints = folder.resolve("ints.onnx");
    OnnxModelBuilder.create("ints")
        .input("x", OnnxElementType.INT32, "batch", 3)
        .initializer("axes", new long[] {1}, 1)
        .node("ReduceSum", List.of("x", "axes"), List.of("sum"), Attribute.ofInt("keepdims", 0))
        .node("Add", List.of("x", "x"), List.of("twice"))
        .output("sum", OnnxElementType.INT32, "batch")
        .output("twice", OnnxElementType.INT32, "batch", 3)
        .writeTo(ints);
    // float [batch, 1] -> 3x, float [batch, 1].
    Path scale = folder.resolve("scale.onnx");
    OnnxModelBuilder.create("scale")
        .input("x", OnnxElementType.FLOAT, "batch", 1)
        .initializer("three", new float[] {3f})
        .node("Mul", List.of("x", "three"), List.of("y"))
        .output("y", OnnxElementType.FLOAT, "batch", 1)
        .writeTo(scale);
    // float [batch, 2, 3] -> the sum of each row of 3, float [batch, 2].
    Path grid = folder.resolve("grid.onnx");
    OnnxModelBuilder.create("grid")
        .input("g", OnnxElementType.FLOAT, "batch", 2, 3)
        .initializer("axes", new long[] {2}, 1)
        .node("ReduceSum", List.of("g", "axes"), List.of("s"), Attribute.ofInt("keepdims", 0))
        .output("s", OnnxElementType.FLOAT, "batch", 2)
        .writeTo(grid);
    // Exported with a fixed batch of 4: float [4, 3] -> the sum of each row, float [4].
    Path fixed = folder.resolve("fixed.onnx");
    OnnxModelBuilder.create("fixed")
        .input("x", OnnxElementType.FLOAT, 4, 3)
        .initializer("axes", new long[] {1}, 1)
        .node("ReduceSum", List.of("x", "axes"), List.of("y"), Attribute.ofInt("keepdims", 0))
        .output("y", OnnxElementType.FLOAT, 4)
        .writeTo(fixed);
    register("rules_ints", ints);
    register("rules_scale", scale);
    register("rules_grid", grid);
    register("rules_fixed", fixed);
    register("rules_multi", TestModels.writeMultiIo(folder));
  }

  private static void register(String name, Path file) {
    spark.conf().set("spark.sparkinfer.model." + name + ".path", file.toUri().toString());
  }

  @AfterAll
  static void unregisterModels() {
    for (String name : List.of("rules_ints", "rules_scale", "rules_grid", "rules_fixed", "rules_multi")) {
      SparkInference.unregister(spark, name);
    }
  }

  @Test
  void int32InputsTakeIntSmallintAndTinyintColumnsExactly() {
    Dataset<Row> result = spark.sql("SELECT id,"
        + " predict('rules_ints', array(CAST(id AS INT), CAST(-2 * id AS INT), 7)) AS from_int,"
        + " predict('rules_ints', CAST(array(id, -2 * id, 7) AS ARRAY<SMALLINT>)) AS from_smallint,"
        + " predict('rules_ints', CAST(array(id % 50, -(id % 50), 1) AS ARRAY<TINYINT>)) AS from_tinyint"
        + " FROM range(0, 200, 1, 3)");
    assertThat(result.schema().apply("from_int").dataType().simpleString())
        .isEqualTo("struct<sum:int,twice:array<int>>");
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(200);
    for (Row row : rows) {
      int id = (int) row.getLong(0);
      assertThat(row.getStruct(1).getInt(0)).isEqualTo(id - 2 * id + 7);
      assertThat(row.getStruct(1).<Integer>getList(1)).containsExactly(2 * id, -4 * id, 14);
      assertThat(row.getStruct(2).getInt(0)).isEqualTo(id - 2 * id + 7);
      assertThat(row.getStruct(3).getInt(0)).isEqualTo(1);
      assertThat(row.getStruct(3).<Integer>getList(1)).containsExactly(2 * (id % 50), -2 * (id % 50), 2);
    }
    // Near the int32 limit: a detour through float (24-bit mantissa) would lose the low digits.
    Row large = spark.sql("SELECT predict('rules_ints', array(2147483000, 600, 47)) AS out").first();
    assertThat(large.getStruct(0).getInt(0)).isEqualTo(2_147_483_647);
  }

  @Test
  void int32InputsRefuseBigintAndFloatingColumnsAtAnalysis() {
    assertThatThrownBy(() -> spark.sql("SELECT predict('rules_ints', array(id, id, id)) FROM range(3)"))
        .isInstanceOf(AnalysisException.class)
        .hasMessageContaining("model 'rules_ints' input 'x'")
        .hasMessageContaining("bigint values cannot be converted to int32 without losing information; cast the column");
    assertThatThrownBy(() -> spark.sql("SELECT predict('rules_ints', array(1.5F, 2F, 3F))"))
        .isInstanceOf(AnalysisException.class)
        .hasMessageContaining("model 'rules_ints' input 'x'")
        .hasMessageContaining("float values cannot be converted to int32");
  }

  @Test
  void scalarColumnFeedsAnInputOfShapeBatchByOne() {
    Dataset<Row> result = spark.sql("SELECT id, predict('rules_scale', CAST(id AS DOUBLE) / 4) AS from_double,"
        + " predict('rules_scale', CAST(id % 100 AS TINYINT)) AS from_tinyint FROM range(0, 100, 1, 2)");
    assertThat(result.schema().apply("from_double").dataType())
        .isEqualTo(DataTypes.createArrayType(DataTypes.FloatType, false));
    for (Row row : result.collectAsList()) {
      long id = row.getLong(0);
      // id / 4 and 3 times it are exact in float for these ids.
      assertThat(row.<Float>getList(1)).containsExactly(3f * id / 4);
      assertThat(row.<Float>getList(2)).containsExactly(3f * (id % 100));
    }
  }

  @Test
  void flatArrayFillsAFixedShapeInRowMajorOrder() {
    Dataset<Row> result = spark.sql("SELECT id, predict('rules_grid',"
        + " array(CAST(id AS FLOAT), id + 1, id + 2, 10 * id, 0, -1)) AS s FROM range(0, 64, 1, 2)");
    for (Row row : result.collectAsList()) {
      long id = row.getLong(0);
      // Row-major: [[id, id+1, id+2], [10 id, 0, -1]]; column-major would give 2 id + 2 first.
      assertThat(row.<Float>getList(1)).containsExactly(3f * id + 3, 10f * id - 1);
    }
    // A constant fails at analysis; a computed array when its row is read.
    assertThatThrownBy(() -> spark.sql("SELECT predict('rules_grid', array(1F, 2F, 3F, 4F, 5F))"))
        .hasMessageContaining("the constant array for input 'g' has 5 values, but the input takes 6");
    assertThatThrownBy(() -> spark.sql(
            "SELECT predict('rules_grid', array(CAST(id AS FLOAT), 2F, 3F, 4F, 5F)) FROM range(3)").collectAsList())
        .hasStackTraceContaining("Cannot run model 'rules_grid': input 'g' expects 6 values per row")
        .hasStackTraceContaining("but a row has 5 values");
  }

  @Test
  void fixedBatchSizeModelRunsFullBatchesAndDropsThePaddingRows() {
    // The session's batch size does not apply: the model takes exactly 4 rows per run.
    spark.conf().set("spark.sparkinfer.batchSize", "32");
    try {
      Dataset<Row> onePartition = spark.sql(
          "SELECT id, predict('rules_fixed', array(CAST(id AS FLOAT), 2, -0.5)) AS y FROM range(0, 10, 1, 1)");
      List<Row> rows = onePartition.collectAsList();
      assertThat(rows).hasSize(10);
      rows.forEach(row -> assertThat(row.getFloat(1)).isEqualTo(row.getLong(0) + 1.5f));
      assertThat(TestPredictSql.metric(onePartition, "batches")).as("4 + 4 + 2 padded to 4").isEqualTo(3);
      assertThat(TestPredictSql.metric(onePartition, "modelRows")).as("padding rows are not model rows").isEqualTo(10);

      Dataset<Row> threePartitions = spark.sql(
          "SELECT id, predict('rules_fixed', array(CAST(id AS FLOAT), 2, -0.5)) AS y FROM range(0, 10, 1, 3)");
      List<Row> again = threePartitions.collectAsList();
      assertThat(again).hasSize(10);
      again.forEach(row -> assertThat(row.getFloat(1)).isEqualTo(row.getLong(0) + 1.5f));
      assertThat(TestPredictSql.metric(threePartitions, "batches")).as("3, 3 and 4 rows: one batch each").isEqualTo(3);
    } finally {
      spark.conf().unset("spark.sparkinfer.batchSize");
    }
  }

  @Test
  void structFieldsMatchExactlyThenIgnoringCaseAndExtraFieldsAreIgnored() {
    List<Row> rows = spark.sql("SELECT id, predict('rules_multi', named_struct('A', CAST(id AS DOUBLE),"
            + " 'b', array(1.5D, CAST(id AS DOUBLE), -2D), 'note', 'not an input')).total AS total"
            + " FROM range(0, 40, 1, 2)")
        .collectAsList();
    assertThat(rows).hasSize(40);
    rows.forEach(row -> assertThat(row.getFloat(1)).isEqualTo(row.getLong(0) + 1.5f + row.getLong(0) - 2f));
  }

  @Test
  void nullStructOrNullStructFieldGivesNullWithoutAModelCall() {
    Dataset<Row> result = spark.sql("SELECT id, predict('rules_multi', CASE WHEN id % 7 = 0 THEN NULL ELSE"
        + " named_struct('a', CASE WHEN id % 5 = 0 THEN NULL ELSE CAST(id AS DOUBLE) END,"
        + " 'b', array(1.5D, CAST(id AS DOUBLE), -2D)) END).total AS total FROM range(0, 70, 1, 1)");
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(70);
    long nulls = 0;
    for (Row row : rows) {
      long id = row.getLong(0);
      if (id % 7 == 0 || id % 5 == 0) {
        assertThat(row.isNullAt(1)).as("row %d", id).isTrue();
        nulls++;
      } else {
        assertThat(row.getFloat(1)).isEqualTo(id + 1.5f + id - 2f);
      }
    }
    // 0..69: 10 multiples of 7, 14 of 5, 2 of both.
    assertThat(nulls).isEqualTo(22);
    assertThat(TestPredictSql.metric(result, "nullRows")).isEqualTo(22);
    assertThat(TestPredictSql.metric(result, "modelRows")).isEqualTo(48);
  }

  @Test
  void nullArrayElementFailsTheTaskNamingModelInputAndFix() {
    assertThatThrownBy(() -> spark.sql("SELECT predict('rules_grid', array(CAST(id AS FLOAT), 1, 2,"
            + " CASE WHEN id = 3 THEN NULL ELSE 3F END, 4, 5)) FROM range(0, 10, 1, 1)").collectAsList())
        .hasStackTraceContaining("Cannot run model 'rules_grid': the array for input 'g' contains a null element")
        .hasStackTraceContaining("transform(col, x -> coalesce(x, 0))");
  }

  @Test
  void cachedPrimitiveColumnsAreReadColumnar() {
    // Before this was tested, a cache was read through its row path: Spark inserts no
    // ColumnarToRow above a scan that also offers rows.
    Dataset<Row> cached = spark.sql(
        "SELECT id, CASE WHEN id % 9 = 0 THEN NULL ELSE CAST(id AS FLOAT) / 8 END AS x FROM range(0, 500, 1, 3)").cache();
    try {
      cached.count();
      Dataset<Row> result = cached.selectExpr("id", "predict('rules_scale', x) AS y");
      List<Row> rows = result.collectAsList();
      String plan = result.queryExecution().executedPlan().toString();
      assertThat(plan).contains("BatchPredict (columnar input)").contains("InMemoryTableScan")
          .doesNotContain("ColumnarToRow");
      assertThat(rows).hasSize(500);
      for (Row row : rows) {
        long id = row.getLong(0);
        if (id % 9 == 0) {
          assertThat(row.isNullAt(1)).isTrue();
        } else {
          assertThat(row.<Float>getList(1)).containsExactly(3f * id / 8);
        }
      }
      assertThat(TestPredictSql.metric(result, "nullRows")).isEqualTo(56);
    } finally {
      cached.unpersist(true);
    }
  }
}
