package io.github.sparkinfer.spark.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Greedy decoding with the cache equals a reference written here that runs the model without its
 * cache (the whole sequence every step, one prompt at a time), token for token; a prompt in a
 * batch with longer and shorter prompts gives the tokens it gives alone; sampling is reproducible by
 * seed, and its limits (top-k 1, temperature near 0) equal greedy; stop tokens and the length end rows.
 */
class TestDecodeLoop {
  private static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment();
  private static final int[][] PROMPTS = {{5, 17, 300, 42, 7, 901, 13}, {250, 3}, {64, 128, 512, 999}};

  private static GenerationOptions greedy(int maxNew, int eos) {
    return GenerationOptions.builder().maxNewTokens(maxNew).stopTokenIds(eos).build();
  }

  @Test
  void gpt2CachedGreedyEqualsTheDecodeWithoutCacheAloneAndInABatch() throws Exception {
    Path model = DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx");
    int eos = 98;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), options)) {
      DecoderLayout layout = DecoderLayout.of("gpt2", DecoderModels.signature(session));
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, layout, true);
      DecodeLoop.Generation[] batched = loop.generate(PROMPTS, greedy(12, eos), eos);
      for (int i = 0; i < PROMPTS.length; i++) {
        int[] reference = DecoderModels.referenceDecode(session, layout, PROMPTS[i], 12, eos);
        assertThat(reference).as("reference decode of prompt %d", i).isNotEmpty();
        assertThat(loop.generate(new int[][] {PROMPTS[i]}, greedy(12, eos), eos)[0].tokens)
            .as("prompt %d alone", i).containsExactly(reference);
        assertThat(batched[i].tokens).as("prompt %d in a batch of 3", i).containsExactly(reference);
        assertThat(batched[i].finishReason).isEqualTo(reference.length < 12 ? "stop" : "length");
      }
    }
  }

  @Test
  void groupedQueryAttentionFp16DecoderCachedEqualsWithoutCache() throws Exception {
    Path model = DecoderModels.decoder("tiny-qwen35/decoder.onnx");
    int eos = 2;
    int[][] prompts = {PROMPTS[0], PROMPTS[1], PROMPTS[2], {11, 22, 33, 44}};
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), options)) {
      DecoderLayout layout = DecoderLayout.of("qwen", DecoderModels.signature(session));
      // GroupQueryAttention: right padding, prompts of 7, 2, 4 and 4 tokens in one batch.
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, layout, false);
      DecodeLoop.Generation[] batched = loop.generate(prompts, greedy(10, eos), 0);
      for (int i = 0; i < prompts.length; i++) {
        int[] reference = DecoderModels.referenceDecode(session, layout, prompts[i], 10, eos);
        assertThat(reference).as("reference decode").isNotEmpty();
        assertThat(batched[i].tokens).as("prompt %d", i).containsExactly(reference);
      }
    }
  }

  @Test
  void samplingIsReproducibleBySeedAndItsLimitsEqualGreedy() throws Exception {
    Path model = DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx");
    int eos = 98;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), options)) {
      DecoderLayout layout = DecoderLayout.of("gpt2", DecoderModels.signature(session));
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, layout, true);
      GenerationOptions sampled = GenerationOptions.builder().maxNewTokens(16).temperature(1.5).topP(0.95)
          .seed(7).stopTokenIds(eos).build();
      DecodeLoop.Generation[] first = loop.generate(PROMPTS, sampled, eos);
      DecodeLoop.Generation[] again = loop.generate(PROMPTS, sampled, eos);
      DecodeLoop.Generation[] otherSeed = loop.generate(PROMPTS,
          GenerationOptions.builder().maxNewTokens(16).temperature(1.5).topP(0.95).seed(8).stopTokenIds(eos).build(), eos);
      DecodeLoop.Generation[] greedy = loop.generate(PROMPTS, greedy(16, eos), eos);
      boolean anyDiffers = false;
      boolean anyDiffersFromGreedy = false;
      for (int i = 0; i < PROMPTS.length; i++) {
        assertThat(again[i].tokens).as("prompt %d, same seed", i).containsExactly(first[i].tokens);
        // A row samples from its own generator: alone it gives what it gave in the batch.
        assertThat(loop.generate(new int[][] {PROMPTS[i]}, sampled, eos)[0].tokens).as("prompt %d alone", i)
            .containsExactly(first[i].tokens);
        anyDiffers |= !java.util.Arrays.equals(otherSeed[i].tokens, first[i].tokens);
        anyDiffersFromGreedy |= !java.util.Arrays.equals(greedy[i].tokens, first[i].tokens);
        GenerationOptions topK1 = GenerationOptions.builder().maxNewTokens(16).temperature(1.5).topK(1).seed(3)
            .stopTokenIds(eos).build();
        assertThat(loop.generate(new int[][] {PROMPTS[i]}, topK1, eos)[0].tokens).as("top-k 1")
            .containsExactly(greedy[i].tokens);
        GenerationOptions cold = GenerationOptions.builder().maxNewTokens(16).temperature(1e-4).seed(3)
            .stopTokenIds(eos).build();
        assertThat(loop.generate(new int[][] {PROMPTS[i]}, cold, eos)[0].tokens).as("temperature 1e-4")
            .containsExactly(greedy[i].tokens);
      }
      assertThat(anyDiffers).as("seeds 7 and 8 give some other token").isTrue();
      assertThat(anyDiffersFromGreedy).as("sampling at temperature 1.5 leaves the greedy path").isTrue();
    }
  }

  @Test
  void aStopTokenEndsARowWithStopAndTheLengthWithLength() throws Exception {
    Path model = DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx");
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), options)) {
      DecoderLayout layout = DecoderLayout.of("gpt2", DecoderModels.signature(session));
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, layout, true);
      int[] reference = DecoderModels.referenceDecode(session, layout, PROMPTS[0], 6, 98);
      assertThat(reference.length).isGreaterThan(3);
      // The third greedy token as a stop token: two tokens, then stop.
      DecodeLoop.Generation stopped = loop.generate(new int[][] {PROMPTS[0]},
          GenerationOptions.builder().maxNewTokens(6).stopTokenIds(98, reference[2]).build(), 98)[0];
      int firstAt = 0;
      while (reference[firstAt] != reference[2]) {
        firstAt++;
      }
      assertThat(stopped.tokens).containsExactly(java.util.Arrays.copyOf(reference, firstAt));
      assertThat(stopped.finishReason).isEqualTo("stop");
      DecodeLoop.Generation cut = loop.generate(new int[][] {PROMPTS[0]}, greedy(3, 98), 98)[0];
      assertThat(cut.tokens).containsExactly(java.util.Arrays.copyOf(reference, 3));
      assertThat(cut.finishReason).isEqualTo("length");
    }
  }

  @Test
  void optionsOutOfRangeAreRefusedNamingTheOptionAndTheRange() {
    assertThatThrownBy(() -> GenerationOptions.builder().topP(0)).hasMessage(
        "Invalid generate() option topP=0.0: it must be above 0 and at most 1 (1: no filter)");
    assertThatThrownBy(() -> GenerationOptions.builder().maxNewTokens(0)).hasMessageContaining("maxNewTokens=0");
    assertThatThrownBy(() -> GenerationOptions.builder().maxNewTokens(Integer.MAX_VALUE))
        .hasMessageContaining("1 to 65536");
    assertThatThrownBy(() -> GenerationOptions.builder().temperature(Double.NaN)).hasMessageContaining("temperature=NaN");
    assertThatThrownBy(() -> GenerationOptions.builder().repetitionPenalty(0)).hasMessageContaining("repetitionPenalty");
    assertThatThrownBy(() -> GenerationOptions.builder().stopTokenIds(5, -1)).hasMessageContaining("stopTokenIds=-1");
  }

}
