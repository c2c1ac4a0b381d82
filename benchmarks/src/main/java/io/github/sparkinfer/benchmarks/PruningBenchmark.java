package io.github.sparkinfer.benchmarks;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.compression.StructuredPruner;
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
 * Structured pruning, reported honestly (issue 19): the MLP 64-256-256-16 and all-MiniLM-L6-v2 fp32
 * pruned at three ratios by {@link StructuredPruner} (weight-norm score, no fine-tuning), each with
 * its file size, rows/s through Spark SQL on this CPU (best of --repeat after a warm-up) and its
 * agreement with the original on the same rows through {@link ModelValidation} (cosine, max error,
 * argmax agreement). Writes its section of RESULTS.md.
 *
 * <p>Arguments: --mlp-rows N (200000), --rows N texts (2000), --repeat N (3), --cores N, --results,
 * --work-dir.
 */
public final class PruningBenchmark {
  private static final double[] RATIOS = {0.25, 0.5, 0.75};

  private PruningBenchmark() {}

  public static void main(String[] arguments) throws Exception {
    long mlpRows = 200_000;
    long rows = 2_000;
    int repeat = 3;
    int cores = Runtime.getRuntime().availableProcessors();
    Path results = Path.of("benchmarks/RESULTS.md");
    Path work = Path.of("target/benchmark-data");
    for (int i = 0; i < arguments.length; i += 2) {
      switch (arguments[i]) {
        case "--mlp-rows": mlpRows = Long.parseLong(arguments[i + 1]); break;
        case "--rows": rows = Long.parseLong(arguments[i + 1]); break;
        case "--repeat": repeat = Integer.parseInt(arguments[i + 1]); break;
        case "--cores": cores = Integer.parseInt(arguments[i + 1]); break;
        case "--results": results = Path.of(arguments[i + 1]); break;
        case "--work-dir": work = Path.of(arguments[i + 1]); break;
        default: throw new IllegalArgumentException("Unknown argument " + arguments[i]
            + "; use --mlp-rows, --rows, --repeat, --cores, --results, --work-dir");
      }
    }
    Files.createDirectories(work);
    SparkSession spark = LocalSpark.session("sparkinfer-pruning-benchmark", cores);
    List<String> body = new ArrayList<>();
    body.add("<!-- Written by io.github.sparkinfer.benchmarks.PruningBenchmark: run it again rather than editing this section. -->");
    body.add("");
    body.add(String.format(Locale.ROOT, "%s, commit %s, CPU %s, local[%d]; best of %d runs after a warm-up, noop sink."
        + " Pruned by `StructuredPruner` (weight-norm score: sqrt(|incoming|² + bias²) × |outgoing|), with no"
        + " fine-tuning afterwards; agreement with the original on the same rows through `ModelValidation`. Not run on"
        + " the GPU host (this session's device time was spent on issue 17).", Instant.now(), RunEnvironment.gitCommit(),
        RunEnvironment.cpuModel(), cores, repeat));
    body.add("");
    body.add("| model | hidden units per chain | file MB | rows/s | vs original | mean cosine | lowest cosine |"
        + " max abs error | argmax agreement |");
    body.add("|---|---|---:|---:|---:|---:|---:|---:|---:|");

    Path mlp = work.resolve("pruning-mlp.onnx");
    MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 16).seed(42).inputName("features")
        .outputName("scores").build().writeTo(mlp);
    Dataset<Row> points = TabularData.generate(spark, mlpRows, cores * 2).cache();
    points.count();
    points.createOrReplaceTempView("points");
    spark.conf().set("spark.sparkinfer.model.mlp.path", mlp.toUri().toString());
    double mlpRate = rate(spark, "SELECT id, predict('mlp', features) AS s FROM points", "mlp", mlpRows, repeat);
    body.add(String.format(Locale.ROOT, "| MLP 64-256-256-16 (random weights, seed 42) | 256, 256 | %.2f | %,.0f | 1.00 |"
        + " 1 | 1 | 0 | 1 |", Files.size(mlp) / 1e6, mlpRate));
    for (double ratio : RATIOS) {
      String name = "mlp_p" + Math.round(ratio * 100);
      StructuredPruner.Result pruned = StructuredPruner.ofRatio(ratio).prune(OnnxModel.read(mlp));
      Path file = work.resolve("pruning-" + name + ".onnx");
      pruned.model().writeTo(file);
      spark.conf().set("spark.sparkinfer.model." + name + ".path", file.toUri().toString());
      double rate = rate(spark, "SELECT id, predict('" + name + "', features) AS s FROM points", name, mlpRows, repeat);
      ModelValidation.Report report = ModelValidation.builder("mlp", name).inputs("features").minMeanCosine(-1).minCosine(-1)
          .build().validate(points);
      body.add(row("MLP pruned " + Math.round(ratio * 100) + " %", pruned, file, rate, mlpRate, report));
    }

