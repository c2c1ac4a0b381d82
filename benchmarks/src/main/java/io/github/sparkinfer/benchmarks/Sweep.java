package io.github.sparkinfer.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * rows/s against the batch setting, on the GPU and on the same host's CPU: predict() over batch
 * sizes, embed() over token budgets, each point after a warm-up pass: one timed run of at least
 * the benchmark's run length on the GPU, the best of three of at least 1 s each on the CPU. Writes the points as CSV and draws them as
 * PNG charts ({@link SweepChart}); {@link #main} draws the charts again from a CSV, where the GPU
 * host's JRE found no font.
 */
final class Sweep {
  private static final int[] BATCH_SIZES = {256, 1024, 4096, 16384, 65536};
  private static final int[] GPU_TOKEN_BUDGETS = {2048, 8192, 32768, 131072};
  private static final int[] CPU_TOKEN_BUDGETS = {256, 1024, 4096, 16384};
  private static final double CPU_SECONDS = 1;
  private static final int CPU_RUNS = 3;

  private Sweep() {}

  /** One point: which sweep, device, setting, rows/s. */
  private static final class Point {
    final String sweep;
    final String device;
    final int setting;
    final double rowsPerSecond;

    Point(String sweep, String device, int setting, double rowsPerSecond) {
      this.sweep = sweep;
      this.device = device;
      this.setting = setting;
      this.rowsPerSecond = rowsPerSecond;
    }
  }

  /**
   * Runs both sweeps over the views {@code points} (MLP input), {@code docs} (texts, GPU) and
   * {@code few_docs} (fewer texts, CPU), models mlp and minilm registered; appends a section to
   * {@code lines}.
   */
  static void run(SparkSession spark, List<String> devices, boolean predict, Path csv, Path predictChart, Path embedChart,
      long mlpRows, long textRows, long fewTextRows, double gpuSeconds, List<String> lines) throws Exception {
    List<Point> points = new ArrayList<>();
    for (String device : devices) {
      for (int batchSize : predict ? BATCH_SIZES : new int[0]) {
        spark.conf().set("spark.sparkinfer.model.mlp.batchSize", Integer.toString(batchSize));
        points.add(new Point("predict", device, batchSize, time(spark, "SELECT id, predict('mlp', features) AS s FROM points",
            device, mlpRows, device.equals("cpu") ? CPU_SECONDS : gpuSeconds)));
      }
      spark.conf().unset("spark.sparkinfer.model.mlp.batchSize");
      boolean gpu = !device.equals("cpu");
      for (int budget : gpu ? GPU_TOKEN_BUDGETS : CPU_TOKEN_BUDGETS) {
        spark.conf().set("spark.sparkinfer.model.minilm.tokenBudget", Integer.toString(budget));
        points.add(new Point("embed", device, budget, time(spark, "SELECT id, embed('minilm', body) AS e FROM "
            + (gpu ? "docs" : "few_docs"), device, gpu ? textRows : fewTextRows, gpu ? gpuSeconds : CPU_SECONDS)));
      }
      spark.conf().unset("spark.sparkinfer.model.minilm.tokenBudget");
    }
    List<String> rows = new ArrayList<>();
    rows.add("sweep,device,setting,rows_per_second");
    for (Point point : points) {
      rows.add(String.format(Locale.ROOT, "%s,%s,%d,%.1f", point.sweep, point.device, point.setting, point.rowsPerSecond));
    }
    Files.write(csv, rows);
    lines.add("");
    boolean anyGpu = devices.stream().anyMatch(device -> !device.equals("cpu"));
    lines.add("rows/s against the batch setting (after a warm-up pass: " + (anyGpu ? "one timed run of ≥ " + gpuSeconds
        + " s per point on the GPU, " : "") + "the best of " + CPU_RUNS + " timed runs of ≥ " + CPU_SECONDS
        + " s per point on the CPU; predict() MLP over " + String.format(Locale.ROOT, "%,d", mlpRows)
        + " rows, embed() fp32 MiniLM over " + (anyGpu ? String.format(Locale.ROOT, "%,d", textRows)
        + " texts on the GPU and " : "") + String.format(Locale.ROOT, "%,d", fewTextRows) + " texts on the CPU):");
    lines.add("");
    lines.add("| sweep | device | setting | rows/s |");
    lines.add("|---|---|---:|---:|");
    for (Point point : points) {
      lines.add(String.format(Locale.ROOT, "| %s | %s | %s %,d | %,.0f |", point.sweep, point.device,
          point.sweep.equals("predict") ? "batch size" : "token budget", point.setting, point.rowsPerSecond));
    }
    lines.add("");
    try {
      draw(points, predictChart, embedChart);
      lines.add("Charts: `" + predictChart.getFileName() + "`, `" + embedChart.getFileName() + "` (drawn by this run).");
    } catch (IOException | RuntimeException | Error e) {
      lines.add("Charts: not drawn on this host (" + e + "); drawn from `" + csv.getFileName() + "` by"
          + " `io.github.sparkinfer.benchmarks.Sweep " + csv.getFileName() + " <folder>`.");
    }
  }

  /** Arguments: the CSV of a run, the folder for sweep-predict.png and sweep-embed.png. */
  public static void main(String[] arguments) throws Exception {
    List<Point> points = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of(arguments[0]))) {
      String[] fields = line.split(",");
      if (!fields[0].equals("sweep")) {
        points.add(new Point(fields[0], fields[1], Integer.parseInt(fields[2]), Double.parseDouble(fields[3])));
      }
    }
    Path folder = Path.of(arguments[1]);
    draw(points, folder.resolve("sweep-predict.png"), folder.resolve("sweep-embed.png"));
  }

  private static void draw(List<Point> points, Path predictChart, Path embedChart) throws IOException {
    SweepChart.write(predictChart, "predict(), MLP 64-256-256-16: rows/s against batch size", "batch size (rows)",
        series(points, "predict"));
    SweepChart.write(embedChart, "embed(), all-MiniLM-L6-v2 fp32: texts/s against token budget",
        "token budget (padded tokens per batch)", series(points, "embed"));
  }

  private static List<SweepChart.Series> series(List<Point> points, String sweep) {
    Map<String, List<Point>> byDevice = new LinkedHashMap<>();
    for (Point point : points) {
      if (point.sweep.equals(sweep)) {
        byDevice.computeIfAbsent(point.device, ignored -> new ArrayList<>()).add(point);
      }
    }
    List<SweepChart.Series> series = new ArrayList<>();
    for (Map.Entry<String, List<Point>> entry : byDevice.entrySet()) {
      double[] x = entry.getValue().stream().mapToDouble(point -> point.setting).toArray();
      double[] y = entry.getValue().stream().mapToDouble(point -> point.rowsPerSecond).toArray();
      series.add(new SweepChart.Series(entry.getKey().equals("cpu") ? "CPU (this host)" : "GPU " + entry.getKey(), x, y));
    }
    return series;
  }

  private static double time(SparkSession spark, String query, String device, long rows, double seconds) {
    spark.conf().set("spark.sparkinfer.device", device);
    QueryRunner.writeToNoop(spark.sql(query));
    // The GPU: one long run. The CPU: best of three, as a small machine's runs move more.
    int runs = device.equals("cpu") ? CPU_RUNS : 1;
    double rate = 0;
    for (int run = 0; run < runs; run++) {
      long start = System.nanoTime();
      long done = 0;
      while (System.nanoTime() - start < seconds * 1e9) {
        QueryRunner.writeToNoop(spark.sql(query));
        done += rows;
      }
      rate = Math.max(rate, done / ((System.nanoTime() - start) / 1e9));
    }
    System.out.printf(Locale.ROOT, "sweep: %s on %s: %,.0f rows/s%n", query, device, rate);
    return rate;
  }
}
