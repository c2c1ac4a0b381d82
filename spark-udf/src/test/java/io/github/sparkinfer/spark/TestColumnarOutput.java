package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.compression.Attribute;
import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import io.github.sparkinfer.spark.plan.BatchPredictExec;
import java.nio.file.Path;
import java.sql.Date;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.ColumnarToRowExec;
import org.apache.spark.sql.execution.InputAdapter;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * predict() with spark.sparkinfer.columnarOutput: over a vectorized Parquet scan (array&lt;float&gt;
 * through the nested vectorized reader, and primitive columns) and over a cache of primitive
 * columns, the node gives columnar batches, and every query gives what the row path gives (the
 * same rows, values, nulls, errors and metrics) and what ONNX Runtime called directly, or the
 * arithmetic of a test model, gives.
 */
class TestColumnarOutput {
  private static final String COLUMNAR_OUTPUT = "spark.sparkinfer.columnarOutput";
  private static final String READER_BATCH = "spark.sql.parquet.columnarReaderBatchSize";
  private static final String OFF_HEAP = "spark.sql.columnVector.offheap.enabled";
  private static final String VECTORIZED = "spark.sql.parquet.enableVectorizedReader";
  private static final String NESTED_VECTORIZED = "spark.sql.parquet.enableNestedColumnVectorizedReader";
  private static final String ADAPTIVE = "spark.sql.adaptive.enabled";
  private static final int ROWS = 5000;
  /** Child batches of 1000 rows, model batches of 300: model batches end inside and at child batches. */
  private static final int CHILD_BATCH = 1000;

  @TempDir static Path folder;

