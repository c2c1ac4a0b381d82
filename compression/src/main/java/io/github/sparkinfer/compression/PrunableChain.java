package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A linear → elementwise → linear chain that {@link StructuredPruner} can prune: its weights, their
 * layouts, the hidden size and the values inside it, found from the chain's first node.
 */
final class PrunableChain {
  private static final Set<String> ELEMENTWISE = Set.of("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "Erf",
      "Elu", "Selu", "Softplus", "HardSigmoid", "HardSwish", "Div", "Mul", "Add", "Sub", "Pow", "Sqrt", "Identity");

  // Set while matching; fixed once match returns the chain.
  String w1;
  String b1;
  String w2;
  boolean w1HiddenFirst;
  boolean w2HiddenFirst;
  int hidden;
  /** The value the second linear reads: the hidden units' activations. */
  String activations;
  final Set<String> values = new LinkedHashSet<>();

  private PrunableChain() {}

  /** Every chain of {@code graph}, in the order of their first nodes. */
  static List<PrunableChain> all(GraphProto graph) {
    Map<String, TensorProto> initializers = new java.util.HashMap<>();
    graph.getInitializerList().forEach(tensor -> initializers.put(tensor.getName(), tensor));
    Map<String, List<Integer>> readers = new java.util.HashMap<>();
    Map<String, NodeProto> producers = new java.util.HashMap<>();
    for (int i = 0; i < graph.getNodeCount(); i++) {
      for (String input : graph.getNode(i).getInputList()) {
        readers.computeIfAbsent(input, ignored -> new ArrayList<>()).add(i);
      }
      for (String output : graph.getNode(i).getOutputList()) {
        producers.put(output, graph.getNode(i));
      }
    }
    Set<String> graphOutputs = new java.util.HashSet<>();
    graph.getOutputList().forEach(output -> graphOutputs.add(output.getName()));
    List<PrunableChain> chains = new ArrayList<>();
    for (int first = 0; first < graph.getNodeCount(); first++) {
      PrunableChain chain = match(graph, first, initializers, readers, producers, graphOutputs);
      if (chain != null) {
        chains.add(chain);
      }
    }
    return chains;
  }

  /** The chain that starts at node {@code firstIndex}, or null when none does there. */
  static PrunableChain match(GraphProto graph, int firstIndex, Map<String, TensorProto> initializers,
      Map<String, List<Integer>> readers, Map<String, NodeProto> producers, Set<String> graphOutputs) {
    NodeProto first = graph.getNode(firstIndex);
    PrunableChain chain = new PrunableChain();
    List<Integer> chainNodes = new ArrayList<>();
    chainNodes.add(firstIndex);
    String flowing;
    if (first.getOpType().equals("Gemm") && first.getDomain().isEmpty() && intAttribute(first, "transA", 0) == 0
        && first.getInputCount() >= 2 && isFloatMatrix(initializers.get(first.getInput(1)))) {
      TensorProto w1 = initializers.get(first.getInput(1));
      boolean transB = intAttribute(first, "transB", 0) == 1;
      chain.w1 = w1.getName();
      chain.w1HiddenFirst = transB;
      chain.hidden = (int) (transB ? w1.getDims(0) : w1.getDims(1));
      if (first.getInputCount() > 2 && !first.getInput(2).isEmpty()) {
        TensorProto bias = initializers.get(first.getInput(2));
        if (!isFloatVector(bias, chain.hidden) || intAttribute(first, "beta", 1) != 1) {
          return null;
        }
        chain.b1 = bias.getName();
      }
      flowing = first.getOutput(0);
    } else if (first.getOpType().equals("MatMul") && first.getDomain().isEmpty()
        && isFloatMatrix(initializers.get(first.getInput(1)))) {
      TensorProto w1 = initializers.get(first.getInput(1));
      chain.w1 = w1.getName();
      chain.w1HiddenFirst = false;
      chain.hidden = (int) w1.getDims(1);
      flowing = first.getOutput(0);
      Integer add = onlyReader(readers, flowing, graphOutputs);
      if (add != null && graph.getNode(add).getOpType().equals("Add")) {
        NodeProto addNode = graph.getNode(add);
        String other = addNode.getInput(0).equals(flowing) ? addNode.getInput(1) : addNode.getInput(0);
        if (isFloatVector(initializers.get(other), chain.hidden)) {
          chain.b1 = other;
          chain.values.add(flowing);
          chainNodes.add(add);
          flowing = addNode.getOutput(0);
        }
      }
    } else {
      return null;
    }
    // The elementwise region: every reader of a value in it is elementwise with scalar other
    // inputs, until one value is read by the second linear.
    Set<String> region = new LinkedHashSet<>();
    region.add(flowing);
    java.util.ArrayDeque<String> frontier = new java.util.ArrayDeque<>();
    frontier.push(flowing);
    Integer second = null;
    String secondInput = null;
    while (!frontier.isEmpty()) {
      String value = frontier.pop();
      if (graphOutputs.contains(value)) {
        return null;
      }
      for (int reader : readers.getOrDefault(value, List.of())) {
        NodeProto node = graph.getNode(reader);
        if ((node.getOpType().equals("MatMul") || node.getOpType().equals("Gemm")) && node.getInput(0).equals(value)
            && node.getDomain().isEmpty()) {
          if (second != null && second != reader) {
            return null;
          }
          second = reader;
          secondInput = value;
          continue;
        }
        if (!ELEMENTWISE.contains(node.getOpType()) || !node.getDomain().isEmpty() || node.getOutputCount() != 1) {
          return null;
        }
        if (!chainNodes.contains(reader)) {
          chainNodes.add(reader);
        }
        if (region.add(node.getOutput(0))) {
          frontier.push(node.getOutput(0));
        }
      }
    }
    if (second == null || !allReadersIn(region, secondInput, readers, chainNodes, second)) {
      return null;
    }
    // Each elementwise node reads only the region's values and scalars (GELU's Mul reads two of them).
    for (int node : chainNodes) {
      if (node == firstIndex) {
        continue;
      }
      for (String input : graph.getNode(node).getInputList()) {
        if (!region.contains(input) && !chain.values.contains(input) && !isScalar(initializers.get(input))
            && !isScalarConstant(producers, input) && !input.equals(chain.b1)) {
          return null;
        }
      }
    }
    NodeProto secondNode = graph.getNode(second);
    TensorProto w2 = initializers.get(secondNode.getInput(1));
    if (!isFloatMatrix(w2)) {
      return null;
    }
    if (secondNode.getOpType().equals("Gemm")) {
      if (intAttribute(secondNode, "transA", 0) != 0) {
        return null;
      }
      chain.w2HiddenFirst = intAttribute(secondNode, "transB", 0) == 0;
    } else {
      chain.w2HiddenFirst = true;
    }
    long w2Hidden = chain.w2HiddenFirst ? w2.getDims(0) : w2.getDims(1);
    if (w2Hidden != chain.hidden) {
      return null;
    }
    chain.w2 = w2.getName();
    chain.activations = secondInput;
    chainNodes.add(second);
    // The weights must belong to this chain alone, and no node may be in two chains.
    for (String weight : new String[] {chain.w1, chain.b1, chain.w2}) {
      if (weight != null && readers.getOrDefault(weight, List.of()).stream().anyMatch(r -> !chainNodes.contains(r))) {
        return null;
      }
    }
    chain.values.addAll(region);
    return chain;
  }

