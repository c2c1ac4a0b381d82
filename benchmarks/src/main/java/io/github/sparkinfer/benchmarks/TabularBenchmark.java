package io.github.sparkinfer.benchmarks;

import static org.apache.spark.sql.functions.col;

import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.device.SessionSettings;
import io.github.sparkinfer.spark.Inference;
import io.github.sparkinfer.spark.ModelSpec;
import io.github.sparkinfer.spark.SparkInference;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.LongStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.types.DataTypes;

/**
 * Rows per second of one tabular model four ways, in one JVM on the same model, input and cores:
 *
 * <ol type="a">
 *   <li>raw ONNX Runtime over pre-built batches: the ceiling;
 *   <li>a careful row-at-a-time Spark UDF, one {@code session.run} per row;
 *   <li>sparkinfer's SQL {@code predict()};
 *   <li>sparkinfer's DataFrame API.
 * </ol>
 *
 * <p>The model is an MLP 64-256-256-16 with ReLU. The input is written once as Parquet, read back,
 * repartitioned and cached before any timing, so the Spark variants read identical in-memory rows.
 * Each Spark variant writes to the {@code noop} sink, which makes Spark compute every output value
 * without storing it. Every variant is checked against {@link MultilayerPerceptronModel#forward}
 * before it is timed, gets an untimed warm-up, and is then timed {@code --repeat} times; the best
 * run counts, because on a shared machine interference only ever slows a run down.
 */
public final class TabularBenchmark {
  static final String HEADING = "## Tabular MLP";
  static final int[] LAYER_SIZES = {64, 256, 256, 16};
  static final long MODEL_SEED = 42;
  static final String MODEL_NAME = "mlp";
  static final String UDF_NAME = "mlp_udf";
  static final double TOLERANCE = 1e-5;
  static final double CEILING_TARGET = 0.8;
  static final double UDF_TARGET = 5.0;

  static final int WARM_UP_ROWS = 50_000;
  private static final int CHECKED_ROWS = 10;

  static final String USAGE =
      String.join(
          "\n",
          "Usage: TabularBenchmark [--rows N] [--cores N] [--batch-size N] [--repeat N]",
          "                        [--udf-rows N] [--partitions N] [--work-dir <folder>]"
              + " [--results <RESULTS.md>] [--note <text>]",
          "",
          "  --rows        rows of 64 float features (default 1000000)",
          "  --cores       local[N] and ONNX Runtime threads of the raw ORT ceiling"
              + " (default: available processors)",
          "  --batch-size  rows per model call, for raw ORT and predict() (default 1024)",
          "  --repeat      timed runs per variant; the best counts (default 3)",
          "  --udf-rows    rows the row-at-a-time UDF is timed on, a prefix of the input"
              + " (default: all rows)",
          "  --partitions  partitions of the cached input (default 2 x cores)",
          "  --work-dir    folder for the generated model and Parquet input (default: a"
              + " temporary folder)",
          "  --results     Markdown file whose '## Tabular MLP' section is replaced (default:"
              + " none, print only)",
          "  --note        text to put in the results, such as how this run differs from usual");

  private TabularBenchmark() {}

  public static void main(String[] args) throws Exception {
    BenchmarkArguments.main(args, USAGE, 1_000_000, 1024, 0, TabularBenchmark::run);
  }

  static void run(BenchmarkArguments arguments, Path folder) throws Exception {
    String startLoad = RunEnvironment.loadAverage();
    MultilayerPerceptronModel model =
        MultilayerPerceptronModel.builder()
            .layerSizes(LAYER_SIZES)
            .seed(MODEL_SEED)
            .inputName("features")
            .outputName("scores")
            .build();
    Path modelFile = folder.resolve("mlp.onnx");
    model.writeTo(modelFile);
    String modelUri = modelFile.toUri().toString();

    int cores = arguments.cores();
    SparkSession spark = LocalSpark.session("sparkinfer TabularBenchmark", cores);
    try {
      TabularReport report = new TabularReport(arguments, spark.version(), startLoad);
      benchmark(spark, arguments, model, modelUri, folder, report);
      report.endLoad = RunEnvironment.loadAverage();
      String markdown = report.toMarkdown();
      System.out.println();
      System.out.println(markdown);
      if (arguments.results() != null) {
        ResultsFile.replaceSection(arguments.results(), HEADING, markdown);
        System.out.println("Wrote the '" + HEADING + "' section of " + arguments.results());
      }
    } finally {
      spark.stop();
    }
  }

