package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;
import io.github.sparkinfer.partitioning.StageResources;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.stream.Collectors;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * A registered model as resolved on the driver at analysis time: where it lives, its signature,
 * the outputs a query returns and the batch settings. Shipped to executors inside the plan, so
 * executors never read the session's configuration.
 */
public final class ModelBinding implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String modelName;
  private final ModelSource source;
  private final ModelSignature signature;
  private final BatchSettings batching;
  private final List<TensorSpec> selectedOutputs;
  private final TextSettings text;
  private final io.github.sparkinfer.spark.generate.GenerationSettings generation;
  private final java.util.Map<String, String> deviceSettings;
  private final LoadTimeCompression compression;
  private final StageResources stageResources;
  private final RowErrorSettings rowErrors;

  /** Name of the field that holds the reason in a result that reports errors. */
  public static final String ERROR_FIELD = "error";

  /** Name of the field that holds the model's result in a result that reports errors. */
  public static final String RESULT_FIELD = "result";

  ModelBinding(ModelBindingBuilder builder) {
    this.modelName = builder.modelName;
    this.source = builder.source;
    this.signature = builder.signature;
    // A decoder's cache may be float16: generate() feeds it from the model's own outputs, never from a column.
    boolean decoder = io.github.sparkinfer.spark.generate.DecoderLayout.isGenerative(signature);
    for (TensorSpec input : signature.inputs()) {
      if (input.elementType() == TensorElementType.UNSUPPORTED && !decoder) {
        throw new ModelBindingException(
            "Model '" + modelName + "' input '" + input.name() + "' has element type " + input.onnxTypeName()
                + ", which no Spark column can feed (sparkinfer feeds float, double, int32 and int64 inputs)."
                + " Export the model with inputs of those types");
      }
    }
    // A decoder's outputs are read step by step by generate() (DecoderLayout checks them), never returned as columns.
    this.selectedOutputs = decoder ? List.of() : ModelOutputs.select(modelName, signature, builder.outputNames);
    this.batching = new BatchSettings(fixedBatchSize(modelName, signature).orElse(builder.batchSize),
        fixedBatchSize(modelName, signature).orElse(Math.min(builder.cpuBatchSize, builder.batchSize)),
        builder.intraOpThreads, builder.maxBatchBytes);
    this.text = builder.text;
    this.generation = builder.generation;
    this.deviceSettings = java.util.Map.copyOf(builder.deviceSettings);
    this.compression = builder.compression;
    this.stageResources = builder.stageResources;
    this.rowErrors = new RowErrorSettings(builder.onError, builder.reportErrors);
  }

  /** Starts the binding of model {@code modelName}, the file {@code source} with {@code signature}. */
  static ModelBindingBuilder builder(String modelName, ModelSource source, ModelSignature signature) {
    return new ModelBindingBuilder(modelName, source, signature);
  }

  /** A builder holding this binding's values: the way to a copy with some of them changed. */
  ModelBindingBuilder toBuilder() {
    ModelBindingBuilder builder = new ModelBindingBuilder(modelName, source, signature)
        .batchSizes(batching.batchSize(), batching.cpuBatchSize())
        .intraOpThreads(batching.intraOpThreads())
        .outputs(selectedOutputs.stream().map(TensorSpec::name).collect(Collectors.toList()))
        .deviceSettings(deviceSettings)
        .stageResources(stageResources)
        .rowErrors(rowErrors.onError(), rowErrors.reportsErrors())
        .maxBatchBytes(batching.maxBatchBytes());
    builder.text = text;
    builder.generation = generation;
    builder.compression = compression;
    return builder;
  }

  public String modelName() {
    return modelName;
  }

  public ModelSource source() {
    return source;
  }

  public ModelSignature signature() {
    return signature;
  }

  /** The most rows of one model call, on any device (buffers never grow past it). */
  public int batchSize() {
    return batching.batchSize();
  }

  /**
   * Rows per model call on {@code device}: the setting when one is made; unset, GPUs and NPUs take
   * {@link io.github.sparkinfer.spark.InferenceProperties#BATCH_SIZE_ACCELERATOR_DEFAULT} and CPUs
   * {@link io.github.sparkinfer.spark.InferenceProperties#BATCH_SIZE_DEFAULT} (both within
   * spark.sparkinfer.maxBatchBytes). Known only on the executor, where the session is bound.
   */
  public int batchSizeOn(io.github.sparkinfer.device.Device device) {
    return device.isAccelerator() ? batching.batchSize() : batching.cpuBatchSize();
  }

  /** 0 means "follow spark.task.cpus". */
  public int intraOpThreads() {
    return batching.intraOpThreads();
  }

  public List<TensorSpec> selectedOutputs() {
    return selectedOutputs;
  }

  /** What the stage that runs this model asks Spark for; {@link StageResources#NONE} by default. */
  public StageResources stageResources() {
    return stageResources;
  }

  public String precision() {
    return compression.precision;
  }

  /** auto (for each executor's CPU), u8s8, u8s8-paired, u8u8 or u8s8-reduced. */
  public String int8Scheme() {
    return compression.int8Scheme;
  }

  /** The ratio of hidden units pruned at load time (spark.sparkinfer.model.&lt;name&gt;.pruneRatio); 0: none. */
  public double pruneRatio() {
    return compression.pruneRatio;
  }

  /** spark.sparkinfer.device*, .cuda.*, .tensorrt.*, .cann.* keys set in the session. */
  public java.util.Map<String, String> deviceSettings() {
    return deviceSettings;
  }

  /** Whether the model was registered with a tokenizer. */
  public boolean isTextModel() {
    return text != null;
  }

  /** The text settings when the model has a tokenizer, else null. */
  public TextSettings text() {
    return text;
  }

  /** generate()'s settings when the model is a decoder registered with a tokenizer, else null. */
  public io.github.sparkinfer.spark.generate.GenerationSettings generation() {
    return generation;
  }

  /** How rows are batched and run: batch sizes, intra-op threads, the most bytes per batch. */
  public BatchSettings batching() {
    return batching;
  }

  /** What a row the model cannot take does. */
  public RowErrorSettings rowErrors() {
    return rowErrors;
  }

  /** The most bytes one batch's buffers may hold (spark.sparkinfer.maxBatchBytes). */
  public long maxBatchBytes() {
    return batching.maxBatchBytes();
  }

  /** What a row the model cannot take does. */
  public RowErrorPolicy onError() {
    return rowErrors.onError();
  }

  /** Whether the result is struct&lt;result, error&gt; (predict_with_error, embed_with_error). */
  public boolean reportsErrors() {
    return rowErrors.reportsErrors();
  }

  /**
   * The type of a call's result: {@code valueType} itself, or struct&lt;result: valueType, error:
   * string&gt; when the call reports errors.
   */
  public DataType resultType(DataType valueType) {
    if (!rowErrors.reportsErrors()) {
      return valueType;
    }
    return DataTypes.createStructType(List.of(
        DataTypes.createStructField(RESULT_FIELD, valueType, true),
        DataTypes.createStructField(ERROR_FIELD, DataTypes.StringType, true)));
  }

  /** predict()'s result type: {@link #valueType()}, with the reason when the call reports errors. */
  public DataType resultType() {
    return resultType(valueType());
  }

  /** One output: its column type. Several: a struct with one field per output, in model order. */
  public DataType valueType() {
    return ModelOutputs.valueType(selectedOutputs);
  }

  /**
   * Maps call arguments to model inputs: positionally, or by field name when the only argument is
   * a struct. Throws {@link ModelBindingException} naming the model, the input, the expected type
   * and shape, and the fix.
   */
  public InputBinding bindInputs(List<DataType> argumentTypes) {
    if (io.github.sparkinfer.spark.generate.DecoderLayout.isGenerative(signature)) {
      throw new ModelBindingException("Model '" + modelName + "' generates text (a decoder with a key/value cache, or ONNX Runtime's decode loop; inputs "
          + describeInputs() + "): its inputs come from its own outputs step by step, not from columns. Call"
          + " generate('" + modelName + "', prompt) to generate text with it");
    }
    List<TensorSpec> inputs = signature.inputs();
    List<InputLayout> bound = new ArrayList<>();
    boolean byName =
        argumentTypes.size() == 1
            && argumentTypes.get(0) instanceof StructType
            && !VectorLayout.isVector(argumentTypes.get(0));
    if (byName) {
      StructType struct = (StructType) argumentTypes.get(0);
      for (TensorSpec input : inputs) {
        int field = fieldIndex(struct, input.name());
        if (field < 0) {
          throw new ModelBindingException(
              "Cannot call model '" + modelName + "' with struct " + struct.simpleString()
                  + ": it has no field for model input '" + input.name() + "' ("
                  + expectation(input) + "). Name the struct fields after the model inputs "
                  + inputNames() + ", or pass the inputs positionally: predict('" + modelName
                  + "', " + String.join(", ", inputNames()) + ")");
        }
        bound.add(InputLayout.bind(this, input, struct.fields()[field].dataType(), 0, field));
      }
    } else {
      if (argumentTypes.size() != inputs.size()) {
        throw new ModelBindingException(
            "Cannot call model '" + modelName + "' with " + argumentTypes.size() + " argument(s): "
                + "it has " + inputs.size() + " input(s) " + describeInputs() + ". Pass one column per"
                + " input in this order, or one struct whose field names are the input names");
      }
      for (int argument = 0; argument < inputs.size(); argument++) {
        bound.add(InputLayout.bind(this, inputs.get(argument), argumentTypes.get(argument), argument, -1));
      }
    }
    return new InputBinding(bound);
  }

  private static int fieldIndex(StructType struct, String name) {
    StructField[] fields = struct.fields();
    for (int i = 0; i < fields.length; i++) {
      if (fields[i].name().equals(name)) {
        return i;
      }
    }
    for (int i = 0; i < fields.length; i++) {
      if (fields[i].name().equalsIgnoreCase(name)) {
        return i;
      }
    }
    return -1;
  }

  List<String> inputNames() {
    return signature.inputs().stream().map(TensorSpec::name).collect(Collectors.toList());
  }

  public String describeInputs() {
    return signature.inputs().stream()
        .map(input -> input.name() + " " + input.onnxTypeName().toLowerCase() + input.shapeString())
        .collect(Collectors.joining(", ", "[", "]"));
  }

  public static String expectation(TensorSpec input) {
    return input.onnxTypeName().toLowerCase() + " tensor of shape " + input.shapeString();
  }

  /** A model exported with a fixed batch dimension runs in batches of exactly that size. */
  private static java.util.OptionalInt fixedBatchSize(String modelName, ModelSignature signature) {
    for (TensorSpec input : signature.inputs()) {
      if (input.rank() > 0 && input.dimension(0) > 0) {
        // Read from the model file: checked before it sizes any buffer (a cast would wrap 2^31 to < 0).
        if (input.dimension(0) > io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_MAX) {
          throw new ModelBindingException("Model '" + modelName + "' input '" + input.name() + "' has a fixed batch"
              + " dimension of " + input.dimension(0) + " rows (" + expectation(input) + "), more than the "
              + io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_MAX + " rows a batch may hold. Export the"
              + " model with a dynamic batch dimension");
        }
        return java.util.OptionalInt.of((int) input.dimension(0));
      }
    }
    return java.util.OptionalInt.empty();
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof ModelBinding)) {
      return false;
    }
    ModelBinding that = (ModelBinding) other;
    return modelName.equals(that.modelName)
        && source.equals(that.source)
        && signature.equals(that.signature)
        && batching.equals(that.batching)
        && selectedOutputs.equals(that.selectedOutputs)
        && java.util.Objects.equals(text, that.text)
        && java.util.Objects.equals(generation, that.generation)
        && deviceSettings.equals(that.deviceSettings)
        && compression.equals(that.compression)
        && stageResources.equals(that.stageResources)
        && rowErrors.equals(that.rowErrors);
  }

  @Override
  public int hashCode() {
    return Objects.hash(modelName, source, batching, selectedOutputs);
  }

  @Override
  public String toString() {
    return modelName;
  }

}
