package io.github.sparkinfer.spark.generate;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.spark.generate.GeneratedDecoders.Layout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The decoders GeneratedDecoders builds, in each layout: fed their cache step by step (and in chunks
 * of several tokens) they give the logits they give for the whole sequence without a cache; left
 * padding with the mask leaves the real rows' logits as they are alone (and without the padding mask
 * it would not: the check has teeth); DecodeLoop's greedy decode and beam search equal the references
 * without cache token for token, alone and in a batch of longer and shorter prompts; DecoderLayout reads
 * their layers, heads and vocabulary; DJL loads the generated tokenizer.json.
 *
 * <p>The model runs here are written against the layout's tensor names and types only, not through
 * DecodeLoop, so that the model is checked independently of the loop under test.
 */
class TestGeneratedDecoders {
  private static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment();
  private static final long SEED = 30;
  private static final double TOLERANCE = 1e-5;
  private static final long[] TOKENS = {5, 17, 30, 42, 7, 9, 13, 60, 2, 33, 48};
  private static final int[][] PROMPTS = {{5, 17, 30, 42, 7, 9, 13}, {25, 3}, {6, 12, 51, 49}, {40}};

  @TempDir static Path folder;

  /** One run: its logits copied out, [row][column][token], and its result held for the next run's past. */
  private static final class Run implements AutoCloseable {
    final float[][][] logits;
    final OrtSession.Result result;

    Run(OrtSession.Result result) throws OrtException {
      this.result = result;
      OnnxTensor tensor = (OnnxTensor) result.get("logits").orElseThrow();
      long[] shape = tensor.getInfo().getShape();
      FloatBuffer values = tensor.getFloatBuffer();
      logits = new float[(int) shape[0]][(int) shape[1]][(int) shape[2]];
      for (float[][] row : logits) {
        for (float[] column : row) {
          values.get(column);
        }
      }
    }

    @Override
    public void close() {
      result.close();
    }
  }

  private static OrtSession open(Layout layout, boolean maskPadding) throws Exception {
    Path model = GeneratedDecoders.write(layout, folder.resolve(layout + (maskPadding ? "" : "-unmasked")), SEED,
        maskPadding);
    return ENVIRONMENT.createSession(model.toString(), new OrtSession.SessionOptions());
  }

  /** Runs {@code ids} with {@code mask} (past and new columns) after {@code previous}'s cache, or an empty one. */
  private static Run run(OrtSession session, DecoderLayout layout, long[][] ids, long[][] mask, long[][] positions,
      Run previous) throws Exception {
    Map<String, OnnxTensor> owned = new HashMap<>();
    Map<String, OnnxTensor> inputs = new HashMap<>();
    try {
      owned.put("input_ids", tensor(layout.inputIds().onnxTypeName(), ids));
      owned.put("attention_mask", tensor(layout.attentionMask().onnxTypeName(), mask));
      if (layout.positionIds() != null) {
        owned.put("position_ids", tensor(layout.positionIds().onnxTypeName(), positions));
      }
      for (int layer = 0; layer < layout.layers(); layer++) {
        for (int i = 0; i < layout.pastNames(layer).size(); i++) {
          String past = layout.pastNames(layer).get(i);
          if (previous == null) {
            owned.put(past, OnnxTensor.createTensor(ENVIRONMENT, ByteBuffer.allocateDirect(0)
                .order(ByteOrder.nativeOrder()), layout.cacheShape(ids.length, 0), OnnxJavaType.FLOAT));
          } else {
            OnnxValue present = previous.result.get(layout.presentNames(layer).get(i)).orElseThrow();
            inputs.put(past, (OnnxTensor) present);
          }
        }
      }
      inputs.putAll(owned);
      return new Run(session.run(inputs));
    } finally {
      owned.values().forEach(OnnxTensor::close);
    }
  }

  private static OnnxTensor tensor(String type, long[][] values) throws OrtException {
    if (type.equals("INT32")) {
      int[][] narrow = new int[values.length][];
      for (int row = 0; row < values.length; row++) {
        narrow[row] = Arrays.stream(values[row]).mapToInt(Math::toIntExact).toArray();
      }
      return OnnxTensor.createTensor(ENVIRONMENT, narrow);
    }
    return OnnxTensor.createTensor(ENVIRONMENT, values);
  }

  private static long[] ones(int length) {
    long[] ones = new long[length];
    Arrays.fill(ones, 1);
    return ones;
  }

