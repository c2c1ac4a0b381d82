package io.github.sparkinfer.benchmarks;

import static io.github.sparkinfer.benchmarks.RunEnvironment.log;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions.ExecutionMode;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.github.sparkinfer.compression.GenerationGraph;
import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.spark.SparkInference;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * GenerateBenchmark on a GPU ({@code --device cuda:N}; issue 30, "Must be true" item 2): generated
 * tokens/s of SQL {@code generate()} with the decode loop inside ONNX Runtime ({@code decodeLoop=graph},
 * GPT-2 layout only) and in Java ({@code decodeLoop=java}), beside the same fp16 decoder driven by the
 * plain Java loop ({@link LoopDecoder}) and wrapped into {@code GreedySearch} (GPT-2 layout only), each
 * on the CUDA execution provider, at each of {@code --batch-sizes}.
 *
 * <p>Per variant and batch size B: {@code --tasks} T threads (Spark: T partitions on local[cores]), each
 * the consecutive rows of its partition, batches of B in input order (generate() sorts each window of 4
 * batches by length, as it does). A warm-up of one batch per thread; the timed run then takes the first
 * K prompts, K a multiple of B x T chosen from the warm-up so that one pass lasts about {@code
 * --min-seconds}, and repeats passes until it has lasted at least that long. 64 new tokens per prompt,
 * no early stop: every variant's stop (end) token is an id that no prompt contains and the plain Java
 * loop did not produce in its warm-up, and every row of every run must have exactly the new tokens
 * asked for (GreedySearch's rows end at no pad; generate()'s finish_reason is {@code length}),
 * otherwise the run fails. GPU utilization and power from nvidia-smi every 100 ms ({@link
 * PowerSampler}) over the timed run; energy per 1,000 tokens = mean power x time; per-batch latency
 * p50 / p99 (the Java variants time each batch; generate() reports its node's batch latencies when it
 * records them, else the mean session time per batch from its metrics).
 *
 * <p>Cross-check: on fp16 two decode loops may part at a near-tie (the two best logits closer than the
 * rounding of one fp16 computation against another, for example with other padding). Each variant's
 * rows are compared with the plain Java loop's at the same batch size (or another, where that was
 * skipped): identical, parted first at a step where the Java loop's best two logits were within
 * {@code --tie-margin} (a near-tie), or parted where they were not (a disagreement). Agreement =
 * identical + near-tie rows; below 90 % the program exits 1 (after writing its results).
 *
 * <p>{@code --deadline-seconds S}: measurements not started S seconds after the JVM started are
 * skipped and reported as such, so that a device call of fixed length still writes its results; the
 * markdown (and a JSON beside it) is rewritten after every measurement.
 */
final class GenerateOnDevice {
  private static final String MODEL_NAME = "decoder";
  private static final double AGREEMENT_FLOOR = 0.90;

  private final GenerateBenchmark settings;
  private final long jvmStart = java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime();
  private final List<Measure> measures = new ArrayList<>();
  private final Map<String, String> facts = new LinkedHashMap<>();
  private final List<String> failures = new ArrayList<>();
  private PowerSampler power;
  private String[] texts;
  private int[][] promptIds;
  private HuggingFaceTokenizer tokenizer;
  private ExecutorService pool;
  private LoopDecoder decoder;
  private OrtSession search;
  private SparkSession spark;
  private int endToken = -1;
  private ZonedDateTime date;

  GenerateOnDevice(GenerateBenchmark settings) {
    this.settings = settings;
  }

  /** One variant at one batch size. */
  private static final class Measure {
    final String key;
    final String label;
    final int batchSize;
    String skipped;
    int rowsPerPass;
    int passes;
    long tokens;
    double seconds;
    double utilization = Double.NaN;
    double watts = Double.NaN;
    double p50 = Double.NaN;
    double p99 = Double.NaN;
    String latencyKind = "";
    double warmupSeconds;
    /** Rows of the last pass: tokens (Java variants) or text (generate()). */
    int[][] rowTokens;
    String[] rowText;
    float[][] margins;
    int identical;
    int nearTie;
    int disagree;
    int compared;
    String reference = "";

