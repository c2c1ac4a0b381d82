package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.ToIntFunction;

/**
 * Element types of node outputs from their inputs' types and their attributes: the part of ONNX
 * type inference a float16 rewrite needs, without ONNX's C++ shape inference. Types are ONNX's
 * numbers, {@link #UNKNOWN} (0) where this cannot tell (sequences, maps, subgraph outputs, most
 * operators outside ONNX's own domain).
 */
final class ElementTypes {
  static final int UNKNOWN = 0;
  static final int FLOAT = OnnxElementType.FLOAT.onnxNumber();
  static final int FLOAT16 = OnnxElementType.FLOAT16.onnxNumber();
  private static final int INT64 = OnnxElementType.INT64.onnxNumber();
  private static final int INT32 = OnnxElementType.INT32.onnxNumber();
  private static final int BOOL = OnnxElementType.BOOL.onnxNumber();
  private static final int UINT8 = OnnxElementType.UINT8.onnxNumber();
  private static final int STRING = OnnxElementType.STRING.onnxNumber();

  private static final Set<String> INT64_OUTPUT =
      Set.of("Shape", "Size", "NonZero", "ArgMax", "ArgMin", "NonMaxSuppression", "SequenceLength");
  private static final Set<String> BOOL_OUTPUT =
      Set.of(
          "Equal",
          "Less",
          "Greater",
          "LessOrEqual",
          "GreaterOrEqual",
          "Not",
          "And",
          "Or",
          "Xor",
          "IsNaN",
          "IsInf",
          "RegexFullMatch");
  private static final Set<String> NOT_TENSORS_OR_UNKNOWN =
      Set.of(
          "If",
          "Loop",
          "Scan",
          "SequenceAt",
          "SequenceConstruct",
          "SequenceEmpty",
          "SequenceErase",
          "SequenceInsert",
          "SequenceMap",
          "SplitToSequence",
          "ConcatFromSequence",
          "Optional",
          "OptionalGetElement",
          "OptionalHasElement");

  /** For com.microsoft operators: which input's type the first output has. */
  private static final Map<String, Integer> MICROSOFT_OUTPUT_LIKE_INPUT =
      Map.ofEntries(
          Map.entry("MatMulNBits", 0),
          Map.entry("FusedMatMul", 0),
          Map.entry("Gelu", 0),
          Map.entry("FastGelu", 0),
          Map.entry("BiasGelu", 0),
          Map.entry("QuickGelu", 0),
          Map.entry("BiasAdd", 0),
          Map.entry("BiasSoftmax", 0),
          Map.entry("SkipLayerNormalization", 0),
          Map.entry("SkipSimplifiedLayerNormalization", 0),
          Map.entry("SimplifiedLayerNormalization", 0),
          Map.entry("Attention", 0),
          Map.entry("MultiHeadAttention", 0),
          Map.entry("GroupQueryAttention", 0),
          Map.entry("RotaryEmbedding", 0),
          Map.entry("DynamicQuantizeMatMul", 2),
          Map.entry("MatMulIntegerToFloat", 2),
          Map.entry("EmbedLayerNormalization", 2),
          Map.entry("GatherBlockQuantized", 2));

  private ElementTypes() {}

  /** The output types of a node, one per output; inputs' types come from {@code typeOf}. */
  static int[] outputTypes(NodeProto node, ToIntFunction<String> typeOf) {
    int[] types = new int[node.getOutputCount()];
    if (LinearLayer.isDefaultDomain(node)) {
      defaultDomain(node, typeOf, types);
    } else if (node.getDomain().equals("com.microsoft")) {
      Integer like = MICROSOFT_OUTPUT_LIKE_INPUT.get(node.getOpType());
      if (like != null && types.length > 0) {
        types[0] = input(node, like, typeOf);
      }
    }
    return types;
  }

