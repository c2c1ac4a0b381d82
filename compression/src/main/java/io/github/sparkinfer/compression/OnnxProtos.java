package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Conversions between this package's values and the generated ONNX protobuf classes. */
final class OnnxProtos {
  private OnnxProtos() {}

  static ValueInfoProto valueInfo(TensorDeclaration declaration) {
    TypeProto.Tensor.Builder tensor =
        TypeProto.Tensor.newBuilder().setElemType(declaration.elementType().onnxNumber());
    if (declaration.isShapeKnown()) {
      TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
      for (Dimension dimension : declaration.dimensions()) {
        TensorShapeProto.Dimension.Builder dim = shape.addDimBuilder();
        if (dimension.isFixed()) {
          dim.setDimValue(dimension.size());
        } else if (dimension.isSymbolic()) {
          dim.setDimParam(dimension.symbol());
        }
      }
      tensor.setShape(shape);
    }
    return ValueInfoProto.newBuilder()
        .setName(declaration.name())
        .setType(TypeProto.newBuilder().setTensorType(tensor))
        .build();
  }

  static TensorDeclaration declaration(ValueInfoProto valueInfo) {
    TypeProto type = valueInfo.getType();
    if (!type.hasTensorType()) {
      throw new IllegalStateException(
          "Not a tensor: " + valueInfo.getName() + " is of type " + type.getValueCase());
    }
    TypeProto.Tensor tensor = type.getTensorType();
    List<Dimension> dimensions = new ArrayList<>();
    for (TensorShapeProto.Dimension dim : tensor.getShape().getDimList()) {
      if (dim.hasDimValue()) {
        dimensions.add(Dimension.fixed(dim.getDimValue()));
      } else if (dim.hasDimParam() && !dim.getDimParam().isEmpty()) {
        dimensions.add(Dimension.symbolic(dim.getDimParam()));
      } else {
        dimensions.add(Dimension.unknown());
      }
    }
    return new TensorDeclaration(
        valueInfo.getName(),
        OnnxElementType.fromOnnxNumber(tensor.getElemType()),
        dimensions,
        tensor.hasShape());
  }

  // Tensor data goes in raw_data, little-endian, as the ONNX spec asks and onnx.numpy_helper does:
  // compact, and what ORT and later rewriting read fastest.

  static TensorProto tensor(String name, float[] values, long[] dimensions) {
    ByteBuffer buffer = buffer(name, values.length, Float.BYTES, dimensions);
    buffer.asFloatBuffer().put(values);
    return Tensors.tensor(name, OnnxElementType.FLOAT, buffer, dimensions);
  }

  static TensorProto tensor(String name, double[] values, long[] dimensions) {
    ByteBuffer buffer = buffer(name, values.length, Double.BYTES, dimensions);
    buffer.asDoubleBuffer().put(values);
    return Tensors.tensor(name, OnnxElementType.DOUBLE, buffer, dimensions);
  }

  static TensorProto tensor(String name, long[] values, long[] dimensions) {
    ByteBuffer buffer = buffer(name, values.length, Long.BYTES, dimensions);
    buffer.asLongBuffer().put(values);
    return Tensors.tensor(name, OnnxElementType.INT64, buffer, dimensions);
  }

  static TensorProto tensor(String name, int[] values, long[] dimensions) {
    ByteBuffer buffer = buffer(name, values.length, Integer.BYTES, dimensions);
    buffer.asIntBuffer().put(values);
    return Tensors.tensor(name, OnnxElementType.INT32, buffer, dimensions);
  }

  private static ByteBuffer buffer(String name, int count, int bytesPerValue, long[] dimensions) {
    long expected = 1;
    for (long dimension : dimensions) {
      if (dimension < 0) {
        throw new IllegalArgumentException(
            "Initializer " + name + " has a negative dimension: " + dimension);
      }
      expected = Math.multiplyExact(expected, dimension);
    }
    if (expected != count) {
      throw new IllegalArgumentException(
          "Initializer "
              + name
              + " has "
              + count
              + " values but its dimensions "
              + Arrays.toString(dimensions)
              + " hold "
              + expected);
    }
    int bytes = Math.multiplyExact(count, bytesPerValue);
    return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
  }
}
