package io.github.sparkinfer.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.spark.SparkInference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * The GPU host's benchmark: the Spark path beside what the hardware does alone, in one JVM, every
 * timed run at least --seconds (5) long (a query repeated until then), best of two after a
 * warm-up. Tabular: Spark's own floor (the cached input through a no-model query to the noop
 * sink), raw ONNX Runtime on the GPU over pre-built batches, and predict() with default settings.
 * Text: the tokenizer alone on every core, raw ONNX Runtime on the GPU over pre-tokenized,
 * length-sorted batches (fp32, fp16), and embed() with default settings (fp32, fp16). Each GPU
 * figure comes with the GPU's mean power draw and energy per 1,000 rows (nvidia-smi, every 100 ms),
 * CPU package energy where RAPL is readable, and the per-batch latency p50 / p99 of sparkinfer's
 * runs. Writes a markdown section to --out.
 *
 * <p>Arguments: --out FILE, --mlp-rows N (1000000), --text-rows N (60000), --seconds S (5), --cores N (all), --only text|tabular|all (all).
 */
public final class GpuBenchmark {
  private GpuBenchmark() {}

  static double seconds = 5;
  private static PowerSampler power;
  private static final List<String> lines = new ArrayList<>();
  private static final List<String> profiles = new ArrayList<>();
  private static TaskTimeProfile lastProfile;

  public static void main(String[] arguments) throws Exception {
    // DJL would fetch a CUDA build of its tokenizer library on a GPU host; tokenizing runs on the CPU.
    System.setProperty("RUST_FLAVOR", "cpu");
    Path out = Path.of("RESULTS-gpu.md");
    long mlpRows = 1_000_000;
    int textRows = 60_000;
    int cores = Runtime.getRuntime().availableProcessors();
    String only = "all";
    for (int i = 0; i < arguments.length; i += 2) {
      String value = arguments[i + 1];
      switch (arguments[i]) {
        case "--out": out = Path.of(value); break;
        case "--mlp-rows": mlpRows = Long.parseLong(value); break;
        case "--text-rows": textRows = Integer.parseInt(value); break;
        case "--seconds": seconds = Double.parseDouble(value); break;
        case "--cores": cores = Integer.parseInt(value); break;
        case "--only": only = value; break;
        default: throw new IllegalArgumentException("Unknown argument " + arguments[i]
            + "; use --out, --mlp-rows, --text-rows, --seconds, --cores, --only text|tabular|all");
      }
    }
    Path work = Files.createTempDirectory("sparkinfer-gpu-benchmark");
    SparkSession spark = LocalSpark.session("sparkinfer-gpu-benchmark", cores);
    power = new PowerSampler();
    String gpu = RunEnvironment.gpuName();
    lines.add("## GPU (" + gpu + "): the Spark path beside the hardware's ceiling");
    lines.add("");
    lines.add("Written by io.github.sparkinfer.benchmarks.GpuBenchmark on the GPU host, " + Instant.now() + "; local["
        + cores + "], " + cores + " cores; ONNX Runtime " + OrtEnvironments.get().getVersion() + " with the CUDA"
        + " execution provider; commit " + System.getProperty("sparkinfer.commit", "see COMMIT") + ". Every timed run"
        + " lasts at least " + seconds + " s (a query repeated); best of two after a warm-up; Spark runs write to the"
        + " noop sink. GPU utilization and energy: the GPU's mean utilization.gpu and power.draw (nvidia-smi, every"
        + " 100 ms) over the run; CPU energy "
        + (PowerSampler.cpuMicrojoules() < 0 ? "not reported: this machine exposes no readable RAPL counter"
            : "from RAPL package 0") + ". Latency: each model batch's run, p50 / p99 over the run's batches.");
    lines.add("");
    lines.add("| workload | rows/s | × reference | GPU util % | GPU W | J / 1,000 rows | batch p50 / p99 ms |");
    lines.add("|---|---:|---:|---:|---:|---:|---:|");

    MultilayerPerceptronModel mlp = MultilayerPerceptronModel.builder()
        .layerSizes(64, 256, 256, 16).seed(42).inputName("features").outputName("scores").build();
    Path mlpFile = work.resolve("mlp.onnx");
    mlp.writeTo(mlpFile);
    spark.sql("SET spark.sparkinfer.model.mlp.path=" + mlpFile.toUri());
    Dataset<Row> points = TabularData.generate(spark, mlpRows, cores * 2).cache();
    points.count();
    points.createOrReplaceTempView("points");
    spark.conf().set("spark.sparkinfer.device.fallback", "fail");

    boolean tabular = !only.equals("text");
    Result floor = null;
    Result predict = null;
    if (tabular) {
      floor = spark(spark, "SELECT id, features FROM points", "cpu", mlpRows);
      row("Spark's floor: cached input → noop, no model", floor, Double.NaN);
      Result ortMlp;
      try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
        options.addCUDA(0);
        try (OrtSession session = OrtEnvironments.get().createSession(mlpFile.toString(), options);
            OrtCeiling ceiling = new OrtCeiling(session, "features", "scores", 16, (int) mlpRows, 65_536)) {
          ortMlp = timedLoop(() -> ceiling.run(Integer.MAX_VALUE), mlpRows);
        }
      }
      row("raw ORT Java on the GPU, MLP, batches of 65,536 built in advance", ortMlp, Double.NaN);
      predict = spark(spark, "SELECT id, predict('mlp', features) AS scores FROM points", "cuda:0", mlpRows);
      row("predict() MLP 64-256-256-16 on cuda:0, default settings", predict, floor.rowsPerSecond);
      profiles.add(lastProfile.row("predict() on cuda:0"));
      Result predictCpu = spark(spark, "SELECT id, predict('mlp', features) AS scores FROM points", "cpu", mlpRows);
      row("predict() on the CPU, default settings", predictCpu, floor.rowsPerSecond);
      profiles.add(lastProfile.row("predict() on the CPU"));

      // Parquet input (the nested vectorized reader gives array<float> as column vectors): its own floor.
      Path parquet = work.resolve("points.parquet");
      points.write().parquet(parquet.toString());
      spark.read().parquet(parquet.toString()).createOrReplaceTempView("points_parquet");
      Result floorParquet = spark(spark, "SELECT id, features FROM points_parquet", "cpu", mlpRows);
      row("Spark's floor: Parquet input → noop, no model", floorParquet, Double.NaN);
      String parquetQuery = "SELECT id, predict('mlp', features) AS scores FROM points_parquet";
      Result predictParquet = spark(spark, parquetQuery, "cuda:0", mlpRows);
      row("predict() on cuda:0 from Parquet, default settings", predictParquet, floorParquet.rowsPerSecond);
      profiles.add(lastProfile.row("predict() on cuda:0 from Parquet"));
      spark.conf().set("spark.sparkinfer.columnarOutput", "true");
      Result predictColumnar = spark(spark, parquetQuery, "cuda:0", mlpRows);
      spark.conf().unset("spark.sparkinfer.columnarOutput");
      row("same, columnar output (columnarOutput=true)", predictColumnar, floorParquet.rowsPerSecond);
      profiles.add(lastProfile.row("predict() on cuda:0 from Parquet, columnar output"));
    }
    if (only.equals("tabular")) {
      // predict() alone, no sweeps: a short run when device time is scarce.
      lines.add("");
      lines.add("Target (issue 17), with default settings:");
      target("predict() ≥ 0.8 × Spark's floor", predict.rowsPerSecond / floor.rowsPerSecond, 0.8);
      lines.add("");
      lines.addAll(TaskTimeProfile.header());
      lines.addAll(profiles);
      power.close();
      Files.write(out, lines);
      lines.forEach(System.out::println);
      spark.stop();
      return;
    }

