package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Adds a pooling head to a text encoder: one more output, {@link #OUTPUT}, float [batch, dim], the
 * token states of an output [batch, tokens, dim] pooled inside the graph. On a GPU this keeps the
 * token states on the device: one vector per text comes back to the host instead of one per token
 * (for all-MiniLM-L6-v2 and 29-token texts, 29 times fewer bytes copied and pooled in Java). The
 * original outputs stay, unchanged.
 *
 * <ul>
 *   <li>{@link Mode#MEAN}: the mean over the tokens whose attention mask is 1 (sum of states times
 *       mask, over the sum of the mask), as sentence-transformers' mean pooling.
 *   <li>{@link Mode#FIRST}: the first token's state (CLS pooling).
 * </ul>
 *
 * States of another float type (fp16 models) are cast to float first, so the sums run in float.
 */
public final class PoolingHead {
  /** The name of the added output. */
  public static final String OUTPUT = "sparkinfer_pooled";

  /** Bumped when the head changes, so files made by an older head are not reused. */
  public static final int VERSION = 1;

  private static final String PREFIX = "sparkinfer_pooling_";

  /** How token states become one vector. */
  public enum Mode {
    MEAN,
    FIRST
  }

  private PoolingHead() {}

  /**
   * @param tokenStates the output of shape [batch, tokens, dim] to pool
   * @param attentionMask the int64 input of shape [batch, tokens] that marks real tokens with 1;
   *     needed for {@link Mode#MEAN}, may be null for {@link Mode#FIRST}
   * @throws IllegalArgumentException when the model has no such output or input, the output is not
   *     of rank 3 or not a float type, or the model already has {@link #OUTPUT}
   */
  public static OnnxModel append(OnnxModel model, String tokenStates, String attentionMask, Mode mode) {
    Objects.requireNonNull(mode, "mode");
    ModelProto proto = model.proto();
    GraphProto graph = proto.getGraph();
    ValueInfoProto states = graph.getOutputList().stream()
        .filter(output -> output.getName().equals(tokenStates)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("The model has no output '" + tokenStates + "'"));
    if (graph.getOutputList().stream().anyMatch(output -> output.getName().equals(OUTPUT))) {
      throw new IllegalArgumentException("The model already has an output '" + OUTPUT + "'");
    }
    TensorShapeProto shape = states.getType().getTensorType().getShape();
    int elementType = ElementTypes.declared(states);
    if (shape.getDimCount() != 3) {
      throw new IllegalArgumentException("Output '" + tokenStates + "' has rank " + shape.getDimCount()
          + ", not 3 ([batch, tokens, dim])");
    }
    if (elementType != OnnxElementType.FLOAT.onnxNumber() && elementType != OnnxElementType.FLOAT16.onnxNumber()
        && elementType != OnnxElementType.DOUBLE.onnxNumber()) {
      throw new IllegalArgumentException("Output '" + tokenStates + "' is not of a float type (ONNX element type "
          + elementType + ")");
    }
    if (mode == Mode.MEAN && graph.getInputList().stream().noneMatch(input -> input.getName().equals(attentionMask))) {
      throw new IllegalArgumentException("The model has no input '" + attentionMask + "' for mean pooling");
    }
    // Opset 13 moved the axes of Unsqueeze and ReduceSum from attributes to inputs.
    boolean axesAsInputs = Int8Quantizer.defaultOpset(proto) >= 13;
    List<NodeProto> nodes = new ArrayList<>();
    GraphProto.Builder result = graph.toBuilder();
    String floatStates = tokenStates;
    if (elementType != OnnxElementType.FLOAT.onnxNumber()) {
      floatStates = PREFIX + "states";
      nodes.add(cast(tokenStates, floatStates));
    }
    if (mode == Mode.FIRST) {
      result.addInitializer(OnnxProtos.tensor(PREFIX + "first", new long[] {0}, new long[0]));
      nodes.add(Int8Quantizer.node(PREFIX + "gather", "Gather", List.of(floatStates, PREFIX + "first"), List.of(OUTPUT))
          .toBuilder().addAttribute(intAttribute("axis", 1)).build());
    } else {
      String mask = PREFIX + "mask";
      nodes.add(cast(attentionMask, mask));
      nodes.add(withAxes(result, axesAsInputs, "Unsqueeze", PREFIX + "unsqueeze", mask, PREFIX + "mask3", 2));
      nodes.add(Int8Quantizer.node(PREFIX + "mul", "Mul", List.of(floatStates, PREFIX + "mask3"),
          List.of(PREFIX + "masked")));
      nodes.add(reduceSum(result, axesAsInputs, PREFIX + "sum", PREFIX + "masked", PREFIX + "summed", 0));
      nodes.add(reduceSum(result, axesAsInputs, PREFIX + "count", mask, PREFIX + "counted", 1));
      nodes.add(Int8Quantizer.node(PREFIX + "div", "Div", List.of(PREFIX + "summed", PREFIX + "counted"),
          List.of(OUTPUT)));
    }
    result.addAllNode(nodes);
    TensorShapeProto.Builder pooledShape = TensorShapeProto.newBuilder()
        .addDim(shape.getDim(0)).addDim(shape.getDim(2));
    result.addOutput(ValueInfoProto.newBuilder()
        .setName(OUTPUT)
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder()
            .setElemType(OnnxElementType.FLOAT.onnxNumber()).setShape(pooledShape))));
    return new OnnxModel(proto.toBuilder().setGraph(result).build());
  }

  static NodeProto cast(String input, String output) {
    return Int8Quantizer.node(output + "_cast", "Cast", List.of(input), List.of(output)).toBuilder()
        .addAttribute(intAttribute("to", OnnxElementType.FLOAT.onnxNumber()))
        .build();
  }

  static NodeProto reduceSum(GraphProto.Builder graph, boolean axesAsInputs, String name, String input,
      String output, int keepDimensions) {
    return withAxes(graph, axesAsInputs, "ReduceSum", name, input, output, 1).toBuilder()
        .addAttribute(intAttribute("keepdims", keepDimensions)).build();
  }

  private static NodeProto withAxes(GraphProto.Builder graph, boolean axesAsInputs, String type, String name,
      String input, String output, long axis) {
    if (axesAsInputs) {
      String axes = name + "_axes";
      graph.addInitializer(OnnxProtos.tensor(axes, new long[] {axis}, new long[] {1}));
      return Int8Quantizer.node(name, type, List.of(input, axes), List.of(output));
    }
    return Int8Quantizer.node(name, type, List.of(input), List.of(output)).toBuilder()
        .addAttribute(AttributeProto.newBuilder().setName("axes").setType(AttributeProto.AttributeType.INTS)
            .addInts(axis))
        .build();
  }

  private static AttributeProto intAttribute(String name, long value) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(value).build();
  }
}
