package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/** Reading and writing the data of initializer tensors. */
final class Tensors {
  private Tensors() {}

  static boolean isExternal(TensorProto tensor) {
    return tensor.getDataLocation() == TensorProto.DataLocation.EXTERNAL;
  }

  static long elementCount(TensorProto tensor) {
    long count = 1;
    for (long dimension : tensor.getDimsList()) {
      count = Math.multiplyExact(count, dimension);
    }
    return count;
  }

  /**
   * The values of a FLOAT tensor stored in the model, from raw_data or float_data, whichever the
   * writer used.
   *
   * @throws IllegalArgumentException when the tensor is not FLOAT, is stored externally, or holds a
   *     different number of values than its dimensions say
   */
  static float[] floats(TensorProto tensor) {
    if (tensor.getDataType() != OnnxElementType.FLOAT.onnxNumber()) {
      throw new IllegalArgumentException(
          "Tensor " + tensor.getName() + " is not FLOAT but type " + tensor.getDataType());
    }
    if (isExternal(tensor)) {
      throw new IllegalArgumentException(
          "Tensor " + tensor.getName() + " is stored as external data, which is not read here");
    }
    long expected = elementCount(tensor);
    if (expected > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "Tensor " + tensor.getName() + " has " + expected + " values, more than a Java array");
    }
    float[] values = new float[(int) expected];
    int stored;
    if (tensor.hasRawData()) {
      ByteString raw = tensor.getRawData();
      stored = raw.size() / Float.BYTES;
      if (stored == values.length && raw.size() % Float.BYTES == 0) {
        raw.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
      }
    } else {
      List<Float> data = tensor.getFloatDataList();
      stored = data.size();
      for (int i = 0; i < values.length && i < stored; i++) {
        values[i] = data.get(i);
      }
    }
    if (stored != values.length) {
      throw new IllegalArgumentException(
          "Tensor "
              + tensor.getName()
              + " stores "
              + stored
              + " values but its dimensions "
              + tensor.getDimsList()
              + " hold "
              + expected);
    }
    return values;
  }

  static TensorProto floatTensor(String name, float[] values, long... dimensions) {
    ByteBuffer buffer = littleEndian(values.length * Float.BYTES);
    buffer.asFloatBuffer().put(values);
    return tensor(name, OnnxElementType.FLOAT, buffer, dimensions);
  }

  /** INT8, UINT8 or, packed by the caller, 4-bit data in UINT8 bytes. */
  static TensorProto byteTensor(
      String name, OnnxElementType type, byte[] values, long... dimensions) {
    return tensor(name, type, ByteBuffer.wrap(values), dimensions);
  }

  /** FLOAT16 from float16 bit patterns. */
  static TensorProto float16Tensor(String name, short[] values, long... dimensions) {
    ByteBuffer buffer = littleEndian(values.length * Short.BYTES);
    buffer.asShortBuffer().put(values);
    return tensor(name, OnnxElementType.FLOAT16, buffer, dimensions);
  }

  static ByteString float16Bytes(short[] values) {
    ByteBuffer buffer = littleEndian(values.length * Short.BYTES);
    buffer.asShortBuffer().put(values);
    return ByteString.copyFrom(buffer.array());
  }

  private static ByteBuffer littleEndian(int bytes) {
    return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** A tensor holding {@code data} (little-endian) as raw_data. */
  static TensorProto tensor(String name, OnnxElementType type, ByteBuffer data, long[] dimensions) {
    TensorProto.Builder tensor =
        TensorProto.newBuilder()
            .setName(name)
            .setDataType(type.onnxNumber())
            .setRawData(ByteString.copyFrom(data.array()));
    for (long dimension : dimensions) {
      tensor.addDims(dimension);
    }
    return tensor.build();
  }

  /** Bytes the tensor's data takes in the model file (0 when stored externally). */
  static long storedBytes(TensorProto tensor) {
    if (isExternal(tensor)) {
      return 0;
    }
    // Typed repeated fields are varint or fixed encoded; their serialized size is what the file
    // holds.
    return tensor.hasRawData() ? tensor.getRawData().size() : tensor.getSerializedSize();
  }
}
