package io.github.sparkinfer.spark.fuzz;

import io.github.sparkinfer.spark.fuzz.ProtoTree.Field;
import io.github.sparkinfer.spark.fuzz.ProtoTree.Message;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Mutants of a valid ONNX model, as ONNX's and ORT's fuzzers make them: initializer dims and types,
 * raw data, external-data entries, subgraphs nested deep, opsets, duplicate names, value types, and
 * bytes flipped, cut or given huge lengths. Each mutant is a function of (seed model, random), so a
 * seed and an input index reproduce it.
 */
final class ModelMutations {
  // Field numbers from onnx.proto.
  private static final int MODEL_IR_VERSION = 1;
  private static final int MODEL_GRAPH = 7;
  private static final int MODEL_OPSET = 8;
  private static final int GRAPH_NODE = 1;
  private static final int GRAPH_INITIALIZER = 5;
  private static final int GRAPH_INPUT = 11;
  private static final int NODE_INPUT = 1;
  private static final int NODE_OUTPUT = 2;
  private static final int NODE_OP_TYPE = 4;
  private static final int NODE_ATTRIBUTE = 5;
  private static final int ATTRIBUTE_NAME = 1;
  private static final int ATTRIBUTE_GRAPH = 6;
  private static final int ATTRIBUTE_GRAPHS = 11;
  private static final int ATTRIBUTE_TYPE = 20;
  private static final int TENSOR_DIMS = 1;
  private static final int TENSOR_DATA_TYPE = 2;
  private static final int TENSOR_FLOAT_DATA = 4;
  private static final int TENSOR_NAME = 8;
  private static final int TENSOR_RAW_DATA = 9;
  private static final int TENSOR_EXTERNAL_DATA = 13;
  private static final int TENSOR_DATA_LOCATION = 14;
  private static final int TENSOR_TYPE_ELEM_TYPE = 1;
  private static final int DIM_VALUE = 1;
  private static final int OPSET_DOMAIN = 1;
  private static final int OPSET_VERSION = 2;

  /** A file outside every mutant's folder, that escaping external-data locations point at. */
  static final String CANARY = "canary.bin";

  private static final long[] BAD_SIZES = {
      -1, -2, Long.MIN_VALUE, 0, 1L << 31, (1L << 32) + 1, 1L << 40, 1L << 62, Long.MAX_VALUE, Integer.MAX_VALUE};
  private static final long[] BAD_TYPES = {0, -1, 8, 16, 17, 21, 23, 25, 26, 100, Integer.MAX_VALUE, 1L << 40, 11, 7, 10};

  /** A mutant: the .onnx bytes, data files for its folder, and whether loading it would read outside that folder. */
  static final class Mutant {
    byte[] model;
    final Map<String, byte[]> files = new LinkedHashMap<>();
    final List<String> steps = new ArrayList<>();
    boolean escapes;

    String description() {
      return String.join("; ", steps);
    }
  }

  private final byte[] seedModel;
  private final Path canary;

  /** {@code canary}: the absolute path of {@link #CANARY}, which escaping locations name. */
  ModelMutations(byte[] seedModel, Path canary) {
    this.seedModel = seedModel;
    this.canary = canary;
  }

  Mutant mutate(SplittableRandom random) {
    Mutant mutant = new Mutant();
    Message model = ProtoTree.parse(seedModel);
    if (random.nextInt(4) == 0) {
      externalize(model, random, mutant, "weights.bin", false);
      mutant.steps.add("valid external data");
    }
    int structural = random.nextInt(4);
    for (int i = 0; i < structural; i++) {
      structural(model, random, mutant);
    }
    mutant.model = model.toBytes();
    if (structural == 0 || random.nextInt(4) == 0) {
      mutant.model = bytewise(mutant.model, random, mutant);
    }
    return mutant;
  }

