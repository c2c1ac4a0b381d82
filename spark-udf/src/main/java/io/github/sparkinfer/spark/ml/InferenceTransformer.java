package io.github.sparkinfer.spark.ml;

import io.github.sparkinfer.device.SchedulingProperties;
import io.github.sparkinfer.spark.Inference;
import io.github.sparkinfer.spark.InferenceProperties;
import java.util.List;
import java.util.Locale;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.param.StringArrayParam;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.StructType;

/**
 * A Spark ML stage that runs an ONNX model: predict() (numeric columns or ML vectors in, the
 * model's outputs out) or embed() (a text column in, one vector out). It plans the same batch node
 * as the SQL functions, so it sits in a {@code Pipeline} next to {@code VectorAssembler} at the
 * speed of the batch path.
 *
 * <pre>{@code
 * InferenceTransformer scorer = new InferenceTransformer()
 *     .setModelName("mlp").setModelUri("hdfs://nn/models/mlp.onnx")
 *     .setInputCols(new String[] {"features"}).setOutputCol("scores");
 * PipelineModel model = new Pipeline().setStages(new PipelineStage[] {assembler, scorer}).fit(train);
 * model.write().save("hdfs://nn/pipelines/scoring");   // the .onnx file is copied in
 * }</pre>
 *
 * <p>The model: {@code modelUri} names the file (and {@code tokenizerUri} the tokenizer.json);
 * without it, {@code modelName} must be registered in the session that runs the stage (SET
 * spark.sparkinfer.model.&lt;name&gt;.path). Saving copies the model file and the tokenizer into the
 * saved stage's folder, so a saved pipeline loads and runs wherever it is read, independent of
 * where the model was; a stage with a registered name only saves the name.
 *
 * <p>No Estimator: {@code fit} would have nothing to learn (the model is trained already) and the
 * signature is read and checked by {@link #transformSchema} at once.
 */
