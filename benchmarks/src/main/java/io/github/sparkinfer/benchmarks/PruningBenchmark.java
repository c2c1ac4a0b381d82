package io.github.sparkinfer.benchmarks;

import io.github.sparkinfer.compression.MagnitudePruner;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.compression.StructuredPruner;
import io.github.sparkinfer.spark.ActivationStatistics;
import io.github.sparkinfer.spark.ModelValidation;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Pruning, reported honestly (issue 19): the MLP 64-256-256-16 and all-MiniLM-L6-v2 fp32 pruned at
 * three ratios three ways (no fine-tuning): {@link StructuredPruner} scoring units by weights, the
 * same scoring by activations that {@link ActivationStatistics} sums over a 10 % sample, and
 * {@link MagnitudePruner} (unstructured). Each with its file size (and gzip size), rows/s through
 * Spark SQL (best of --repeat after a warm-up) and its agreement with the original on the held-out
 * 90 % through {@link ModelValidation} (cosine, max error, argmax agreement). Writes its section of
 * RESULTS.md.
 *
 * <p>Arguments: --mlp-rows N (4000000), --rows N texts (2000), --repeat N (3), --cores N, --device D
 * (the session's default: auto), --seconds S (each timed run repeats its query until S seconds; 0,
 * one pass), --only mlp|text, --results, --work-dir.
 */
public final class PruningBenchmark {
  private static final double[] RATIOS = {0.25, 0.5, 0.75};

  private PruningBenchmark() {}

  public static void main(String[] arguments) throws Exception {
    long mlpRows = 4_000_000;
    long rows = 2_000;
    int repeat = 3;
    int cores = Runtime.getRuntime().availableProcessors();
    Path results = Path.of("benchmarks/RESULTS.md");
    Path work = Path.of("target/benchmark-data");
    String only = "all";
    String device = null;
    for (int i = 0; i < arguments.length; i += 2) {
      switch (arguments[i]) {
        case "--only": only = arguments[i + 1]; break;
        case "--device": device = arguments[i + 1]; break;
        case "--seconds": seconds = Double.parseDouble(arguments[i + 1]); break;
        case "--mlp-rows": mlpRows = Long.parseLong(arguments[i + 1]); break;
        case "--rows": rows = Long.parseLong(arguments[i + 1]); break;
        case "--repeat": repeat = Integer.parseInt(arguments[i + 1]); break;
        case "--cores": cores = Integer.parseInt(arguments[i + 1]); break;
        case "--results": results = Path.of(arguments[i + 1]); break;
        case "--work-dir": work = Path.of(arguments[i + 1]); break;
        default: throw new IllegalArgumentException("Unknown argument " + arguments[i]
            + "; use --mlp-rows, --rows, --repeat, --cores, --device, --seconds, --only mlp|text, --results, --work-dir");
      }
    }
    Files.createDirectories(work);
    SparkSession spark = LocalSpark.session("sparkinfer-pruning-benchmark", cores);
    if (device != null) {
      spark.conf().set("spark.sparkinfer.device", device);
    }
    String where = device == null || device.equals("cpu") ? "CPU " + RunEnvironment.cpuModel()
        : "device " + device + " (" + RunEnvironment.gpuName() + "), host CPU " + RunEnvironment.cpuModel();
    List<String> body = new ArrayList<>();
    body.add("<!-- Written by io.github.sparkinfer.benchmarks.PruningBenchmark: run it again rather than editing this section. -->");
    body.add("");
    body.add(String.format(Locale.ROOT, "%s, commit %s, %s, local[%d]; best of %d runs after a warm-up%s, noop sink."
        + " Each model pruned three ways, with no fine-tuning afterwards: `StructuredPruner` scoring units by weights"
        + " (sqrt(|incoming|² + bias²) × |outgoing|); the same scoring units by activations (sqrt(Σ a²) × |outgoing|,"
        + " Σ a² summed by `ActivationStatistics`, a Spark job, over the 10 %% of rows with id %% 10 = 0); and"
        + " `MagnitudePruner` (unstructured: that share of each weight matrix set to 0). Agreement with the original"
        + " through `ModelValidation` on the other 90 %% (held out from the statistics). gzip MB: the file after"
        + " java.util.zip at the default level, what a zero-heavy file saves in transfer.", Instant.now(),
        RunEnvironment.gitCommit(), where, cores, repeat,
        seconds > 0 ? String.format(Locale.ROOT, " (each run the query repeated for at least %.0f s)", seconds) : ""));
    body.add("");
    body.add("| model | pruned | hidden units per chain | file MB | gzip MB | rows/s | vs original | mean cosine |"
        + " lowest cosine | max abs error | argmax agreement |");
    body.add("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");

    if (!only.equals("text")) {
    Path mlp = work.resolve("pruning-mlp.onnx");
    MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 16).seed(42).inputName("features")
        .outputName("scores").build().writeTo(mlp);
    Dataset<Row> points = TabularData.generate(spark, mlpRows, cores * 2).cache();
    points.count();
    points.createOrReplaceTempView("points");
    spark.conf().set("spark.sparkinfer.model.mlp.path", mlp.toUri().toString());
    Models tabular = new Models(spark, work, "mlp", "MLP 64-256-256-16 (random weights, seed 42)", mlp, null,
        "SELECT id, predict('%s', features) AS s FROM points", mlpRows, repeat, points);
    body.addAll(tabular.rows());
    points.unpersist();
    }