  private static void defaultDomain(NodeProto node, ToIntFunction<String> typeOf, int[] types) {
    String op = node.getOpType();
    if (NOT_TENSORS_OR_UNKNOWN.contains(op)) {
      return;
    }
    if (INT64_OUTPUT.contains(op)) {
      fill(types, INT64);
      return;
    }
    if (BOOL_OUTPUT.contains(op)) {
      fill(types, BOOL);
      return;
    }
    int first = input(node, 0, typeOf);
    switch (op) {
      case "Cast":
        fill(types, (int) intAttribute(node, "to", UNKNOWN));
        return;
      case "CastLike":
        fill(types, input(node, 1, typeOf));
        return;
      case "Constant":
        fill(types, constantType(node));
        return;
      case "ConstantOfShape":
        fill(types, tensorAttributeType(node, "value", FLOAT));
        return;
      case "EyeLike":
      case "RandomNormalLike":
      case "RandomUniformLike":
      case "Bernoulli":
        fill(types, (int) intAttribute(node, "dtype", first));
        return;
      case "RandomNormal":
      case "RandomUniform":
        fill(types, (int) intAttribute(node, "dtype", FLOAT));
        return;
      case "Multinomial":
        fill(types, (int) intAttribute(node, "dtype", INT32));
        return;
      case "BlackmanWindow":
      case "HannWindow":
      case "HammingWindow":
      case "MelWeightMatrix":
        fill(types, (int) intAttribute(node, "output_datatype", FLOAT));
        return;
      case "Where":
        fill(types, input(node, 1, typeOf));
        return;
      case "OneHot":
        fill(types, input(node, 2, typeOf));
        return;
      case "TopK":
      case "MaxPool":
      case "Unique":
        fill(types, INT64);
        types[0] = first;
        return;
      case "Dropout":
        fill(types, BOOL);
        types[0] = first;
        return;
      case "LayerNormalization":
        fill(types, (int) intAttribute(node, "stash_type", FLOAT));
        types[0] = first;
        return;
      case "QuantizeLinear":
        {
          int zeroPoint = input(node, 2, typeOf);
          int declared = (int) intAttribute(node, "output_dtype", UNKNOWN);
          fill(types, declared != UNKNOWN ? declared : zeroPoint != UNKNOWN ? zeroPoint : UINT8);
          return;
        }
      case "DequantizeLinear":
        fill(types, (int) intAttribute(node, "output_dtype", input(node, 1, typeOf)));
        return;
      case "DynamicQuantizeLinear":
        fill(types, UINT8);
        if (types.length > 1) {
          types[1] = FLOAT;
        }
        return;
      case "MatMulInteger":
      case "ConvInteger":
        fill(types, INT32);
        return;
      case "QLinearMatMul":
      case "QLinearConv":
        fill(types, input(node, 7, typeOf));
        return;
      case "StringNormalizer":
      case "StringConcat":
        fill(types, STRING);
        return;
      case "StringSplit":
        fill(types, INT64);
        types[0] = STRING;
        return;
      case "ImageDecoder":
        fill(types, UINT8);
        return;
      case "TfIdfVectorizer":
        fill(types, FLOAT);
        return;
      default:
        // Every other ONNX operator's outputs share the type of its first input (T).
        fill(types, first);
    }
  }

  private static int constantType(NodeProto node) {
    for (AttributeProto attribute : node.getAttributeList()) {
      switch (attribute.getName()) {
        case "value":
          return attribute.getT().getDataType();
        case "value_float":
        case "value_floats":
          return FLOAT;
        case "value_int":
        case "value_ints":
          return INT64;
        case "value_string":
        case "value_strings":
          return STRING;
        case "sparse_value":
          return attribute.getSparseTensor().getValues().getDataType();
        default:
          break;
      }
    }
    return UNKNOWN;
  }

  private static int tensorAttributeType(NodeProto node, String name, int defaultType) {
    for (AttributeProto attribute : node.getAttributeList()) {
      if (attribute.getName().equals(name) && attribute.hasT()) {
        return attribute.getT().getDataType();
      }
    }
    return defaultType;
  }

  private static int input(NodeProto node, int position, ToIntFunction<String> typeOf) {
    if (position >= node.getInputCount() || node.getInput(position).isEmpty()) {
      return UNKNOWN;
    }
    return typeOf.applyAsInt(node.getInput(position));
  }

  private static long intAttribute(NodeProto node, String name, long defaultValue) {
    return LinearLayer.intAttribute(node, name, defaultValue);
  }

  private static void fill(int[] types, int type) {
    Arrays.fill(types, type);
  }

  /** Types of the original graph: declared where the model declares them, inferred elsewhere. */
  static Map<String, Integer> ofGraph(GraphProto graph) {
    Map<String, Integer> declared = new HashMap<>();
    graph
        .getValueInfoList()
        .forEach(info -> putKnown(declared, info.getName(), declared(info)));
    graph.getOutputList().forEach(info -> putKnown(declared, info.getName(), declared(info)));
    Map<String, Integer> types = new HashMap<>(declared);
    graph.getInputList().forEach(info -> putKnown(types, info.getName(), declared(info)));
    graph.getInitializerList().forEach(tensor -> types.put(tensor.getName(), tensor.getDataType()));
    graph
        .getSparseInitializerList()
        .forEach(
            tensor -> types.put(tensor.getValues().getName(), tensor.getValues().getDataType()));
    for (NodeProto node : graph.getNodeList()) {
      int[] inferred = outputTypes(node, name -> types.getOrDefault(name, 0));
      for (int i = 0; i < node.getOutputCount(); i++) {
        String name = node.getOutput(i);
        types.put(name, declared.getOrDefault(name, inferred[i]));
      }
    }
    return types;
  }

  private static void putKnown(Map<String, Integer> types, String name, int type) {
    if (type != UNKNOWN) {
      types.put(name, type);
    }
  }

  /** The element type a value_info declares, or UNKNOWN. */
  static int declared(ValueInfoProto info) {
    return info.getType().hasTensorType()
        ? info.getType().getTensorType().getElemType()
        : UNKNOWN;
  }
}
