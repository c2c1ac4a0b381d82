package io.github.sparkinfer.spark.reference;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.util.Arrays;
import java.util.Map;

/**
 * The independent references the tests of several modules check sparkinfer against: all-MiniLM-L6-v2
 * run by ONNX Runtime directly on one text's token ids (no padding), mean-pooled and scaled to unit
 * length here; and the sine features the tests' SQL builds.
 */
public final class MiniLmReference {
  private MiniLmReference() {}

  /** The embedding of one text from its token ids (DJL's, called directly by the caller). */
  public static float[] meanPooledUnit(OrtSession session, long[] ids) throws Exception {
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    long[] mask = new long[ids.length];
    Arrays.fill(mask, 1L);
    try (OnnxTensor idTensor = OnnxTensor.createTensor(environment, new long[][] {ids});
        OnnxTensor maskTensor = OnnxTensor.createTensor(environment, new long[][] {mask});
        OnnxTensor typeTensor = OnnxTensor.createTensor(environment, new long[][] {new long[ids.length]});
        OrtSession.Result result = session.run(
            Map.of("input_ids", idTensor, "attention_mask", maskTensor, "token_type_ids", typeTensor))) {
      return meanPooledUnit(((float[][][]) result.get(0).getValue())[0]);
    }
  }

  /** Mean over the tokens' states, then unit length. */
  public static float[] meanPooledUnit(float[][] hidden) {
    float[] pooled = new float[hidden[0].length];
    for (float[] token : hidden) {
      for (int k = 0; k < pooled.length; k++) {
        pooled[k] += token[k] / hidden.length;
      }
    }
    double norm = 0;
    for (float value : pooled) {
      norm += value * value;
    }
    norm = Math.sqrt(norm);
    for (int k = 0; k < pooled.length; k++) {
      pooled[k] = (float) (pooled[k] / norm);
    }
    return pooled;
  }

  /** What the tests' SQL transform(sequence(0, 15), i -> CAST(sin(id * 16 + i) AS FLOAT)) gives, times scale. */
  public static float[] sineFeatures(long id, float scale) {
    float[] features = new float[16];
    for (int i = 0; i < 16; i++) {
      features[i] = (float) Math.sin((double) (id * 16 + i)) * scale;
    }
    return features;
  }
}
