package io.github.sparkinfer.benchmarks;

import static io.github.sparkinfer.benchmarks.BenchmarkArguments.positive;
import static io.github.sparkinfer.benchmarks.BenchmarkArguments.value;

import java.nio.file.Path;

/** The command line of {@link TextEmbeddingBenchmark}. */
final class TextEmbeddingArguments {
  static final int DEFAULT_UDF_ROWS = 2000;

  static final String USAGE =
      String.join(
          "\n",
          "Usage: TextEmbeddingBenchmark [--rows N] [--cores N] [--batch-size N] [--repeat N]",
          "                              [--udf-rows N] [--partitions N] [--work-dir <folder>]"
              + " [--results <RESULTS.md>] [--note <text>]",
          "",
          "  --rows        generated English-like rows of 3 to 200 words (default 5000)",
          "  --cores       local[N] and ONNX Runtime threads of the raw ORT variants"
              + " (default: available processors)",
          "  --batch-size  rows per model call of the raw ORT variants (default 32)",
          "  --repeat      timed runs per variant; the best counts, the median is shown"
              + " (default 3)",
          "  --udf-rows    rows the row-at-a-time UDF is timed on, a prefix of the input (default"
              + " " + DEFAULT_UDF_ROWS + " or --rows if fewer)",
          "  --partitions  partitions of the cached input (default 2 x cores)",
          "  --work-dir    folder the models and tokenizers are extracted to (default: a"
              + " temporary folder)",
          "  --results     Markdown file whose '" + TextEmbeddingBenchmark.HEADING + "' section"
              + " is replaced (default: none, print only)",
          "  --note        text to put in the results, such as how this run differs from usual");

  private int rows = 5000;
  private int cores = Runtime.getRuntime().availableProcessors();
  private int batchSize = 32;
  private int repeat = 3;
  private int udfRows = 0;
  private int partitions = 0;
  private Path workDirectory;
  private Path results;
  private String note;

  private TextEmbeddingArguments() {}

  /** @throws IllegalArgumentException naming the wrong argument, its value and the fix */
  static TextEmbeddingArguments parse(String... arguments) {
    TextEmbeddingArguments parsed = new TextEmbeddingArguments();
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

  /** Rows the UDF variant is timed on: --udf-rows, else the default or all rows if fewer. */
  int udfRows() {
    return udfRows != 0 ? udfRows : Math.min(rows, DEFAULT_UDF_ROWS);
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
