package io.github.sparkinfer.benchmarks;

import io.github.sparkinfer.compression.Int8KernelProbe;
import io.github.sparkinfer.compression.Int8Scheme;
import io.github.sparkinfer.compression.ProcessorDescription;
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
 * ModelValidation; sparkinfer's int8 with the scheme chosen for this CPU and with the two others
 * forced. Rewrites the "## Compression (all-MiniLM-L6-v2 int8) on &lt;CPU&gt;" section of RESULTS.md,
 * one section per kind of CPU.
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
    register(spark, "minilm", fp32, tokenizer, "fp32", "auto");
    register(spark, "minilm_ort", MiniLm.INT8.extractModel(work).toUri().toString(), tokenizer, "fp32", "auto");
    register(spark, "minilm_ours", fp32, tokenizer, "int8", "auto");
    register(spark, "minilm_paired", fp32, tokenizer, "int8", "u8s8-paired");
    register(spark, "minilm_u8u8", fp32, tokenizer, "int8", "u8u8");
    register(spark, "minilm_reduced", fp32, tokenizer, "int8", "u8s8-reduced");
    Dataset<Row> docs = SentenceData.generate(spark, rows, cores * 2).cache();
    docs.count();
    docs.createOrReplaceTempView("docs");
    double fp32Rate = rate(spark, "minilm", repeat, rows);
    double ortRate = rate(spark, "minilm_ort", repeat, rows);
    double oursRate = rate(spark, "minilm_ours", repeat, rows);
    double pairedRate = rate(spark, "minilm_paired", repeat, rows);
    double u8u8Rate = rate(spark, "minilm_u8u8", repeat, rows);
    double reducedRate = rate(spark, "minilm_reduced", repeat, rows);
    ModelValidation.Report ort = validate("minilm_ort", docs);
    ModelValidation.Report ours = validate("minilm_ours", docs);
    ModelValidation.Report paired = validate("minilm_paired", docs);
    ModelValidation.Report u8u8 = validate("minilm_u8u8", docs);
    ModelValidation.Report reduced = validate("minilm_reduced", docs);
    Int8KernelProbe.Result probe = Int8KernelProbe.result();
    List<String> body = new ArrayList<>();
    body.add("<!-- Written by io.github.sparkinfer.benchmarks.CompressionBenchmark: run it again rather than editing this section. -->");
    body.add("");
    body.add(String.format(Locale.ROOT, "%s, commit %s, CPU %s, local[%d], %,d generated sentences (3-200 words), embed()"
        + " through Spark SQL, best of %d runs after a warm-up. The int8 models run one text per call (dynamic"
        + " quantization: exact per-text results), fp32 in length-sorted batches. int8 scheme probe on this CPU: %s.",
        Instant.now(), RunEnvironment.gitCommit(), RunEnvironment.cpuModel(), cores, rows, repeat,
        probe.signedWeightsExact() ? "u8 x s8 exact, auto = u8s8"
            : probe.pairedWeightsExact() ? "u8 x s8 saturates past pairs of 128, auto = u8s8-paired"
            : "u8 x s8 saturates, auto = u8u8"));
    body.add("");
    body.add("| model | rows/s | vs fp32 | vs ORT's int8 | mean cosine to fp32 | lowest cosine | argmax agreement |");
    body.add("|---|---:|---:|---:|---:|---:|---:|");
    body.add(String.format(Locale.ROOT, "| fp32 (langchain4j artifact) | %.1f | 1.00 | | 1 | 1 | 1 |", fp32Rate));
    body.add(row("int8 by ONNX Runtime's Python quantizer (-q artifact, u8s8)", ortRate, fp32Rate, ortRate, ort));
    body.add(row("int8 by sparkinfer (precision=int8, per channel, int8Scheme=auto: "
        + Int8Scheme.forThisProcessor().shortName() + ")", oursRate, fp32Rate, ortRate, ours));
    body.add(row("int8 by sparkinfer, int8Scheme=u8s8-paired (forced)", pairedRate, fp32Rate, ortRate, paired));
    body.add(row("int8 by sparkinfer, int8Scheme=u8u8 (forced)", u8u8Rate, fp32Rate, ortRate, u8u8));
    body.add(row("int8 by sparkinfer, int8Scheme=u8s8-reduced (forced)", reducedRate, fp32Rate, ortRate, reduced));
    body.add("");
    body.add(String.format(Locale.ROOT, "Targets (ours = auto): ours >= 0.95 x ORT's int8 throughput: **%s** (%.2f x); ours at"
        + " least ORT's int8 speed-up over fp32: **%s** (%.2f x vs %.2f x); mean cosine at least ORT's int8 and >= 0.99:"
        + " **%s** (%.6f vs %.6f).",
        oursRate >= 0.95 * ortRate ? "met" : "missed", oursRate / ortRate,
        oursRate >= ortRate ? "met" : "missed", oursRate / fp32Rate, ortRate / fp32Rate,
        ours.meanCosine() >= ort.meanCosine() && ours.meanCosine() >= 0.99 ? "met" : "missed",
        ours.meanCosine(), ort.meanCosine()));
    body.add("");
    body.add("Reproduce: `./mvnw -q -B install -DskipTests && ./mvnw -q -B -pl benchmarks exec:exec"
        + " -Dbenchmark.main=io.github.sparkinfer.benchmarks.CompressionBenchmark -Dbenchmark.args=\"--rows " + rows + "\"`");
    // One section per kind of CPU, so figures from other CPUs stay next to these.
    ResultsFile.replaceSection(results, "## Compression (all-MiniLM-L6-v2 int8) on " + cpuKind(), String.join("\n", body));
    body.forEach(System.out::println);
    spark.stop();
  }

  /** For example "Intel(R) Xeon(R) Processor, AVX-512 and VNNI". */
  private static String cpuKind() {
    ProcessorDescription processor = ProcessorDescription.current();
    boolean avx512 = processor.int8Flags().contains("avx512f");
    return processor.model() + ", " + (avx512 ? "AVX-512" : "no AVX-512") + (processor.hasVnni() ? " and VNNI" : ", no VNNI");
  }

  private static ModelValidation.Report validate(String model, Dataset<Row> docs) {
    return ModelValidation.builder("minilm", model).embed("body").minMeanCosine(0).build().validate(docs);
  }

  private static String row(String label, double rate, double fp32Rate, double ortRate, ModelValidation.Report report) {
    return String.format(Locale.ROOT, "| %s | %.1f | %.2f | %.2f | %.6f | %.6f | %.4f |", label, rate, rate / fp32Rate,
        rate / ortRate, report.meanCosine(), report.minCosine(), report.argmaxAgreement());
  }

  private static void register(SparkSession spark, String name, String model, String tokenizer, String precision,
      String int8Scheme) {
    spark.conf().set("spark.sparkinfer.model." + name + ".int8Scheme", int8Scheme);
    spark.conf().set("spark.sparkinfer.model." + name + ".path", model);
    spark.conf().set("spark.sparkinfer.model." + name + ".tokenizer", tokenizer);
    spark.conf().set("spark.sparkinfer.model." + name + ".precision", precision);
  }

  private static double rate(SparkSession spark, String model, int repeat, long rows) {
    String query = "SELECT id, embed('" + model + "', body) AS e FROM docs";
    Measurement measurement = QueryRunner.time(model, "`embed('" + model + "', body)`", rows, repeat,
        () -> spark.sql(query), () -> spark.sql(query + " WHERE id < 200"));
    RunEnvironment.log("%s", measurement.describe());
    return measurement.bestRowsPerSecond();
  }
}