  private static void benchmark(
      SparkSession spark,
      BenchmarkArguments arguments,
      MultilayerPerceptronModel model,
      String modelUri,
      Path folder,
      TabularReport report)
      throws Exception {
    int rows = arguments.rows();
    int cores = arguments.cores();
    int batchSize = arguments.batchSize();

    // Input, materialized before any timing.
    long start = System.nanoTime();
    String inputPath = folder.resolve("tabular-input.parquet").toUri().toString();
    TabularData.generate(spark, rows, arguments.partitions())
        .write()
        .mode(SaveMode.Overwrite)
        .parquet(inputPath);
    Dataset<Row> input = spark.read().parquet(inputPath).repartition(arguments.partitions()).cache();
    long cached = input.count();
    if (cached != rows) {
      throw new IllegalStateException(
          "The cached input has " + cached + " rows, expected " + rows + ": " + inputPath
              + " was not written completely; delete it and run again");
    }
    input.createOrReplaceTempView("input");
    RunEnvironment.log("Wrote, read back and cached %,d rows in %d partitions (%s) in %.1f s", rows,
        arguments.partitions(), inputPath, RunEnvironment.seconds(System.nanoTime() - start));

    SparkInference.register(
        spark, ModelSpec.builder(MODEL_NAME).path(modelUri).batchSize(batchSize).build());
    spark.udf().register(
        UDF_NAME,
        new RowAtATimeUdf(MODEL_NAME, modelUri, model.inputName(), model.outputName(),
            model.inputSize(), model.outputSize()),
        DataTypes.createArrayType(DataTypes.FloatType, false));

    // (a)'s session: the same settings as sparkinfer's, with all the cores in one session.
    OrtCeiling ceiling =
        new OrtCeiling(
            ModelCache.shared()
                .acquire(
                    ModelSource.of(MODEL_NAME, modelUri),
                    SessionSettings.builder().intraOpThreads(cores).build(),
                    new Configuration())
                .session(),
            model.inputName(),
            model.outputName(),
            model.outputSize(),
            rows,
            batchSize);
    report.ortVersion = OrtEnvironments.get().getVersion();

    int udfRows = arguments.udfRows();
    long warmUpRows = Math.min(rows, WARM_UP_ROWS);
    Map<String, Supplier<Dataset<Row>>> queries = new LinkedHashMap<>();
    queries.put("b", () -> spark.sql(
        "SELECT id, " + UDF_NAME + "(features) AS scores FROM input"
            + (udfRows < rows ? " WHERE id < " + udfRows : "")));
    queries.put("c", () -> spark.sql(
        "SELECT id, predict('" + MODEL_NAME + "', features) AS scores FROM input"));
    queries.put("d", () -> Inference.model(MODEL_NAME).input("features").output("scores")
        .transform(input.select("id", "features"))
        .select("id", "scores"));

    // Correctness first: a fast wrong answer is not a result.
    ceiling.runAll();
    long[] checkedIds = checkedIds(rows);
    report.maxDifference.put("a", check("a", model, checkedIds, id -> ceiling.scores(id)));
    for (Map.Entry<String, Supplier<Dataset<Row>>> query : queries.entrySet()) {
      Map<Long, float[]> results = QueryRunner.collect(query.getValue().get(), checkedIds);
      report.maxDifference.put(query.getKey(),
          check(query.getKey(), model, checkedIds, id -> results.get(id)));
      for (long id : checkedIds) {
        double fromCeiling = QueryRunner.maxAbsoluteDifference(results.get(id), ceiling.scores(id));
        if (!(fromCeiling <= TOLERANCE)) {
          throw new IllegalStateException(String.format(Locale.ROOT,
              "Variant (%s) disagrees with raw ONNX Runtime (a) on row %d by %.3g, more than %.0e:"
                  + " %s vs %s. Its numbers would not be comparable; find the difference before"
                  + " timing", query.getKey(), id, fromCeiling, TOLERANCE,
              Arrays.toString(results.get(id)), Arrays.toString(ceiling.scores(id))));
        }
      }
    }
    checkInputMatches(spark, checkedIds);
    RunEnvironment.log("Checked rows %s of every variant against forward() and (a): max abs differences %s",
        Arrays.toString(checkedIds), report.maxDifference);

    // (a): warm-up on the first batches, then the full timed loop.
    ceiling.run((int) ((warmUpRows + batchSize - 1) / batchSize));
    Measurement a = QueryRunner.timeRuns("a", "raw ONNX Runtime, " + cores + " intra-op threads", rows,
        arguments.repeat(), ceiling::runAll);
    RunEnvironment.log("%s", a.describe());
    report.measurements.add(a);

    // Diagnostic: ONNX Runtime used as (c) uses it, one single-threaded session call per core.
    OrtSession singleThreaded = ModelCache.shared()
        .acquire(ModelSource.of(MODEL_NAME, modelUri),
            SessionSettings.builder().intraOpThreads(1).build(), new Configuration())
        .session();
    ceiling.runParallel(singleThreaded, cores);
    Measurement parallel = QueryRunner.timeRuns("a1", "raw ONNX Runtime, " + cores + " threads each"
        + " calling a 1-thread session", rows, arguments.repeat(), () -> ceiling.runParallel(singleThreaded, cores));
    RunEnvironment.log("%s", parallel.describe());
    report.diagnostics.add(parallel);
    ceiling.close();

    Map<String, String> labels = Map.of(
        "b", "row-at-a-time Java UDF (`" + UDF_NAME + "`)",
        "c", "sparkinfer SQL `predict()`",
        "d", "sparkinfer DataFrame API");
    for (Map.Entry<String, Supplier<Dataset<Row>>> query : queries.entrySet()) {
      String key = query.getKey();
      long timedRows = key.equals("b") ? udfRows : rows;
      Measurement measurement = QueryRunner.time(key, labels.get(key), timedRows, arguments.repeat(),
          query.getValue(), warmUpRows);
      RunEnvironment.log("%s", measurement.describe());
      report.measurements.add(measurement);
    }

    // Diagnostics: Spark's own cost of reading the cached input, and (c)'s time inside the model.
    Measurement scan = QueryRunner.time("scan", "Spark alone: `SELECT id, features FROM input`"
        + " to noop, no model", rows, arguments.repeat(), () -> spark.sql("SELECT id, features FROM input"),
        warmUpRows);
    RunEnvironment.log("%s", scan.describe());
    report.diagnostics.add(scan);
    report.modelShare = modelShare(queries.get("c").get(), cores);
    RunEnvironment.log("(c) %s", report.modelShare);
    input.unpersist();
  }

