package io.github.sparkinfer.benchmarks;

import static io.github.sparkinfer.benchmarks.TabularBenchmark.collect;
import static io.github.sparkinfer.benchmarks.TabularBenchmark.log;
import static io.github.sparkinfer.benchmarks.TabularBenchmark.writeToNoop;
import static org.apache.spark.sql.functions.col;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.langchain4j.model.embedding.EmbeddingModel;
import io.github.sparkinfer.benchmarks.TabularBenchmark.Measurement;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.device.SessionSettings;
import io.github.sparkinfer.spark.SparkInference;
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
import java.util.Set;
import java.util.function.IntPredicate;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.types.DataTypes;

/**
 * Rows per second of sentence embedding with all-MiniLM-L6-v2, fp32 and int8, four ways, in one
 * JVM on the same rows and cores:
 *
 * <ol type="a">
 *   <li>raw ONNX Runtime, batches of consecutive rows: what a hand-written job does;
 *   <li>raw ONNX Runtime, batches of length-sorted rows: the ceiling;
 *   <li>a row-at-a-time Spark UDF, one {@code session.run} per row;
 *   <li>sparkinfer's SQL {@code embed()}.
 * </ol>
 *
 * <p>Every variant computes {@link SentenceEmbedder}'s embedding (tokenize, run, mean-pool,
 * normalize) and is timed from text to vector, tokenization included. The input is {@link
 * SentenceData}'s generated text, cached in Spark before any timing; the raw variants build the
 * same strings from the same function. Every variant is checked against langchain4j's own
 * embedding model for these files before it is timed, gets an untimed warm-up on a slice, and is
 * then timed {@code --repeat} times; the best run counts, because on a shared machine interference
 * only ever slows a run down.
 *
 * <p>Until the installed sparkinfer-spark-udf has {@code embed()}, (d) fails at analysis: the
 * program says so, measures the other variants and writes their results with (d) marked
 * unavailable.
 *
 * <p>Run from the repository root; it replaces its section of benchmarks/RESULTS.md:
 *
 * <pre>
 * ./mvnw -q -B install -DskipTests
 * ./mvnw -q -B -pl benchmarks exec:exec \
 *     -Dbenchmark.main=io.github.sparkinfer.benchmarks.TextEmbeddingBenchmark \
 *     -Dbenchmark.args="--rows 5000"
 * </pre>
 *
 * {@link BenchmarkArguments#USAGE} lists the arguments.
 */
public final class TextEmbeddingBenchmark {
  static final String HEADING = "## Text embedding (all-MiniLM-L6-v2)";
  static final double MIN_COSINE = 0.9999;
  /**
   * The int8 model quantizes activations with DynamicQuantizeLinear: one scale and zero point per
   * tensor, computed over the whole batch. A row's int8 vector therefore depends on the rows it is
   * batched with (padding included), and no batched variant can match a row embedded alone to
   * {@link #MIN_COSINE}: over 1,000 generated rows, batches of 32 gave a minimum cosine of 0.962
   * against the same rows alone, and consecutive vs length-sorted batches 0.957. Pipeline bugs
   * (pooling over padding, [CLS] pooling) give about 0.3, so this bound still catches them; and
   * fp32, through the same code, is held to {@link #MIN_COSINE} everywhere.
   */
  static final double INT8_BATCHED_MIN_COSINE = 0.95;
  /** Cosine does not see a missing L2 normalization; this does. */
  static final double NORM_TOLERANCE = 1e-3;
  static final double FIXED_ORDER_TARGET = 1.25;
  static final double CEILING_TARGET = 0.9;

  private static final int WARM_UP_ROWS = 256;
  private static final int CHECKED_ROWS = 20;
  // Variants whose rows share model calls with other rows; see INT8_BATCHED_MIN_COSINE.
  private static final Set<String> BATCHED = Set.of("a", "b", "d");

  static final int DEFAULT_UDF_ROWS = 2000;

