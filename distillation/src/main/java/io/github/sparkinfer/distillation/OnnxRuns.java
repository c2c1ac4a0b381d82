package io.github.sparkinfer.distillation;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;

/** One ONNX Runtime run of a one-input, one-output float model on the driver, for checks. */
final class OnnxRuns {
  private OnnxRuns() {}

  static float[][] run(byte[] model, List<float[]> rows) {
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    int width = rows.get(0).length;
    FloatBuffer buffer = FloatBuffer.allocate(rows.size() * width);
    rows.forEach(buffer::put);
    buffer.flip();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(1);
      try (OrtSession session = environment.createSession(model, options);
          OnnxTensor input = OnnxTensor.createTensor(environment, buffer, new long[] {rows.size(), width});
          OrtSession.Result result = session.run(Map.of(session.getInputNames().iterator().next(), input))) {
        return (float[][]) result.get(0).getValue();
      }
    } catch (OrtException e) {
      throw new IllegalStateException("Cannot run the student with ONNX Runtime: " + e.getMessage(), e);
    }
  }
}
