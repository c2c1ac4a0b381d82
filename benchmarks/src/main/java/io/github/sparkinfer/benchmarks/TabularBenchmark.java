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
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.adaptive.AdaptiveSparkPlanExec;
import org.apache.spark.sql.execution.adaptive.QueryStageExec;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.types.DataTypes;
import scala.jdk.javaapi.CollectionConverters;

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

  private static final int WARM_UP_ROWS = 50_000;
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
    String startLoad = loadAverage();
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
      Report report = new Report(arguments, spark.version(), startLoad);
      benchmark(spark, arguments, model, modelUri, folder, report);
      report.endLoad = loadAverage();
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
      Report report)
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
    log("Wrote, read back and cached %,d rows in %d partitions (%s) in %.1f s", rows,
        arguments.partitions(), inputPath, seconds(System.nanoTime() - start));

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
      Map<Long, float[]> results = collect(query.getValue().get(), checkedIds);
      report.maxDifference.put(query.getKey(),
          check(query.getKey(), model, checkedIds, id -> results.get(id)));
      for (long id : checkedIds) {
        double fromCeiling = maxAbsoluteDifference(results.get(id), ceiling.scores(id));
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
    log("Checked rows %s of every variant against forward() and (a): max abs differences %s",
        Arrays.toString(checkedIds), report.maxDifference);

    // (a): warm-up on the first batches, then the full timed loop.
    ceiling.run((int) ((warmUpRows + batchSize - 1) / batchSize));
    Measurement a = new Measurement("a", "raw ONNX Runtime, " + cores + " intra-op threads", rows);
    for (int i = 0; i < arguments.repeat(); i++) {
      long runStart = System.nanoTime();
      ceiling.runAll();
      a.add(System.nanoTime() - runStart);
    }
    log("%s", a.describe());
    report.measurements.add(a);

    // Diagnostic: ONNX Runtime used as (c) uses it, one single-threaded session call per core.
    OrtSession singleThreaded = ModelCache.shared()
        .acquire(ModelSource.of(MODEL_NAME, modelUri),
            SessionSettings.builder().intraOpThreads(1).build(), new Configuration())
        .session();
    ceiling.runParallel(singleThreaded, cores);
    Measurement parallel = new Measurement("a1", "raw ONNX Runtime, " + cores + " threads each"
        + " calling a 1-thread session", rows);
    for (int i = 0; i < arguments.repeat(); i++) {
      long runStart = System.nanoTime();
      ceiling.runParallel(singleThreaded, cores);
      parallel.add(System.nanoTime() - runStart);
    }
    log("%s", parallel.describe());
    report.diagnostics.add(parallel);
    ceiling.close();

    Map<String, String> labels = Map.of(
        "b", "row-at-a-time Java UDF (`" + UDF_NAME + "`)",
        "c", "sparkinfer SQL `predict()`",
        "d", "sparkinfer DataFrame API");
    for (Map.Entry<String, Supplier<Dataset<Row>>> query : queries.entrySet()) {
      String key = query.getKey();
      long timedRows = key.equals("b") ? udfRows : rows;
      Measurement measurement = new Measurement(key, labels.get(key), timedRows);
      writeToNoop(query.getValue().get().where(col("id").lt(warmUpRows)));
      for (int i = 0; i < arguments.repeat(); i++) {
        long runStart = System.nanoTime();
        writeToNoop(query.getValue().get());
        measurement.add(System.nanoTime() - runStart);
      }
      log("%s", measurement.describe());
      report.measurements.add(measurement);
    }

    // Diagnostics: Spark's own cost of reading the cached input, and (c)'s time inside the model.
    Measurement scan = new Measurement("scan", "Spark alone: `SELECT id, features FROM input`"
        + " to noop, no model", rows);
    writeToNoop(spark.sql("SELECT id, features FROM input").where(col("id").lt(warmUpRows)));
    for (int i = 0; i < arguments.repeat(); i++) {
      long runStart = System.nanoTime();
      writeToNoop(spark.sql("SELECT id, features FROM input"));
      scan.add(System.nanoTime() - runStart);
    }
    log("%s", scan.describe());
    report.diagnostics.add(scan);
    report.modelShare = modelShare(queries.get("c").get(), cores);
    log("(c) %s", report.modelShare);
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
    visit(plan, node -> {
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
    double coreSeconds = seconds(wallNanos) * cores;
    return String.format(Locale.ROOT, "time in `session.run`, summed over tasks: %.2f s of %.2f"
        + " core-seconds (%.2f s wall x %d cores) = %.0f%%, over %,d batches (one run, its own"
        + " timing)", seconds(modelNanos), coreSeconds, seconds(wallNanos), cores,
        100 * seconds(modelNanos) / coreSeconds, batches);
  }

  /** Every node of {@code plan}, also those inside adaptive execution's query stages. */
  static void visit(SparkPlan plan, Consumer<SparkPlan> action) {
    action.accept(plan);
    if (plan instanceof AdaptiveSparkPlanExec) {
      visit(((AdaptiveSparkPlanExec) plan).executedPlan(), action);
    } else if (plan instanceof QueryStageExec) {
      visit(((QueryStageExec) plan).plan(), action);
    }
    for (SparkPlan child : CollectionConverters.asJava(plan.children())) {
      visit(child, action);
    }
  }

  /** Makes Spark compute every column of every row, and store nothing. */
  static void writeToNoop(Dataset<Row> result) {
    result.write().format("noop").mode(SaveMode.Overwrite).save();
  }

  /** Spread over the input, so that every partition and the last, partial batch are covered. */
  static long[] checkedIds(int rows) {
    return LongStream.range(0, CHECKED_ROWS)
        .map(i -> i * (rows - 1L) / (CHECKED_ROWS - 1))
        .distinct()
        .toArray();
  }

  static Map<Long, float[]> collect(Dataset<Row> result, long[] ids) {
    Object[] boxed = Arrays.stream(ids).boxed().toArray();
    Map<Long, float[]> scores = new LinkedHashMap<>();
    for (Row row : result.where(col("id").isin(boxed)).collectAsList()) {
      List<Object> values = row.getList(1);
      float[] array = new float[values.size()];
      for (int i = 0; i < array.length; i++) {
        array[i] = ((Number) values.get(i)).floatValue();
      }
      scores.put(row.getLong(0), array);
    }
    return scores;
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
      double difference = maxAbsoluteDifference(actual, expected);
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

  static double maxAbsoluteDifference(float[] actual, float[] expected) {
    if (actual == null || actual.length != expected.length) {
      return Double.POSITIVE_INFINITY;
    }
    double max = 0;
    for (int i = 0; i < actual.length; i++) {
      max = Math.max(max, Math.abs((double) actual[i] - expected[i]));
    }
    return max;
  }

  static void log(String format, Object... values) {
    System.out.printf(Locale.ROOT, "[%s] %s%n",
        DateTimeFormatter.ofPattern("HH:mm:ss").format(ZonedDateTime.now()),
        String.format(Locale.ROOT, format, values));
  }

  static double seconds(long nanos) {
    return nanos / 1e9;
  }

  static String loadAverage() {
    try {
      String[] fields = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return fields[0] + " " + fields[1] + " " + fields[2];
    } catch (IOException | RuntimeException e) {
      return "unknown";
    }
  }

  /** One variant's timed runs. */
  static final class Measurement {
    private final String key;
    private final String label;
    private final long rows;
    private final List<Long> runNanos = new ArrayList<>();

    Measurement(String key, String label, long rows) {
      this.key = key;
      this.label = label;
      this.rows = rows;
    }

    void add(long nanos) {
      runNanos.add(nanos);
    }

    String key() {
      return key;
    }

    String label() {
      return label;
    }

    long rows() {
      return rows;
    }

    double bestRowsPerSecond() {
      return rows / seconds(runNanos.stream().min(Long::compare).orElseThrow());
    }

    double medianRowsPerSecond() {
      List<Long> sorted = runNanos.stream().sorted().collect(Collectors.toList());
      int size = sorted.size();
      double nanos = size % 2 == 1
          ? sorted.get(size / 2)
          : (sorted.get(size / 2 - 1) + sorted.get(size / 2)) / 2.0;
      return rows / seconds((long) nanos);
    }

    String runSeconds() {
      return runNanos.stream()
          .map(nanos -> String.format(Locale.ROOT, "%.2f", seconds(nanos)))
          .collect(Collectors.joining(", "));
    }

    String describe() {
      return String.format(Locale.ROOT, "(%s) %s: %,d rows, best %,.0f rows/s, median %,.0f rows/s"
          + " (runs: %s s)", key, label, rows, bestRowsPerSecond(), medianRowsPerSecond(),
          runSeconds());
    }
  }

  /** What RESULTS.md says about one run. */
  static final class Report {
    private final BenchmarkArguments arguments;
    private final String sparkVersion;
    private final String startLoad;
    private final ZonedDateTime date = ZonedDateTime.now(ZoneOffset.UTC);
    private final List<Measurement> measurements = new ArrayList<>();
    private final List<Measurement> diagnostics = new ArrayList<>();
    private String modelShare = "not measured";
    private final Map<String, Double> maxDifference = new LinkedHashMap<>();
    private String endLoad = "unknown";
    private String ortVersion = "unknown";

    Report(BenchmarkArguments arguments, String sparkVersion, String startLoad) {
      this.arguments = arguments;
      this.sparkVersion = sparkVersion;
      this.startLoad = startLoad;
    }

    private Measurement measurement(String key) {
      return measurements.stream()
          .filter(measurement -> measurement.key().equals(key))
          .findFirst()
          .orElseThrow();
    }

    String toMarkdown() {
      StringBuilder text = new StringBuilder();
      text.append("<!-- Written by io.github.sparkinfer.benchmarks.TabularBenchmark: run it"
          + " again rather than editing this section. -->\n\n");
      text.append("MLP ").append(Arrays.stream(LAYER_SIZES).mapToObj(String::valueOf)
              .collect(Collectors.joining("-")))
          .append(" with ReLU (MultilayerPerceptronModel, seed ").append(MODEL_SEED)
          .append("), float32, on ").append(String.format(Locale.ROOT, "%,d", arguments.rows()))
          .append(" rows of 64 float features (Parquet, read back and cached in ")
          .append(arguments.partitions()).append(" partitions before timing).\n\n");
      if (arguments.note() != null) {
        text.append("**Note:** ").append(arguments.note().strip()).append("\n\n");
      }

      text.append("| | |\n|---|---|\n");
      row(text, "Date (UTC)", DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").format(date));
      row(text, "Commit", gitCommit());
      row(text, "CPU", cpuModel());
      row(text, "Cores (N)", arguments.cores() + " (local[" + arguments.cores() + "]; the machine"
          + " has " + Runtime.getRuntime().availableProcessors() + ")");
      row(text, "JVM", System.getProperty("java.vm.name") + " "
          + System.getProperty("java.runtime.version") + ", -Xmx"
          + Runtime.getRuntime().maxMemory() / (1024 * 1024) + "m");
      row(text, "Spark", sparkVersion);
      row(text, "ONNX Runtime", ortVersion + " (CPU)");
      row(text, "sparkinfer-spark-udf", jarOf(SparkInference.class));
      row(text, "Rows", String.format(Locale.ROOT, "%,d", arguments.rows()));
      row(text, "Batch size (B)", String.valueOf(arguments.batchSize()));
      row(text, "Timing", "best of " + arguments.repeat() + " runs after an untimed warm-up"
          + " (median also shown)");
      row(text, "Load average (1, 5, 15 min)", "start " + startLoad + "; end " + endLoad);
      text.append('\n');

      double ceiling = measurement("a").bestRowsPerSecond();
      text.append("| Variant | Rows timed | Best rows/s | Median rows/s | Best vs (a) | Runs (s) |\n");
      text.append("|---|---:|---:|---:|---:|---|\n");
      for (Measurement measurement : measurements) {
        text.append(String.format(Locale.ROOT, "| (%s) %s | %,d | %,.0f | %,.0f | %.2f | %s |%n",
            measurement.key(), measurement.label(), measurement.rows(),
            measurement.bestRowsPerSecond(), measurement.medianRowsPerSecond(),
            measurement.bestRowsPerSecond() / ceiling, measurement.runSeconds()));
      }
      text.append('\n');

      double predict = measurement("c").bestRowsPerSecond();
      double udf = measurement("b").bestRowsPerSecond();
      text.append("Targets:\n\n");
      text.append(String.format(Locale.ROOT, "- (c) >= %.1f x (a): **%s** (measured %.2f x)%n",
          CEILING_TARGET, predict >= CEILING_TARGET * ceiling ? "met" : "missed",
          predict / ceiling));
      text.append(String.format(Locale.ROOT, "- (c) >= %.0f x (b): **%s** (measured %.1f x)%n",
          UDF_TARGET, predict >= UDF_TARGET * udf ? "met" : "missed", predict / udf));
      text.append('\n');

      text.append("How each variant runs:\n\n");
      text.append(String.format(Locale.ROOT, "- (a) one ONNX Runtime session with %d intra-op"
          + " threads; %d-row batches as direct buffers built before timing; outputs into pinned"
          + " tensors, copied to one float array. The loop alone is timed.%n",
          arguments.cores(), arguments.batchSize()));
      text.append("- (b) `SELECT id, " + UDF_NAME + "(features) FROM input`: a Java UDF1, one"
          + " session per JVM with 1 intra-op thread (N tasks run at once), one `session.run` of"
          + " shape [1, 64] per row through reused direct buffers.");
      if (arguments.udfRows() < arguments.rows()) {
        text.append(String.format(Locale.ROOT, " **Timed on the first %,d rows** (`WHERE id <"
            + " %d`, --udf-rows) to keep the run short; rows/s stays comparable.",
            arguments.udfRows(), arguments.udfRows()));
      }
      text.append('\n');
      text.append(String.format(Locale.ROOT, "- (c) `SELECT id, predict('%s', features) AS scores"
          + " FROM input`, batch size %d, intra-op threads following spark.task.cpus = 1.%n",
          MODEL_NAME, arguments.batchSize()));
      text.append("- (d) `Inference.model(\"" + MODEL_NAME + "\").input(\"features\")"
          + ".output(\"scores\").transform(input.select(\"id\", \"features\")).select(\"id\","
          + " \"scores\")`.\n");
      text.append("- (b), (c), (d) write to Spark's `noop` sink, which computes every value and"
          + " stores nothing; each had one untimed warm-up on the rows with id < "
          + Math.min(arguments.rows(), WARM_UP_ROWS) + ".\n");
      text.append(String.format(Locale.ROOT, "- Checked before timing: rows %s of (b), (c), (d)"
          + " equal (a) and `forward()` within %.0e (max abs differences %s).%n",
          Arrays.toString(checkedIds(arguments.rows())), TOLERANCE, maxDifference.entrySet()
              .stream()
              .map(entry -> String.format(Locale.ROOT, "(%s) %.2g", entry.getKey(),
                  entry.getValue()))
              .collect(Collectors.joining(", "))));
      text.append('\n');
      text.append("Diagnostics, not targets: where (c)'s time goes.\n\n");
      for (Measurement diagnostic : diagnostics) {
        text.append(String.format(Locale.ROOT, "- %s: best %,.0f rows/s (%.2f x (a); runs: %s"
            + " s)%n", diagnostic.label(), diagnostic.bestRowsPerSecond(),
            diagnostic.bestRowsPerSecond() / ceiling, diagnostic.runSeconds()));
      }
      text.append("- (c) ").append(modelShare).append('\n');
      text.append('\n');
      text.append("Reproduce: `./mvnw -q -B install -DskipTests && ./mvnw -q -B -pl benchmarks"
          + " exec:exec -Dbenchmark.args=\"--rows " + arguments.rows() + "\"`\n");
      return text.toString();
    }

    private static void row(StringBuilder text, String name, String value) {
      text.append("| ").append(name).append(" | ").append(value).append(" |\n");
    }
  }

  /**
   * Where {@code type} was loaded from and when that file was written: the commit above is the
   * working tree's, while exec:exec runs the sparkinfer jars installed in the local repository.
   */
  static String jarOf(Class<?> type) {
    try {
      Path location = Path.of(type.getProtectionDomain().getCodeSource().getLocation().toURI());
      return "`" + location + "` (written " + DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm")
          .format(Files.getLastModifiedTime(location).toInstant().atZone(ZoneOffset.UTC))
          + " UTC)";
    } catch (IOException | java.net.URISyntaxException | RuntimeException e) {
      return "unknown (" + e + ")";
    }
  }

  static String gitCommit() {
    try {
      String commit = git("rev-parse", "--short", "HEAD").trim();
      if (commit.isEmpty()) {
        return "unknown (not a git checkout)";
      }
      return git("status", "--porcelain").isBlank() ? commit : commit + "-dirty";
    } catch (IOException e) {
      return "unknown (" + e.getMessage() + ")";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "unknown (interrupted)";
    }
  }

  private static String git(String... arguments) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add("git");
    command.addAll(List.of(arguments));
    Process process = new ProcessBuilder(command).redirectErrorStream(false).start();
    String output;
    try (InputStream stream = process.getInputStream()) {
      output = new String(stream.readAllBytes(), StandardCharsets.UTF_8);
    }
    if (!process.waitFor(30, TimeUnit.SECONDS) || process.exitValue() != 0) {
      process.destroy();
      return "";
    }
    return output;
  }

  /** The CPU's model, core count and int8-relevant flags: every figure names the CPU it came from. */
  static String cpuModel() {
    return io.github.sparkinfer.compression.ProcessorDescription.current().toString();
  }
}
