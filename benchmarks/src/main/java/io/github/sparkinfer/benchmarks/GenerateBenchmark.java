package io.github.sparkinfer.benchmarks;

import static io.github.sparkinfer.benchmarks.RunEnvironment.log;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions.ExecutionMode;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.github.sparkinfer.compression.GenerationGraph;
import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.device.OrtEnvironments;
import java.nio.IntBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Generated tokens per second on the CPU (issue 30, "Must be true" item 2, CPU part): SQL {@code
 * generate()} against the same decoder driven by a plain Java loop on ONNX Runtime, and against
 * the decoder wrapped into ONNX Runtime's {@code com.microsoft:GreedySearch} operator ({@link
 * GenerationGraph}), in one JVM, on the same model file, prompts, batch size and cores:
 *
 * <ol type="a">
 *   <li>{@code generate(model, prompt, map('maxNewTokens', T, 'batchSize', B))} over a DataFrame of
 *       the prompts in N partitions on {@code local[N]}: each task decodes its partition
 *       (sparkinfer's DecodeLoop; windows of 4 batches sorted by prompt length), one intra-op thread
 *       per task;
 *   <li>a plain Java loop written here: N threads, each the rows of the partition Spark gives task i
 *       (consecutive rows), batches of B in input order, left padding with the attention mask,
 *       positions counting real tokens, each step's present tensors fed back as the next step's
 *       past; one session shared by the threads, one intra-op thread;
 *   <li>(b) with generate()'s batches: each partition in windows of 4 batches sorted by prompt
 *       length, as generate() forms them, so that (a) / (b-sorted) is Spark's cost alone;
 *   <li>GreedySearch: the same threads and batches as (b), the whole decode loop in one ONNX
 *       Runtime run per batch, one intra-op thread;
 *   <li>and, unless {@code --no-one-session}, (b) and (c) again as one thread over all rows with
 *       one session of N intra-op threads (how a single caller would run them).
 * </ol>
 *
 * <p>Greedy, exactly T new tokens per prompt: no stop tokens for (a) and (b); for GreedySearch,
 * whose end token ends a row, the end and pad token is an id that no prompt contains and the Java
 * loop never produced for these prompts (checked again on its output). Tokenization is inside every
 * timed run; decoding the new tokens to text is inside (a) only (generate() returns text). Every
 * variant's tokens are checked before anything is written: (b) against a decode that runs the model
 * without its cache (the whole sequence each step) on two prompts; (b-sorted), (c) and the
 * one-session runs token for token against (b); (a)'s text against the tokenizer's decoding of
 * (b)'s tokens, with T tokens and finish_reason {@code length} on every row. A mismatch is printed
 * and the program exits 1.
 *
 * <p>Each variant gets one untimed warm-up and then {@code --repeat} timed runs, interleaved round
 * by round (a, b, b-sorted, c, ...), so that load from elsewhere falls on all of them; the best run
 * counts, the median is printed beside it. A timed run shorter than {@code --min-seconds} is
 * reported. The decoder comes from {@code benchmarks/generate/make_decoders.py} (see its README).
 *
 * <p>Run from the repository root; it replaces its section of benchmarks/RESULTS.md:
 *
 * <pre>
 * /usr/bin/python3 benchmarks/generate/make_decoders.py --models gpt2-124m --device cpu --dtype fp32 \
 *     --no-hf --untied-head --out-dir /tmp/gen-bench
 * ./mvnw -q -B install -DskipTests
 * ./mvnw -q -B -pl benchmarks exec:exec -Dbenchmark.heap=4g \
 *     -Dbenchmark.main=io.github.sparkinfer.benchmarks.GenerateBenchmark \
 *     -Dbenchmark.args="--model-dir /tmp/gen-bench/gpt2-124m --rows 32 --new-tokens 32"
 * </pre>
 *
 * <p>(docs/benchmarks.md shows how to run it without installing into ~/.m2.)
 */
public final class GenerateBenchmark {
  static final String HEADING = "## Text generation on the CPU (issue 30): generate() against a Java loop and GreedySearch";
  private static final String MODEL_NAME = "gpt2bench";
  /** generate()'s windows: GenerationRunner.WINDOW_BATCHES. */
  private static final int WINDOW_BATCHES = 4;
  private static final int REFERENCE_PROMPTS = 2;
  private static final int REFERENCE_STEPS = 8;

  private static final String USAGE = String.join("\n",
      "Usage: GenerateBenchmark --model-dir <folder with model.onnx and tokenizer.json>",
      "         [--prompts <file>] [--rows N] [--new-tokens N] [--batch-size N] [--cores N] [--repeat N]",
      "         [--min-seconds S] [--no-one-session] [--results <RESULTS.md>] [--work-dir <ignored>] [--note <text>]",
      "  --prompts      one prompt a line (default generate/prompts-2048.txt, beside this module)",
      "  --rows         the first N prompts (default 64)",
      "  --new-tokens   new tokens per prompt, no early stop (default 64)",
      "  --batch-size   prompts decoded together, every variant (default 8)",
      "  --cores        local[N], threads of the Java variants (default: all)",
      "  --repeat       timed runs per variant after one warm-up (default 3)",
      "  --min-seconds  a timed run shorter than this is reported (default 1; on a GPU: each timed run lasts at"
          + " least this long, default 5)",
      "On a GPU (GenerateOnDevice): --device cuda:N [--batch-sizes 32,64,128,256] [--loop-batch-sizes ...]",
      "         [--tasks 2] [--max-batch-bytes 2047m] [--tie-margin 0.1] [--deadline-seconds S] [--out <file.md>]",
      "  --device            cpu (default) or cuda:N: fp16 decoders on the CUDA execution provider",
      "  --batch-sizes       batch sizes measured on a GPU (default 32,64,128,256)",
      "  --loop-batch-sizes  the batch sizes of the Java-loop variants (b) and (a-java) (default: all)",
      "  --tasks             threads of the Java variants and partitions of generate() on a GPU (default 2)",
      "  --rows              on a GPU: the most prompts a timed run may take (default 2048)",
      "  --max-batch-bytes   spark.sparkinfer.maxBatchBytes for generate() on a GPU (default 2047m, the most it takes)",
      "  --tie-margin        on a GPU: rows parted where the Java loop's best two logits were within it are near-ties",
      "  --deadline-seconds  on a GPU: measurements not started this long after the JVM started are skipped",
      "  --out               on a GPU: the section as markdown, and a JSON beside it, rewritten after every run");

  /** The Java loop's padding token (any id: the attention mask hides it). */
  static final int PAD = 0;

  Path modelDir;
  Path prompts = Path.of("generate/prompts-2048.txt");
  int rows = 64;
  private boolean rowsGiven;
  int newTokens = 64;
  int batchSize = 8;
  List<Integer> batchSizes;
  List<Integer> loopBatchSizes;
  int cores = Runtime.getRuntime().availableProcessors();
  int tasks;
  int repeat = 3;
  double minSeconds = 1;
  private boolean minSecondsGiven;
  boolean oneSession = true;
  Path results;
  Path out;
  String note;
  String device = "cpu";
  String maxBatchBytes = "2047m";
  double tieMargin = 0.1;
  double deadlineSeconds;
  /** --device-path-on-cpu: GenerateOnDevice with CPU sessions (a smoke test of the GPU path where no GPU is). */
  boolean devicePathOnCpu;

  public static void main(String[] args) throws Exception {
    GenerateBenchmark benchmark = new GenerateBenchmark();
    try {
      benchmark.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.err.println();
      System.err.println(USAGE);
      System.exit(2);
      return;
    }
    int status = benchmark.device.equals("cpu") && !benchmark.devicePathOnCpu ? benchmark.run() : new GenerateOnDevice(benchmark).run();
    // ONNX Runtime's and Spark's leftover threads must not keep the JVM alive.
    System.exit(status);
  }

  private void parse(String[] arguments) {
    for (int i = 0; i < arguments.length; i++) {
      String name = arguments[i];
      switch (name) {
        case "--model-dir":
          modelDir = Path.of(BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--prompts":
          prompts = Path.of(BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--rows":
          rows = BenchmarkArguments.positive(name, BenchmarkArguments.value(arguments, ++i, name));
          rowsGiven = true;
          break;
        case "--device":
          device = BenchmarkArguments.value(arguments, ++i, name);
          if (!device.equals("cpu") && !device.matches("cuda:[0-9]+")) {
            throw new IllegalArgumentException("--device takes cpu or cuda:N, not '" + device + "'");
          }
          break;
        case "--batch-sizes":
          batchSizes = sizes(name, BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--loop-batch-sizes":
          loopBatchSizes = sizes(name, BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--tasks":
          tasks = BenchmarkArguments.positive(name, BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--max-batch-bytes":
          maxBatchBytes = BenchmarkArguments.value(arguments, ++i, name);
          break;
        case "--tie-margin":
          tieMargin = Double.parseDouble(BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--deadline-seconds":
          deadlineSeconds = Double.parseDouble(BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--device-path-on-cpu":
          devicePathOnCpu = true;
          break;
        case "--out":
          out = Path.of(BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--new-tokens":
          newTokens = BenchmarkArguments.positive(name, BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--batch-size":
          batchSize = BenchmarkArguments.positive(name, BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--cores":
          cores = BenchmarkArguments.positive(name, BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--repeat":
          repeat = BenchmarkArguments.positive(name, BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--min-seconds":
          minSeconds = Double.parseDouble(BenchmarkArguments.value(arguments, ++i, name));
          minSecondsGiven = true;
          break;
        case "--no-one-session":
          oneSession = false;
          break;
        case "--results":
          results = Path.of(BenchmarkArguments.value(arguments, ++i, name));
          break;
        case "--work-dir":
          BenchmarkArguments.value(arguments, ++i, name);
          break;
        case "--note":
          note = BenchmarkArguments.value(arguments, ++i, name);
          break;
        default:
          throw new IllegalArgumentException("Unknown argument '" + name + "'");
      }
    }
    boolean gpu = !device.equals("cpu") || devicePathOnCpu;
    if (batchSizes == null) {
      batchSizes = gpu ? List.of(32, 64, 128, 256) : List.of(batchSize);
    }
    if (!gpu && batchSizes.size() != 1) {
      throw new IllegalArgumentException("On the CPU, one batch size: --batch-size N (or --batch-sizes N)");
    }
    batchSize = batchSizes.get(0);
    if (tasks == 0) {
      tasks = gpu ? 2 : cores;
    }
    if (gpu && !rowsGiven) {
      rows = 2048;
    }
    if (gpu && !minSecondsGiven) {
      minSeconds = 5;
    }
    if (modelDir == null) {
      throw new IllegalArgumentException("Missing --model-dir: the folder make_decoders.py wrote (model.onnx and"
          + " tokenizer.json), e.g. /tmp/gen-bench/gpt2-124m");
    }
    for (String file : List.of("model.onnx", "tokenizer.json")) {
      if (!Files.isRegularFile(modelDir.resolve(file))) {
        throw new IllegalArgumentException("No " + file + " in --model-dir " + modelDir);
      }
    }
    if (!Files.isRegularFile(prompts)) {
      throw new IllegalArgumentException("No prompts file " + prompts.toAbsolutePath());
    }
  }

  private static List<Integer> sizes(String name, String text) {
    List<Integer> sizes = new ArrayList<>();
    for (String part : text.split(",")) {
      sizes.add(BenchmarkArguments.positive(name, part.trim()));
    }
    return sizes;
  }

  /** One variant's timed runs and its last run's tokens. */
  private static final class Variant {
    final String key;
    final String label;
    final Measurement measurement;
    final Run run;
    final List<Long> cpuNanos = new ArrayList<>();
    int[][] tokens;

    Variant(String key, String label, long generatedTokens, Run run) {
      this.key = key;
      this.label = label;
      this.measurement = new Measurement(key, label, generatedTokens);
      this.run = run;
    }
  }

  interface Run {
    int[][] run() throws Exception;
  }

  private int run() throws Exception {
    ZonedDateTime date = ZonedDateTime.now(ZoneOffset.UTC);
    String loadBefore = RunEnvironment.loadAverage();
    Path modelFile = modelDir.resolve("model.onnx").toAbsolutePath();
    Path tokenizerFile = modelDir.resolve("tokenizer.json").toAbsolutePath();
    String[] texts = Files.readAllLines(prompts, StandardCharsets.UTF_8).stream().limit(rows).toArray(String[]::new);
    if (texts.length < rows) {
      throw new IllegalArgumentException(prompts + " has " + texts.length + " prompts, fewer than --rows " + rows);
    }
    log("GenerateBenchmark: %s, %d prompts, %d new tokens each, batch size %d, %d cores; load %s", modelFile,
        rows, newTokens, batchSize, cores, loadBefore);

    // The tokenizer as generate() builds it (TokenizerCache): GPT-2's adds no special tokens.
    HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerFile)
        .optAddSpecialTokens(true).optPadding(false).optTruncation(true).optMaxLength(1 << 24).build();
    int[][] promptIds = encode(tokenizer, texts);
    long promptTokens = Arrays.stream(promptIds).mapToLong(p -> p.length).sum();
    int longestPrompt = Arrays.stream(promptIds).mapToInt(p -> p.length).max().orElseThrow();

    OrtEnvironment environment = OrtEnvironments.get();
    long generated = (long) rows * newTokens;
    List<Variant> variants = new ArrayList<>();
    Map<String, String> facts = new java.util.LinkedHashMap<>();
    List<String> failures = new ArrayList<>();
    SparkSession spark = null;
    try (OrtSession one = session(environment, modelFile, 1);
        OrtSession all = oneSession ? session(environment, modelFile, cores) : null) {
      LoopDecoder decoder = new LoopDecoder(environment, one);
      LoopDecoder decoderAll = all == null ? null : new LoopDecoder(environment, all);
      int pad = PAD;
      log("decoder: %d layers, %d heads of %d, vocabulary %d; prompts %,d tokens (longest %d)", decoder.layers,
          decoder.heads, decoder.headSize, decoder.vocabulary, promptTokens, longestPrompt);

      // (b) first: its tokens choose GreedySearch's end token and are every other variant's reference.
      List<int[]> inputOrder = new ArrayList<>();
      List<int[]> windowSorted = new ArrayList<>();
      for (int task = 0; task < cores; task++) {
        int from = (int) ((long) task * rows / cores);
        int to = (int) ((long) (task + 1) * rows / cores);
        inputOrder.add(IntStream.range(from, to).toArray());
        windowSorted.add(windowSortedOrder(promptIds, from, to));
      }
      ExecutorService pool = Executors.newFixedThreadPool(cores);
      Variant loop = new Variant("b", "plain Java loop on ONNX Runtime, " + cores + " threads x 1 intra-op thread,"
          + " batches in input order", generated,
          () -> parallel(pool, inputOrder, slice -> decoder.decode(encode(tokenizer, texts, slice).prompts, batchSize, newTokens, pad).tokens));
      long started = System.nanoTime();
      loop.tokens = loop.run.run();
      log("(b) warm-up %.1f s", RunEnvironment.seconds(System.nanoTime() - started));

      // Reference: the model without its cache, whole sequence each step, on a few prompts.
      for (int row = 0; row < REFERENCE_PROMPTS; row++) {
        int[] reference = decoder.uncached(promptIds[row], REFERENCE_STEPS);
        int[] got = Arrays.copyOf(loop.tokens[row], REFERENCE_STEPS);
        String line = String.format(Locale.ROOT, "prompt %d (%d tokens): without cache %s, Java loop %s", row,
            promptIds[row].length, Arrays.toString(reference), Arrays.toString(got));
        log("reference check %s", line);
        if (!Arrays.equals(reference, got)) {
          failures.add("(b) differs from the decode without cache on " + line);
        }
      }
      facts.put("reference", "(b)'s first " + REFERENCE_STEPS + " tokens of prompts 0.." + (REFERENCE_PROMPTS - 1)
          + " equal a decode without the cache (whole sequence each step)");

      // GreedySearch's end and pad token: in no prompt and never produced by (b).
      Set<Integer> used = new HashSet<>();
      for (int[][] ids : List.of(promptIds, loop.tokens)) {
        for (int[] row : ids) {
          for (int id : row) {
            used.add(id);
          }
        }
      }
      int endToken = 50256;
      while (used.contains(endToken) || endToken >= decoder.vocabulary) {
        endToken = endToken >= decoder.vocabulary ? (int) decoder.vocabulary - 1 : endToken - 1;
      }
      int searchEnd = endToken;
      log("GreedySearch end/pad token %d (in no prompt, not produced by the Java loop)", searchEnd);
      long wrapStarted = System.nanoTime();
      OnnxModel wrapped = GenerationGraph.of(MODEL_NAME, OnnxModel.read(modelFile)).greedySearch(searchEnd, searchEnd);
      byte[] wrappedBytes = wrapped.toBytes();
      wrapped = null;
      facts.put("wrap", String.format(Locale.ROOT, "GenerationGraph.greedySearch(%d, %d): %.1f s to wrap, %,d bytes",
          searchEnd, searchEnd, RunEnvironment.seconds(System.nanoTime() - wrapStarted), wrappedBytes.length));
      try (OrtSession search = session(environment, wrappedBytes, 1);
          OrtSession searchAll = oneSession ? session(environment, wrappedBytes, cores) : null) {
        wrappedBytes = null;
        variants.add(loop);
        variants.add(new Variant("b-sorted", "plain Java loop, generate()'s batches (windows of " + WINDOW_BATCHES
            + " batches sorted by length), " + cores + " threads x 1", generated,
            () -> parallel(pool, windowSorted, slice -> decoder.decode(encode(tokenizer, texts, slice).prompts, batchSize, newTokens, pad).tokens)));
        variants.add(new Variant("c", "GreedySearch operator (GenerationGraph), " + cores + " threads x 1 intra-op"
            + " thread, batches in input order", generated,
            () -> parallel(pool, inputOrder, slice -> greedySearch(environment, search, encode(tokenizer, texts,
                slice), newTokens, searchEnd))));
        if (oneSession) {
          int[] everything = IntStream.range(0, rows).toArray();
          variants.add(new Variant("b1", "plain Java loop, 1 thread x " + cores + " intra-op threads, input order",
              generated, () -> decoderAll.decode(encode(tokenizer, texts, everything).prompts, batchSize, newTokens, pad).tokens));
          variants.add(new Variant("c1", "GreedySearch, 1 thread x " + cores + " intra-op threads, input order",
              generated, () -> greedySearch(environment, searchAll, encode(tokenizer, texts, everything), newTokens,
                  searchEnd)));
        }

        // (a): generate() on local[N], the prompts in N partitions (task i gets the rows (b) gives thread i).
        spark = LocalSpark.session("sparkinfer GenerateBenchmark", cores);
        spark.conf().set("spark.sparkinfer.model." + MODEL_NAME + ".path", modelFile.toUri().toString());
        spark.conf().set("spark.sparkinfer.model." + MODEL_NAME + ".tokenizer", tokenizerFile.toUri().toString());
        spark.conf().set("spark.sparkinfer.intraOpThreads", "1");
        List<Row> input = new ArrayList<>();
        for (int row = 0; row < rows; row++) {
          input.add(RowFactory.create(row, texts[row]));
        }
        StructType schema = new StructType().add("id", DataTypes.IntegerType, false)
            .add("prompt", DataTypes.StringType, false);
        JavaSparkContext context = JavaSparkContext.fromSparkContext(spark.sparkContext());
        spark.createDataFrame(context.parallelize(input, cores), schema).createOrReplaceTempView("prompts");
        String query = "SELECT id, g.text, g.tokens, g.finish_reason FROM (SELECT id, generate('" + MODEL_NAME
            + "', prompt, map('maxNewTokens', '" + newTokens + "', 'batchSize', '" + batchSize + "')) AS g FROM prompts)";
        facts.put("query", query);
        SparkSession session = spark;
        String[][] sqlText = new String[1][];
        Variant sql = new Variant("a", "SQL generate() on local[" + cores + "], " + cores + " partitions, 1 intra-op"
            + " thread per task", generated, () -> {
              Dataset<Row> frame = session.sql(query);
              List<Row> out = frame.collectAsList();
              long[] modelNanos = {-1};
              QueryRunner.visit(frame.queryExecution().executedPlan(), node -> {
                if (node.metrics().contains("modelTime") && node.metrics().contains("batches")) {
                  modelNanos[0] = node.metrics().apply("modelTime").value();
                }
              });
              log("(a) summed over tasks: session.run %.2f s (SQL metric modelTime)",
                  RunEnvironment.seconds(modelNanos[0]));
              String[] text = new String[rows];
              int[][] counts = new int[rows][];
              for (Row row : out) {
                int id = row.getInt(0);
                text[id] = row.getString(1);
                counts[id] = new int[] {row.getInt(2), "length".equals(row.getString(3)) ? 1 : 0};
              }
              sqlText[0] = text;
              return counts;
            });
        variants.add(0, sql);

        // Warm-ups (b's was above), then the timed rounds.
        for (Variant variant : variants) {
          if (variant != loop) {
            started = System.nanoTime();
            variant.tokens = variant.run.run();
            log("(%s) warm-up %.1f s", variant.key, RunEnvironment.seconds(System.nanoTime() - started));
          }
        }
        check(variants, loop, sqlText[0], tokenizer, failures);
        for (int round = 0; round < repeat; round++) {
          for (Variant variant : variants) {
            long cpuStarted = processCpuNanos();
            started = System.nanoTime();
            variant.tokens = variant.run.run();
            long nanos = System.nanoTime() - started;
            long cpu = processCpuNanos() - cpuStarted;
            variant.measurement.add(nanos);
            variant.cpuNanos.add(cpu);
            log("round %d (%s) %.2f s, %,.1f tokens/s, %.1f CPU-s; load %s", round + 1, variant.key,
                RunEnvironment.seconds(nanos), generated / RunEnvironment.seconds(nanos), RunEnvironment.seconds(cpu),
                RunEnvironment.loadAverage());
          }
          check(variants, loop, sqlText[0], tokenizer, failures);
        }
      } finally {
        pool.shutdownNow();
      }
    } finally {
      if (spark != null) {
        spark.stop();
      }
    }
    String loadAfter = RunEnvironment.loadAverage();
    for (Variant variant : variants) {
      log("%s", variant.measurement.describe().replace(" rows", " tokens"));
    }
    String body = report(date, variants, facts, failures, promptTokens, longestPrompt, loadBefore, loadAfter);
    System.out.println(body);
    if (!failures.isEmpty()) {
      failures.forEach(failure -> System.err.println("MISMATCH: " + failure));
      System.err.println(failures.size() + " mismatches: nothing written to RESULTS.md");
      return 1;
    }
    if (results != null) {
      ResultsFile.replaceSection(results, HEADING, body);
      log("Wrote %s", results.toAbsolutePath());
    }
    return 0;
  }

  /** Every variant's tokens against (b)'s; (a)'s texts against the tokenizer's decoding of (b)'s tokens. */
  private void check(List<Variant> variants, Variant loop, String[] sqlText, HuggingFaceTokenizer tokenizer,
      List<String> failures) {
    int before = failures.size();
    for (Variant variant : variants) {
      if (variant == loop) {
        continue;
      }
      for (int row = 0; row < rows; row++) {
        if (variant.key.equals("a")) {
          String expected = tokenizer.decode(Arrays.stream(loop.tokens[row]).asLongStream().toArray(), true);
          int[] counts = variant.tokens[row];
          if (counts == null || counts[0] != newTokens || counts[1] != 1 || !expected.equals(sqlText[row])) {
            failures.add(String.format(Locale.ROOT, "(a) row %d: %s tokens, finish_reason length %s, text %s;"
                + " (b) decodes to %s", row, counts == null ? "no" : counts[0], counts != null && counts[1] == 1,
                quote(sqlText[row]), quote(expected)));
          }
        } else if (!Arrays.equals(variant.tokens[row], loop.tokens[row])) {
          failures.add(String.format(Locale.ROOT, "(%s) row %d: %s; (b): %s", variant.key, row,
              Arrays.toString(variant.tokens[row]), Arrays.toString(loop.tokens[row])));
        }
      }
    }
    for (int row = 0; row < rows; row++) {
      if (loop.tokens[row].length != newTokens) {
        failures.add("(b) row " + row + " has " + loop.tokens[row].length + " tokens");
      }
    }
    for (int i = before; i < failures.size(); i++) {
      log("MISMATCH %s", failures.get(i));
    }
  }

  /** CPU time of the whole JVM (every thread: Spark's, ONNX Runtime's, the benchmark's). */
  private static long processCpuNanos() {
    java.lang.management.OperatingSystemMXBean bean = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    return bean instanceof com.sun.management.OperatingSystemMXBean
        ? ((com.sun.management.OperatingSystemMXBean) bean).getProcessCpuTime() : 0;
  }

  private static String quote(String text) {
    return text == null ? "null" : "\"" + text.replace("\n", "\\n") + "\"";
  }

  private String report(ZonedDateTime date, List<Variant> variants, Map<String, String> facts, List<String> failures,
      long promptTokens, int longestPrompt, String loadBefore, String loadAfter) {
    StringBuilder text = new StringBuilder();
    if (note != null) {
      text.append("**Note:** ").append(note.strip()).append("\n\n");
    }
    text.append("| | |\n|---|---|\n");
    RunEnvironment.row(text, "Date (UTC)", DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").format(date));
    RunEnvironment.row(text, "Commit", RunEnvironment.gitCommit());
    RunEnvironment.row(text, "CPU", RunEnvironment.cpuModel());
    RunEnvironment.row(text, "Cores (N)", cores + " (local[" + cores + "]; the machine has "
        + Runtime.getRuntime().availableProcessors() + ")");
    RunEnvironment.row(text, "JVM", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version")
        + ", -Xmx" + Runtime.getRuntime().maxMemory() / (1024 * 1024) + "m");
    RunEnvironment.row(text, "ONNX Runtime", OrtEnvironments.get().getVersion() + " (CPU provider)");
    RunEnvironment.row(text, "Load average (1, 5, 15 min)", "before " + loadBefore + ", after " + loadAfter);
    RunEnvironment.row(text, "Model", "`" + modelDir.resolve("model.onnx") + "`: GPT-2 124M shape, fp32, random"
        + " weights with an untied output projection (`make_decoders.py --models gpt2-124m --device cpu --dtype fp32 --no-hf"
        + " --untied-head`, 163 M parameters), GPT-2 layout (past_N / present_N, logits of every position), GPT-2's"
        + " tokenizer");
    RunEnvironment.row(text, "Prompts", String.format(Locale.ROOT, "the first %d of `benchmarks/generate/%s`: %,d"
        + " prompt tokens, longest %d", rows, prompts.getFileName(), promptTokens, longestPrompt));
    RunEnvironment.row(text, "Generation", String.format(Locale.ROOT, "greedy, %d new tokens per prompt, no early"
        + " stop (%,d tokens per run), batch size %d in every variant", newTokens, (long) rows * newTokens, batchSize));
    RunEnvironment.row(text, "Runs", "one warm-up, then " + repeat + " timed runs per variant, interleaved round by"
        + " round; best run counted (median beside it)");
    for (Map.Entry<String, String> fact : facts.entrySet()) {
      RunEnvironment.row(text, fact.getKey(), fact.getValue().replace("|", "\\|"));
    }
    RunEnvironment.row(text, "Correctness", failures.isEmpty()
        ? "every variant's tokens equal (b)'s, every row of every run; (a)'s text equals the tokenizer's decoding of"
            + " (b)'s tokens, " + newTokens + " tokens and finish_reason `length` on every row"
        : failures.size() + " MISMATCHES (see the log)");
    text.append("\n| variant | tokens/s (best) | tokens/s (median) | runs (s) | × (b), best | tokens per CPU-second"
        + " (best) | CPU-s of the runs |\n|---|---:|---:|---|---:|---:|---|\n");
    double loopRate = variants.stream().filter(v -> v.key.equals("b")).findFirst().orElseThrow()
        .measurement.bestRowsPerSecond();
    List<String> shortRuns = new ArrayList<>();
    for (Variant variant : variants) {
      Measurement m = variant.measurement;
      long leastCpu = variant.cpuNanos.stream().min(Long::compare).orElse(0L);
      text.append(String.format(Locale.ROOT, "| (%s) %s | %,.1f | %,.1f | %s | %.2f | %,.1f | %s |%n", variant.key,
          variant.label, m.bestRowsPerSecond(), m.medianRowsPerSecond(), m.runSeconds(),
          m.bestRowsPerSecond() / loopRate, m.rows() / RunEnvironment.seconds(Math.max(leastCpu, 1)),
          variant.cpuNanos.stream().map(n -> String.format(Locale.ROOT, "%.1f", RunEnvironment.seconds(n)))
              .collect(Collectors.joining(", "))));
      if (m.rows() / m.bestRowsPerSecond() < minSeconds) {
        shortRuns.add("(" + variant.key + ")");
      }
    }
    if (!shortRuns.isEmpty()) {
      text.append("\nTimed runs shorter than ").append(minSeconds).append(" s: ")
          .append(String.join(", ", shortRuns)).append(".\n");
    }
    return text.toString();
  }

  /** Rows from..to of one partition in generate()'s order: windows of 4 batches, each sorted by prompt length. */
  private int[] windowSortedOrder(int[][] promptIds, int from, int to) {
    List<Integer> order = new ArrayList<>();
    int window = batchSize * WINDOW_BATCHES;
    for (int start = from; start < to; start += window) {
      List<Integer> rowsOfWindow = IntStream.range(start, Math.min(to, start + window)).boxed()
          .collect(Collectors.toList());
      // Stable, as GenerationRunner's Arrays.sort of Integer[].
      rowsOfWindow.sort(Comparator.comparingInt(row -> promptIds[row].length));
      order.addAll(rowsOfWindow);
    }
    return order.stream().mapToInt(Integer::intValue).toArray();
  }

  /** The prompts of {@code slice} (row numbers), tokenized; paired with their rows. */
  private static Slice encode(HuggingFaceTokenizer tokenizer, String[] texts, int[] slice) {
    String[] chosen = new String[slice.length];
    for (int i = 0; i < slice.length; i++) {
      chosen[i] = texts[slice[i]];
    }
    return new Slice(slice, encode(tokenizer, chosen));
  }

  static int[][] encode(HuggingFaceTokenizer tokenizer, String[] texts) {
    int[][] ids = new int[texts.length][];
    for (int i = 0; i < texts.length; i++) {
      ids[i] = Arrays.stream(tokenizer.encode(texts[i]).getIds()).mapToInt(Math::toIntExact).toArray();
    }
    return ids;
  }

  /** Rows (by number) and their prompt token ids, in the order they are batched. */
  static final class Slice {
    final int[] rows;
    final int[][] prompts;

    Slice(int[] rows, int[][] prompts) {
      this.rows = rows;
      this.prompts = prompts;
    }
  }

  interface SliceWork {
    int[][] run(int[] slice) throws Exception;
  }

  /** Each slice on its own thread; tokens by row number. */
  private int[][] parallel(ExecutorService pool, List<int[]> slices, SliceWork work) throws Exception {
    List<Future<int[][]>> futures = new ArrayList<>();
    for (int[] slice : slices) {
      futures.add(pool.submit(() -> work.run(slice)));
    }
    int[][] tokens = new int[rows][];
    for (int i = 0; i < slices.size(); i++) {
      int[][] sliceTokens = futures.get(i).get();
      int[] slice = slices.get(i);
      for (int j = 0; j < slice.length; j++) {
        tokens[slice[j]] = sliceTokens[j];
      }
    }
    return tokens;
  }

  private static OrtSession session(OrtEnvironment environment, Path file, int threads) throws OrtException {
    try (OrtSession.SessionOptions options = options(threads)) {
      return environment.createSession(file.toString(), options);
    }
  }

  private static OrtSession session(OrtEnvironment environment, byte[] model, int threads) throws OrtException {
    try (OrtSession.SessionOptions options = options(threads)) {
      return environment.createSession(model, options);
    }
  }

  /** sparkinfer's own CPU session settings (DeviceSessions): intra-op threads, 1 inter-op, all optimizations, sequential. */
  private static OrtSession.SessionOptions options(int threads) throws OrtException {
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    options.setIntraOpNumThreads(threads);
    options.setInterOpNumThreads(1);
    options.setOptimizationLevel(OptLevel.ALL_OPT);
    options.setExecutionMode(ExecutionMode.SEQUENTIAL);
    return options;
  }

  /**
   * Batches of {@code batchSize} of the slice's rows, in its order, each decoded by GreedySearch in
   * one run; tokens in the slice's order.
   */
  private int[][] greedySearch(OrtEnvironment environment, OrtSession search, Slice slice, int newTokens, int pad)
      throws OrtException {
    int[][] tokens = new int[slice.prompts.length][];
    for (int first = 0; first < slice.prompts.length; first += batchSize) {
      int[][] batch = Arrays.copyOfRange(slice.prompts, first, Math.min(slice.prompts.length, first + batchSize));
      int[][] out = greedySearchBatch(environment, search, batch, newTokens, pad);
      System.arraycopy(out, 0, tokens, first, out.length);
    }
    return tokens;
  }

  /**
   * One GreedySearch run: prompts left-padded with the pad token (mask 0), max_length = longest +
   * newTokens, min_length 0, no repetition penalty; each row's new tokens up to its first pad token
   * (none, when the pad token is never produced).
   */
  static int[][] greedySearchBatch(OrtEnvironment environment, OrtSession search, int[][] prompts,
      int newTokens, int pad) throws OrtException {
    int longest = Arrays.stream(prompts).mapToInt(p -> p.length).max().orElseThrow();
    int maxLength = longest + newTokens;
    int[] ids = new int[prompts.length * longest];
    int[] mask = new int[prompts.length * longest];
    for (int row = 0; row < prompts.length; row++) {
      int padding = longest - prompts[row].length;
      for (int column = 0; column < longest; column++) {
        ids[row * longest + column] = column < padding ? pad : prompts[row][column - padding];
        mask[row * longest + column] = column < padding ? 0 : 1;
      }
    }
    long[] shape = {prompts.length, longest};
    Map<String, OnnxTensor> inputs = new HashMap<>();
    try {
      inputs.put(GenerationGraph.INPUT_IDS, OnnxTensor.createTensor(environment, IntBuffer.wrap(ids), shape));
      inputs.put(GenerationGraph.ATTENTION_MASK, OnnxTensor.createTensor(environment, IntBuffer.wrap(mask), shape));
      inputs.put(GenerationGraph.MAX_LENGTH, OnnxTensor.createTensor(environment, new int[] {maxLength}));
      inputs.put(GenerationGraph.MIN_LENGTH, OnnxTensor.createTensor(environment, new int[] {0}));
      inputs.put(GenerationGraph.REPETITION_PENALTY, OnnxTensor.createTensor(environment, new float[] {1f}));
      try (OrtSession.Result result = search.run(inputs)) {
        OnnxTensor sequences = (OnnxTensor) result.get(GenerationGraph.SEQUENCES).orElseThrow();
        long[] outShape = sequences.getInfo().getShape();
        IntBuffer values = sequences.getIntBuffer();
        int[][] tokens = new int[prompts.length][];
        for (int row = 0; row < prompts.length; row++) {
          List<Integer> fresh = new ArrayList<>();
          for (int column = longest; column < outShape[1]; column++) {
            int token = values.get((int) (row * outShape[1] + column));
            if (token == pad) {
              break;
            }
            fresh.add(token);
          }
          tokens[row] = fresh.stream().mapToInt(Integer::intValue).toArray();
        }
        return tokens;
      }
    } finally {
      inputs.values().forEach(OnnxTensor::close);
    }
  }
}
