package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.SparseTensorProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Converts a float32 model to float16 for GPUs. What changes:
 *
 * <ul>
 *   <li>float32 initializers and Constant / ConstantOfShape values that a float16 node reads are
 *       stored as float16, clamped to its range ({@link Float16#fromFloatClamped});
 *   <li>Cast nodes to float32 whose result a float16 node reads cast to float16 instead;
 *   <li>graph inputs and outputs keep their float32 type and names: a Cast to float16 follows each
 *       float32 input, a Cast to float32 produces each float32 output;
 *   <li>operators of {@link #DEFAULT_FLOAT32_OPERATORS}, the caller's list, and every operator
 *       outside ONNX's own domain keep computing in float32, with Casts inserted around them;
 *   <li>value_info entries follow the new types. Node names, value names, opsets, metadata and all
 *       other fields stay as they were.
 * </ul>
 *
 * <p>Types flow from the sources (inputs, initializers, constants, casts) through the graph, so no
 * other node needs a change: an Add of two float16 values is a float16 Add. Models with subgraphs
 * (If, Loop, Scan) are refused: their inner nodes read outer values by name, and converting those
 * safely needs a rewrite of the subgraphs too.
 */
final class Float16Converter {
  private static final String NO_CUDA_KERNEL =
      "ONNX Runtime's CUDA EP has no float16 kernel for it";
  private static final String FLOAT_SCALES =
      "its scales are float32 by schema before opset 19 and in ORT's integer kernels";
  private static final String DTYPE = "it samples in the dtype its attributes ask for";

  /**
   * Operators kept in float32 whatever the opset, and why: without a float16 kernel in ONNX
   * Runtime's CUDA EP (per ORT's OperatorKernels.md), tied to float32 scales, or random sampling
   * that follows its own dtype attribute. Clip before opset 12 and CumSum before opset 14 are kept
   * as well: their CUDA kernels of those versions are float32 only.
   */
  static final Map<String, String> DEFAULT_FLOAT32_OPERATORS = defaultFloat32Operators();

  private static Map<String, String> defaultFloat32Operators() {
    Map<String, String> operators = new LinkedHashMap<>();
    for (String op : List.of("Range", "RoiAlign", "GridSample", "EyeLike", "NonMaxSuppression")) {
      operators.put(op, NO_CUDA_KERNEL);
    }
    for (String op : List.of("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")) {
      operators.put(op, FLOAT_SCALES);
    }
    for (String op :
        List.of(
            "RandomNormal",
            "RandomUniform",
            "RandomNormalLike",
            "RandomUniformLike",
            "Multinomial",
            "Bernoulli")) {
      operators.put(op, DTYPE);
    }
    return Collections.unmodifiableMap(operators);
  }

  private final Set<String> callerFloat32Operators;

  Float16Converter(Set<String> callerFloat32Operators) {
    this.callerFloat32Operators = Set.copyOf(callerFloat32Operators);
  }

  CompressedModel convert(ModelProto model) {
    GraphProto graph = model.getGraph();
    GraphIndex index = new GraphIndex(graph);
    refuseSubgraphs(graph);
    long opset = Int8Quantizer.defaultOpset(model);
    CompressionReport.Collector report = new CompressionReport.Collector(Precision.FLOAT16);
    List<NodeProto> nodes = graph.getNodeList();

    Map<String, Integer> original = ElementTypes.ofGraph(graph);
    String[] keepReasons = new String[nodes.size()];
    for (int i = 0; i < nodes.size(); i++) {
      keepReasons[i] = reasonToKeepFloat32(nodes.get(i), opset);
      if (keepReasons[i] != null && touchesFloat(nodes.get(i), original)) {
        report.left(nodes.get(i), "kept float32 between Casts: " + keepReasons[i]);
      }
    }

    // Sources become float16 only where a float16 node reads them.
    Set<String> readAsFloat16 = new HashSet<>();
    for (int i = 0; i < nodes.size(); i++) {
      NodeProto node = nodes.get(i);
      for (int slot = 0; slot < node.getInputCount(); slot++) {
        String input = node.getInput(slot);
        if (keepReasons[i] == null
            && original.getOrDefault(input, ElementTypes.UNKNOWN) == ElementTypes.FLOAT
            && !isTypeAgnostic(node, slot)
            && !isFloat32Only(node, slot)) {
          readAsFloat16.add(input);
        }
      }
    }

    Map<String, Integer> current = new HashMap<>();
    graph.getInputList().forEach(input -> current.put(input.getName(), ElementTypes.declared(input)));
    Set<String> convertedInitializers = new HashSet<>();
    for (TensorProto initializer : graph.getInitializerList()) {
      String name = initializer.getName();
      boolean convert =
          initializer.getDataType() == ElementTypes.FLOAT
              && !index.isGraphInput(name)
              && !Tensors.isExternal(initializer)
              && readAsFloat16.contains(name);
      if (convert) {
        convertedInitializers.add(name);
      }
      if (!index.isGraphInput(name)) {
        current.put(name, convert ? ElementTypes.FLOAT16 : initializer.getDataType());
      }
    }
    for (SparseTensorProto initializer : graph.getSparseInitializerList()) {
      current.putIfAbsent(initializer.getValues().getName(), initializer.getValues().getDataType());
    }

    List<NodeProto> rewritten = new ArrayList<>();
    Map<String, String> casts = new HashMap<>();
    int insertedCasts = 0;
    int convertedConstants = 0;
    int retargetedCasts = 0;
    for (int i = 0; i < nodes.size(); i++) {
      NodeProto node = nodes.get(i);
      boolean keep = keepReasons[i] != null;
      NodeProto.Builder builder = node.toBuilder();
      for (int slot = 0; slot < node.getInputCount(); slot++) {
        String input = node.getInput(slot);
        if (input.isEmpty()) {
          continue;
        }
        int type = current.getOrDefault(input, ElementTypes.UNKNOWN);
        if (type == ElementTypes.UNKNOWN) {
          if (!keep && !isTypeAgnostic(node, slot)) {
            requireKnownType(node, input, index);
          }
          continue;
        }
        if (type != ElementTypes.FLOAT && type != ElementTypes.FLOAT16) {
          continue;
        }
        int wanted =
            keep || isFloat32Only(node, slot)
                ? ElementTypes.FLOAT
                : isTypeAgnostic(node, slot) ? type : ElementTypes.FLOAT16;
        if (wanted != type) {
          String key = input + "|" + wanted;
          String cast = casts.get(key);
          if (cast == null) {
            cast =
                index.uniqueName(
                    input + (wanted == ElementTypes.FLOAT16 ? "_float16" : "_float32"));
            rewritten.add(castNode(index.uniqueName(cast + "/Cast"), input, cast, wanted));
            current.put(cast, wanted);
            casts.put(key, cast);
            insertedCasts++;
          }
          builder.setInput(slot, cast);
        }
      }
      if (!keep && node.getOutputCount() == 1 && readAsFloat16.contains(node.getOutput(0))) {
        switch (node.getOpType()) {
          case "Constant":
            if (Float16Values.convertConstant(builder)) {
              convertedConstants++;
            }
            break;
          case "ConstantOfShape":
            if (Float16Values.convertConstantOfShape(builder)) {
              convertedConstants++;
            }
            break;
          case "Cast":
            if (LinearLayer.intAttribute(node, "to", 0) == ElementTypes.FLOAT) {
              setIntAttribute(builder, "to", ElementTypes.FLOAT16);
              retargetedCasts++;
            }
            break;
          default:
            break;
        }
      }
      NodeProto result = builder.build();
      int[] types =
          ElementTypes.outputTypes(keep ? node : result, name -> current.getOrDefault(name, 0));
      for (int output = 0; output < result.getOutputCount(); output++) {
        String name = result.getOutput(output);
        int type = types[output];
        if (keep || type == ElementTypes.UNKNOWN) {
          // Kept nodes compute as before: their declared or inferred type stands.
          type = original.getOrDefault(name, type);
        }
        current.put(name, type);
      }
      rewritten.add(result);
    }

    List<TensorProto> initializers = Float16Values.convertInitializers(graph, convertedInitializers, report);
    for (ValueInfoProto input : graph.getInputList()) {
      if (casts.containsKey(input.getName() + "|" + ElementTypes.FLOAT16)) {
        report.rewroteValue(
            input.getName(),
            "graph input stays FLOAT; a Cast to FLOAT16 feeds its float16 readers");
      }
    }
    for (ValueInfoProto output : graph.getOutputList()) {
      String name = output.getName();
      if (ElementTypes.declared(output) != ElementTypes.FLOAT
          || current.getOrDefault(name, 0) != ElementTypes.FLOAT16) {
        continue;
      }
      String internal = index.uniqueName(name + "_float16");
      rename(rewritten, initializers, name, internal);
      rewritten.add(castNode(index.uniqueName(name + "/Cast"), internal, name, ElementTypes.FLOAT));
      current.put(internal, ElementTypes.FLOAT16);
      current.put(name, ElementTypes.FLOAT);
      insertedCasts++;
      report.rewroteValue(name, "graph output stays FLOAT; a Cast from FLOAT16 produces it");
    }
    if (convertedConstants > 0) {
      report.rewroteValue(
          "constants", convertedConstants + " Constant / ConstantOfShape values now FLOAT16");
    }
    if (retargetedCasts > 0) {
      report.rewroteValue("casts", casts(retargetedCasts) + " to FLOAT now cast to FLOAT16");
    }
    if (insertedCasts > 0) {
      report.rewroteValue(
          "boundaries",
          casts(insertedCasts) + " inserted at graph inputs, outputs and float32 nodes");
    }

    GraphProto.Builder result =
        graph.toBuilder()
            .clearNode()
            .addAllNode(rewritten)
            .clearInitializer()
            .addAllInitializer(initializers);
    for (int i = 0; i < result.getValueInfoCount(); i++) {
      ValueInfoProto valueInfo = result.getValueInfo(i);
      int type = current.getOrDefault(valueInfo.getName(), ElementTypes.UNKNOWN);
      int declared = ElementTypes.declared(valueInfo);
      if (valueInfo.getType().hasTensorType()
          && type != ElementTypes.UNKNOWN
          && declared != type
          && (declared == ElementTypes.FLOAT || declared == ElementTypes.FLOAT16)) {
        TypeProto.Builder newType = valueInfo.getType().toBuilder();
        newType.getTensorTypeBuilder().setElemType(type);
        result.setValueInfo(i, valueInfo.toBuilder().setType(newType));
      }
    }
    GraphProto after = result.build();
    return new CompressedModel(
        new OnnxModel(model.toBuilder().setGraph(after).build()), report.build(graph, after));
  }

  private static String casts(int count) {
    return count + (count == 1 ? " Cast" : " Casts");
  }

  private static void refuseSubgraphs(GraphProto graph) {
    for (NodeProto node : graph.getNodeList()) {
      for (AttributeProto attribute : node.getAttributeList()) {
        if (attribute.hasG() || attribute.getGraphsCount() > 0) {
          throw new IllegalArgumentException(
              "float16 conversion does not handle subgraphs, and node "
                  + node.getName()
                  + " ("
                  + node.getOpType()
                  + ") has one in attribute "
                  + attribute.getName()
                  + ": its nodes read outer values by name and would need converting too."
                  + " Convert a model without If/Loop/Scan, or use int8 or int4");
        }
      }
    }
  }

  private String reasonToKeepFloat32(NodeProto node, long opset) {
    if (!LinearLayer.isDefaultDomain(node)) {
      return "operator of domain "
          + node.getDomain()
          + ", whose float16 support this converter does not know";
    }
    String op = node.getOpType();
    if (callerFloat32Operators.contains(op)) {
      return "in the caller's list of operators to keep float32";
    }
    String reason = DEFAULT_FLOAT32_OPERATORS.get(op);
    if (reason != null) {
      return reason;
    }
    if ((op.equals("Clip") && opset < 12) || (op.equals("CumSum") && opset < 14)) {
      return NO_CUDA_KERNEL + " at opset " + opset;
    }
    return null;
  }

  /** Inputs whose type does not tie to the output's: no cast needed whatever it is. */
  private static boolean isTypeAgnostic(NodeProto node, int slot) {
    switch (node.getOpType()) {
      case "Shape":
      case "Size":
      case "Cast":
        return slot == 0;
      case "CastLike":
        return slot == 0;
      case "Resize":
        return slot == 1;
      default:
        return false;
    }
  }

  /** Inputs that ONNX defines as float32 whatever the data's type (Resize's scales). */
  private static boolean isFloat32Only(NodeProto node, int slot) {
    return (node.getOpType().equals("Resize") && slot == 2)
        || (node.getOpType().equals("Upsample") && slot == 1);
  }

  private static boolean touchesFloat(NodeProto node, Map<String, Integer> types) {
    for (String name : node.getInputList()) {
      if (types.getOrDefault(name, 0) == ElementTypes.FLOAT) {
        return true;
      }
    }
    for (String name : node.getOutputList()) {
      if (types.getOrDefault(name, 0) == ElementTypes.FLOAT) {
        return true;
      }
    }
    return false;
  }

  /**
   * Outputs of operators outside ONNX's domain have no inferred type; a float16 node reading one
   * needs to know whether to cast it, so the model must declare it. Unknown types from ONNX's own
   * operators are sequences and the like, which are not cast.
   */
  private static void requireKnownType(NodeProto reader, String input, GraphIndex index) {
    NodeProto producer = index.producer(input);
    if (producer == null || LinearLayer.isDefaultDomain(producer)) {
      return;
    }
    throw new IllegalArgumentException(
        "float16 conversion cannot tell the element type of "
            + input
            + ", output of node "
            + producer.getName()
            + " ("
            + producer.getDomain()
            + ":"
            + producer.getOpType()
            + "), and needs it to know whether node "
            + reader.getName()
            + " ("
            + reader.getOpType()
            + ") reads it as float16. Declare "
            + input
            + " with its type in the graph's value_info");
  }

  private static NodeProto castNode(String name, String input, String output, int to) {
    return NodeProto.newBuilder()
        .setName(name)
        .setOpType("Cast")
        .addInput(input)
        .addOutput(output)
        .addAttribute(
            AttributeProto.newBuilder()
                .setName("to")
                .setType(AttributeProto.AttributeType.INT)
                .setI(to))
        .build();
  }

  private static void setIntAttribute(NodeProto.Builder node, String name, long value) {
    for (int i = 0; i < node.getAttributeCount(); i++) {
      if (node.getAttribute(i).getName().equals(name)) {
        node.setAttribute(i, node.getAttribute(i).toBuilder().setI(value));
      }
    }
  }

  private static void rename(
      List<NodeProto> nodes, List<TensorProto> initializers, String from, String to) {
    for (int i = 0; i < nodes.size(); i++) {
      NodeProto node = nodes.get(i);
      if (!node.getInputList().contains(from) && !node.getOutputList().contains(from)) {
        continue;
      }
      NodeProto.Builder builder = node.toBuilder();
      for (int slot = 0; slot < builder.getInputCount(); slot++) {
        if (builder.getInput(slot).equals(from)) {
          builder.setInput(slot, to);
        }
      }
      for (int slot = 0; slot < builder.getOutputCount(); slot++) {
        if (builder.getOutput(slot).equals(from)) {
          builder.setOutput(slot, to);
        }
      }
      nodes.set(i, builder.build());
    }
    for (int i = 0; i < initializers.size(); i++) {
      if (initializers.get(i).getName().equals(from)) {
        initializers.set(i, initializers.get(i).toBuilder().setName(to).build());
      }
    }
  }
}
