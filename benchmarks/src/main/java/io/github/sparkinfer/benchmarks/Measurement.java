package io.github.sparkinfer.benchmarks;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/** One variant's timed runs. */
final class Measurement {
  final String key;
  final String label;
  final long rows;
  private final List<Long> runNanos = new ArrayList<>();

  Measurement(String key, String label, long rows) {
    this.key = key;
    this.label = label;
    this.rows = rows;
  }

  void add(long nanos) {
    runNanos.add(nanos);
  }

  String key() {
    return key;
  }

  String label() {
    return label;
  }

  long rows() {
    return rows;
  }

  double bestRowsPerSecond() {
    return rows / RunEnvironment.seconds(runNanos.stream().min(Long::compare).orElseThrow());
  }

  double medianRowsPerSecond() {
    List<Long> sorted = runNanos.stream().sorted().collect(Collectors.toList());
    int size = sorted.size();
    double nanos = size % 2 == 1
        ? sorted.get(size / 2)
        : (sorted.get(size / 2 - 1) + sorted.get(size / 2)) / 2.0;
    return rows / RunEnvironment.seconds((long) nanos);
  }

  String runSeconds() {
    return runNanos.stream()
        .map(nanos -> String.format(Locale.ROOT, "%.2f", RunEnvironment.seconds(nanos)))
        .collect(Collectors.joining(", "));
  }

  String describe() {
    return String.format(Locale.ROOT, "(%s) %s: %,d rows, best %,.0f rows/s, median %,.0f rows/s"
        + " (runs: %s s)", key, label, rows, bestRowsPerSecond(), medianRowsPerSecond(),
        runSeconds());
  }
}
