package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Stages of a split model run one after another in ONNX Runtime (CPU) against the whole model: a
 * generated MLP, the same with its weights in an external data file, and all-MiniLM-L6-v2; and the
 * split's bookkeeping: every node and initializer in exactly one stage, weights balanced.
 */
class TestPipelineSplit {
  @TempDir Path folder;

  private static OnnxModel mlp() {
    return MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 256, 16).seed(5).inputName("features")
        .outputName("scores").build().model();
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 4})
  void mlpStagesInSequenceGiveTheWholeModelsOutput(int count) throws Exception {
    OnnxModel whole = mlp();
    PipelineSplit split = PipelineSplit.of(whole, count);
    assertThat(split.stages()).hasSize(count);
    assertEveryNodeAndInitializerOnce(whole, split);
    float[] features = new float[32 * 64];
    SplittableRandom random = new SplittableRandom(1);
    for (int i = 0; i < features.length; i++) {
      features[i] = (float) random.nextDouble(-1, 1);
    }
    try (OnnxTensor input = OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, FloatBuffer.wrap(features),
        new long[] {32, 64})) {
      float[] expected = runWhole(whole.toBytes(), Map.of("features", input), "scores");
      float[] actual = runStages(stageFiles(split, folder), Map.of("features", input), "scores");
      assertThat(actual).containsExactly(expected, org.assertj.core.data.Offset.offset(1e-5f));
    }
    if (count > 1) {
      // Layers of 64x256, 256x256, 256x256, 256x16 weights: no stage holds more than its share and a layer.
      long total = split.stages().stream().mapToLong(PipelineSplit.Stage::weightBytes).sum();
      assertThat(split.stages()).allSatisfy(stage -> assertThat(stage.weightBytes()).isPositive()
          .isLessThanOrEqualTo(total / count + 256 * 256 * 4 + 256 * 4));
    }
  }

  @Test
  void externalDataWeightsStayWithTheirNodes() throws Exception {
    OnnxModel inline = mlp();
    // The weights go to one data file; each stage then refers to its own weights in it.
    ModelProto.Builder external = inline.proto().toBuilder();
    Path data = folder.resolve("weights.bin");
    long offset = 0;
    try (OutputStream out = Files.newOutputStream(data)) {
      for (int i = 0; i < external.getGraph().getInitializerCount(); i++) {
        TensorProto tensor = external.getGraph().getInitializer(i);
        byte[] bytes = tensor.getRawData().toByteArray();
        out.write(bytes);
        external.getGraphBuilder().setInitializer(i, tensor.toBuilder().clearRawData()
            .setDataLocation(TensorProto.DataLocation.EXTERNAL)
            .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue("weights.bin"))
            .addExternalData(StringStringEntryProto.newBuilder().setKey("offset").setValue(Long.toString(offset)))
            .addExternalData(StringStringEntryProto.newBuilder().setKey("length").setValue(Long.toString(bytes.length))));
        offset += bytes.length;
      }
    }
    OnnxModel model = new OnnxModel(external.build());
    Path wholeFile = folder.resolve("whole.onnx");
    model.writeTo(wholeFile);
    PipelineSplit split = PipelineSplit.of(model, 2);
    assertEveryNodeAndInitializerOnce(model, split);
    for (PipelineSplit.Stage stage : split.stages()) {
      assertThat(stage.model().proto().getGraph().getInitializerList())
          .allSatisfy(tensor -> assertThat(Tensors.isExternal(tensor)).isTrue());
    }
    float[] features = new float[8 * 64];
    java.util.Arrays.fill(features, 0.25f);
    try (OnnxTensor input = OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, FloatBuffer.wrap(features),
        new long[] {8, 64});
        OrtSession session = OrtTesting.ENVIRONMENT.createSession(wholeFile.toString());
        OrtSession.Result result = session.run(Map.of("features", input))) {
      float[] expected = floats(result.get("scores").orElseThrow());
      float[] actual = runStages(stageFiles(split, folder), Map.of("features", input), "scores");
      assertThat(actual).containsExactly(expected, org.assertj.core.data.Offset.offset(1e-5f));
    }
  }

  @Test
  void miniLmStagesInSequenceGiveTheWholeModelsTokenStates() throws Exception {
    OnnxModel whole;
    try (InputStream in = TestPipelineSplit.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
      assertThat(in).as("all-minilm-l6-v2.onnx on the test class path (langchain4j's artifact)").isNotNull();
      whole = OnnxModel.parse(in.readAllBytes());
    }
    long[] ids = {101, 7592, 2088, 1010, 2023, 2003, 1037, 3231, 102, 101, 2460, 102, 0, 0, 0, 0, 0, 0};
    long[] mask = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    long[] shape = {2, 9};
    try (OnnxTensor inputIds = longs(ids, shape);
        OnnxTensor attention = longs(mask, shape);
        OnnxTensor types = longs(new long[18], shape)) {
      Map<String, OnnxTensor> inputs = Map.of("input_ids", inputIds, "attention_mask", attention,
          "token_type_ids", types);
      float[] expected = runWhole(whole.toBytes(), inputs, "last_hidden_state");
      for (int count : new int[] {2, 3}) {
        PipelineSplit split = PipelineSplit.of(whole, count);
        assertEveryNodeAndInitializerOnce(whole, split);
        float[] actual = runStages(stageFiles(split, folder.resolve("minilm" + count)), inputs, "last_hidden_state");
        assertThat(actual).as("%d stages", count).containsExactly(expected, org.assertj.core.data.Offset.offset(1e-5f));
        System.out.println("MiniLM in " + count + " stages: " + split.stages());
        if (count == 3) {
          // 90 MB of weights: 47 MB in the word embeddings (one Gather, the first stage) and six equal
          // layers, which the other two stages share about evenly.
          long layers = split.stages().get(1).weightBytes() + split.stages().get(2).weightBytes();
          assertThat((double) split.stages().get(1).weightBytes() / layers).isBetween(0.4, 0.6);
        }
      }
    }
  }

  @Test
  void refusesStageCountsTheGraphCannotHave() {
    OnnxModel model = mlp();
    int nodes = model.proto().getGraph().getNodeCount();
    assertThatThrownBy(() -> PipelineSplit.of(model, 0)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("from 1 to the node count");
    assertThatThrownBy(() -> PipelineSplit.of(model, nodes + 1)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("graph of " + nodes + " nodes into " + (nodes + 1) + " stages");
  }

  private static void assertEveryNodeAndInitializerOnce(OnnxModel whole, PipelineSplit split) {
    List<String> nodes = new ArrayList<>();
    List<String> initializers = new ArrayList<>();
    for (PipelineSplit.Stage stage : split.stages()) {
      for (NodeProto node : stage.model().proto().getGraph().getNodeList()) {
        if (!node.getName().startsWith("sparkinfer_pass_")) {
          nodes.add(node.getName() + "/" + node.getOutput(0));
        }
      }
      stage.model().proto().getGraph().getInitializerList().forEach(tensor -> initializers.add(tensor.getName()));
    }
    List<String> wholeNodes = new ArrayList<>();
    whole.proto().getGraph().getNodeList().forEach(node -> wholeNodes.add(node.getName() + "/" + node.getOutput(0)));
    assertThat(nodes).containsExactlyInAnyOrderElementsOf(wholeNodes);
    List<String> wholeInitializers = new ArrayList<>();
    whole.proto().getGraph().getInitializerList().forEach(tensor -> wholeInitializers.add(tensor.getName()));
    assertThat(initializers).containsExactlyInAnyOrderElementsOf(wholeInitializers);
  }

  private static List<Path> stageFiles(PipelineSplit split, Path directory) throws Exception {
    Files.createDirectories(directory);
    List<Path> files = new ArrayList<>();
    for (int i = 0; i < split.stages().size(); i++) {
      Path file = directory.resolve("stage" + i + ".onnx");
      split.stages().get(i).model().writeTo(file);
      files.add(file);
    }
    return files;
  }

  /** Runs each stage on what the inputs and the stages before it made; returns {@code output}'s values. */
  private static float[] runStages(List<Path> stages, Map<String, OnnxTensor> inputs, String output) throws OrtException {
    Map<String, OnnxValue> values = new HashMap<>(inputs);
    List<OrtSession.Result> results = new ArrayList<>();
    List<OrtSession> sessions = new ArrayList<>();
    try {
      for (Path stage : stages) {
        OrtSession session = OrtTesting.ENVIRONMENT.createSession(stage.toString());
        sessions.add(session);
        Map<String, OnnxTensor> feeds = new HashMap<>();
        for (String name : session.getInputNames()) {
          assertThat(values).as("stage %s reads %s", stage.getFileName(), name).containsKey(name);
          feeds.put(name, (OnnxTensor) values.get(name));
        }
        OrtSession.Result result = session.run(feeds);
        results.add(result);
        for (Map.Entry<String, OnnxValue> entry : result) {
          values.put(entry.getKey(), entry.getValue());
        }
      }
      return floats(values.get(output));
    } finally {
      results.forEach(OrtSession.Result::close);
      for (OrtSession session : sessions) {
        session.close();
      }
    }
  }

  private static float[] runWhole(byte[] model, Map<String, OnnxTensor> inputs, String output) throws OrtException {
    try (OrtSession session = OrtTesting.ENVIRONMENT.createSession(model);
        OrtSession.Result result = session.run(inputs)) {
      return floats(result.get(output).orElseThrow());
    }
  }

  private static float[] floats(OnnxValue value) {
    FloatBuffer buffer = ((OnnxTensor) value).getFloatBuffer();
    float[] array = new float[buffer.remaining()];
    buffer.get(array);
    return array;
  }

  private static OnnxTensor longs(long[] values, long[] shape) throws OrtException {
    return OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, LongBuffer.wrap(values), shape);
  }
}
