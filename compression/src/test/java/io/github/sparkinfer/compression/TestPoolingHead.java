package io.github.sparkinfer.compression;

import static io.github.sparkinfer.compression.OnnxElementType.FLOAT;
import static io.github.sparkinfer.compression.OnnxElementType.INT64;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * The pooling head against pooling worked out in Java from the same model's own token states, over
 * rows of different lengths padded to one, on the opsets before and after axes became inputs.
 */
class TestPoolingHead {
  private static final int VOCABULARY = 50;
  private static final int DIMENSION = 8;

  /** A toy encoder: token states are rows of an embedding table (Gather), times 1 + mask. */
  private static OnnxModel encoder(int opset, boolean float16States) {
    SplittableRandom random = new SplittableRandom(7);
    float[] table = new float[VOCABULARY * DIMENSION];
    for (int i = 0; i < table.length; i++) {
      table[i] = (float) random.nextDouble(-2, 2);
    }
    OnnxModelBuilder builder = OnnxModelBuilder.create("encoder").opset(opset)
        .input("input_ids", INT64, "batch", "tokens")
        .input("attention_mask", INT64, "batch", "tokens")
        .initializer("table", table, VOCABULARY, DIMENSION)
        .node("Gather", List.of("table", "input_ids"), List.of("embedded"))
        // Padding's states differ from zero, as a real encoder's do: pooling must leave them out.
        .node("Cast", List.of("attention_mask"), List.of("mask_float"), Attribute.ofInt("to", FLOAT.onnxNumber()))
        .initializer("one", new float[] {1f})
        .node("Add", List.of("mask_float", "one"), List.of("scale2"));
    if (opset >= 13) {
      builder.initializer("axis", new long[] {2}, 1).node("Unsqueeze", List.of("scale2", "axis"), List.of("scale"));
    } else {
      builder.node("Unsqueeze", List.of("scale2"), List.of("scale"), Attribute.ofInts("axes", 2));
    }
    if (float16States) {
      builder.node("Mul", List.of("embedded", "scale"), List.of("states32"))
          .node("Cast", List.of("states32"), List.of("states"),
              Attribute.ofInt("to", OnnxElementType.FLOAT16.onnxNumber()))
          .output("states", OnnxElementType.FLOAT16, "batch", "tokens", DIMENSION);
    } else {
      builder.node("Mul", List.of("embedded", "scale"), List.of("states"))
          .output("states", FLOAT, "batch", "tokens", DIMENSION);
    }
    return builder.build();
  }

  @ParameterizedTest
  @CsvSource({"11, false", "17, false", "17, true"})
  void meanAndFirstMatchPoolingOfTheModelsOwnStates(int opset, boolean float16States) throws OrtException {
    OnnxModel model = encoder(opset, float16States);
    int[] lengths = {5, 1, 3};
    int longest = 5;
    long[] ids = new long[lengths.length * longest];
    long[] mask = new long[ids.length];
    SplittableRandom random = new SplittableRandom(3);
    for (int row = 0; row < lengths.length; row++) {
      for (int token = 0; token < longest; token++) {
        ids[row * longest + token] = random.nextInt(VOCABULARY);
        mask[row * longest + token] = token < lengths[row] ? 1 : 0;
      }
    }
    long[] shape = {lengths.length, longest};
    for (PoolingHead.Mode mode : PoolingHead.Mode.values()) {
      OnnxModel pooled = PoolingHead.append(model, "states", "attention_mask", mode);
      assertThat(pooled.outputs()).extracting(TensorDeclaration::name).containsExactly("states", PoolingHead.OUTPUT);
      Map<String, float[]> outputs = run(pooled, ids, mask, shape);
      float[] states = outputs.get("states");
      float[] vectors = outputs.get(PoolingHead.OUTPUT);
      assertThat(vectors).hasSize(lengths.length * DIMENSION);
      for (int row = 0; row < lengths.length; row++) {
        for (int k = 0; k < DIMENSION; k++) {
          double expected = 0;
          if (mode == PoolingHead.Mode.FIRST) {
            expected = states[(row * longest) * DIMENSION + k];
          } else {
            for (int token = 0; token < lengths[row]; token++) {
              expected += states[(row * longest + token) * DIMENSION + k];
            }
            expected /= lengths[row];
          }
          assertThat((double) vectors[row * DIMENSION + k]).as("%s row %d dim %d", mode, row, k)
              .isCloseTo(expected, within(1e-5));
        }
      }
    }
  }

  @Test
  void refusesWhatItCannotPool() {
    OnnxModel model = encoder(17, false);
    assertThatThrownBy(() -> PoolingHead.append(model, "missing", "attention_mask", PoolingHead.Mode.MEAN))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no output 'missing'");
    assertThatThrownBy(() -> PoolingHead.append(model, "states", "mask", PoolingHead.Mode.MEAN))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no input 'mask'");
    OnnxModel pooled = PoolingHead.append(model, "states", "attention_mask", PoolingHead.Mode.MEAN);
    assertThatThrownBy(() -> PoolingHead.append(pooled, PoolingHead.OUTPUT, "attention_mask", PoolingHead.Mode.MEAN))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("already has an output");
  }

  private static Map<String, float[]> run(OnnxModel model, long[] ids, long[] mask, long[] shape) throws OrtException {
    try (OrtSession session = OrtTesting.ENVIRONMENT.createSession(model.toBytes());
        OnnxTensor idTensor = OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, LongBuffer.wrap(ids), shape);
        OnnxTensor maskTensor = OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, LongBuffer.wrap(mask), shape);
        OrtSession.Result result = session.run(Map.of("input_ids", idTensor, "attention_mask", maskTensor))) {
      OnnxTensor states = (OnnxTensor) result.get("states").orElseThrow();
      float[] stateValues;
      if (states.getInfo().type == ai.onnxruntime.OnnxJavaType.FLOAT16) {
        java.nio.ShortBuffer halves = states.getShortBuffer();
        stateValues = new float[halves.remaining()];
        for (int i = 0; i < stateValues.length; i++) {
          stateValues[i] = Float16.toFloat(halves.get(i));
        }
      } else {
        FloatBuffer buffer = states.getFloatBuffer();
        stateValues = new float[buffer.remaining()];
        buffer.get(stateValues);
      }
      FloatBuffer pooled = ((OnnxTensor) result.get(PoolingHead.OUTPUT).orElseThrow()).getFloatBuffer();
      float[] vectors = new float[pooled.remaining()];
      pooled.get(vectors);
      return Map.of("states", stateValues, PoolingHead.OUTPUT, vectors);
    }
  }
}