  private static long[] range(int from, int to) {
    long[] values = new long[to - from];
    for (int i = from; i < to; i++) {
      values[i - from] = i;
    }
    return values;
  }

  /** The whole of {@code tokens} in one row, empty past. */
  private static float[][] withoutCache(OrtSession session, DecoderLayout layout, long[] tokens) throws Exception {
    try (Run run = run(session, layout, new long[][] {tokens}, new long[][] {ones(tokens.length)},
        new long[][] {range(0, tokens.length)}, null)) {
      return run.logits[0];
    }
  }

  private static void assertClose(float[] actual, float[] expected, String what) {
    assertThat(actual).as(what).hasSize(expected.length);
    for (int token = 0; token < expected.length; token++) {
      assertThat((double) actual[token]).as("%s, token %d", what, token)
          .isCloseTo(expected[token], org.assertj.core.data.Offset.offset(TOLERANCE));
    }
  }

  @ParameterizedTest
  @EnumSource(Layout.class)
  void cachedStepsGiveTheLogitsOfTheWholeSequenceWithoutCache(Layout kind) throws Exception {
    try (OrtSession session = open(kind, true)) {
      DecoderLayout layout = DecoderLayout.of("generated", DecoderModels.signature(session));
      float[][] expected = withoutCache(session, layout, TOKENS);
      // A prompt of 3 tokens, then 2 at once (causal inside a chunk after a past), then one at a time.
      int[] chunks = {3, 2, 1, 1, 1, 1, 1, 1};
      Run previous = null;
      int done = 0;
      try {
        for (int chunk : chunks) {
          Run next = run(session, layout, new long[][] {Arrays.copyOfRange(TOKENS, done, done + chunk)},
              new long[][] {ones(done + chunk)}, new long[][] {range(done, done + chunk)}, previous);
          if (previous != null) {
            previous.close();
          }
          previous = next;
          for (int i = 0; i < chunk; i++) {
            assertClose(next.logits[0][i], expected[done + i], kind + " position " + (done + i) + " with the cache");
          }
          done += chunk;
        }
      } finally {
        if (previous != null) {
          previous.close();
        }
      }
      assertThat(done).isEqualTo(TOKENS.length);
      // Not a constant model: positions give different logits.
      assertThat(expected[0]).isNotEqualTo(expected[1]);
    }
  }

  @ParameterizedTest
  @EnumSource(Layout.class)
  void leftPaddingLeavesTheRealRowsAsTheyAreAloneWithAndWithoutTheCache(Layout kind) throws Exception {
    try (OrtSession session = open(kind, true)) {
      DecoderLayout layout = DecoderLayout.of("generated", DecoderModels.signature(session));
      float[][][] padded = leftPaddedThenTwoSteps(session, layout);
      float[][] alone = withoutCache(session, layout, new long[] {25, 3, 11, 12});
      for (int i = 0; i < 4; i++) {
        assertClose(padded[1][i], alone[i], kind + " short row, position " + i);
      }
      float[][] longAlone = withoutCache(session, layout, new long[] {5, 17, 30, 42, 7, 11, 12});
      for (int i = 0; i < 4; i++) {
        assertClose(padded[0][i], longAlone[3 + i], kind + " long row, position " + (3 + i));
      }
    }
  }

  @Test
  void withoutThePaddingMaskThePaddingChangesTheShortRow() throws Exception {
    // The same check on a model that ignores the attention mask fails: padding does reach real rows.
    try (OrtSession session = open(Layout.GPT2, false)) {
      DecoderLayout layout = DecoderLayout.of("generated", DecoderModels.signature(session));
      float[][][] padded = leftPaddedThenTwoSteps(session, layout);
      float[][] alone = withoutCache(session, layout, new long[] {25, 3, 11, 12});
      double largest = 0;
      for (int token = 0; token < GeneratedDecoders.VOCABULARY; token++) {
        largest = Math.max(largest, Math.abs(padded[1][0][token] - alone[0][token]));
      }
      assertThat(largest).isGreaterThan(1e-2);
    }
  }

