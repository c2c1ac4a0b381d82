package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Splits an ONNX model into K consecutive stages for pipeline model parallelism: each stage is a
 * valid ONNX model of a run of the graph's nodes in topological order, cut so that the heaviest
 * stage's weight bytes are within 10 % of the fewest they can be and the stages are as even as that
 * allows (by node count when the model has no weights). Every
 * node and every initializer is in exactly one stage: an initializer belongs to the stage of its
 * first consumer, and a later stage that also reads it gets it from that stage as a cut tensor (an
 * Identity there). A stage's inputs are the original inputs it reads and the cut tensors of earlier
 * stages; its outputs are the values later stages read and the original outputs it makes. Initializers
 * stored as external data keep their references, so each stage reads only its own weights from the
 * same data files: write the stages next to the original's data files. Compute is not estimated
 * (shapes are not inferred here): balance is by weights.
 */
public final class PipelineSplit {
  /** Suffix of the cut tensor by which a later stage reads an initializer of an earlier one. */
  static final String PASSED_SUFFIX = ":sparkinfer_stage_pass";

  private final List<Stage> stages;

  private PipelineSplit(List<Stage> stages) {
    this.stages = List.copyOf(stages);
  }

  /** One stage: its model, the values it reads and makes, and its weight bytes. Immutable. */
  public static final class Stage {
    private final OnnxModel model;
    private final List<String> inputs;
    private final List<String> outputs;
    private final long weightBytes;
    private final int nodes;

    Stage(OnnxModel model, List<String> inputs, List<String> outputs, long weightBytes, int nodes) {
      this.model = model;
      this.inputs = List.copyOf(inputs);
      this.outputs = List.copyOf(outputs);
      this.weightBytes = weightBytes;
      this.nodes = nodes;
    }

    public OnnxModel model() {
      return model;
    }

    /** Original inputs and earlier stages' outputs it reads, in its graph's input order. */
    public List<String> inputs() {
      return inputs;
    }

    /** Values later stages read and original outputs it makes. */
    public List<String> outputs() {
      return outputs;
    }

    public long weightBytes() {
      return weightBytes;
    }

    public int nodeCount() {
      return nodes;
    }

    @Override
    public String toString() {
      return nodes + " nodes, " + weightBytes + " weight bytes, inputs " + inputs + ", outputs " + outputs;
    }
  }

  public List<Stage> stages() {
    return stages;
  }

