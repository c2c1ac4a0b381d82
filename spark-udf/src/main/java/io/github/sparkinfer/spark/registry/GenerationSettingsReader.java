package io.github.sparkinfer.spark.registry;

import static io.github.sparkinfer.spark.InferenceProperties.MODEL_PREFIX;
import static io.github.sparkinfer.spark.InferenceProperties.MODEL_TOKENIZER_SUFFIX;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelLoadException;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.spark.generate.DecoderConfig;
import io.github.sparkinfer.spark.generate.DecoderLayout;
import io.github.sparkinfer.spark.generate.GenerateOption;
import io.github.sparkinfer.spark.generate.GenerationOptions;
import io.github.sparkinfer.spark.generate.GenerationSettings;
import io.github.sparkinfer.spark.generate.PaddingSide;
import io.github.sparkinfer.spark.generate.PromptTemplate;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A decoder's generate() settings, read with the usual precedence (the call's options map > the
 * per-model key spark.sparkinfer.model.&lt;name&gt;.generate.&lt;option&gt; > the session key
 * spark.sparkinfer.generate.&lt;option&gt; > the default) and checked at analysis, so that a value a task
 * would refuse fails the query before any job starts, naming the key, the model and the value.
 */
final class GenerationSettingsReader {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(GenerationSettingsReader.class);

  /** Stop strings a call may give: each is searched for in every row's text after every token. */
  static final int MAX_STOP_STRINGS = 64;

  /** Characters of one stop string, template or system prompt: these are settings, not documents. */
  static final int MAX_TEXT_SETTING = 1 << 16;

  /** Characters of one stop string: each row's last tokens are decoded and searched after every token. */
  static final int MAX_STOP_STRING = 256;

  private GenerationSettingsReader() {}