  /**
   * Rows {5 17 30 42 7} and {25 3} (left-padded with token 9 at position 0, mask 0) run without a
   * cache, then tokens 11 and 12 one step each with it. Per row: the logits of its last 2 prompt
   * tokens and of the 2 steps, [row][4][vocabulary] (the long row's from its 4th token).
   */
  private static float[][][] leftPaddedThenTwoSteps(OrtSession session, DecoderLayout layout) throws Exception {
    long[][] ids = {{5, 17, 30, 42, 7}, {9, 9, 9, 25, 3}};
    long[][] mask = {{1, 1, 1, 1, 1}, {0, 0, 0, 1, 1}};
    long[][] positions = {{0, 1, 2, 3, 4}, {0, 0, 0, 0, 1}};
    float[][][] logits = new float[2][4][];
    try (Run prompt = run(session, layout, ids, mask, positions, null)) {
      for (int row = 0; row < 2; row++) {
        logits[row][0] = prompt.logits[row][3];
        logits[row][1] = prompt.logits[row][4];
      }
      try (Run first = run(session, layout, new long[][] {{11}, {11}}, new long[][] {ones(6), {0, 0, 0, 1, 1, 1}},
          new long[][] {{5}, {2}}, prompt)) {
        try (Run second = run(session, layout, new long[][] {{12}, {12}},
            new long[][] {ones(7), {0, 0, 0, 1, 1, 1, 1}}, new long[][] {{6}, {3}}, first)) {
          for (int row = 0; row < 2; row++) {
            logits[row][2] = first.logits[row][0];
            logits[row][3] = second.logits[row][0];
          }
        }
      }
    }
    return logits;
  }

