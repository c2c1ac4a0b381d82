package io.github.sparkinfer.spark;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.compression.Attribute;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import io.github.sparkinfer.device.OrtEnvironments;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/** Models for tests, and direct ONNX Runtime calls to check sparkinfer against. */
final class TestModels {
  static final int MLP_INPUTS = 16;
  static final int MLP_OUTPUTS = 4;

  private TestModels() {}

  static MultilayerPerceptronModel mlp() {
    return MultilayerPerceptronModel.builder()
        .layerSizes(MLP_INPUTS, 32, MLP_OUTPUTS)
        .seed(7)
        .inputName("features")
        .outputName("scores")
        .build();
  }

  static Path writeMlp(Path folder) {
    Path file = folder.resolve("mlp.onnx");
    try {
      mlp().writeTo(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  /**
   * Two inputs, three outputs: a: float [batch], b: float [batch, 3]; total = a + sum(b) as float
   * [batch], total_id = that as int64 [batch], grid = b * 2 reshaped to float [batch, 3, 1].
   */
  static Path writeMultiIo(Path folder) {
    Path file = folder.resolve("multi.onnx");
    try {
      OnnxModelBuilder.create("multi")
          .input("a", OnnxElementType.FLOAT, "batch")
          .input("b", OnnxElementType.FLOAT, "batch", 3)
          .initializer("axes", new long[] {1}, 1)
          .initializer("two", new float[] {2f})
          .node("ReduceSum", List.of("b", "axes"), List.of("b_sum"), Attribute.ofInt("keepdims", 0))
          .node("Add", List.of("a", "b_sum"), List.of("total"))
          .node("Cast", List.of("total"), List.of("total_id"), Attribute.ofInt("to", 7))
          .node("Mul", List.of("b", "two"), List.of("doubled"))
          .initializer("axes2", new long[] {2}, 1)
          .node("Unsqueeze", List.of("doubled", "axes2"), List.of("grid"))
          .output("total", OnnxElementType.FLOAT, "batch")
          .output("total_id", OnnxElementType.INT64, "batch")
          .output("grid", OnnxElementType.FLOAT, "batch", 3, 1)
          .writeTo(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  /** The real all-MiniLM-L6-v2 (fp32) ONNX file from langchain4j's artifact. */
  static Path copyMiniLm(Path folder) {
    return copyResource(folder, "all-minilm-l6-v2.onnx");
  }

  /** A file from the test class path (the langchain4j model artifacts), copied into a folder. */
  static Path copyResource(Path folder, String resource) {
    Path file = folder.resolve(resource);
    if (!Files.exists(file)) {
      try (InputStream in = TestModels.class.getClassLoader().getResourceAsStream(resource)) {
        if (in == null) {
          throw new IllegalStateException(resource + " not on the test class path");
        }
        Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return file;
  }

  static float[][] randomRows(int rows, int width, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[][] data = new float[rows][width];
    for (float[] row : data) {
      for (int i = 0; i < width; i++) {
        row[i] = (float) (random.nextDouble() * 2 - 1);
      }
    }
    return data;
  }

  /** A direct ORT run of a float [batch, n] → float [batch, m] model: the independent reference. */
  static float[][] runFloatModel(Path model, String input, float[][] rows) throws Exception {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      return runFloatModel(model, input, rows, options);
    }
  }

  /** As {@link #runFloatModel(Path, String, float[][])}, with the caller's session options (a device). */
  static float[][] runFloatModel(Path model, String input, float[][] rows, OrtSession.SessionOptions options)
      throws Exception {
    OrtEnvironment environment = OrtEnvironments.get();
    int width = rows[0].length;
    FloatBuffer buffer = FloatBuffer.allocate(rows.length * width);
    for (float[] row : rows) {
      buffer.put(row);
    }
    buffer.flip();
    try (OrtSession session = environment.createSession(model.toString(), options);
        OnnxTensor tensor = OnnxTensor.createTensor(environment, buffer, new long[] {rows.length, width});
        OrtSession.Result result = session.run(Map.of(input, tensor))) {
      return (float[][]) result.get(0).getValue();
    }
  }

  /** A direct ORT run of MiniLM on token ids: last_hidden_state [batch, length, 384]. */
  static float[][][] runMiniLm(Path model, long[][] ids, long[][] mask) throws Exception {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(1);
      return runMiniLm(model, ids, mask, options);
    }
  }

  /** As {@link #runMiniLm(Path, long[][], long[][])}, with the caller's session options (a device). */
  static float[][][] runMiniLm(Path model, long[][] ids, long[][] mask, OrtSession.SessionOptions options)
      throws Exception {
    OrtEnvironment environment = OrtEnvironments.get();
    int batch = ids.length;
    int length = ids[0].length;
    LongBuffer idBuffer = LongBuffer.allocate(batch * length);
    LongBuffer maskBuffer = LongBuffer.allocate(batch * length);
    LongBuffer typeBuffer = LongBuffer.allocate(batch * length);
    for (int i = 0; i < batch; i++) {
      idBuffer.put(ids[i]);
      maskBuffer.put(mask[i]);
      typeBuffer.put(new long[length]);
    }
    idBuffer.flip();
    maskBuffer.flip();
    typeBuffer.flip();
    long[] shape = {batch, length};
    try (OrtSession session = environment.createSession(model.toString(), options);
        OnnxTensor idTensor = OnnxTensor.createTensor(environment, idBuffer, shape);
        OnnxTensor maskTensor = OnnxTensor.createTensor(environment, maskBuffer, shape);
        OnnxTensor typeTensor = OnnxTensor.createTensor(environment, typeBuffer, shape);
        OrtSession.Result result =
            session.run(Map.of("input_ids", idTensor, "attention_mask", maskTensor, "token_type_ids", typeTensor))) {
      return (float[][][]) result.get("last_hidden_state").orElseThrow().getValue();
    }
  }
}
