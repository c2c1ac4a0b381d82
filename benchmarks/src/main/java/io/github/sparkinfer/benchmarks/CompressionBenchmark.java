package io.github.sparkinfer.benchmarks;

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
 * all-MiniLM-L6-v2 int8 made by sparkinfer's compressor (precision=int8, from the fp32 file)
 * against ONNX Runtime's own Python quantizer's int8 (langchain4j's -q artifact) and fp32, in one
 * JVM through embed() on the same cached sentences: rows/s, and cosine to fp32 with
 * ModelValidation. Rewrites the "## Compression (all-MiniLM-L6-v2 int8)" section of RESULTS.md.
 *
 * <p>Arguments: --rows N (2000), --repeat N (3), --cores N (all), --results FILE.
 */
public final class CompressionBenchmark {
  private CompressionBenchmark() {}

  public static void main(String[] arguments) throws Exception {
    long rows = 2000;
    int repeat = 3;
    int cores = Runtime.getRuntime().availableProcessors();
    Path results = Path.of("benchmarks/RESULTS.md");
    Path work = Path.of("target/benchmark-data");
    for (int i = 0; i < arguments.length; i += 2) {
      switch (arguments[i]) {
        case "--rows": rows = Long.parseLong(arguments[i + 1]); break;
        case "--repeat": repeat = Integer.parseInt(arguments[i + 1]); break;
        case "--cores": cores = Integer.parseInt(arguments[i + 1]); break;
        case "--results": results = Path.of(arguments[i + 1]); break;
        case "--work-dir": work = Path.of(arguments[i + 1]); break;
        default: throw new IllegalArgumentException("Unknown argument " + arguments[i]
            + "; use --rows, --repeat, --cores, --results, --work-dir");
      }
    }
    Files.createDirectories(work);
    SparkSession spark = LocalSpark.session("sparkinfer-compression-benchmark", cores);
    String fp32 = MiniLm.FP32.extractModel(work).toUri().toString();
    String tokenizer = MiniLm.FP32.extractTokenizer(work).toUri().toString();
    register(spark, "minilm", fp32, tokenizer, "fp32");
    register(spark, "minilm_ours", fp32, tokenizer, "int8");
    register(spark, "minilm_ort", MiniLm.INT8.extractModel(work).toUri().toString(), tokenizer, "fp32");
    Dataset<Row> docs = SentenceData.generate(spark, rows, cores * 2).cache();
    docs.count();
    docs.createOrReplaceTempView("docs");
    double fp32Rate = rate(spark, "minilm", repeat, rows);
    double oursRate = rate(spark, "minilm_ours", repeat, rows);
    double ortRate = rate(spark, "minilm_ort", repeat, rows);
    ModelValidation.Report ours = ModelValidation.builder("minilm", "minilm_ours").embed("body").minMeanCosine(0).build().validate(docs);
    ModelValidation.Report ort = ModelValidation.builder("minilm", "minilm_ort").embed("body").minMeanCosine(0).build().validate(docs);
    List<String> body = new ArrayList<>();
    body.add("<!-- Written by io.github.sparkinfer.benchmarks.CompressionBenchmark: run it again rather than editing this section. -->");
    body.add("");
    body.add(String.format(Locale.ROOT, "%s, commit %s, %s, local[%d], %,d generated sentences (3-200 words), embed() through"
        + " Spark SQL, best of %d runs after a warm-up. Both int8 models run one text per call (dynamic quantization:"
        + " exact per-text results), fp32 in length-sorted batches.", Instant.now(), TabularBenchmark.gitCommit(),
        TabularBenchmark.cpuModel(), cores, rows, repeat));
    body.add("");
    body.add("| model | rows/s | vs fp32 | vs ORT's int8 | mean cosine to fp32 | lowest cosine | argmax agreement |");
    body.add("|---|---:|---:|---:|---:|---:|---:|");
    body.add(String.format(Locale.ROOT, "| fp32 (langchain4j artifact) | %.1f | 1.00 | | 1 | 1 | 1 |", fp32Rate));
    body.add(String.format(Locale.ROOT, "| int8 by ONNX Runtime's Python quantizer (-q artifact) | %.1f | %.2f | 1.00 | %.6f | %.6f | %.4f |",
        ortRate, ortRate / fp32Rate, ort.meanCosine(), ort.minCosine(), ort.argmaxAgreement()));
    body.add(String.format(Locale.ROOT, "| int8 by sparkinfer (precision=int8, per channel) | %.1f | %.2f | %.2f | %.6f | %.6f | %.4f |",
        oursRate, oursRate / fp32Rate, oursRate / ortRate, ours.meanCosine(), ours.minCosine(), ours.argmaxAgreement()));
    body.add("");
    body.add(String.format(Locale.ROOT, "Targets: ours >= 0.95 x ORT's int8 throughput: **%s** (%.2f x); ours >= 1.6 x fp32:"
        + " **%s** (%.2f x); ours at least as close to fp32 as ORT's int8: **%s** (%.6f vs %.6f).",
        oursRate >= 0.95 * ortRate ? "met" : "missed", oursRate / ortRate,
        oursRate >= 1.6 * fp32Rate ? "met" : "missed", oursRate / fp32Rate,
        ours.meanCosine() >= ort.meanCosine() ? "met" : "missed", ours.meanCosine(), ort.meanCosine()));
    body.add("");
    body.add("Reproduce: `./mvnw -q -B install -DskipTests && ./mvnw -q -B -pl benchmarks exec:exec"
        + " -Dbenchmark.main=io.github.sparkinfer.benchmarks.CompressionBenchmark -Dbenchmark.args=\"--rows " + rows + "\"`");
    ResultsFile.replaceSection(results, "## Compression (all-MiniLM-L6-v2 int8)", String.join("\n", body));
    body.forEach(System.out::println);
    spark.stop();
  }

  private static void register(SparkSession spark, String name, String model, String tokenizer, String precision) {
    spark.conf().set("spark.sparkinfer.model." + name + ".path", model);
    spark.conf().set("spark.sparkinfer.model." + name + ".tokenizer", tokenizer);
    spark.conf().set("spark.sparkinfer.model." + name + ".precision", precision);
  }

  private static double rate(SparkSession spark, String model, int repeat, long rows) {
    String query = "SELECT id, embed('" + model + "', body) AS e FROM docs";
    spark.sql(query + " WHERE id < 200").write().format("noop").mode("overwrite").save();
    double best = 0;
    for (int run = 0; run < repeat; run++) {
      long start = System.nanoTime();
      spark.sql(query).write().format("noop").mode("overwrite").save();
      double seconds = (System.nanoTime() - start) / 1e9;
      best = Math.max(best, rows / seconds);
      System.out.printf(Locale.ROOT, "%s: %.2f s, %.1f rows/s%n", model, seconds, rows / seconds);
    }
    return best;
  }
}
