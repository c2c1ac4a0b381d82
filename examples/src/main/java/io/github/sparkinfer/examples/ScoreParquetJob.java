package io.github.sparkinfer.examples;

import static org.apache.spark.sql.functions.col;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.ModelSpec;
import io.github.sparkinfer.spark.SparkInference;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;

/**
 * Scores a Parquet table with an ONNX model through sparkinfer's SQL {@code predict()} and writes
 * the result as Parquet: every input column plus {@code prediction}.
 *
 * <pre>
 * spark-submit --class io.github.sparkinfer.examples.ScoreParquetJob \
 *   sparkinfer-examples-&lt;version&gt;-spark-submit.jar \
 *   --input hdfs://nn/data/features.parquet --output hdfs://nn/data/scored.parquet \
 *   --model hdfs://nn/models/mlp.onnx
 * </pre>
 *
 * <p>{@code --demo} needs no files: it generates an MLP (64-256-256-16) and deterministic data,
 * scores them on a local session and checks scores against the model's plain-Java forward pass.
 */
public final class ScoreParquetJob {
  static final int DEFAULT_DEMO_ROWS = 200_000;
  static final String PREDICTION_COLUMN = "prediction";
  static final String ID_COLUMN = "id";
  static final double TOLERANCE = 1e-5;
  static final long DEMO_SEED = 42;
  static final int[] DEMO_LAYER_SIZES = {64, 256, 256, 16};

  private static final String INPUT_VIEW = "input";
  private static final int SAMPLE_ROWS = 3;
  private static final int SHOWN_VALUES = 4;

  private ScoreParquetJob() {}

  public static void main(String[] args) throws IOException {
    JobArguments arguments;
    try {
      arguments = JobArguments.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.err.println();
      System.err.println(JobArguments.USAGE);
      System.exit(2);
      return;
    }

    SparkSession spark = createSession();
    int status;
    try {
      status = run(spark, arguments, System.out);
    } finally {
      spark.stop();
    }
    String buildRoot = System.getProperty(BUILD_ROOT_PROPERTY);
    if (buildRoot != null && status == 0) {
      // Run from the README's first command: close the sessions now, so that this stays the last
      // thing printed, and say what was built and what to run next.
      io.github.sparkinfer.device.ModelCache.shared().close();
      printWhatWasBuilt(Path.of(buildRoot), System.out);
    }
    if (status != 0) {
      System.exit(status);
    }
  }

  /** Set by examples/pom.xml's exec:exec run: the checkout whose jars were just built. */
  static final String BUILD_ROOT_PROPERTY = "sparkinfer.build.root";

  static void printWhatWasBuilt(Path root, PrintStream out) throws IOException {
    out.println();
    out.println("Built:");
    for (String folder : List.of("spark-runtime/target", "examples/target")) {
      Path directory = root.resolve(folder);
      if (!Files.isDirectory(directory)) {
        continue;
      }
      try (Stream<Path> jars = Files.list(directory)) {
        for (Path jar : jars.filter(file -> file.getFileName().toString().matches(
            "sparkinfer-(spark-runtime-.*|examples-.*-spark-submit)\\.jar")).sorted().toList()) {
          out.printf(Locale.ROOT, "  %s (%.0f MB)%n", root.relativize(jar), Files.size(jar) / 1e6);
        }
      }
    }
    out.println("Next: ./mvnw -B -ntp verify runs the tests; spark-submit --jars the runtime jar with"
        + " --conf spark.sql.extensions=io.github.sparkinfer.spark.SparkInferenceExtensions (docs/your-code.md).");
  }

  /**
   * A session with sparkinfer installed. spark-submit passes its master as the {@code spark.master}
   * system property, which SparkConf reads; a plain {@code java} run gets {@code local[*]}.
   */
  static SparkSession createSession() {
    SparkSession.Builder builder = SparkSession.builder().appName("sparkinfer ScoreParquetJob");
    if (!new SparkConf().contains("spark.master")) {
      builder.master("local[*]");
    }
    SparkSession spark = builder.getOrCreate();
    // Rather than setting spark.sql.extensions, which would replace extensions the user configured.
    SparkInference.install(spark);
    return spark;
  }

  /** Runs the job or the demo; returns the process exit status. */
  static int run(SparkSession spark, JobArguments arguments, PrintStream out) throws IOException {
    if (!arguments.demo()) {
      JobResult result = score(spark, arguments);
      out.printf(Locale.ROOT, "Scored %s with model '%s' (%s) into %s%n",
          arguments.input(), arguments.modelName(), arguments.model(), arguments.output());
      printThroughput(out, result);
      out.println("Sample results:");
      for (Row row : result.samples()) {
        out.println("  " + describeRow(row, arguments.inputColumn()));
      }
      return 0;
    }

    if (arguments.workDirectory().isPresent()) {
      Path folder = Path.of(arguments.workDirectory().get());
      Files.createDirectories(folder);
      return demo(spark, arguments, folder, out).passed() ? 0 : 1;
    }
    Path folder = Files.createTempDirectory("sparkinfer-demo-");
    try {
      return demo(spark, arguments, folder, out).passed() ? 0 : 1;
    } finally {
      deleteRecursively(folder);
    }
  }