  /** The generate() settings of decoder {@code binding}, whose tokenizer is at {@code tokenizerUri}. */
  static GenerationSettings read(SettingsView conf, ModelBinding binding, String tokenizerUri) {
    String name = binding.modelName();
    if (!DecoderLayout.hasCacheInputs(binding.signature()) && DecoderLayout.isPackagedSearch(binding.signature())) {
      return PackagedSearchSettingsReader.read(conf, binding, tokenizerUri);
    }
    DecoderLayout layout;
    try {
      layout = DecoderLayout.of(name, binding.signature());
    } catch (IllegalArgumentException e) {
      throw Errors.analysis(e.getMessage(), e);
    }
    checkOptionKeys(conf, name);
    boolean leftPadding;
    try {
      leftPadding = PaddingSide.left(ModelCache.shared().localFile(binding.source(),
          ModelRegistry.driverHadoopConfiguration()));
    } catch (IOException | RuntimeException e) {
      throw Errors.analysis("Cannot read the graph of model '" + name + "' (" + binding.source().uri() + "): "
          + e.getMessage(), e);
    }
    ModelSource tokenizer = tokenizer(name, tokenizerUri);
    DecoderConfig exported = exportedConfig(binding);
    Values values = new Values(conf, name);
    GenerationOptions options;
    try {
      GenerationOptions.Builder builder = GenerationOptions.builder();
      values.integer(GenerateOption.MAX_NEW_TOKENS).ifPresent(builder::maxNewTokens);
      values.number(GenerateOption.TEMPERATURE).ifPresent(builder::temperature);
      values.integer(GenerateOption.TOP_K).ifPresent(builder::topK);
      values.number(GenerateOption.TOP_P).ifPresent(builder::topP);
      values.number(GenerateOption.REPETITION_PENALTY).ifPresent(builder::repetitionPenalty);
      values.integer(GenerateOption.NUM_BEAMS).ifPresent(builder::numBeams);
      Long seed = seed(values);
      if (seed != null) {
        builder.seed(seed);
      }
      String stopIds = values.text(GenerateOption.STOP_TOKEN_IDS);
      if (stopIds != null) {
        builder.stopTokenIds(stopTokenIds(values, stopIds, layout.vocabularySize()));
      } else if (exported.eosTokenIds() != null) {
        // The exporter's end-of-sequence ids; an id past the vocabulary could never be generated.
        int[] inVocabulary = java.util.Arrays.stream(exported.eosTokenIds())
            .filter(id -> id < layout.vocabularySize()).toArray();
        if (inVocabulary.length < exported.eosTokenIds().length) {
          LOG.warn("Model '{}': the exporter's end-of-sequence ids {} beside the model include ids outside its vocabulary"
              + " of {} tokens, which are left out; rows stop at {}", name, java.util.Arrays.toString(
                  exported.eosTokenIds()), layout.vocabularySize(), java.util.Arrays.toString(inVocabulary));
        }
        builder.stopTokenIds(inVocabulary);
      }
      options = builder.build();
    } catch (IllegalArgumentException e) {
      throw Errors.analysis("Cannot call generate() with model '" + name + "': " + e.getMessage(), e);
    }
    PromptTemplate prompts = template(values, name);
    String stops = values.text(GenerateOption.STOP_STRINGS);
    List<String> stopStrings = stops == null ? List.of() : stopStrings(values, stops);
    int maxContext = values.integer(GenerateOption.MAX_CONTEXT)
        .orElse((int) Math.min(Integer.MAX_VALUE, exported.contextLength()));
    String contextSource = values.text(GenerateOption.MAX_CONTEXT) != null ? values.keyOf(GenerateOption.MAX_CONTEXT)
        : "the context length of the exporter's config beside the model";
    if (maxContext < 0) {
      throw values.invalid(GenerateOption.MAX_CONTEXT, String.valueOf(maxContext), "0 (no limit) or more tokens");
    }
    if (maxContext > 0 && options.maxNewTokens() >= maxContext) {
      throw Errors.analysis("Cannot call generate() with model '" + name + "': maxNewTokens=" + options.maxNewTokens()
          + " leaves no room for a prompt in maxContext=" + maxContext + " tokens (" + contextSource
          + "). Lower maxNewTokens or raise maxContext");
    }
    boolean truncateLeft = truncateLeft(values);
    int batchSize = batchSize(values);
    String decodeLoop = values.text(GenerateOption.DECODE_LOOP);
    decodeLoop = decodeLoop == null ? "auto" : decodeLoop.trim().toLowerCase(Locale.ROOT);
    if (!decodeLoop.equals("auto") && !decodeLoop.equals("java") && !decodeLoop.equals("graph")) {
      throw values.invalid(GenerateOption.DECODE_LOOP, decodeLoop, "auto, java or graph");
    }
    String whyNot = GenerationSettings.whyNotInGraph(layout, options, stopStrings.size());
    if (decodeLoop.equals("graph") && whyNot != null) {
      throw Errors.analysis("Cannot decode with model '" + name + "' inside ONNX Runtime (" + values.keyOf(
          GenerateOption.DECODE_LOOP) + "=graph): " + whyNot + ". Set decodeLoop=auto or java");
    }
    return new GenerationSettings(layout, leftPadding, tokenizer, options, prompts, stopStrings, maxContext,
        truncateLeft, batchSize, decodeLoop);
  }

  /** The tokenizer's source, checked now: a file that cannot be read fails the query here. */
  static ModelSource tokenizer(String name, String tokenizerUri) {
    ModelSource tokenizer = ModelSource.ofFile(name, tokenizerUri, MODEL_PREFIX + name + MODEL_TOKENIZER_SUFFIX);
    try {
      ModelCache.shared().localFile(tokenizer, ModelRegistry.driverHadoopConfiguration());
    } catch (ModelLoadException e) {
      throw Errors.analysis(e.getMessage().replace("Cannot load model", "Cannot load the tokenizer of model"), e);
    }
    return tokenizer;
  }

  /** The seed when set: a whole number (8.0 counts as 8, as a SQL map of numbers writes it). */
  static Long seed(Values values) {
    String seed = values.text(GenerateOption.SEED);
    if (seed == null) {
      return null;
    }
    return values.parse(GenerateOption.SEED, seed.trim(), value -> {
      try {
        return new java.math.BigDecimal(value).longValueExact();
      } catch (ArithmeticException e) {
        throw new NumberFormatException(value);
      }
    }, "a whole number");
  }

  /** The prompt template and system prompt, checked. */
  static PromptTemplate template(Values values, String name) {
    String template = values.text(GenerateOption.PROMPT_TEMPLATE);
    String system = values.text(GenerateOption.SYSTEM_PROMPT);
    try {
      return template == null && system == null ? PromptTemplate.none()
          : PromptTemplate.of(template == null ? "{prompt}" : bounded(values, GenerateOption.PROMPT_TEMPLATE, template),
              system == null ? null : bounded(values, GenerateOption.SYSTEM_PROMPT, system));
    } catch (IllegalArgumentException e) {
      throw Errors.analysis(e.getMessage() + " (" + values.keyOf(GenerateOption.PROMPT_TEMPLATE) + ", model '" + name
          + "')", e);
    }
  }

