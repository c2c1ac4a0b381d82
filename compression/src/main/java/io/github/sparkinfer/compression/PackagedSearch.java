package io.github.sparkinfer.compression;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.WireFormat;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * A model whose graph already holds ONNX Runtime's decode loop: a {@code com.microsoft} GreedySearch,
 * Sampling or BeamSearch node with the decoder as its subgraph (what
 * {@code onnxruntime.transformers.convert_generation} writes, or {@link GenerationGraph}). Read as a
 * stream, as {@link OnnxModel#operatorTypes(Path)} reads node types: the node's type, its end and
 * padding token attributes and the vocabulary of its decoder's logits; the weights are skipped, so a
 * model of any size costs the driver almost no heap. The file is hostile: protobuf's recursion limit
 * bounds nesting, and whatever reading it throws comes out as an IOException.
 */
public final class PackagedSearch implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The operators that run a whole decode loop. */
  public static final Set<String> OPERATORS = Set.of("GreedySearch", "Sampling", "BeamSearch");

  // Field numbers of onnx.proto.
  private static final int MODEL_GRAPH = 7;
  private static final int GRAPH_NODE = 1;
  private static final int GRAPH_OUTPUT = 12;
  private static final int NODE_OP_TYPE = 4;
  private static final int NODE_ATTRIBUTE = 5;
  private static final int NODE_DOMAIN = 7;
  private static final int ATTRIBUTE_NAME = 1;
  private static final int ATTRIBUTE_INT = 3;
  private static final int ATTRIBUTE_GRAPH = 6;
  private static final int VALUE_INFO_NAME = 1;
  private static final int VALUE_INFO_TYPE = 2;
  private static final int TYPE_TENSOR = 1;
  private static final int TENSOR_SHAPE = 2;
  private static final int SHAPE_DIM = 1;
  private static final int DIM_VALUE = 1;

  private final String operator;
  private final long eosTokenId;
  private final long padTokenId;
  private final long vocabularySize;

  private PackagedSearch(String operator, long eosTokenId, long padTokenId, long vocabularySize) {
    this.operator = operator;
    this.eosTokenId = eosTokenId;
    this.padTokenId = padTokenId;
    this.vocabularySize = vocabularySize;
  }

  /** GreedySearch, Sampling or BeamSearch. */
  public String operator() {
    return operator;
  }

  /** The node's eos_token_id attribute; -1 when absent. */
  public long eosTokenId() {
    return eosTokenId;
  }

  /** The node's pad_token_id attribute; -1 when absent. */
  public long padTokenId() {
    return padTokenId;
  }

  /** The third dimension of the decoder's logits output; -1 when not fixed. */
  public long vocabularySize() {
    return vocabularySize;
  }

  /**
   * The first top-level node of {@code path}'s graph that is a {@code com.microsoft} GreedySearch,
   * Sampling or BeamSearch, or null when there is none.
   *
   * @throws IOException when the file cannot be read or is not an ONNX model protobuf
   */
  public static PackagedSearch read(Path path) throws IOException {
    try (InputStream file = Files.newInputStream(path)) {
      CodedInputStream in = CodedInputStream.newInstance(new java.io.BufferedInputStream(file, 1 << 16));
      for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
        if (!OnnxModel.isMessage(tag, MODEL_GRAPH)) {
          in.skipField(tag);
          continue;
        }
        int limit = in.pushLimit(in.readRawVarint32());
        PackagedSearch found = null;
        for (int graphTag = in.readTag(); graphTag != 0; graphTag = in.readTag()) {
          if (found == null && OnnxModel.isMessage(graphTag, GRAPH_NODE)) {
            int nodeLimit = in.pushLimit(in.readRawVarint32());
            found = node(in);
            in.popLimit(nodeLimit);
          } else {
            in.skipField(graphTag);
          }
        }
        in.popLimit(limit);
        return found;
      }
      return null;
    } catch (InvalidProtocolBufferException e) {
      throw new IOException("Not an ONNX model protobuf: " + path + ": " + e.getMessage(), e);
    } catch (IOException e) {
      throw e;
    } catch (Throwable e) {
      throw new IOException("Cannot read " + path + " as an ONNX model protobuf: " + e, e);
    }
  }

  /** One node: a packaged search when its type says so (attributes read on the way), else null. */
  private static PackagedSearch node(CodedInputStream in) throws IOException {
    String type = "";
    String domain = "";
    long eos = -1;
    long pad = -1;
    long vocabulary = -1;
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      if (OnnxModel.isMessage(tag, NODE_OP_TYPE)) {
        type = in.readStringRequireUtf8();
      } else if (OnnxModel.isMessage(tag, NODE_DOMAIN)) {
        domain = in.readStringRequireUtf8();
      } else if (OnnxModel.isMessage(tag, NODE_ATTRIBUTE)) {
        int limit = in.pushLimit(in.readRawVarint32());
        String name = "";
        long value = -1;
        long logits = -1;
        for (int field = in.readTag(); field != 0; field = in.readTag()) {
          if (OnnxModel.isMessage(field, ATTRIBUTE_NAME)) {
            name = in.readStringRequireUtf8();
          } else if (WireFormat.getTagFieldNumber(field) == ATTRIBUTE_INT
              && WireFormat.getTagWireType(field) == WireFormat.WIRETYPE_VARINT) {
            value = in.readInt64();
          } else if (OnnxModel.isMessage(field, ATTRIBUTE_GRAPH)) {
            int graphLimit = in.pushLimit(in.readRawVarint32());
            logits = logitsVocabulary(in);
            in.popLimit(graphLimit);
          } else {
            in.skipField(field);
          }
        }
        in.popLimit(limit);
        if (name.equals("eos_token_id")) {
          eos = value;
        } else if (name.equals("pad_token_id")) {
          pad = value;
        } else if (name.equals("decoder")) {
          vocabulary = logits;
        }
      } else {
        in.skipField(tag);
      }
    }
    boolean microsoft = domain.equals("com.microsoft");
    return microsoft && OPERATORS.contains(type) ? new PackagedSearch(type, eos, pad, vocabulary) : null;
  }

  /** The fixed third dimension of a subgraph's output named logits, or -1. */
  private static long logitsVocabulary(CodedInputStream in) throws IOException {
    long vocabulary = -1;
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      if (!OnnxModel.isMessage(tag, GRAPH_OUTPUT)) {
        in.skipField(tag);
        continue;
      }
      int limit = in.pushLimit(in.readRawVarint32());
      String name = "";
      long third = -1;
      for (int field = in.readTag(); field != 0; field = in.readTag()) {
        if (OnnxModel.isMessage(field, VALUE_INFO_NAME)) {
          name = in.readStringRequireUtf8();
        } else if (OnnxModel.isMessage(field, VALUE_INFO_TYPE)) {
          third = nested(in, new int[] {TYPE_TENSOR, TENSOR_SHAPE}, 2);
        } else {
          in.skipField(field);
        }
      }
      in.popLimit(limit);
      if (name.equals("logits")) {
        vocabulary = third;
      }
    }
    return vocabulary;
  }

  /** Inside a TypeProto: follows {@code path} to a shape and returns dimension {@code index}'s fixed value, or -1. */
  private static long nested(CodedInputStream in, int[] path, int index) throws IOException {
    int outer = in.pushLimit(in.readRawVarint32());
    long value = -1;
    int dimension = 0;
    int depth = 0;
    int[] limits = new int[path.length];
    for (int tag = in.readTag(); tag != 0 || depth > 0; tag = in.readTag()) {
      if (tag == 0) {
        in.popLimit(limits[--depth]);
        continue;
      }
      if (depth < path.length && OnnxModel.isMessage(tag, path[depth])) {
        limits[depth++] = in.pushLimit(in.readRawVarint32());
      } else if (depth == path.length && OnnxModel.isMessage(tag, SHAPE_DIM)) {
        int dimLimit = in.pushLimit(in.readRawVarint32());
        for (int field = in.readTag(); field != 0; field = in.readTag()) {
          if (WireFormat.getTagFieldNumber(field) == DIM_VALUE && WireFormat.getTagWireType(field) == WireFormat.WIRETYPE_VARINT
              && dimension == index) {
            value = in.readInt64();
          } else {
            in.skipField(field);
          }
        }
        in.popLimit(dimLimit);
        dimension++;
      } else {
        in.skipField(tag);
      }
    }
    in.popLimit(outer);
    return value;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof PackagedSearch)) {
      return false;
    }
    PackagedSearch that = (PackagedSearch) other;
    return operator.equals(that.operator) && eosTokenId == that.eosTokenId && padTokenId == that.padTokenId
        && vocabularySize == that.vocabularySize;
  }

  @Override
  public int hashCode() {
    return java.util.Objects.hash(operator, eosTokenId, padTokenId, vocabularySize);
  }

  @Override
  public String toString() {
    return "com.microsoft:" + operator + " (eos " + eosTokenId + ", pad " + padTokenId + ", vocabulary " + vocabularySize + ")";
  }
}
