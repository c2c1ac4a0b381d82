package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.SparseTensorProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.InvalidProtocolBufferException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * An ONNX model held as its protobuf, immutable. Parsing then writing keeps everything, fields
 * this code never looks at included (fields of newer ONNX versions survive as unknown fields), so
 * rewrites change only what they mean to. Tensors stored as external data stay references to their
 * files: they are neither read nor moved.
 */
public final class OnnxModel {
  private final ModelProto proto;

  OnnxModel(ModelProto proto) {
    this.proto = Objects.requireNonNull(proto, "proto");
  }

  /**
   * @throws IllegalArgumentException when the bytes are not an ONNX model protobuf
   */
  public static OnnxModel parse(byte[] bytes) {
    try {
      return new OnnxModel(ModelProto.parseFrom(bytes));
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalArgumentException("Not an ONNX model protobuf: " + e.getMessage(), e);
    }
  }

  /**
   * @throws IOException when the file cannot be read or is not an ONNX model protobuf
   */
  public static OnnxModel read(Path path) throws IOException {
    // Whole file at once: a protobuf is limited to 2 GiB; larger models keep weights outside.
    long size = Files.size(path);
    if (size > Integer.MAX_VALUE - 8) {
      throw new IOException(path + " is " + size + " bytes, over the 2 GB a protobuf can hold: save the model with"
          + " its weights as external data");
    }
    try {
      return new OnnxModel(ModelProto.parseFrom(Files.readAllBytes(path)));
    } catch (StackOverflowError | OutOfMemoryError e) {
      throw new IOException("Cannot read " + path + " as an ONNX model protobuf: " + e, e);
    }
  }

  public byte[] toBytes() {
    return proto.toByteArray();
  }

  public void writeTo(Path path) throws IOException {
    try (OutputStream out = Files.newOutputStream(path)) {
      proto.writeTo(out);
    }
  }

  public long irVersion() {
    return proto.getIrVersion();
  }

  public String producerName() {
    return proto.getProducerName();
  }

  public String graphName() {
    return proto.getGraph().getName();
  }

  /** Operator set versions by domain, in model order; the default ONNX domain is {@code ""}. */
  public Map<String, Long> opsetImports() {
    Map<String, Long> opsets = new LinkedHashMap<>();
    for (OperatorSetIdProto opset : proto.getOpsetImportList()) {
      opsets.put(opset.getDomain(), opset.getVersion());
    }
    return Collections.unmodifiableMap(opsets);
  }

  /** Metadata properties, in model order. */
  public Map<String, String> metadata() {
    Map<String, String> metadata = new LinkedHashMap<>();
    proto.getMetadataPropsList().forEach(entry -> metadata.put(entry.getKey(), entry.getValue()));
    return Collections.unmodifiableMap(metadata);
  }

  /**
   * The inputs a caller feeds, as ORT lists them: graph inputs that are also initializers (allowed
   * since IR 4, as overridable defaults) are left out.
   *
   * @throws IllegalStateException when an input is not a tensor (a sequence or map)
   */
  public List<TensorDeclaration> inputs() {
    GraphProto graph = proto.getGraph();
    Set<String> initializers = new HashSet<>();
    for (TensorProto initializer : graph.getInitializerList()) {
      initializers.add(initializer.getName());
    }
    for (SparseTensorProto initializer : graph.getSparseInitializerList()) {
      initializers.add(initializer.getValues().getName());
    }
    List<TensorDeclaration> inputs = new ArrayList<>();
    for (ValueInfoProto input : graph.getInputList()) {
      if (!initializers.contains(input.getName())) {
        inputs.add(OnnxProtos.declaration(input));
      }
    }
    return List.copyOf(inputs);
  }

  /** Operator types of the main graph's nodes, as "domain:type" or just "type" for ONNX's own. */
  public Set<String> operatorTypes() {
    Set<String> types = new java.util.TreeSet<>();
    for (ai.onnx.proto.OnnxMl.NodeProto node : proto.getGraph().getNodeList()) {
      types.add(operatorType(node.getDomain(), node.getOpType()));
    }
    return Collections.unmodifiableSet(types);
  }

  private static String operatorType(String domain, String type) {
    return domain.isEmpty() || domain.equals("ai.onnx") ? type : domain + ":" + type;
  }

