package io.github.sparkinfer.benchmarks;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.Inference;
import io.github.sparkinfer.spark.SparkInference;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/** What RESULTS.md says about one run. */
final class TabularReport {
  final BenchmarkArguments arguments;
  final String sparkVersion;
  final String startLoad;
  private final ZonedDateTime date = ZonedDateTime.now(ZoneOffset.UTC);
  final List<Measurement> measurements = new ArrayList<>();
  final List<Measurement> diagnostics = new ArrayList<>();
  String modelShare = "not measured";
  final Map<String, Double> maxDifference = new LinkedHashMap<>();
  String endLoad = "unknown";
  String ortVersion = "unknown";

  TabularReport(BenchmarkArguments arguments, String sparkVersion, String startLoad) {
    this.arguments = arguments;
    this.sparkVersion = sparkVersion;
    this.startLoad = startLoad;
  }

  Measurement measurement(String key) {
    return measurements.stream()
        .filter(measurement -> measurement.key().equals(key))
        .findFirst()
        .orElseThrow();
  }

  String toMarkdown() {
    StringBuilder text = new StringBuilder();
    text.append("<!-- Written by io.github.sparkinfer.benchmarks.TabularBenchmark: run it"
        + " again rather than editing this section. -->\n\n");
    text.append("MLP ").append(Arrays.stream(TabularBenchmark.LAYER_SIZES).mapToObj(String::valueOf)
            .collect(Collectors.joining("-")))
        .append(" with ReLU (MultilayerPerceptronModel, seed ").append(TabularBenchmark.MODEL_SEED)
        .append("), float32, on ").append(String.format(Locale.ROOT, "%,d", arguments.rows()))
        .append(" rows of 64 float features (Parquet, read back and cached in ")
        .append(arguments.partitions()).append(" partitions before timing).\n\n");
    RunEnvironment.appendRunTable(text, arguments, date);
    RunEnvironment.row(text, "Spark", sparkVersion);
    RunEnvironment.row(text, "ONNX Runtime", ortVersion + " (CPU)");
    RunEnvironment.row(text, "sparkinfer-spark-udf", RunEnvironment.jarOf(SparkInference.class));
    RunEnvironment.row(text, "Rows", String.format(Locale.ROOT, "%,d", arguments.rows()));
    RunEnvironment.row(text, "Batch size (B)", String.valueOf(arguments.batchSize()));
    RunEnvironment.row(text, "Timing", "best of " + arguments.repeat() + " runs after an untimed warm-up"
        + " (median also shown)");
    RunEnvironment.row(text, "Load average (1, 5, 15 min)", "start " + startLoad + "; end " + endLoad);
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
        TabularBenchmark.CEILING_TARGET, predict >= TabularBenchmark.CEILING_TARGET * ceiling ? "met" : "missed",
        predict / ceiling));
    text.append(String.format(Locale.ROOT, "- (c) >= %.0f x (b): **%s** (measured %.1f x)%n",
        TabularBenchmark.UDF_TARGET, predict >= TabularBenchmark.UDF_TARGET * udf ? "met" : "missed", predict / udf));
    text.append('\n');

    text.append("How each variant runs:\n\n");
    text.append(String.format(Locale.ROOT, "- (a) one ONNX Runtime session with %d intra-op"
        + " threads; %d-row batches as direct buffers built before timing; outputs into pinned"
        + " tensors, copied to one float array. The loop alone is timed.%n",
        arguments.cores(), arguments.batchSize()));
    text.append("- (b) `SELECT id, " + TabularBenchmark.UDF_NAME + "(features) FROM input`: a Java UDF1, one"
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
        TabularBenchmark.MODEL_NAME, arguments.batchSize()));
    text.append("- (d) `Inference.model(\"" + TabularBenchmark.MODEL_NAME + "\").input(\"features\")"
        + ".output(\"scores\").transform(input.select(\"id\", \"features\")).select(\"id\","
        + " \"scores\")`.\n");
    text.append("- (b), (c), (d) write to Spark's `noop` sink, which computes every value and"
        + " stores nothing; each had one untimed warm-up on the rows with id < "
        + Math.min(arguments.rows(), TabularBenchmark.WARM_UP_ROWS) + ".\n");
    text.append(String.format(Locale.ROOT, "- Checked before timing: rows %s of (b), (c), (d)"
        + " equal (a) and `forward()` within %.0e (max abs differences %s).%n",
        Arrays.toString(TabularBenchmark.checkedIds(arguments.rows())), TabularBenchmark.TOLERANCE, maxDifference.entrySet()
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
}
