package io.github.sparkinfer.device;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The external-data files an ONNX model references (tensors whose bytes live in files next to the
 * .onnx, as models over 2 GB must), read from the model's protobuf without building it: the wire
 * format is walked, weights stored inline are skipped, only the {@code location} of tensors with
 * external data is read (initializers, sparse initializers and Constant or subgraph attributes, in
 * the main graph and every subgraph). Each location must be a relative path inside the model's
 * folder; anything else is refused before a data file is copied. A file this walk cannot read
 * as a protobuf has no data files copied; ONNX Runtime then says what is wrong with it.
 */
final class ExternalData {
  // Field numbers from onnx.proto.
  private static final int MODEL_GRAPH = 7;
  private static final int GRAPH_NODE = 1;
  private static final int GRAPH_INITIALIZER = 5;
  private static final int GRAPH_SPARSE_INITIALIZER = 15;
  private static final int NODE_ATTRIBUTE = 5;
  private static final int ATTRIBUTE_TENSOR = 5;
  private static final int ATTRIBUTE_GRAPH = 6;
  private static final int ATTRIBUTE_TENSORS = 10;
  private static final int ATTRIBUTE_GRAPHS = 11;
  private static final int ATTRIBUTE_SPARSE_TENSOR = 22;
  private static final int ATTRIBUTE_SPARSE_TENSORS = 23;
  private static final int SPARSE_VALUES = 1;
  private static final int SPARSE_INDICES = 2;
  private static final int TENSOR_EXTERNAL_DATA = 13;
  private static final int ENTRY_KEY = 1;
  private static final int ENTRY_VALUE = 2;

  private ExternalData() {}

