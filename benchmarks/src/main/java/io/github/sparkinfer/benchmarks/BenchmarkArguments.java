package io.github.sparkinfer.benchmarks;

import java.nio.file.Path;

/** The command line of {@link TabularBenchmark}. */
final class BenchmarkArguments {
  static final String USAGE =
      String.join(
          "\n",
          "Usage: TabularBenchmark [--rows N] [--cores N] [--batch-size N] [--repeat N]",
          "                        [--udf-rows N] [--partitions N] [--work-dir <folder>]"
              + " [--results <RESULTS.md>] [--note <text>]",
          "",
          "  --rows        rows of 64 float features (default 1000000)",
          "  --cores       local[N] and ONNX Runtime threads of the raw ORT ceiling"
              + " (default: available processors)",
          "  --batch-size  rows per model call, for raw ORT and predict() (default 1024)",
          "  --repeat      timed runs per variant; the best counts (default 3)",
          "  --udf-rows    rows the row-at-a-time UDF is timed on, a prefix of the input"
              + " (default: all rows)",
          "  --partitions  partitions of the cached input (default 2 x cores)",
          "  --work-dir    folder for the generated model and Parquet input (default: a"
              + " temporary folder)",
          "  --results     Markdown file whose '## Tabular MLP' section is replaced (default:"
              + " none, print only)",
          "  --note        text to put in the results, such as how this run differs from usual");

  private int rows = 1_000_000;
  private int cores = Runtime.getRuntime().availableProcessors();
  private int batchSize = 1024;
  private int repeat = 3;
  private int udfRows = 0;
  private int partitions = 0;
  private Path workDirectory;
  private Path results;
  private String note;

  private BenchmarkArguments() {}

  /** @throws IllegalArgumentException naming the wrong argument, its value and the fix */
  static BenchmarkArguments parse(String... arguments) {
    BenchmarkArguments parsed = new BenchmarkArguments();
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

  /** Rows the UDF variant is timed on: all rows unless --udf-rows says fewer. */
  int udfRows() {
    return udfRows == 0 ? rows : udfRows;
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
}