    Path model = MiniLm.FP32.extractModel(work);
    Path tokenizer = MiniLm.FP32.extractTokenizer(work);
    Path half = work.resolve("all-minilm-l6-v2.fp16.onnx");
    io.github.sparkinfer.compression.ModelCompressor.builder()
        .precision(io.github.sparkinfer.compression.Precision.FLOAT16).build()
        .compress(io.github.sparkinfer.compression.OnnxModel.read(model)).model().writeTo(half);
    Dataset<Row> docs = SentenceData.generate(spark, textRows, cores * 2).cache();
    List<String> texts = new ArrayList<>();
    for (Row doc : docs.select("body").collectAsList()) {
      texts.add(doc.getString(0));
    }
    docs.createOrReplaceTempView("docs");
    double tokenizerRate = GpuCeilings.tokenizerTextsPerSecond(tokenizer, texts, seconds);
    row("tokenizer alone (DJL, all-MiniLM-L6-v2's tokenizer.json), " + cores + " threads",
        new Result(tokenizerRate, Double.NaN, Double.NaN, Double.NaN), Double.NaN);
    Result ortFp32 = ortText(model, tokenizer, texts);
    row("raw ORT Java on the GPU, MiniLM fp32, pre-tokenized, length-sorted, 32,768 tokens, 4 threads", ortFp32, Double.NaN);
    Result ortFp16 = ortText(half, tokenizer, texts);
    row("same, sparkinfer's fp16 MiniLM", ortFp16, ortFp32.rowsPerSecond);

