package io.github.sparkinfer.spark;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Model files as an attacker writes them, in protobuf's wire format (field numbers of onnx.proto):
 * external data pointing anywhere, and subgraphs nested past any limit.
 */
final class HostileModels {
  private static final int FLOAT = 1;
  private static final int GRAPH_ATTRIBUTE = 5;

  private HostileModels() {}

  /**
   * y = x · w, x float [batch, rows], w float [rows, columns] whose bytes are external data at
   * {@code location}, {@code offset} and {@code length} (each left out when null).
   */
  static byte[] externalMatMul(String location, String offset, String length, int rows, int columns) {
    Message weights = new Message().varint(1, rows).varint(1, columns).varint(2, FLOAT).string(8, "w");
    weights.bytes(13, new Message().string(1, "location").string(2, location).bytes());
    if (offset != null) {
      weights.bytes(13, new Message().string(1, "offset").string(2, offset).bytes());
    }
    if (length != null) {
      weights.bytes(13, new Message().string(1, "length").string(2, length).bytes());
    }
    weights.varint(14, 1);
    Message node = new Message().string(1, "x").string(1, "w").string(2, "y").string(3, "matmul").string(4, "MatMul");
    Message graph = new Message().bytes(1, node.bytes()).bytes(5, weights.bytes()).string(2, "hostile")
        .bytes(11, tensorValue("x", rows)).bytes(12, tensorValue("y", columns));
    return model(graph.bytes());
  }

  /**
   * A model whose graph has an If node whose then_branch graph has an If node ... {@code depth}
   * graphs deep: three messages (graph, node, attribute) per level. Written outside in, each
   * message's size computed first, so building it costs time linear in its size.
   */
  static byte[] nestedIfs(int depth) {
    byte[] nodeHead = new Message().string(1, "c").string(2, "y").string(4, "If").bytes();
    byte[] attributeHead = new Message().string(1, "then_branch").varint(20, GRAPH_ATTRIBUTE).bytes();
    // Outermost first: (what precedes the nested field, the nested field's number).
    List<byte[]> heads = new ArrayList<>();
    List<Integer> fields = new ArrayList<>();
    for (int level = 0; level < depth; level++) {
      heads.add(new byte[0]);
      fields.add(1);  // GraphProto.node
      heads.add(nodeHead);
      fields.add(5);  // NodeProto.attribute
      heads.add(attributeHead);
      fields.add(6);  // AttributeProto.g
    }
    byte[] leaf = new Message().string(2, "leaf").bytes();
    long[] sizes = new long[heads.size() + 1];
    sizes[heads.size()] = leaf.length;
    for (int i = heads.size() - 1; i >= 0; i--) {
      sizes[i] = heads.get(i).length + varintSize((long) fields.get(i) << 3 | 2) + varintSize(sizes[i + 1]) + sizes[i + 1];
    }
    Message graph = new Message();
    for (int i = 0; i < heads.size(); i++) {
      graph.raw(heads.get(i)).tag(fields.get(i)).varintValue(sizes[i + 1]);
    }
    graph.raw(leaf);
    byte[] graphBytes = graph.bytes();
    return model(graphBytes);
  }

  private static byte[] model(byte[] graph) {
    return new Message().varint(1, 8).string(2, "hostile-tests").bytes(7, graph)
        .bytes(8, new Message().varint(2, 17).bytes()).bytes();
  }

  private static byte[] tensorValue(String name, int width) {
    Message shape = new Message().bytes(1, new Message().string(2, "batch").bytes())
        .bytes(1, new Message().varint(1, width).bytes());
    Message tensorType = new Message().varint(1, FLOAT).bytes(2, shape.bytes());
    return new Message().string(1, name).bytes(2, new Message().bytes(1, tensorType.bytes()).bytes()).bytes();
  }

  private static int varintSize(long value) {
    int size = 1;
    for (long rest = value >>> 7; rest != 0; rest >>>= 7) {
      size++;
    }
    return size;
  }

  /** The protobuf wire format: varint and length-delimited fields. */
  private static final class Message {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    Message varint(int field, long value) {
      varintValue((long) field << 3);
      return varintValue(value);
    }

    Message string(int field, String value) {
      return bytes(field, value.getBytes(StandardCharsets.UTF_8));
    }

    Message bytes(int field, byte[] value) {
      tag(field).varintValue(value.length);
      return raw(value);
    }

    Message tag(int field) {
      return varintValue((long) field << 3 | 2);
    }

    Message raw(byte[] value) {
      out.write(value, 0, value.length);
      return this;
    }

    Message varintValue(long value) {
      long rest = value;
      while ((rest & ~0x7FL) != 0) {
        out.write((int) ((rest & 0x7F) | 0x80));
        rest >>>= 7;
      }
      out.write((int) rest);
      return this;
    }

    byte[] bytes() {
      return out.toByteArray();
    }
  }
}
