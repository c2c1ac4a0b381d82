package io.github.sparkinfer.benchmarks;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.SparkInference;
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
 * CPU against GPU through Spark SQL in one JVM, for the GPU host: the tabular MLP with predict()
 * and all-MiniLM-L6-v2 (fp32) with embed(), each on the same cached input, once with
 * spark.sparkinfer.device=cpu and once with cuda:0 (fallback=fail, so a GPU run is really on the
 * GPU). Writes a markdown section to --out.
 *
 * <p>Arguments: --out FILE, --mlp-rows N (1000000), --text-rows N (5000), --repeat N (3),
 * --cores N (all), --gpu-batch-size N (4096).
 */
public final class GpuBenchmark {
  private GpuBenchmark() {}

  public static void main(String[] arguments) throws Exception {
    Path out = Path.of("RESULTS-gpu.md");
    long mlpRows = 1_000_000;
    long textRows = 5_000;
    int repeat = 3;
    int cores = Runtime.getRuntime().availableProcessors();
    int gpuBatchSize = 4096;
    for (int i = 0; i < arguments.length; i += 2) {
      String value = arguments[i + 1];
      switch (arguments[i]) {
        case "--out": out = Path.of(value); break;
        case "--mlp-rows": mlpRows = Long.parseLong(value); break;
        case "--text-rows": textRows = Long.parseLong(value); break;
        case "--repeat": repeat = Integer.parseInt(value); break;
        case "--cores": cores = Integer.parseInt(value); break;
        case "--gpu-batch-size": gpuBatchSize = Integer.parseInt(value); break;
        default: throw new IllegalArgumentException("Unknown argument " + arguments[i]
            + "; use --out, --mlp-rows, --text-rows, --repeat, --cores, --gpu-batch-size");
      }
    }
    Path work = Files.createTempDirectory("sparkinfer-gpu-benchmark");
    SparkSession spark = LocalSpark.session("sparkinfer-gpu-benchmark", cores);
    List<String> lines = new ArrayList<>();
    String gpu = new String(new ProcessBuilder("nvidia-smi", "--query-gpu=name", "--format=csv,noheader")
        .start().getInputStream().readAllBytes()).trim();
    lines.add("## GPU (" + gpu + ")");
    lines.add("");
    lines.add("Written by io.github.sparkinfer.benchmarks.GpuBenchmark on the GPU host, " + Instant.now()
        + "; local[" + cores + "]; ONNX Runtime " + io.github.sparkinfer.device.OrtEnvironments.get().getVersion()
        + " with the CUDA execution provider; commit " + System.getProperty("sparkinfer.commit", "see COMMIT")
        + ". Best of " + repeat + " timed runs after a warm-up; every run writes to Spark's noop sink.");
    lines.add("");
    lines.add("| workload | rows | CPU rows/s | GPU rows/s | GPU / CPU | max difference GPU vs CPU |");
    lines.add("|---|---:|---:|---:|---:|---|");

    MultilayerPerceptronModel mlp = MultilayerPerceptronModel.builder()
        .layerSizes(64, 256, 256, 16).seed(42).inputName("features").outputName("scores").build();
    Path mlpFile = work.resolve("mlp.onnx");
    mlp.writeTo(mlpFile);
    spark.sql("SET spark.sparkinfer.model.mlp.path=" + mlpFile.toUri());
    Dataset<Row> points = TabularData.generate(spark, mlpRows, cores * 2).cache();
    points.count();
    points.createOrReplaceTempView("points");
    String mlpQuery = "SELECT id, predict('mlp', features) AS scores FROM points";
    double mlpCpu = timed(spark, mlpQuery, "cpu", 1024, repeat, mlpRows);
    double mlpGpu = timed(spark, mlpQuery, "cuda:0", gpuBatchSize, repeat, mlpRows);
    String mlpDifference = maxDifference(spark, "SELECT id, predict('mlp', features) AS v FROM points WHERE id < 2000", gpuBatchSize);
    lines.add(row("tabular MLP 64-256-256-16, predict()", mlpRows, mlpCpu, mlpGpu, mlpDifference));

    Path model = MiniLm.FP32.extractModel(work);
    Path tokenizer = MiniLm.FP32.extractTokenizer(work);
    spark.sql("SET spark.sparkinfer.model.minilm.path=" + model.toUri());
    spark.sql("SET spark.sparkinfer.model.minilm.tokenizer=" + tokenizer.toUri());
    Dataset<Row> docs = SentenceData.generate(spark, textRows, cores * 2).cache();
    docs.count();
    docs.createOrReplaceTempView("docs");
    String textQuery = "SELECT id, embed('minilm', body) AS embedding FROM docs";
    double textCpu = timed(spark, textQuery, "cpu", 1024, repeat, textRows);
    double textGpu = timed(spark, textQuery, "cuda:0", 1024, repeat, textRows);
    String textDifference = maxDifference(spark, "SELECT id, embed('minilm', body) AS v FROM docs WHERE id < 500", 1024);
    lines.add(row("all-MiniLM-L6-v2 fp32, embed()", textRows, textCpu, textGpu, textDifference));
    Path half = work.resolve("all-minilm-l6-v2.fp16.onnx");
    io.github.sparkinfer.compression.ModelCompressor.builder()
        .precision(io.github.sparkinfer.compression.Precision.FLOAT16).build()
        .compress(io.github.sparkinfer.compression.OnnxModel.read(model)).model().writeTo(half);
    spark.sql("SET spark.sparkinfer.model.minilm.path=" + half.toUri());
    double halfGpu = timed(spark, textQuery, "cuda:0", 1024, repeat, textRows);
    lines.add(String.format(Locale.ROOT, "| all-MiniLM-L6-v2 fp16 (made by sparkinfer's compressor), embed() on GPU |"
        + " %,d | (fp32 CPU above) | %,.0f | %.2f vs fp32 CPU, %.2f vs fp32 GPU | see TestGpuInference |",
        textRows, halfGpu, halfGpu / textCpu, halfGpu / textGpu));
    lines.add("");
    lines.add("GPU runs used spark.sparkinfer.device=cuda:0 with spark.sparkinfer.device.fallback=fail; the"
        + " device bindings of the last GPU run: " + lastBindings);
    Files.write(out, lines);
    lines.forEach(System.out::println);
    spark.stop();
  }

