package io.github.sparkinfer.benchmarks;

import static io.github.sparkinfer.benchmarks.QueryRunner.collect;
import static io.github.sparkinfer.benchmarks.RunEnvironment.log;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.github.sparkinfer.spark.SparkInference;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/** What RESULTS.md says about one run. */
final class TextEmbeddingReport {
  final BenchmarkArguments arguments;
  final String sparkVersion;
  final String ortVersion;
  final String startLoad;
  private final ZonedDateTime date = ZonedDateTime.now(ZoneOffset.UTC);
  final List<ModelResult> models = new ArrayList<>();
  LengthSummary lengths;
  long[] checkedIds;
  String endLoad = "unknown";

  TextEmbeddingReport(
      BenchmarkArguments arguments,
      String sparkVersion,
      String ortVersion,
      String startLoad) {
    this.arguments = arguments;
    this.sparkVersion = sparkVersion;
    this.ortVersion = ortVersion;
    this.startLoad = startLoad;
  }

  String toMarkdown() {
    int cores = arguments.cores();
    StringBuilder text = new StringBuilder();
    text.append("<!-- Written by io.github.sparkinfer.benchmarks.TextEmbeddingBenchmark: run it"
        + " again rather than editing this section. -->\n\n");
    text.append("Sentence embeddings with all-MiniLM-L6-v2 (384 dimensions), fp32 and int8,"
        + " on ").append(String.format(Locale.ROOT, "%,d", arguments.rows()))
        .append(" rows of generated English-like text (`id long, body string`, cached in ")
        .append(arguments.partitions()).append(" partitions before timing). Every variant"
            + " tokenizes, runs the model, mean-pools and L2-normalizes, and is timed from text"
            + " to vectors, tokenization included.\n\n");
    RunEnvironment.appendRunTable(text, arguments, date);
    RunEnvironment.row(text, "Spark", sparkVersion);
    RunEnvironment.row(text, "ONNX Runtime", ortVersion + " (CPU)");
    RunEnvironment.row(text, "DJL tokenizers", String.valueOf(
        HuggingFaceTokenizer.class.getPackage().getSpecificationVersion()));
    RunEnvironment.row(text, "Models", models.stream()
        .map(result -> "`" + result.model.artifactId() + "` " + result.model.version())
        .collect(Collectors.joining(", ")));
    RunEnvironment.row(text, "sparkinfer-spark-udf", RunEnvironment.jarOf(SparkInference.class));
    RunEnvironment.row(text, "Rows", String.format(Locale.ROOT, "%,d (%d to %d words, log-normal, median %d;"
        + " `SentenceData`)", arguments.rows(), SentenceData.MIN_WORDS, SentenceData.MAX_WORDS,
        SentenceData.MEDIAN_WORDS));
    RunEnvironment.row(text, "Words per row", lengths.words());
    RunEnvironment.row(text, "Tokens per row", lengths.tokens() + " (with [CLS] and [SEP])");
    RunEnvironment.row(text, "Raw ORT batch size", arguments.batchSize() + " rows");
    RunEnvironment.row(text, "Timing", "best of " + arguments.repeat() + " runs after an untimed warm-up on"
        + " the first " + Math.min(arguments.rows(), TextEmbeddingBenchmark.WARM_UP_ROWS) + " rows (median also"
        + " shown)");
    RunEnvironment.row(text, "Load average (1, 5, 15 min)", "start " + startLoad + "; end " + endLoad);
    text.append('\n');

    for (ModelResult result : models) {
      appendModel(text, result);
    }

    text.append("How each variant runs (all: tokenizer.json through DJL's HuggingFaceTokenizer,"
        + " no padding, truncation to 128 tokens, [CLS]/[SEP] added; int64 input_ids,"
        + " attention_mask and zero token_type_ids of [batch, L], padded with 0 to the batch's"
        + " longest row; mean pooling of last_hidden_state over attended tokens; L2"
        + " normalization):\n\n");
    text.append(String.format(Locale.ROOT, "- (a) one ONNX Runtime session with %d intra-op"
        + " threads, in row order: per batch of %d consecutive rows, `batchEncode`, pad, run,"
        + " pool. Strings in memory to vectors in row order is timed.%n", cores,
        arguments.batchSize()));
    text.append(String.format(Locale.ROOT, "- (b) the same session: `batchEncode` of all rows,"
        + " a stable sort by token count, batches of %d rows of that order (a row budget like"
        + " (a)'s, so only the order differs), run, pool, vectors put back in row order; the"
        + " ceiling. Timed the same way.%n", arguments.batchSize()));
    text.append("- (c) `SELECT id, <model>_udf(body) AS embedding FROM docs`: a Java UDF1<String,"
        + " float[]>, one tokenizer and one session per JVM (1 intra-op thread, N tasks run at"
        + " once), one `encode` and one `session.run` of shape [1, L] per row.");
    if (arguments.udfRows() < arguments.rows()) {
      text.append(String.format(Locale.ROOT, " **Timed on the first %,d rows** (`WHERE id <"
          + " %d`, --udf-rows) to keep the run short; rows/s stays comparable.",
          arguments.udfRows(), arguments.udfRows()));
    }
    text.append('\n');
    text.append("- (d) `SET spark.sparkinfer.model.<model>.path=<.onnx URI>`, `SET"
        + " spark.sparkinfer.model.<model>.tokenizer=<tokenizer.json URI>`, then `SELECT id,"
        + " embed('<model>', body) AS embedding FROM docs`, defaults otherwise.\n");
    text.append("- <model> is `minilm` (fp32) or `minilm_int8`. (c) and (d) write to Spark's"
        + " `noop` sink, which computes every value and stores nothing.\n");
    text.append(String.format(Locale.ROOT, "- Checked before timing, per model: rows %s"
        + " (spread over the input, plus the shortest and the longest) of every variant against"
        + " langchain4j's own embedding model for the same files (`embed(text)`, one row at a"
        + " time) and against (a), each vector of length 1 within %s. Required cosine: %s for"
        + " fp32; for int8 %s only where both sides embed rows alone ((c) vs langchain4j), %s"
        + " where either side batches ((a), (b), (d)): the int8 model quantizes activations"
        + " per tensor (DynamicQuantizeLinear), so a row's int8 vector depends on its batch"
        + " mates; batches of 32 measured 0.962 at worst against rows alone over 1,000 rows,"
        + " while pooling bugs score about 0.3.%n", Arrays.toString(checkedIds), TextEmbeddingBenchmark.NORM_TOLERANCE,
        TextEmbeddingBenchmark.MIN_COSINE, TextEmbeddingBenchmark.MIN_COSINE, TextEmbeddingBenchmark.INT8_BATCHED_MIN_COSINE));
    text.append('\n');
    text.append("Reproduce: `./mvnw -q -B install -DskipTests && ./mvnw -q -B -pl benchmarks"
        + " exec:exec -Dbenchmark.main=io.github.sparkinfer.benchmarks.TextEmbeddingBenchmark"
        + " -Dbenchmark.args=\"--rows " + arguments.rows()
        + (arguments.udfRowsChanged() ? " --udf-rows " + arguments.udfRows() : "")
        + "\"`\n");
    return text.toString();
  }

