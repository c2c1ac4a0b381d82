package io.github.sparkinfer.spark;

import io.github.sparkinfer.partitioning.StageResources;
import io.github.sparkinfer.spark.sql.EmbedExpression;
import io.github.sparkinfer.spark.registry.ModelBinding;
import io.github.sparkinfer.spark.registry.ModelRegistry;
import io.github.sparkinfer.spark.sql.PredictExpression;
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
import org.apache.spark.sql.classic.ExpressionUtils;
import org.apache.spark.sql.functions;
import scala.jdk.javaapi.CollectionConverters;

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
  private final boolean embedding;
  private final List<Column> positionalInputs = new ArrayList<>();
  private final Map<String, Column> namedInputs = new LinkedHashMap<>();
  private final List<String> outputs = new ArrayList<>();
  private OptionalInt batchSize = OptionalInt.empty();
  private StageResources stageResources;
  private String resultColumn;

  private Inference(String modelName, boolean embedding) {
    this.modelName = modelName;
    this.embedding = embedding;
  }

  /** Starts a call of the model registered under {@code name}: SQL's predict(). */
  public static Inference model(String name) {
    return new Inference(name, false);
  }

  /** Starts an embedding of one text column with the text model {@code name}: SQL's embed(). */
  public static Inference embed(String name) {
    return new Inference(name, true);
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

  /** Name of the column {@link #transform} adds; default the output's name, or the model's. */
  public Inference as(String columnName) {
    this.resultColumn = columnName;
    return this;
  }

  /** {@code dataset} with the result column added. */
  public Dataset<Row> transform(Dataset<Row> dataset) {
    Column column = toColumn(dataset.sparkSession(), dataset);
    String name = resultColumn != null ? resultColumn
        : embedding ? "embedding"
        : outputs.size() == 1 ? outputs.get(0) : modelName;
    return dataset.withColumn(name, column);
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
    if (!SessionInstaller.isInstalled(SparkInference.classic(spark))) {
      throw new IllegalStateException(
          "Cannot call model '" + modelName + "': sparkinfer is not installed in this session. Start it"
              + " with spark.sql.extensions=" + SparkInferenceExtensions.class.getName()
              + ", or call SparkInference.install(spark) once");
    }
    ModelBinding binding =
        SparkInference.withSession(spark, () -> ModelRegistry.resolve(modelName, batchSize, outputs, stageResources));
    List<Expression> arguments = new ArrayList<>();
    if (namedInputs.isEmpty()) {
      for (Column column : positionalInputs) {
        arguments.add(ExpressionUtils.expression(column));
      }
    } else {
      List<Column> structFields = new ArrayList<>();
      namedInputs.forEach((input, column) -> structFields.add(column.as(input)));
      arguments.add(ExpressionUtils.expression(functions.struct(structFields.toArray(new Column[0]))));
    }
    scala.collection.immutable.Seq<Expression> children = CollectionConverters.asScala(arguments).toSeq();
    if (!embedding && dataset != null && positionalInputs.size() == 1 && binding.isTextModel()
        && dataset.select(positionalInputs.get(0)).schema().fields()[0].dataType()
            instanceof org.apache.spark.sql.types.StringType) {
      // On a text model one string column is tokenized into the inputs, as in SQL.
      children = CollectionConverters.asScala(java.util.List.<Expression>of(
          new TokenizeExpression(binding, arguments.get(0)))).toSeq();
    }
    return ExpressionUtils.column(
        embedding ? new EmbedExpression(binding, children) : new PredictExpression(binding, children));
  }
}
