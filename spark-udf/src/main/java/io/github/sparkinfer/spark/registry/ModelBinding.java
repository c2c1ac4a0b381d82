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
  private final int batchSize;
  private final int cpuBatchSize;
  private final int intraOpThreads;
  private final List<TensorSpec> selectedOutputs;
  private final TextSettings text;
  private final java.util.Map<String, String> deviceSettings;
  private final LoadTimeCompression compression;
  private final StageResources stageResources;
  private final RowErrorPolicy onError;
  private final boolean reportErrors;
  private final long maxBatchBytes;

  /** Name of the field that holds the reason in a result that reports errors. */
  public static final String ERROR_FIELD = "error";

  /** Name of the field that holds the model's result in a result that reports errors. */
  public static final String RESULT_FIELD = "result";

  ModelBinding(
      String modelName,
      ModelSource source,
      ModelSignature signature,
      int batchSize,
      int cpuBatchSize,
      int intraOpThreads,
      List<String> outputNames) {
    this.modelName = modelName;
    this.source = source;
    this.signature = signature;
    this.intraOpThreads = intraOpThreads;
    for (TensorSpec input : signature.inputs()) {
      if (input.elementType() == TensorElementType.UNSUPPORTED) {
        throw new ModelBindingException(
            "Model '" + modelName + "' input '" + input.name() + "' has element type " + input.onnxTypeName()
                + ", which no Spark column can feed (sparkinfer feeds float, double, int32 and int64 inputs)."
                + " Export the model with inputs of those types");
      }
    }
    this.selectedOutputs = ModelOutputs.select(modelName, signature, outputNames);
    this.batchSize = fixedBatchSize(modelName, signature).orElse(batchSize);
    this.cpuBatchSize = fixedBatchSize(modelName, signature).orElse(Math.min(cpuBatchSize, batchSize));
    this.text = null;
    this.deviceSettings = java.util.Map.of();
    this.compression = LoadTimeCompression.NONE;
    this.stageResources = StageResources.NONE;
    this.onError = RowErrorPolicy.FAIL;
    this.reportErrors = false;
    this.maxBatchBytes = Integer.MAX_VALUE;
  }

  /** A copy of {@code base} with other text, device, precision and stage settings. */
  private ModelBinding(
      ModelBinding base,
      TextSettings text,
      java.util.Map<String, String> deviceSettings,
      LoadTimeCompression compression,
      StageResources stageResources,
      RowErrorPolicy onError,
      boolean reportErrors,
      long maxBatchBytes) {
    this.modelName = base.modelName;
    this.source = base.source;
    this.signature = base.signature;
    this.intraOpThreads = base.intraOpThreads;
    this.selectedOutputs = base.selectedOutputs;
    this.batchSize = base.batchSize;
    this.cpuBatchSize = base.cpuBatchSize;
    this.text = text;
    this.deviceSettings = java.util.Map.copyOf(deviceSettings);
    this.compression = compression;
    this.stageResources = stageResources;
    this.onError = onError;
    this.reportErrors = reportErrors;
    this.maxBatchBytes = maxBatchBytes;
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
    return batchSize;
  }

  /**
   * Rows per model call on {@code device}: the setting when one is made; unset, GPUs and NPUs take
   * {@link io.github.sparkinfer.spark.InferenceProperties#BATCH_SIZE_ACCELERATOR_DEFAULT} and CPUs
   * {@link io.github.sparkinfer.spark.InferenceProperties#BATCH_SIZE_DEFAULT} (both within
   * spark.sparkinfer.maxBatchBytes). Known only on the executor, where the session is bound.
   */
  public int batchSizeOn(io.github.sparkinfer.device.Device device) {
    return device.isAccelerator() ? batchSize : cpuBatchSize;
  }

  /** 0 means "follow spark.task.cpus". */
  public int intraOpThreads() {
    return intraOpThreads;
  }

  public List<TensorSpec> selectedOutputs() {
    return selectedOutputs;
  }


  /** A copy of this binding for a text model: strings are tokenized into its inputs. */
  ModelBinding withText(TextSettings settings) {
    return new ModelBinding(this, settings, deviceSettings, compression, stageResources, onError, reportErrors, maxBatchBytes);
  }

  /** A copy with the session's device settings, which take precedence over the executors' own. */
  ModelBinding withDeviceSettings(java.util.Map<String, String> settings) {
    return new ModelBinding(this, text, settings, compression, stageResources, onError, reportErrors, maxBatchBytes);
  }

  /** A copy whose inference stage asks Spark for {@code resources}. */
  ModelBinding withStageResources(StageResources resources) {
    return new ModelBinding(this, text, deviceSettings, compression, resources, onError, reportErrors, maxBatchBytes);
  }

  /** What the stage that runs this model asks Spark for; {@link StageResources#NONE} by default. */
  public StageResources stageResources() {
    return stageResources;
  }

  /**
   * A copy that runs at {@code value} (fp32, int8, fp16, int4 or auto), int8 weights stored as
   * {@code scheme} says (auto, u8s8, u8s8-paired, u8u8 or u8s8-reduced).
   */
  ModelBinding withPrecision(String value, String scheme) {
    return new ModelBinding(this, text, deviceSettings, new LoadTimeCompression(value, scheme, compression.pruneRatio),
        stageResources, onError, reportErrors, maxBatchBytes);
  }

  /** A copy whose executors prune {@code ratio} of every chain's hidden units before loading it. */
  ModelBinding withPruneRatio(double ratio) {
    return new ModelBinding(this, text, deviceSettings,
        new LoadTimeCompression(compression.precision, compression.int8Scheme, ratio), stageResources, onError,
        reportErrors, maxBatchBytes);
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

  /** A copy with this row error policy; with {@code report} the result also carries the reason. */
  ModelBinding withRowErrors(RowErrorPolicy policy, boolean report) {
    return new ModelBinding(this, text, deviceSettings, compression, stageResources, policy, report, maxBatchBytes);
  }

  /** A copy whose batches hold at most {@code bytes} of input and output buffers. */
  ModelBinding withMaxBatchBytes(long bytes) {
    return new ModelBinding(this, text, deviceSettings, compression, stageResources, onError, reportErrors, bytes);
  }

  /** The most bytes one batch's buffers may hold (spark.sparkinfer.maxBatchBytes). */
  public long maxBatchBytes() {
    return maxBatchBytes;
  }

  /** What a row the model cannot take does. */
  public RowErrorPolicy onError() {
    return onError;
  }

  /** Whether the result is struct&lt;result, error&gt; (predict_with_error, embed_with_error). */
  public boolean reportsErrors() {
    return reportErrors;
  }

  /**
   * The type of a call's result: {@code valueType} itself, or struct&lt;result: valueType, error:
   * string&gt; when the call reports errors.
   */
  public DataType resultType(DataType valueType) {
    if (!reportErrors) {
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
        && batchSize == that.batchSize
        && cpuBatchSize == that.cpuBatchSize
        && intraOpThreads == that.intraOpThreads
        && selectedOutputs.equals(that.selectedOutputs)
        && java.util.Objects.equals(text, that.text)
        && deviceSettings.equals(that.deviceSettings)
        && compression.equals(that.compression)
        && stageResources.equals(that.stageResources)
        && onError == that.onError
        && reportErrors == that.reportErrors
        && maxBatchBytes == that.maxBatchBytes;
  }

  @Override
  public int hashCode() {
    return Objects.hash(modelName, source, batchSize, intraOpThreads, selectedOutputs);
  }

  @Override
  public String toString() {
    return modelName;
  }

}