  private static SparkSession spark;
  private static Path mlpFile;
  private static float[][] features;
  private static float[][] reference;
  private static Path points;
  private static Path bumpy;
  private static Path pairs;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    mlpFile = TestModels.writeMlp(folder);
    features = TestModels.randomRows(ROWS, TestModels.MLP_INPUTS, 29);
    reference = TestModels.runFloatModel(mlpFile, "features", features);
    List<Row> rows = new ArrayList<>();
    List<Row> bumpyRows = new ArrayList<>();
    List<Row> pairRows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      List<Float> values = new ArrayList<>();
      for (float value : features[i]) {
        values.add(value);
      }
      rows.add(RowFactory.create((long) i, "k" + (i % 5), i * 0.5, i % 3 == 0 ? null : i, i % 2 == 0,
          Date.valueOf("2026-01-01").toLocalDate().plusDays(i % 400).toString(), i % 7 == 0 ? null : values));
      List<Float> bumpyValues = new ArrayList<>(values);
      if (i % 97 == 5) {
        bumpyValues.remove(15);  // 15 values: the model takes 16
      } else if (i % 101 == 3) {
        bumpyValues.set(2, null);  // a null element
      }
      bumpyRows.add(RowFactory.create((long) i, i % 89 == 0 ? null : bumpyValues));
      pairRows.add(RowFactory.create((long) i, i % 11 == 0 ? null : (float) i / 4, (float) (i % 13) - 6,
          List.of((float) i, 1f, -2f), "p" + i));
    }
    StructType schema = new StructType()
        .add("id", DataTypes.LongType, false)
        .add("kind", DataTypes.StringType, false)
        .add("weight", DataTypes.DoubleType, false)
        .add("count", DataTypes.IntegerType, true)
        .add("flag", DataTypes.BooleanType, false)
        .add("day", DataTypes.StringType, false)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), true);
    points = folder.resolve("points.parquet");
    spark.createDataFrame(rows, schema).selectExpr("id", "kind", "weight", "count", "flag", "CAST(day AS DATE) AS day",
        "features").coalesce(2).write().parquet(points.toString());
    bumpy = folder.resolve("bumpy.parquet");
    spark.createDataFrame(bumpyRows, new StructType().add("id", DataTypes.LongType, false)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, true), true))
        .coalesce(1).write().parquet(bumpy.toString());
    pairs = folder.resolve("pairs.parquet");
    spark.createDataFrame(pairRows, new StructType().add("id", DataTypes.LongType, false)
        .add("x", DataTypes.FloatType, true).add("y", DataTypes.FloatType, false)
        .add("b", DataTypes.createArrayType(DataTypes.FloatType, false), false)
        .add("name", DataTypes.StringType, false))
        .coalesce(2).write().parquet(pairs.toString());
    // x, y: float [batch] -> s = x + y, float [batch]: one number per row.
    Path sum = folder.resolve("sum.onnx");
    OnnxModelBuilder.create("sum")
        .input("x", OnnxElementType.FLOAT, "batch")
        .input("y", OnnxElementType.FLOAT, "batch")
        .node("Add", List.of("x", "y"), List.of("s"))
        .output("s", OnnxElementType.FLOAT, "batch")
        .writeTo(sum);
    set("spark.sparkinfer.model.col_mlp.path", mlpFile.toUri().toString());
    set("spark.sparkinfer.model.col_mlp.batchSize", "300");
    set("spark.sparkinfer.model.col_sum.path", sum.toUri().toString());
    set("spark.sparkinfer.model.col_sum.batchSize", "300");
    set("spark.sparkinfer.model.col_multi.path", TestModels.writeMultiIo(folder).toUri().toString());
    set("spark.sparkinfer.model.col_multi.batchSize", "300");
    spark.conf().set(READER_BATCH, String.valueOf(CHILD_BATCH));
  }

  private static void set(String key, String value) {
    spark.conf().set(key, value);
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "col_mlp");
    SparkInference.unregister(spark, "col_sum");
    SparkInference.unregister(spark, "col_multi");
    spark.conf().unset(READER_BATCH);
  }

  @AfterEach
  void resetSettings() {
    SparkTestSessions.reset(COLUMNAR_OUTPUT);
    SparkTestSessions.reset("spark.sparkinfer.model.col_mlp.onError");
    for (String key : List.of(OFF_HEAP, VECTORIZED, NESTED_VECTORIZED)) {
      spark.conf().unset(key);
    }
    // The shared session runs without adaptive execution; a test that turns it on puts that back.
    spark.conf().set(ADAPTIVE, "false");
  }

  /** One run of a query: its rows in id order (the first column), its plan and its node's metrics. */
  private static final class Run {
    final List<Row> rows;
    final SparkPlan plan;
    final Map<String, Long> metrics = new LinkedHashMap<>();

    Run(Dataset<Row> result) {
      rows = new ArrayList<>(result.collectAsList());
      rows.sort(Comparator.comparingLong(row -> row.getLong(0)));
      plan = result.queryExecution().executedPlan();
      BatchPredictExec node = node(plan);
      for (String name : List.of("numOutputRows", "modelRows", "nullRows", "errorRows")) {
        metrics.put(name, (Long) node.metrics().apply(name).value());
      }
    }
  }

  private static BatchPredictExec node(SparkPlan plan) {
    return (BatchPredictExec) plan.find(node -> node instanceof BatchPredictExec).get();
  }

  /** The query with columnar output on; the same with it off (columnar input, row output); the row path. */
  private static Run[] runThreeWays(String sql) {
    spark.conf().set(COLUMNAR_OUTPUT, "true");
    Run columnar = new Run(spark.sql(sql));
    spark.conf().set(COLUMNAR_OUTPUT, "false");
    Run rowOutput = new Run(spark.sql(sql));
    spark.conf().set(VECTORIZED, "false");
    Run rows = new Run(spark.sql(sql));
    spark.conf().unset(VECTORIZED);
    assertColumnarOutput(columnar.plan);
    assertThat(node(rowOutput.plan).supportsColumnar()).isFalse();
    assertThat(node(rows.plan).nodeName()).isEqualTo("BatchPredict");
    assertThat(node(rows.plan).supportsColumnar()).isFalse();
    // The same model batches as the row output over the same columnar input: the same bits.
    assertThat(columnar.rows).containsExactlyElementsOf(rowOutput.rows);
    assertThat(columnar.metrics).isEqualTo(rowOutput.metrics).isEqualTo(rows.metrics);
    assertThat(columnar.rows).hasSameSizeAs(rows.rows);
    return new Run[] {columnar, rowOutput, rows};
  }

  /** The node gives columnar batches and a ColumnarToRow right above it makes the rows. */
  private static void assertColumnarOutput(SparkPlan plan) {
    BatchPredictExec node = node(plan);
    assertThat(node.supportsColumnar()).as("columnar output in %s", plan).isTrue();
    assertThat(node.nodeName()).isEqualTo("BatchPredict (columnar input and output)");
    // Under whole-stage codegen an InputAdapter (not printed) sits between the two.
    assertThat(plan.find(candidate -> candidate instanceof ColumnarToRowExec
        && (candidate.children().head() == node || candidate.children().head() instanceof InputAdapter
            && candidate.children().head().children().head() == node)).isDefined())
        .as("ColumnarToRow above the node in %s", plan).isTrue();
    // Nothing turns the scan's batches into rows below the node.
    assertThat(node.find(candidate -> candidate instanceof ColumnarToRowExec).isDefined()).isFalse();
  }

  /** A session user's bad value fails the query before any task runs, naming the key and the choices. */
  @Test
  void anInvalidColumnarOutputValueIsRejectedNamingTheKey() {
    spark.conf().set(COLUMNAR_OUTPUT, "sometimes");
    try {
      org.assertj.core.api.Assertions.assertThatThrownBy(() ->
              spark.sql("SELECT predict('col_mlp', features) FROM parquet.`" + points + "`").collect())
          .hasMessageContaining("Invalid value 'sometimes' for " + COLUMNAR_OUTPUT)
          .hasMessageContaining("use true");
    } finally {
      spark.conf().unset(COLUMNAR_OUTPUT);
    }
  }

  @Test
  void parquetArraysGiveColumnarResultsEqualToTheRowPathAndToOrt() {
    for (String offHeap : List.of("false", "true")) {
      // Off-heap vectors are copied from their native memory, on-heap ones through Spark's bulk getter.
      spark.conf().set(OFF_HEAP, offHeap);
      spark.conf().set(NESTED_VECTORIZED, "true");
      Run[] runs = runThreeWays("SELECT id, kind, weight, count, predict('col_mlp', features) AS scores, flag, day,"
          + " features FROM parquet.`" + points + "`");
      Run columnar = runs[0];
      assertThat(columnar.rows).hasSize(ROWS);
      for (int i = 0; i < ROWS; i++) {
        Row row = columnar.rows.get(i);
        Row expected = runs[2].rows.get(i);
        assertThat(row.getLong(0)).isEqualTo(i);
        assertThat(row.getString(1)).isEqualTo("k" + (i % 5));
        assertThat(row.getDouble(2)).isEqualTo(i * 0.5);
        assertThat(row.isNullAt(3)).isEqualTo(i % 3 == 0);
        assertThat(row.getBoolean(5)).isEqualTo(i % 2 == 0);
        assertThat(row.getDate(6).toString()).isEqualTo(expected.getDate(6).toString());
        if (i % 7 == 0) {
          assertThat(row.isNullAt(4)).as("row %d", i).isTrue();
          assertThat(row.isNullAt(7)).isTrue();
        } else {
          assertClose(row.getList(4), reference[i], i);
          assertClose(expected.getList(4), reference[i], i);
          assertThat(row.<Float>getList(7)).hasSize(TestModels.MLP_INPUTS).first().isEqualTo(features[i][0]);
        }
      }
      assertThat(columnar.metrics).containsEntry("nullRows", (long) (ROWS + 6) / 7)
          .containsEntry("numOutputRows", (long) ROWS);
    }
  }

  @Test
  void dictionaryEncodedArraysAreReadAsTheRowPathReadsThem() throws Exception {
    // Few distinct values: Parquet writes them through a dictionary.
    Path coded = folder.resolve("coded.parquet");
    spark.sql("SELECT id, transform(sequence(0, 15), k -> CAST((id + k) % 3 - 1 AS FLOAT)) AS features"
        + " FROM range(0, 3000, 1, 1)").write().parquet(coded.toString());
    assertThat(((org.apache.spark.sql.types.ArrayType) spark.read().parquet(coded.toString()).schema()
        .apply("features").dataType()).elementType()).isEqualTo(DataTypes.FloatType);
    spark.conf().set(NESTED_VECTORIZED, "true");
    Run[] runs = runThreeWays("SELECT id, predict('col_mlp', features) FROM parquet.`" + coded + "`");
    float[][] codedRows = new float[3000][16];
    for (int i = 0; i < 3000; i++) {
      for (int k = 0; k < 16; k++) {
        codedRows[i][k] = (i + k) % 3 - 1;
      }
    }
    float[][] expected = TestModels.runFloatModel(mlpFile, "features", codedRows);
    for (int i = 0; i < 3000; i++) {
      assertClose(runs[0].rows.get(i).getList(1), expected[i], i);
    }
  }

  @Test
  void primitiveColumnsAndSeveralOutputsOfRanksOneToThree() {
    // col_sum: x + y, one float per row; col_multi: struct<total, total_id, grid: array<array<float>>>.
    Run[] runs = runThreeWays("SELECT id, predict('col_sum', x, y) AS s, name, predict('col_multi', y, b) AS m"
        + " FROM parquet.`" + pairs + "`");
    // Two calls, two nodes: the upper one reads the lower one's columnar batches.
    for (Row row : runs[0].rows) {
      long i = row.getLong(0);
      float y = (float) (i % 13) - 6;
      if (i % 11 == 0) {
        assertThat(row.isNullAt(1)).isTrue();
      } else {
        assertThat(row.getFloat(1)).isEqualTo((float) i / 4 + y);
      }
      assertThat(row.getString(2)).isEqualTo("p" + i);
      Row multi = row.getStruct(3);
      float total = y + (float) i + 1f - 2f;
      assertThat(multi.getFloat(0)).isCloseTo(total, within(1e-3f));
      assertThat(multi.getLong(1)).isEqualTo((long) multi.getFloat(0));
      List<scala.collection.Seq<Object>> grid = multi.getList(2);
      assertThat(grid).hasSize(3);
      assertThat(grid.get(0).apply(0)).isEqualTo(2f * i);
      assertThat(grid.get(1).apply(0)).isEqualTo(2f);
      assertThat(grid.get(2).apply(0)).isEqualTo(-4f);
      assertThat(grid).allSatisfy(inner -> assertThat(inner.size()).isEqualTo(1));
    }
  }

  @Test
  void severalOutputsUnderPredictWithErrorNestTheStructInTheResultField() {
    Run[] runs = runThreeWays("SELECT id, predict_with_error('col_multi', x, b) AS m FROM parquet.`" + pairs + "`");
    for (Row row : runs[0].rows) {
      long i = row.getLong(0);
      Row reported = row.getStruct(1);
      assertThat(reported.isNullAt(1)).as("no error, row %d", i).isTrue();
      if (i % 11 == 0) {
        assertThat(reported.isNullAt(0)).isTrue();
      } else {
        Row multi = reported.getStruct(0);
        assertThat(multi.getFloat(0)).isCloseTo((float) i / 4 + i - 1, within(1e-2f));
        assertThat(multi.getLong(1)).isEqualTo((long) multi.getFloat(0));
        assertThat(multi.<scala.collection.Seq<Object>>getList(2).get(0).apply(0)).isEqualTo(2f * i);
      }
    }
  }

  @Test
  void primitiveColumnsAloneGiveAColumnarScalarResult() {
    Run[] runs = runThreeWays("SELECT id, predict('col_sum', x, y) AS s, name FROM parquet.`" + pairs + "`");
    assertThat(runs[0].rows).hasSize(ROWS);
    for (Row row : runs[0].rows) {
      long i = row.getLong(0);
      if (i % 11 == 0) {
        assertThat(row.isNullAt(1)).isTrue();
      } else {
        assertThat(row.getFloat(1)).isEqualTo((float) i / 4 + (float) (i % 13) - 6);
      }
      assertThat(row.getString(2)).isEqualTo("p" + i);
    }
    assertThat(runs[0].metrics).containsEntry("nullRows", (long) (ROWS + 10) / 11);
  }

  @Test
  void cachedPrimitiveColumnsGiveColumnarResults() {
    // Spark's cache gives columnar batches only of primitive columns.
    Dataset<Row> cached = spark.read().parquet(pairs.toString())
        .selectExpr("id", "x", "y", "CAST(id AS INT) AS n", "CAST(id AS DOUBLE) * 0.5 AS w", "id % 2 = 0 AS even").cache();
    try {
      cached.count();
      cached.createOrReplaceTempView("cached_pairs");
      spark.conf().set(COLUMNAR_OUTPUT, "true");
      String sql = "SELECT id, predict('col_sum', x, y) AS s, n, w, even FROM cached_pairs";
      Run columnar = new Run(spark.sql(sql));
      spark.conf().set(COLUMNAR_OUTPUT, "false");
      Run rowOutput = new Run(spark.sql(sql));
      assertColumnarOutput(columnar.plan);
      assertThat(columnar.plan.toString()).contains("InMemoryTableScan");
      assertThat(columnar.rows).hasSize(ROWS).containsExactlyElementsOf(rowOutput.rows);
      for (Row row : columnar.rows) {
        long i = row.getLong(0);
        assertThat(row.isNullAt(1)).isEqualTo(i % 11 == 0);
        if (i % 11 != 0) {
          assertThat(row.getFloat(1)).isEqualTo((float) i / 4 + (float) (i % 13) - 6);
        }
        assertThat(row.getInt(2)).isEqualTo((int) i);
        assertThat(row.getDouble(3)).isEqualTo(i * 0.5);
        assertThat(row.getBoolean(4)).isEqualTo(i % 2 == 0);
      }
      assertThat(columnar.metrics).isEqualTo(rowOutput.metrics);
    } finally {
      spark.catalog().dropTempView("cached_pairs");
      cached.unpersist(true);
    }
  }

  @Test
  void rowsTheModelCannotTakeGetTheRowPathsNullsAndReasons() {
    spark.conf().set(NESTED_VECTORIZED, "true");
    spark.conf().set("spark.sparkinfer.model.col_mlp.onError", "null");
    Run[] runs = runThreeWays("SELECT id, predict('col_mlp', features) AS scores FROM parquet.`" + bumpy + "`");
    int nulls = 0;
    int bad = 0;
    for (Row row : runs[0].rows) {
      int i = (int) row.getLong(0);
      if (i % 89 == 0) {
        nulls++;
        assertThat(row.isNullAt(1)).isTrue();
      } else if (i % 97 == 5 || i % 101 == 3) {
        bad++;
        assertThat(row.isNullAt(1)).as("row %d", i).isTrue();
      } else {
        assertClose(row.getList(1), reference[i], i);
      }
    }
    assertThat(runs[0].metrics).containsEntry("nullRows", (long) nulls).containsEntry("errorRows", (long) bad);
    assertThat(bad).isGreaterThan(60);

    spark.conf().unset("spark.sparkinfer.model.col_mlp.onError");
    Run[] reported = runThreeWays("SELECT id, predict_with_error('col_mlp', features) AS p FROM parquet.`" + bumpy + "`");
    // The reasons, row indexes included, are the row path's; its values, from other model batches, agree.
    for (int i = 0; i < ROWS; i++) {
      Row columnar = reported[0].rows.get(i).getStruct(1);
      Row rowPath = reported[2].rows.get(i).getStruct(1);
      assertThat(columnar.isNullAt(1) ? null : columnar.getString(1))
          .isEqualTo(rowPath.isNullAt(1) ? null : rowPath.getString(1));
      assertThat(columnar.isNullAt(0)).isEqualTo(rowPath.isNullAt(0));
      if (!columnar.isNullAt(0)) {
        assertClose(columnar.getList(0), reference[i], i);
      }
    }
    Row shortRow = reported[0].rows.get(5);
    assertThat(shortRow.getStruct(1).isNullAt(0)).isTrue();
    assertThat(shortRow.getStruct(1).getString(1))
        .contains("Cannot run model 'col_mlp': input 'features' expects 16 values per row")
        .contains("but a row has 15 values");
    Row nullElement = reported[0].rows.get(3);
    assertThat(nullElement.getStruct(1).getString(1)).contains("contains a null element");
    Row nullRow = reported[0].rows.get(0);
    assertThat(nullRow.getStruct(1).isNullAt(0)).isTrue();
    assertThat(nullRow.getStruct(1).isNullAt(1)).isTrue();
    assertClose(reported[0].rows.get(1).getStruct(1).getList(0), reference[1], 1);
  }

  @Test
  void underFailTheFirstBadRowFailsTheQueryAsOnTheRowPath() {
    spark.conf().set(NESTED_VECTORIZED, "true");
    String sql = "SELECT id, predict('col_mlp', features) FROM parquet.`" + bumpy + "`";
    for (String mode : List.of("true", "false", "rows")) {
      spark.conf().set(COLUMNAR_OUTPUT, String.valueOf(mode.equals("true")));
      spark.conf().set(VECTORIZED, String.valueOf(!mode.equals("rows")));
      // id 3, with a null element, is the first bad row.
      assertThatThrownBy(() -> spark.sql(sql).collect())
          .hasMessageContaining("Cannot run model 'col_mlp': the array for input 'features' contains a null element")
          .hasMessageContaining("(row 3 of partition 0)");
    }
    spark.conf().set(VECTORIZED, "true");
    spark.conf().set(COLUMNAR_OUTPUT, "true");
    Dataset<Row> plannedOnly = spark.sql(sql);
    assertColumnarOutput(plannedOnly.queryExecution().executedPlan());
  }

  @Test
  void adaptiveExecutionKeepsTheColumnarNodeAndItsResults() {
    spark.conf().set(NESTED_VECTORIZED, "true");
    spark.conf().set(ADAPTIVE, "true");
    // A shuffle above the call: adaptive execution plans the stage with the node on its own.
    String sql = "SELECT kind, count(*), sum(predict('col_mlp', features)[0]) FROM parquet.`" + points
        + "` GROUP BY kind ORDER BY kind";
    spark.conf().set(COLUMNAR_OUTPUT, "true");
    Dataset<Row> columnar = spark.sql(sql);
    List<Row> columnarRows = columnar.collectAsList();
    spark.conf().set(COLUMNAR_OUTPUT, "false");
    List<Row> rowRows = spark.sql(sql).collectAsList();
    List<BatchPredictExec> nodes =
        io.github.sparkinfer.spark.plan.BatchPredictNodes.in(columnar.queryExecution().executedPlan());
    assertThat(nodes).hasSize(1);
    assertThat(nodes.get(0).nodeName()).isEqualTo("BatchPredict (columnar input and output)");
    assertThat(columnarRows).hasSize(5).hasSameSizeAs(rowRows);
    for (int kind = 0; kind < 5; kind++) {
      double expected = 0;
      for (int i = kind; i < ROWS; i += 5) {
        if (i % 7 != 0) {
          expected += reference[i][0];
        }
      }
      Row row = columnarRows.get(kind);
      assertThat(row.getString(0)).isEqualTo("k" + kind);
      assertThat(row.getLong(1)).isEqualTo(ROWS / 5).isEqualTo(rowRows.get(kind).getLong(1));
      // Sums in shuffle order: close, not bit for bit.
      assertThat(row.getDouble(2)).isCloseTo(expected, within(1e-3)).isCloseTo(rowRows.get(kind).getDouble(2), within(1e-3));
    }
  }

  private static void assertClose(List<Float> actual, float[] expected, long row) {
    assertThat(actual).as("row %d", row).hasSize(expected.length);
    for (int k = 0; k < expected.length; k++) {
      assertThat(actual.get(k)).as("row %d value %d", row, k).isCloseTo(expected[k], within(1e-6f));
    }
  }
}
