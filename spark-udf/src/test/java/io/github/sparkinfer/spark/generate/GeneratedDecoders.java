package io.github.sparkinfer.spark.generate;

import io.github.sparkinfer.compression.Attribute;
import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

/**
 * Tiny decoder-only ONNX models with random weights (fixed seed) and a key/value cache, built here
 * with the compression module's graph builder from standard ONNX operators, so that generate()'s
 * tests do not depend on ../shared/models/decoders alone. Each is a GPT-2-like transformer: token and
 * position embeddings, {@value #LAYERS} layers of pre-norm attention ({@value #HEADS} heads of
 * {@value #HEAD_SIZE}) over the past and the new keys/values concatenated on the sequence axis, a
 * ReLU MLP, a final norm and a projection to {@value #VOCABULARY} logits. Keys are masked where the
 * attention mask is 0 (left padding) and after the query's absolute position (causal), with -1e4
 * added before the softmax: exp of it is 0 in float, so padding and the future add exactly nothing.
 *
 * <p>With its cache fed step by step, such a model gives the logits it gives for the whole sequence
 * with an empty past (what {@link DecoderModels#referenceDecode} relies on); TestGeneratedDecoders
 * checks it. {@link #tokenizer} writes a Hugging Face tokenizer.json of the same vocabulary.
 */
public final class GeneratedDecoders {
  public static final int VOCABULARY = 64;
  public static final int LAYERS = 2;
  public static final int HEADS = 2;
  public static final int HEAD_SIZE = 4;
  public static final int HIDDEN = HEADS * HEAD_SIZE;
  /** Rows of the position embedding: the most tokens of prompt and new tokens together. */
  public static final int MAX_POSITIONS = 64;
  private static final int MLP = 2 * HIDDEN;
  /** The tokenizer's unknown token, id 0; also the padding the decode loop feeds (masked). */
  public static final String UNKNOWN = "[UNK]";

  /** Which exporter's inputs and outputs the model has. */
  public enum Layout {
    /** onnxruntime.transformers' GPT-2: int32 inputs, past_N / present_N [2, batch, heads, sequence, head size]. */
    GPT2,
    /** Optimum: int64 inputs, past_key_values.N.key|value / present.N.key|value [batch, heads, sequence, head size]. */
    OPTIMUM,
    /** Optimum without position_ids: positions computed in the graph from the attention mask, as some exports do. */
    OPTIMUM_WITHOUT_POSITIONS
  }

  private GeneratedDecoders() {}

  /** Writes the decoder to {@code folder/model.onnx} and returns that path. */
  public static Path write(Layout layout, Path folder, long seed) throws IOException {
    return write(layout, folder, seed, true);
  }

  /**
   * As {@link #write(Layout, Path, long)}; {@code maskPadding} false leaves the attention mask out of
   * the attention (only the causal mask stays), for tests that show padding then changes real rows.
   */
  public static Path write(Layout layout, Path folder, long seed, boolean maskPadding) throws IOException {
    Files.createDirectories(folder);
    Path model = folder.resolve("model.onnx");
    new Graph(layout, seed, maskPadding).build().writeTo(model);
    return model;
  }

  /**
   * The tokenizer's words by id: {@value #UNKNOWN} then {@code VOCABULARY - 1} words of lower-case
   * letters, so that any prompt of them splits on whitespace into one token per word.
   */
  public static List<String> words() {
    String[] words = new String[VOCABULARY];
    words[0] = UNKNOWN;
    String[] first = {"the", "a", "red", "blue", "green", "cat", "dog", "bird"};
    for (int id = 1; id < VOCABULARY; id++) {
      // Distinct by construction: a base word, then "o" repeated once per round through them.
      words[id] = first[(id - 1) % first.length] + "o".repeat((id - 1) / first.length);
    }
    return List.of(words);
  }

  /**
   * Writes {@code folder/tokenizer.json}: a Hugging Face WordLevel tokenizer over {@link #words()}
   * with a whitespace pre-tokenizer, {@value #UNKNOWN} as its unknown (and only special) token, no
   * post-processor (no tokens added) and no decoder (decoding joins words with spaces).
   */
  public static Path tokenizer(Path folder) throws IOException {
    Files.createDirectories(folder);
    StringBuilder vocab = new StringBuilder();
    List<String> words = words();
    for (int id = 0; id < words.size(); id++) {
      vocab.append(id == 0 ? "" : ", ").append('"').append(words.get(id)).append("\": ").append(id);
    }
    String json = "{\n"
        + "  \"version\": \"1.0\",\n"
        + "  \"truncation\": null,\n"
        + "  \"padding\": null,\n"
        + "  \"added_tokens\": [{\"id\": 0, \"content\": \"" + UNKNOWN + "\", \"single_word\": false, \"lstrip\": false,"
        + " \"rstrip\": false, \"normalized\": false, \"special\": true}],\n"
        + "  \"normalizer\": null,\n"
        + "  \"pre_tokenizer\": {\"type\": \"Whitespace\"},\n"
        + "  \"post_processor\": null,\n"
        + "  \"decoder\": null,\n"
        + "  \"model\": {\"type\": \"WordLevel\", \"vocab\": {" + vocab + "}, \"unk_token\": \"" + UNKNOWN + "\"}\n"
        + "}\n";
    Path file = folder.resolve("tokenizer.json");
    Files.writeString(file, json, StandardCharsets.UTF_8);
    return file;
  }

