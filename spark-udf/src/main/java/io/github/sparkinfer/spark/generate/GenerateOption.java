package io.github.sparkinfer.spark.generate;

import java.util.Locale;

/**
 * The options of generate(), declared once: their names in a call's options map, in the session key
 * {@code spark.sparkinfer.generate.<option>} and in the per-model key {@code
 * spark.sparkinfer.model.<name>.generate.<option>}, with the default and a line of documentation
 * (SparkinferSettings declares the keys from this list, docs/configuration.md is tested against it).
 */
public enum GenerateOption {
  MAX_NEW_TOKENS("maxNewTokens", "64", "most new tokens per row, 1 to 65536"),
  TEMPERATURE("temperature", "0", "0 is greedy (the most likely token); above 0 samples, 0 to 100"),
  TOP_K("topK", "0", "sample among the k most likely tokens; 0: no filter"),
  TOP_P("topP", "1", "sample among the most likely tokens whose probabilities add up to p, above 0 to 1"),
  SEED("seed", "0", "seed of sampling, a whole number: the same seed gives the same text on the same device"),
  REPETITION_PENALTY("repetitionPenalty", "1", "above 1 makes tokens already in the row (prompt included) less"
      + " likely, as Hugging Face's repetition_penalty"),
  STOP_TOKEN_IDS("stopTokenIds", "the eos ids of the exporter's config beside the model, else none",
      "comma-separated token ids that end a row (finish_reason stop); empty: none"),
  STOP_STRINGS("stopStrings", "(none)", "a text that ends a row, cut before it; several as a JSON array of strings"),
  PROMPT_TEMPLATE("promptTemplate", "{prompt}", "the model's input text, with a {prompt} slot for the row's prompt"
      + " and a {system} slot for the system prompt"),
  SYSTEM_PROMPT("systemPrompt", "(none)", "the text of the template's {system} slot"),
  MAX_CONTEXT("maxContext", "the context length of the exporter's config beside the model, else 0 (no limit)",
      "most tokens of prompt and new tokens together"),
  CONTEXT_OVERFLOW("contextOverflow", "error", "a prompt longer than maxContext allows: error (a row error) or"
      + " truncate (its first tokens are dropped)"),
  NUM_BEAMS("numBeams", "1", "beams per prompt: above 1 keeps the most likely sequences (beam search, greedy only),"
      + " 1 to " + GenerationOptions.MAX_BEAMS),
  DECODE_LOOP("decodeLoop", "auto", "where the decode loop runs: graph (inside one ONNX Runtime run, ONNX Runtime's"
      + " GreedySearch: greedy, GPT-2 layout, one stop token, no stop strings or penalty), java (a run per token), or"
      + " auto (graph on GPUs and NPUs where the model and options allow it, else java)"),
  BATCH_SIZE("batchSize", GenerationSettings.BATCH_SIZE_CPU_DEFAULT + " on the CPU, "
      + GenerationSettings.BATCH_SIZE_ACCELERATOR_DEFAULT + " on a GPU/NPU", "prompts decoded together, 1 to "
      + GenerationSettings.BATCH_SIZE_MAX);

  /** The session key's prefix; the per-model key is spark.sparkinfer.model.&lt;name&gt;.generate.&lt;option&gt;. */
  public static final String SESSION_PREFIX = "spark.sparkinfer.generate.";

  /** Between the model's prefix and the option in the per-model key. */
  public static final String MODEL_INFIX = ".generate.";

  private final String key;
  private final String defaultText;
  private final String doc;

  GenerateOption(String key, String defaultText, String doc) {
    this.key = key;
    this.defaultText = defaultText;
    this.doc = doc;
  }

  /** The option's name in keys and options maps, such as maxNewTokens. */
  public String key() {
    return key;
  }

  public String defaultText() {
    return defaultText;
  }

  public String doc() {
    return doc;
  }

  /**
   * The option a call's map names: its key in any case, with or without underscores (max_new_tokens,
   * maxNewTokens, MAXNEWTOKENS), or null when there is none.
   */
  public static GenerateOption named(String name) {
    String wanted = name.replace("_", "").trim().toLowerCase(Locale.ROOT);
    for (GenerateOption option : values()) {
      if (option.key.toLowerCase(Locale.ROOT).equals(wanted)) {
        return option;
      }
    }
    return null;
  }

  /** The option within two edits of {@code name} (a typo's likely meaning), or null. */
  public static GenerateOption closest(String name) {
    String wanted = name.replace("_", "").trim().toLowerCase(Locale.ROOT);
    GenerateOption best = null;
    int bestDistance = 3;
    for (GenerateOption option : values()) {
      int distance = editDistance(wanted, option.key.toLowerCase(Locale.ROOT));
      if (distance < bestDistance) {
        best = option;
        bestDistance = distance;
      }
    }
    return best;
  }

  private static int editDistance(String a, String b) {
    if (Math.abs(a.length() - b.length()) > 2) {
      return 3;
    }
    int[] previous = new int[b.length() + 1];
    int[] current = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      previous[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      current[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int substitution = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        current[j] = Math.min(substitution, Math.min(previous[j], current[j - 1]) + 1);
      }
      int[] swap = previous;
      previous = current;
      current = swap;
    }
    return previous[b.length()];
  }

  /** Every option's name, for error messages. */
  public static String names() {
    StringBuilder names = new StringBuilder();
    for (GenerateOption option : values()) {
      names.append(names.length() == 0 ? "" : ", ").append(option.key);
    }
    return names.toString();
  }
}
