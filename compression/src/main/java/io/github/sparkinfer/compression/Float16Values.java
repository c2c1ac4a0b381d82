package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The data side of {@link Float16Converter}: float32 initializers and Constant / ConstantOfShape
 * values stored as float16, clamped to its range ({@link Float16#fromFloatClamped}), every other
 * field of the tensor kept.
 */
final class Float16Values {
  private Float16Values() {}

  /** A FLOAT value attribute becomes FLOAT16; true when it changed. */
  static boolean convertConstant(NodeProto.Builder node) {
    for (int i = 0; i < node.getAttributeCount(); i++) {
      AttributeProto attribute = node.getAttribute(i);
      TensorProto float16;
      switch (attribute.getName()) {
        case "value":
          if (attribute.getT().getDataType() != ElementTypes.FLOAT
              || Tensors.isExternal(attribute.getT())) {
            return false;
          }
          float16 = toFloat16(attribute.getT(), Tensors.floats(attribute.getT()));
          break;
        case "value_float":
          float16 =
              Tensors.float16Tensor("", new short[] {Float16.fromFloatClamped(attribute.getF())});
          break;
        case "value_floats":
          {
            float[] values = new float[attribute.getFloatsCount()];
            for (int v = 0; v < values.length; v++) {
              values[v] = attribute.getFloats(v);
            }
            float16 = Tensors.float16Tensor("", clamped(values), values.length);
            break;
          }
        default:
          continue;
      }
      node.setAttribute(
          i,
          AttributeProto.newBuilder()
              .setName("value")
              .setType(AttributeProto.AttributeType.TENSOR)
              .setT(float16));
      return true;
    }
    return false;
  }

  static boolean convertConstantOfShape(NodeProto.Builder node) {
    for (int i = 0; i < node.getAttributeCount(); i++) {
      AttributeProto attribute = node.getAttribute(i);
      if (attribute.getName().equals("value")) {
        if (attribute.getT().getDataType() != ElementTypes.FLOAT) {
          return false;
        }
        node.setAttribute(
            i,
            attribute.toBuilder()
                .setT(toFloat16(attribute.getT(), Tensors.floats(attribute.getT()))));
        return true;
      }
    }
    // No value means a float32 zero: write the float16 zero explicitly.
    node.addAttribute(
        AttributeProto.newBuilder()
            .setName("value")
            .setType(AttributeProto.AttributeType.TENSOR)
            .setT(Tensors.float16Tensor("", new short[] {0}, 1)));
    return true;
  }

  static List<TensorProto> convertInitializers(
      GraphProto graph, Set<String> converted, CompressionReport.Collector report) {
    List<TensorProto> initializers = new ArrayList<>();
    long values = 0;
    long clampedValues = 0;
    for (TensorProto initializer : graph.getInitializerList()) {
      if (!converted.contains(initializer.getName())) {
        initializers.add(initializer);
        continue;
      }
      float[] floats = Tensors.floats(initializer);
      for (float value : floats) {
        if (Float16.needsClamping(value)) {
          clampedValues++;
        }
      }
      values += floats.length;
      initializers.add(toFloat16(initializer, floats));
    }
    if (!converted.isEmpty()) {
      report.rewroteValue(
          "initializers",
          converted.size()
              + " FLOAT initializers ("
              + values
              + " values) now FLOAT16"
              + (clampedValues > 0
                  ? ", " + clampedValues + " values clamped to ±65504 or ±2^-24"
                  : ""));
    }
    return initializers;
  }

  /** The tensor with its data as FLOAT16, every other field (name, dims, doc) kept. */
  private static TensorProto toFloat16(TensorProto tensor, float[] values) {
    return tensor.toBuilder()
        .clearFloatData()
        .clearRawData()
        .setDataType(ElementTypes.FLOAT16)
        .setRawData(Tensors.float16Bytes(clamped(values)))
        .build();
  }

  private static short[] clamped(float[] values) {
    short[] halves = new short[values.length];
    for (int i = 0; i < values.length; i++) {
      halves[i] = Float16.fromFloatClamped(values[i]);
    }
    return halves;
  }
}