  /** The graph of one decoder: values named by a counter, weights drawn in a fixed order from the seed. */
  private static final class Graph {
    private final Layout layout;
    private final boolean maskPadding;
    private final Random random;
    private final OnnxModelBuilder builder;
    private int next;

    Graph(Layout layout, long seed, boolean maskPadding) {
      this.layout = layout;
      this.maskPadding = maskPadding;
      this.random = new Random(seed);
      this.builder = OnnxModelBuilder.create("generated_decoder_" + layout.name().toLowerCase());
    }

    OnnxModel build() {
      boolean gpt2 = layout == Layout.GPT2;
      OnnxElementType ids = gpt2 ? OnnxElementType.INT32 : OnnxElementType.INT64;
      builder.input("input_ids", ids, "batch", "sequence");
      if (layout != Layout.OPTIMUM_WITHOUT_POSITIONS) {
        builder.input("position_ids", ids, "batch", "sequence");
      }
      builder.input("attention_mask", ids, "batch", "total_sequence");
      for (int layer = 0; layer < LAYERS; layer++) {
        if (gpt2) {
          builder.input("past_" + layer, OnnxElementType.FLOAT, 2, "batch", HEADS, "past_sequence", HEAD_SIZE);
        } else {
          for (String half : List.of("key", "value")) {
            builder.input("past_key_values." + layer + "." + half, OnnxElementType.FLOAT, "batch", HEADS,
                "past_sequence", HEAD_SIZE);
          }
        }
      }
      builder.initializer("zero_i64", new long[] {0});
      builder.initializer("one_i64", new long[] {1});
      builder.initializer("axis_1", new long[] {1}, 1);
      builder.initializer("split_heads", new long[] {0, 0, HEADS, HEAD_SIZE}, 4);
      builder.initializer("merge_heads", new long[] {0, 0, HIDDEN}, 3);
      builder.initializer("zero_f", new float[] {0f});
      builder.initializer("masked_f", new float[] {-1e4f});
      builder.initializer("scale_f", new float[] {(float) (1 / Math.sqrt(HEAD_SIZE))});
      if (gpt2 || layout == Layout.OPTIMUM_WITHOUT_POSITIONS) {
        // Declared only where used: ONNX Runtime warns of unused initializers.
        builder.initializer("axis_0", new long[] {0}, 1);
      }

      // Lengths: S new tokens, T = past + S keys (the mask covers past and new tokens).
      String sequence = op("Gather", List.of(op("Shape", "input_ids"), "one_i64"), Attribute.ofInt("axis", 0));
      String total = op("Gather", List.of(op("Shape", "attention_mask"), "one_i64"), Attribute.ofInt("axis", 0));
      String past = op("Sub", total, sequence);

      // Causal: the query at absolute position past + i sees keys 0..past + i.
      String keyPositions = op("Range", "zero_i64", total, "one_i64");
      String queryPositions = op("Unsqueeze", op("Range", past, total, "one_i64"), "axis_1");
      String bias = op("Where", op("LessOrEqual", keyPositions, queryPositions), "zero_f", "masked_f");
      if (maskPadding) {
        // Padding: -1e4 where the mask is 0, broadcast [batch, 1, 1, T] over heads and queries.
        builder.initializer("one_f", new float[] {1f});
        builder.initializer("axes_1_2", new long[] {1, 2}, 2);
        String mask = op("Cast", List.of("attention_mask"), Attribute.ofInt("to", OnnxElementType.FLOAT.onnxNumber()));
        String padding = op("Unsqueeze", op("Mul", op("Sub", "one_f", mask), "masked_f"), "axes_1_2");
        bias = op("Add", bias, padding);
      }

      String positions;
      if (layout == Layout.OPTIMUM_WITHOUT_POSITIONS) {
        // As Optimum: cumulative sum of the mask minus 1 (padding clamped to 0), the last S columns.
        String counted = op("Sub", op("CumSum", "attention_mask", "one_i64"), "one_i64");
        String clamped = op("Max", counted, "zero_i64");
        positions = op("Slice", clamped, op("Unsqueeze", past, "axis_0"), op("Unsqueeze", total, "axis_0"), "axis_1");
      } else {
        positions = "position_ids";
      }
      String x = op("Add", op("Gather", weight("token_embedding", 1.0, VOCABULARY, HIDDEN), "input_ids"),
          op("Gather", weight("position_embedding", 1.0, MAX_POSITIONS, HIDDEN), positions));

      for (int layer = 0; layer < LAYERS; layer++) {
        String prefix = "layer" + layer + "_";
        String normed = norm(prefix + "norm1", x);
        String query = heads(linear(prefix + "query", normed, HIDDEN, HIDDEN));
        String key = heads(linear(prefix + "key", normed, HIDDEN, HIDDEN));
        String value = heads(linear(prefix + "value", normed, HIDDEN, HIDDEN));
        String keys;
        String values;
        if (gpt2) {
          String cache = "past_" + layer;
          keys = op("Concat", List.of(op("Gather", List.of(cache, "zero_i64"), Attribute.ofInt("axis", 0)), key),
              Attribute.ofInt("axis", 2));
          values = op("Concat", List.of(op("Gather", List.of(cache, "one_i64"), Attribute.ofInt("axis", 0)), value),
              Attribute.ofInt("axis", 2));
          builder.node("Concat", List.of(op("Unsqueeze", keys, "axis_0"), op("Unsqueeze", values, "axis_0")),
              List.of("present_" + layer), Attribute.ofInt("axis", 0));
        } else {
          keys = "present." + layer + ".key";
          values = "present." + layer + ".value";
          builder.node("Concat", List.of("past_key_values." + layer + ".key", key), List.of(keys),
              Attribute.ofInt("axis", 2));
          builder.node("Concat", List.of("past_key_values." + layer + ".value", value), List.of(values),
              Attribute.ofInt("axis", 2));
        }
        // [batch, heads, S, head size] x [batch, heads, head size, T]: scores [batch, heads, S, T].
        String transposed = op("Transpose", List.of(keys), Attribute.ofInts("perm", 0, 1, 3, 2));
        String scores = op("Add", op("Mul", op("MatMul", query, transposed), "scale_f"), bias);
        String weights = op("Softmax", List.of(scores), Attribute.ofInt("axis", -1));
        String context = op("Transpose", List.of(op("MatMul", weights, values)), Attribute.ofInts("perm", 0, 2, 1, 3));
        String attended = linear(prefix + "output", op("Reshape", context, "merge_heads"), HIDDEN, HIDDEN);
        x = op("Add", x, attended);
        String hidden = op("Relu", linear(prefix + "up", norm(prefix + "norm2", x), HIDDEN, MLP));
        x = op("Add", x, linear(prefix + "down", hidden, MLP, HIDDEN));
      }
      builder.node("MatMul", List.of(norm("final_norm", x), weight("lm_head", 1.0, HIDDEN, VOCABULARY)),
          List.of("logits"));

      builder.output("logits", OnnxElementType.FLOAT, "batch", "sequence", VOCABULARY);
      for (int layer = 0; layer < LAYERS; layer++) {
        if (gpt2) {
          builder.output("present_" + layer, OnnxElementType.FLOAT, 2, "batch", HEADS, "total_sequence", HEAD_SIZE);
        } else {
          for (String half : List.of("key", "value")) {
            builder.output("present." + layer + "." + half, OnnxElementType.FLOAT, "batch", HEADS, "total_sequence",
                HEAD_SIZE);
          }
        }
      }
      return builder.build();
    }