  /**
   * Registers the model, runs {@code SELECT *, predict(model, column) AS prediction FROM input}
   * and writes the result. The time covers reading, scoring and writing.
   */
  static JobResult score(SparkSession spark, JobArguments arguments) {
    ModelSpec.Builder spec = ModelSpec.builder(arguments.modelName()).path(arguments.model());
    arguments.batchSize().ifPresent(spec::batchSize);
    SparkInference.register(spark, spec.build());

    Dataset<Row> input = spark.read().parquet(arguments.input());
    if (Arrays.asList(input.columns()).contains(PREDICTION_COLUMN)) {
      throw new IllegalArgumentException(
          "Cannot score " + arguments.input() + ": it already has a column '" + PREDICTION_COLUMN
              + "', which the job adds. Rename or drop that column first");
    }
    checkOutput(spark, arguments);
    input.createOrReplaceTempView(INPUT_VIEW);
    Dataset<Row> scored =
        spark.sql(
            "SELECT *, predict('" + arguments.modelName() + "', "
                + quoteIdentifier(arguments.inputColumn()) + ") AS " + PREDICTION_COLUMN
                + " FROM " + INPUT_VIEW);

    long start = System.nanoTime();
    scored
        .write()
        .mode(arguments.overwrite() ? SaveMode.Overwrite : SaveMode.ErrorIfExists)
        .parquet(arguments.output());
    long elapsedNanos = System.nanoTime() - start;

    // Counted from the written files' footers, so it is what the output holds.
    Dataset<Row> written = spark.read().parquet(arguments.output());
    long rows = written.count();
    List<Row> samples = written.limit(SAMPLE_ROWS).collectAsList();
    return new JobResult(rows, elapsedNanos, samples);
  }

  /**
   * Generates the demo's model and data under {@code folder}, scores them with {@link #score}, and
   * checks a few rows' scores against {@link MultilayerPerceptronModel#forward}.
   */
  static DemoResult demo(SparkSession spark, JobArguments arguments, Path folder, PrintStream out)
      throws IOException {
    MultilayerPerceptronModel model = demoModel();
    Path modelFile = folder.resolve("mlp.onnx");
    model.writeTo(modelFile);
    String input = folder.resolve("input.parquet").toUri().toString();
    String output = folder.resolve("scored.parquet").toUri().toString();
    int rows = arguments.demoRows();
    out.printf(Locale.ROOT, "sparkinfer ScoreParquetJob demo: MLP %s (seed %d), %d rows, master %s"
            + " (parallelism %d), batch size %s%n",
        layerSizes(model), DEMO_SEED, rows, spark.sparkContext().master(),
        spark.sparkContext().defaultParallelism(),
        arguments.batchSize().isPresent() ? arguments.batchSize().getAsInt() : "default (1024)");
    out.println("  folder: " + folder);
    demoData(spark, rows, model.inputSize(), arguments.inputColumn())
        .write()
        .mode(SaveMode.Overwrite)
        .parquet(input);

    JobArguments job = arguments.forDemoFiles(input, output, modelFile.toUri().toString());
    JobResult result = score(spark, job);
    printThroughput(out, result);

    List<Row> samples =
        spark.read().parquet(output)
            .where(col(ID_COLUMN).isin((Object[]) sampleIds(rows)))
            .orderBy(ID_COLUMN)
            .select(ID_COLUMN, arguments.inputColumn(), PREDICTION_COLUMN)
            .collectAsList();
    out.printf(Locale.ROOT, "Check against MultilayerPerceptronModel.forward() in plain Java (first"
            + " %d of %d scores shown):%n", SHOWN_VALUES, model.outputSize());
    double maxDifference = 0;
    for (Row sample : samples) {
      float[] features = floats(sample.getList(1));
      float[] scores = floats(sample.getList(2));
      float[] expected = model.forward(features);
      maxDifference = Math.max(maxDifference, maxAbsoluteDifference(scores, expected));
      out.printf(Locale.ROOT, "  id %-8d predict()  %s%n", sample.getLong(0), head(scores));
      out.printf(Locale.ROOT, "  %-11s forward()  %s%n", "", head(expected));
    }
    boolean passed = samples.size() == sampleIds(rows).length && maxDifference <= TOLERANCE;
    out.printf(Locale.ROOT, "  max abs difference over %d rows x %d scores: %.3g (tolerance %.0e):"
            + " %s%n", samples.size(), model.outputSize(), maxDifference, TOLERANCE,
        passed ? "OK" : "FAILED");
    if (samples.size() != sampleIds(rows).length) {
      out.println("  FAILED: expected rows with ids " + Arrays.toString(sampleIds(rows))
          + " in the output, found " + samples.size());
    }
    return new DemoResult(result, maxDifference, passed, Path.of(URI.create(output)));
  }

  /** The demo's model; every call builds a byte-identical one, so scores can be checked later. */
  static MultilayerPerceptronModel demoModel() {
    return MultilayerPerceptronModel.builder()
        .layerSizes(DEMO_LAYER_SIZES)
        .seed(DEMO_SEED)
        .inputName("features")
        .outputName("scores")
        .build();
  }

