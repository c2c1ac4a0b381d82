package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.SparseTensorProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Lookups over a main graph that rewrites need: initializers, who consumes what, and every name in
 * use (subgraphs included) so that new names never collide. A snapshot: rewrites build a new graph
 * and do not update it.
 */
final class GraphIndex {
  private final Map<String, TensorProto> initializers = new LinkedHashMap<>();
  private final Set<String> graphInputs = new HashSet<>();
  private final Set<String> graphOutputs = new HashSet<>();
  private final Map<String, List<NodeProto>> consumers = new HashMap<>();
  private final Map<String, NodeProto> producers = new HashMap<>();
  private final Set<String> subgraphReferences = new HashSet<>();
  private final Set<String> usedNames = new HashSet<>();

  GraphIndex(GraphProto graph) {
    for (TensorProto initializer : graph.getInitializerList()) {
      initializers.put(initializer.getName(), initializer);
      usedNames.add(initializer.getName());
    }
    for (SparseTensorProto initializer : graph.getSparseInitializerList()) {
      usedNames.add(initializer.getValues().getName());
    }
    for (ValueInfoProto input : graph.getInputList()) {
      graphInputs.add(input.getName());
      usedNames.add(input.getName());
    }
    for (ValueInfoProto output : graph.getOutputList()) {
      graphOutputs.add(output.getName());
      usedNames.add(output.getName());
    }
    for (ValueInfoProto valueInfo : graph.getValueInfoList()) {
      usedNames.add(valueInfo.getName());
    }
    for (NodeProto node : graph.getNodeList()) {
      usedNames.add(node.getName());
      for (String input : node.getInputList()) {
        if (!input.isEmpty()) {
          consumers.computeIfAbsent(input, name -> new ArrayList<>()).add(node);
        }
      }
      for (String output : node.getOutputList()) {
        usedNames.add(output);
        if (!output.isEmpty()) {
          producers.put(output, node);
        }
      }
      for (AttributeProto attribute : node.getAttributeList()) {
        if (attribute.hasG()) {
          collectSubgraph(attribute.getG());
        }
        attribute.getGraphsList().forEach(this::collectSubgraph);
      }
    }
  }

  private void collectSubgraph(GraphProto subgraph) {
    // A subgraph may use any outer value by name: those values must survive a rewrite.
    subgraph.getInitializerList().forEach(tensor -> usedNames.add(tensor.getName()));
    subgraph.getInputList().forEach(input -> usedNames.add(input.getName()));
    subgraph
        .getOutputList()
        .forEach(
            output -> {
              usedNames.add(output.getName());
              subgraphReferences.add(output.getName());
            });
    for (NodeProto node : subgraph.getNodeList()) {
      usedNames.add(node.getName());
      usedNames.addAll(node.getOutputList());
      subgraphReferences.addAll(node.getInputList());
      for (AttributeProto attribute : node.getAttributeList()) {
        if (attribute.hasG()) {
          collectSubgraph(attribute.getG());
        }
        attribute.getGraphsList().forEach(this::collectSubgraph);
      }
    }
  }

  /**
   * The initializer of that name when it is a constant: an initializer also listed as a graph input
   * is a default a caller may override, so it is not.
   */
  TensorProto constant(String name) {
    return graphInputs.contains(name) ? null : initializers.get(name);
  }

  boolean isGraphInput(String name) {
    return graphInputs.contains(name);
  }

  boolean isGraphOutput(String name) {
    return graphOutputs.contains(name);
  }

  /** Main-graph nodes that read the value, once per node even when it reads it twice. */
  List<NodeProto> consumers(String name) {
    List<NodeProto> nodes = consumers.get(name);
    return nodes == null ? List.of() : List.copyOf(new LinkedHashSet<>(nodes));
  }

  NodeProto producer(String name) {
    return producers.get(name);
  }

  boolean isUsedBySubgraph(String name) {
    return subgraphReferences.contains(name);
  }

  /**
   * A name no value or node of the model has, {@code base} itself when free; reserved at once so
   * that two calls never return the same name.
   */
  String uniqueName(String base) {
    String name = base;
    for (int suffix = 1; usedNames.contains(name); suffix++) {
      name = base + "_" + suffix;
    }
    usedNames.add(name);
    return name;
  }
}