  /**
   * @throws IllegalArgumentException when {@code count} is below 1 or above the node count, or the
   *     graph has a cycle or reads a value nothing defines
   */
  public static PipelineSplit of(OnnxModel model, int count) {
    Objects.requireNonNull(model, "model");
    GraphProto graph = model.proto().getGraph();
    if (count < 1 || count > graph.getNodeCount()) {
      throw new IllegalArgumentException("Cannot split a graph of " + graph.getNodeCount() + " nodes into " + count
          + " stages: the stage count must be from 1 to the node count");
    }
    Map<String, TensorProto> initializers = new HashMap<>();
    for (TensorProto tensor : graph.getInitializerList()) {
      initializers.put(tensor.getName(), tensor);
    }
    Set<String> graphInputs = new HashSet<>();
    graph.getInputList().forEach(input -> graphInputs.add(input.getName()));
    List<NodeProto> nodes = topologicalOrder(graph, initializers.keySet(), graphInputs);

    // Weight of each node: the initializers it is the first to read.
    long[] weights = new long[nodes.size()];
    Map<String, Integer> firstReader = new HashMap<>();
    for (int i = 0; i < nodes.size(); i++) {
      for (String name : reads(nodes.get(i))) {
        if (initializers.containsKey(name) && firstReader.putIfAbsent(name, i) == null) {
          weights[i] += bytes(initializers.get(name));
        }
      }
    }
    int[] stageOf = StageCuts.assign(weights, count);

    Map<String, Integer> producer = new HashMap<>();
    for (int i = 0; i < nodes.size(); i++) {
      for (String output : nodes.get(i).getOutputList()) {
        if (!output.isEmpty()) {
          producer.put(output, stageOf[i]);
        }
      }
    }
    Map<String, Integer> types = ElementTypes.ofGraph(graph);
    Map<String, ValueInfoProto> declared = new HashMap<>();
    graph.getInputList().forEach(info -> declared.put(info.getName(), info));
    graph.getValueInfoList().forEach(info -> declared.put(info.getName(), info));
    graph.getOutputList().forEach(info -> declared.put(info.getName(), info));
    Set<String> graphOutputs = new LinkedHashSet<>();
    graph.getOutputList().forEach(output -> graphOutputs.add(output.getName()));

    // What each stage reads from outside itself, and which of those come from earlier stages.
    List<Set<String>> stageReads = new ArrayList<>();
    for (int s = 0; s < count; s++) {
      stageReads.add(new LinkedHashSet<>());
    }
    for (int i = 0; i < nodes.size(); i++) {
      for (String name : reads(nodes.get(i))) {
        Integer from = producer.get(name);
        boolean ownInitializer = initializers.containsKey(name) && stageOf[firstReader.get(name)] == stageOf[i];
        if (!ownInitializer && (from == null || from != stageOf[i])) {
          stageReads.get(stageOf[i]).add(name);
        }
      }
    }
    List<Stage> stages = new ArrayList<>();
    for (int s = 0; s < count; s++) {
      List<NodeProto> stageNodes = new ArrayList<>();
      long stageWeight = 0;
      for (int i = 0; i < nodes.size(); i++) {
        if (stageOf[i] == s) {
          stageNodes.add(nodes.get(i));
          stageWeight += weights[i];
        }
      }
      // Values made here (or initializers owned here) that later stages read.
      List<String> outputs = new ArrayList<>();
      for (int later = s + 1; later < count; later++) {
        for (String name : stageReads.get(later)) {
          boolean madeHere = Objects.equals(producer.get(name), s);
          boolean ownedHere = initializers.containsKey(name) && stageOf[firstReader.get(name)] == s;
          String published = ownedHere ? name + PASSED_SUFFIX : name;
          if ((madeHere || ownedHere) && !outputs.contains(published)) {
            outputs.add(published);
          }
        }
      }
      for (String name : graphOutputs) {
        if (Objects.equals(producer.get(name), s) && !outputs.contains(name)) {
          outputs.add(name);
        }
      }
      GraphProto.Builder stageGraph = GraphProto.newBuilder().setName(graph.getName() + "_stage" + s)
          .setDocString("Stage " + (s + 1) + " of " + count + " (sparkinfer PipelineSplit)");
      List<String> inputs = new ArrayList<>();
      for (String name : stageReads.get(s)) {
        if (graphInputs.contains(name)) {
          inputs.add(name);
          stageGraph.addInput(declared.get(name));
        } else if (initializers.containsKey(name)) {
          // An earlier stage's initializer: read under its passed name.
          inputs.add(name + PASSED_SUFFIX);
          stageGraph.addInput(valueInfo(name + PASSED_SUFFIX, initializers.get(name).getDataType(), null));
        } else {
          inputs.add(name);
          stageGraph.addInput(valueInfo(name, types.getOrDefault(name, 0), declared.get(name)));
        }
      }
      for (NodeProto node : stageNodes) {
        stageGraph.addNode(renamePassed(node, stageReads.get(s), initializers.keySet()));
      }
      for (String output : outputs) {
        if (output.endsWith(PASSED_SUFFIX)) {
          String original = output.substring(0, output.length() - PASSED_SUFFIX.length());
          stageGraph.addNode(NodeProto.newBuilder().setOpType("Identity").setName("sparkinfer_pass_" + original)
              .addInput(original).addOutput(output));
          stageGraph.addOutput(valueInfo(output, initializers.get(original).getDataType(), null));
        } else {
          stageGraph.addOutput(graphOutputs.contains(output) ? declared.get(output)
              : valueInfo(output, types.getOrDefault(output, 0), declared.get(output)));
        }
      }
      for (TensorProto tensor : graph.getInitializerList()) {
        Integer reader = firstReader.get(tensor.getName());
        if (reader != null && stageOf[reader] == s) {
          stageGraph.addInitializer(tensor);
        }
      }
      Set<String> local = new HashSet<>();
      stageNodes.forEach(node -> local.addAll(node.getOutputList()));
      for (ValueInfoProto info : graph.getValueInfoList()) {
        if (local.contains(info.getName()) && !outputs.contains(info.getName())) {
          stageGraph.addValueInfo(info);
        }
      }
      ModelProto stageModel = model.proto().toBuilder().setGraph(stageGraph).build();
      stages.add(new Stage(new OnnxModel(stageModel), inputs, outputs, stageWeight, stageNodes.size()));
    }
    return new PipelineSplit(stages);
  }

  /** The node with inputs that are an earlier stage's initializers renamed to their passed names. */
  private static NodeProto renamePassed(NodeProto node, Set<String> stageReads, Set<String> initializers) {
    boolean any = false;
    NodeProto.Builder renamed = node.toBuilder();
    for (int i = 0; i < node.getInputCount(); i++) {
      String name = node.getInput(i);
      if (initializers.contains(name) && stageReads.contains(name)) {
        renamed.setInput(i, name + PASSED_SUFFIX);
        any = true;
      }
    }
    if (hasSubgraph(node) && !Collections.disjoint(reads(node), stageReads)) {
      for (String name : reads(node)) {
        if (initializers.contains(name) && stageReads.contains(name) && !node.getInputList().contains(name)) {
          throw new IllegalArgumentException("Cannot split at node '" + node.getName() + "': its subgraph reads"
              + " initializer '" + name + "' of an earlier stage; use fewer stages");
        }
      }
    }
    return any ? renamed.build() : node;
  }

