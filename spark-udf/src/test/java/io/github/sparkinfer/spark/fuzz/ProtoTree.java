package io.github.sparkinfer.spark.fuzz;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * An ONNX model as a tree of protobuf wire-format fields, for the model fuzzer: it must write what
 * the generated classes refuse to (invalid enums, negative lengths, fields in any order, nesting
 * beyond any parser's limit), so it works on the wire format itself. Messages of the types in
 * {@link #CHILDREN} are parsed into sub-trees; every other length-delimited field stays bytes.
 */
final class ProtoTree {
  // Message types, and their message-typed fields (from onnx.proto).
  static final String MODEL = "Model";
  static final String GRAPH = "Graph";
  static final String NODE = "Node";
  static final String ATTRIBUTE = "Attribute";
  static final String TENSOR = "Tensor";
  static final String VALUE_INFO = "ValueInfo";
  static final String TYPE = "Type";
  static final String TENSOR_TYPE = "TensorType";
  static final String SHAPE = "Shape";
  static final String DIM = "Dim";
  static final String ENTRY = "Entry";
  static final String OPSET = "Opset";
  static final String SPARSE = "Sparse";
  static final Map<String, Map<Integer, String>> CHILDREN = Map.ofEntries(
      Map.entry(MODEL, Map.of(7, GRAPH, 8, OPSET)),
      Map.entry(GRAPH, Map.of(1, NODE, 5, TENSOR, 11, VALUE_INFO, 12, VALUE_INFO, 13, VALUE_INFO, 15, SPARSE)),
      Map.entry(NODE, Map.of(5, ATTRIBUTE)),
      Map.entry(ATTRIBUTE, Map.of(5, TENSOR, 6, GRAPH, 10, TENSOR, 11, GRAPH, 22, SPARSE, 23, SPARSE)),
      Map.entry(TENSOR, Map.of(13, ENTRY)),
      Map.entry(SPARSE, Map.of(1, TENSOR, 2, TENSOR)),
      Map.entry(VALUE_INFO, Map.of(2, TYPE)),
      Map.entry(TYPE, Map.of(1, TENSOR_TYPE)),
      Map.entry(TENSOR_TYPE, Map.of(2, SHAPE)),
      Map.entry(SHAPE, Map.of(1, DIM)),
      Map.entry(DIM, Map.of()),
      Map.entry(ENTRY, Map.of()),
      Map.entry(OPSET, Map.of()));

  /** One field: a varint, fixed 32/64 bits (kept in {@code value}), bytes, or a parsed message. */
  static final class Field {
    int number;
    int wireType;
    long value;
    byte[] bytes;
    Message message;

    Field(int number, int wireType) {
      this.number = number;
      this.wireType = wireType;
    }

    static Field varint(int number, long value) {
      Field field = new Field(number, 0);
      field.value = value;
      return field;
    }

    static Field bytes(int number, byte[] bytes) {
      Field field = new Field(number, 2);
      field.bytes = bytes;
      return field;
    }

    static Field string(int number, String text) {
      return bytes(number, text.getBytes(StandardCharsets.UTF_8));
    }

    static Field message(int number, Message message) {
      Field field = new Field(number, 2);
      field.message = message;
      return field;
    }

    String text() {
      return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }

    Field copy() {
      Field copy = new Field(number, wireType);
      copy.value = value;
      copy.bytes = bytes == null ? null : bytes.clone();
      copy.message = message == null ? null : message.copy();
      return copy;
    }
  }

  /** A message of a known type: its fields in wire order. */
  static final class Message {
    final String type;
    final List<Field> fields = new ArrayList<>();

    Message(String type) {
      this.type = type;
    }

    List<Field> all(int number) {
      List<Field> found = new ArrayList<>();
      for (Field field : fields) {
        if (field.number == number) {
          found.add(field);
        }
      }
      return found;
    }

    Field first(int number) {
      for (Field field : fields) {
        if (field.number == number) {
          return field;
        }
      }
      return null;
    }

    Message add(Field field) {
      fields.add(field);
      return this;
    }

    void removeAll(int number) {
      fields.removeIf(field -> field.number == number);
    }

    Message copy() {
      Message copy = new Message(type);
      fields.forEach(field -> copy.fields.add(field.copy()));
      return copy;
    }

    /** Every message of {@code wanted} type in this tree (this one included), depth first. */
    List<Message> find(String wanted) {
      List<Message> found = new ArrayList<>();
      collect(wanted, found);
      return found;
    }

    private void collect(String wanted, List<Message> found) {
      if (type.equals(wanted)) {
        found.add(this);
      }
      for (Field field : fields) {
        if (field.message != null) {
          field.message.collect(wanted, found);
        }
      }
    }

    byte[] toBytes() {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      for (Field field : fields) {
        writeVarint(out, ((long) field.number << 3) | field.wireType);
        switch (field.wireType) {
          case 0:
            writeVarint(out, field.value);
            break;
          case 1:
            for (int i = 0; i < 8; i++) {
              out.write((int) (field.value >>> (8 * i)));
            }
            break;
          case 5:
            for (int i = 0; i < 4; i++) {
              out.write((int) (field.value >>> (8 * i)));
            }
            break;
          default:
            byte[] payload = field.message != null ? field.message.toBytes() : field.bytes;
            writeVarint(out, payload.length);
            out.write(payload, 0, payload.length);
        }
      }
      return out.toByteArray();
    }
  }

  private ProtoTree() {}

  /** Parses a valid model's bytes (the fuzzer's seeds); a malformed one throws. */
  static Message parse(byte[] bytes) {
    return parse(MODEL, bytes, 0, bytes.length);
  }

  private static Message parse(String type, byte[] bytes, int from, int to) {
    Message message = new Message(type);
    int[] position = {from};
    while (position[0] < to) {
      long key = readVarint(bytes, position);
      Field field = new Field((int) (key >>> 3), (int) (key & 7));
      switch (field.wireType) {
        case 0:
          field.value = readVarint(bytes, position);
          break;
        case 1:
        case 5:
          int width = field.wireType == 1 ? 8 : 4;
          for (int i = 0; i < width; i++) {
            field.value |= (bytes[position[0] + i] & 0xFFL) << (8 * i);
          }
          position[0] += width;
          break;
        case 2:
          int length = Math.toIntExact(readVarint(bytes, position));
          String childType = CHILDREN.get(type).get(field.number);
          if (childType != null) {
            field.message = parse(childType, bytes, position[0], position[0] + length);
          } else {
            field.bytes = java.util.Arrays.copyOfRange(bytes, position[0], position[0] + length);
          }
          position[0] += length;
          break;
        default:
          throw new IllegalArgumentException("wire type " + field.wireType + " in a seed model");
      }
      message.fields.add(field);
    }
    return message;
  }

  private static long readVarint(byte[] bytes, int[] position) {
    long value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      byte b = bytes[position[0]++];
      value |= (long) (b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        return value;
      }
    }
    throw new IllegalArgumentException("varint over 10 bytes");
  }

  static void writeVarint(ByteArrayOutputStream out, long value) {
    long remaining = value;
    while ((remaining & ~0x7FL) != 0) {
      out.write((int) ((remaining & 0x7F) | 0x80));
      remaining >>>= 7;
    }
    out.write((int) remaining);
  }
}
