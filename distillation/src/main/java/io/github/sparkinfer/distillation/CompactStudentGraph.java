package io.github.sparkinfer.distillation;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The same factorization machine as Tribuo's ONNX export, laid out for speed. Tribuo writes one
 * block per output (a Gemm with k columns, Pow, a second Gemm, Sub, ReduceSum, Div: 119 nodes for 16
 * outputs), and ONNX Runtime spends its time in per-node overhead and in k-column matrix products.
 * Here every output's embeddings sit side by side in one [features, outputs × k] matrix: one Gemm
 * for x·V, one for x²·V², then Sub, a reshape to [batch, outputs, k], one ReduceSum: 12 nodes, the
 * same arithmetic: ŷ = (x·W + b + ½ Σ_f ((x·V_f)² − x²·V_f²)) × y_var + y_mean.
 *
 * <p>Built from the initializers Tribuo 4.3 names (fm_linear_weights_0, fm_biases_0,
 * fm_embedding_&lt;o&gt;_0, y_mean_0 and y_var_0 when standardised); {@link #compact} returns null for a
 * graph without them, and the trainer then keeps Tribuo's own file.
 */
final class CompactStudentGraph {
  private static final String PREFIX = "sparkinfer_fm_";

  private CompactStudentGraph() {}

  /** The compact model, or null when {@code tribuo} is not a factorization machine as Tribuo 4.3 writes it. */
  static byte[] compact(byte[] tribuo) {
    ModelProto model;
    try {
      model = ModelProto.parseFrom(tribuo);
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      return null;
    }
    GraphProto graph = model.getGraph();
    Map<String, TensorProto> initializers = new HashMap<>();
    graph.getInitializerList().forEach(tensor -> initializers.put(tensor.getName(), tensor));
    TensorProto linear = initializers.get("fm_linear_weights_0");
    TensorProto biases = initializers.get("fm_biases_0");
    if (linear == null || biases == null || linear.getDimsCount() != 2 || graph.getInputCount() != 1
        || graph.getOutputCount() != 1) {
      return null;
    }
    int features = (int) linear.getDims(0);
    int outputs = (int) linear.getDims(1);
    TensorProto first = initializers.get("fm_embedding_0_0");
    if (first == null || first.getDimsCount() != 2 || first.getDims(0) != features) {
      return null;
    }
    int factors = (int) first.getDims(1);
    // [features, outputs × factors]: column o·k + f is output o's factor f.
    float[] embeddings = new float[features * outputs * factors];
    for (int o = 0; o < outputs; o++) {
      TensorProto tensor = initializers.get("fm_embedding_" + o + "_0");
      if (tensor == null || tensor.getDimsCount() != 2 || tensor.getDims(0) != features || tensor.getDims(1) != factors) {
        return null;
      }
      float[] values = floats(tensor);
      for (int i = 0; i < features; i++) {
        System.arraycopy(values, i * factors, embeddings, i * outputs * factors + o * factors, factors);
      }
    }
    float[] squared = new float[embeddings.length];
    for (int i = 0; i < embeddings.length; i++) {
      squared[i] = embeddings[i] * embeddings[i];
    }
    TensorProto mean = initializers.get("y_mean_0");
    TensorProto scale = initializers.get("y_var_0");
    if ((mean == null) != (scale == null)) {
      return null;
    }
    String input = graph.getInput(0).getName();
    String output = graph.getOutput(0).getName();
    GraphProto.Builder result = GraphProto.newBuilder().setName(graph.getName() + " (compact)")
        .addInput(graph.getInput(0)).addOutput(graph.getOutput(0));
    result.addInitializer(linear.toBuilder().setName(PREFIX + "linear"));
    result.addInitializer(biases.toBuilder().setName(PREFIX + "biases"));
    result.addInitializer(tensor(PREFIX + "embeddings", embeddings, features, (long) outputs * factors));
    result.addInitializer(tensor(PREFIX + "embeddings_squared", squared, features, (long) outputs * factors));
    result.addInitializer(longs(PREFIX + "shape", 0, outputs, factors));
    result.addInitializer(longs(PREFIX + "axes", 2));
    result.addInitializer(tensor(PREFIX + "half", new float[] {0.5f}));
    result.addNode(node("Gemm", List.of(input, PREFIX + "linear", PREFIX + "biases"), PREFIX + "linear_out"));
    result.addNode(node("Gemm", List.of(input, PREFIX + "embeddings"), PREFIX + "xv"));
    result.addNode(node("Mul", List.of(PREFIX + "xv", PREFIX + "xv"), PREFIX + "xv_squared"));
    result.addNode(node("Mul", List.of(input, input), PREFIX + "x_squared"));
    result.addNode(node("Gemm", List.of(PREFIX + "x_squared", PREFIX + "embeddings_squared"), PREFIX + "x2v2"));
    result.addNode(node("Sub", List.of(PREFIX + "xv_squared", PREFIX + "x2v2"), PREFIX + "difference"));
    result.addNode(node("Reshape", List.of(PREFIX + "difference", PREFIX + "shape"), PREFIX + "per_output"));
    result.addNode(node("ReduceSum", List.of(PREFIX + "per_output", PREFIX + "axes"), PREFIX + "summed").toBuilder()
        .addAttribute(AttributeProto.newBuilder().setName("keepdims").setType(AttributeProto.AttributeType.INT).setI(0))
        .build());
    result.addNode(node("Mul", List.of(PREFIX + "summed", PREFIX + "half"), PREFIX + "interactions"));
    String sum = PREFIX + "sum";
    result.addNode(node("Add", List.of(PREFIX + "linear_out", PREFIX + "interactions"), mean == null ? output : sum));
    if (mean != null) {
      result.addInitializer(scale.toBuilder().setName(PREFIX + "y_scale"));
      result.addInitializer(mean.toBuilder().setName(PREFIX + "y_mean"));
      result.addNode(node("Mul", List.of(sum, PREFIX + "y_scale"), PREFIX + "scaled"));
      result.addNode(node("Add", List.of(PREFIX + "scaled", PREFIX + "y_mean"), output));
    }
    // Opset 13: ReduceSum takes its axes as an input, as in Tribuo's file.
    return model.toBuilder().setGraph(result).clearOpsetImport()
        .addOpsetImport(ai.onnx.proto.OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(13))
        .build().toByteArray();
  }

  private static NodeProto node(String type, List<String> inputs, String output) {
    return NodeProto.newBuilder().setOpType(type).setName(output).addAllInput(inputs).addOutput(output).build();
  }

  private static float[] floats(TensorProto tensor) {
    if (tensor.getFloatDataCount() > 0) {
      float[] values = new float[tensor.getFloatDataCount()];
      for (int i = 0; i < values.length; i++) {
        values[i] = tensor.getFloatData(i);
      }
      return values;
    }
    ByteBuffer bytes = tensor.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    float[] values = new float[bytes.remaining() / 4];
    bytes.asFloatBuffer().get(values);
    return values;
  }

  private static TensorProto tensor(String name, float[] values, long... dimensions) {
    ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(values);
    TensorProto.Builder tensor = TensorProto.newBuilder().setName(name)
        .setDataType(TensorProto.DataType.FLOAT.getNumber())
        .setRawData(com.google.protobuf.ByteString.copyFrom(bytes.array()));
    for (long dimension : dimensions) {
      tensor.addDims(dimension);
    }
    return tensor.build();
  }

  private static TensorProto longs(String name, long... values) {
    ByteBuffer bytes = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asLongBuffer().put(values);
    return TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.INT64.getNumber())
        .addDims(values.length).setRawData(com.google.protobuf.ByteString.copyFrom(bytes.array())).build();
  }
}