    Path minilm = MiniLm.FP32.extractModel(work);
    String tokenizer = MiniLm.FP32.extractTokenizer(work).toUri().toString();
    Dataset<Row> docs = SentenceData.generate(spark, rows, cores * 2).cache();
    docs.count();
    docs.createOrReplaceTempView("docs");
    register(spark, "minilm", minilm, tokenizer);
    double textRate = rate(spark, "SELECT id, embed('minilm', body) AS e FROM docs", "minilm", rows, repeat);
    body.add(String.format(Locale.ROOT, "| all-MiniLM-L6-v2 fp32, embed() | 1536 × 6 | %.2f | %,.1f | 1.00 | 1 | 1 | 0 | |",
        Files.size(minilm) / 1e6, textRate));
    for (double ratio : RATIOS) {
      String name = "minilm_p" + Math.round(ratio * 100);
      StructuredPruner.Result pruned = StructuredPruner.ofRatio(ratio).prune(OnnxModel.read(minilm));
      Path file = work.resolve("pruning-" + name + ".onnx");
      pruned.model().writeTo(file);
      register(spark, name, file, tokenizer);
      double rate = rate(spark, "SELECT id, embed('" + name + "', body) AS e FROM docs", name, rows, repeat);
      ModelValidation.Report report = ModelValidation.builder("minilm", name).embed("body").minMeanCosine(-1).minCosine(-1)
          .build().validate(docs);
      body.add(row("MiniLM pruned " + Math.round(ratio * 100) + " %, embed()", pruned, file, rate, textRate, report));
    }
    body.add("");
    body.add("Read with care: the speed-ups are real (smaller dense matrices), but without fine-tuning the pruned models"
        + " drift far from the originals, and fast with the ratio — the MLP's weights are random (no unit matters"
        + " less than another by design), and MiniLM's feed-forward units were not trained to be removed. Weight norms"
        + " alone are a weak score; activation statistics on the user's data and a short fine-tune or distillation"
        + " (issue 19's later parts) are what make pruning usable. For embed(), argmax agreement compares the largest"
        + " dimension of each vector, not a label. Mean cosine of the MLP's 16 outputs and of MiniLM's unit vectors.");
    body.add("");
    body.add("Reproduce: `./mvnw -q -B install -DskipTests && ./mvnw -q -B -pl benchmarks exec:exec"
        + " -Dbenchmark.main=io.github.sparkinfer.benchmarks.PruningBenchmark`");
    ResultsFile.replaceSection(results, "## Structured pruning (issue 19)", String.join("\n", body));
    body.forEach(System.out::println);
    spark.stop();
  }

  private static void register(SparkSession spark, String name, Path model, String tokenizer) {
    spark.conf().set("spark.sparkinfer.model." + name + ".path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model." + name + ".tokenizer", tokenizer);
  }

  private static double rate(SparkSession spark, String query, String key, long rows, int repeat) {
    Measurement measurement = QueryRunner.time(key, "`" + query + "`", rows, repeat, () -> spark.sql(query),
        () -> spark.sql(query + " WHERE id < 200"));
    RunEnvironment.log("%s", measurement.describe());
    return measurement.bestRowsPerSecond();
  }

  private static String row(String label, StructuredPruner.Result pruned, Path file, double rate, double originalRate,
      ModelValidation.Report report) throws java.io.IOException {
    StringBuilder units = new StringBuilder();
    for (StructuredPruner.Chain chain : pruned.chains()) {
      if (units.length() > 0) {
        units.append(", ");
      }
      units.append(chain.unitsAfter());
    }
    String hidden = pruned.chains().size() > 2 ? pruned.chains().get(0).unitsAfter() + " × " + pruned.chains().size()
        : units.toString();
    return String.format(Locale.ROOT, "| %s | %s | %.2f | %,.0f | %.2f | %.6f | %.6f | %.3g | %s |", label, hidden,
        Files.size(file) / 1e6, rate, rate / originalRate, report.meanCosine(), report.minCosine(),
        report.maxAbsError(), Double.isNaN(report.argmaxAgreement()) ? "" : String.format(Locale.ROOT, "%.4f",
            report.argmaxAgreement()));
  }
}