  // Field numbers of onnx.proto: ModelProto.graph, GraphProto.node, NodeProto.op_type and .domain.
  private static final int MODEL_GRAPH = 7;
  private static final int GRAPH_NODE = 1;
  private static final int NODE_OP_TYPE = 4;
  private static final int NODE_DOMAIN = 7;

  /**
   * {@link #operatorTypes()} of the model in {@code path}, read as a stream: only the nodes' types
   * are kept, everything else (the weights above all) is skipped, so a model of any size needs
   * almost no heap. The file is hostile: nesting is bounded by protobuf's recursion limit (100, as
   * ONNX Runtime parses), and whatever else reading it throws (a StackOverflowError or an
   * OutOfMemoryError from a hostile length included) comes out as an IOException, never an Error.
   *
   * @throws IOException when the file cannot be read or is not an ONNX model protobuf
   */
  public static Set<String> operatorTypes(Path path) throws IOException {
    try {
      return readOperatorTypes(path);
    } catch (IOException e) {
      throw e;
    } catch (Throwable e) {
      throw new IOException("Cannot read " + path + " as an ONNX model protobuf: " + e, e);
    }
  }

  private static Set<String> readOperatorTypes(Path path) throws IOException {
    Set<String> types = new java.util.TreeSet<>();
    try (java.io.InputStream file = Files.newInputStream(path)) {
      com.google.protobuf.CodedInputStream in =
          com.google.protobuf.CodedInputStream.newInstance(new java.io.BufferedInputStream(file, 1 << 16));
      for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
        if (isMessage(tag, MODEL_GRAPH)) {
          int limit = in.pushLimit(in.readRawVarint32());
          for (int graphTag = in.readTag(); graphTag != 0; graphTag = in.readTag()) {
            if (isMessage(graphTag, GRAPH_NODE)) {
              int nodeLimit = in.pushLimit(in.readRawVarint32());
              types.add(nodeType(in));
              in.popLimit(nodeLimit);
            } else {
              in.skipField(graphTag);
            }
          }
          in.popLimit(limit);
        } else {
          in.skipField(tag);
        }
      }
    } catch (InvalidProtocolBufferException e) {
      throw new IOException("Not an ONNX model protobuf: " + path + ": " + e.getMessage(), e);
    }
    return Collections.unmodifiableSet(types);
  }

  private static String nodeType(com.google.protobuf.CodedInputStream in) throws IOException {
    String type = "";
    String domain = "";
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      if (isMessage(tag, NODE_OP_TYPE)) {
        type = in.readStringRequireUtf8();
      } else if (isMessage(tag, NODE_DOMAIN)) {
        domain = in.readStringRequireUtf8();
      } else {
        in.skipField(tag);
      }
    }
    return operatorType(domain, type);
  }

  /** Whether {@code tag} is field {@code field} with a length-delimited value (message or string). */
  static boolean isMessage(int tag, int field) {
    return com.google.protobuf.WireFormat.getTagFieldNumber(tag) == field
        && com.google.protobuf.WireFormat.getTagWireType(tag) == com.google.protobuf.WireFormat.WIRETYPE_LENGTH_DELIMITED;
  }

  /**
   * @throws IllegalStateException when an output is not a tensor (a sequence or map)
   */
  public List<TensorDeclaration> outputs() {
    List<TensorDeclaration> outputs = new ArrayList<>();
    for (ValueInfoProto output : proto.getGraph().getOutputList()) {
      outputs.add(OnnxProtos.declaration(output));
    }
    return List.copyOf(outputs);
  }

  ModelProto proto() {
    return proto;
  }

  /** Equal when the protobufs are, unknown fields included. */
  @Override
  public boolean equals(Object other) {
    return other instanceof OnnxModel && ((OnnxModel) other).proto.equals(proto);
  }

  @Override
  public int hashCode() {
    return proto.hashCode();
  }

  @Override
  public String toString() {
    return "OnnxModel{graph="
        + graphName()
        + ", irVersion="
        + irVersion()
        + ", opsets="
        + opsetImports()
        + ", nodes="
        + proto.getGraph().getNodeCount()
        + ", initializers="
        + proto.getGraph().getInitializerCount()
        + "}";
  }
}
