package io.github.sparkinfer.compression;

import static io.github.sparkinfer.compression.OnnxElementType.FLOAT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

import ai.onnx.proto.OnnxMl.FunctionProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestOnnxModel {
  // A field number ONNX does not use: stands for a field of an ONNX version newer than the schema.
  private static final int FUTURE_FIELD = 1000;

  @Test
  void parseThenWriteGivesTheSameBytes() throws Exception {
    byte[] bytes =
        MultilayerPerceptronModel.builder().layerSizes(8, 16, 4).seed(3).build().toBytes();
    OnnxModel parsed = OnnxModel.parse(bytes);

    assertThat(parsed.toBytes()).isEqualTo(bytes);
    assertThat(parsed.graphName()).isEqualTo("mlp");
    assertThat(parsed.proto().getGraph().getInitializerList())
        .extracting(TensorProto::getName)
        .containsExactly("layer0.weight", "layer0.bias", "layer1.weight", "layer1.bias");
    try (OrtSession session = OrtEnvironment.getEnvironment().createSession(parsed.toBytes())) {
      assertThat(session.getInputNames()).containsExactly("features");
    }
  }

  @Test
  void keepsEverythingItDoesNotBuildItself() {
    ModelProto original = modelWithEverything();
    byte[] bytes = original.toByteArray();

    OnnxModel parsed = OnnxModel.parse(bytes);

    assertThat(parsed.proto()).isEqualTo(original);
    assertThat(parsed.toBytes()).isEqualTo(bytes);
    assertThat(parsed.proto().getUnknownFields().hasField(FUTURE_FIELD)).isTrue();
    TensorProto external = parsed.proto().getGraph().getInitializer(0);
    assertThat(external.getDataLocation()).isEqualTo(TensorProto.DataLocation.EXTERNAL);
    assertThat(external.getExternalDataList())
        .extracting(StringStringEntryProto::getKey, StringStringEntryProto::getValue)
        .containsExactly(
            tuple("location", "weights.bin"),
            tuple("offset", "4096"),
            tuple("length", "64"));
    assertThat(parsed.opsetImports())
        .containsExactly(Map.entry("", 17L), Map.entry("ai.onnx.ml", 3L));
    assertThat(parsed.metadata()).containsExactly(Map.entry("author", "test"));
    // The initializer that is also a graph input is a default, not an input a caller must feed.
    assertThat(parsed.inputs()).extracting(TensorDeclaration::name).containsExactly("x");
    assertThat(parsed.inputs().get(0).dimensions())
        .containsExactly(Dimension.symbolic("n"), Dimension.unknown(), Dimension.fixed(16));
  }

  @Test
  void readsAndWritesFiles(@TempDir Path directory) throws IOException {
    ModelProto original = modelWithEverything();
    Path file = directory.resolve("model.onnx");
    Files.write(file, original.toByteArray());

    OnnxModel read = OnnxModel.read(file);
    assertThat(read.proto()).isEqualTo(original);

    Path copy = directory.resolve("copy.onnx");
    read.writeTo(copy);
    assertThat(copy).hasSameBinaryContentAs(file);
    assertThat(OnnxModel.read(copy)).isEqualTo(read).hasSameHashCodeAs(read);
  }

  @Test
  void describesShapelessAndNonTensorValues() {
    ValueInfoProto shapeless =
        ValueInfoProto.newBuilder()
            .setName("any")
            .setType(
                TypeProto.newBuilder()
                    .setTensorType(TypeProto.Tensor.newBuilder().setElemType(FLOAT.onnxNumber())))
            .build();
    TensorDeclaration declaration = OnnxProtos.declaration(shapeless);
    assertThat(declaration.isShapeKnown()).isFalse();
    assertThat(declaration).hasToString("any: FLOAT[unknown rank]");
    assertThat(OnnxProtos.valueInfo(declaration)).isEqualTo(shapeless);

    ValueInfoProto sequence =
        ValueInfoProto.newBuilder()
            .setName("list")
            .setType(TypeProto.newBuilder().setSequenceType(TypeProto.Sequence.newBuilder()))
            .build();
    assertThatThrownBy(() -> OnnxProtos.declaration(sequence))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("list");
  }

  @Test
  void rejectsBytesThatAreNoModel() {
    assertThatThrownBy(() -> OnnxModel.parse(new byte[] {(byte) 0xff, (byte) 0xff, 0x01}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("Not an ONNX model");
  }

  @Test
  void elementTypesMatchTheOnnxSchema() {
    for (OnnxElementType type : OnnxElementType.values()) {
      assertThat(TensorProto.DataType.forNumber(type.onnxNumber()).name()).isEqualTo(type.name());
    }
  }

  /** Fields that OnnxModelBuilder never writes, as real exported models have them. */
  private static ModelProto modelWithEverything() {
    TensorProto external =
        TensorProto.newBuilder()
            .setName("w")
            .setDataType(FLOAT.onnxNumber())
            .addDims(16)
            .setDataLocation(TensorProto.DataLocation.EXTERNAL)
            .addExternalData(entry("location", "weights.bin"))
            .addExternalData(entry("offset", "4096"))
            .addExternalData(entry("length", "64"))
            .build();
    ValueInfoProto input =
        ValueInfoProto.newBuilder()
            .setName("x")
            .setDocString("rows to score")
            .setType(
                TypeProto.newBuilder()
                    .setTensorType(
                        TypeProto.Tensor.newBuilder()
                            .setElemType(FLOAT.onnxNumber())
                            .setShape(
                                TensorShapeProto.newBuilder()
                                    .addDim(
                                        dimension().setDimParam("n").setDenotation("DATA_BATCH"))
                                    .addDim(dimension())
                                    .addDim(dimension().setDimValue(16)))))
            .build();
    ValueInfoProto weightAsInput = input.toBuilder().setName("w").build();
    GraphProto graph =
        GraphProto.newBuilder()
            .setName("everything")
            .setDocString("graph doc")
            .addInput(input)
            .addInput(weightAsInput)
            .addInitializer(external)
            .addNode(
                NodeProto.newBuilder()
                    .setName("mul")
                    .setOpType("Mul")
                    .addInput("x")
                    .addInput("w")
                    .addOutput("y")
                    .setDocString("node doc")
                    .addMetadataProps(entry("origin", "hand-made")))
            .addValueInfo(input.toBuilder().setName("y"))
            .addOutput(input.toBuilder().setName("y"))
            .build();
    return ModelProto.newBuilder()
        .setIrVersion(10)
        .setProducerName("someone else")
        .setProducerVersion("1.2.3")
        .setDomain("com.example")
        .setModelVersion(7)
        .setDocString("model doc")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(17))
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("ai.onnx.ml").setVersion(3))
        .addMetadataProps(entry("author", "test"))
        .addFunctions(
            FunctionProto.newBuilder()
                .setName("Twice")
                .setDomain("com.example")
                .addInput("a")
                .addOutput("b")
                .addNode(
                    NodeProto.newBuilder()
                        .setOpType("Add")
                        .addInput("a")
                        .addInput("a")
                        .addOutput("b")))
        .setGraph(graph)
        .setUnknownFields(
            UnknownFieldSet.newBuilder()
                .addField(
                    FUTURE_FIELD,
                    UnknownFieldSet.Field.newBuilder()
                        .addLengthDelimited(ByteString.copyFromUtf8("from a newer ONNX"))
                        .build())
                .build())
        .build();
  }

  private static TensorShapeProto.Dimension.Builder dimension() {
    return TensorShapeProto.Dimension.newBuilder();
  }

  private static StringStringEntryProto entry(String key, String value) {
    return StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
  }

  @Test
  void declarationsWriteBackAsTheyRead() {
    OnnxModel model =
        OnnxModelBuilder.create("g")
            .input("x", FLOAT, "batch", Dimension.unknown(), 4)
            .node("Identity", List.of("x"), List.of("y"))
            .output("y", FLOAT, "batch", Dimension.unknown(), 4)
            .build();
    for (ValueInfoProto input : model.proto().getGraph().getInputList()) {
      assertThat(OnnxProtos.valueInfo(OnnxProtos.declaration(input))).isEqualTo(input);
    }
  }
}
