package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** predict() through Spark SQL on a real local Spark, checked against direct ONNX Runtime calls. */
class TestPredictSql {
  private static final int ROWS = 300;

  @TempDir static Path folder;

  private static SparkSession spark;
  private static Path mlpFile;
  private static float[][] features;
  private static Map<Long, float[]> expected;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    mlpFile = TestModels.writeMlp(folder);
    features = TestModels.randomRows(ROWS, TestModels.MLP_INPUTS, 11);
    float[][] reference = TestModels.runFloatModel(mlpFile, "features", features);
    expected = new HashMap<>();
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      expected.put((long) i, reference[i]);
      rows.add(RowFactory.create((long) i, i % 3 == 0 ? "even" : "odd", boxed(features[i])));
    }
    StructType schema = new StructType()
        .add("id", DataTypes.LongType, false)
        .add("kind", DataTypes.StringType, false)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), true);
    spark.createDataFrame(rows, schema).repartition(7).createOrReplaceTempView("points");
    spark.sql("SET spark.sparkinfer.model.mlp.path=" + mlpFile.toUri());
    spark.sql("SET spark.sparkinfer.model.mlp.batchSize=32");
  }

  @AfterAll
  static void tearDown() {
    spark.catalog().dropTempView("points");
    SparkInference.unregister(spark, "mlp");
  }

  @Test
  void predictEqualsDirectOrtCall() {
    Dataset<Row> result = spark.sql("SELECT id, predict('mlp', features) AS scores FROM points");
    assertThat(result.schema().apply("scores").dataType())
        .isEqualTo(DataTypes.createArrayType(DataTypes.FloatType, false));
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(ROWS);
    for (Row row : rows) {
      assertScores(row.getLong(0), row.getList(1));
    }
  }

  @Test
  void predictIsPlannedAsOneBatchNodeAfterFilterPushdown() {
    Path parquet = folder.resolve("points.parquet");
    spark.table("points").write().mode("overwrite").parquet(parquet.toString());
    Dataset<Row> result = spark.sql(
        "SELECT * FROM (SELECT id, kind, predict('mlp', features) AS scores FROM parquet.`" + parquet
            + "`) WHERE id < 10");
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(10);
    rows.forEach(row -> assertScores(row.getLong(0), row.getList(2)));
    String plan = result.queryExecution().executedPlan().toString();
    assertThat(plan).contains("BatchPredict predict(mlp, ");
    // The filter on id sits below the model call: the model sees 10 rows, not 300.
    assertThat(plan.indexOf("Filter")).isGreaterThan(plan.indexOf("BatchPredict predict(mlp, "));
    assertThat(metric(result, "modelRows")).isEqualTo(10);
    assertThat(metric(result, "batches")).isGreaterThanOrEqualTo(1);
    double[] latency = SparkInference.batchLatency(result);
    assertThat(latency[0]).as("batches timed").isEqualTo(metric(result, "batches"));
    assertThat(latency[2]).as("p99 ms").isGreaterThanOrEqualTo(latency[1]).isPositive();
    // The features only feed the model, so the node neither holds nor outputs them.
    String nodeOutput = result.queryExecution().executedPlan()
        .find(node -> node instanceof io.github.sparkinfer.spark.plan.BatchPredictExec).get()
        .output().toString();
    assertThat(nodeOutput).contains("id#").contains("kind#").contains("predict_mlp#").doesNotContain("features#");
  }

  @Test
  void vectorizedParquetScanIsReadColumnarWithoutRowConversion() {
    Path parquet = folder.resolve("points-with-nulls.parquet");
    spark.sql("SELECT id, kind, CASE WHEN id % 7 = 0 THEN NULL ELSE features END AS features FROM points")
        .coalesce(2).write().mode("overwrite").parquet(parquet.toString());
    Dataset<Row> result = spark.sql(
        "SELECT id, predict('mlp', features) AS scores, kind FROM parquet.`" + parquet + "`");
    List<Row> rows = result.collectAsList();
    String plan = result.queryExecution().executedPlan().toString();
    assertThat(plan).contains("BatchPredict (columnar input)").doesNotContain("ColumnarToRow");
    assertThat(rows).hasSize(ROWS);
    for (Row row : rows) {
      long id = row.getLong(0);
      if (id % 7 == 0) {
        assertThat(row.isNullAt(1)).isTrue();
      } else {
        assertScores(id, row.getList(1));
      }
      assertThat(row.getString(2)).isEqualTo(id % 3 == 0 ? "even" : "odd");
    }
    // Several model batches of 32 within each columnar batch.
    assertThat(metric(result, "batches")).isGreaterThanOrEqualTo((ROWS - ROWS / 7) / 32);
    assertThat(metric(result, "nullRows")).isEqualTo(ROWS / 7 + 1);
  }

  static long metric(Dataset<Row> executed, String name) {
    org.apache.spark.sql.execution.SparkPlan node = executed.queryExecution().executedPlan()
        .find(plan -> plan instanceof io.github.sparkinfer.spark.plan.BatchPredictExec)
        .get();
    return (Long) node.metrics().apply(name).value();
  }

  @Test
  void vectorizedOrcScanIsReadColumnarWithoutRowConversion() {
    Path orc = folder.resolve("points-with-nulls.orc");
    spark.sql("SELECT id, kind, CASE WHEN id % 7 = 0 THEN NULL ELSE features END AS features FROM points")
        .coalesce(2).write().mode("overwrite").orc(orc.toString());
    Dataset<Row> result = spark.sql("SELECT id, predict('mlp', features) AS scores FROM orc.`" + orc + "`");
    List<Row> rows = result.collectAsList();
    String plan = result.queryExecution().executedPlan().toString();
    assertThat(plan).contains("BatchPredict (columnar input)").contains("FileScan orc").doesNotContain("ColumnarToRow");
    assertThat(rows).hasSize(ROWS);
    for (Row row : rows) {
      long id = row.getLong(0);
      if (id % 7 == 0) {
        assertThat(row.isNullAt(1)).isTrue();
      } else {
        assertScores(id, row.getList(1));
      }
    }
    assertThat(metric(result, "numOutputRows")).isEqualTo(ROWS);
    assertThat(metric(result, "nullRows")).isEqualTo(ROWS / 7 + 1);
    assertThat(metric(result, "modelRows")).isEqualTo(ROWS - ROWS / 7 - 1);
    // A timing metric: only that the model's run time was recorded at all (nanoseconds).
    assertThat(metric(result, "modelTime")).isPositive();
  }

  @Test
  void referenceInWhereOrderByAggregateJoinAndCte() {
    List<Row> filtered = spark.sql(
            "SELECT id FROM points WHERE predict('mlp', features)[0] > 0 ORDER BY predict('mlp', features)[1] DESC")
        .collectAsList();
    List<Long> expectedIds = new ArrayList<>();
    expected.entrySet().stream()
        .filter(entry -> entry.getValue()[0] > 0)
        .sorted((left, right) -> Float.compare(right.getValue()[1], left.getValue()[1]))
        .forEach(entry -> expectedIds.add(entry.getKey()));
    assertThat(filtered).extracting(row -> row.getLong(0)).containsExactlyElementsOf(expectedIds);

    Row aggregated = spark.sql(
            "SELECT count(*), sum(predict('mlp', features)[0]), max(predict('mlp', features)[3]) FROM points")
        .first();
    double sum = expected.values().stream().mapToDouble(scores -> scores[0]).sum();
    double max = expected.values().stream().mapToDouble(scores -> scores[3]).max().orElseThrow();
    assertThat(aggregated.getLong(0)).isEqualTo(ROWS);
    assertThat(aggregated.getDouble(1)).isCloseTo(sum, within(1e-3));
    assertThat((double) aggregated.getFloat(2)).isCloseTo(max, within(1e-6));

    List<Row> grouped = spark.sql(
            "SELECT kind, count(*) AS n, predict('mlp', array_repeat(CAST(count(*) AS FLOAT), 16))[0] AS on_count"
                + " FROM points GROUP BY kind ORDER BY kind")
        .collectAsList();
    assertThat(grouped).hasSize(2);
    for (Row row : grouped) {
      float[] input = new float[TestModels.MLP_INPUTS];
      java.util.Arrays.fill(input, (float) row.getLong(1));
      assertThat(row.getFloat(2)).isCloseTo(ReferenceMlp.MODEL.forward(input)[0], within(1e-4f));
    }

    List<Row> joined = spark.sql(
            "WITH scored AS (SELECT id, predict('mlp', features) AS scores FROM points),"
                + " best AS (SELECT id FROM points WHERE predict('mlp', features)[2] > 0.1)"
                + " SELECT s.id, s.scores FROM scored s JOIN best b ON s.id = b.id"
                + " AND predict('mlp', array_repeat(CAST(s.id AS FLOAT), 16))[0] IS NOT NULL")
        .collectAsList();
    long expectedJoined = expected.values().stream().filter(scores -> scores[2] > 0.1f).count();
    assertThat(joined).hasSize((int) expectedJoined);
    joined.forEach(row -> assertScores(row.getLong(0), row.getList(1)));
  }

  @Test
  void sameCallInWhereSelectOrderByAndGroupByRunsTheModelOncePerRow() {
    Dataset<Row> whereAndSelect = spark.sql(
        "SELECT id, predict('mlp', features) AS scores FROM points WHERE predict('mlp', features)[0] > 0");
    List<Row> kept = whereAndSelect.collectAsList();
    assertThat(kept).hasSize((int) expected.values().stream().filter(scores -> scores[0] > 0).count());
    kept.forEach(row -> assertScores(row.getLong(0), row.getList(1)));
    assertOneCallPerRow(whereAndSelect);

    Dataset<Row> orderBy = spark.sql(
        "SELECT id, predict('mlp', features) AS scores FROM points ORDER BY predict('mlp', features)[1], id");
    List<Long> expectedOrder = new ArrayList<>();
    expected.entrySet().stream()
        .sorted((left, right) -> Float.compare(left.getValue()[1], right.getValue()[1]))
        .forEach(entry -> expectedOrder.add(entry.getKey()));
    List<Row> sorted = orderBy.collectAsList();
    assertThat(sorted).extracting(row -> row.getLong(0)).containsExactlyElementsOf(expectedOrder);
    sorted.forEach(row -> assertScores(row.getLong(0), row.getList(1)));
    assertOneCallPerRow(orderBy);
    // Adaptive execution plans the sort's exchanges stage by stage: still one call per row.
    spark.conf().set("spark.sql.adaptive.enabled", "true");
    try {
      Dataset<Row> adaptive = spark.sql(
          "SELECT id, predict('mlp', features) AS scores FROM points ORDER BY predict('mlp', features)[1], id");
      assertThat(adaptive.collectAsList()).extracting(row -> row.getLong(0)).containsExactlyElementsOf(expectedOrder);
      assertThat(adaptiveModelRows(adaptive)).isEqualTo(ROWS);
    } finally {
      spark.conf().set("spark.sql.adaptive.enabled", "false");
    }

    Dataset<Row> groupBy = spark.sql(
        "SELECT predict('mlp', features)[0] > 0 AS positive, count(*) AS n FROM points"
            + " WHERE predict('mlp', features)[3] > -100 GROUP BY predict('mlp', features)[0] > 0 ORDER BY positive");
    long positives = expected.values().stream().filter(scores -> scores[0] > 0).count();
    assertThat(groupBy.collectAsList()).extracting(row -> row.getBoolean(0) + "=" + row.getLong(1))
        .containsExactly("false=" + (ROWS - positives), "true=" + positives);
    assertOneCallPerRow(groupBy);
  }

  private static long adaptiveModelRows(Dataset<Row> executed) {
    List<io.github.sparkinfer.spark.plan.BatchPredictExec> nodes =
        io.github.sparkinfer.spark.plan.BatchPredictNodes.in(executed.queryExecution().executedPlan());
    assertThat(nodes).hasSize(1);
    return (Long) nodes.get(0).metrics().apply("modelRows").value();
  }

  /** One BatchPredict in the executed plan, and it ran the model once for each of the table's rows. */
  private static void assertOneCallPerRow(Dataset<Row> executed) {
    assertThat(io.github.sparkinfer.spark.plan.BatchPredictNodes.in(executed.queryExecution().executedPlan()))
        .as("model calls in %s", executed.queryExecution().executedPlan()).hasSize(1);
    assertThat(metric(executed, "modelRows")).isEqualTo(ROWS);
  }

  @Test
  void twoModelsAndNestedCallsInOneQuery() throws Exception {
    Path second = folder.resolve("second.onnx");
    MultilayerPerceptronModel secondModel = MultilayerPerceptronModel.builder()
        .layerSizes(TestModels.MLP_OUTPUTS, 8, 2).seed(99).inputName("x").outputName("y").build();
    secondModel.writeTo(second);
    spark.sql("SET spark.sparkinfer.model.second.path=" + second.toUri());
    try {
      List<Row> rows = spark.sql(
              "SELECT id, predict('mlp', features) AS first, predict('second', predict('mlp', features)) AS chained"
                  + " FROM points")
          .collectAsList();
      assertThat(rows).hasSize(ROWS);
      String plan = spark.sql(
              "SELECT predict('second', predict('mlp', features)) FROM points")
          .queryExecution().executedPlan().toString();
      // One node per model call: the shared inner call runs once.
      assertThat(plan.split("BatchPredict predict", -1)).hasSize(3);
      for (Row row : rows) {
        float[] first = assertScores(row.getLong(0), row.getList(1));
        float[] chained = secondModel.forward(first);
        List<Float> actual = row.getList(2);
        for (int i = 0; i < chained.length; i++) {
          assertThat(actual.get(i)).isCloseTo(chained[i], within(1e-5f));
        }
      }
    } finally {
      SparkInference.unregister(spark, "second");
    }
  }

  @Test
  void nullInputGivesNullWithoutAModelCall() {
    List<Row> rows = spark.sql(
            "SELECT id, predict('mlp', CASE WHEN id % 10 = 0 THEN NULL ELSE features END) AS scores FROM points")
        .collectAsList();
    assertThat(rows).hasSize(ROWS);
    for (Row row : rows) {
      if (row.getLong(0) % 10 == 0) {
        assertThat(row.isNullAt(1)).isTrue();
      } else {
        assertScores(row.getLong(0), row.getList(1));
      }
    }
  }

  @Test
  void structArgumentMapsFieldsToInputsByName() {
    List<Row> rows = spark.sql(
            "SELECT id, predict('mlp', named_struct('features', features)) FROM points")
        .collectAsList();
    assertThat(rows).hasSize(ROWS);
    rows.forEach(row -> assertScores(row.getLong(0), row.getList(1)));
  }

  @Test
  void multipleInputsAndOutputsGiveAStruct() throws Exception {
    Path multi = TestModels.writeMultiIo(folder);
    spark.sql("SET spark.sparkinfer.model.multi.path=" + multi.toUri());
    try {
      Dataset<Row> result = spark.sql(
          "SELECT id, predict('multi', CAST(id AS DOUBLE), array(1.5D, CAST(id AS DOUBLE), -2D)) AS out"
              + " FROM range(0, 50)");
      StructType type = (StructType) result.schema().apply("out").dataType();
      assertThat(type.fieldNames()).containsExactly("total", "total_id", "grid");
      assertThat(type.apply("total").dataType()).isEqualTo(DataTypes.FloatType);
      assertThat(type.apply("total_id").dataType()).isEqualTo(DataTypes.LongType);
      assertThat(type.apply("grid").dataType()).isEqualTo(
          DataTypes.createArrayType(DataTypes.createArrayType(DataTypes.FloatType, false), false));
      for (Row row : result.collectAsList()) {
        long id = row.getLong(0);
        Row out = row.getStruct(1);
        assertThat(out.getFloat(0)).isEqualTo(id + 1.5f + id - 2f);
        assertThat(out.getLong(1)).isEqualTo((long) (id + 1.5f + id - 2f));
        List<scala.collection.Seq<Float>> grid = out.getList(2);
        assertThat(grid).hasSize(3);
        assertThat(JavaCollections.asJava(grid.get(0))).containsExactly(3f);
        assertThat(JavaCollections.asJava(grid.get(1))).containsExactly(2f * id);
        assertThat(JavaCollections.asJava(grid.get(2))).containsExactly(-4f);
      }
      // Selecting one output returns that output's column.
      spark.sql("SET spark.sparkinfer.model.multi.outputs=total_id");
      Dataset<Row> one = spark.sql("SELECT predict('multi', 1, array(1, 2, 3)) AS out");
      assertThat(one.schema().apply("out").dataType()).isEqualTo(DataTypes.LongType);
      assertThat(one.first().getLong(0)).isEqualTo(7L);
    } finally {
      SparkInference.unregister(spark, "multi");
    }
  }

  /**
   * Each rule with the level below it set too, so each one is seen to win: the argument over the
   * model key, the model key over the session key, the session key over the default.
   */
  @Test
  void batchSizePrecedenceArgumentThenModelKeyThenSessionKeyThenDefault() {
    String query = "SELECT predict('mlp', array_repeat(CAST(id AS FLOAT), 16)) AS s FROM range(0, 100, 1, 1)";
    // 100 rows in one partition: batches = ceil(100 / batch size).
    spark.conf().set("spark.sparkinfer.batchSize", "50");
    try {
      Dataset<Row> perModel = spark.sql(query);
      perModel.collectAsList();
      assertThat(metric(perModel, "batches")).as("model key 32 over session key 50: 32+32+32+4").isEqualTo(4);
      Dataset<Row> argument = spark.range(0, 100, 1, 1).select(
          Inference.model("mlp").input(org.apache.spark.sql.functions.array_repeat(
                  org.apache.spark.sql.functions.col("id").cast("float"), 16))
              .batchSize(10).toColumn(spark));
      argument.collectAsList();
      assertThat(metric(argument, "batches")).as("argument 10 over model key 32 and session key 50").isEqualTo(10);
      spark.conf().unset("spark.sparkinfer.model.mlp.batchSize");
      Dataset<Row> sessionWide = spark.sql(query);
      sessionWide.collectAsList();
      assertThat(metric(sessionWide, "batches")).as("session key 50 over the default").isEqualTo(2);
      spark.conf().unset("spark.sparkinfer.batchSize");
      Dataset<Row> defaults = spark.sql(query);
      defaults.collectAsList();
      assertThat(metric(defaults, "batches")).as("default 1024").isEqualTo(1);
      spark.conf().set("spark.sparkinfer.model.mlp.batchSize", "zero");
      assertThatThrownBy(() -> spark.sql(query))
          .hasMessageContaining("Invalid value 'zero' for spark.sparkinfer.model.mlp.batchSize (model 'mlp')");
    } finally {
      spark.conf().unset("spark.sparkinfer.batchSize");
      spark.sql("SET spark.sparkinfer.model.mlp.batchSize=32");
    }
  }

  /**
   * One registry of functions: what the session installs is what DESCRIBE FUNCTION describes and what
   * docs/sql-functions.md documents, no more and no less (a heading per function, "## `name(...)`").
   */
  @Test
  void everyRegisteredFunctionIsInstalledDescribedAndDocumented() throws Exception {
    List<String> registered = io.github.sparkinfer.spark.sql.SqlFunctions.functionNames();
    java.util.Set<String> documented = new java.util.TreeSet<>();
    java.util.regex.Pattern named = java.util.regex.Pattern.compile("`(\\w+)\\(");
    for (String line : Files.readAllLines(Path.of("..", "docs", "sql-functions.md"))) {
      if (line.startsWith("## ")) {
        java.util.regex.Matcher matcher = named.matcher(line);
        while (matcher.find()) {
          documented.add(matcher.group(1));
        }
      }
    }
    assertThat(documented).as("functions in docs/sql-functions.md").containsExactlyInAnyOrderElementsOf(registered);
    for (String function : registered) {
      assertThat(spark.sql("DESCRIBE FUNCTION " + function).collectAsList().toString()).as("DESCRIBE FUNCTION %s", function)
          .contains("Function: " + function).contains(function + "(");
    }
  }

  @Test
  void describeFunctionAndModelInfo() {
    String usage = spark.sql("DESCRIBE FUNCTION predict").collectAsList().toString();
    assertThat(usage).contains("predict(model, input1[, input2, ...])").contains("Runs the registered ONNX model")
        .doesNotContain("Examples:");
    // EXTENDED adds the arguments and examples, with the function's own name filled in.
    String extended = spark.sql("DESCRIBE FUNCTION EXTENDED predict").collectAsList().toString();
    assertThat(extended).contains("Function: predict").contains("Class: io.github.sparkinfer.spark.sql.PredictExpression")
        .contains("model - name of a model registered with SET spark.sparkinfer.model.<name>.path=<URI>")
        .contains("SELECT id, predict('mlp', features) AS scores FROM t;");
    Map<String, String> usages = Map.of(
        "embed", "embed(model, text) - The embedding of each text",
        "tokenize", "tokenize(model, text) - The registered text model's tokenizer",
        "compare_outputs", "compare_outputs(a, b) - How close two outputs of one row are",
        "model_info", "model_info(model) - One row per input and output");
    usages.forEach((function, usageLine) -> assertThat(
            spark.sql("DESCRIBE FUNCTION " + function).collectAsList().toString())
        .as("DESCRIBE FUNCTION %s", function).contains("Function: " + function).contains(usageLine));
    List<Row> info = spark.sql("SELECT kind, position, name, element_type, shape, spark_type FROM model_info('mlp')")
        .collectAsList();
    assertThat(info).extracting(Row::toString).containsExactly(
        "[input,0,features,float,[batch, 16],array<numeric> of 16 or vector]",
        "[output,0,scores,float,[batch, 4],array<float>]");
  }

  @Test
  void unknownModelListsRegisteredModels() {
    assertThatThrownBy(() -> spark.sql("SELECT predict('nope', features) FROM points"))
        .isInstanceOf(org.apache.spark.sql.AnalysisException.class)
        .hasMessageContaining("Unknown model 'nope'")
        .hasMessageContaining("registered models: [")
        .hasMessageContaining("mlp")
        .hasMessageContaining("SET spark.sparkinfer.model.nope.path=");
  }

  @Test
  void wrongArityOrTypeFailsAtAnalysis() {
    assertThatThrownBy(() -> spark.sql("SELECT predict('mlp', features, features) FROM points"))
        .isInstanceOf(org.apache.spark.sql.AnalysisException.class)
        .hasMessageContaining("Cannot call model 'mlp' with 2 argument(s)")
        .hasMessageContaining("features float[batch, 16]");
    assertThatThrownBy(() -> spark.sql("SELECT predict('mlp', kind) FROM points"))
        .isInstanceOf(org.apache.spark.sql.AnalysisException.class)
        .hasMessageContaining("model 'mlp' input 'features'")
        .hasMessageContaining("float tensor of shape [batch, 16]")
        .hasMessageContaining("not numeric");
    assertThatThrownBy(() -> spark.sql("SELECT predict('mlp', id) FROM points"))
        .isInstanceOf(org.apache.spark.sql.AnalysisException.class)
        .hasMessageContaining("a scalar column gives one value per row, but the input takes 16 values per row");
    assertThatThrownBy(() -> spark.sql("SELECT predict(kind, features) FROM points"))
        .isInstanceOf(org.apache.spark.sql.AnalysisException.class)
        .hasMessageContaining("takes the model name as its first argument, a string literal");
  }

  @Test
  void wrongArrayLengthAtRuntimeNamesModelInputAndLengths() {
    assertThatThrownBy(() -> spark.sql("SELECT predict('mlp', slice(features, 1, 15)) FROM points").collectAsList())
        .hasStackTraceContaining("Cannot run model 'mlp': input 'features' expects 16 values per row")
        .hasStackTraceContaining("but a row has 15 values");
  }

  @Test
  void missingOrCorruptModelFileNamesTheUri() throws Exception {
    Path missing = folder.resolve("missing.onnx");
    spark.sql("SET spark.sparkinfer.model.gone.path=" + missing.toUri());
    Path corrupt = folder.resolve("corrupt.onnx");
    Files.write(corrupt, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
    spark.sql("SET spark.sparkinfer.model.broken.path=" + corrupt.toUri());
    try {
      assertThatThrownBy(() -> spark.sql("SELECT predict('gone', features) FROM points"))
          .isInstanceOf(org.apache.spark.sql.AnalysisException.class)
          .hasMessageContaining("Cannot load model 'gone' from " + missing.toUri().toString())
          .hasMessageContaining("file not found");
      assertThatThrownBy(() -> spark.sql("SELECT predict('broken', features) FROM points"))
          .isInstanceOf(org.apache.spark.sql.AnalysisException.class)
          .hasMessageContaining("Cannot load model 'broken'")
          .hasMessageContaining("could not read it as an ONNX model");
    } finally {
      SparkInference.unregister(spark, "gone");
      SparkInference.unregister(spark, "broken");
    }
  }

  @Test
  void adaptiveExecutionAndEmptyPartitions() {
    spark.conf().set("spark.sql.adaptive.enabled", "true");
    try {
      List<Row> rows = spark.sql(
              "SELECT id, predict('mlp', features) FROM (SELECT * FROM points DISTRIBUTE BY id) WHERE id >= 290")
          .collectAsList();
      assertThat(rows).hasSize(10);
      rows.forEach(row -> assertScores(row.getLong(0), row.getList(1)));
    } finally {
      spark.conf().set("spark.sql.adaptive.enabled", "false");
    }
  }

  private static float[] assertScores(long id, List<Float> actual) {
    float[] reference = expected.get(id);
    assertThat(actual).as("scores of row %d", id).hasSize(reference.length);
    float[] values = new float[actual.size()];
    for (int i = 0; i < reference.length; i++) {
      values[i] = actual.get(i);
      assertThat(values[i]).as("score %d of row %d", i, id).isCloseTo(reference[i], within(1e-6f));
    }
    return values;
  }

  static List<Float> boxed(float[] values) {
    List<Float> list = new ArrayList<>(values.length);
    for (float value : values) {
      list.add(value);
    }
    return list;
  }

  /** The MLP's own Java forward pass, for values computed from aggregates. */

  static final class ReferenceMlp {
    static final MultilayerPerceptronModel MODEL = TestModels.mlp();
  }
}
