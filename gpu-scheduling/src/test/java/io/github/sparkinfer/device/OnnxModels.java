package io.github.sparkinfer.device;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Model files for tests: the int8 all-MiniLM-L6-v2 from the langchain4j test dependency, and tiny
 * models written here as ONNX protobuf bytes (the ONNX Runtime Java API cannot build models, and a
 * protobuf library would be a dependency for a few bytes).
 */
final class OnnxModels {
  static final String MINILM_RESOURCE = "all-minilm-l6-v2-q.onnx";

  // TensorProto.DataType values from onnx.proto.
  static final int FLOAT = 1;
  static final int UINT8 = 2;
  static final int UINT16 = 4;
  static final int INT32 = 6;
  static final int INT64 = 7;
  static final int STRING = 8;
  static final int BOOL = 9;
  static final int FLOAT16 = 10;
  static final int DOUBLE = 11;

  private static final int IR_VERSION = 8;
  private static final int OPSET = 17;

  private OnnxModels() {}

  static Path copyMiniLm(Path file) {
    ClassLoader classLoader = OnnxModels.class.getClassLoader();
    try (InputStream model = classLoader.getResourceAsStream(MINILM_RESOURCE)) {
      if (model == null) {
        throw new IllegalStateException(MINILM_RESOURCE + " is not on the test classpath");
      }
      Files.copy(model, file, StandardCopyOption.REPLACE_EXISTING);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A model with one input "x" of the given type and shape, returned as "y" by Identity. */
  static byte[] identity(int elementType, Object... dimensions) {
    return model(
        List.of(node("Identity", List.of("x"), List.of("y"))),
        List.of(tensorValue("x", elementType, dimensions)),
        List.of(tensorValue("y", elementType, dimensions)));
  }

  /**
   * A model with one input per given element type (named "in_" and the index, shape [batch]), each
   * returned by Identity as "out_" and the index, and a last output "sequence": a sequence holding
   * the first input.
   */
  static byte[] identities(int... elementTypes) {
    List<byte[]> nodes = new ArrayList<>();
    List<byte[]> inputs = new ArrayList<>();
    List<byte[]> outputs = new ArrayList<>();
    for (int i = 0; i < elementTypes.length; i++) {
      nodes.add(node("Identity", List.of("in_" + i), List.of("out_" + i)));
      inputs.add(tensorValue("in_" + i, elementTypes[i], "batch"));
      outputs.add(tensorValue("out_" + i, elementTypes[i], "batch"));
    }
    nodes.add(node("SequenceConstruct", List.of("in_0"), List.of("sequence")));
    outputs.add(sequenceValue("sequence", elementTypes[0]));
    return model(nodes, inputs, outputs);
  }

  static byte[] model(List<byte[]> nodes, List<byte[]> inputs, List<byte[]> outputs) {
    return model(nodes, List.of(), inputs, outputs);
  }

  /**
   * y = x · w, x float [batch, rows], w a float [rows, columns] initializer whose bytes are external
   * data at {@code location} (offset 0), as onnx.save(..., save_as_external_data=True) writes them.
   */
  static byte[] externalMatMul(String location, int rows, int columns) {
    Message weights = new Message().varint(1, rows).varint(1, columns).varint(2, FLOAT).string(8, "w")
        .bytes(13, new Message().string(1, "location").string(2, location).toByteArray())
        .bytes(13, new Message().string(1, "offset").string(2, "0").toByteArray())
        .bytes(13, new Message().string(1, "length").string(2, String.valueOf(4L * rows * columns)).toByteArray())
        .varint(14, 1);
    return model(List.of(node("MatMul", List.of("x", "w"), List.of("y"))), List.of(weights.toByteArray()),
        List.of(tensorValue("x", FLOAT, "batch", rows)), List.of(tensorValue("y", FLOAT, "batch", columns)));
  }

  static byte[] model(List<byte[]> nodes, List<byte[]> initializers, List<byte[]> inputs, List<byte[]> outputs) {
    Message graph = new Message();
    nodes.forEach(node -> graph.bytes(1, node));
    initializers.forEach(initializer -> graph.bytes(5, initializer));
    graph.string(2, "test");
    inputs.forEach(input -> graph.bytes(11, input));
    outputs.forEach(output -> graph.bytes(12, output));

    Message model = new Message();
    model.varint(1, IR_VERSION);
    model.string(2, "sparkinfer-tests");
    model.bytes(7, graph.toByteArray());
    model.bytes(8, new Message().varint(2, OPSET).toByteArray());
    return model.toByteArray();
  }

  static byte[] node(String operator, List<String> inputs, List<String> outputs) {
    Message node = new Message();
    inputs.forEach(input -> node.string(1, input));
    outputs.forEach(output -> node.string(2, output));
    node.string(3, operator + "_" + outputs.get(0));
    node.string(4, operator);
    return node.toByteArray();
  }

  /** A tensor value; each dimension is a Long/Integer (fixed) or a String (symbolic). */
  static byte[] tensorValue(String name, int elementType, Object... dimensions) {
    Message shape = new Message();
    for (Object dimension : dimensions) {
      Message dim = new Message();
      if (dimension instanceof String) {
        dim.string(2, (String) dimension);
      } else {
        dim.varint(1, ((Number) dimension).longValue());
      }
      shape.bytes(1, dim.toByteArray());
    }
    Message tensorType = new Message().varint(1, elementType).bytes(2, shape.toByteArray());
    Message type = new Message().bytes(1, tensorType.toByteArray());
    return new Message().string(1, name).bytes(2, type.toByteArray()).toByteArray();
  }

  static byte[] sequenceValue(String name, int elementType) {
    Message elementTensor = new Message().varint(1, elementType);
    Message element = new Message().bytes(1, elementTensor.toByteArray());
    Message sequence = new Message().bytes(1, element.toByteArray());
    Message type = new Message().bytes(4, sequence.toByteArray());
    return new Message().string(1, name).bytes(2, type.toByteArray()).toByteArray();
  }

  /** The protobuf wire format, just the varint and length-delimited fields ONNX models need. */
  private static final class Message {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    Message varint(int field, long value) {
      writeVarint((long) field << 3);
      writeVarint(value);
      return this;
    }

    Message string(int field, String value) {
      return bytes(field, value.getBytes(StandardCharsets.UTF_8));
    }

    Message bytes(int field, byte[] value) {
      writeVarint(((long) field << 3) | 2);
      writeVarint(value.length);
      bytes.write(value, 0, value.length);
      return this;
    }

    byte[] toByteArray() {
      return bytes.toByteArray();
    }

    private void writeVarint(long value) {
      long remaining = value;
      while ((remaining & ~0x7FL) != 0) {
        bytes.write((int) ((remaining & 0x7F) | 0x80));
        remaining >>>= 7;
      }
      bytes.write((int) remaining);
    }
  }
}
