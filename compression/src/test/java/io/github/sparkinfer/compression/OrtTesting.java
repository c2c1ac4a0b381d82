package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Collectors;

/** Running models in ONNX Runtime and looking into their graphs, for the compression tests. */
final class OrtTesting {
  static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment();

  private OrtTesting() {}

  /** One float input, one float output, ORT's default options (all optimizations, CPU). */
  static float[] run(OnnxModel model, String input, float[] values, long[] shape, String output)
      throws OrtException {
    try (OrtSession session = ENVIRONMENT.createSession(model.toBytes());
        OnnxTensor tensor = OnnxTensor.createTensor(ENVIRONMENT, FloatBuffer.wrap(values), shape);
        OrtSession.Result result = session.run(Map.of(input, tensor))) {
      FloatBuffer buffer = ((OnnxTensor) result.get(output).orElseThrow()).getFloatBuffer();
      float[] array = new float[buffer.remaining()];
      buffer.get(array);
      return array;
    }
  }

  /** The graph as ORT runs it on the CPU, after its fusions, as operator counts. */
  static Map<String, Long> operatorsAfterOrtOptimization(OnnxModel model, Path directory)
      throws OrtException, IOException {
    Path optimized = Files.createTempFile(directory, "optimized", ".onnx");
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      // Extended: the level of ORT's quantization fusions, below the layout transforms whose
      // output is specific to this CPU (ORT warns when those are saved).
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.EXTENDED_OPT);
      options.setOptimizedModelFilePath(optimized.toString());
      try (OrtSession session = ENVIRONMENT.createSession(model.toBytes(), options)) {
        assertThat(session.getNumInputs()).isPositive();
      }
    }
    return operatorCounts(OnnxModel.read(optimized));
  }

  static Map<String, Long> operatorCounts(OnnxModel model) {
    return model.proto().getGraph().getNodeList().stream()
        .collect(
            Collectors.groupingBy(
                node ->
                    node.getDomain().isEmpty()
                        ? node.getOpType()
                        : node.getDomain() + ":" + node.getOpType(),
                java.util.TreeMap::new,
                Collectors.counting()));
  }

  static TensorProto initializer(OnnxModel model, String name) {
    return model.proto().getGraph().getInitializerList().stream()
        .filter(tensor -> tensor.getName().equals(name))
        .findFirst()
        .orElseThrow(() -> new AssertionError("No initializer " + name));
  }

  static boolean hasInitializer(OnnxModel model, String name) {
    return model.proto().getGraph().getInitializerList().stream()
        .anyMatch(tensor -> tensor.getName().equals(name));
  }

  static List<NodeProto> nodes(OnnxModel model, String opType) {
    return model.proto().getGraph().getNodeList().stream()
        .filter(node -> node.getOpType().equals(opType))
        .collect(Collectors.toList());
  }

  static long attribute(NodeProto node, String name) {
    return node.getAttributeList().stream()
        .filter(attribute -> attribute.getName().equals(name))
        .findFirst()
        .orElseThrow(() -> new AssertionError(node.getName() + " has no attribute " + name))
        .getI();
  }

  static float[] randomValues(int count, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) random.nextDouble(-1, 1);
    }
    return values;
  }

  static double cosine(float[] a, float[] b) {
    double dot = 0;
    double normA = 0;
    double normB = 0;
    for (int i = 0; i < a.length; i++) {
      dot += (double) a[i] * b[i];
      normA += (double) a[i] * a[i];
      normB += (double) b[i] * b[i];
    }
    return dot / Math.sqrt(normA * normB);
  }

  /** Largest |actual - expected|, relative to the largest |expected|. */
  static double relativeError(float[] actual, float[] expected) {
    assertThat(actual).hasSameSizeAs(expected);
    double largest = 0;
    double error = 0;
    for (int i = 0; i < expected.length; i++) {
      largest = Math.max(largest, Math.abs(expected[i]));
      error = Math.max(error, Math.abs(actual[i] - expected[i]));
    }
    return error / largest;
  }
}
