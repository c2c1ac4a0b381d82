package io.github.sparkinfer.benchmarks;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.SparkStatusTracker;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * A long run of mixed use in one JVM, to find crashes and leaks that short tests do not: predict()
 * and embed() alternating over hundreds of queries, 2 and then 4 at once, System.gc() between
 * them, queries cut short by LIMIT, jobs cancelled while their tasks run the model, next to a
 * thread that burns a core. Every minute it samples the process's RSS, direct memory, heap and
 * threads; every full query's result is checked against the first one. Rewrites the "## Soak"
 * section of RESULTS.md; a crash leaves no section (and an hs_err file in the work folder).
 *
 * <p>Run it with a small heap: {@code -Dbenchmark.heap=1g}. Arguments: --minutes N (30), --cores N
 * (2), --sample-seconds N (60), --results FILE, --work-dir DIR.
 */
public final class SoakBenchmark {
  private static final String[] KINDS = {"predict", "embed", "predict LIMIT", "embed LIMIT", "cancelled"};

  private SoakBenchmark() {}

  public static void main(String[] arguments) throws Exception {
    int minutes = 30;
    int cores = 2;
    int sampleSeconds = 60;
    Path results = Path.of("benchmarks/RESULTS.md");
    Path work = Path.of("target/benchmark-data");
    for (int i = 0; i < arguments.length; i += 2) {
      switch (arguments[i]) {
        case "--minutes": minutes = Integer.parseInt(arguments[i + 1]); break;
        case "--cores": cores = Integer.parseInt(arguments[i + 1]); break;
        case "--sample-seconds": sampleSeconds = Integer.parseInt(arguments[i + 1]); break;
        case "--results": results = Path.of(arguments[i + 1]); break;
        case "--work-dir": work = Path.of(arguments[i + 1]); break;
        default: throw new IllegalArgumentException("Unknown argument " + arguments[i]
            + "; use --minutes, --cores, --sample-seconds, --results, --work-dir");
      }
    }
    Files.createDirectories(work);
    SparkSession spark = LocalSpark.session("sparkinfer-soak", cores);
    Path mlp = work.resolve("soak-mlp.onnx");
    MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 16).seed(42).inputName("features")
        .outputName("scores").build().writeTo(mlp);
    spark.conf().set("spark.sparkinfer.model.mlp.path", mlp.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.minilm.path", MiniLm.FP32.extractModel(work).toUri().toString());
    spark.conf().set("spark.sparkinfer.model.minilm.tokenizer", MiniLm.FP32.extractTokenizer(work).toUri().toString());
    spark.range(0, 20_000, 1, cores * 2)
        .selectExpr("id", "transform(sequence(1, 64), i -> CAST(((id * 7 + i) % 13) / 13.0 AS FLOAT)) AS features")
        .cache().createOrReplaceTempView("points");
    SentenceData.generate(spark, 600, cores * 2).cache().createOrReplaceTempView("docs");
    Map<String, Double> expected = new ConcurrentHashMap<>();
    expected.put("predict", sum(spark, predictQuery()));
    expected.put("embed", sum(spark, embedQuery()));

    AtomicBoolean stop = new AtomicBoolean();
    Thread burner = new Thread(() -> burn(stop), "soak-cpu-burner");
    burner.setDaemon(true);
    burner.start();

    Map<String, LongAdder> done = new ConcurrentHashMap<>();
    LongAdder mismatches = new LongAdder();
    List<String> failures = java.util.Collections.synchronizedList(new ArrayList<>());
    AtomicLong next = new AtomicLong();
    long start = System.nanoTime();
    long end = start + TimeUnit.MINUTES.toNanos(minutes);
    List<String> samples = new ArrayList<>();
    samples.add(sample(0, 0, done));
    for (int phase = 0; phase < 2; phase++) {
      int clients = phase == 0 ? 2 : 4;
      long phaseEnd = phase == 0 ? start + (end - start) / 2 : end;
      ExecutorService pool = Executors.newFixedThreadPool(clients);
      List<Future<?>> running = new ArrayList<>();
      for (int client = 0; client < clients; client++) {
        running.add(pool.submit(() -> {
          while (System.nanoTime() < phaseEnd && failures.size() < 20) {
            String kind = KINDS[(int) (next.getAndIncrement() % KINDS.length)];
            try {
              run(spark, kind, expected, mismatches);
              done.computeIfAbsent(kind, k -> new LongAdder()).increment();
            } catch (RuntimeException e) {
              failures.add(kind + ": " + e);
            }
            System.gc();
          }
          return null;
        }));
      }
      long nextSample = System.nanoTime() + TimeUnit.SECONDS.toNanos(sampleSeconds);
      for (Future<?> client : running) {
        while (true) {
          try {
            client.get(Math.max(1, (nextSample - System.nanoTime()) / 1_000_000), TimeUnit.MILLISECONDS);
            break;
          } catch (java.util.concurrent.TimeoutException e) {
            samples.add(sample((System.nanoTime() - start) / 1e9, clients, done));
            System.out.println(samples.get(samples.size() - 1));
            nextSample += TimeUnit.SECONDS.toNanos(sampleSeconds);
          }
        }
      }
      pool.shutdown();
    }
    stop.set(true);
    samples.add(sample((System.nanoTime() - start) / 1e9, 0, done));

    long total = done.values().stream().mapToLong(LongAdder::sum).sum();
    List<String> body = new ArrayList<>();
    body.add("<!-- Written by io.github.sparkinfer.benchmarks.SoakBenchmark: run it again rather than editing this section. -->");
    body.add("");
    body.add(String.format(Locale.ROOT, "%s, commit %s, CPU %s, local[%d], -Xmx%dm, %d minutes: %,d queries (%s), 2 at"
        + " once for the first half and 4 for the second, System.gc() after each, next to a thread burning a core."
        + " predict(): MLP 64-256-256-16 over 20,000 cached rows; embed(): all-MiniLM-L6-v2 over 600 sentences;"
        + " LIMIT queries stop tasks early; cancelled jobs are cancelled while their tasks run the model.",
        Instant.now(), RunEnvironment.gitCommit(), RunEnvironment.cpuModel(), cores,
        Runtime.getRuntime().maxMemory() / (1024 * 1024), minutes, total, describe(done)));
    body.add("");
    body.add(String.format(Locale.ROOT, "Result: **%s** — no crash (the JVM lived to write this), %d unexpected query"
        + " failures, %d full-query results different from the first%s.",
        failures.isEmpty() && mismatches.sum() == 0 ? "passed" : "failed", failures.size(), mismatches.sum(),
        failures.isEmpty() ? "" : " (first: " + failures.get(0).replace('|', '/') + ")"));
    body.add("");
    body.add("| minute | clients | queries done | RSS (MB) | direct memory (MB) | heap used (MB) | threads |");
    body.add("|---:|---:|---:|---:|---:|---:|---:|");
    body.addAll(samples);
    body.add("");
    body.add("Reproduce: `./mvnw -q -B install -DskipTests && ./mvnw -q -B -pl benchmarks exec:exec -Dbenchmark.heap=1g"
        + " -Dbenchmark.main=io.github.sparkinfer.benchmarks.SoakBenchmark -Dbenchmark.args=\"--minutes " + minutes + "\"`");
    ResultsFile.replaceSection(results, "## Soak (predict and embed, mixed use in one JVM)", String.join("\n", body));
    body.forEach(System.out::println);
    spark.stop();
    if (!failures.isEmpty() || mismatches.sum() > 0) {
      System.exit(1);
    }
  }

