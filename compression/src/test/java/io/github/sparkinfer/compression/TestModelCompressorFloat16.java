package io.github.sparkinfer.compression;

import static io.github.sparkinfer.compression.OnnxElementType.FLOAT;
import static io.github.sparkinfer.compression.OnnxElementType.FLOAT16;
import static io.github.sparkinfer.compression.OnnxElementType.INT64;
import static io.github.sparkinfer.compression.OrtTesting.attribute;
import static io.github.sparkinfer.compression.OrtTesting.initializer;
import static io.github.sparkinfer.compression.OrtTesting.nodes;
import static io.github.sparkinfer.compression.OrtTesting.randomValues;
import static io.github.sparkinfer.compression.OrtTesting.relativeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TestModelCompressorFloat16 {
  private static final ModelCompressor FLOAT16_COMPRESSOR =
      ModelCompressor.builder().precision(Precision.FLOAT16).build();

  @Test
  void mlpComputesInFloat16BetweenFloat32InputAndOutput() throws Exception {
    MultilayerPerceptronModel mlp =
        MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 32).seed(9).build();
    CompressedModel compressed = FLOAT16_COMPRESSOR.compress(mlp.model());
    OnnxModel model = compressed.model();

    for (TensorProto initializer : model.proto().getGraph().getInitializerList()) {
      assertThat(initializer.getDataType())
          .as(initializer.getName())
          .isEqualTo(FLOAT16.onnxNumber());
      assertThat(initializer.getDimsList())
          .isEqualTo(initializer(mlp.model(), initializer.getName()).getDimsList());
    }
    assertThat(
            Float16.toFloat(
                initializer(model, "layer0.weight")
                    .getRawData()
                    .asReadOnlyByteBuffer()
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .getShort(0)))
        .isEqualTo(
            Float16.toFloat(
                Float16.fromFloat(Tensors.floats(initializer(mlp.model(), "layer0.weight"))[0])));
    assertThat(model.inputs()).isEqualTo(mlp.model().inputs());
    assertThat(model.outputs()).isEqualTo(mlp.model().outputs());
    List<NodeProto> graphNodes = model.proto().getGraph().getNodeList();
    NodeProto first = graphNodes.get(0);
    NodeProto last = graphNodes.get(graphNodes.size() - 1);
    assertThat(first.getOpType()).isEqualTo("Cast");
    assertThat(first.getInputList()).containsExactly("features");
    assertThat(attribute(first, "to")).isEqualTo(FLOAT16.onnxNumber());
    assertThat(last.getOpType()).isEqualTo("Cast");
    assertThat(last.getOutputList()).containsExactly("scores");
    assertThat(attribute(last, "to")).isEqualTo(FLOAT.onnxNumber());
    // The model's own nodes keep their names and order.
    assertThat(graphNodes.subList(1, graphNodes.size() - 1))
        .extracting(NodeProto::getName)
        .containsExactly("Gemm_0", "Relu_1", "Gemm_2", "Relu_3", "Gemm_4");
    assertThat(compressed.report().initializerBytesAfter() * 2)
        .isEqualTo(compressed.report().initializerBytesBefore());

    int rows = 8;
    float[] input = randomValues(rows * 64, 1);
    float[] fp32 = OrtTesting.run(mlp.model(), "features", input, new long[] {rows, 64}, "scores");
    float[] fp16 = OrtTesting.run(model, "features", input, new long[] {rows, 64}, "scores");
    assertThat(relativeError(fp16, fp32)).isLessThan(5e-3);
  }

  /**
   * A BERT-style mask: (1 - Cast(mask)) * -3.4e38 added to scores before a Softmax; a Range
   * (float32 only on CUDA); ConstantOfShape without a value; a Constant; value_info.
   */
  private static OnnxModel maskedSoftmax() {
    ModelProto proto =
        OnnxModelBuilder.create("masked")
            .input("scores", FLOAT, 1, 6)
            .input("mask", INT64, 1, 6)
            .initializer("start", new float[] {0f})
            .initializer("limit", new float[] {6f})
            .initializer("step", new float[] {1f})
            .initializer("lowest", new float[] {-3.4028235e38f})
            .initializer("shape", new long[] {1, 6}, 2)
            .node(
                "Cast",
                List.of("mask"),
                List.of("mask_float"),
                Attribute.ofInt("to", FLOAT.onnxNumber()))
            .node("Constant", List.of(), List.of("one"), Attribute.ofFloat("value_float", 1f))
            .node("Sub", List.of("one", "mask_float"), List.of("inverted"))
            .node("Mul", List.of("inverted", "lowest"), List.of("penalty"))
            .node("Range", List.of("start", "limit", "step"), List.of("positions"))
            .node("ConstantOfShape", List.of("shape"), List.of("zeros"))
            .node("Add", List.of("scores", "zeros"), List.of("scores_copy"))
            .node("Mul", List.of("positions", "one"), List.of("bias"))
            .node("Add", List.of("scores_copy", "bias"), List.of("biased"))
            .node("Add", List.of("biased", "penalty"), List.of("masked"))
            .node(
                "Softmax", List.of("masked"), List.of("probabilities"), Attribute.ofInt("axis", -1))
            .output("probabilities", FLOAT, 1, 6)
            .build()
            .proto();
    GraphProto graph =
        proto.getGraph().toBuilder()
            .addValueInfo(floatValueInfo("masked", FLOAT))
            .addValueInfo(floatValueInfo("positions", FLOAT))
            .build();
    return new OnnxModel(proto.toBuilder().setGraph(graph).build());
  }

  @Test
  void castsConstantsMasksAndFloat32OperatorsKeepTheModelRight() throws Exception {
    OnnxModel original = maskedSoftmax();
    CompressedModel compressed = FLOAT16_COMPRESSOR.compress(original);
    OnnxModel model = compressed.model();
    GraphProto graph = model.proto().getGraph();

    NodeProto cast =
        nodes(model, "Cast").stream()
            .filter(node -> node.getName().equals("Cast_0"))
            .findFirst()
            .orElseThrow();
    assertThat(attribute(cast, "to")).isEqualTo(FLOAT16.onnxNumber());
    NodeProto constant = nodes(model, "Constant").get(0);
    assertThat(constant.getAttribute(0).getT().getDataType()).isEqualTo(FLOAT16.onnxNumber());
    NodeProto zeros = nodes(model, "ConstantOfShape").get(0);
    assertThat(zeros.getAttribute(0).getT().getDataType()).isEqualTo(FLOAT16.onnxNumber());
    // -3.4e38 becomes the lowest float16, not -infinity (whose product with 0 would be NaN).
    TensorProto lowest = initializer(model, "lowest");
    assertThat(lowest.getDataType()).isEqualTo(FLOAT16.onnxNumber());
    assertThat(
            Float16.toFloat(
                lowest
                    .getRawData()
                    .asReadOnlyByteBuffer()
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .getShort(0)))
        .isEqualTo(-65504f);
    // Range has no float16 CUDA kernel: its float32 inputs stay, a Cast follows it.
    NodeProto range = nodes(model, "Range").get(0);
    assertThat(range.getInputList()).containsExactly("start", "limit", "step");
    assertThat(initializer(model, "start").getDataType()).isEqualTo(FLOAT.onnxNumber());
    assertThat(compressed.report().left())
        .singleElement()
        .satisfies(
            entry -> {
              assertThat(entry.name()).isEqualTo("Range_4");
              assertThat(entry.detail()).contains("CUDA");
            });
    NodeProto bias =
        graph.getNodeList().stream()
            .filter(node -> node.getName().equals("Mul_7"))
            .findFirst()
            .orElseThrow();
    assertThat(bias.getInput(0)).isEqualTo("positions_float16");
    // value_info follows the new types; the Range output keeps float32.
    assertThat(graph.getValueInfoList())
        .extracting(info -> info.getName() + ":" + info.getType().getTensorType().getElemType())
        .containsExactly("masked:" + FLOAT16.onnxNumber(), "positions:" + FLOAT.onnxNumber());

    float[] scores = {0.5f, -1f, 2f, 0.25f, 3f, -0.5f};
    long[] mask = {1, 1, 0, 1, 0, 1};
    float[] expected = runMasked(original, scores, mask);
    float[] actual = runMasked(model, scores, mask);
    assertThat(expected[2]).isZero();
    assertThat(actual[2]).isZero();
    assertThat(relativeError(actual, expected)).isLessThan(1e-3);
  }

  @Test
  void callerCanKeepMoreOperatorsInFloat32() throws Exception {
    MultilayerPerceptronModel mlp =
        MultilayerPerceptronModel.builder().layerSizes(16, 32, 8).seed(2).build();
    OnnxModel model =
        ModelCompressor.builder()
            .precision(Precision.FLOAT16)
            .keepFloat32("Relu")
            .build()
            .compress(mlp.model())
            .model();
    NodeProto relu = nodes(model, "Relu").get(0);
    assertThat(relu.getInputList()).containsExactly("layer0.linear_float32");
    assertThat(nodes(model, "Cast")).hasSize(4);
    float[] input = randomValues(16, 3);
    assertThat(
            relativeError(
                OrtTesting.run(model, "features", input, new long[] {1, 16}, "scores"),
                OrtTesting.run(mlp.model(), "features", input, new long[] {1, 16}, "scores")))
        .isLessThan(5e-3);
  }

  @Test
  void operatorsOutsideOnnxsDomainStayFloat32() throws Exception {
    MultilayerPerceptronModel mlp =
        MultilayerPerceptronModel.builder().layerSizes(64, 128, 32).seed(4).build();
    OnnxModel int4 =
        ModelCompressor.builder().precision(Precision.INT4).build().compress(mlp.model()).model();
    CompressedModel compressed = FLOAT16_COMPRESSOR.compress(int4);
    OnnxModel model = compressed.model();

    // The first reads the float32 graph input as it is, the second a Cast of the float16 Relu.
    List<NodeProto> matMuls = nodes(model, "MatMulNBits");
    assertThat(matMuls)
        .extracting(node -> node.getInput(0))
        .containsExactly("features", "layer0.relu_float32");
    for (NodeProto matMul : matMuls) {
      assertThat(initializer(model, matMul.getInput(2)).getDataType())
          .isEqualTo(FLOAT.onnxNumber());
    }
    assertThat(compressed.report().left())
        .extracting(CompressionReport.Entry::operatorType)
        .containsExactly("MatMulNBits", "MatMulNBits");
    float[] input = randomValues(4 * 64, 5);
    assertThat(
            relativeError(
                OrtTesting.run(model, "features", input, new long[] {4, 64}, "scores"),
                OrtTesting.run(int4, "features", input, new long[] {4, 64}, "scores")))
        .isLessThan(5e-3);
  }

  @Test
  void refusesSubgraphsAndOutputsOfUnknownType() {
    GraphProto branch =
        GraphProto.newBuilder()
            .setName("branch")
            .addNode(NodeProto.newBuilder().setOpType("Identity").addInput("x").addOutput("out"))
            .addOutput(floatValueInfo("out", FLOAT))
            .build();
    OnnxModel withIf =
        withNode(
            NodeProto.newBuilder()
                .setName("choose")
                .setOpType("If")
                .addInput("condition")
                .addOutput("y")
                .addAttribute(graphAttribute("then_branch", branch))
                .addAttribute(graphAttribute("else_branch", branch))
                .build());
    assertThatThrownBy(() -> FLOAT16_COMPRESSOR.compress(withIf))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("subgraph")
        .hasMessageContaining("choose")
        .hasMessageContaining("then_branch");

    OnnxModel custom =
        withNode(
            NodeProto.newBuilder()
                .setName("mystery")
                .setOpType("Mystery")
                .setDomain("com.example")
                .addInput("x")
                .addOutput("y")
                .build());
    assertThatThrownBy(() -> FLOAT16_COMPRESSOR.compress(custom))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("element type of y")
        .hasMessageContaining("com.example:Mystery")
        .hasMessageContaining("value_info");

    ModelProto declared = custom.proto();
    OnnxModel withValueInfo =
        new OnnxModel(
            declared.toBuilder()
                .setGraph(declared.getGraph().toBuilder().addValueInfo(floatValueInfo("y", FLOAT)))
                .build());
    OnnxModel converted = FLOAT16_COMPRESSOR.compress(withValueInfo).model();
    NodeProto add = nodes(converted, "Add").get(0);
    assertThat(add.getInputList()).containsExactly("x_float16", "y_float16");
  }

  /** x: FLOAT [2], condition: BOOL []; the node makes y; z = x + y. */
  private static OnnxModel withNode(NodeProto node) {
    GraphProto graph =
        GraphProto.newBuilder()
            .setName("g")
            .addInput(floatValueInfo("x", FLOAT))
            .addInput(floatValueInfo("condition", OnnxElementType.BOOL))
            .addNode(node)
            .addNode(
                NodeProto.newBuilder()
                    .setName("add")
                    .setOpType("Add")
                    .addInput("x")
                    .addInput("y")
                    .addOutput("z"))
            .addOutput(floatValueInfo("z", FLOAT))
            .build();
    return new OnnxModel(
        ModelProto.newBuilder()
            .setIrVersion(10)
            .addOpsetImport(ai.onnx.proto.OnnxMl.OperatorSetIdProto.newBuilder().setVersion(17))
            .setGraph(graph)
            .build());
  }

  private static AttributeProto graphAttribute(String name, GraphProto graph) {
    return AttributeProto.newBuilder()
        .setName(name)
        .setType(AttributeProto.AttributeType.GRAPH)
        .setG(graph)
        .build();
  }

  private static ValueInfoProto floatValueInfo(String name, OnnxElementType type) {
    return ValueInfoProto.newBuilder()
        .setName(name)
        .setType(
            TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(type.onnxNumber())))
        .build();
  }

  private static float[] runMasked(OnnxModel model, float[] scores, long[] mask) throws Exception {
    try (OrtSession session = OrtTesting.ENVIRONMENT.createSession(model.toBytes());
        OnnxTensor scoreTensor =
            OnnxTensor.createTensor(
                OrtTesting.ENVIRONMENT, FloatBuffer.wrap(scores), new long[] {1, 6});
        OnnxTensor maskTensor =
            OnnxTensor.createTensor(
                OrtTesting.ENVIRONMENT, LongBuffer.wrap(mask), new long[] {1, 6});
        OrtSession.Result result = session.run(Map.of("scores", scoreTensor, "mask", maskTensor))) {
      return ((float[][]) result.get(0).getValue())[0];
    }
  }
}
