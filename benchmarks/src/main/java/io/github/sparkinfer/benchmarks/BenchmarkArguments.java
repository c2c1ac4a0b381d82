package io.github.sparkinfer.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The command line shared by {@link TabularBenchmark} and {@link TextEmbeddingBenchmark}: the same
 * options, with each benchmark's own defaults for rows, batch size and UDF rows.
 */
final class BenchmarkArguments {
  /** A benchmark's body: the parsed arguments and the folder for its models and data. */
  interface Body {
    void run(BenchmarkArguments arguments, Path folder) throws Exception;
  }

  private int rows;
  private int cores = Runtime.getRuntime().availableProcessors();
  private int batchSize;
  private int repeat = 3;
  private int udfRows = 0;
  private final int defaultUdfRows;
  private int partitions = 0;
  private Path workDirectory;
  private Path results;
  private String note;

  private BenchmarkArguments(int rows, int batchSize, int defaultUdfRows) {
    this.rows = rows;
    this.batchSize = batchSize;
    this.defaultUdfRows = defaultUdfRows;
  }

  /**
   * The {@code main} of a benchmark: parses {@code args} (printing the error and {@code usage} and
   * exiting 2 when they are wrong), runs {@code body} in --work-dir or a temporary folder that is
   * deleted afterwards, then exits: ONNX Runtime's and Spark's leftover threads must not keep the
   * JVM alive.
   *
   * @param defaultUdfRows rows the UDF variant is timed on without --udf-rows; 0 for all rows
   */
  static void main(String[] args, String usage, int defaultRows, int defaultBatchSize, int defaultUdfRows,
      Body body) throws Exception {
    BenchmarkArguments arguments;
    try {
      arguments = parse(defaultRows, defaultBatchSize, defaultUdfRows, args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.err.println();
      System.err.println(usage);
      System.exit(2);
      return;
    }
    boolean temporary = arguments.workDirectory() == null;
    Path folder = temporary ? Files.createTempDirectory("sparkinfer-benchmark-") : arguments.workDirectory();
    Files.createDirectories(folder);
    try {
      body.run(arguments, folder);
    } finally {
      if (temporary) {
        deleteRecursively(folder);
      }
    }
    System.exit(0);
  }

  /** @throws IllegalArgumentException naming the wrong argument, its value and the fix */
  static BenchmarkArguments parse(int defaultRows, int defaultBatchSize, int defaultUdfRows, String... arguments) {
    BenchmarkArguments parsed = new BenchmarkArguments(defaultRows, defaultBatchSize, defaultUdfRows);
    for (int i = 0; i < arguments.length; i++) {
      String name = arguments[i];
      switch (name) {
        case "--rows":
          parsed.rows = positive(name, value(arguments, ++i, name));
          break;
        case "--cores":
          parsed.cores = positive(name, value(arguments, ++i, name));
          break;
        case "--batch-size":
          parsed.batchSize = positive(name, value(arguments, ++i, name));
          break;
        case "--repeat":
          parsed.repeat = positive(name, value(arguments, ++i, name));
          break;
        case "--udf-rows":
          parsed.udfRows = positive(name, value(arguments, ++i, name));
          break;
        case "--partitions":
          parsed.partitions = positive(name, value(arguments, ++i, name));
          break;
        case "--work-dir":
          parsed.workDirectory = Path.of(value(arguments, ++i, name));
          break;
        case "--results":
          parsed.results = Path.of(value(arguments, ++i, name));
          break;
        case "--note":
          parsed.note = value(arguments, ++i, name);
          break;
        default:
          throw new IllegalArgumentException("Unknown argument '" + name + "'");
      }
    }
    if (parsed.udfRows > parsed.rows) {
      throw new IllegalArgumentException(
          "Invalid value " + parsed.udfRows + " for --udf-rows: more than --rows " + parsed.rows
              + "; the UDF is timed on a prefix of the input, so use at most " + parsed.rows);
    }
    return parsed;
  }

  static String value(String[] arguments, int index, String name) {
    if (index >= arguments.length || arguments[index].startsWith("--")) {
      throw new IllegalArgumentException("Missing value after " + name);
    }
    return arguments[index];
  }

  static int positive(String name, String text) {
    int value;
    try {
      value = Integer.parseInt(text.replace("_", ""));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "Invalid value '" + text + "' for " + name + ": not a whole number");
    }
    if (value < 1) {
      throw new IllegalArgumentException(
          "Invalid value " + value + " for " + name + ": must be at least 1");
    }
    return value;
  }

  int rows() {
    return rows;
  }

  int cores() {
    return cores;
  }

  int batchSize() {
    return batchSize;
  }

  int repeat() {
    return repeat;
  }

  /** Rows the UDF variant is timed on: --udf-rows, else the benchmark's default or all rows if fewer. */
  int udfRows() {
    if (udfRows != 0) {
      return udfRows;
    }
    return defaultUdfRows == 0 ? rows : Math.min(rows, defaultUdfRows);
  }

  /** Whether --udf-rows changed the rows the UDF variant is timed on. */
  boolean udfRowsChanged() {
    return udfRows() != new BenchmarkArguments(rows, batchSize, defaultUdfRows).udfRows();
  }

  int partitions() {
    return partitions == 0 ? 2 * cores : partitions;
  }

  /** Null for a temporary folder. */
  Path workDirectory() {
    return workDirectory;
  }

  /** Null to print only. */
  Path results() {
    return results;
  }

  /** Null when none was given. */
  String note() {
    return note;
  }

  static void deleteRecursively(Path folder) throws IOException {
    try (Stream<Path> paths = Files.walk(folder)) {
      for (Path path : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(path);
      }
    }
  }
}