  static final String USAGE =
      String.join(
          "\n",
          "Usage: TextEmbeddingBenchmark [--rows N] [--cores N] [--batch-size N] [--repeat N]",
          "                              [--udf-rows N] [--partitions N] [--work-dir <folder>]"
              + " [--results <RESULTS.md>] [--note <text>]",
          "",
          "  --rows        generated English-like rows of 3 to 200 words (default 5000)",
          "  --cores       local[N] and ONNX Runtime threads of the raw ORT variants"
              + " (default: available processors)",
          "  --batch-size  rows per model call of the raw ORT variants (default 32)",
          "  --repeat      timed runs per variant; the best counts, the median is shown"
              + " (default 3)",
          "  --udf-rows    rows the row-at-a-time UDF is timed on, a prefix of the input (default"
              + " " + DEFAULT_UDF_ROWS + " or --rows if fewer)",
          "  --partitions  partitions of the cached input (default 2 x cores)",
          "  --work-dir    folder the models and tokenizers are extracted to (default: a"
              + " temporary folder)",
          "  --results     Markdown file whose '" + TextEmbeddingBenchmark.HEADING + "' section"
              + " is replaced (default: none, print only)",
          "  --note        text to put in the results, such as how this run differs from usual");

  private TextEmbeddingBenchmark() {}

  public static void main(String[] args) throws Exception {
    BenchmarkArguments.main(args, USAGE, 5000, 32, DEFAULT_UDF_ROWS, TextEmbeddingBenchmark::run);
  }

  static void run(BenchmarkArguments arguments, Path folder) throws Exception {
    String startLoad = TabularBenchmark.loadAverage();
    // Before langchain4j or anything else makes ONNX Runtime's environment: see OrtEnvironments.
    String ortVersion = OrtEnvironments.get().getVersion();

    int rows = arguments.rows();
    int cores = arguments.cores();
    String[] texts = IntStream.range(0, rows).mapToObj(SentenceData::body).toArray(String[]::new);
    long[] checkedIds = checkedIds(texts);

    SparkSession spark = LocalSpark.session("sparkinfer TextEmbeddingBenchmark", cores);
    try {
      Report report = new Report(arguments, spark.version(), ortVersion, startLoad);
      report.checkedIds = checkedIds;
      report.lengths = LengthSummary.of(texts, folder);
      log("Generated %,d rows: %s words; %s tokens", rows, report.lengths.words(),
          report.lengths.tokens());

      // Input, materialized before any timing.
      long start = System.nanoTime();
      Dataset<Row> docs = SentenceData.generate(spark, rows, arguments.partitions()).cache();
      long cached = docs.count();
      if (cached != rows) {
        throw new IllegalStateException(
            "The cached input has " + cached + " rows, expected " + rows);
      }
      docs.createOrReplaceTempView("docs");
      checkInputMatches(spark, texts, checkedIds);
      log("Cached %,d rows in %d partitions in %.1f s", rows, arguments.partitions(),
          TabularBenchmark.seconds(System.nanoTime() - start));

      for (MiniLm model : MiniLm.values()) {
        report.models.add(benchmark(spark, arguments, model, texts, folder));
      }
      docs.unpersist();

      report.endLoad = TabularBenchmark.loadAverage();
      String markdown = report.toMarkdown();
      System.out.println();
      System.out.println(markdown);
      if (arguments.results() != null) {
        ResultsFile.replaceSection(arguments.results(), HEADING, markdown);
        System.out.println("Wrote the '" + HEADING + "' section of " + arguments.results());
      }
      for (ModelResult result : report.models) {
        if (result.embedUnavailable != null) {
          System.out.println("WARNING: (d) embed() was not measured for " + result.model.label()
              + ": " + result.embedUnavailable);
        }
      }
    } finally {
      spark.stop();
    }
  }