    /** [batch, S, hidden] to [batch, heads, S, head size]. */
    private String heads(String states) {
      return op("Transpose", List.of(op("Reshape", states, "split_heads")), Attribute.ofInts("perm", 0, 2, 1, 3));
    }

    private String linear(String name, String input, int in, int out) {
      // Weights scaled by 1/sqrt(fan-in) keep the residual stream's scale from growing layer by layer.
      return op("Add", op("MatMul", input, weight(name + "_weight", 1 / Math.sqrt(in), in, out)),
          weight(name + "_bias", 0.1, out));
    }

    private String norm(String name, String input) {
      float[] scale = new float[HIDDEN];
      for (int i = 0; i < HIDDEN; i++) {
        scale[i] = (float) (1 + 0.1 * random.nextGaussian());
      }
      builder.initializer(name + "_scale", scale, HIDDEN);
      return op("LayerNormalization", List.of(input, name + "_scale", weight(name + "_bias", 0.1, HIDDEN)),
          Attribute.ofInt("axis", -1));
    }

    private String weight(String name, double scale, long... dimensions) {
      long count = 1;
      for (long dimension : dimensions) {
        count *= dimension;
      }
      float[] values = new float[(int) count];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) (scale * random.nextGaussian());
      }
      builder.initializer(name, values, dimensions);
      return name;
    }

    private String op(String type, String... inputs) {
      return op(type, List.of(inputs));
    }

    private String op(String type, List<String> inputs, Attribute... attributes) {
      String output = type.toLowerCase() + "_" + next++;
      builder.node(type, inputs, List.of(output), attributes);
      return output;
    }
  }
}
