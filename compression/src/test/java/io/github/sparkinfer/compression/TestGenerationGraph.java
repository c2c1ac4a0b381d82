package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * The GreedySearch wrapping of the GPT-2 test export run in ONNX Runtime (CPU) against a decode
 * written here that runs the original decoder without its cache (the whole sequence every step,
 * empty past, positions counting the mask's ones), token for token: alone, left-padded in a batch,
 * with an end token reached, with a repetition penalty and a minimum length.
 */
class TestGenerationGraph {
  private static final int PAD = 98;
  private static final int[][] PROMPTS = {
      {5, 17, 300, 42, 7, 901, 13}, {250, 3}, {64, 128, 512, 999}, {11, 22, 33, 44, 55, 66, 77, 88, 99, 111}};

  /** A file of ../shared/models/decoders; the test is skipped where that folder is not beside the checkout. */
  static Path sharedDecoder(String file) {
    for (Path folder = Path.of("").toAbsolutePath(); folder != null; folder = folder.getParent()) {
      Path candidate = folder.resolve("shared/models/decoders").resolve(file);
      if (Files.isRegularFile(candidate)) {
        return candidate;
      }
    }
    assumeTrue(false, "../shared/models/decoders/" + file + " is not beside this checkout");
    return null;
  }

  @Test
  void gpt2GreedySearchEqualsTheDecodeWithoutCacheAloneAndInABatch() throws Exception {
    Path file = sharedDecoder("tiny-random-gpt2-fp32/past.onnx");
    GenerationGraph graph = GenerationGraph.of("tiny-gpt2", OnnxModel.read(file));
    assertThat(graph.layerCount()).isEqualTo(5);
    assertThat(graph.vocabularySize()).isEqualTo(1000);
    int maxNew = 12;
    try (OrtSession decoder = OrtTesting.ENVIRONMENT.createSession(file.toString());
        OrtSession search = OrtTesting.ENVIRONMENT.createSession(graph.greedySearch(PAD, PAD).toBytes())) {
      int longest = Arrays.stream(PROMPTS).mapToInt(prompt -> prompt.length).max().orElseThrow();
      int[][] batch = generate(search, PROMPTS, longest + maxNew, 0, 1f);
      for (int i = 0; i < PROMPTS.length; i++) {
        int[] reference = referenceDecode(decoder, PROMPTS[i], 0, PROMPTS[i].length + maxNew, PAD, 0, 1f);
        assertThat(reference).as("reference decode of prompt %d", i).isNotEmpty();
        int[] padded = leftPadded(PROMPTS[i], longest);
        assertThat(referenceDecode(decoder, padded, longest - PROMPTS[i].length, longest + maxNew, PAD, 0, 1f))
            .as("reference decode of prompt %d left-padded", i).containsExactly(reference);
        int[][] alone = generate(search, new int[][] {PROMPTS[i]}, PROMPTS[i].length + maxNew, 0, 1f);
        assertThat(newTokens(alone[0], PROMPTS[i].length)).as("prompt %d alone", i).containsExactly(reference);
        assertThat(Arrays.copyOf(batch[i], longest)).as("prompt %d padded in the output", i).containsExactly(padded);
        assertThat(newTokens(batch[i], longest)).as("prompt %d in a batch of %d", i, PROMPTS.length)
            .containsExactly(reference);
      }
    }
  }

  @Test
  void gpt2EndTokenRepetitionPenaltyAndMinimumLengthEqualTheDecodeWithoutCache() throws Exception {
    Path file = sharedDecoder("tiny-random-gpt2-fp32/past.onnx");
    GenerationGraph graph = GenerationGraph.of("tiny-gpt2", OnnxModel.read(file));
    int maxNew = 12;
    try (OrtSession decoder = OrtTesting.ENVIRONMENT.createSession(file.toString())) {
      // The random model never gives 98 here: the end token is one it gives, first new at step k >= 1.
      int[] free = referenceDecode(decoder, PROMPTS[0], 0, PROMPTS[0].length + maxNew, PAD, 0, 1f);
      int k = 1;
      while (k < free.length && contains(Arrays.copyOf(free, k), free[k])) {
        k++;
      }
      assertThat(k).as("a token first given after step 0 in %s", Arrays.toString(free)).isLessThan(free.length);
      int eos = free[k];
      try (OrtSession search = OrtTesting.ENVIRONMENT.createSession(graph.greedySearch(eos, PAD).toBytes())) {
        int[][] pair = {PROMPTS[0], PROMPTS[1]};
        int longest = PROMPTS[0].length;
        int maxLength = longest + maxNew;
        int[][] ended = generate(search, pair, maxLength, 0, 1f);
        assertThat(newTokens(ended[0], longest)).as("row that reaches the end token")
            .containsExactly(Arrays.copyOf(free, k))
            .containsExactly(referenceDecode(decoder, PROMPTS[0], 0, maxLength, eos, 0, 1f));
        // The other row goes on, so the loop runs to max_length and the ended row is pad to its end.
        assertThat(Arrays.copyOfRange(ended[0], longest + k, maxLength)).containsOnly(PAD);
        assertThat(newTokens(ended[1], longest)).as("row that does not")
            .containsExactly(referenceDecode(decoder, leftPadded(PROMPTS[1], longest), longest - PROMPTS[1].length,
                maxLength, eos, 0, 1f));

        // min_length counts the prompt's columns; the penalty also the prompt's and padding's tokens.
        Map<String, String> outcomes = new HashMap<>();
        for (int minLength : new int[] {0, longest + k + 3}) {
          for (float penalty : new float[] {1f, 1.5f, 0.8f}) {
            int[][] rows = generate(search, pair, maxLength, minLength, penalty);
            for (int i = 0; i < pair.length; i++) {
              int padding = longest - pair[i].length;
              assertThat(newTokens(rows[i], longest))
                  .as("prompt %d, min_length %d, repetition penalty %s", i, minLength, penalty)
                  .containsExactly(referenceDecode(decoder, leftPadded(pair[i], longest), padding, maxLength, eos,
                      minLength, penalty));
            }
            outcomes.put(minLength + "/" + penalty, Arrays.deepToString(rows));
          }
        }
        // Each input changes the tokens (it is wired to the operator).
        String plain = outcomes.get("0/1.0");
        assertThat(outcomes.get("0/1.5")).isNotEqualTo(plain);
        assertThat(outcomes.get("0/0.8")).isNotEqualTo(plain);
        assertThat(outcomes.get((longest + k + 3) + "/1.0")).isNotEqualTo(plain);

        // Every row ended: the loop stops, the end column is pad, the columns after it are not written.
        int[][] alone = generate(search, new int[][] {PROMPTS[0]}, maxLength, 0, 1f);
        assertThat(Arrays.copyOf(alone[0], longest + k + 1)).containsExactly(
            concat(PROMPTS[0], Arrays.copyOf(free, k), new int[] {PAD}));
      }
    }
  }

  /**
   * A decoder built here (so the suite does not depend on ../shared alone): logits = W[token] +
   * P[position], and a real cache ([2, batch, 2, length, 4], the tokens so far) that the operator must
   * carry from step to step. Greedy decoding is then argmax(W[last] + P[its position]), computed here;
   * the position counts the row's tokens before it, which checks the operator's left padding.
   */
  @Test
  void decoderBuiltHereDecodesAsItsTablesSayAndItsWeightsMoveToTheOuterGraph() throws Exception {
    int vocabulary = 40;
    int positions = 64;
    float[] w = OrtTesting.randomValues(vocabulary * vocabulary, 3);
    float[] p = OrtTesting.randomValues(positions * vocabulary, 4);
    int pad = 0;
    int eos = 1;
    // The pad token is never chosen, so that a row's first pad after its prompt is its end.
    for (int token = 0; token < vocabulary; token++) {
      w[token * vocabulary + pad] = -100;
    }
    OnnxModel decoder = tableDecoder(w, p, vocabulary, positions);
    OnnxModel wrapped = GenerationGraph.of("tables", decoder).greedySearch(eos, pad);

    // One com.microsoft node; W (1600 values) and P (2560) moved out, the small shape constants kept.
    assertThat(OrtTesting.operatorCounts(wrapped)).containsExactly(Map.entry("com.microsoft:GreedySearch", 1L));
    assertThat(wrapped.opsetImports()).containsEntry("com.microsoft", 1L).containsEntry("", 17L);
    assertThat(wrapped.inputs()).extracting(TensorDeclaration::name).containsExactly(GenerationGraph.INPUT_IDS,
        GenerationGraph.MAX_LENGTH, GenerationGraph.MIN_LENGTH, GenerationGraph.REPETITION_PENALTY,
        GenerationGraph.ATTENTION_MASK);
    assertThat(OrtTesting.hasInitializer(wrapped, "W")).isTrue();
    assertThat(OrtTesting.hasInitializer(wrapped, "P")).isTrue();
    GraphProto subgraph = wrapped.proto().getGraph().getNode(0).getAttributeList().stream()
        .filter(attribute -> attribute.getName().equals("decoder")).findFirst().orElseThrow().getG();
    assertThat(subgraph.getInitializerList()).extracting(TensorProto::getName)
        .containsExactlyInAnyOrder("axes", "kv_shape");
    assertThat(subgraph.getValueInfoList()).extracting(ValueInfoProto::getName)
        .contains("W", "P");

    int[][] prompts = {{5, 17, 30, 12}, {25}, {7, 39, 2}};
    int maxLength = 4 + 10;
    try (OrtSession search = OrtTesting.ENVIRONMENT.createSession(wrapped.toBytes())) {
      int[][] rows = generateWithPad(search, prompts, maxLength, pad);
      for (int i = 0; i < prompts.length; i++) {
        List<Integer> expected = new ArrayList<>();
        int last = prompts[i][prompts[i].length - 1];
        int position = prompts[i].length - 1;
        for (int step = 4; step < maxLength; step++) {
          int best = 0;
          for (int token = 1; token < vocabulary; token++) {
            if (w[last * vocabulary + token] + p[position * vocabulary + token]
                > w[last * vocabulary + best] + p[position * vocabulary + best]) {
              best = token;
            }
          }
          if (best == eos) {
            break;
          }
          expected.add(best);
          last = best;
          position++;
        }
        assertThat(newTokens(rows[i], 4, pad)).as("prompt %d", i)
            .containsExactly(expected.stream().mapToInt(Integer::intValue).toArray());
      }
    }
  }

  /**
   * Sampling: with a top-p so small that only the most probable token is kept it equals the greedy
   * decode without cache; otherwise each drawn token is one the decode without cache allows at its
   * step (in the top-p nucleus of its logits divided by the temperature), and equal seeds give equal
   * tokens.
   */
  @Test
  void gpt2SamplingStaysInTheNucleusOfTheDecodeWithoutCacheAndRepeatsBySeed() throws Exception {
    Path file = sharedDecoder("tiny-random-gpt2-fp32/past.onnx");
    GenerationGraph graph = GenerationGraph.of("tiny-gpt2", OnnxModel.read(file));
    int maxNew = 12;
    int longest = Arrays.stream(PROMPTS).mapToInt(prompt -> prompt.length).max().orElseThrow();
    int maxLength = longest + maxNew;
    try (OrtSession decoder = OrtTesting.ENVIRONMENT.createSession(file.toString());
        OrtSession nearlyGreedy = OrtTesting.ENVIRONMENT.createSession(
            graph.sampling(PAD, PAD, 1f, 1e-6f).toBytes());
        OrtSession nucleus = OrtTesting.ENVIRONMENT.createSession(graph.sampling(PAD, PAD, 0.05f, 0.8f).toBytes())) {
      int[][] greedyRows = generate(nearlyGreedy, PROMPTS, maxLength, 0, 1f, PAD, 5);
      for (int i = 0; i < PROMPTS.length; i++) {
        assertThat(newTokens(greedyRows[i], longest)).as("prompt %d, top_p 1e-6", i).containsExactly(
            referenceDecode(decoder, PROMPTS[i], 0, PROMPTS[i].length + maxNew, PAD, 0, 1f));
      }

      // Temperature 0.05 and top-p 0.8: the tiny random model's nearly flat logits give nuclei of 1 to
      // about 90 of its 1000 tokens, so the check below is tight and tokens other than the argmax are drawn.
      int[][] drawn = generate(nucleus, PROMPTS, maxLength, 0, 1f, PAD, 7);
      assertThat(generate(nucleus, PROMPTS, maxLength, 0, 1f, PAD, 7)).as("seed 7 again").isDeepEqualTo(drawn);
      assertThat(generate(nucleus, PROMPTS, maxLength, 0, 1f, PAD, 8)).as("seed 8").isNotEqualTo(drawn);
      int outsideGreedy = 0;
      for (int i = 0; i < PROMPTS.length; i++) {
        int[] tokens = newTokens(drawn[i], longest);
        int[] row = leftPadded(PROMPTS[i], longest);
        for (int step = 0; step < tokens.length; step++) {
          float[] logits = lastLogits(decoder, concat(row, Arrays.copyOf(tokens, step)), longest - PROMPTS[i].length);
          Set<Integer> allowed = nucleus(logits, 0.05f, 0.8f);
          assertThat(allowed).as("prompt %d step %d", i, step).contains(tokens[step]);
          if (tokens[step] != argmax(logits)) {
            outsideGreedy++;
          }
        }
      }
      assertThat(outsideGreedy).as("tokens drawn other than the most probable").isPositive();
    }
  }

  /**
   * The tokens Sampling may draw, by its CPU rule: logits / temperature sorted ascending, softmax,
   * cumulated; a token whose cumulative probability is at most 1 - topP is left out, the most probable
   * never. A margin of 1e-4 keeps float rounding at the edge from failing the test.
   */
  private static Set<Integer> nucleus(float[] logits, float temperature, float topP) {
    Integer[] order = new Integer[logits.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Float.compare(logits[a], logits[b]));
    double largest = logits[order[order.length - 1]] / temperature;
    double total = 0;
    for (float logit : logits) {
      total += Math.exp(logit / temperature - largest);
    }
    Set<Integer> allowed = new HashSet<>();
    double cumulative = 0;
    for (int i = 0; i < order.length; i++) {
      cumulative += Math.exp(logits[order[i]] / temperature - largest) / total;
      if (cumulative > 1 - topP - 1e-4 || i == order.length - 1) {
        allowed.add(order[i]);
      }
    }
    return allowed;
  }

  private static int argmax(float[] values) {
    int best = 0;
    for (int i = 1; i < values.length; i++) {
      if (values[i] > values[best]) {
        best = i;
      }
    }
    return best;
  }

  @Test
  void decodersNotInTheGpt2LayoutAreRefusedNamingTheModelAndTheTensor() {
    OnnxModel valid = tableDecoder(new float[40 * 40], new float[64 * 40], 40, 64);
    assertThat(GenerationGraph.of("tables", valid).layerCount()).isEqualTo(1);

    OnnxModel noCache = mutate(valid, graph -> {
      graph.removeInput(3);
      graph.removeOutput(1);
    });
    assertThatThrownBy(() -> GenerationGraph.of("no-cache", noCache)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("Model 'no-cache' has no past_N inputs")
        .hasMessageContaining("[input_ids, position_ids, attention_mask]")
        .hasMessageContaining("convert_to_onnx");

    OnnxModel int64Ids = mutate(valid, graph -> graph.getInputBuilder(0).getTypeBuilder().getTensorTypeBuilder()
        .setElemType(OnnxElementType.INT64.onnxNumber()));
    assertThatThrownBy(() -> GenerationGraph.of("int64", int64Ids))
        .hasMessageContaining("Model 'int64' input 'input_ids' is input_ids: INT64[batch, sequence]")
        .hasMessageContaining("int32");

    OnnxModel keyValue = mutate(valid, graph -> graph.getInputBuilder(3).setName("past_key_values.0.key"));
    assertThatThrownBy(() -> GenerationGraph.of("optimum", keyValue))
        .hasMessageContaining("Model 'optimum' has inputs [input_ids, position_ids, attention_mask,"
            + " past_key_values.0.key]")
        .hasMessageContaining("past_key_values.N.key/value inputs are not this layout");

    OnnxModel sharedBuffer = mutate(valid, graph -> graph.addInput(OnnxProtos.valueInfo(
        new TensorDeclaration("past_sequence_length", OnnxElementType.INT32, List.of(Dimension.fixed(1)), true))));
    assertThatThrownBy(() -> GenerationGraph.of("shared", sharedBuffer))
        .hasMessageContaining("past_sequence_length");

    OnnxModel symbolicHeads = mutate(valid, graph -> graph.getInputBuilder(3).getTypeBuilder().getTensorTypeBuilder()
        .getShapeBuilder().getDimBuilder(2).setDimParam("heads"));
    assertThatThrownBy(() -> GenerationGraph.of("heads", symbolicHeads))
        .hasMessageContaining("Model 'heads' cache tensor 'past_0' is past_0: FLOAT[2, batch, heads, past, 4]")
        .hasMessageContaining("heads and head size fixed");

    OnnxModel halfPresent = mutate(valid, graph -> graph.getOutputBuilder(1).getTypeBuilder().getTensorTypeBuilder()
        .setElemType(OnnxElementType.FLOAT16.onnxNumber()));
    assertThatThrownBy(() -> GenerationGraph.of("half", halfPresent))
        .hasMessageContaining("cache tensor 'present_0' is present_0: FLOAT16")
        .hasMessageContaining("FLOAT (the type of logits)");

    OnnxModel openVocabulary = mutate(valid, graph -> graph.getOutputBuilder(0).getTypeBuilder()
        .getTensorTypeBuilder().getShapeBuilder().getDimBuilder(2).setDimParam("vocabulary"));
    assertThatThrownBy(() -> GenerationGraph.of("open", openVocabulary))
        .hasMessageContaining("Model 'open' output 'logits' is logits: FLOAT[batch, sequence, vocabulary]");

    OnnxModel sequenceInput = mutate(valid, graph -> graph.getInputBuilder(2).setType(
        TypeProto.newBuilder().setSequenceType(
            TypeProto.Sequence.newBuilder().setElemType(graph.getInput(0).getType()))));
    assertThatThrownBy(() -> GenerationGraph.of("sequence", sequenceInput))
        .hasMessageContaining("Model 'sequence' input 'attention_mask' is not a tensor");

    // A file declaring more layers than any decoder has is refused before names are made from the count.
    OnnxModel manyLayers = mutate(valid, graph -> {
      for (int layer = 1; layer <= GenerationGraph.MAX_LAYERS; layer++) {
        graph.addInput(graph.getInput(3).toBuilder().setName("past_" + layer));
      }
    });
    assertThatThrownBy(() -> GenerationGraph.of("deep", manyLayers))
        .hasMessageContaining("Model 'deep' has 1025 past_ inputs, more than the 1024 layers");

    GenerationGraph graph = GenerationGraph.of("tables", valid);
    assertThatThrownBy(() -> graph.greedySearch(40, 0))
        .hasMessageContaining("eosTokenId=40 is outside model 'tables''s vocabulary of 40 tokens");
    assertThatThrownBy(() -> graph.greedySearch(1, -1)).hasMessageContaining("padTokenId=-1");
    assertThatThrownBy(() -> graph.sampling(1, 0, 0f, 0.9f))
        .hasMessageContaining("temperature=0.0 for model 'tables'");
    assertThatThrownBy(() -> graph.sampling(1, 0, Float.NaN, 0.9f)).hasMessageContaining("temperature=NaN");
    assertThatThrownBy(() -> graph.sampling(1, 0, 1f, 0f)).hasMessageContaining("topP=0.0 for model 'tables'");
    assertThatThrownBy(() -> graph.sampling(1, 0, 1f, 1.5f)).hasMessageContaining("topP=1.5");
  }

  private static OnnxModel mutate(OnnxModel model, Consumer<GraphProto.Builder> change) {
    ModelProto.Builder builder = model.proto().toBuilder();
    change.accept(builder.getGraphBuilder());
    return new OnnxModel(builder.build());
  }

  /** The decoder of {@link #decoderBuiltHereDecodesAsItsTablesSayAndItsWeightsMoveToTheOuterGraph}. */
  private static OnnxModel tableDecoder(float[] w, float[] p, int vocabulary, int positions) {
    return OnnxModelBuilder.create("tables")
        .input("input_ids", OnnxElementType.INT32, "batch", "sequence")
        .input("position_ids", OnnxElementType.INT32, "batch", "sequence")
        .input("attention_mask", OnnxElementType.INT32, "batch", "total")
        .input("past_0", OnnxElementType.FLOAT, 2, "batch", 2, "past", 4)
        .initializer("W", w, vocabulary, vocabulary)
        .initializer("P", p, positions, vocabulary)
        .initializer("axes", new long[] {0, 2, 4}, 3)
        .initializer("kv_shape", new long[] {2, 1, 2, 1, 4}, 5)
        .node("Gather", List.of("W", "input_ids"), List.of("by_token"))
        .node("Gather", List.of("P", "position_ids"), List.of("by_position"))
        .node("Add", List.of("by_token", "by_position"), List.of("logits"))
        .node("Cast", List.of("input_ids"), List.of("tokens"), Attribute.ofInt("to", 1))
        .node("Unsqueeze", List.of("tokens", "axes"), List.of("tokens5"))
        .node("Expand", List.of("tokens5", "kv_shape"), List.of("new_kv"))
        .node("Concat", List.of("past_0", "new_kv"), List.of("present_0"), Attribute.ofInt("axis", 3))
        .output("logits", OnnxElementType.FLOAT, "batch", "sequence", vocabulary)
        .output("present_0", OnnxElementType.FLOAT, 2, "batch", 2, "total", 4)
        .build();
  }

  /** GreedySearch on a whole batch; rows are left-padded with {@link #PAD} and masked. */
  private static int[][] generate(OrtSession search, int[][] prompts, int maxLength, int minLength,
      float repetitionPenalty) throws OrtException {
    return generate(search, prompts, maxLength, minLength, repetitionPenalty, PAD, null);
  }

  private static int[][] generateWithPad(OrtSession search, int[][] prompts, int maxLength, int pad)
      throws OrtException {
    return generate(search, prompts, maxLength, 0, 1f, pad, null);
  }

  /** With {@code seed} null no seed is fed (GreedySearch has none). */
  private static int[][] generate(OrtSession search, int[][] prompts, int maxLength, int minLength,
      float repetitionPenalty, int pad, Integer seed) throws OrtException {
    int longest = Arrays.stream(prompts).mapToInt(prompt -> prompt.length).max().orElseThrow();
    int[] ids = new int[prompts.length * longest];
    int[] mask = new int[prompts.length * longest];
    for (int row = 0; row < prompts.length; row++) {
      int padding = longest - prompts[row].length;
      for (int column = 0; column < longest; column++) {
        ids[row * longest + column] = column < padding ? pad : prompts[row][column - padding];
        mask[row * longest + column] = column < padding ? 0 : 1;
      }
    }
    long[] shape = {prompts.length, longest};
    Map<String, OnnxTensor> inputs = new HashMap<>();
    try {
      inputs.put(GenerationGraph.INPUT_IDS,
          OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, IntBuffer.wrap(ids), shape));
      inputs.put(GenerationGraph.ATTENTION_MASK,
          OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, IntBuffer.wrap(mask), shape));
      inputs.put(GenerationGraph.MAX_LENGTH, OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, new int[] {maxLength}));
      inputs.put(GenerationGraph.MIN_LENGTH, OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, new int[] {minLength}));
      inputs.put(GenerationGraph.REPETITION_PENALTY,
          OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, new float[] {repetitionPenalty}));
      if (seed != null) {
        inputs.put(GenerationGraph.SEED, OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, new int[] {seed}));
      }
      try (OrtSession.Result result = search.run(inputs)) {
        OnnxTensor sequences = (OnnxTensor) result.get(GenerationGraph.SEQUENCES).orElseThrow();
        assertThat(sequences.getInfo().getShape()).containsExactly(prompts.length, maxLength);
        IntBuffer values = sequences.getIntBuffer();
        int[][] rows = new int[prompts.length][maxLength];
        for (int[] row : rows) {
          values.get(row);
        }
        return rows;
      }
    } finally {
      inputs.values().forEach(OnnxTensor::close);
    }
  }

  /** A row's tokens after its prompt columns, up to its first pad token (the end token is written as pad). */
  private static int[] newTokens(int[] row, int promptColumns) {
    return newTokens(row, promptColumns, PAD);
  }

  private static int[] newTokens(int[] row, int promptColumns, int pad) {
    int end = promptColumns;
    while (end < row.length && row[end] != pad) {
      end++;
    }
    return Arrays.copyOfRange(row, promptColumns, end);
  }

  private static int[] concat(int[]... parts) {
    return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
  }

  private static boolean contains(int[] tokens, int token) {
    return Arrays.stream(tokens).anyMatch(each -> each == token);
  }

  private static int[] leftPadded(int[] prompt, int length) {
    int[] padded = new int[length];
    Arrays.fill(padded, PAD);
    System.arraycopy(prompt, 0, padded, length - prompt.length, prompt.length);
    return padded;
  }

  /**
   * Greedy decoding of one row without the cache: each step runs the whole sequence so far and takes
   * the argmax of the last position's logits after the penalties (the repetition penalty over every
   * token of the row, padding included, as ONNX Runtime counts). Stops at {@code eos} (not returned) or
   * at {@code maxLength}.
   */
  private static int[] referenceDecode(OrtSession decoder, int[] prompt, int padding, int maxLength, int eos,
      int minLength, float repetitionPenalty) throws OrtException {
    List<Integer> sequence = new ArrayList<>();
    Arrays.stream(prompt).forEach(sequence::add);
    List<Integer> generated = new ArrayList<>();
    while (sequence.size() < maxLength) {
      float[] scores = lastLogits(decoder, sequence.stream().mapToInt(Integer::intValue).toArray(), padding);
      for (int token : new HashSet<>(sequence)) {
        scores[token] = scores[token] < 0 ? scores[token] * repetitionPenalty : scores[token] / repetitionPenalty;
      }
      if (sequence.size() < minLength) {
        scores[eos] = Float.NEGATIVE_INFINITY;
      }
      int best = argmax(scores);
      if (best == eos) {
        break;
      }
      generated.add(best);
      sequence.add(best);
    }
    return generated.stream().mapToInt(Integer::intValue).toArray();
  }

  /**
   * The logits of the last position of one row run without the cache: empty past tensors, the mask 0
   * on the first {@code padding} columns, positions = cumsum(mask) - 1 (0 on padding).
   */
  private static float[] lastLogits(OrtSession decoder, int[] ids, int padding) throws OrtException {
    int length = ids.length;
    int[] mask = new int[length];
    int[] positions = new int[length];
    int ones = 0;
    for (int i = 0; i < length; i++) {
      mask[i] = i < padding ? 0 : 1;
      ones += mask[i];
      positions[i] = Math.max(ones - 1, 0);
    }
    int layers = (int) decoder.getInputNames().stream().filter(name -> name.startsWith("past_")).count();
    Map<String, OnnxTensor> inputs = new HashMap<>();
    try {
      long[] shape = {1, length};
      inputs.put("input_ids", OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, IntBuffer.wrap(ids), shape));
      inputs.put("attention_mask", OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, IntBuffer.wrap(mask), shape));
      inputs.put("position_ids", OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, IntBuffer.wrap(positions), shape));
      for (int layer = 0; layer < layers; layer++) {
        inputs.put("past_" + layer, OnnxTensor.createTensor(OrtTesting.ENVIRONMENT, FloatBuffer.allocate(0),
            new long[] {2, 1, 4, 0, 8}));
      }
      try (OrtSession.Result result = decoder.run(inputs)) {
        OnnxTensor logits = (OnnxTensor) result.get("logits").orElseThrow();
        int vocabulary = (int) logits.getInfo().getShape()[2];
        float[] last = new float[vocabulary];
        logits.getFloatBuffer().position((length - 1) * vocabulary).get(last);
        return last;
      }
    } finally {
      inputs.values().forEach(OnnxTensor::close);
    }
  }
}