  private void structural(Message model, SplittableRandom random, Mutant mutant) {
    Message graph = model.first(MODEL_GRAPH).message;
    List<Message> initializers = initializers(graph);
    Message tensor = initializers.get(random.nextInt(initializers.size()));
    switch (random.nextInt(10)) {
      case 0: {
        List<Field> dims = tensor.all(TENSOR_DIMS);
        long size = BAD_SIZES[random.nextInt(BAD_SIZES.length)];
        if (dims.isEmpty() || random.nextInt(4) == 0) {
          tensor.add(Field.varint(TENSOR_DIMS, size));
          mutant.steps.add("dim " + size + " added");
        } else {
          dims.get(random.nextInt(dims.size())).value = size;
          mutant.steps.add("dim set to " + size);
        }
        break;
      }
      case 1: {
        long type = BAD_TYPES[random.nextInt(BAD_TYPES.length)];
        tensor.removeAll(TENSOR_DATA_TYPE);
        tensor.add(Field.varint(TENSOR_DATA_TYPE, type));
        mutant.steps.add("data_type " + type);
        break;
      }
      case 2:
        rawData(tensor, random, mutant);
        break;
      case 3:
        externalize(model, random, mutant, hostileLocation(random, mutant), true);
        break;
      case 4:
        nest(graph, random, mutant);
        break;
      case 5: {
        Field opset = model.first(MODEL_OPSET);
        long version = new long[] {0, -1, 1, 6, 10_000, Long.MAX_VALUE}[random.nextInt(6)];
        if (random.nextBoolean()) {
          opset.message.removeAll(OPSET_VERSION);
          opset.message.add(Field.varint(OPSET_VERSION, version));
          mutant.steps.add("opset version " + version);
        } else if (random.nextBoolean()) {
          opset.message.add(Field.string(OPSET_DOMAIN, "ai.bogus"));
          mutant.steps.add("opset domain ai.bogus");
        } else {
          model.removeAll(MODEL_IR_VERSION);
          model.add(Field.varint(MODEL_IR_VERSION, version));
          mutant.steps.add("ir_version " + version);
        }
        break;
      }
      case 6:
        if (random.nextBoolean()) {
          graph.add(Field.message(GRAPH_INITIALIZER, tensor.copy()));
          mutant.steps.add("duplicate initializer");
        } else {
          Message node = randomOf(graph.all(GRAPH_NODE), random).message;
          Field output = node.first(NODE_OUTPUT);
          output.bytes = graph.first(GRAPH_INPUT).message.first(1).bytes.clone();
          mutant.steps.add("node output renamed to the graph input");
        }
        break;
      case 7: {
        Message node = randomOf(graph.all(GRAPH_NODE), random).message;
        if (random.nextBoolean()) {
          node.first(NODE_OP_TYPE).bytes = "NoSuchOp".getBytes(StandardCharsets.UTF_8);
          mutant.steps.add("op_type NoSuchOp");
        } else {
          node.first(NODE_INPUT).bytes = "missing".getBytes(StandardCharsets.UTF_8);
          mutant.steps.add("node input missing");
        }
        break;
      }
      case 8: {
        Message tensorType = graph.first(GRAPH_INPUT).message.find(ProtoTree.TENSOR_TYPE).get(0);
        if (random.nextBoolean()) {
          long type = BAD_TYPES[random.nextInt(BAD_TYPES.length)];
          tensorType.removeAll(TENSOR_TYPE_ELEM_TYPE);
          tensorType.add(Field.varint(TENSOR_TYPE_ELEM_TYPE, type));
          mutant.steps.add("input elem_type " + type);
        } else {
          long size = BAD_SIZES[random.nextInt(BAD_SIZES.length)];
          Message dim = randomOf(tensorType.find(ProtoTree.DIM), random);
          dim.fields.clear();
          dim.add(Field.varint(DIM_VALUE, size));
          mutant.steps.add("input dim " + size);
        }
        break;
      }
      default: {
        // A field whose declared length is not its payload's: what a reader must bound.
        List<Message> all = new ArrayList<>(model.find(ProtoTree.TENSOR));
        all.addAll(model.find(ProtoTree.NODE));
        Message target = randomOf(all, random);
        Field field = randomOf(target.fields, random);
        if (field.wireType == 2) {
          long length = BAD_SIZES[random.nextInt(BAD_SIZES.length)];
          byte[] payload = field.message != null ? field.message.toBytes() : field.bytes;
          field.message = null;
          field.bytes = hugeLengthPrefix(payload, length);
          mutant.steps.add("field " + field.number + " of a " + target.type + " given a nested length " + length);
        } else {
          field.value = random.nextLong();
          mutant.steps.add("field " + field.number + " of a " + target.type + " set to a random value");
        }
      }
    }
  }