  private static ModelResult benchmark(
      SparkSession spark,
      BenchmarkArguments arguments,
      MiniLm model,
      String[] texts,
      Path folder)
      throws Exception {
    int rows = arguments.rows();
    int cores = arguments.cores();
    ModelResult result = new ModelResult(model);
    String name = model.sqlName();
    String modelUri = model.extractModel(folder).toUri().toString();
    Path tokenizerFile = model.extractTokenizer(folder);
    String tokenizerUri = tokenizerFile.toUri().toString();
    int declaredMaxTokens = SentenceEmbedder.declaredMaxTokens(tokenizerFile);
    if (declaredMaxTokens != SentenceEmbedder.MAX_TOKENS) {
      throw new IllegalStateException(
          tokenizerFile + " truncates at " + declaredMaxTokens + " tokens, but the benchmark"
              + " embeds at most " + SentenceEmbedder.MAX_TOKENS + ", as embed() by default would"
              + " with all-MiniLM-L6-v2's tokenizer.json: these are other files");
    }

    // (c) and (d): registered the way a user would.
    spark.udf().register(
        model.udfName(),
        new RowAtATimeEmbeddingUdf(name, modelUri, tokenizerUri),
        DataTypes.createArrayType(DataTypes.FloatType, false));
    spark.sql("SET spark.sparkinfer.model." + name + ".path=" + modelUri);
    spark.sql("SET spark.sparkinfer.model." + name + ".tokenizer=" + tokenizerUri);
    String udfQuery = "SELECT id, " + model.udfName() + "(body) AS embedding FROM docs";
    String embedQuery = "SELECT id, embed('" + name + "', body) AS embedding FROM docs";
    result.embedQuery = embedQuery;
    try {
      spark.sql(embedQuery);
    } catch (Exception e) {
      if (!(e instanceof AnalysisException)) {
        throw e;
      }
      result.embedUnavailable = e.getMessage().strip().lines().findFirst().orElse("").strip();
      log("WARNING: (d) is unavailable for %s, the installed sparkinfer-spark-udf cannot analyze"
          + " `%s`: %s", model.label(), embedQuery, result.embedUnavailable);
    }

    // (a) and (b): one session with all the cores, the same settings as sparkinfer's.
    SentenceEmbedder embedder =
        new SentenceEmbedder(
            SentenceEmbedder.loadTokenizer(tokenizerFile),
            ModelCache.shared()
                .acquire(
                    ModelSource.of(name, modelUri),
                    SessionSettings.builder().intraOpThreads(cores).build(),
                    new Configuration())
                .session());
    OrtEmbeddingLoop loop = new OrtEmbeddingLoop(embedder, arguments.batchSize());

    check(spark, model, texts, loop, udfQuery, result.embedUnavailable == null ? embedQuery : null,
        result);

    // (a) and (b): warm-up on a slice, then the full loop, strings to vectors.
    String[] warmUp = Arrays.copyOf(texts, Math.min(rows, WARM_UP_ROWS));
    Measurement fixed = new Measurement("a", "raw ONNX Runtime, consecutive rows, " + cores
        + " intra-op threads", rows);
    loop.fixedOrder(warmUp);
    for (int i = 0; i < arguments.repeat(); i++) {
      long runStart = System.nanoTime();
      loop.fixedOrder(texts);
      fixed.add(System.nanoTime() - runStart);
    }
    result.fixedOrderPadding = loop.paddingRatio();
    log("%s %s; padding %.2f model tokens per real token", model.label(), fixed.describe(),
        result.fixedOrderPadding);
    result.measurements.add(fixed);

    Measurement sorted = new Measurement("b", "raw ONNX Runtime, length-sorted rows, " + cores
        + " intra-op threads", rows);
    loop.lengthSorted(warmUp);
    for (int i = 0; i < arguments.repeat(); i++) {
      long runStart = System.nanoTime();
      loop.lengthSorted(texts);
      sorted.add(System.nanoTime() - runStart);
    }
    result.lengthSortedPadding = loop.paddingRatio();
    log("%s %s; padding %.2f model tokens per real token", model.label(), sorted.describe(),
        result.lengthSortedPadding);
    result.measurements.add(sorted);

    // (c) and (d): from the cached rows to the noop sink.
    int udfRows = arguments.udfRows();
    int warmUpRows = Math.min(rows, WARM_UP_ROWS);
    result.measurements.add(timeQuery(spark, arguments, model, "c",
        "row-at-a-time Java UDF (`" + model.udfName() + "`)", udfQuery, udfRows, warmUpRows));
    if (result.embedUnavailable == null) {
      result.measurements.add(timeQuery(spark, arguments, model, "d",
          "sparkinfer SQL `embed()`", embedQuery, rows, warmUpRows));
      result.embedDiagnostics = embedDiagnostics(spark.sql(embedQuery), cores);
      log("%s (d) %s", model.label(), result.embedDiagnostics);
    }
    return result;
  }