  /**
   * Runs {@code predict} once more, straight from its physical plan so that its batch node's
   * metrics can be read, and compares the model time they sum over tasks with the cores' time.
   */
  private static String modelShare(Dataset<Row> predict, int cores) {
    SparkPlan plan = predict.queryExecution().executedPlan();
    long start = System.nanoTime();
    plan.execute().toJavaRDD().foreach(row -> { });
    long wallNanos = System.nanoTime() - start;
    SQLMetric[] metrics = {null, null};
    QueryRunner.visit(plan, node -> {
      if (node.metrics().contains("modelTime") && node.metrics().contains("batches")) {
        metrics[0] = node.metrics().apply("modelTime");
        metrics[1] = node.metrics().apply("batches");
      }
    });
    if (metrics[0] == null) {
      return "model time: not measured (no node with a modelTime metric in the plan)";
    }
    long modelNanos = metrics[0].value();
    long batches = metrics[1].value();
    double coreSeconds = RunEnvironment.seconds(wallNanos) * cores;
    return String.format(Locale.ROOT, "time in `session.run`, summed over tasks: %.2f s of %.2f"
        + " core-seconds (%.2f s wall x %d cores) = %.0f%%, over %,d batches (one run, its own"
        + " timing)", RunEnvironment.seconds(modelNanos), coreSeconds, RunEnvironment.seconds(wallNanos), cores,
        100 * RunEnvironment.seconds(modelNanos) / coreSeconds, batches);
  }

  /** Spread over the input, so that every partition and the last, partial batch are covered. */
  static long[] checkedIds(int rows) {
    return LongStream.range(0, CHECKED_ROWS)
        .map(i -> i * (rows - 1L) / (CHECKED_ROWS - 1))
        .distinct()
        .toArray();
  }
  private static double check(
      String variant,
      MultilayerPerceptronModel model,
      long[] ids,
      java.util.function.LongFunction<float[]> scores) {
    double max = 0;
    for (long id : ids) {
      float[] actual = scores.apply(id);
      float[] expected = model.forward(TabularData.features(id));
      double difference = QueryRunner.maxAbsoluteDifference(actual, expected);
      if (!(difference <= TOLERANCE)) {
        throw new IllegalStateException(String.format(Locale.ROOT,
            "Variant (%s) computed wrong scores for row %d: %s, but forward() gives %s (max abs"
                + " difference %.3g, tolerance %.0e). Its numbers would not be comparable; find"
                + " the difference before timing", variant, id,
            actual == null ? "no row" : Arrays.toString(actual), Arrays.toString(expected),
            difference, TOLERANCE));
      }
      max = Math.max(max, difference);
    }
    return max;
  }

  /** The cached input holds exactly the rows (a) built its buffers from. */
  private static void checkInputMatches(SparkSession spark, long[] ids) {
    Object[] boxed = Arrays.stream(ids).boxed().toArray();
    for (Row row : spark.table("input").where(col("id").isin(boxed)).collectAsList()) {
      List<Object> values = row.getList(1);
      float[] expected = TabularData.features(row.getLong(0));
      for (int i = 0; i < expected.length; i++) {
        if (((Number) values.get(i)).floatValue() != expected[i]) {
          throw new IllegalStateException(
              "The cached input's row " + row.getLong(0) + " differs from the features raw ONNX"
                  + " Runtime is given, at feature " + i + ": " + values.get(i) + " vs "
                  + expected[i] + ". The variants would not see the same data");
        }
      }
    }
  }
}