  private static void rawData(Message tensor, SplittableRandom random, Mutant mutant) {
    Field raw = tensor.first(TENSOR_RAW_DATA);
    if (raw == null || raw.bytes == null) {
      tensor.add(Field.bytes(TENSOR_RAW_DATA, new byte[random.nextInt(64)]));
      mutant.steps.add("raw_data added beside the external data");
      return;
    }
    switch (random.nextInt(4)) {
      case 0:
        raw.bytes = java.util.Arrays.copyOf(raw.bytes, random.nextInt(raw.bytes.length + 1));
        mutant.steps.add("raw_data cut to " + raw.bytes.length + " bytes");
        break;
      case 1:
        raw.bytes = java.util.Arrays.copyOf(raw.bytes, raw.bytes.length + 1 + random.nextInt(64));
        mutant.steps.add("raw_data grown to " + raw.bytes.length + " bytes");
        break;
      case 2:
        tensor.removeAll(TENSOR_RAW_DATA);
        mutant.steps.add("raw_data removed");
        break;
      default:
        tensor.add(Field.bytes(TENSOR_FLOAT_DATA, new byte[] {0, 0, (byte) 0x80, 0x3F}));
        mutant.steps.add("float_data beside raw_data");
    }
  }

  /** Moves a random initializer's bytes to external data at {@code location}, written to the folder when inside it. */
  private void externalize(Message model, SplittableRandom random, Mutant mutant, String location, boolean hostile) {
    List<Message> initializers = initializers(model.first(MODEL_GRAPH).message);
    Message tensor = initializers.get(random.nextInt(initializers.size()));
    Field raw = tensor.first(TENSOR_RAW_DATA);
    byte[] data = raw == null || raw.bytes == null ? new byte[4] : raw.bytes;
    tensor.removeAll(TENSOR_RAW_DATA);
    tensor.removeAll(TENSOR_EXTERNAL_DATA);
    tensor.removeAll(TENSOR_DATA_LOCATION);
    String offset = "0";
    String length = String.valueOf(data.length);
    if (hostile && random.nextInt(3) == 0) {
      String[] bad = {"-1", "9223372036854775807", "4294967296", "abc", "1e3", "", "0x10", "99999999999999999999"};
      if (random.nextBoolean()) {
        offset = bad[random.nextInt(bad.length)];
      } else {
        length = bad[random.nextInt(bad.length)];
      }
      mutant.steps.add("external offset " + offset + " length " + length);
    }
    tensor.add(entry("location", location)).add(entry("offset", offset)).add(entry("length", length));
    if (hostile && random.nextInt(5) == 0) {
      tensor.add(entry("location", "second.bin"));
      mutant.steps.add("two locations");
    }
    tensor.add(Field.varint(TENSOR_DATA_LOCATION, 1));
    if (location.equals("weights.bin") || location.equals("data/w.bin") || (hostile && random.nextBoolean())) {
      mutant.files.put(location.equals("data/w.bin") ? location : "weights.bin", data);
    }
    // The canary has the initializer's length: a load that reads it would succeed.
    mutant.files.put("../" + CANARY, data);
  }