  void appendModel(StringBuilder text, ModelResult result) {
    text.append("### ").append(result.model.label()).append("\n\n");
    Measurement fixed = result.measurement("a");
    Measurement sorted = result.measurement("b");
    text.append("| Variant | Rows timed | Best rows/s | Median rows/s | Best vs (a) | Best vs (b)"
        + " | Runs (s) |\n");
    text.append("|---|---:|---:|---:|---:|---:|---|\n");
    for (Measurement measurement : result.measurements) {
      text.append(String.format(Locale.ROOT, "| (%s) %s | %,d | %,.1f | %,.1f | %.2f | %.2f |"
          + " %s |%n", measurement.key(), measurement.label(), measurement.rows(),
          measurement.bestRowsPerSecond(), measurement.medianRowsPerSecond(),
          measurement.bestRowsPerSecond() / fixed.bestRowsPerSecond(),
          measurement.bestRowsPerSecond() / sorted.bestRowsPerSecond(),
          measurement.runSeconds()));
    }
    if (result.embedUnavailable != null) {
      text.append("| (d) sparkinfer SQL `embed()` | not measured | | | | | |\n");
    }
    text.append('\n');

    text.append("Targets:\n\n");
    Measurement embed = result.measurement("d");
    Measurement udf = result.measurement("c");
    if (embed == null) {
      text.append(String.format(Locale.ROOT, "- (d) >= %.2f x (a): **not measured**%n",
          TextEmbeddingBenchmark.FIXED_ORDER_TARGET));
      text.append(String.format(Locale.ROOT, "- (d) >= %.1f x (b): **not measured**%n",
          TextEmbeddingBenchmark.CEILING_TARGET));
      text.append("- (d) faster than (c): **not measured**\n\n");
      // Backticks in Spark's message would end the code span early.
      text.append("(d) is unavailable: the installed sparkinfer-spark-udf cannot analyze `")
          .append(result.embedQuery).append("`: ")
          .append(result.embedUnavailable.replace('`', '\'')).append('\n');
    } else {
      double best = embed.bestRowsPerSecond();
      target(text, String.format(Locale.ROOT, "(d) >= %.2f x (a)", TextEmbeddingBenchmark.FIXED_ORDER_TARGET),
          best >= TextEmbeddingBenchmark.FIXED_ORDER_TARGET * fixed.bestRowsPerSecond(),
          best / fixed.bestRowsPerSecond());
      target(text, String.format(Locale.ROOT, "(d) >= %.1f x (b)", TextEmbeddingBenchmark.CEILING_TARGET),
          best >= TextEmbeddingBenchmark.CEILING_TARGET * sorted.bestRowsPerSecond(),
          best / sorted.bestRowsPerSecond());
      target(text, "(d) faster than (c)", best > udf.bestRowsPerSecond(),
          best / udf.bestRowsPerSecond());
    }
    text.append('\n');
    text.append(String.format(Locale.ROOT, "Diagnostics: padding, as tokens given to the model"
        + " per real token (1.00 = none): (a) %.2f, (b) %.2f. Checks: minimum cosine vs"
        + " langchain4j %s; vs (a) %s.%n%n", result.fixedOrderPadding,
        result.lengthSortedPadding, TextEmbeddingBenchmark.format(result.referenceCosine),
        TextEmbeddingBenchmark.format(result.fixedOrderCosine)));
    if (result.embedDiagnostics != null) {
      text.append("(d) ").append(result.embedDiagnostics).append(".\n\n");
    }
  }

  static void target(StringBuilder text, String name, boolean met, double ratio) {
    text.append(String.format(Locale.ROOT, "- %s: **%s** (measured %.2f x)%n", name,
        met ? "met" : "missed", ratio));
  }
}
