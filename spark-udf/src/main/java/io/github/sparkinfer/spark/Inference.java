package io.github.sparkinfer.spark;

import io.github.sparkinfer.partitioning.StageResources;
import io.github.sparkinfer.spark.sql.ModelInvocation;
import io.github.sparkinfer.spark.sql.SqlFunctions;
import io.github.sparkinfer.spark.registry.CallSettings;
import io.github.sparkinfer.spark.registry.ModelBinding;
import io.github.sparkinfer.spark.registry.ModelRegistry;
import io.github.sparkinfer.spark.registry.RowErrorPolicy;
import io.github.sparkinfer.spark.sql.SessionBridge;
import io.github.sparkinfer.spark.sql.SessionInstaller;
import io.github.sparkinfer.spark.sql.TokenizeExpression;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.functions;

/**
 * The DataFrame API: the same plan as SQL's predict(), built in Java.
 *
 * <pre>{@code
 * Dataset<Row> scored = Inference.model("mlp").input("features").output("scores").transform(df);
 * Column score = Inference.model("mlp").input(col("a"), col("b")).toColumn(spark);
 * Dataset<Row> embedded = Inference.embed("minilm").input("body").transform(docs);  // column "embedding"
 * }</pre>
 *
 * <p>Settings given here take precedence over the session's keys for the model.
 */
public final class Inference {
  private final String modelName;
  /** The model function called, by its SQL name in the one function list ({@code SqlFunctions.modelInvocations}). */
  private final String function;
  private final List<Column> positionalInputs = new ArrayList<>();
  private final Map<String, Column> namedInputs = new LinkedHashMap<>();
  private final List<String> outputs = new ArrayList<>();
  private OptionalInt batchSize = OptionalInt.empty();
  private StageResources stageResources;
  private String resultColumn;
  private RowErrorPolicy onError;
  private String errorColumn;
  private final java.util.Map<String, String> settings = new java.util.TreeMap<>();

  private Inference(String modelName, String function) {
    this.modelName = modelName;
    this.function = function;
  }

  /** Starts a call of the model registered under {@code name}: SQL's predict(). */
  public static Inference model(String name) {
    return new Inference(name, SqlFunctions.PredictName());
  }

  /**
   * Starts a call of the model function {@code function} (its SQL name: predict, embed) with the
   * model registered under {@code name}, for callers that choose the function by name (the ML stage).
   */
  public static Inference function(String function, String name) {
    if (!SqlFunctions.modelInvocations().contains(function)) {
      throw new IllegalArgumentException("No model function '" + function + "': use one of "
          + String.join(", ", SqlFunctions.modelInvocationNames()));
    }
    return new Inference(name, function);
  }

  /** Starts an embedding of one text column with the text model {@code name}: SQL's embed(). */
  public static Inference embed(String name) {
    return new Inference(name, SqlFunctions.EmbedName());
  }

  /**
   * Starts a generation of text from one prompt column with the decoder {@code name}: SQL's
   * generate(). The result column (default "generated") is struct&lt;text, tokens, finish_reason&gt;;
   * options by {@link #generateOption}.
   */
  public static Inference generate(String name) {
    return new Inference(name, SqlFunctions.GenerateName());
  }

  /**
   * A generate() option for this call (maxNewTokens, temperature, topK, topP, seed,
   * repetitionPenalty, stopTokenIds, stopStrings, promptTemplate, systemPrompt, maxContext,
   * contextOverflow, numBeams, decodeLoop, batchSize), over the model's and the session's keys.
   */
  public Inference generateOption(String option, String value) {
    io.github.sparkinfer.spark.generate.GenerateOption known = io.github.sparkinfer.spark.generate.GenerateOption.named(option);
    if (known == null) {
      throw new IllegalArgumentException("Model '" + modelName + "': there is no generate() option '" + option
          + "'; the options are " + io.github.sparkinfer.spark.generate.GenerateOption.names());
    }
    return option(InferenceProperties.MODEL_PREFIX + modelName + io.github.sparkinfer.spark.generate.GenerateOption.MODEL_INFIX
        + known.key(), value);
  }

  /** Columns that feed the model's inputs in order. */
  public Inference input(String... columns) {
    for (String column : columns) {
      positionalInputs.add(functions.col(column));
    }
    return this;
  }

  /** Columns (or expressions) that feed the model's inputs in order. */
  public Inference input(Column... columns) {
    positionalInputs.addAll(List.of(columns));
    return this;
  }

  /** Feeds the model input named {@code modelInput} from {@code column}. */
  public Inference input(String modelInput, Column column) {
    namedInputs.put(modelInput, column);
    return this;
  }

  /** Returns only these outputs (one output: its column; several: a struct). Default: all. */
  public Inference output(String... names) {
    outputs.addAll(List.of(names));
    return this;
  }

  /** Rows per model call for this call only. */
  public Inference batchSize(int rows) {
    if (rows < 1 || rows > InferenceProperties.BATCH_SIZE_MAX) {
      throw new IllegalArgumentException(
          "Invalid batch size " + rows + " for model '" + modelName + "': must be from 1 to "
              + InferenceProperties.BATCH_SIZE_MAX + " rows per model call");
    }
    this.batchSize = OptionalInt.of(rows);
    return this;
  }

