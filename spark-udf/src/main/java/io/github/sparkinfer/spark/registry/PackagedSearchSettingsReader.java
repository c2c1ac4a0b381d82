package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.spark.generate.GenerateOption;
import io.github.sparkinfer.spark.generate.GenerationOptions;
import io.github.sparkinfer.spark.generate.GenerationSettings;
import io.github.sparkinfer.spark.generate.PromptTemplate;
import java.io.IOException;
import java.util.List;

/**
 * generate()'s settings for a model that packages ONNX Runtime's decode loop: read as
 * {@link GenerationSettingsReader} reads a decoder's, with what the packaged operator decides refused.
 */
final class PackagedSearchSettingsReader {
  private PackagedSearchSettingsReader() {}

  /**
   * A model whose graph holds ONNX Runtime's decode loop runs as it is: its node's end and padding
   * tokens and its decoder's vocabulary are read from the file; options that its operator decides (the
   * way it chooses tokens, the stop token) are refused when set, naming the operator.
   */
  static GenerationSettings read(SettingsView conf, ModelBinding binding, String tokenizerUri) {
    String name = binding.modelName();
    GenerationSettingsReader.checkOptionKeys(conf, name);
    io.github.sparkinfer.compression.PackagedSearch packaged;
    try {
      packaged = io.github.sparkinfer.compression.PackagedSearch.read(ModelCache.shared().localFile(binding.source(),
          ModelRegistry.driverHadoopConfiguration()));
    } catch (IOException | RuntimeException e) {
      throw Errors.analysis("Cannot read the graph of model '" + name + "' (" + binding.source().uri() + "): "
          + e.getMessage(), e);
    }
    String what = "Model '" + name + "' has inputs input_ids and max_length and an output sequences, ";
    if (packaged == null) {
      throw Errors.analysis(what + "but no com.microsoft GreedySearch, Sampling or BeamSearch node: generate() runs"
          + " decoders with their key/value cache, or a model packaging ONNX Runtime's decode loop");
    }
    long vocabulary = packaged.vocabularySize();
    if (vocabulary < 1 || vocabulary > GenerationSettings.MAX_VOCABULARY || packaged.eosTokenId() < 0
        || packaged.eosTokenId() >= vocabulary || packaged.padTokenId() < 0 || packaged.padTokenId() >= vocabulary) {
      throw Errors.analysis(what + "and its " + packaged + " does not name a fixed vocabulary of 1 to "
          + GenerationSettings.MAX_VOCABULARY + " tokens with end and padding tokens inside it. Export it again");
    }
    for (io.github.sparkinfer.device.TensorSpec input : binding.signature().inputs()) {
      if (!GenerationSettings.PACKAGED_INPUTS.contains(input.name())) {
        throw Errors.analysis(what + "and an input '" + input.name() + "' generate() does not feed; it feeds "
            + GenerationSettings.PACKAGED_INPUTS);
      }
    }
    GenerationSettingsReader.Values values = new GenerationSettingsReader.Values(conf, name);
    for (GenerateOption decided : List.of(GenerateOption.TEMPERATURE, GenerateOption.TOP_K, GenerateOption.TOP_P,
        GenerateOption.STOP_TOKEN_IDS, GenerateOption.STOP_STRINGS, GenerateOption.DECODE_LOOP)) {
      if (values.text(decided) != null) {
        throw Errors.analysis("Cannot set " + values.keyOf(decided) + " for model '" + name + "': the model packages"
            + " ONNX Runtime's " + packaged.operator() + ", which decides it (stop token " + packaged.eosTokenId()
            + ", its own token choice). Unset it, or register the decoder itself");
      }
    }
    ModelSource tokenizer = GenerationSettingsReader.tokenizer(name, tokenizerUri);
    GenerationOptions options;
    try {
      GenerationOptions.Builder builder = GenerationOptions.builder().stopTokenIds((int) packaged.eosTokenId());
      values.integer(GenerateOption.MAX_NEW_TOKENS).ifPresent(builder::maxNewTokens);
      values.number(GenerateOption.REPETITION_PENALTY).ifPresent(builder::repetitionPenalty);
      values.integer(GenerateOption.NUM_BEAMS).ifPresent(builder::numBeams);
      Long seed = GenerationSettingsReader.seed(values);
      if (seed != null) {
        builder.seed(seed);
      }
      options = builder.build();
    } catch (IllegalArgumentException e) {
      throw Errors.analysis("Cannot call generate() with model '" + name + "': " + e.getMessage(), e);
    }
    if (options.numBeams() > 1 && !packaged.operator().equals("BeamSearch")) {
      throw Errors.analysis("Cannot search " + options.numBeams() + " beams with model '" + name + "': it packages ONNX"
          + " Runtime's " + packaged.operator() + ". Unset numBeams, or use a model packaging BeamSearch");
    }
    PromptTemplate prompts = GenerationSettingsReader.template(values, name);
    int maxContext = values.integer(GenerateOption.MAX_CONTEXT).orElse(0);
    if (maxContext < 0) {
      throw values.invalid(GenerateOption.MAX_CONTEXT, String.valueOf(maxContext), "0 (no limit) or more tokens");
    }
    boolean truncate = GenerationSettingsReader.truncateLeft(values);
    int batchSize = GenerationSettingsReader.batchSize(values);
    return new GenerationSettings(packaged, tokenizer, options, prompts, maxContext, truncate, batchSize);
  }

}