  private String hostileLocation(SplittableRandom random, Mutant mutant) {
    String secret = canary.toString();
    String[] escaping = {
        "file:" + secret, "file://" + secret, "file:///" + secret.substring(1), secret, "../" + CANARY,
        "data/../../" + CANARY, "./../" + CANARY, "file:../" + CANARY, "hdfs:/" + CANARY, "viewfs:/" + CANARY,
        "har:///x.har/" + CANARY, "C:" + CANARY, "\\..\\" + CANARY, "data/../../../../../../../../.." + secret};
    String[] other = {
        "weights.bin", "data/w.bin", "missing.bin", "", ".", "data/", "weights.bin\u0000.txt", "%2e%2e/" + CANARY,
        "~/" + CANARY, "x".repeat(5000), "weights.bin:stream", "http://127.0.0.1:9/x", "s3a://bucket/x"};
    boolean escape = random.nextInt(2) == 0;
    String location = escape ? escaping[random.nextInt(escaping.length)] : other[random.nextInt(other.length)];
    mutant.escapes |= escape;
    mutant.steps.add("external location '" + (location.length() > 60 ? location.substring(0, 20) + "...(" + location.length() + " chars)" : location) + "'");
    return location;
  }

  /**
   * A node whose If-like graph attribute nests {@code depth} graphs. Each level's inner graph is the
   * last field of its attribute, node and graph, so every level is a prefix: the lengths are worked
   * out from the inside, the prefixes written from the outside, in time linear in the depth.
   */
  private void nest(Message graph, SplittableRandom random, Mutant mutant) {
    int depth = new int[] {5, 100, 1_000, 5_000, 20_000, 60_000}[random.nextInt(6)];
    boolean many = random.nextBoolean();
    boolean dataAtTheBottom = random.nextInt(3) == 0;
    Message innermost = new Message(ProtoTree.GRAPH);
    if (dataAtTheBottom) {
      Message tensor = new Message(ProtoTree.TENSOR).add(Field.varint(TENSOR_DIMS, 1)).add(Field.varint(TENSOR_DATA_TYPE, 1))
          .add(Field.string(TENSOR_NAME, "deep")).add(entry("location", "../" + CANARY)).add(entry("offset", "0"))
          .add(entry("length", "4")).add(Field.varint(TENSOR_DATA_LOCATION, 1));
      innermost.add(Field.message(GRAPH_INITIALIZER, tensor));
      mutant.escapes = true;
      mutant.files.put("../" + CANARY, new byte[4]);
    }
    byte[] bottom = innermost.toBytes();
    int graphField = many ? ATTRIBUTE_GRAPHS : ATTRIBUTE_GRAPH;
    byte[] attributeHead = new Message(ProtoTree.ATTRIBUTE).add(Field.string(ATTRIBUTE_NAME, "then_branch"))
        .add(Field.varint(ATTRIBUTE_TYPE, many ? 10 : 5)).toBytes();
    byte[][] nodeHeads = new byte[depth][];
    long[] graphLengths = new long[depth + 1];
    long[] nodeLengths = new long[depth];
    long[] attributeLengths = new long[depth];
    graphLengths[0] = bottom.length;
    for (int level = 0; level < depth; level++) {
      nodeHeads[level] = new Message(ProtoTree.NODE).add(Field.string(NODE_INPUT, "cond"))
          .add(Field.string(NODE_OUTPUT, "o" + level)).add(Field.string(NODE_OP_TYPE, "If")).toBytes();
      attributeLengths[level] = attributeHead.length + field(graphField, graphLengths[level]);
      nodeLengths[level] = nodeHeads[level].length + field(NODE_ATTRIBUTE, attributeLengths[level]);
      graphLengths[level + 1] = field(GRAPH_NODE, nodeLengths[level]);
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int level = depth - 1; level >= 0; level--) {
      head(out, GRAPH_NODE, nodeLengths[level]);
      out.write(nodeHeads[level], 0, nodeHeads[level].length);
      head(out, NODE_ATTRIBUTE, attributeLengths[level]);
      out.write(attributeHead, 0, attributeHead.length);
      head(out, graphField, graphLengths[level]);
    }
    out.write(bottom, 0, bottom.length);
    Message attribute = new Message(ProtoTree.ATTRIBUTE).add(Field.string(ATTRIBUTE_NAME, "then_branch"))
        .add(Field.bytes(ATTRIBUTE_GRAPH, out.toByteArray())).add(Field.varint(ATTRIBUTE_TYPE, 5));
    Message node = new Message(ProtoTree.NODE).add(Field.string(NODE_INPUT, "cond")).add(Field.string(NODE_OUTPUT, "nested"))
        .add(Field.string(NODE_OP_TYPE, "If")).add(Field.message(NODE_ATTRIBUTE, attribute));
    graph.add(Field.message(GRAPH_NODE, node));
    mutant.steps.add("subgraphs nested " + depth + " deep" + (many ? " (graphs)" : "") + (dataAtTheBottom ? " with escaping data at the bottom" : ""));
  }