  /**
   * Rows of (id long, features array&lt;float&gt;) with features uniform in [-1, 1], from Spark's
   * Murmur3 {@code hash(id, i)}: the same on every machine and Spark version, and generated in
   * parallel without a UDF.
   */
  static Dataset<Row> demoData(SparkSession spark, long rows, int featureCount, String column) {
    return spark
        .range(rows)
        .select(
            col(ID_COLUMN),
            functions.expr(
                    "transform(sequence(0, " + (featureCount - 1) + "),"
                        + " i -> CAST((pmod(hash(id, i), 20001) - 10000) / 1e4 AS FLOAT))")
                .as(column));
  }

  /** First, middle and last row. */
  static Long[] sampleIds(long rows) {
    return Stream.of(0L, rows / 2, rows - 1).distinct().toArray(Long[]::new);
  }

  private static void checkOutput(SparkSession spark, JobArguments arguments) {
    if (arguments.overwrite()) {
      return;
    }
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(arguments.output());
    try {
      FileSystem fileSystem = path.getFileSystem(spark.sparkContext().hadoopConfiguration());
      if (fileSystem.exists(path)) {
        throw new IllegalArgumentException(
            "Output " + arguments.output() + " already exists: remove it, choose another --output,"
                + " or add --overwrite to replace it");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot check whether output " + arguments.output()
          + " exists: " + e.getMessage(), e);
    }
  }

  private static void printThroughput(PrintStream out, JobResult result) {
    out.printf(Locale.ROOT, "Scored %d rows in %.2f s: %,.0f rows/s (read, score and write)%n",
        result.rows(), result.seconds(), result.rowsPerSecond());
  }

  // Backquoted, so that names with dots or spaces are one column, not a path into a struct.
  private static String quoteIdentifier(String name) {
    return "`" + name.replace("`", "``") + "`";
  }

  private static String layerSizes(MultilayerPerceptronModel model) {
    StringBuilder text = new StringBuilder();
    for (int size : model.layerSizes()) {
      text.append(text.length() == 0 ? "" : "-").append(size);
    }
    return text.toString();
  }

  /** A row's columns but the (long) model input, with arrays shortened to their first values. */
  static String describeRow(Row row, String inputColumn) {
    List<String> fields = new ArrayList<>();
    for (int i = 0; i < row.length(); i++) {
      String name = row.schema().fields()[i].name();
      if (!name.equals(inputColumn)) {
        fields.add(name + "=" + describeValue(row.get(i)));
      }
    }
    return String.join(", ", fields);
  }

  private static String describeValue(Object value) {
    if (value instanceof scala.collection.Seq) {
      List<?> values = io.github.sparkinfer.spark.JavaCollections.asJava((scala.collection.Seq<?>) value);
      List<String> shown = new ArrayList<>();
      for (int i = 0; i < Math.min(SHOWN_VALUES, values.size()); i++) {
        shown.add(describeValue(values.get(i)));
      }
      String more = values.size() > SHOWN_VALUES ? ", ... (" + values.size() + " values)" : "";
      return "[" + String.join(", ", shown) + more + "]";
    }
    if (value instanceof Row) {
      Row struct = (Row) value;
      return "{" + describeRow(struct, null) + "}";
    }
    if (value instanceof Float || value instanceof Double) {
      return String.format(Locale.ROOT, "%.6f", ((Number) value).doubleValue());
    }
    return String.valueOf(value);
  }

  private static String head(float[] values) {
    StringBuilder text = new StringBuilder("[");
    for (int i = 0; i < Math.min(SHOWN_VALUES, values.length); i++) {
      text.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%10.6f", values[i]));
    }
    return text.append(values.length > SHOWN_VALUES ? ", ...]" : "]").toString();
  }

  static float[] floats(List<?> values) {
    float[] result = new float[values.size()];
    for (int i = 0; i < result.length; i++) {
      result[i] = ((Number) values.get(i)).floatValue();
    }
    return result;
  }

  static double maxAbsoluteDifference(float[] actual, float[] expected) {
    if (actual.length != expected.length) {
      return Double.POSITIVE_INFINITY;
    }
    double max = 0;
    for (int i = 0; i < actual.length; i++) {
      max = Math.max(max, Math.abs((double) actual[i] - expected[i]));
    }
    return max;
  }

  private static void deleteRecursively(Path folder) throws IOException {
    try (Stream<Path> paths = Files.walk(folder)) {
      for (Path path : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(path);
      }
    }
  }

  /** What {@link #score} did: rows written, the time it took, and the first few output rows. */
  record JobResult(long rows, long elapsedNanos, List<Row> samples) {
    JobResult {
      samples = List.copyOf(samples);
    }

    double seconds() {
      return elapsedNanos / 1e9;
    }

    double rowsPerSecond() {
      return rows / seconds();
    }
  }

  /** What {@link #demo} did, and whether its check against forward() passed. */
  record DemoResult(JobResult job, double maxDifference, boolean passed, Path output) {}
}