  /** Every reader of the region's values is a chain node (elementwise, or the second linear). */
  private static boolean allReadersIn(Set<String> region, String secondInput, Map<String, List<Integer>> readers,
      List<Integer> chainNodes, int second) {
    for (String value : region) {
      for (int reader : readers.getOrDefault(value, List.of())) {
        if (!chainNodes.contains(reader) && reader != second) {
          return false;
        }
      }
    }
    return secondInput != null;
  }

  private static Integer onlyReader(Map<String, List<Integer>> readers, String value, Set<String> graphOutputs) {
    List<Integer> list = readers.getOrDefault(value, List.of());
    return list.size() == 1 && !graphOutputs.contains(value) ? list.get(0) : null;
  }

  private static boolean isFloatMatrix(TensorProto tensor) {
    return tensor != null && tensor.getDataType() == OnnxElementType.FLOAT.onnxNumber() && tensor.getDimsCount() == 2
        && !Tensors.isExternal(tensor);
  }

  private static boolean isFloatVector(TensorProto tensor, int size) {
    return tensor != null && tensor.getDataType() == OnnxElementType.FLOAT.onnxNumber() && tensor.getDimsCount() == 1
        && tensor.getDims(0) == size && !Tensors.isExternal(tensor);
  }

  /** Whether {@code value} is made by a Constant node of one element (GELU's constants in exported graphs). */
  private static boolean isScalarConstant(Map<String, NodeProto> producers, String value) {
    NodeProto node = producers.get(value);
    if (node == null || !node.getOpType().equals("Constant") || !node.getDomain().isEmpty()) {
      return false;
    }
    for (AttributeProto attribute : node.getAttributeList()) {
      switch (attribute.getName()) {
        case "value":
          return Tensors.elementCount(attribute.getT()) == 1;
        case "value_float":
        case "value_int":
          return true;
        default:
          break;
      }
    }
    return false;
  }

  private static boolean isScalar(TensorProto tensor) {
    return tensor != null && Tensors.elementCount(tensor) == 1;
  }

  private static long intAttribute(NodeProto node, String name, long fallback) {
    for (AttributeProto attribute : node.getAttributeList()) {
      if (attribute.getName().equals(name)) {
        return attribute.getType() == AttributeProto.AttributeType.FLOAT ? (long) attribute.getF() : attribute.getI();
      }
    }
    return fallback;
  }
}