  private static String predictQuery() {
    return "SELECT count(*), sum(p[0]) FROM (SELECT predict('mlp', features) AS p FROM points)";
  }

  private static String embedQuery() {
    return "SELECT count(*), sum(e[0]) FROM (SELECT embed('minilm', body) AS e FROM docs)";
  }

  private static double sum(SparkSession spark, String query) {
    Row row = spark.sql(query).first();
    return row.getDouble(1);
  }

  private static void run(SparkSession spark, String kind, Map<String, Double> expected, LongAdder mismatches) {
    switch (kind) {
      case "predict":
      case "embed": {
        double value = sum(spark, kind.equals("predict") ? predictQuery() : embedQuery());
        // Sums of the same values in another order differ in their last bits only.
        if (Math.abs(value - expected.get(kind)) > 1e-6 * Math.max(1, Math.abs(expected.get(kind)))) {
          mismatches.increment();
        }
        break;
      }
      case "predict LIMIT":
        spark.sql("SELECT predict('mlp', features) FROM points LIMIT 7").collectAsList();
        break;
      case "embed LIMIT":
        spark.sql("SELECT embed('minilm', body) FROM docs LIMIT 3").collectAsList();
        break;
      default:
        cancelMidBatch(spark);
    }
  }

  /** Starts a full predict() in its own job group and cancels it once its tasks run. */
  private static void cancelMidBatch(SparkSession spark) {
    String group = "soak-cancel-" + Thread.currentThread().getId() + "-" + System.nanoTime();
    SparkStatusTracker status = spark.sparkContext().statusTracker();
    Thread query = new Thread(() -> {
      spark.sparkContext().setJobGroup(group, "cancelled mid-batch", true);
      try {
        spark.sql(predictQuery()).collect();
      } catch (RuntimeException expected) {
        // Cancelled, as meant.
      }
    }, "soak-cancelled-query");
    query.start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    boolean cancelled = false;
    while (!cancelled && query.isAlive() && System.nanoTime() < deadline) {
      for (int job : status.getJobIdsForGroup(group)) {
        for (int stage : status.getJobInfo(job).map(info -> info.stageIds()).getOrElse(() -> new int[0])) {
          SparkStageInfo info = status.getStageInfo(stage).getOrElse(() -> null);
          if (!cancelled && info != null && info.numActiveTasks() > 0) {
            spark.sparkContext().cancelJobGroup(group);
            cancelled = true;
          }
        }
      }
      join(query, 5);
    }
    join(query, 60_000);
  }

  private static void join(Thread thread, long millis) {
    try {
      thread.join(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static void burn(AtomicBoolean stop) {
    try {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      byte[] block = new byte[1 << 16];
      while (!stop.get()) {
        block = digest.digest(block.length == 32 ? new byte[1 << 16] : block);
      }
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String describe(Map<String, LongAdder> done) {
    List<String> parts = new ArrayList<>();
    for (String kind : KINDS) {
      LongAdder count = done.get(kind);
      parts.add(kind + " " + (count == null ? 0 : count.sum()));
    }
    return String.join(", ", parts);
  }

  private static String sample(double seconds, int clients, Map<String, LongAdder> done) {
    long rss = 0;
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmRSS:")) {
          rss = Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
        }
      }
    } catch (java.io.IOException | RuntimeException e) {
      rss = -1;
    }
    long direct = 0;
    for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
      if (pool.getName().equals("direct")) {
        direct = pool.getMemoryUsed() / (1024 * 1024);
      }
    }
    long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed() / (1024 * 1024);
    int threads = ManagementFactory.getThreadMXBean().getThreadCount();
    long queries = done.values().stream().mapToLong(LongAdder::sum).sum();
    return String.format(Locale.ROOT, "| %.1f | %d | %,d | %d | %d | %d | %d |", seconds / 60, clients, queries, rss,
        direct, heap, threads);
  }
}
