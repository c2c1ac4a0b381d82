package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Builds a small ONNX model in Java, for tests, examples and benchmarks.
 *
 * <pre>{@code
 * byte[] model = OnnxModelBuilder.create("double")
 *     .input("x", OnnxElementType.FLOAT, "batch", 4)
 *     .initializer("two", new float[] {2f})
 *     .node("Mul", List.of("x", "two"), List.of("y"))
 *     .output("y", OnnxElementType.FLOAT, "batch", 4)
 *     .toBytes();
 * }</pre>
 *
 * <p>Nodes are added in execution order. {@link #build()} checks that every value is defined once
 * before it is used; operator semantics are left to ONNX Runtime. Not thread-safe.
 */
public final class OnnxModelBuilder {
  /** IR 10 (ONNX 1.16): the newest the bundled ONNX schema knows, and one ORT 1.29 reads. */
  public static final int DEFAULT_IR_VERSION = 10;

  public static final int DEFAULT_OPSET = 17;
  public static final String DEFAULT_PRODUCER_NAME = "sparkinfer";

  private final String graphName;
  private long irVersion = DEFAULT_IR_VERSION;
  private String producerName = DEFAULT_PRODUCER_NAME;
  // The default ONNX domain is "", as in the protobuf.
  private final Map<String, Long> opsets = new LinkedHashMap<>(Map.of("", (long) DEFAULT_OPSET));
  private final Map<String, String> metadata = new LinkedHashMap<>();
  private final List<TensorDeclaration> inputs = new ArrayList<>();
  private final List<TensorDeclaration> outputs = new ArrayList<>();
  private final List<TensorProto> initializers = new ArrayList<>();
  private final List<NodeProto> nodes = new ArrayList<>();

  private OnnxModelBuilder(String graphName) {
    this.graphName = graphName;
  }

  public static OnnxModelBuilder create(String graphName) {
    return new OnnxModelBuilder(requireName(graphName, "graphName"));
  }

  /** The version of the default ONNX operator set ({@value #DEFAULT_OPSET} unless set). */
  public OnnxModelBuilder opset(int version) {
    return opset("", version);
  }

  /** The version of another domain's operator set, such as {@code "com.microsoft"}. */
  public OnnxModelBuilder opset(String domain, int version) {
    Objects.requireNonNull(domain, "domain");
    if (version < 1) {
      throw new IllegalArgumentException("Opset version must be >= 1: " + version);
    }
    opsets.put(domain, (long) version);
    return this;
  }

  public OnnxModelBuilder irVersion(int version) {
    if (version < 3) {
      // IR 3 introduced opset imports, which every model here has.
      throw new IllegalArgumentException("IR version must be >= 3: " + version);
    }
    this.irVersion = version;
    return this;
  }

  public OnnxModelBuilder producerName(String name) {
    this.producerName = Objects.requireNonNull(name, "name");
    return this;
  }

  public OnnxModelBuilder metadata(String key, String value) {
    metadata.put(requireName(key, "key"), Objects.requireNonNull(value, "value"));
    return this;
  }

  /**
   * A graph input. Each dimension is an {@link Integer} or {@link Long} fixed size, a {@link
   * String} symbolic name such as {@code "batch"}, or a {@link Dimension}; none makes a scalar.
   */
  public OnnxModelBuilder input(String name, OnnxElementType elementType, Object... dimensions) {
    inputs.add(declaration(name, elementType, dimensions));
    return this;
  }

  /** A graph output; dimensions as for {@link #input}. */
  public OnnxModelBuilder output(String name, OnnxElementType elementType, Object... dimensions) {
    outputs.add(declaration(name, elementType, dimensions));
    return this;
  }

  /** A constant tensor; no dimensions makes a scalar, which holds one value. */
  public OnnxModelBuilder initializer(String name, float[] values, long... dimensions) {
    initializers.add(OnnxProtos.tensor(requireName(name, "name"), values, dimensions));
    return this;
  }

  public OnnxModelBuilder initializer(String name, double[] values, long... dimensions) {
    initializers.add(OnnxProtos.tensor(requireName(name, "name"), values, dimensions));
    return this;
  }

  /** An INT64 constant tensor, the type ONNX uses for shapes, axes and indices. */
  public OnnxModelBuilder initializer(String name, long[] values, long... dimensions) {
    initializers.add(OnnxProtos.tensor(requireName(name, "name"), values, dimensions));
    return this;
  }

  public OnnxModelBuilder initializer(String name, int[] values, long... dimensions) {
    initializers.add(OnnxProtos.tensor(requireName(name, "name"), values, dimensions));
    return this;
  }

  /**
   * A node of the default ONNX domain. An empty input name skips an optional input, as in ONNX.
   * The node is named {@code <opType>_<index>}.
   */
  public OnnxModelBuilder node(
      String opType, List<String> inputs, List<String> outputs, Attribute... attributes) {
    requireName(opType, "opType");
    if (outputs.isEmpty()) {
      throw new IllegalArgumentException(opType + " node needs at least one output");
    }
    NodeProto.Builder node =
        NodeProto.newBuilder()
            .setOpType(opType)
            .setName(opType + "_" + nodes.size())
            .addAllInput(inputs)
            .addAllOutput(outputs);
    for (Attribute attribute : attributes) {
      node.addAttribute(attribute.proto());
    }
    nodes.add(node.build());
    return this;
  }

  /**
   * @throws IllegalStateException when a value is used before it is defined, defined twice, or an
   *     output is never produced
   */
  public OnnxModel build() {
    checkGraph();
    GraphProto.Builder graph =
        GraphProto.newBuilder()
            .setName(graphName)
            .addAllNode(nodes)
            .addAllInitializer(initializers);
    inputs.forEach(input -> graph.addInput(OnnxProtos.valueInfo(input)));
    outputs.forEach(output -> graph.addOutput(OnnxProtos.valueInfo(output)));
    ModelProto.Builder model =
        ModelProto.newBuilder()
            .setIrVersion(irVersion)
            .setProducerName(producerName)
            .setGraph(graph);
    opsets.forEach(
        (domain, version) ->
            model.addOpsetImport(
                OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(version)));
    metadata.forEach(
        (key, value) ->
            model.addMetadataProps(
                StringStringEntryProto.newBuilder().setKey(key).setValue(value)));
    return new OnnxModel(model.build());
  }

  /** The serialized model: {@code build().toBytes()}. */
  public byte[] toBytes() {
    return build().toBytes();
  }

  public void writeTo(Path path) throws IOException {
    build().writeTo(path);
  }

  private void checkGraph() {
    if (outputs.isEmpty()) {
      throw new IllegalStateException("Graph " + graphName + " has no outputs");
    }
    Set<String> defined = new HashSet<>();
    inputs.forEach(input -> define(defined, input.name(), "graph input"));
    initializers.forEach(initializer -> define(defined, initializer.getName(), "initializer"));
    for (NodeProto node : nodes) {
      for (String input : node.getInputList()) {
        if (!input.isEmpty() && !defined.contains(input)) {
          throw new IllegalStateException(
              "Node " + node.getName() + " uses " + input + " before anything defines it");
        }
      }
      for (String output : node.getOutputList()) {
        define(defined, output, "output of node " + node.getName());
      }
    }
    Set<String> outputNames = new HashSet<>();
    for (TensorDeclaration output : outputs) {
      if (!defined.contains(output.name())) {
        throw new IllegalStateException("Graph output " + output.name() + " is never produced");
      }
      if (!outputNames.add(output.name())) {
        throw new IllegalStateException("Graph output " + output.name() + " is declared twice");
      }
    }
  }

  private static void define(Set<String> defined, String name, String what) {
    if (name.isEmpty()) {
      throw new IllegalStateException("A " + what + " has an empty name");
    }
    if (!defined.add(name)) {
      throw new IllegalStateException("Value " + name + " is defined twice, last as " + what);
    }
  }

  private static TensorDeclaration declaration(
      String name, OnnxElementType elementType, Object[] dimensions) {
    List<Dimension> shape = new ArrayList<>(dimensions.length);
    Arrays.stream(dimensions).map(Dimension::from).forEach(shape::add);
    return new TensorDeclaration(
        requireName(name, "name"), Objects.requireNonNull(elementType, "elementType"), shape, true);
  }

  private static String requireName(String name, String what) {
    Objects.requireNonNull(name, what);
    if (name.isEmpty()) {
      throw new IllegalArgumentException(what + " must not be empty");
    }
    return name;
  }
}