  /**
   * The relative locations of the external-data files that {@code model} (a local .onnx file)
   * references, each once, in the order first met.
   *
   * @throws ModelLoadException for a location that is absolute or leaves the model's folder, or a
   *     file that is not an ONNX model's protobuf
   */
  static List<String> locations(ModelSource source, Path model) {
    Set<String> found = new LinkedHashSet<>();
    try (FileChannel channel = FileChannel.open(model, StandardOpenOption.READ)) {
      if (channel.size() > Integer.MAX_VALUE) {
        throw ModelLoadException.of(source, "its .onnx file is " + channel.size() + " bytes, over the 2 GB a"
            + " protobuf can hold", "Save the model with its weights as external data (onnx.save(...,"
            + " save_as_external_data=True))", null);
      }
      ByteBuffer bytes = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size()).order(ByteOrder.LITTLE_ENDIAN);
      Reader reader = new Reader(bytes, 0, bytes.limit());
      while (reader.more()) {
        long key = reader.varint();
        if ((int) (key >>> 3) == MODEL_GRAPH && (key & 7) == 2) {
          graph(reader.message(), found);
        } else {
          reader.skip(key);
        }
      }
    } catch (ModelLoadException e) {
      throw e;
    } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
      // Not a protobuf this walk can read: no data file is copied, and ONNX Runtime, which reads the
      // file next, reports what is wrong with it (and refuses external data outside its folder itself).
      return List.of();
    } catch (IOException e) {
      throw ModelLoadException.of(source, "reading its local copy " + model + " failed (" + e + ")",
          "Check the local cache folder (" + SchedulingProperties.CACHE_DIRECTORY + ")", e);
    }
    List<String> checked = new ArrayList<>();
    for (String location : found) {
      checked.add(checkLocation(source, location));
    }
    return checked;
  }

  /** A location inside the model's folder, as a relative path with '/' separators. */
  private static String checkLocation(ModelSource source, String location) {
    String normalized = location.replace('\\', '/');
    boolean absolute = normalized.startsWith("/") || normalized.matches("^[A-Za-z]:.*") || normalized.contains("://");
    List<String> parts = new ArrayList<>();
    for (String part : normalized.split("/")) {
      if (part.isEmpty() || part.equals(".")) {
        continue;
      }
      if (part.equals("..")) {
        if (parts.isEmpty()) {
          absolute = true;
          break;
        }
        parts.remove(parts.size() - 1);
      } else {
        parts.add(part);
      }
    }
    if (absolute || parts.isEmpty()) {
      throw ModelLoadException.of(source, "it references external data at '" + location + "', which is not a file"
          + " inside the model's own folder", "Save the model with its external data next to the .onnx file"
          + " (relative locations such as weights.bin or data/weights.bin)", null);
    }
    return String.join("/", parts);
  }

  private static void graph(Reader graph, Set<String> found) {
    while (graph.more()) {
      long key = graph.varint();
      int field = (int) (key >>> 3);
      if ((key & 7) != 2) {
        graph.skip(key);
      } else if (field == GRAPH_INITIALIZER) {
        tensor(graph.message(), found);
      } else if (field == GRAPH_SPARSE_INITIALIZER) {
        sparseTensor(graph.message(), found);
      } else if (field == GRAPH_NODE) {
        node(graph.message(), found);
      } else {
        graph.skip(key);
      }
    }
  }

  private static void node(Reader node, Set<String> found) {
    while (node.more()) {
      long key = node.varint();
      if ((int) (key >>> 3) == NODE_ATTRIBUTE && (key & 7) == 2) {
        attribute(node.message(), found);
      } else {
        node.skip(key);
      }
    }
  }

  private static void attribute(Reader attribute, Set<String> found) {
    while (attribute.more()) {
      long key = attribute.varint();
      int field = (int) (key >>> 3);
      if ((key & 7) != 2) {
        attribute.skip(key);
      } else if (field == ATTRIBUTE_TENSOR || field == ATTRIBUTE_TENSORS) {
        tensor(attribute.message(), found);
      } else if (field == ATTRIBUTE_SPARSE_TENSOR || field == ATTRIBUTE_SPARSE_TENSORS) {
        sparseTensor(attribute.message(), found);
      } else if (field == ATTRIBUTE_GRAPH || field == ATTRIBUTE_GRAPHS) {
        graph(attribute.message(), found);
      } else {
        attribute.skip(key);
      }
    }
  }

  private static void sparseTensor(Reader sparse, Set<String> found) {
    while (sparse.more()) {
      long key = sparse.varint();
      int field = (int) (key >>> 3);
      if ((key & 7) == 2 && (field == SPARSE_VALUES || field == SPARSE_INDICES)) {
        tensor(sparse.message(), found);
      } else {
        sparse.skip(key);
      }
    }
  }

  private static void tensor(Reader tensor, Set<String> found) {
    while (tensor.more()) {
      long key = tensor.varint();
      if ((int) (key >>> 3) == TENSOR_EXTERNAL_DATA && (key & 7) == 2) {
        Reader entry = tensor.message();
        String entryKey = null;
        String value = null;
        while (entry.more()) {
          long entryField = entry.varint();
          if ((int) (entryField >>> 3) == ENTRY_KEY && (entryField & 7) == 2) {
            entryKey = entry.string();
          } else if ((int) (entryField >>> 3) == ENTRY_VALUE && (entryField & 7) == 2) {
            value = entry.string();
          } else {
            entry.skip(entryField);
          }
        }
        if ("location".equals(entryKey) && value != null) {
          found.add(value);
        }
      } else {
        tensor.skip(key);
      }
    }
  }

  /** A window [position, end) of the mapped file, read as protobuf fields. */
  private static final class Reader {
    private final ByteBuffer bytes;
    private int position;
    private final int end;

    Reader(ByteBuffer bytes, int position, int end) {
      this.bytes = bytes;
      this.position = position;
      this.end = end;
    }

    boolean more() {
      return position < end;
    }

    long varint() {
      long value = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        if (position >= end) {
          throw new IllegalArgumentException("truncated varint at byte " + position);
        }
        byte b = bytes.get(position++);
        value |= (long) (b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
          return value;
        }
      }
      throw new IllegalArgumentException("varint too long at byte " + position);
    }

    Reader message() {
      int length = length();
      Reader inner = new Reader(bytes, position, position + length);
      position += length;
      return inner;
    }

    String string() {
      int length = length();
      byte[] text = new byte[length];
      bytes.get(position, text);
      position += length;
      return new String(text, StandardCharsets.UTF_8);
    }

    private int length() {
      long length = varint();
      if (length < 0 || length > end - position) {
        throw new IllegalArgumentException("field of " + length + " bytes at byte " + position + " runs past its message");
      }
      return (int) length;
    }

    void skip(long key) {
      switch ((int) (key & 7)) {
        case 0:
          varint();
          break;
        case 1:
          position += 8;
          break;
        case 2:
          int length = length();  // read first: it moves past the length's own bytes
          position += length;
          break;
        case 5:
          position += 4;
          break;
        default:
          throw new IllegalArgumentException("wire type " + (key & 7) + " at byte " + position);
      }
      if (position > end) {
        throw new IllegalArgumentException("field runs past its message at byte " + position);
      }
    }
  }
}
