package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;
import io.github.sparkinfer.spark.InferenceProperties;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;

/**
 * A model's outputs as a query returns them: which outputs a call selects (all, or the names the
 * user gave, refused with the fix when sparkinfer cannot return one) and their Spark types.
 */
public final class ModelOutputs {

  private ModelOutputs() {}

  /** One output: its column type. Several: a struct with one field per output, in model order. */
  static DataType valueType(List<TensorSpec> selectedOutputs) {
    if (selectedOutputs.size() == 1) {
      return outputType(selectedOutputs.get(0));
    }
    List<StructField> fields = new ArrayList<>();
    for (TensorSpec output : selectedOutputs) {
      fields.add(DataTypes.createStructField(output.name(), outputType(output), true));
    }
    return DataTypes.createStructType(fields);
  }

  /** The column type of one output: its element type in arrays nested once per dimension after the batch. */
  public static DataType outputType(TensorSpec output) {
    DataType element = sparkType(output.elementType());
    DataType type = element;
    for (int dimension = 1; dimension < output.rank(); dimension++) {
      type = DataTypes.createArrayType(type, false);
    }
    return type;
  }

  static DataType sparkType(TensorElementType elementType) {
    switch (elementType) {
      case FLOAT:
        return DataTypes.FloatType;
      case DOUBLE:
        return DataTypes.DoubleType;
      case INT32:
        return DataTypes.IntegerType;
      case INT64:
        return DataTypes.LongType;
      default:
        throw new IllegalArgumentException("No Spark type for " + elementType);
    }
  }

  static List<TensorSpec> select(
      String modelName, ModelSignature signature, List<String> outputNames) {
    List<TensorSpec> selected = new ArrayList<>();
    if (signature.outputs().isEmpty()) {
      throw new ModelBindingException(
          "Model '" + modelName + "' has no outputs, so a call of it has nothing to return (its inputs are "
              + signature.inputs().stream().map(TensorSpec::name).collect(Collectors.toList())
              + "). Export the model again with its outputs declared in the graph");
    }
    if (outputNames.isEmpty()) {
      selected.addAll(signature.outputs());
    } else {
      for (String name : outputNames) {
        TensorSpec output =
            signature.outputs().stream()
                .filter(candidate -> candidate.name().equals(name))
                .findFirst()
                .orElseThrow(
                    () ->
                        new ModelBindingException(
                            "Model '" + modelName + "' has no output '" + name + "': its outputs are "
                                + signature.outputs().stream().map(TensorSpec::name).collect(Collectors.toList())
                                + ". Fix the output list (" + InferenceProperties.MODEL_PREFIX + modelName
                                + InferenceProperties.MODEL_OUTPUTS_SUFFIX + " or Inference.output(...))"));
        selected.add(output);
      }
    }
    for (TensorSpec output : selected) {
      if (output.elementType() == TensorElementType.UNSUPPORTED) {
        throw new ModelBindingException(
            "Model '" + modelName + "' output '" + output.name() + "' has element type "
                + output.onnxTypeName() + ", which sparkinfer cannot return (supported: float, double,"
                + " int32, int64). Select only the outputs you need with SET " + InferenceProperties.MODEL_PREFIX
                + modelName + InferenceProperties.MODEL_OUTPUTS_SUFFIX + "=<names>");
      }
      if (output.rank() < 1 || output.rank() > 3) {
        throw new ModelBindingException(
            "Model '" + modelName + "' output '" + output.name() + "' has rank " + output.rank()
                + " (shape " + output.shapeString() + "); sparkinfer returns outputs of rank 1 to 3"
                + " whose first dimension is the batch. Select other outputs with SET "
                + InferenceProperties.MODEL_PREFIX + modelName + InferenceProperties.MODEL_OUTPUTS_SUFFIX + "=<names>");
      }
    }
    return List.copyOf(selected);
  }
}
