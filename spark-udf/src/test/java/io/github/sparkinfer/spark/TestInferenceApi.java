package io.github.sparkinfer.spark;

import static org.apache.spark.sql.functions.col;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.device.Device;
import io.github.sparkinfer.device.DeviceRunLimiter;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelSource;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vector;
import org.apache.spark.ml.linalg.Vectors;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The DataFrame API, ML vectors, installing into a running session, and the per-executor cache. */
class TestInferenceApi {
  private static final int ROWS = 200;

  @TempDir static Path folder;

  private static SparkSession spark;
  private static Path mlpFile;
  private static float[][] features;
  private static Map<Long, float[]> expected;
  private static Dataset<Row> points;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    mlpFile = TestModels.writeMlp(folder);
    features = TestModels.randomRows(ROWS, TestModels.MLP_INPUTS, 23);
    float[][] reference = TestModels.runFloatModel(mlpFile, "features", features);
    expected = new HashMap<>();
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      expected.put((long) i, reference[i]);
      double[] asDoubles = new double[TestModels.MLP_INPUTS];
      for (int j = 0; j < asDoubles.length; j++) {
        asDoubles[j] = features[i][j];
      }
      // Every third vector is sparse: zeros where the features are negative.
      Vector vector = i % 3 == 0 ? sparse(asDoubles) : Vectors.dense(asDoubles);
      rows.add(RowFactory.create((long) i, TestPredictSql.boxed(features[i]), vector));
    }
    StructType schema = new StructType()
        .add("id", DataTypes.LongType, false)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), false)
        .add("vector", SQLDataTypes.VectorType(), false);
    points = spark.createDataFrame(rows, schema).repartition(5);
    SparkInference.register(spark, ModelSpec.builder("api_mlp").path(mlpFile.toUri().toString()).batchSize(16).build());
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "api_mlp");
  }

  @Test
  void dataFrameApiMatchesDirectOrtAndPlansLikeSql() {
    Dataset<Row> scored = Inference.model("api_mlp").input("features").output("scores").transform(points);
    assertThat(scored.schema().fieldNames()).containsExactly("id", "features", "vector", "scores");
    List<Row> rows = scored.select("id", "scores").collectAsList();
    assertThat(rows).hasSize(ROWS);
    rows.forEach(row -> assertScores(row.getLong(0), row.getList(1), 1e-6f));
    points.createOrReplaceTempView("api_points");
    String sqlPlan = spark.sql("SELECT id, features, vector, predict('api_mlp', features) AS scores FROM api_points")
        .queryExecution().optimizedPlan().treeString();
    String apiPlan = scored.queryExecution().optimizedPlan().treeString();
    assertThat(normalize(apiPlan)).isEqualTo(normalize(sqlPlan));
  }

  @Test
  void namedInputsColumnAndBatchSizeArgument() {
    Dataset<Row> scored = points.select(
        col("id"),
        Inference.model("api_mlp").input("features", col("features")).batchSize(7).toColumn(spark).as("s"));
    List<Row> rows = scored.collectAsList();
    rows.forEach(row -> assertScores(row.getLong(0), row.getList(1), 1e-6f));
    assertThat(TestPredictSql.metric(scored, "batches"))
        .as("200 rows over 5 partitions in batches of at most 7")
        .isGreaterThanOrEqualTo(ROWS / 7);
    assertThatThrownBy(() -> Inference.model("api_mlp").output("nope").toColumn(spark))
        .hasMessageContaining("Model 'api_mlp' has no output 'nope': its outputs are [scores]");
  }

  @Test
  void mlVectorsDenseAndSparseAreFedAsFloatTensors() {
    List<Row> rows = Inference.model("api_mlp").input("vector").as("scores").transform(points)
        .select("id", "scores").collectAsList();
    assertThat(rows).hasSize(ROWS);
    for (Row row : rows) {
      long id = row.getLong(0);
      if (id % 3 == 0) {
        float[] input = features[(int) id].clone();
        for (int j = 0; j < input.length; j++) {
          input[j] = Math.max(input[j], 0f);
        }
        float[] reference = TestPredictSql.ReferenceMlp.MODEL.forward(input);
        List<Float> actual = row.getList(1);
        for (int j = 0; j < reference.length; j++) {
          assertThat(actual.get(j)).isCloseTo(reference[j], within(1e-5f));
        }
      } else {
        assertScores(id, row.getList(1), 1e-6f);
      }
    }
  }

  @Test
  void vectorsFromAVectorizedParquetScan() {
    Path parquet = folder.resolve("vectors.parquet");
    points.write().mode("overwrite").parquet(parquet.toString());
    Dataset<Row> scored = Inference.model("api_mlp").input("vector").as("scores")
        .transform(spark.read().parquet(parquet.toString())).select("id", "scores");
    List<Row> rows = scored.collectAsList();
    assertThat(scored.queryExecution().executedPlan().toString()).contains("BatchPredict (columnar input)");
    assertThat(rows).hasSize(ROWS);
    rows.stream().filter(row -> row.getLong(0) % 3 != 0)
        .forEach(row -> assertScores(row.getLong(0), row.getList(1), 1e-6f));
  }

  @Test
  void installIntoARunningSessionWithoutExtensions() {
    SparkSession plain = SparkTestSessions.withoutExtensions();
    plain.conf().set("spark.sparkinfer.model.api_mlp.path", mlpFile.toUri().toString());
    plain.createDataFrame(List.of(RowFactory.create(3L, TestPredictSql.boxed(features[3]))),
            new StructType().add("id", DataTypes.LongType).add("features",
                DataTypes.createArrayType(DataTypes.FloatType, false)))
        .createOrReplaceTempView("one_point");
    // Without the extensions Spark knows no predict function at all.
    assertThatThrownBy(() -> plain.sql("SELECT predict('api_mlp', features) FROM one_point"))
        .hasMessageContaining("UNRESOLVED_ROUTINE")
        .hasMessageContaining("`predict`");
    assertThatThrownBy(() -> Inference.model("api_mlp").input("features").toColumn(plain))
        .hasMessageContaining("sparkinfer is not installed in this session")
        .hasMessageContaining("SparkInference.install(spark)");
    SparkInference.install(plain);
    SparkInference.install(plain);
    // A local relation, the case Spark's optimizer would otherwise evaluate eagerly.
    List<Row> rows = plain.sql("SELECT id, predict('api_mlp', features) FROM one_point").collectAsList();
    assertThat(rows).hasSize(1);
    assertScores(3L, rows.get(0).getList(1), 1e-6f);
    assertThat(SparkInference.modelInfo(plain, "api_mlp").count()).isEqualTo(2);
    assertThat(SparkInference.registeredModels(plain)).contains("api_mlp");
  }

  @Test
  void deviceSetInTheSessionIsRequestedRecordedAndFallsBackVisibly() {
    // No ORT build can use an NPU from Java (no route to CANN), so this falls back on every build.
    spark.conf().set("spark.sparkinfer.device", "npu:0");
    try {
      Dataset<Row> scored = Inference.model("api_mlp").input("features").output("scores").transform(points)
          .select("id", "scores");
      List<Row> rows = scored.collectAsList();
      rows.forEach(row -> assertScores(row.getLong(0), row.getList(1), 1e-6f));
      List<String> bindings = SparkInference.deviceBindings(scored);
      // One record per task (5 partitions); policy cpu falls back.
      assertThat(bindings).hasSize(5).allSatisfy(record -> assertThat(record)
          .contains("assigned=none").contains("requested=npu:0").contains("bound=cpu")
          .contains("provider=CPUExecutionProvider").doesNotContain("fallback=none"));
      assertThat(TestPredictSql.metric(scored, "fallbackTasks")).isEqualTo(5);

      spark.conf().set("spark.sparkinfer.device.fallback", "fail");
      assertThatThrownBy(() -> Inference.model("api_mlp").input("features").transform(points).collectAsList())
          .hasStackTraceContaining("npu:0")
          .hasStackTraceContaining("CANNExecutionProvider");
    } finally {
      SparkTestSessions.reset("spark.sparkinfer.device");
      spark.conf().unset("spark.sparkinfer.device.fallback");
    }
    Dataset<Row> onCpu = Inference.model("api_mlp").input("features").transform(points).select("id");
    onCpu.collectAsList();
    assertThat(SparkInference.deviceBindings(onCpu)).allSatisfy(record -> assertThat(record)
        .contains("requested=cpu").contains("bound=cpu").contains("fallback=none"));
  }

  /**
   * device.concurrentRuns bounds runs on an accelerator, not on the CPU: with every permit of npu:0
   * held here, tasks that asked for npu:0 and fell back to the CPU still run (TestGpuInference checks
   * that tasks bound to a real GPU wait for its permits). Were a fallback to take the NPU's permits,
   * this would wait until the timeout.
   */
  @Test
  @Timeout(value = 2, unit = java.util.concurrent.TimeUnit.MINUTES)
  void cpuRunsAfterAFallbackTakeNoPermitsOfTheRequestedDevice() throws Exception {
    DeviceRunLimiter limiter = DeviceRunLimiter.shared();
    List<DeviceRunLimiter.Permit> held = new ArrayList<>();
    for (int i = 0; i < limiter.concurrentRuns(); i++) {
      held.add(limiter.acquire(Device.npu(0)));
    }
    spark.conf().set("spark.sparkinfer.device", "npu:0");
    try {
      Dataset<Row> scored = Inference.model("api_mlp").input("features").output("scores").transform(points)
          .select("id", "scores");
      scored.collectAsList().forEach(row -> assertScores(row.getLong(0), row.getList(1), 1e-6f));
      assertThat(SparkInference.deviceBindings(scored)).allSatisfy(record -> assertThat(record).contains("bound=cpu"));
      assertThat(limiter.activeRuns(Device.npu(0))).as("only this test's permits").isEqualTo(limiter.concurrentRuns());
    } finally {
      SparkTestSessions.reset("spark.sparkinfer.device");
      held.forEach(DeviceRunLimiter.Permit::close);
    }
  }

  /**
   * Intra-op threads: the model key over the session key over the task's CPUs (1 in this local
   * session; TestStageResourcesCluster sees 2 for tasks of two CPUs). Each result still matches ORT.
   */
  @Test
  void intraOpThreadsModelKeyOverSessionKeyOverTheTasksCpus() {
    assertThat(spark.sparkContext().getConf().getInt("spark.task.cpus", 1)).isEqualTo(1);
    try {
      assertThat(threadsOfEachTask()).as("0 (default): the task's one CPU").containsOnly("threads=1");
      spark.conf().set("spark.sparkinfer.intraOpThreads", "2");
      spark.conf().set("spark.sparkinfer.model.api_mlp.intraOpThreads", "3");
      assertThat(threadsOfEachTask()).as("model key 3 over session key 2").containsOnly("threads=3");
      spark.conf().unset("spark.sparkinfer.model.api_mlp.intraOpThreads");
      assertThat(threadsOfEachTask()).as("session key 2 over the task's CPUs").containsOnly("threads=2");
    } finally {
      spark.conf().unset("spark.sparkinfer.intraOpThreads");
      spark.conf().unset("spark.sparkinfer.model.api_mlp.intraOpThreads");
    }
  }

  private static List<String> threadsOfEachTask() {
    Dataset<Row> scored = Inference.model("api_mlp").input("features").output("scores").transform(points)
        .select("id", "scores");
    scored.collectAsList().forEach(row -> assertScores(row.getLong(0), row.getList(1), 1e-6f));
    List<String> threads = new ArrayList<>();
    for (String record : SparkInference.deviceBindings(scored)) {
      java.util.regex.Matcher matcher = java.util.regex.Pattern.compile("threads=\\d+").matcher(record);
      assertThat(matcher.find()).as("threads= in %s", record).isTrue();
      threads.add(matcher.group());
    }
    assertThat(threads).as("one record per task").hasSize(5);
    return threads;
  }

  @Test
  void manyTasksOnOneExecutorLoadTheModelOnce() throws Exception {
    Path file = folder.resolve("once.onnx");
    TestModels.mlp().writeTo(file);
    ModelSource source = ModelSource.of("once", file.toUri().toString());
    SparkInference.register(spark, ModelSpec.builder("once").path(file.toUri().toString()).batchSize(4).build());
    try {
      long before = ModelCache.shared().loadCount(source);
      long rows = Inference.model("once").input("features").transform(points.repartition(32))
          .selectExpr("once[0]").filter("once[0] IS NOT NULL").count();
      assertThat(rows).isEqualTo(ROWS);
      // 32 tasks on local[4]'s one executor, the driver's signature read included: one load.
      assertThat(ModelCache.shared().loadCount(source) - before).isEqualTo(1);
      assertThat(before).isZero();
    } finally {
      SparkInference.unregister(spark, "once");
    }
  }

  @Test
  void unregisterRemovesEveryKeyOfTheModelAndNoOtherModels() {
    SparkInference.register(spark, ModelSpec.builder("gone").path(mlpFile.toUri().toString()).batchSize(8).build());
    SparkInference.register(spark, ModelSpec.builder("gone_too").path(mlpFile.toUri().toString()).build());
    for (String key : List.of("tokenizer", "tokenBudget", "precision", "int8Scheme", "stage.task.cpus")) {
      spark.conf().set("spark.sparkinfer.model.gone." + key, "x");
    }
    try {
      SparkInference.unregister(spark, "gone");
      assertThat(JavaCollections.asJava(spark.conf().getAll()).keySet())
          .noneMatch(key -> key.startsWith("spark.sparkinfer.model.gone."))
          .contains("spark.sparkinfer.model.gone_too.path");
      assertThat(SparkInference.registeredModels(spark)).doesNotContain("gone").contains("gone_too");
    } finally {
      SparkInference.unregister(spark, "gone");
      SparkInference.unregister(spark, "gone_too");
    }
  }

  private static Vector sparse(double[] values) {
    List<Integer> indices = new ArrayList<>();
    List<Double> kept = new ArrayList<>();
    for (int j = 0; j < values.length; j++) {
      if (values[j] > 0) {
        indices.add(j);
        kept.add(values[j]);
      }
    }
    return Vectors.sparse(values.length, indices.stream().mapToInt(Integer::intValue).toArray(),
        kept.stream().mapToDouble(Double::doubleValue).toArray());
  }

  private static void assertScores(long id, List<Float> actual, float tolerance) {
    float[] reference = expected.get(id);
    assertThat(actual).hasSize(reference.length);
    for (int i = 0; i < reference.length; i++) {
      assertThat(actual.get(i)).as("score %d of row %d", i, id).isCloseTo(reference[i], within(tolerance));
    }
  }

  /** Expression ids differ between two analyses of the same query. */
  private static String normalize(String plan) {
    return plan.replaceAll("#\\d+L?", "#n").replaceAll("AS \\w+#n", "AS alias#n");
  }
}