  private static String lastBindings = "";

  private static double timed(SparkSession spark, String query, String device, int batchSize, int repeat, long rows) {
    spark.conf().set("spark.sparkinfer.device", device);
    spark.conf().set("spark.sparkinfer.device.fallback", "fail");
    spark.conf().set("spark.sparkinfer.batchSize", String.valueOf(batchSize));
    spark.sql(query).write().format("noop").mode("overwrite").save();
    double best = 0;
    for (int run = 0; run < repeat; run++) {
      // Analysis and planning outside the clock, as in the results published so far; runs here are short.
      Dataset<Row> result = spark.sql(query);
      long start = System.nanoTime();
      result.write().format("noop").mode("overwrite").save();
      double seconds = (System.nanoTime() - start) / 1e9;
      best = Math.max(best, rows / seconds);
      System.out.printf(Locale.ROOT, "%s on %s: %.2f s, %.0f rows/s%n", query, device, seconds, rows / seconds);
    }
    Dataset<Row> check = spark.sql(query + " LIMIT 100");
    check.collectAsList();
    lastBindings = SparkInference.deviceBindings(check).stream().limit(2).toList().toString();
    return best;
  }

  /** Largest absolute difference between the GPU's and the CPU's values on the same rows. */
  private static String maxDifference(SparkSession spark, String query, int gpuBatchSize) {
    spark.conf().set("spark.sparkinfer.device", "cpu");
    List<Row> cpu = spark.sql(query + " ORDER BY id").collectAsList();
    spark.conf().set("spark.sparkinfer.device", "cuda:0");
    spark.conf().set("spark.sparkinfer.batchSize", String.valueOf(gpuBatchSize));
    List<Row> gpu = spark.sql(query + " ORDER BY id").collectAsList();
    double max = 0;
    for (int i = 0; i < cpu.size(); i++) {
      List<Float> left = cpu.get(i).getList(1);
      List<Float> right = gpu.get(i).getList(1);
      for (int k = 0; k < left.size(); k++) {
        max = Math.max(max, Math.abs(left.get(k) - right.get(k)));
      }
    }
    return String.format(Locale.ROOT, "%.2e over %d rows", max, cpu.size());
  }

  private static String row(String workload, long rows, double cpu, double gpu, String difference) {
    return String.format(Locale.ROOT, "| %s | %,d | %,.0f | %,.0f | %.2f | %s |", workload, rows, cpu, gpu, gpu / cpu, difference);
  }

}