    if (!only.equals("mlp")) {
    Path minilm = MiniLm.FP32.extractModel(work);
    String tokenizer = MiniLm.FP32.extractTokenizer(work).toUri().toString();
    Dataset<Row> docs = SentenceData.generate(spark, rows, cores * 2).cache();
    docs.count();
    docs.createOrReplaceTempView("docs");
    register(spark, "minilm", minilm, tokenizer);
    Models text = new Models(spark, work, "minilm", "all-MiniLM-L6-v2 fp32, embed()", minilm, tokenizer,
        "SELECT id, embed('%s', body) AS e FROM docs", rows, repeat, docs);
    body.addAll(text.rows());
    }
    body.add("");
    body.add("Read with care: the structured speed-ups are real (smaller dense matrices), but without fine-tuning the"
        + " pruned models drift from the originals, and fast with the ratio: the MLP's weights are random (no unit"
        + " matters less than another by design), and MiniLM's feed-forward units were not trained to be removed."
        + " Scoring by activations on the user's rows is what the comparison with weight scores measures. Magnitude"
        + " pruning keeps the shapes and dense storage: the file is as large and the model as fast (rows/s within this"
        + " VM's spread); only the gzip column moves — pair it with a compressor, or use structured pruning. For"
        + " embed(), argmax agreement compares the largest dimension of each vector, not a label. Mean cosine of the"
        + " MLP's 16 outputs and of MiniLM's unit vectors. Distillation (below) trains a small model to imitate the"
        + " large one instead.");
    body.add("");
    body.add("Reproduce: `./mvnw -q -B install -DskipTests && ./mvnw -q -B -pl benchmarks exec:exec"
        + " -Dbenchmark.main=io.github.sparkinfer.benchmarks.PruningBenchmark`");
    String heading = "## Structured pruning (issue 19)" + (device == null || device.equals("cpu") ? "" : ", GPU")
        + (only.equals("all") ? "" : ", " + only);
    ResultsFile.replaceSection(results, heading, String.join("\n", body));
    body.forEach(System.out::println);
    spark.stop();
  }

  /** One original model, its speed, and its pruned variants' rows of the table. */
  private static final class Models {
    private final SparkSession spark;
    private final Path work;
    private final String name;
    private final String label;
    private final Path original;
    private final String tokenizer;
    private final String query;
    private final long rows;
    private final int repeat;
    private final Dataset<Row> heldOut;
    private final ActivationStatistics.Statistics statistics;

    Models(SparkSession spark, Path work, String name, String label, Path original, String tokenizer, String query,
        long rows, int repeat, Dataset<Row> table) {
      this.spark = spark;
      this.work = work;
      this.name = name;
      this.label = label;
      this.original = original;
      this.tokenizer = tokenizer;
      this.query = query;
      this.rows = rows;
      this.repeat = repeat;
      this.heldOut = table.where("id % 10 != 0");
      ActivationStatistics.Builder builder = ActivationStatistics.builder(name);
      this.statistics = (tokenizer == null ? builder.inputs("features") : builder.embed("body")).build()
          .collect(table.where("id % 10 = 0"));
    }

    List<String> rows() throws Exception {
      double firstRate = rate(spark, String.format(Locale.ROOT, query, name), name, rows, repeat);
      OnnxModel model = OnnxModel.read(original);
      List<Variant> variants = new ArrayList<>();
      for (double ratio : RATIOS) {
        int percent = (int) Math.round(ratio * 100);
        variants.add(structured(percent + " % of units, by weights", name + "_w" + percent,
            StructuredPruner.ofRatio(ratio).prune(model)));
        variants.add(structured(percent + " % of units, by activations", name + "_a" + percent,
            statistics.pruner(ratio).prune(model)));
        MagnitudePruner.Result zeroed = MagnitudePruner.ofRatio(ratio).prune(model);
        variants.add(measure(percent + " % of weights set to 0 (magnitude)", name + "_m" + percent, zeroed.model(),
            tokenizer == null ? "256, 256" : "1536 × 6"));
      }
      // The original again, last: the first pass also warmed the JVM, and its best must not gain from that.
      double lastRate = rate(spark, String.format(Locale.ROOT, query, name), name, rows, repeat);
      double originalRate = Math.max(firstRate, lastRate);
      List<String> table = new ArrayList<>();
      table.add(String.format(Locale.ROOT, "| %s | — | %s | %.2f | %.2f | %,.0f (first %,.0f, last %,.0f) | 1.00 | 1 |"
          + " 1 | 0 | 1 |", label, tokenizer == null ? "256, 256" : "1536 × 6", Files.size(original) / 1e6,
          gzipMegabytes(original), originalRate, firstRate, lastRate));
      for (Variant variant : variants) {
        table.add(variant.row(originalRate));
      }
      return table;
    }

    private Variant structured(String how, String variant, StructuredPruner.Result pruned) throws Exception {
      String hidden = pruned.chains().size() > 2 ? pruned.chains().get(0).unitsAfter() + " × " + pruned.chains().size()
          : String.join(", ", pruned.chains().stream().map(chain -> String.valueOf(chain.unitsAfter())).toList());
      return measure(how, variant, pruned.model(), hidden);
    }

    private Variant measure(String how, String variant, OnnxModel model, String hidden) throws Exception {
      Path file = work.resolve("pruning-" + variant + ".onnx");
      model.writeTo(file);
      spark.conf().set("spark.sparkinfer.model." + variant + ".path", file.toUri().toString());
      if (tokenizer != null) {
        spark.conf().set("spark.sparkinfer.model." + variant + ".tokenizer", tokenizer);
      }
      double rate = rate(spark, String.format(Locale.ROOT, query, variant), variant, rows, repeat);
      ModelValidation.Builder validation = ModelValidation.builder(name, variant).minMeanCosine(-1).minCosine(-1);
      ModelValidation.Report report = (tokenizer == null ? validation.inputs("features") : validation.embed("body"))
          .build().validate(heldOut);
      return new Variant(how, hidden, Files.size(file) / 1e6, gzipMegabytes(file), rate, report);
    }
  }

  /** One pruned model's figures. */
  private static final class Variant {
    private final String how;
    private final String hidden;
    private final double megabytes;
    private final double gzipMegabytes;
    private final double rate;
    private final ModelValidation.Report report;

    Variant(String how, String hidden, double megabytes, double gzipMegabytes, double rate,
        ModelValidation.Report report) {
      this.how = how;
      this.hidden = hidden;
      this.megabytes = megabytes;
      this.gzipMegabytes = gzipMegabytes;
      this.rate = rate;
      this.report = report;
    }

    String row(double originalRate) {
      return String.format(Locale.ROOT, "| | %s | %s | %.2f | %.2f | %,.0f | %.2f | %.6f | %.6f | %.3g | %s |", how,
          hidden, megabytes, gzipMegabytes, rate, rate / originalRate, report.meanCosine(), report.minCosine(),
          report.maxAbsError(), Double.isNaN(report.argmaxAgreement()) ? ""
              : String.format(Locale.ROOT, "%.4f", report.argmaxAgreement()));
    }
  }

  private static double gzipMegabytes(Path file) throws java.io.IOException {
    CountingStream counter = new CountingStream();
    try (java.util.zip.GZIPOutputStream gzip = new java.util.zip.GZIPOutputStream(counter, 1 << 16)) {
      Files.copy(file, gzip);
    }
    return counter.count / 1e6;
  }

  private static final class CountingStream extends java.io.OutputStream {
    long count;

    @Override
    public void write(int b) {
      count++;
    }

    @Override
    public void write(byte[] b, int off, int len) {
      count += len;
    }
  }

  private static void register(SparkSession spark, String name, Path model, String tokenizer) {
    spark.conf().set("spark.sparkinfer.model." + name + ".path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model." + name + ".tokenizer", tokenizer);
  }

  /** Each timed run at least --seconds long (the query repeated until then; one pass when 0). */
  static double seconds = 0;

  private static double rate(SparkSession spark, String query, String key, long rows, int repeat) {
    QueryRunner.writeToNoop(spark.sql(query + " WHERE id < 200"));
    double best = 0;
    StringBuilder runs = new StringBuilder();
    for (int run = 0; run < repeat; run++) {
      long start = System.nanoTime();
      long passes = 0;
      do {
        QueryRunner.writeToNoop(spark.sql(query));
        passes++;
      } while ((System.nanoTime() - start) / 1e9 < seconds);
      double elapsed = (System.nanoTime() - start) / 1e9;
      best = Math.max(best, passes * rows / elapsed);
      runs.append(String.format(Locale.ROOT, "%s%.2f s (%d passes)", run == 0 ? "" : ", ", elapsed, passes));
    }
    RunEnvironment.log("(%s) `%s`: %,d rows, best %,.0f rows/s (runs: %s)", key, query, rows, best, runs);
    return best;
  }
}