  /** contextOverflow: whether a prompt too long for maxContext loses its first tokens (else its row fails). */
  static boolean truncateLeft(Values values) {
    String overflow = values.text(GenerateOption.CONTEXT_OVERFLOW);
    overflow = overflow == null ? "error" : overflow.trim().toLowerCase(Locale.ROOT);
    if (!overflow.equals("error") && !overflow.equals("truncate")) {
      throw values.invalid(GenerateOption.CONTEXT_OVERFLOW, overflow, "error (the row fails) or truncate (the prompt's"
          + " first tokens are dropped)");
    }
    return overflow.equals("truncate");
  }

  /** Prompts decoded together; 0 when unset (the device decides). */
  static int batchSize(Values values) {
    int batchSize = values.integer(GenerateOption.BATCH_SIZE).orElse(0);
    if (values.text(GenerateOption.BATCH_SIZE) != null && (batchSize < 1 || batchSize > GenerationSettings.BATCH_SIZE_MAX)) {
      throw values.invalid(GenerateOption.BATCH_SIZE, String.valueOf(batchSize), "1 to " + GenerationSettings.BATCH_SIZE_MAX
          + " prompts");
    }
    return batchSize;
  }

  /**
   * What the exporter wrote beside the model (genai_config.json, generation_config.json, config.json),
   * where those files exist: the defaults of stopTokenIds and maxContext.
   */
  private static DecoderConfig exportedConfig(ModelBinding binding) {
    DecoderConfig config = DecoderConfig.none();
    org.apache.hadoop.fs.Path model = new org.apache.hadoop.fs.Path(binding.source().uri());
    for (String file : DecoderConfig.FILES) {
      org.apache.hadoop.fs.Path beside = new org.apache.hadoop.fs.Path(model.getParent(), file);
      try {
        if (!beside.getFileSystem(ModelRegistry.driverHadoopConfiguration()).exists(beside)) {
          continue;
        }
        java.nio.file.Path local = ModelCache.shared().localFile(ModelSource.ofFile(binding.modelName(),
            beside.toString(), "the folder of " + MODEL_PREFIX + binding.modelName() + ".path"),
            ModelRegistry.driverHadoopConfiguration());
        config = config.orElse(DecoderConfig.read(local));
      } catch (IOException | RuntimeException e) {
        throw Errors.analysis("Cannot read " + beside + " beside model '" + binding.modelName() + "': " + e.getMessage()
            + ". Fix or remove the file: generate() reads its end-of-sequence ids and context length", e);
      }
    }
    return config;
  }

  /**
   * A key under the generate prefixes whose option does not exist would be ignored without a word (a
   * misspelled temperature would decode greedily): it fails the query, naming the options.
   */
  static void checkOptionKeys(SettingsView conf, String name) {
    String modelPrefix = MODEL_PREFIX + name + GenerateOption.MODEL_INFIX;
    for (String key : conf.all().keySet()) {
      String option = key.startsWith(GenerateOption.SESSION_PREFIX) ? key.substring(GenerateOption.SESSION_PREFIX.length())
          : key.startsWith(modelPrefix) ? key.substring(modelPrefix.length()) : null;
      if (option == null) {
        continue;
      }
      GenerateOption known = GenerateOption.named(option);
      if (known == null || !known.key().equals(option)) {
        known = known != null ? known : GenerateOption.closest(option);
        throw Errors.analysis("Unknown generate() option '" + option + "' in " + key + " (model '" + name + "')"
            + (known == null ? "" : "; did you mean " + known.key() + "?") + ". The options are "
            + GenerateOption.names());
      }
    }
  }

  private static int[] stopTokenIds(Values values, String text, long vocabulary) {
    List<Integer> ids = new ArrayList<>();
    for (String part : text.split(",")) {
      if (part.isBlank()) {
        continue;
      }
      int id = values.parse(GenerateOption.STOP_TOKEN_IDS, part.trim(), Integer::parseInt, "comma-separated token ids");
      if (id < 0 || id >= vocabulary) {
        throw values.invalid(GenerateOption.STOP_TOKEN_IDS, part.trim(), "token ids from 0 to " + (vocabulary - 1)
            + " (the model's vocabulary has " + vocabulary + " tokens)");
      }
      ids.add(id);
    }
    return ids.stream().mapToInt(Integer::intValue).toArray();
  }