  /**
   * Runs {@code embed} once more, straight from its physical plan so that its batch node's metrics
   * can be read: where (d)'s time goes, and its padding next to (a)'s and (b)'s.
   */
  private static String embedDiagnostics(Dataset<Row> embed, int cores) {
    SparkPlan plan = embed.queryExecution().executedPlan();
    long start = System.nanoTime();
    plan.execute().toJavaRDD().foreach(row -> { });
    long wallNanos = System.nanoTime() - start;
    Map<String, SQLMetric> metrics = new LinkedHashMap<>();
    TabularBenchmark.visit(plan, node -> {
      if (node.metrics().contains("paddingTokens") && node.metrics().contains("modelTime")) {
        for (String name : List.of("modelRows", "batches", "tokens", "paddingTokens", "modelTime",
            "tokenizeTime")) {
          if (node.metrics().contains(name)) {
            metrics.put(name, node.metrics().apply(name));
          }
        }
      }
    });
    if (!metrics.keySet().containsAll(List.of("modelRows", "batches", "tokens", "paddingTokens",
        "modelTime"))) {
      return "not measured (no node with embed()'s text metrics in the plan; found "
          + metrics.keySet() + ")";
    }
    long modelRows = metrics.get("modelRows").value();
    long batches = metrics.get("batches").value();
    long tokens = metrics.get("tokens").value();
    long padding = metrics.get("paddingTokens").value();
    double coreSeconds = TabularBenchmark.seconds(wallNanos) * cores;
    String tokenizing = metrics.containsKey("tokenizeTime")
        ? String.format(Locale.ROOT, ", tokenizing %.2f s",
            TabularBenchmark.seconds(metrics.get("tokenizeTime").value()))
        : "";
    return String.format(Locale.ROOT, "one run from its physical plan: %.2f s wall, %,d batches"
        + " of %.1f rows on average, padding %.2f model tokens per real token; summed over tasks,"
        + " `session.run` %.2f s%s of %.2f core-seconds (%.0f%% in the model)",
        TabularBenchmark.seconds(wallNanos), batches, (double) modelRows / Math.max(batches, 1),
        (double) (tokens + padding) / Math.max(tokens, 1),
        TabularBenchmark.seconds(metrics.get("modelTime").value()), tokenizing, coreSeconds,
        100 * TabularBenchmark.seconds(metrics.get("modelTime").value()) / coreSeconds);
  }

  /** Warm-up on the rows with id below {@code warmUpRows}, then {@code timedRows} rows. */
  private static Measurement timeQuery(
      SparkSession spark,
      BenchmarkArguments arguments,
      MiniLm model,
      String key,
      String label,
      String query,
      int timedRows,
      int warmUpRows) {
    Measurement measurement = new Measurement(key, label, timedRows);
    writeToNoop(spark.sql(query).where(col("id").lt(warmUpRows)));
    for (int i = 0; i < arguments.repeat(); i++) {
      long runStart = System.nanoTime();
      Dataset<Row> result = spark.sql(query);
      writeToNoop(timedRows < arguments.rows() ? result.where(col("id").lt(timedRows)) : result);
      measurement.add(System.nanoTime() - runStart);
    }
    log("%s %s", model.label(), measurement.describe());
    return measurement;
  }

  /**
   * Correctness first: a fast wrong answer is not a result. Every variant's vectors for the
   * checked rows against langchain4j's embedding model, and against (a).
   */
  private static void check(
      SparkSession spark,
      MiniLm model,
      String[] texts,
      OrtEmbeddingLoop loop,
      String udfQuery,
      String embedQuery,
      ModelResult result)
      throws Exception {
    long[] ids = checkedIds(texts);
    EmbeddingModel referenceModel = model.reference();
    Map<Long, float[]> reference = new LinkedHashMap<>();
    for (long id : ids) {
      reference.put(id, referenceModel.embed(texts[(int) id]).content().vector());
    }

    Map<String, Map<Long, float[]>> variants = new LinkedHashMap<>();
    // Only the batches that hold a checked row: those rows get what a full run gives them.
    IntPredicate checked = row -> Arrays.binarySearch(ids, row) >= 0;
    variants.put("a", byId(loop.fixedOrder(texts, checked), ids));
    variants.put("b", byId(loop.lengthSorted(texts, checked), ids));
    variants.put("c", collect(spark.sql(udfQuery), ids));
    if (embedQuery != null) {
      variants.put("d", collect(spark.sql(embedQuery), ids));
    }

    Map<Long, float[]> fixedOrder = variants.get("a");
    for (Map.Entry<String, Map<Long, float[]>> variant : variants.entrySet()) {
      String key = variant.getKey();
      checkNorms(model, key, variant.getValue());
      result.referenceCosine.put(key,
          minimumCosine(model, key, "langchain4j's model", variant.getValue(), reference, texts,
              requiredCosine(model, BATCHED.contains(key))));
      if (!key.equals("a")) {
        result.fixedOrderCosine.put(key,
            minimumCosine(model, key, "(a)", variant.getValue(), fixedOrder, texts,
                requiredCosine(model, true)));
      }
    }
    log("%s: checked rows %s of every variant: minimum cosine vs langchain4j %s, vs (a) %s",
        model.label(), Arrays.toString(ids), format(result.referenceCosine),
        format(result.fixedOrderCosine));
  }