    Measure(String key, String label, int batchSize) {
      this.key = key;
      this.label = label;
      this.batchSize = batchSize;
    }

    double tokensPerSecond() {
      return tokens / seconds;
    }
  }

  /** What one pass over rows 0..rows-1 gives. */
  private interface Pass {
    void run(int rows, Measure into, List<Double> latencies) throws Exception;
  }

  int run() throws Exception {
    date = ZonedDateTime.now(ZoneOffset.UTC);
    // DJL would fetch a CUDA build of its tokenizer library on a GPU host; tokenizing runs on the CPU.
    System.setProperty("RUST_FLAVOR", "cpu");
    // Application scope: read by SparkConf from the system properties when the session starts.
    System.setProperty("spark.sparkinfer.maxBatchBytes", settings.maxBatchBytes);
    // --device cpu with --device-path-on-cpu: this path with CPU sessions, a smoke test where no GPU is.
    int deviceIndex = settings.device.startsWith("cuda:") ? Integer.parseInt(settings.device.substring(5)) : -1;
    Path modelFile = settings.modelDir.resolve("model.onnx").toAbsolutePath();
    Path tokenizerFile = settings.modelDir.resolve("tokenizer.json").toAbsolutePath();
    texts = Files.readAllLines(settings.prompts, StandardCharsets.UTF_8).stream().limit(settings.rows)
        .toArray(String[]::new);
    tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerFile)
        .optAddSpecialTokens(true).optPadding(false).optTruncation(true).optMaxLength(1 << 24).build();
    promptIds = GenerateBenchmark.encode(tokenizer, texts);
    long promptTokens = Arrays.stream(promptIds).mapToLong(p -> p.length).sum();
    int longest = Arrays.stream(promptIds).mapToInt(p -> p.length).max().orElseThrow();
    facts.put("Prompts", String.format(Locale.ROOT, "up to the first %d of `benchmarks/generate/%s` (%,d prompt"
        + " tokens, longest %d); each timed run takes the first K of them (K in the table)", texts.length,
        settings.prompts.getFileName(), promptTokens, longest));
    OrtEnvironment environment = OrtEnvironments.get();
    try {
      power = new PowerSampler();
    } catch (java.io.IOException e) {
      log("no nvidia-smi (%s): no GPU utilization or power", e.getMessage());
    }
    pool = Executors.newFixedThreadPool(settings.tasks);
    int tasks = settings.tasks;
    try (OrtSession.SessionOptions options = cudaOptions(deviceIndex);
        OrtSession session = environment.createSession(modelFile.toString(), options)) {
      decoder = new LoopDecoder(environment, session);
      boolean gpt2 = decoder.layout == LoopDecoder.Layout.GPT2 && !decoder.longInputs && decoder.positions;
      facts.put("Model", "`" + modelFile + "`: " + decoder.describe() + "; " + Files.size(modelFile) / (1 << 20)
          + " MiB");
      log("GenerateBenchmark on %s: %s", settings.device, facts.get("Model"));

      // Reference: the Java loop's first tokens against the model without its cache.
      LoopDecoder.Output first = decoder.batch(Arrays.copyOf(promptIds, 2), 8, GenerateBenchmark.PAD);
      StringBuilder reference = new StringBuilder();
      for (int row = 0; row < 2; row++) {
        int[] uncached = decoder.uncached(promptIds[row], 8);
        int parted = firstDifference(uncached, first.tokens[row]);
        String verdict = parted < 0 ? "equal" : first.margins[row][parted] <= settings.tieMargin
            ? "parted at step " + parted + " on a near-tie" : "DIFFER at step " + parted;
        reference.append(String.format(Locale.ROOT, "prompt %d: %s; ", row, verdict));
        if (parted >= 0 && first.margins[row][parted] > settings.tieMargin) {
          failures.add("plain Java loop against the decode without cache, prompt " + row + ": "
              + Arrays.toString(first.tokens[row]) + " vs " + Arrays.toString(uncached));
        }
      }
      facts.put("Reference", "the plain Java loop's first 8 tokens of prompts 0 and 1 against a decode without the"
          + " cache (whole sequence each step), on the device: " + reference.toString().replaceAll("; $", ""));
      // The end token: in no prompt and not produced by the Java loop on the first batch of the first batch size.
      int firstBatch = Math.min(texts.length, settings.batchSizes.get(0));
      LoopDecoder.Output probe = decoder.decode(Arrays.copyOf(promptIds, firstBatch), firstBatch,
          settings.newTokens, GenerateBenchmark.PAD);
      Set<Integer> used = new HashSet<>();
      for (int[][] ids : List.of(promptIds, probe.tokens)) {
        for (int[] row : ids) {
          for (int id : row) {
            used.add(id);
          }
        }
      }
      endToken = (int) Math.min(50256, decoder.vocabulary - 1);
      while (used.contains(endToken)) {
        endToken--;
      }
      facts.put("No early stop", "stop/end token " + endToken + " (in no prompt, not produced by the plain Java loop"
          + " on its first " + firstBatch + " prompts) for generate() (`stopTokenIds`) and GreedySearch; every row of"
          + " every run checked to have " + settings.newTokens + " new tokens");

      OrtSession.SessionOptions searchOptions = null;
      if (gpt2) {
        long started = System.nanoTime();
        byte[] wrapped = GenerationGraph.of(MODEL_NAME, OnnxModel.read(modelFile)).greedySearch(endToken, endToken)
            .toBytes();
        facts.put("GreedySearch", String.format(Locale.ROOT, "GenerationGraph.greedySearch(%d, %d): %.1f s to wrap,"
            + " %,d bytes", endToken, endToken, RunEnvironment.seconds(System.nanoTime() - started), wrapped.length));
        searchOptions = cudaOptions(deviceIndex);
        search = environment.createSession(wrapped, searchOptions);
      } else {
        facts.put("GreedySearch", "not run: ONNX Runtime's GreedySearch takes the GPT-2 layout of"
            + " onnxruntime.transformers only (generate() then decodes in Java on every device)");
      }
      try {
        spark = LocalSpark.session("sparkinfer GenerateBenchmark " + settings.device, settings.cores);
        spark.conf().set("spark.sparkinfer.model." + MODEL_NAME + ".path", modelFile.toUri().toString());
        spark.conf().set("spark.sparkinfer.model." + MODEL_NAME + ".tokenizer", tokenizerFile.toUri().toString());
        spark.conf().set("spark.sparkinfer.device", settings.device);
        spark.conf().set("spark.sparkinfer.device.fallback", "fail");
        facts.put("Spark", "local[" + settings.cores + "], the prompts in " + tasks + " partitions per run;"
            + " spark.sparkinfer.device=" + settings.device + ", device.fallback=fail, maxBatchBytes="
            + settings.maxBatchBytes + " (the Java loop keeps a batch's prompt-step logits within it)");

        // The graph variants first, then the Java loops (slow on a GPU): what matters most comes first.
        for (int batchSize : settings.batchSizes) {
          if (gpt2) {
            measure(new Measure("a-graph", "SQL generate(), decodeLoop=graph (GreedySearch inside ONNX Runtime)",
                batchSize), sqlPass("graph", batchSize));
            measure(new Measure("c", "GreedySearch-wrapped model, " + tasks + " thread(s), input order", batchSize),
                javaPass(batchSize, true));
          }
        }
        for (int batchSize : settings.batchSizes) {
          if (settings.loopBatchSizes == null || settings.loopBatchSizes.contains(batchSize)) {
            measure(new Measure("b", "plain Java loop on ORT (LoopDecoder), " + tasks + " thread(s), input order",
                batchSize), javaPass(batchSize, false));
            measure(new Measure("a-java", "SQL generate(), decodeLoop=java", batchSize), sqlPass("java", batchSize));
          }
        }
      } finally {
        if (search != null) {
          search.close();
        }
        if (searchOptions != null) {
          searchOptions.close();
        }
      }
    } finally {
      pool.shutdownNow();
      if (power != null) {
        power.close();
      }
      if (spark != null) {
        spark.stop();
      }
    }
    crossCheck();
    write();
    if (!failures.isEmpty()) {
      failures.forEach(failure -> System.err.println("FAILED: " + failure));
      return 1;
    }
    return 0;
  }

  private OrtSession.SessionOptions cudaOptions(int deviceIndex) throws OrtException {
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    options.setInterOpNumThreads(1);
    options.setOptimizationLevel(OptLevel.ALL_OPT);
    options.setExecutionMode(ExecutionMode.SEQUENTIAL);
    if (deviceIndex >= 0) {
      options.addCUDA(deviceIndex);
    }
    return options;
  }

  private static int firstDifference(int[] expected, int[] got) {
    for (int i = 0; i < Math.min(expected.length, got.length); i++) {
      if (expected[i] != got[i]) {
        return i;
      }
    }
    return expected.length == got.length ? -1 : Math.min(expected.length, got.length);
  }

  /** Thread i (of --tasks) takes rows [i * rows / tasks, (i + 1) * rows / tasks): Spark's slices of parallelize. */
  private Pass javaPass(int batchSize, boolean graph) {
    return (rows, into, latencies) -> {
      int tasks = settings.tasks;
      into.rowTokens = new int[rows][];
      into.margins = graph ? null : new float[rows][];
      List<Future<?>> futures = new ArrayList<>();
      for (int task = 0; task < tasks; task++) {
        int from = (int) ((long) task * rows / tasks);
        int to = (int) ((long) (task + 1) * rows / tasks);
        futures.add(pool.submit(() -> {
          // Tokenizing is inside the timed run, as in generate().
          int[][] prompts = GenerateBenchmark.encode(tokenizer, Arrays.copyOfRange(texts, from, to));
          for (int start = 0; start < prompts.length; start += batchSize) {
            int[][] batch = Arrays.copyOfRange(prompts, start, Math.min(prompts.length, start + batchSize));
            long began = System.nanoTime();
            if (graph) {
              int[][] out = GenerateBenchmark.greedySearchBatch(decoder.environment, search, batch, settings.newTokens,
                  endToken);
              System.arraycopy(out, 0, into.rowTokens, from + start, out.length);
            } else {
              LoopDecoder.Output out = decoder.batch(batch, settings.newTokens, GenerateBenchmark.PAD);
              System.arraycopy(out.tokens, 0, into.rowTokens, from + start, out.tokens.length);
              System.arraycopy(out.margins, 0, into.margins, from + start, out.margins.length);
            }
            double millis = (System.nanoTime() - began) / 1e6;
            synchronized (latencies) {
              latencies.add(millis);
            }
          }
          return null;
        }));
      }
      for (Future<?> future : futures) {
        future.get();
      }
    };
  }

  private Pass sqlPass(String decodeLoop, int batchSize) {
    return (rows, into, latencies) -> {
      List<Row> input = new ArrayList<>();
      for (int row = 0; row < rows; row++) {
        input.add(RowFactory.create(row, texts[row]));
      }
      StructType schema = new StructType().add("id", DataTypes.IntegerType, false)
          .add("prompt", DataTypes.StringType, false);
      JavaSparkContext context = JavaSparkContext.fromSparkContext(spark.sparkContext());
      spark.createDataFrame(context.parallelize(input, settings.tasks), schema).createOrReplaceTempView("prompts");
      String query = "SELECT id, g.text, g.tokens, g.finish_reason FROM (SELECT id, generate('" + MODEL_NAME
          + "', prompt, map('maxNewTokens', '" + settings.newTokens + "', 'batchSize', '" + batchSize
          + "', 'stopTokenIds', '" + endToken + "', 'decodeLoop', '" + decodeLoop + "')) AS g FROM prompts)";
      facts.put("Query (" + decodeLoop + ")", query.replace("'" + batchSize + "'", "'B'"));
      Dataset<Row> frame = spark.sql(query);
      List<Row> out = frame.collectAsList();
      into.rowText = new String[rows];
      into.rowTokens = new int[rows][];
      for (Row row : out) {
        int id = row.getInt(0);
        into.rowText[id] = row.getString(1);
        // Token counts only: generate() returns text; a row that stopped early has fewer.
        into.rowTokens[id] = new int[] {row.getInt(2), "length".equals(row.getString(3)) ? 1 : 0};
      }
      double[] latency = SparkInference.batchLatency(frame);
      if (latency[0] > 0) {
        synchronized (latencies) {
          latencies.add(-latency[1]);
          latencies.add(-latency[2]);
        }
      } else {
        long[] metrics = {-1, -1};
        QueryRunner.visit(frame.queryExecution().executedPlan(), node -> {
          if (node.metrics().contains("modelTime") && node.metrics().contains("batches")) {
            metrics[0] = node.metrics().apply("modelTime").value();
            metrics[1] = node.metrics().apply("batches").value();
          }
        });
        if (metrics[1] > 0) {
          synchronized (latencies) {
            latencies.add(metrics[0] / 1e6 / metrics[1]);
          }
        }
      }
    };
  }

  private void measure(Measure measure, Pass pass) throws Exception {
    measures.add(measure);
    double elapsed = (System.currentTimeMillis() - jvmStart) / 1e3;
    if (settings.deadlineSeconds > 0 && elapsed > settings.deadlineSeconds) {
      measure.skipped = String.format(Locale.ROOT, "skipped: %.0f s after the start, past --deadline-seconds %.0f",
          elapsed, settings.deadlineSeconds);
      log("(%s) batch %d %s", measure.key, measure.batchSize, measure.skipped);
      write();
      return;
    }
    int unit = measure.batchSize * settings.tasks;
    int available = texts.length / unit * unit;
    if (available == 0) {
      measure.skipped = "skipped: fewer than B x tasks = " + unit + " prompts";
      write();
      return;
    }
    try {
      long started = System.nanoTime();
      pass.run(unit, measure, new ArrayList<>());
      measure.warmupSeconds = RunEnvironment.seconds(System.nanoTime() - started);
      int units = (int) Math.ceil(settings.minSeconds * 1.1 / Math.max(measure.warmupSeconds, 1e-3));
      int rows = Math.min(available, unit * Math.max(1, units));
      List<Double> latencies = new ArrayList<>();
      int passes = 0;
      started = System.nanoTime();
      do {
        pass.run(rows, measure, latencies);
        passes++;
      } while (System.nanoTime() - started < settings.minSeconds * 1e9);
      long ended = System.nanoTime();
      measure.rowsPerPass = rows;
      measure.passes = passes;
      measure.tokens = (long) rows * passes * settings.newTokens;
      measure.seconds = RunEnvironment.seconds(ended - started);
      measure.utilization = power == null ? Double.NaN : power.meanUtilization(started, ended);
      measure.watts = power == null ? Double.NaN : power.meanWatts(started, ended);
      latency(measure, latencies);
      checkLengths(measure);
      log("(%s) batch %d: %,.0f tokens/s over %.1f s (%d prompts x %d passes; warm-up %.1f s), GPU %.0f %% %.0f W,"
          + " batch %s %.0f / %.0f ms", measure.key, measure.batchSize, measure.tokensPerSecond(), measure.seconds,
          rows, passes, measure.warmupSeconds, measure.utilization, measure.watts, measure.latencyKind, measure.p50,
          measure.p99);
    } catch (Exception | OutOfMemoryError e) {
      measure.skipped = "failed: " + e.getClass().getSimpleName() + ": " + String.valueOf(e.getMessage())
          .lines().findFirst().orElse("");
      log("(%s) batch %d %s", measure.key, measure.batchSize, measure.skipped);
      failures.add("(" + measure.key + ") batch " + measure.batchSize + " " + measure.skipped);
    }
    write();
  }

  /** Java variants: each batch's time; generate(): its node's p50 / p99 (stored negated), else mean per batch. */
  private static void latency(Measure measure, List<Double> latencies) {
    if (latencies.isEmpty()) {
      return;
    }
    if (latencies.get(0) < 0) {
      // p50 / p99 of each pass: the worst pass's.
      for (int i = 0; i + 1 < latencies.size(); i += 2) {
        measure.p50 = Double.isNaN(measure.p50) ? -latencies.get(i) : Math.max(measure.p50, -latencies.get(i));
        measure.p99 = Double.isNaN(measure.p99) ? -latencies.get(i + 1) : Math.max(measure.p99, -latencies.get(i + 1));
      }
      measure.latencyKind = "p50 / p99 (generate()'s batch latencies)";
      return;
    }
    if (measure.key.startsWith("a")) {
      measure.p50 = latencies.stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
      measure.p99 = Double.NaN;
      measure.latencyKind = "mean session time per batch (modelTime / batches)";
      return;
    }
    List<Double> sorted = new ArrayList<>(latencies);
    Collections.sort(sorted);
    measure.p50 = sorted.get((int) Math.ceil(0.5 * sorted.size()) - 1);
    measure.p99 = sorted.get((int) Math.ceil(0.99 * sorted.size()) - 1);
    measure.latencyKind = "p50 / p99";
  }

  /** Every row has exactly the new tokens asked for: no early stop. */
  private void checkLengths(Measure measure) {
    int short_ = 0;
    for (int row = 0; row < measure.rowsPerPass; row++) {
      int[] tokens = measure.rowTokens[row];
      boolean ok = tokens != null && (measure.rowText != null ? tokens[0] == settings.newTokens && tokens[1] == 1
          : tokens.length == settings.newTokens);
      if (!ok) {
        short_++;
      }
    }
    if (short_ > 0) {
      failures.add(String.format(Locale.ROOT, "(%s) batch %d: %d of %d rows did not get %d new tokens (an early stop"
          + " or a missing row)", measure.key, measure.batchSize, short_, measure.rowsPerPass, settings.newTokens));
    }
  }

  /** Each measured variant's rows against the plain Java loop's (same batch size where measured). */
  private void crossCheck() {
    for (Measure measure : measures) {
      if (measure.skipped != null || measure.key.equals("b")) {
        continue;
      }
      Measure reference = measures.stream().filter(m -> m.key.equals("b") && m.skipped == null)
          .min((x, y) -> Integer.compare(x.batchSize == measure.batchSize ? 0 : 1, y.batchSize == measure.batchSize
              ? 0 : 1)).orElse(null);
      if (reference == null) {
        measure.reference = "no plain Java loop run to compare with";
        continue;
      }
      measure.reference = "(b) at batch " + reference.batchSize;
      int rows = Math.min(measure.rowsPerPass, reference.rowsPerPass);
      for (int row = 0; row < rows; row++) {
        int[] expected = reference.rowTokens[row];
        int parted;
        if (measure.rowText != null) {
          parted = textParts(expected, measure.rowText[row]);
        } else {
          parted = firstDifference(expected, measure.rowTokens[row]);
        }
        measure.compared++;
        if (parted < 0) {
          measure.identical++;
        } else if (parted < expected.length && reference.margins[row][parted] <= settings.tieMargin) {
          measure.nearTie++;
        } else {
          measure.disagree++;
        }
      }
      double agreement = (measure.identical + measure.nearTie) / (double) Math.max(1, measure.compared);
      if (measure.compared > 0 && agreement < AGREEMENT_FLOOR) {
        failures.add(String.format(Locale.ROOT, "(%s) batch %d: agreement with %s %.1f %% (%d identical, %d near-tie,"
            + " %d disagree of %d rows), below %.0f %%", measure.key, measure.batchSize, measure.reference,
            agreement * 100, measure.identical, measure.nearTie, measure.disagree, measure.compared,
            AGREEMENT_FLOOR * 100));
      }
    }
  }

  /**
   * generate()'s text against the Java loop's tokens: -1 when it equals their decoding, else the first step
   * whose decoded prefix is no longer a prefix of the text (a byte-level token cut inside a character may
   * place it a step early).
   */
  private int textParts(int[] expected, String text) {
    String whole = tokenizer.decode(Arrays.stream(expected).asLongStream().toArray(), true);
    if (whole.equals(text)) {
      return -1;
    }
    for (int step = 1; step <= expected.length; step++) {
      String prefix = tokenizer.decode(Arrays.stream(expected, 0, step).asLongStream().toArray(), true);
      if (text == null || !text.startsWith(prefix)) {
        return step - 1;
      }
    }
    return expected.length;
  }

  private void write() throws java.io.IOException {
    String body = report();
    if (settings.out != null) {
      Files.createDirectories(settings.out.toAbsolutePath().getParent());
      Files.writeString(settings.out, heading() + "\n\n" + body + "\n");
      Files.writeString(settings.out.resolveSibling(settings.out.getFileName().toString().replaceAll("\\.md$", "")
          + ".json"), json());
    }
    if (settings.results != null) {
      ResultsFile.replaceSection(settings.results, heading(), body);
    }
  }

  String heading() {
    return "## Text generation on the GPU (issue 30): generate() against a Java loop and GreedySearch, "
        + settings.modelDir.getFileName();
  }

  private String report() {
    StringBuilder text = new StringBuilder();
    if (settings.note != null) {
      text.append("**Note:** ").append(settings.note.strip()).append("\n\n");
    }
    text.append("| | |\n|---|---|\n");
    RunEnvironment.row(text, "Date (UTC)", DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").format(date));
    RunEnvironment.row(text, "Commit", RunEnvironment.gitCommit());
    RunEnvironment.row(text, "GPU", RunEnvironment.gpuName() + " (" + settings.device + ", CUDA execution provider)");
    RunEnvironment.row(text, "CPU", RunEnvironment.cpuModel());
    RunEnvironment.row(text, "JVM", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version")
        + ", -Xmx" + Runtime.getRuntime().maxMemory() / (1024 * 1024) + "m");
    RunEnvironment.row(text, "ONNX Runtime", OrtEnvironments.get().getVersion());
    RunEnvironment.row(text, "Generation", String.format(Locale.ROOT, "greedy, %d new tokens per prompt, no early"
        + " stop; %d thread(s) / partitions; one warm-up of one batch per thread, then %s; each timed run at least"
        + " %.0f s (passes over the first K prompts repeated)", settings.newTokens, settings.tasks,
        "one timed run per variant and batch size", settings.minSeconds));
    for (Map.Entry<String, String> fact : facts.entrySet()) {
      RunEnvironment.row(text, fact.getKey(), fact.getValue().replace("|", "\\|"));
    }
    RunEnvironment.row(text, "GPU figures", "mean utilization.gpu and power.draw (nvidia-smi every 100 ms) over the"
        + " timed run; J / 1k tokens = mean power x time / tokens x 1,000");
    RunEnvironment.row(text, "Agreement", "rows against the plain Java loop's (b): identical, or parted first at a step"
        + " where (b)'s best two logits were within " + settings.tieMargin + " (near-tie), else a disagreement; at"
        + " least " + Math.round(AGREEMENT_FLOOR * 100) + " % identical + near-tie required");
    RunEnvironment.row(text, "Result", failures.isEmpty() ? "passed" : failures.size() + " FAILURES: "
        + String.join("; ", failures).replace("|", "\\|"));
    text.append("\n| variant | batch | tokens/s | × (b) | prompts per pass (K) x passes | run s | GPU util % | GPU W"
        + " | J / 1k tokens | batch ms | agreement: identical / near-tie / disagree (of rows) |\n"
        + "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (Measure m : measures) {
      if (m.skipped != null) {
        text.append(String.format(Locale.ROOT, "| (%s) %s | %d | %s | | | | | | | | |%n", m.key, m.label, m.batchSize,
            m.skipped.replace("|", "\\|")));
        continue;
      }
      Measure loop = measures.stream().filter(x -> x.key.equals("b") && x.batchSize == m.batchSize
          && x.skipped == null).findFirst().orElse(null);
      text.append(String.format(Locale.ROOT, "| (%s) %s | %d | %,.0f | %s | %d x %d | %.1f | %.0f | %.0f | %.2f | %s"
          + " | %s |%n", m.key, m.label, m.batchSize, m.tokensPerSecond(),
          loop == null ? "" : String.format(Locale.ROOT, "%.2f", m.tokensPerSecond() / loop.tokensPerSecond()),
          m.rowsPerPass, m.passes, m.seconds, m.utilization, m.watts, m.watts * m.seconds / m.tokens * 1000,
          Double.isNaN(m.p99) ? String.format(Locale.ROOT, "%.0f (mean)", m.p50)
              : String.format(Locale.ROOT, "%.0f / %.0f", m.p50, m.p99),
          m.key.equals("b") ? "reference" : m.compared == 0 ? m.reference
              : String.format(Locale.ROOT, "%d / %d / %d (%d, vs %s)", m.identical, m.nearTie, m.disagree, m.compared,
                  m.reference)));
    }
    text.append("\nbatch ms: the Java variants time each batch (p50 / p99); generate() gives its node's batch"
        + " latencies where it records them (per ONNX Runtime run: with decodeLoop=java one token step, not a whole"
        + " batch), else the mean ONNX Runtime session time per batch from its metrics.\n");
    return text.toString();
  }

  private String json() {
    StringBuilder json = new StringBuilder("{\n \"model\": \"" + settings.modelDir.getFileName() + "\",\n \"gpu\": \""
        + RunEnvironment.gpuName().replace("\"", "'") + "\",\n \"new_tokens\": " + settings.newTokens
        + ",\n \"tasks\": " + settings.tasks + ",\n \"failures\": " + failures.size() + ",\n \"runs\": [");
    for (int i = 0; i < measures.size(); i++) {
      Measure m = measures.get(i);
      json.append(i == 0 ? "\n" : ",\n").append(String.format(Locale.ROOT, "  {\"variant\": \"%s\", \"batch_size\": %d",
          m.key, m.batchSize));
      if (m.skipped != null) {
        json.append(", \"skipped\": \"").append(m.skipped.replace("\\", "\\\\").replace("\"", "'")).append("\"}");
        continue;
      }
      json.append(String.format(Locale.ROOT, ", \"tokens_per_second\": %.1f, \"prompts_per_pass\": %d, \"passes\": %d,"
          + " \"seconds\": %.3f, \"gpu_utilization_percent\": %s, \"gpu_watts\": %s, \"joules_per_1000_tokens\": %s,"
          + " \"batch_ms_p50\": %s, \"batch_ms_p99\": %s, \"identical\": %d, \"near_tie\": %d, \"disagree\": %d,"
          + " \"compared\": %d}", m.tokensPerSecond(), m.rowsPerPass, m.passes, m.seconds, number(m.utilization),
          number(m.watts), number(m.watts * m.seconds / m.tokens * 1000), number(m.p50), number(m.p99), m.identical,
          m.nearTie, m.disagree, m.compared));
    }
    return json.append("\n ]\n}\n").toString();
  }

  private static String number(double value) {
    return Double.isNaN(value) || Double.isInfinite(value) ? "null" : String.format(Locale.ROOT, "%.2f", value);
  }
}
