package io.github.sparkinfer.examples;

import java.util.Optional;
import java.util.OptionalInt;

/** The command line of {@link ScoreParquetJob}, parsed and checked before Spark starts. */
final class JobArguments {
  static final String USAGE =
      String.join(
          "\n",
          "Usage:",
          "  ScoreParquetJob --input <parquet> --output <parquet> --model <onnx URI>",
          "                  [--model-name mlp] [--input-column features] [--batch-size N]"
              + " [--overwrite]",
          "  ScoreParquetJob --demo [--rows N] [--batch-size N] [--work-dir <folder>]",
          "",
          "  --input         Parquet table to score (any Hadoop FileSystem URI)",
          "  --output        where to write the input's columns plus 'prediction', as Parquet",
          "  --model         URI of the .onnx file (file:, hdfs:, s3a:, ...)",
          "  --model-name    name to register the model under (default mlp)",
          "  --input-column  column passed to the model (default features)",
          "  --batch-size    rows per model call (default: spark.sparkinfer.batchSize, 1024)",
          "  --overwrite     replace --output if it exists",
          "  --demo          generate an MLP and " + ScoreParquetJob.DEFAULT_DEMO_ROWS
              + " rows of data, score them and check the scores",
          "  --rows          rows the demo generates",
          "  --work-dir      folder for the demo's files, kept afterwards (default: a temporary"
              + " folder, removed)");

  static final String DEFAULT_MODEL_NAME = "mlp";
  static final String DEFAULT_INPUT_COLUMN = "features";

  private final boolean demo;
  private final int demoRows;
  private final Optional<String> workDirectory;
  private final String input;
  private final String output;
  private final String model;
  private final String modelName;
  private final String inputColumn;
  private final OptionalInt batchSize;
  private final boolean overwrite;

  private JobArguments(Builder builder) {
    this.demo = builder.demo;
    this.demoRows = builder.demoRows;
    this.workDirectory = Optional.ofNullable(builder.workDirectory);
    this.input = builder.input;
    this.output = builder.output;
    this.model = builder.model;
    this.modelName = builder.modelName;
    this.inputColumn = builder.inputColumn;
    this.batchSize = builder.batchSize;
    this.overwrite = builder.overwrite;
  }

  /**
   * @throws IllegalArgumentException naming the argument that is wrong and why; the caller prints
   *     it with {@link #USAGE}
   */
  static JobArguments parse(String... arguments) {
    Builder builder = new Builder();
    boolean rowsGiven = false;
    for (int i = 0; i < arguments.length; i++) {
      String argument = arguments[i];
      switch (argument) {
        case "--demo":
          builder.demo = true;
          break;
        case "--overwrite":
          builder.overwrite = true;
          break;
        case "--rows":
          builder.demoRows = positive(argument, value(arguments, ++i, argument));
          rowsGiven = true;
          break;
        case "--work-dir":
          builder.workDirectory = value(arguments, ++i, argument);
          break;
        case "--input":
          builder.input = value(arguments, ++i, argument);
          break;
        case "--output":
          builder.output = value(arguments, ++i, argument);
          break;
        case "--model":
          builder.model = value(arguments, ++i, argument);
          break;
        case "--model-name":
          builder.modelName = value(arguments, ++i, argument);
          break;
        case "--input-column":
          builder.inputColumn = value(arguments, ++i, argument);
          break;
        case "--batch-size":
          builder.batchSize = OptionalInt.of(positive(argument, value(arguments, ++i, argument)));
          break;
        default:
          throw new IllegalArgumentException("Unknown argument '" + argument + "'");
      }
    }

    if (builder.demo) {
      // The demo makes its own model, data and output; a path given too would be silently ignored.
      for (String[] conflicting :
          new String[][] {
            {"--input", builder.input}, {"--output", builder.output}, {"--model", builder.model}
          }) {
        if (conflicting[1] != null) {
          throw new IllegalArgumentException(
              "Cannot use " + conflicting[0] + " with --demo: the demo generates its own model,"
                  + " input and output; drop " + conflicting[0] + " or --demo");
        }
      }
    } else {
      if (rowsGiven || builder.workDirectory != null) {
        throw new IllegalArgumentException(
            "--rows and --work-dir only apply to --demo: add --demo or drop them");
      }
      for (String[] required :
          new String[][] {
            {"--input", builder.input}, {"--output", builder.output}, {"--model", builder.model}
          }) {
        if (required[1] == null) {
          throw new IllegalArgumentException(
              "Missing " + required[0] + ": give --input, --output and --model, or --demo");
        }
      }
    }
    return new JobArguments(builder);
  }

  private static String value(String[] arguments, int index, String name) {
    if (index >= arguments.length || arguments[index].startsWith("--")) {
      throw new IllegalArgumentException("Missing value after " + name);
    }
    return arguments[index];
  }

  private static int positive(String name, String text) {
    int value;
    try {
      value = Integer.parseInt(text);
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

  boolean demo() {
    return demo;
  }

  int demoRows() {
    return demoRows;
  }

  Optional<String> workDirectory() {
    return workDirectory;
  }

  String input() {
    return input;
  }

  String output() {
    return output;
  }

  String model() {
    return model;
  }

  String modelName() {
    return modelName;
  }

  String inputColumn() {
    return inputColumn;
  }

  OptionalInt batchSize() {
    return batchSize;
  }

  boolean overwrite() {
    return overwrite;
  }

  /** The arguments of the job the demo runs on the files it generated. */
  JobArguments forDemoFiles(String generatedInput, String generatedOutput, String generatedModel) {
    Builder builder = new Builder();
    builder.input = generatedInput;
    builder.output = generatedOutput;
    builder.model = generatedModel;
    builder.modelName = modelName;
    builder.inputColumn = inputColumn;
    builder.batchSize = batchSize;
    builder.overwrite = true;
    return new JobArguments(builder);
  }

  private static final class Builder {
    private boolean demo;
    private int demoRows = ScoreParquetJob.DEFAULT_DEMO_ROWS;
    private String workDirectory;
    private String input;
    private String output;
    private String model;
    private String modelName = DEFAULT_MODEL_NAME;
    private String inputColumn = DEFAULT_INPUT_COLUMN;
    private OptionalInt batchSize = OptionalInt.empty();
    private boolean overwrite;
  }
}