  /** The cosine a comparison must reach; {@code batched}: either side shares model calls. */
  static double requiredCosine(MiniLm model, boolean batched) {
    return model == MiniLm.INT8 && batched ? INT8_BATCHED_MIN_COSINE : MIN_COSINE;
  }

  private static void checkNorms(MiniLm model, String key, Map<Long, float[]> vectors) {
    for (Map.Entry<Long, float[]> row : vectors.entrySet()) {
      float[] vector = row.getValue();
      if (vector == null) {
        throw new IllegalStateException(model.label() + " variant (" + key + ") returned no"
            + " vector for row " + row.getKey());
      }
      double norm = Math.sqrt(dot(vector, vector));
      if (!(Math.abs(norm - 1) <= NORM_TOLERANCE)) {
        throw new IllegalStateException(String.format(Locale.ROOT,
            "%s variant (%s) returned a vector of length %.6f for row %d, not 1: the embedding"
                + " is L2-normalized", model.label(), key, norm, row.getKey()));
      }
    }
  }

  private static double dot(float[] left, float[] right) {
    double dot = 0;
    for (int i = 0; i < left.length; i++) {
      dot += (double) left[i] * right[i];
    }
    return dot;
  }

  private static double minimumCosine(
      MiniLm model,
      String key,
      String against,
      Map<Long, float[]> actual,
      Map<Long, float[]> expected,
      String[] texts,
      double required) {
    double minimum = 1;
    for (Map.Entry<Long, float[]> row : expected.entrySet()) {
      long id = row.getKey();
      float[] vector = actual.get(id);
      double cosine = SentenceEmbedder.cosine(vector, row.getValue());
      if (!(cosine >= required)) {
        String text = texts[(int) id];
        throw new IllegalStateException(String.format(Locale.ROOT,
            "%s variant (%s) disagrees with %s on row %d: cosine %.6f, below %s (%s; %d words:"
                + " \"%s\"). Its numbers would not be comparable; find the difference before"
                + " timing", model.label(), key, against, id, cosine, required,
            vector == null ? "no row" : vector.length + " dimensions",
            SentenceData.words(text), text.length() > 120 ? text.substring(0, 120) + "..." : text));
      }
      minimum = Math.min(minimum, cosine);
    }
    return minimum;
  }

  /**
   * Spread over the input, so that many partitions and batches are covered, plus the shortest and
   * the longest row (a truncated one, when any row is).
   */
  static long[] checkedIds(String[] texts) {
    int rows = texts.length;
    int shortest = 0;
    int longest = 0;
    for (int row = 1; row < rows; row++) {
      int words = SentenceData.words(texts[row]);
      shortest = words < SentenceData.words(texts[shortest]) ? row : shortest;
      longest = words > SentenceData.words(texts[longest]) ? row : longest;
    }
    int spread = CHECKED_ROWS - 2;
    return IntStream.concat(
            IntStream.range(0, spread).map(i -> (int) (i * (rows - 1L) / Math.max(spread - 1, 1))),
            IntStream.of(shortest, longest))
        .asLongStream()
        .distinct()
        .sorted()
        .toArray();
  }

  /** The cached input holds exactly the strings the raw ONNX Runtime variants embed. */
  private static void checkInputMatches(SparkSession spark, String[] texts, long[] ids) {
    Object[] boxed = Arrays.stream(ids).boxed().toArray();
    List<Row> cached = spark.table("docs").where(col("id").isin(boxed)).collectAsList();
    if (cached.size() != ids.length) {
      throw new IllegalStateException(
          "The cached input has " + cached.size() + " of the rows " + Arrays.toString(ids));
    }
    for (Row row : cached) {
      long id = row.getLong(0);
      if (!texts[(int) id].equals(row.getString(1))) {
        throw new IllegalStateException(
            "The cached input's row " + id + " differs from the text raw ONNX Runtime is given: \""
                + row.getString(1) + "\" vs \"" + texts[(int) id] + "\". The variants would not"
                + " see the same data");
      }
    }
  }

