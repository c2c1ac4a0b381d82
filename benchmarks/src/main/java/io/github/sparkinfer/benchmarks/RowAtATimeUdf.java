package io.github.sparkinfer.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.device.SessionSettings;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkEnv;
import org.apache.spark.deploy.SparkHadoopUtil;
import org.apache.spark.sql.api.java.UDF1;
import scala.collection.Seq;

/**
 * Variant (b): the careful row-at-a-time UDF a user would write without sparkinfer. One session
 * per executor JVM (from the shared model cache, one intra-op thread because Spark runs a task per
 * core), and per task thread one pair of direct buffers wrapped once as input and pinned output
 * tensors, so that a row costs one copy in, one {@code session.run} of shape [1, 64] and one copy
 * out, and no tensor allocation.
 */
final class RowAtATimeUdf implements UDF1<Seq<Object>, float[]> {
  private static final long serialVersionUID = 1L;

  // Per executor JVM, by model URI: acquiring from the cache per row would stat the file per row.
  private static final Map<String, OrtSession> SESSIONS = new ConcurrentHashMap<>();

  // Per task thread. Never closed: a few hundred bytes per thread for the life of the benchmark.
  private static final ThreadLocal<RowTensors> TENSORS = new ThreadLocal<>();

  private final String modelName;
  private final String modelUri;
  private final String inputName;
  private final String outputName;
  private final int inputSize;
  private final int outputSize;

  RowAtATimeUdf(
      String modelName,
      String modelUri,
      String inputName,
      String outputName,
      int inputSize,
      int outputSize) {
    this.modelName = modelName;
    this.modelUri = modelUri;
    this.inputName = inputName;
    this.outputName = outputName;
    this.inputSize = inputSize;
    this.outputSize = outputSize;
  }

  @Override
  public float[] call(Seq<Object> features) throws OrtException {
    if (features == null) {
      return null;
    }
    if (features.length() != inputSize) {
      throw new IllegalArgumentException(
          "Model '" + modelName + "' takes " + inputSize + " features per row, got "
              + features.length() + ": pass an array<float> of " + inputSize);
    }
    RowTensors tensors = TENSORS.get();
    if (tensors == null) {
      tensors = new RowTensors(inputName, outputName, inputSize, outputSize);
      TENSORS.set(tensors);
    }
    for (int i = 0; i < inputSize; i++) {
      tensors.input.put(i, (Float) features.apply(i));
    }
    // The scores land in the pinned output's buffer; the result holds nothing else.
    session().run(tensors.inputs, tensors.outputs).close();
    float[] scores = new float[outputSize];
    tensors.output.get(0, scores);
    return scores;
  }

  private OrtSession session() {
    OrtSession session = SESSIONS.get(modelUri);
    if (session == null) {
      session =
          SESSIONS.computeIfAbsent(
              modelUri,
              uri ->
                  ModelCache.shared()
                      .acquire(
                          ModelSource.of(modelName, uri),
                          SessionSettings.builder().intraOpThreads(1).build(),
                          hadoopConfiguration())
                      .session());
    }
    return session;
  }

  static Configuration hadoopConfiguration() {
    SparkEnv environment = SparkEnv.get();
    return environment == null
        ? new Configuration()
        : SparkHadoopUtil.get().newConfiguration(environment.conf());
  }

  /** One row's input and output, as direct buffers that tensors wrap without copying. */
  private static final class RowTensors {
    private final FloatBuffer input;
    private final FloatBuffer output;
    private final Map<String, OnnxTensor> inputs;
    private final Map<String, OnnxTensor> outputs;

    RowTensors(String inputName, String outputName, int inputSize, int outputSize)
        throws OrtException {
      this.input = directFloats(inputSize);
      this.output = directFloats(outputSize);
      this.inputs =
          Map.of(
              inputName,
              OnnxTensor.createTensor(OrtEnvironments.get(), input, new long[] {1, inputSize}));
      this.outputs =
          Map.of(
              outputName,
              OnnxTensor.createTensor(OrtEnvironments.get(), output, new long[] {1, outputSize}));
    }
  }

  static FloatBuffer directFloats(int count) {
    return ByteBuffer.allocateDirect(Math.multiplyExact(count, Float.BYTES))
        .order(ByteOrder.nativeOrder())
        .asFloatBuffer();
  }
}