    spark.sql("SET spark.sparkinfer.model.minilm.path=" + model.toUri());
    spark.sql("SET spark.sparkinfer.model.minilm.tokenizer=" + tokenizer.toUri());
    String textQuery = "SELECT id, embed('minilm', body) AS embedding FROM docs";
    Result embed = spark(spark, textQuery, "cuda:0", textRows);
    double textCeiling32 = Math.min(ortFp32.rowsPerSecond, tokenizerRate);
    row("embed() fp32 on cuda:0, default settings", embed, textCeiling32);
    profiles.add(lastProfile.row("embed() fp32 on cuda:0"));
    // The path before cross-task batching, side by side: each task batches its own windows.
    spark.conf().set("spark.sparkinfer.crossTaskBatching", "false");
    Result embedPerTask = spark(spark, textQuery, "cuda:0", textRows);
    spark.conf().unset("spark.sparkinfer.crossTaskBatching");
    row("same, each task its own batches (crossTaskBatching=false, the path before issue 29)", embedPerTask,
        textCeiling32);
    profiles.add(lastProfile.row("embed() fp32 on cuda:0, each task its own batches"));
    // What the pooling head gives: the same query pooling in Java, every state copied to the host.
    spark.conf().set("spark.sparkinfer.poolOnDevice", "false");
    Result embedJava = spark(spark, textQuery, "cuda:0", textRows);
    spark.conf().unset("spark.sparkinfer.poolOnDevice");
    row("same, pooled in Java (poolOnDevice=false): every token state copied to the host", embedJava, textCeiling32);
    profiles.add(lastProfile.row("embed() fp32 on cuda:0, pooled in Java"));
    spark.sql("SET spark.sparkinfer.model.minilm.path=" + half.toUri());
    Result embedHalf = spark(spark, textQuery, "cuda:0", textRows);
    double textCeiling16 = Math.min(ortFp16.rowsPerSecond, tokenizerRate);
    row("embed() fp16 on cuda:0, default settings", embedHalf, textCeiling16);
    profiles.add(lastProfile.row("embed() fp16 on cuda:0"));

    lines.add("");
    lines.add("Targets (issue 17), with default settings:");
    if (tabular) {
      target("predict() ≥ 0.8 × Spark's floor", predict.rowsPerSecond / floor.rowsPerSecond, 0.8);
    }
    target("embed() fp32 ≥ 0.8 × min(raw ORT fp32, tokenizer alone)", embed.rowsPerSecond / textCeiling32, 0.8);
    target("embed() fp16 ≥ 0.8 × min(raw ORT fp16, tokenizer alone)", embedHalf.rowsPerSecond / textCeiling16, 0.8);
    target("embed() fp16 ≥ 1.3 × embed() fp32", embedHalf.rowsPerSecond / embed.rowsPerSecond, 1.3);
    lines.add("");
    lines.add("Where the tasks' time goes, from the node's metrics over further passes of each query (at least 2 s,"
        + " after a pass that compiles the plan, whose metrics are dropped; task time = wall × " + cores + " task slots;"
        + " the tokenizer runs on a helper thread per task, beside its task):");
    lines.add("");
    lines.addAll(TaskTimeProfile.header());
    lines.addAll(profiles);