  @Test
  void theLayoutsOfOneSeedAreOneFunction() throws Exception {
    // Weights are drawn in the same order whatever the layout; positions computed in the graph from the mask
    // (no position_ids) equal the ones fed.
    float[][] gpt2;
    try (OrtSession session = open(Layout.GPT2, true)) {
      gpt2 = withoutCache(session, DecoderLayout.of("generated", DecoderModels.signature(session)), TOKENS);
    }
    for (Layout kind : List.of(Layout.OPTIMUM, Layout.OPTIMUM_WITHOUT_POSITIONS)) {
      try (OrtSession session = open(kind, true)) {
        float[][] logits = withoutCache(session, DecoderLayout.of("generated", DecoderModels.signature(session)), TOKENS);
        for (int i = 0; i < TOKENS.length; i++) {
          assertClose(logits[i], gpt2[i], kind + " position " + i);
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Layout.class)
  void greedyWithTheCacheEqualsTheReferenceDecodeAloneAndInABatch(Layout kind) throws Exception {
    int maxNew = 12;
    try (OrtSession session = open(kind, true)) {
      DecoderLayout layout = DecoderLayout.of("generated", DecoderModels.signature(session));
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, layout, PaddingSide.left(folder.resolve(kind + "/model.onnx")));
      // A stop token: one the second prompt reaches after 2 or more tokens and another prompt never does, so that
      // rows of one batch end at different steps, one at the stop token and one at the length.
      int[][] unstopped = new int[PROMPTS.length][];
      for (int i = 0; i < PROMPTS.length; i++) {
        unstopped[i] = DecoderModels.referenceDecode(session, layout, PROMPTS[i], maxNew, -1);
      }
      int stop = Arrays.stream(unstopped[1]).skip(2).filter(token -> Arrays.stream(unstopped).anyMatch(
          other -> Arrays.stream(other).noneMatch(t -> t == token))).findFirst().orElseThrow();
      GenerationOptions greedy = GenerationOptions.builder().maxNewTokens(maxNew).stopTokenIds(stop).build();
      DecodeLoop.Generation[] batched = loop.generate(PROMPTS, greedy, 0);
      boolean someStop = false;
      boolean someLength = false;
      java.util.Set<Integer> distinct = new java.util.TreeSet<>();
      for (int i = 0; i < PROMPTS.length; i++) {
        int[] reference = DecoderModels.referenceDecode(session, layout, PROMPTS[i], maxNew, stop);
        assertThat(loop.generate(new int[][] {PROMPTS[i]}, greedy, 0)[0].tokens).as("%s prompt %d alone", kind, i)
            .containsExactly(reference);
        assertThat(batched[i].tokens).as("%s prompt %d in a batch of %d", kind, i, PROMPTS.length)
            .containsExactly(reference);
        assertThat(batched[i].finishReason).isEqualTo(reference.length < maxNew ? "stop" : "length");
        someStop |= reference.length < maxNew;
        someLength |= reference.length == maxNew;
        Arrays.stream(reference).forEach(distinct::add);
      }
      // Not one token repeated: the decodes follow the model through different states.
      assertThat(distinct).as("distinct tokens generated").hasSizeGreaterThan(4);
      assertThat(someStop).as("a row ends at the stop token").isTrue();
      assertThat(someLength).as("a row ends at the length").isTrue();
    }
  }

  @ParameterizedTest
  @EnumSource(Layout.class)
  void beamSearchWithTheCacheEqualsTheReferenceAloneAndInABatch(Layout kind) throws Exception {
    // Beams reorder the cache rows after their parents: axis 1 of past_N, axis 0 of past_key_values.N.*.
    int beams = 3;
    int maxNew = 6;
    GenerationOptions options = GenerationOptions.builder().maxNewTokens(maxNew).numBeams(beams).build();
    try (OrtSession session = open(kind, true)) {
      DecoderLayout layout = DecoderLayout.of("generated", DecoderModels.signature(session));
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, layout, true);
      DecodeLoop.Generation[] batched = loop.generate(PROMPTS, options, 0);
      boolean differs = false;
      for (int i = 0; i < PROMPTS.length; i++) {
        int[] expected = DecoderModels.beamSearch(session, layout, PROMPTS[i], maxNew, beams);
        assertThat(loop.generate(new int[][] {PROMPTS[i]}, options, 0)[0].tokens).as("%s prompt %d alone", kind, i)
            .containsExactly(expected);
        assertThat(batched[i].tokens).as("%s prompt %d in a batch", kind, i).containsExactly(expected);
        differs |= !Arrays.equals(expected, DecoderModels.referenceDecode(session, layout, PROMPTS[i], maxNew, -1));
      }
      // The check can fail: beam search chooses another sequence than greedy for some prompt.
      assertThat(differs).as("beam search differs from greedy on some prompt").isTrue();
    }
  }

  @ParameterizedTest
  @EnumSource(Layout.class)
  void theLayoutIsReadFromTheGeneratedSignature(Layout kind) throws Exception {
    try (OrtSession session = open(kind, true)) {
      DecoderLayout layout = DecoderLayout.of("generated", DecoderModels.signature(session));
      assertThat(layout.style()).isEqualTo(kind == Layout.GPT2 ? DecoderLayout.Style.COMBINED
          : DecoderLayout.Style.KEY_VALUE);
      assertThat(layout.layers()).isEqualTo(GeneratedDecoders.LAYERS);
      assertThat(layout.cacheHeads()).isEqualTo(GeneratedDecoders.HEADS);
      assertThat(layout.headSize()).isEqualTo(GeneratedDecoders.HEAD_SIZE);
      assertThat(layout.vocabularySize()).isEqualTo(GeneratedDecoders.VOCABULARY);
      assertThat(layout.cacheType()).isEqualTo("FLOAT");
      assertThat(layout.inputIds().onnxTypeName()).isEqualTo(kind == Layout.GPT2 ? "INT32" : "INT64");
      assertThat(layout.positionIds() == null).isEqualTo(kind == Layout.OPTIMUM_WITHOUT_POSITIONS);
      assertThat(layout.pastNames(1)).containsExactlyElementsOf(kind == Layout.GPT2 ? List.of("past_1")
          : List.of("past_key_values.1.key", "past_key_values.1.value"));
      assertThat(PaddingSide.left(folder.resolve(kind + "/model.onnx"))).isTrue();
    }
  }

  @Test
  void djlLoadsTheGeneratedTokenizerWithOneIdPerWord() throws Exception {
    Path file = GeneratedDecoders.tokenizer(folder.resolve("tokenizer"));
    List<String> words = GeneratedDecoders.words();
    assertThat(words).hasSize(GeneratedDecoders.VOCABULARY).doesNotHaveDuplicates();
    // The maximum length given as generate() gives one (without it DJL warns that it takes 512).
    try (HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(file)
        .optMaxLength(GeneratedDecoders.MAX_POSITIONS).build()) {
      long[] ids = tokenizer.encode(String.join(" ", words.subList(1, words.size()))).getIds();
      assertThat(ids).containsExactly(range(1, GeneratedDecoders.VOCABULARY));
      assertThat(tokenizer.encode("the cat  sat").getIds()).containsExactly(1, 6, 0);
      assertThat(tokenizer.decode(new long[] {1, 6, 0, 63}, true)).isEqualTo("the cat " + words.get(63));
    }
  }
}