  private static Map<Long, float[]> byId(float[][] vectors, long[] ids) {
    Map<Long, float[]> result = new LinkedHashMap<>();
    for (long id : ids) {
      result.put(id, vectors[(int) id]);
    }
    return result;
  }

  private static String format(Map<String, Double> cosines) {
    return cosines.entrySet().stream()
        .map(entry -> String.format(Locale.ROOT, "(%s) %.6f", entry.getKey(), entry.getValue()))
        .collect(Collectors.joining(", "));
  }

  /** Words and tokens per row, over the whole input. */
  static final class LengthSummary {
    private final int[] words;
    private final int[] tokens;
    private final int truncated;

    private LengthSummary(int[] words, int[] tokens, int truncated) {
      this.words = words;
      this.tokens = tokens;
      this.truncated = truncated;
    }

    /** Tokens as fp32's tokenizer.json counts them; int8's must be the same file. */
    static LengthSummary of(String[] texts, Path folder) throws Exception {
      Path tokenizerFile = MiniLm.FP32.extractTokenizer(folder);
      Path otherFile = MiniLm.INT8.extractTokenizer(folder);
      if (Files.mismatch(tokenizerFile, otherFile) != -1) {
        throw new IllegalStateException(
            tokenizerFile + " and " + otherFile + " differ: the fp32 and int8 rows would be"
                + " tokenized differently, and the length summary would not hold for both");
      }
      try (HuggingFaceTokenizer tokenizer = SentenceEmbedder.loadTokenizer(tokenizerFile)) {
        Encoding[] encodings = tokenizer.batchEncode(texts);
        int[] words = Arrays.stream(texts).mapToInt(SentenceData::words).sorted().toArray();
        int[] tokens =
            Arrays.stream(encodings).mapToInt(encoding -> encoding.getIds().length).sorted()
                .toArray();
        int truncated = (int) Arrays.stream(encodings).filter(Encoding::exceedMaxLength).count();
        return new LengthSummary(words, tokens, truncated);
      }
    }

    String words() {
      return describe(words);
    }

    String tokens() {
      return describe(tokens) + String.format(Locale.ROOT, "; %,d rows (%.1f%%) truncated to %d",
          truncated, 100.0 * truncated / tokens.length, SentenceEmbedder.MAX_TOKENS);
    }

    private static String describe(int[] sorted) {
      return String.format(Locale.ROOT, "min %d, median %d, mean %.1f, p90 %d, max %d",
          sorted[0], sorted[sorted.length / 2], Arrays.stream(sorted).average().orElse(0),
          sorted[(int) (sorted.length * 0.9)], sorted[sorted.length - 1]);
    }
  }

  /** One model's measurements and checks. */
  static final class ModelResult {
    private final MiniLm model;
    private final List<Measurement> measurements = new ArrayList<>();
    private final Map<String, Double> referenceCosine = new LinkedHashMap<>();
    private final Map<String, Double> fixedOrderCosine = new LinkedHashMap<>();
    private double fixedOrderPadding = Double.NaN;
    private double lengthSortedPadding = Double.NaN;
    private String embedUnavailable;
    private String embedQuery;
    private String embedDiagnostics;

    ModelResult(MiniLm model) {
      this.model = model;
    }

    private Measurement measurement(String key) {
      return measurements.stream()
          .filter(measurement -> measurement.key().equals(key))
          .findFirst()
          .orElse(null);
    }
  }

  /** What RESULTS.md says about one run. */
  static final class Report {
    private final BenchmarkArguments arguments;
    private final String sparkVersion;
    private final String ortVersion;
    private final String startLoad;
    private final ZonedDateTime date = ZonedDateTime.now(ZoneOffset.UTC);
    private final List<ModelResult> models = new ArrayList<>();
    private LengthSummary lengths;
    private long[] checkedIds;
    private String endLoad = "unknown";