  private static ValueInfoProto valueInfo(String name, int elementType, ValueInfoProto declared) {
    if (declared != null && declared.getType().hasTensorType()) {
      return declared.toBuilder().setName(name).build();
    }
    if (elementType == 0) {
      throw new IllegalArgumentException("Cannot split at value '" + name + "': its element type is not declared"
          + " and cannot be inferred here");
    }
    return ValueInfoProto.newBuilder().setName(name)
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(elementType)))
        .build();
  }

  /** The values a node reads: its inputs and the outer values its subgraphs read. */
  private static Set<String> reads(NodeProto node) {
    Set<String> names = new LinkedHashSet<>();
    for (String input : node.getInputList()) {
      if (!input.isEmpty()) {
        names.add(input);
      }
    }
    for (AttributeProto attribute : node.getAttributeList()) {
      if (attribute.hasG()) {
        names.addAll(outerReads(attribute.getG()));
      }
      for (GraphProto graph : attribute.getGraphsList()) {
        names.addAll(outerReads(graph));
      }
    }
    return names;
  }

  private static Set<String> outerReads(GraphProto graph) {
    Set<String> defined = new HashSet<>();
    graph.getInputList().forEach(input -> defined.add(input.getName()));
    graph.getInitializerList().forEach(tensor -> defined.add(tensor.getName()));
    Set<String> outer = new LinkedHashSet<>();
    for (NodeProto node : graph.getNodeList()) {
      for (String name : reads(node)) {
        if (!defined.contains(name)) {
          outer.add(name);
        }
      }
      defined.addAll(node.getOutputList());
    }
    graph.getOutputList().forEach(output -> {
      if (!defined.contains(output.getName())) {
        outer.add(output.getName());
      }
    });
    return outer;
  }

  private static boolean hasSubgraph(NodeProto node) {
    return node.getAttributeList().stream().anyMatch(attribute -> attribute.hasG() || attribute.getGraphsCount() > 0);
  }

  /** The nodes in an order where each reads only what is defined before it (Kahn, stable). */
  private static List<NodeProto> topologicalOrder(GraphProto graph, Set<String> initializers, Set<String> inputs) {
    List<NodeProto> nodes = graph.getNodeList();
    Map<String, Integer> producer = new HashMap<>();
    for (int i = 0; i < nodes.size(); i++) {
      for (String output : nodes.get(i).getOutputList()) {
        if (!output.isEmpty()) {
          producer.put(output, i);
        }
      }
    }
    int[] waiting = new int[nodes.size()];
    List<List<Integer>> readers = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      readers.add(new ArrayList<>());
    }
    for (int i = 0; i < nodes.size(); i++) {
      for (String name : reads(nodes.get(i))) {
        Integer from = producer.get(name);
        if (from != null && from != i) {
          waiting[i]++;
          readers.get(from).add(i);
        } else if (from == null && !initializers.contains(name) && !inputs.contains(name)) {
          throw new IllegalArgumentException("Node '" + nodes.get(i).getName() + "' reads '" + name
              + "', which no node, input or initializer defines");
        }
      }
    }
    java.util.PriorityQueue<Integer> ready = new java.util.PriorityQueue<>();
    for (int i = 0; i < nodes.size(); i++) {
      if (waiting[i] == 0) {
        ready.add(i);
      }
    }
    List<NodeProto> order = new ArrayList<>();
    while (!ready.isEmpty()) {
      int next = ready.poll();
      order.add(nodes.get(next));
      for (int reader : readers.get(next)) {
        if (--waiting[reader] == 0) {
          ready.add(reader);
        }
      }
    }
    if (order.size() != nodes.size()) {
      throw new IllegalArgumentException("The graph has a cycle: " + (nodes.size() - order.size())
          + " nodes never have their inputs");
    }
    return order;
  }

  private static long bytes(TensorProto tensor) {
    int type = tensor.getDataType();
    long bits;
    switch (OnnxElementType.fromOnnxNumber(type)) {
      case DOUBLE: case INT64: case UINT64: case COMPLEX64: bits = 64; break;
      case COMPLEX128: bits = 128; break;
      case FLOAT: case INT32: case UINT32: bits = 32; break;
      case FLOAT16: case BFLOAT16: case INT16: case UINT16: bits = 16; break;
      case UINT4: case INT4: bits = 4; break;
      default: bits = 8;
    }
    return (Tensors.elementCount(tensor) * bits + 7) / 8;
  }
}
