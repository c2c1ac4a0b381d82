package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.PredictionException;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.TensorInfo;
import io.github.sparkinfer.device.TensorSpec;
import java.util.Arrays;

/**
 * The one check of an output that ONNX Runtime allocated, on every path that reads one (predict,
 * embed, pooling in the graph) and before the first read: a graph may compute another shape than
 * its signature declares, and a row is read at an offset that the shape decides.
 */
public final class OutputShapes {
  private OutputShapes() {}

  /**
   * The output as a tensor whose shape is {@code expected} where a dimension is known there (-1:
   * any), the output's declared size where the model fixes it, and whose element type and byte
   * count match; throws naming the model, the output, the expected and the actual shape otherwise.
   * {@code batch} says what the batch was, for the message.
   */
  public static OnnxTensor check(
      String model, TensorSpec output, OnnxValue value, long[] expected, OnnxJavaType type, String batch) {
    if (!(value instanceof OnnxTensor)) {
      throw new PredictionException(
          "Model '" + model + "' output '" + output.name() + "' is not a tensor: " + value.getInfo());
    }
    OnnxTensor tensor = (OnnxTensor) value;
    TensorInfo info = (TensorInfo) tensor.getInfo();
    long[] actual = info.getShape();
    boolean matches = actual.length == expected.length;
    for (int i = 0; matches && i < actual.length; i++) {
      long declared = i < output.rank() ? output.dimension(i) : -1;
      matches = actual[i] >= 0 && (expected[i] < 0 || actual[i] == expected[i])
          && (i == 0 || declared <= 0 || actual[i] == declared);
    }
    if (!matches) {
      throw new PredictionException("Model '" + model + "' output '" + output.name() + "' has shape "
          + Arrays.toString(actual) + " for " + batch + "; expected " + describe(expected) + " (declared "
          + output.shapeString() + "). The graph does not compute the shape its signature declares; fix the model"
          + " or choose another output");
    }
    if (info.type != type) {
      throw new PredictionException("Model '" + model + "' output '" + output.name() + "' holds " + info.type
          + " values; expected " + type + " (declared " + output.onnxTypeName().toLowerCase() + ")");
    }
    long bytes = io.github.sparkinfer.spark.registry.BufferSizes.product(actual);
    bytes = io.github.sparkinfer.spark.registry.BufferSizes.product(bytes, type.size);
    long returned = tensor.getByteBuffer().remaining();
    if (returned != bytes) {
      throw new PredictionException("Model '" + model + "' output '" + output.name() + "' returned "
          + returned + " bytes for shape " + Arrays.toString(actual) + ", expected " + bytes);
    }
    return tensor;
  }

  private static String describe(long[] expected) {
    StringBuilder text = new StringBuilder("[");
    for (int i = 0; i < expected.length; i++) {
      text.append(i == 0 ? "" : ", ").append(expected[i] < 0 ? "any" : Long.toString(expected[i]));
    }
    return text.append(']').toString();
  }
}