    spark.sql("SET spark.sparkinfer.model.minilm.path=" + model.toUri());
    // Spread over every core again: a LIMIT leaves one partition (the run at a9d8387 measured one core).
    Dataset<Row> fewDocs = docs.limit(Math.min(textRows, 3_000)).repartition(cores * 2).cache();
    fewDocs.count();
    fewDocs.createOrReplaceTempView("few_docs");
    Sweep.run(spark, tabular ? List.of("cuda:0", "cpu") : List.of("cuda:0"), tabular, out.resolveSibling("gpu-sweep.csv"), out.resolveSibling("sweep-predict.png"),
        out.resolveSibling("sweep-embed.png"), mlpRows, textRows, 3_000, seconds, lines);
    power.close();
    Files.write(out, lines);
    lines.forEach(System.out::println);
    spark.stop();
  }

  /** One measurement: rows/s, mean GPU watts, J per 1,000 rows, batch p50 / p99 ms. */
  static final class Result {
    final double rowsPerSecond;
    final double watts;
    final double p50;
    final double p99;
    /** Mean GPU utilization, %, over the timed run (NaN on the CPU). */
    final double utilization;

    Result(double rowsPerSecond, double watts, double p50, double p99) {
      this(rowsPerSecond, watts, p50, p99, Double.NaN);
    }

    Result(double rowsPerSecond, double watts, double p50, double p99, double utilization) {
      this.rowsPerSecond = rowsPerSecond;
      this.watts = watts;
      this.p50 = p50;
      this.p99 = p99;
      this.utilization = utilization;
    }
  }

  private interface Body {
    void run() throws Exception;
  }

  /** {@code body} (one pass over {@code rows} rows) repeated for at least the run length; best of two after a warm-up. */
  private static Result timedLoop(Body body, long rows) throws Exception {
    body.run();
    Result best = null;
    for (int attempt = 0; attempt < 2; attempt++) {
      long start = System.nanoTime();
      long done = 0;
      while (System.nanoTime() - start < seconds * 1e9) {
        body.run();
        done += rows;
      }
      long end = System.nanoTime();
      Result result = new Result(done / ((end - start) / 1e9), power.meanWatts(start, end), Double.NaN, Double.NaN,
          power.meanUtilization(start, end));
      if (best == null || result.rowsPerSecond > best.rowsPerSecond) {
        best = result;
      }
    }
    return best;
  }

  /** A Spark query on {@code device}, default sparkinfer settings, to the noop sink; with its batch latency. */
  static Result spark(SparkSession spark, String query, String device, long rows) throws Exception {
    spark.conf().set("spark.sparkinfer.device", device);
    Result timed = timedLoop(() -> spark.sql(query).write().format("noop").mode("overwrite").save(), rows);
    double p50 = Double.NaN;
    double p99 = Double.NaN;
    if (query.contains("predict(") || query.contains("embed(")) {
      // One more pass through the executed plan itself, whose nodes hold the latency accumulators
      // and the time metrics: where the tasks' time went.
      // A first pass compiles the plan's code; its metrics are dropped, then passes for at least 2 s.
      Dataset<Row> traced = spark.sql(query);
      traced.queryExecution().toRdd().count();
      TaskTimeProfile.reset(traced);
      long start = System.nanoTime();
      do {
        traced.queryExecution().toRdd().count();
      } while (System.nanoTime() - start < 2e9);
      double wall = (System.nanoTime() - start) / 1e9;
      double[] latency = SparkInference.batchLatency(traced);
      p50 = latency[1];
      p99 = latency[2];
      lastProfile = TaskTimeProfile.of(traced, wall, spark.sparkContext().defaultParallelism());
    }
    System.out.printf(Locale.ROOT, "%s on %s: %,.0f rows/s%n", query, device, timed.rowsPerSecond);
    return new Result(timed.rowsPerSecond, device.equals("cpu") ? Double.NaN : timed.watts, p50, p99,
        device.equals("cpu") ? Double.NaN : timed.utilization);
  }

  private static Result ortText(Path model, Path tokenizer, List<String> texts) throws Exception {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.addCUDA(0);
      try (OrtSession session = OrtEnvironments.get().createSession(model.toString(), options)) {
        List<Map<String, OnnxTensor>> batches =
            GpuCeilings.textBatches(tokenizer, texts, 32_768, new ArrayList<>(session.getInputNames()));
        try {
          double rate = GpuCeilings.textsPerSecond(session, batches, texts.size(), 4, 0.1);
          long start = System.nanoTime();
          rate = Math.max(rate, GpuCeilings.textsPerSecond(session, batches, texts.size(), 4, seconds));
          long end = System.nanoTime();
          return new Result(rate, power.meanWatts(start, end), Double.NaN, Double.NaN, power.meanUtilization(start, end));
        } finally {
          batches.forEach(inputs -> inputs.values().forEach(OnnxTensor::close));
        }
      }
    }
  }

  static void row(String workload, Result result, double reference) {
    String energy = Double.isNaN(result.watts) ? "" : String.format(Locale.ROOT, "%.2f", result.watts / result.rowsPerSecond * 1000);
    lines.add(String.format(Locale.ROOT, "| %s | %,.0f | %s | %s | %s | %s | %s |", workload, result.rowsPerSecond,
        Double.isNaN(reference) ? "" : String.format(Locale.ROOT, "%.2f", result.rowsPerSecond / reference),
        Double.isNaN(result.utilization) ? "" : String.format(Locale.ROOT, "%.0f", result.utilization),
        Double.isNaN(result.watts) ? "" : String.format(Locale.ROOT, "%.0f", result.watts), energy,
        Double.isNaN(result.p50) ? "" : String.format(Locale.ROOT, "%.2f / %.2f", result.p50, result.p99)));
  }

  private static void target(String name, double ratio, double goal) {
    lines.add(String.format(Locale.ROOT, "- %s: measured %.2f × — %s", name, ratio,
        ratio >= goal ? "met" : String.format(Locale.ROOT, "missed by %.0f %%", (goal - ratio) / goal * 100)));
  }
}