    Report(
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
      if (arguments.note() != null) {
        text.append("**Note:** ").append(arguments.note().strip()).append("\n\n");
      }

      text.append("| | |\n|---|---|\n");
      row(text, "Date (UTC)", DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").format(date));
      row(text, "Commit", TabularBenchmark.gitCommit());
      row(text, "CPU", TabularBenchmark.cpuModel());
      row(text, "Cores (N)", cores + " (local[" + cores + "]; the machine has "
          + Runtime.getRuntime().availableProcessors() + ")");
      row(text, "JVM", System.getProperty("java.vm.name") + " "
          + System.getProperty("java.runtime.version") + ", -Xmx"
          + Runtime.getRuntime().maxMemory() / (1024 * 1024) + "m");
      row(text, "Spark", sparkVersion);
      row(text, "ONNX Runtime", ortVersion + " (CPU)");
      row(text, "DJL tokenizers", String.valueOf(
          HuggingFaceTokenizer.class.getPackage().getSpecificationVersion()));
      row(text, "Models", models.stream()
          .map(result -> "`" + result.model.artifactId() + "` " + result.model.version())
          .collect(Collectors.joining(", ")));
      row(text, "sparkinfer-spark-udf", TabularBenchmark.jarOf(SparkInference.class));
      row(text, "Rows", String.format(Locale.ROOT, "%,d (%d to %d words, log-normal, median %d;"
          + " `SentenceData`)", arguments.rows(), SentenceData.MIN_WORDS, SentenceData.MAX_WORDS,
          SentenceData.MEDIAN_WORDS));
      row(text, "Words per row", lengths.words());
      row(text, "Tokens per row", lengths.tokens() + " (with [CLS] and [SEP])");
      row(text, "Raw ORT batch size", arguments.batchSize() + " rows");
      row(text, "Timing", "best of " + arguments.repeat() + " runs after an untimed warm-up on"
          + " the first " + Math.min(arguments.rows(), WARM_UP_ROWS) + " rows (median also"
          + " shown)");
      row(text, "Load average (1, 5, 15 min)", "start " + startLoad + "; end " + endLoad);
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
          + " while pooling bugs score about 0.3.%n", Arrays.toString(checkedIds), NORM_TOLERANCE,
          MIN_COSINE, MIN_COSINE, INT8_BATCHED_MIN_COSINE));
      text.append('\n');
      text.append("Reproduce: `./mvnw -q -B install -DskipTests && ./mvnw -q -B -pl benchmarks"
          + " exec:exec -Dbenchmark.main=io.github.sparkinfer.benchmarks.TextEmbeddingBenchmark"
          + " -Dbenchmark.args=\"--rows " + arguments.rows()
          + (arguments.udfRowsChanged() ? " --udf-rows " + arguments.udfRows() : "")
          + "\"`\n");
      return text.toString();
    }

    private void appendModel(StringBuilder text, ModelResult result) {
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
            FIXED_ORDER_TARGET));
        text.append(String.format(Locale.ROOT, "- (d) >= %.1f x (b): **not measured**%n",
            CEILING_TARGET));
        text.append("- (d) faster than (c): **not measured**\n\n");
        // Backticks in Spark's message would end the code span early.
        text.append("(d) is unavailable: the installed sparkinfer-spark-udf cannot analyze `")
            .append(result.embedQuery).append("`: ")
            .append(result.embedUnavailable.replace('`', '\'')).append('\n');
      } else {
        double best = embed.bestRowsPerSecond();
        target(text, String.format(Locale.ROOT, "(d) >= %.2f x (a)", FIXED_ORDER_TARGET),
            best >= FIXED_ORDER_TARGET * fixed.bestRowsPerSecond(),
            best / fixed.bestRowsPerSecond());
        target(text, String.format(Locale.ROOT, "(d) >= %.1f x (b)", CEILING_TARGET),
            best >= CEILING_TARGET * sorted.bestRowsPerSecond(),
            best / sorted.bestRowsPerSecond());
        target(text, "(d) faster than (c)", best > udf.bestRowsPerSecond(),
            best / udf.bestRowsPerSecond());
      }
      text.append('\n');
      text.append(String.format(Locale.ROOT, "Diagnostics: padding, as tokens given to the model"
          + " per real token (1.00 = none): (a) %.2f, (b) %.2f. Checks: minimum cosine vs"
          + " langchain4j %s; vs (a) %s.%n%n", result.fixedOrderPadding,
          result.lengthSortedPadding, format(result.referenceCosine),
          format(result.fixedOrderCosine)));
      if (result.embedDiagnostics != null) {
        text.append("(d) ").append(result.embedDiagnostics).append(".\n\n");
      }
    }

    private static void target(StringBuilder text, String name, boolean met, double ratio) {
      text.append(String.format(Locale.ROOT, "- %s: **%s** (measured %.2f x)%n", name,
          met ? "met" : "missed", ratio));
    }

    private static void row(StringBuilder text, String name, String value) {
      text.append("| ").append(name).append(" | ").append(value).append(" |\n");
    }
  }
}