  /** The bytes of a length-delimited field with a payload of {@code length} bytes. */
  private static long field(int number, long length) {
    return varintLength((long) number << 3 | 2) + varintLength(length) + length;
  }

  private static void head(ByteArrayOutputStream out, int number, long length) {
    ProtoTree.writeVarint(out, (long) number << 3 | 2);
    ProtoTree.writeVarint(out, length);
  }

  private static int varintLength(long value) {
    int length = 1;
    for (long remaining = value >>> 7; remaining != 0; remaining >>>= 7) {
      length++;
    }
    return length;
  }

  private static byte[] bytewise(byte[] model, SplittableRandom random, Mutant mutant) {
    byte[] bytes = model.clone();
    switch (random.nextInt(4)) {
      case 0: {
        int flips = 1 + random.nextInt(8);
        for (int i = 0; i < flips; i++) {
          bytes[random.nextInt(bytes.length)] ^= (byte) (1 << random.nextInt(8));
        }
        mutant.steps.add(flips + " bits flipped");
        return bytes;
      }
      case 1: {
        int length = random.nextInt(bytes.length);
        mutant.steps.add("cut to " + length + " bytes");
        return java.util.Arrays.copyOf(bytes, length);
      }
      case 2: {
        // A varint of ten 0xFF-ish bytes at a random place: lengths and values far out of range.
        int at = random.nextInt(bytes.length);
        for (int i = 0; i < 10 && at + i < bytes.length; i++) {
          bytes[at + i] = (byte) (i == 9 ? 0x01 : 0xFF);
        }
        mutant.steps.add("huge varint at byte " + at);
        return bytes;
      }
      default: {
        int at = random.nextInt(bytes.length);
        int length = Math.min(bytes.length - at, 1 + random.nextInt(32));
        byte[] grown = new byte[bytes.length + length];
        System.arraycopy(bytes, 0, grown, 0, at + length);
        System.arraycopy(bytes, at, grown, at + length, bytes.length - at);
        mutant.steps.add(length + " bytes repeated at byte " + at);
        return grown;
      }
    }
  }

  /** {@code payload} as a nested length-delimited field (number 1) that claims {@code length} bytes. */
  private static byte[] hugeLengthPrefix(byte[] payload, long length) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ProtoTree.writeVarint(out, (1L << 3) | 2);
    ProtoTree.writeVarint(out, length);
    out.write(payload, 0, payload.length);
    return out.toByteArray();
  }

  private static Field entry(String key, String value) {
    return Field.message(TENSOR_EXTERNAL_DATA, new Message(ProtoTree.ENTRY).add(Field.string(1, key)).add(Field.string(2, value)));
  }

  private static List<Message> initializers(Message graph) {
    List<Message> found = new ArrayList<>();
    for (Field field : graph.all(GRAPH_INITIALIZER)) {
      found.add(field.message);
    }
    return found;
  }

  private static <T> T randomOf(List<T> items, SplittableRandom random) {
    return items.get(random.nextInt(items.size()));
  }
}