  /** One stop string, or a JSON array of them; the array is read with bounds (it is a session's text). */
  static List<String> stopStrings(Values values, String text) {
    List<String> stops = new ArrayList<>();
    if (!text.trim().startsWith("[")) {
      stops.add(text);
    } else {
      try (JsonParser parser = new JsonFactory().createParser(text)) {
        if (parser.nextToken() != JsonToken.START_ARRAY) {
          throw new IOException("not an array");
        }
        for (JsonToken token = parser.nextToken(); token != JsonToken.END_ARRAY; token = parser.nextToken()) {
          if (token != JsonToken.VALUE_STRING) {
            throw new IOException("found " + token + " where a string belongs");
          }
          if (stops.size() == MAX_STOP_STRINGS) {
            throw new IOException("more than " + MAX_STOP_STRINGS + " stop strings");
          }
          stops.add(parser.getText());
        }
        if (parser.nextToken() != null) {
          throw new IOException("text after the array");
        }
      } catch (IOException e) {
        throw values.invalid(GenerateOption.STOP_STRINGS, text, "one stop string, or a JSON array of at most "
            + MAX_STOP_STRINGS + " strings such as [\"\\n\\n\", \"###\"] (" + e.getMessage() + ")");
      }
    }
    for (String stop : stops) {
      if (stop.length() > MAX_STOP_STRING) {
        throw values.invalid(GenerateOption.STOP_STRINGS, stop.substring(0, 40) + "... (" + stop.length()
            + " characters)", "stop strings of at most " + MAX_STOP_STRING + " characters");
      }
      if (stop.isEmpty()) {
        throw values.invalid(GenerateOption.STOP_STRINGS, text, "non-empty strings: an empty stop string would end"
            + " every row before its first token");
      }
    }
    return stops;
  }

  static String bounded(Values values, GenerateOption option, String text) {
    if (text.length() > MAX_TEXT_SETTING) {
      throw values.invalid(option, text.substring(0, 40) + "... (" + text.length() + " characters)",
          "at most " + MAX_TEXT_SETTING + " characters");
    }
    return text;
  }

  /** One model's option values by precedence, and errors that name the key a value came from. */
  static final class Values {
    private final SettingsView conf;
    private final String model;

    Values(SettingsView conf, String model) {
      this.conf = conf;
      this.model = model;
    }

    /** The key the option's value comes from: the per-model key when set, else the session's. */
    String keyOf(GenerateOption option) {
      String modelKey = MODEL_PREFIX + model + GenerateOption.MODEL_INFIX + option.key();
      return conf.get(modelKey, null) != null ? modelKey : GenerateOption.SESSION_PREFIX + option.key();
    }

    /** The option's value, or null when neither key sets it. */
    String text(GenerateOption option) {
      return conf.get(keyOf(option), null);
    }

    /** A whole number; 8.0 counts as 8 (a SQL map of numbers gives every value its common decimal type). */
    java.util.OptionalInt integer(GenerateOption option) {
      String text = text(option);
      return text == null || text.isBlank() ? java.util.OptionalInt.empty()
          : java.util.OptionalInt.of(parse(option, text.trim(), value -> {
            try {
              return new java.math.BigDecimal(value).intValueExact();
            } catch (ArithmeticException e) {
              throw new NumberFormatException(value);
            }
          }, "a whole number"));
    }

    java.util.OptionalDouble number(GenerateOption option) {
      String text = text(option);
      return text == null || text.isBlank() ? java.util.OptionalDouble.empty()
          : java.util.OptionalDouble.of(parse(option, text.trim(), Double::parseDouble, "a number"));
    }

    <T> T parse(GenerateOption option, String text, java.util.function.Function<String, T> parser, String what) {
      try {
        return parser.apply(text);
      } catch (NumberFormatException e) {
        throw invalid(option, text, what);
      }
    }

    RuntimeException invalid(GenerateOption option, String value, String what) {
      return Errors.analysis("Invalid value '" + value + "' for " + keyOf(option) + " (model '" + model + "'): must be "
          + what);
    }
  }
}