  /**
   * What the stage that runs this call asks Spark for (a GPU per task, say), in place of the
   * session's {@code spark.sparkinfer.stage.*} keys; {@link StageResources#NONE} keeps the default
   * profile. The whole stage around the call gets the profile, up to the nearest shuffles.
   */
  public Inference stageResources(StageResources resources) {
    this.stageResources = java.util.Objects.requireNonNull(resources, "resources");
    return this;
  }

  /**
   * What a row the model cannot take does, for this call: {@code "fail"} (the default: the query
   * fails, naming the row) or {@code "null"} (a null result, counted). Over the model's and the
   * session's {@code onError} keys.
   */
  public Inference onError(String policy) {
    RowErrorPolicy named = RowErrorPolicy.named(java.util.Objects.requireNonNull(policy, "policy"));
    if (named == null) {
      throw new IllegalArgumentException("Invalid onError '" + policy + "' for model '" + modelName
          + "': use fail (a row the model cannot take fails the query) or null (it gets a null result)");
    }
    this.onError = named;
    return this;
  }

  /**
   * {@link #transform} also adds {@code columnName}: the reason a row got a null result, null for
   * the rows the model took. Such rows never fail the query (predict_with_error()); {@link
   * #toColumn} then returns struct&lt;result, error&gt;.
   */
  public Inference errorColumn(String columnName) {
    this.errorColumn = java.util.Objects.requireNonNull(columnName, "columnName");
    return this;
  }

  /**
   * A setting for this call only, by its full key (for example {@code
   * spark.sparkinfer.model.mlp.precision} or {@code spark.sparkinfer.device}), over the session's.
   */
  public Inference option(String key, String value) {
    if (!key.startsWith(io.github.sparkinfer.device.SchedulingProperties.PREFIX)) {
      throw new IllegalArgumentException("Model '" + modelName + "': option '" + key + "' is not a sparkinfer"
          + " setting; give a key under " + io.github.sparkinfer.device.SchedulingProperties.PREFIX);
    }
    settings.put(key, java.util.Objects.requireNonNull(value, "value"));
    return this;
  }

  /** Name of the column {@link #transform} adds; default the output's name, or the model's. */
  public Inference as(String columnName) {
    this.resultColumn = columnName;
    return this;
  }

  /** {@code dataset} with the result column added. */
  public Dataset<Row> transform(Dataset<Row> dataset) {
    Column column = toColumn(dataset.sparkSession(), dataset);
    String name = resultColumn != null ? resultColumn
        : function.equals(SqlFunctions.EmbedName()) ? "embedding"
        : function.equals(SqlFunctions.GenerateName()) ? "generated"
        : outputs.size() == 1 ? outputs.get(0) : modelName;
    if (errorColumn == null) {
      return dataset.withColumn(name, column);
    }
    // One call: its struct in a column of its own, then split, so the model runs once per row.
    String both = "__sparkinfer_" + modelName + "_with_error";
    return dataset.withColumn(both, column)
        .withColumn(name, functions.col(both).getField(ModelBinding.RESULT_FIELD))
        .withColumn(errorColumn, functions.col(both).getField(ModelBinding.ERROR_FIELD))
        .drop(both);
  }

  /** The call as a column, resolved against {@code spark}'s registered models. */
  public Column toColumn(SparkSession spark) {
    return toColumn(spark, null);
  }

  private Column toColumn(SparkSession spark, Dataset<Row> dataset) {
    if (!positionalInputs.isEmpty() && !namedInputs.isEmpty()) {
      throw new IllegalArgumentException(
          "Model '" + modelName + "': give inputs either by position (input(columns...)) or by name"
              + " (input(modelInput, column)), not both");
    }
    if (!SessionInstaller.isInstalled(spark)) {
      throw new IllegalStateException(
          "Cannot call model '" + modelName + "': sparkinfer is not installed in this session. Start it"
              + " with spark.sql.extensions=" + SparkInferenceExtensions.class.getName()
              + ", or call SparkInference.install(spark) once");
    }
    CallSettings call = CallSettings.none().withBatchSize(batchSize).withOutputs(outputs)
        .withStageResources(stageResources).withOnError(onError);
    for (java.util.Map.Entry<String, String> setting : settings.entrySet()) {
      call = call.with(setting.getKey(), setting.getValue());
    }
    CallSettings resolved = errorColumn != null ? call.reportingErrors() : call;
    ModelBinding binding = SparkInference.withSession(spark, () -> ModelRegistry.resolve(modelName, resolved));
    List<Expression> arguments = new ArrayList<>();
    if (namedInputs.isEmpty()) {
      for (Column column : positionalInputs) {
        arguments.add(SessionBridge.expression(column));
      }
    } else {
      List<Column> structFields = new ArrayList<>();
      namedInputs.forEach((input, column) -> structFields.add(column.as(input)));
      arguments.add(SessionBridge.expression(functions.struct(structFields.toArray(new Column[0]))));
    }
    List<Expression> children = arguments;
    if (function.equals(SqlFunctions.PredictName()) && dataset != null && positionalInputs.size() == 1 && binding.isTextModel()
        && dataset.select(positionalInputs.get(0)).schema().fields()[0].dataType()
            instanceof org.apache.spark.sql.types.StringType) {
      // On a text model one string column is tokenized into the inputs, as in SQL.
      children = List.of(new TokenizeExpression(binding, arguments.get(0)));
    }
    return SessionBridge.column(ModelInvocation.of(function, binding, children));
  }
}