public final class InferenceTransformer extends Transformer implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  private final String uid;

  // Made in the constructor, once uid is set: a Param reads its parent's uid when it is made. Spark ML
  // finds a stage's params by its public methods that return them, below.
  private final Param<String> modelName;
  private final Param<String> modelUri;
  private final Param<String> function;
  private final StringArrayParam inputCols;
  private final StringArrayParam inputNames;
  private final Param<String> outputCol;
  private final StringArrayParam outputs;
  private final StringArrayParam outputCols;
  private final IntParam batchSize;
  private final Param<String> device;
  private final Param<String> precision;
  private final Param<String> tokenizerUri;
  private final Param<String> pooling;
  private final Param<String> onError;
  private final Param<String> errorCol;
  private final StringArrayParam generateOptions;

  public InferenceTransformer() {
    this(Identifiable.randomUID("sparkinfer_inference"));
  }

  /** For Spark ML's reader, which makes a stage from its saved uid. */
  public InferenceTransformer(String uid) {
    this.uid = uid;
    this.modelName = new Param<>(this, "modelName",
        "name of the model (registered in the session, or given to the file at modelUri)");
    this.modelUri = new Param<>(this, "modelUri",
        "Hadoop FileSystem URI of the .onnx file; unset: modelName is registered in the session");
    this.function = new Param<>(this, "function",
        "predict (numeric inputs, the model's outputs), embed (one text column, its pooled vector) or generate"
            + " (one prompt column, struct<text, tokens, finish_reason> from a decoder)",
        ParamValidators.inArray(io.github.sparkinfer.spark.sql.SqlFunctions.modelInvocationNames()));
    this.inputCols = new StringArrayParam(this, "inputCols",
        "columns that feed the model's inputs, in the model's input order (or as inputNames says)");
    this.inputNames = new StringArrayParam(this, "inputNames",
        "the model input each of inputCols feeds, by name; unset: by position");
    this.outputCol = new Param<>(this, "outputCol", "the result column");
    this.outputs = new StringArrayParam(this, "outputs",
        "model outputs to return (one: its values; several: a struct); unset: all");
    this.outputCols = new StringArrayParam(this, "outputCols",
        "one column per model output (in the order of outputs, or of the model's outputs), instead of outputCol");
    this.batchSize = new IntParam(this, "batchSize", "rows per model call",
        ParamValidators.inRange(1, InferenceProperties.BATCH_SIZE_MAX));
    this.device = new Param<>(this, "device",
        "auto, cpu, cuda:<index> or npu:<index> (spark.sparkinfer.device for this stage)");
    this.precision = new Param<>(this, "precision",
        "fp32, int8, fp16, int4 or auto (compressed on each executor)",
        ParamValidators.inArray(new String[] {"fp32", "int8", "fp16", "int4", "auto"}));
    this.tokenizerUri = new Param<>(this, "tokenizerUri",
        "URI of the model's tokenizer.json, for a text model");
    this.pooling = new Param<>(this, "pooling", "embed's pooling: mean or cls",
        ParamValidators.inArray(new String[] {"mean", "cls"}));
    this.onError = new Param<>(this, "onError",
        "a row the model cannot take: fail (the default) or null (a null result, counted)",
        ParamValidators.inArray(new String[] {"fail", "null"}));
    this.errorCol = new Param<>(this, "errorCol",
        "also add this column: the reason a row got a null result (such rows never fail the stage)");
    this.generateOptions = new StringArrayParam(this, "generateOptions",
        "generate()'s options as option=value entries, such as maxNewTokens=32 (see the SQL reference)");
    setDefault(function, "predict");
    setDefault(outputCol, "prediction");
    setDefault(onError, "fail");
  }

  @Override
  public String uid() {
    return uid;
  }

  public Param<String> modelName() {
    return modelName;
  }

  public Param<String> modelUri() {
    return modelUri;
  }

  public Param<String> function() {
    return function;
  }

  public StringArrayParam inputCols() {
    return inputCols;
  }

  public StringArrayParam inputNames() {
    return inputNames;
  }

  public Param<String> outputCol() {
    return outputCol;
  }

  public StringArrayParam outputs() {
    return outputs;
  }

  public StringArrayParam outputCols() {
    return outputCols;
  }

  public IntParam batchSize() {
    return batchSize;
  }

  public Param<String> device() {
    return device;
  }

  public Param<String> precision() {
    return precision;
  }

  public Param<String> tokenizerUri() {
    return tokenizerUri;
  }

  public Param<String> pooling() {
    return pooling;
  }

  public Param<String> onError() {
    return onError;
  }

  public Param<String> errorCol() {
    return errorCol;
  }

  public InferenceTransformer setModelName(String value) {
    return (InferenceTransformer) set(modelName, value);
  }

  public InferenceTransformer setModelUri(String value) {
    return (InferenceTransformer) set(modelUri, value);
  }

  public InferenceTransformer setFunction(String value) {
    return (InferenceTransformer) set(function, value.toLowerCase(Locale.ROOT));
  }

  public InferenceTransformer setInputCols(String[] value) {
    return (InferenceTransformer) set(inputCols, value);
  }

  public InferenceTransformer setInputNames(String[] value) {
    return (InferenceTransformer) set(inputNames, value);
  }

  public InferenceTransformer setOutputCol(String value) {
    return (InferenceTransformer) set(outputCol, value);
  }

  public InferenceTransformer setOutputs(String[] value) {
    return (InferenceTransformer) set(outputs, value);
  }

  public InferenceTransformer setOutputCols(String[] value) {
    return (InferenceTransformer) set(outputCols, value);
  }

  public InferenceTransformer setBatchSize(int value) {
    return (InferenceTransformer) set(batchSize, value);
  }

  public InferenceTransformer setDevice(String value) {
    return (InferenceTransformer) set(device, value);
  }

  public InferenceTransformer setPrecision(String value) {
    return (InferenceTransformer) set(precision, value.toLowerCase(Locale.ROOT));
  }

  public InferenceTransformer setTokenizerUri(String value) {
    return (InferenceTransformer) set(tokenizerUri, value);
  }

  public InferenceTransformer setPooling(String value) {
    return (InferenceTransformer) set(pooling, value.toLowerCase(Locale.ROOT));
  }

  public InferenceTransformer setOnError(String value) {
    return (InferenceTransformer) set(onError, value.toLowerCase(Locale.ROOT));
  }

  public StringArrayParam generateOptions() {
    return generateOptions;
  }

  /** generate()'s options, each "option=value" (maxNewTokens=32, temperature=0.7, ...). */
  public InferenceTransformer setGenerateOptions(String... values) {
    return (InferenceTransformer) set(generateOptions, values);
  }

  public InferenceTransformer setErrorCol(String value) {
    return (InferenceTransformer) set(errorCol, value);
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    transformSchema(dataset.schema());
    @SuppressWarnings("unchecked")
    Dataset<Row> rows = (Dataset<Row>) dataset;
    return transformRows(rows);
  }

  private Dataset<Row> transformRows(Dataset<Row> rows) {
    if (!isDefined(outputCols)) {
      return call($(outputCol)).transform(rows);
    }
    // One call into a struct of the outputs, then a column per field: the model runs once per row.
    String both = "__sparkinfer_" + uid + "_outputs";
    Dataset<Row> called = call(both).transform(rows);
    org.apache.spark.sql.types.DataType type = called.schema().apply(both).dataType();
    String[] columns = $(outputCols);
    String[] fields = type instanceof StructType && !isDefined(errorCol)
        ? ((StructType) type).fieldNames() : new String[] {null};
    if (fields.length != columns.length) {
      throw new IllegalArgumentException("InferenceTransformer " + uid + " (model '" + $(modelName) + "'): "
          + columns.length + " outputCols for " + fields.length + " model outputs "
          + (fields[0] == null ? "(one)" : java.util.Arrays.toString(fields))
          + "; give one column per output, or choose the outputs with setOutputs");
    }
    for (int i = 0; i < columns.length; i++) {
      called = called.withColumn(columns[i], fields[i] == null ? functions.col(both) : functions.col(both).getField(fields[i]));
    }
    return called.drop(both);
  }

  /**
   * The output schema, found by Spark's analyzer over an empty frame of {@code schema}: the same
   * checks as the SQL functions (the model's signature, the column types, every setting).
   */
  @Override
  public StructType transformSchema(StructType schema) {
    if (!isDefined(modelName)) {
      throw new IllegalArgumentException("InferenceTransformer " + uid + ": set modelName (and modelUri, unless"
          + " the model is registered in the session)");
    }
    if (!isDefined(inputCols) || $(inputCols).length == 0) {
      throw new IllegalArgumentException("InferenceTransformer " + uid + " (model '" + $(modelName)
          + "'): set inputCols, the columns that feed the model");
    }
    if (isDefined(inputNames) && $(inputNames).length != $(inputCols).length) {
      throw new IllegalArgumentException("InferenceTransformer " + uid + " (model '" + $(modelName) + "'): "
          + $(inputNames).length + " inputNames for " + $(inputCols).length + " inputCols; give one model input"
          + " name per column");
    }
    if (($(function).equals("embed") || $(function).equals("generate")) && $(inputCols).length != 1) {
      throw new IllegalArgumentException("InferenceTransformer " + uid + " (model '" + $(modelName)
          + "'): " + $(function) + " takes one text column, but inputCols has " + $(inputCols).length);
    }
    if (isDefined(generateOptions) && !$(function).equals("generate")) {
      throw new IllegalArgumentException("InferenceTransformer " + uid + " (model '" + $(modelName)
          + "'): generateOptions are set but function is " + $(function) + "; set function=generate or clear them");
    }
    SparkSession spark = SparkSession.active();
    Dataset<Row> empty = spark.createDataFrame(List.<Row>of(), schema);
    return transformRows(empty).schema();
  }

  /** The DataFrame API call this stage's params describe. */
  private Inference call(String resultColumn) {
    String name = $(modelName);
    Inference call = Inference.function($(function), name);
    String[] columns = $(inputCols);
    if (isDefined(inputNames)) {
      for (int i = 0; i < columns.length; i++) {
        call.input($(inputNames)[i], functions.col(columns[i]));
      }
    } else {
      Column[] inputs = new Column[columns.length];
      for (int i = 0; i < columns.length; i++) {
        inputs[i] = functions.col(columns[i]);
      }
      call.input(inputs);
    }
    if (isDefined(outputs)) {
      call.output($(outputs));
    }
    if (isDefined(batchSize)) {
      // IntParam is a Param of Scala's Int: an Object to Java.
      Object rows = getOrDefault(batchSize);
      call.batchSize((Integer) rows);
    }
    String prefix = InferenceProperties.MODEL_PREFIX + name;
    if (isDefined(modelUri)) {
      call.option(prefix + InferenceProperties.MODEL_PATH_SUFFIX, $(modelUri));
    }
    if (isDefined(tokenizerUri)) {
      call.option(prefix + InferenceProperties.MODEL_TOKENIZER_SUFFIX, $(tokenizerUri));
    }
    if (isDefined(precision)) {
      call.option(prefix + InferenceProperties.MODEL_PRECISION_SUFFIX, $(precision));
    }
    if (isDefined(pooling)) {
      call.option(prefix + InferenceProperties.MODEL_POOLING_SUFFIX, $(pooling));
    }
    if (isDefined(device)) {
      call.option(SchedulingProperties.DEVICE, $(device));
    }
    if (isDefined(generateOptions)) {
      for (String entry : $(generateOptions)) {
        int equals = entry.indexOf('=');
        if (equals <= 0) {
          throw new IllegalArgumentException("InferenceTransformer " + uid + " (model '" + name + "'): generate option '"
              + entry + "' is not option=value, such as maxNewTokens=32");
        }
        call.generateOption(entry.substring(0, equals).trim(), entry.substring(equals + 1));
      }
    }
    call.onError($(onError));
    if (isDefined(errorCol)) {
      call.errorColumn($(errorCol));
    }
    return call.as(resultColumn);
  }

  @Override
  public InferenceTransformer copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  /** Saves the params and copies the model file (and tokenizer) into the stage's folder. */
  @Override
  public MLWriter write() {
    return new InferenceTransformerWriter(this);
  }

  public static MLReader<InferenceTransformer> read() {
    return new InferenceTransformerReader();
  }

  public static InferenceTransformer load(String path) {
    return read().load(path);
  }
}
