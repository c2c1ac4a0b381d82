package io.github.sparkinfer.device;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The external-data files an ONNX model references (tensors whose bytes live in files next to the
 * .onnx, as models over 2 GB must), read from the model's protobuf without building it: the wire
 * format is walked, weights stored inline are skipped, only the {@code location}, {@code offset} and
 * {@code length} of tensors with external data are read (initializers, sparse initializers and
 * Constant or subgraph attributes, in the main graph and every subgraph). Each location must be a
 * relative path that stays inside the model's folder once normalized: no scheme or other colon, no
 * leading '/', no backslash, no '*' (ONNX Runtime reads {@code *}{@code /_ORT_MEM_ADDR_/*} as "the
 * offset is a memory address"), no ".." that leaves the folder. Anything else is refused, naming the
 * tensor, before a data file is copied.
 *
 * <p>The file is hostile until read ({@link ProtobufReader}): messages may nest at most {@link
 * ProtobufReader#MAX_DEPTH} deep, ONNX Runtime's own limit (it parses with protobuf's default
 * recursion limit of 100 and never raises it), so a model ORT could load is never refused and a
 * deeper one is refused here, before a stack overflows; texts are bounded; every error of the walk
 * becomes a {@link ModelLoadException}. A file this walk cannot read as a protobuf has no data
 * files copied; ONNX Runtime, which reads only the local copy's folder, then says what is wrong
 * with it.
 */
final class ExternalData {
  // Stands for a value over MAX_TEXT_BYTES: the control character makes every check refuse it.
  private static final String TOO_LONG = "\u0000(over " + ProtobufReader.MAX_TEXT_BYTES + " bytes)";

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
  private static final int TENSOR_NAME = 8;
  private static final int TENSOR_EXTERNAL_DATA = 13;
  private static final int ENTRY_KEY = 1;
  private static final int ENTRY_VALUE = 2;

  private ExternalData() {}

  /**
   * The external-data files that {@code model} (a local .onnx file) references, each once, in the
   * order first met, with the byte ranges its tensors read from each.
   *
   * @throws ModelLoadException for a location that is not a relative path inside the model's folder,
   *     an offset or length that is not a non-negative number, or messages nested too deep
   */
  static List<DataFile> files(ModelSource source, Path model) {
    List<Reference> found = new ArrayList<>();
    try (FileChannel channel = FileChannel.open(model, StandardOpenOption.READ)) {
      if (channel.size() > Integer.MAX_VALUE) {
        throw ModelLoadException.of(source, "its .onnx file is " + channel.size() + " bytes, over the 2 GB a"
            + " protobuf can hold", "Save the model with its weights as external data (onnx.save(...,"
            + " save_as_external_data=True))", null);
      }
      ByteBuffer bytes = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size()).order(ByteOrder.LITTLE_ENDIAN);
      ProtobufReader reader = new ProtobufReader(bytes);
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
    } catch (ProtobufReader.TooDeep e) {
      throw ModelLoadException.of(source, "its protobuf nests messages more than " + ProtobufReader.MAX_DEPTH
          + " deep (subgraphs within subgraphs), past the limit ONNX Runtime parses", "Check where the file came from: no model"
          + " ONNX Runtime can load nests that deep", null);
    } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
      // Not a protobuf this walk can read: no data file is copied, and ONNX Runtime, which reads the
      // file next, reports what is wrong with it.
      return List.of();
    } catch (IOException e) {
      throw ModelLoadException.of(source, "reading its local copy " + model + " failed (" + e + ")",
          "Check the local cache folder (" + SchedulingProperties.CACHE_DIRECTORY + ")", e);
    } catch (Throwable e) {
      // Whatever a hostile file makes the walk throw (an Error included) fails this model, never the JVM.
      throw ModelLoadException.of(source, "reading its protobuf failed (" + e + ")",
          "Check that the file is a complete .onnx file", e);
    }
    Map<String, DataFile> files = new LinkedHashMap<>();
    for (Reference reference : found) {
      String location = checkLocation(source, reference);
      files.computeIfAbsent(location, DataFile::new).references.add(reference);
    }
    return List.copyOf(files.values());
  }

  /** One external-data file, as a relative path with '/' separators, and the tensors read from it. */
  static final class DataFile {
    private final String location;
    private final List<Reference> references = new ArrayList<>();

    private DataFile(String location) {
      this.location = location;
    }

    String location() {
      return location;
    }

    /**
     * Creates, inside the local {@code folder}, the folders each spelling of the location passes
     * through: ONNX Runtime opens the location as the model spells it, so {@code sub/../w.bin} needs
     * {@code sub} to exist. Spellings were checked to stay inside the folder.
     */
    void createFolders(Path folder) throws IOException {
      for (Reference reference : references) {
        String[] parts = reference.location.split("/");
        Path current = folder;
        for (int i = 0; i < parts.length - 1; i++) {
          if (parts[i].equals("..")) {
            current = current.getParent();
          } else if (!parts[i].isEmpty() && !parts[i].equals(".")) {
            current = current.resolve(parts[i]);
            PrivateFiles.createFolder(current);
          }
        }
      }
    }

    /**
     * Refuses a tensor whose bytes do not lie within the file's {@code fileLength} bytes.
     *
     * @throws ModelLoadException naming the model, the tensor, the location and the numbers
     */
    void checkRanges(ModelSource source, long fileLength) {
      for (Reference reference : references) {
        long offset = reference.number(source, "offset", reference.offset, 0);
        long length = reference.number(source, "length", reference.length, fileLength - Math.min(offset, fileLength));
        if (offset > fileLength || length > fileLength - offset) {
          throw ModelLoadException.of(source, "its tensor '" + reference.tensor + "' reads external data '"
              + reference.location + "' at offset " + offset + ", length " + length + ", past the end of that "
              + fileLength + "-byte file", "Save the model and its data files again, together", null);
        }
      }
    }
  }

  /** One tensor's external-data entries, as the file gives them. */
  private static final class Reference {
    private final String tensor;
    private final String location;
    private final String offset;
    private final String length;

    Reference(String tensor, String location, String offset, String length) {
      this.tensor = tensor == null ? "(unnamed)" : tensor;
      this.location = location;
      this.offset = offset;
      this.length = length;
    }

    /** A decimal entry as ORT reads it (a size_t), here a non-negative long; absent: {@code absent}. */
    long number(ModelSource source, String key, String text, long absent) {
      if (text == null) {
        return absent;
      }
      if (!text.matches("[0-9]{1,18}")) {
        throw ModelLoadException.of(source, "its tensor '" + tensor + "' gives external data '" + location + "' the "
            + key + " '" + shorten(text) + "', which is not a number from 0 to 999999999999999999",
            "Save the model with its data files again", null);
      }
      return Long.parseLong(text);
    }
  }

  /** A location inside the model's folder, as a relative path with '/' separators. */
  private static String checkLocation(ModelSource source, Reference reference) {
    String location = reference.location;
    String why = null;
    if (location.equals(TOO_LONG)) {
      why = "is over " + ProtobufReader.MAX_TEXT_BYTES + " bytes long";
    } else if (location.isEmpty()) {
      why = "is empty";
    } else if (location.indexOf(':') >= 0) {
      why = "has a colon (a URI scheme such as file: or hdfs:, or a drive letter)";
    } else if (location.indexOf('\\') >= 0) {
      why = "has a backslash";
    } else if (location.indexOf('*') >= 0) {
      why = "has a '*' (ONNX Runtime's in-memory marker)";
    } else if (location.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
      why = "has a control character";
    } else if (location.startsWith("/")) {
      why = "is absolute";
    }
    List<String> parts = new ArrayList<>();
    if (why == null) {
      for (String part : location.split("/")) {
        if (part.isEmpty() || part.equals(".")) {
          continue;
        }
        if (part.equals("..")) {
          if (parts.isEmpty()) {
            why = "leaves the model's folder";
            break;
          }
          parts.remove(parts.size() - 1);
        } else {
          parts.add(part);
        }
      }
      if (why == null && parts.isEmpty()) {
        why = "names the model's folder, not a file";
      }
    }
    if (why != null) {
      throw ModelLoadException.of(source, "its tensor '" + reference.tensor + "' references external data at '"
          + shorten(location) + "', which " + why + ": only a file inside the model's own folder may be referenced",
          "Save the model with its external data next to the .onnx file (relative locations such as weights.bin"
          + " or data/weights.bin)", null);
    }
    return String.join("/", parts);
  }

  private static String shorten(String text) {
    String printable = text.replaceAll("\\p{Cntrl}", "?");
    return printable.length() <= 200 ? printable : printable.substring(0, 200) + "...";
  }

  private static void graph(ProtobufReader graph, List<Reference> found) {
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

  private static void node(ProtobufReader node, List<Reference> found) {
    while (node.more()) {
      long key = node.varint();
      if ((int) (key >>> 3) == NODE_ATTRIBUTE && (key & 7) == 2) {
        attribute(node.message(), found);
      } else {
        node.skip(key);
      }
    }
  }

  private static void attribute(ProtobufReader attribute, List<Reference> found) {
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

  private static void sparseTensor(ProtobufReader sparse, List<Reference> found) {
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

  private static void tensor(ProtobufReader tensor, List<Reference> found) {
    String name = null;
    String location = null;
    String offset = null;
    String length = null;
    while (tensor.more()) {
      long key = tensor.varint();
      int field = (int) (key >>> 3);
      if (field == TENSOR_NAME && (key & 7) == 2) {
        name = tensor.text();
      } else if (field == TENSOR_EXTERNAL_DATA && (key & 7) == 2) {
        ProtobufReader entry = tensor.message();
        String entryKey = null;
        String value = null;
        while (entry.more()) {
          long entryField = entry.varint();
          if ((int) (entryField >>> 3) == ENTRY_KEY && (entryField & 7) == 2) {
            entryKey = entry.text();
          } else if ((int) (entryField >>> 3) == ENTRY_VALUE && (entryField & 7) == 2) {
            value = entry.text();
          } else {
            entry.skip(entryField);
          }
        }
        if ("location".equals(entryKey)) {
          location = value == null ? TOO_LONG : value;
        } else if ("offset".equals(entryKey)) {
          offset = value == null ? TOO_LONG : value;
        } else if ("length".equals(entryKey)) {
          length = value == null ? TOO_LONG : value;
        }
      } else {
        tensor.skip(key);
      }
    }
    if (location != null) {
      found.add(new Reference(name, location, offset, length));
    }
  }
}
