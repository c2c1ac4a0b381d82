package io.github.sparkinfer.spark.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Beam search against a textbook beam search written here: every step runs each beam's whole
 * sequence without the cache, scores all its continuations by log-probability and keeps the best
 * numBeams of the prompt; on the GPT-2 export (left padding) and the Qwen-style export (right padding,
 * float16 cache), alone and in batches of prompts of other lengths.
 */
class TestBeamSearch {
  private static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment();

  private static GenerationOptions beams(int beams, int maxNew) {
    return GenerationOptions.builder().maxNewTokens(maxNew).numBeams(beams).build();
  }

  @Test
  void gpt2BeamsEqualTheReferenceAloneAndInABatch() throws Exception {
    check(DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx"), true,
        new int[][] {{5, 17, 300, 42, 7, 901, 13}, {250, 3}, {64, 128, 512, 999}}, 3, 6);
  }

  @Test
  void groupQueryAttentionBeamsEqualTheReferenceAloneAndInABatch() throws Exception {
    check(DecoderModels.decoder("tiny-qwen35/decoder.onnx"), false,
        new int[][] {{11, 12, 13, 14, 15, 16, 17}, {40, 41}, {7, 8, 9, 10}}, 2, 5);
  }

  private static void check(Path model, boolean leftPadding, int[][] prompts, int beams, int maxNew) throws Exception {
    try (OrtSession.SessionOptions sessionOptions = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), sessionOptions)) {
      DecoderLayout layout = DecoderLayout.of("m", DecoderModels.signature(session));
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, layout, leftPadding);
      DecodeLoop.Generation[] batched = loop.generate(prompts, beams(beams, maxNew), 0);
      for (int i = 0; i < prompts.length; i++) {
        int[] expected = DecoderModels.beamSearch(session, layout, prompts[i], maxNew, beams);
        assertThat(loop.generate(new int[][] {prompts[i]}, beams(beams, maxNew), 0)[0].tokens)
            .as("prompt %d alone", i).containsExactly(expected);
        assertThat(batched[i].tokens).as("prompt %d in a batch", i).containsExactly(expected);
        assertThat(batched[i].finishReason).isEqualTo("length");
        // One beam is greedy.
        assertThat(loop.generate(new int[][] {prompts[i]}, beams(1, maxNew), 0)[0].tokens)
            .containsExactly(DecoderModels.referenceDecode(session, layout, prompts[i], maxNew, -1));
      }
      // The check can fail: on these prompts beam search chooses another sequence than greedy for some prompt.
      boolean differs = false;
      for (int[] prompt : prompts) {
        differs |= !Arrays.equals(DecoderModels.beamSearch(session, layout, prompt, maxNew, beams),
            DecoderModels.referenceDecode(session, layout, prompt, maxNew, -1));
      }
      assertThat(differs).as("beam search differs from greedy on some prompt").isTrue();
    }
  }

  @Test
  void aStopTokenEndsAHypothesis() throws Exception {
    Path model = DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx");
    try (OrtSession.SessionOptions sessionOptions = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), sessionOptions)) {
      DecoderLayout layout = DecoderLayout.of("gpt2", DecoderModels.signature(session));
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, layout, true);
      int[] prompt = {5, 17, 300, 42, 7, 901, 13};
      int[] free = loop.generate(new int[][] {prompt}, beams(1, 6), 0)[0].tokens;
      // The greedy first token as a stop token: the most likely hypothesis may now end at once.
      DecodeLoop.Generation stopped = loop.generate(new int[][] {prompt},
          GenerationOptions.builder().maxNewTokens(6).numBeams(2).stopTokenIds(free[0]).build(), 0)[0];
      assertThat(stopped.tokens).doesNotContain(free[0]);
      assertThat(stopped.finishReason).isIn("stop", "length");
    }
  }

  @Test
  void beamsRefuseSampling() {
    assertThatThrownBy(() -> GenerationOptions.builder().numBeams(2).temperature(0.7).build())
        .hasMessageContaining("numBeams=2 with temperature=0.7").hasMessageContaining("does not sample");
    assertThatThrownBy(() -> GenerationOptions.builder().numBeams(33)).hasMessageContaining("1 (no beam search) to 32");
  }
}
