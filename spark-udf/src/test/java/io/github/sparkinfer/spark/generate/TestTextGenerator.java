package io.github.sparkinfer.spark.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Text in, text out on the GPT-2 export and its byte-level BPE tokenizer.json: the text is the
 * tokenizer's decoding of the tokens the loop generates for the templated prompt, a stop string
 * cuts the text before it and ends the row with stop, and bad templates and stop strings are refused.
 */
class TestTextGenerator {
  private static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment();
  private static final int EOS = 98;
  // This tokenizer.json has GPT-2's 50,257 tokens, the random model 1,000: prompts of tokens under 1,000.
  private static final String[] PROMPTS = {"a b c d e", "s t", "p m d l f c g h o w"};

  @Test
  void textIsTheTokenizersDecodingOfTheGeneratedTokensAndStopStringsCutIt() throws Exception {
    Path model = DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx");
    Path tokenizerFile = DecoderModels.decoder("tiny-random-gpt2-fp32/tokenizer.json");
    GenerationOptions options = GenerationOptions.builder().maxNewTokens(12).stopTokenIds(EOS).build();
    PromptTemplate template = PromptTemplate.of("Q: {prompt}\nA:", null);
    try (OrtSession.SessionOptions sessionOptions = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), sessionOptions);
        HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(tokenizerFile)) {
      DecoderLayout layout = DecoderLayout.of("gpt2", DecoderModels.signature(session));
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, layout, true);
      TextGenerator.Result[] results =
          new TextGenerator(loop, tokenizer, template, EOS, List.of()).generate(PROMPTS, options);
      for (int i = 0; i < PROMPTS.length; i++) {
        long[] ids = tokenizer.encode("Q: " + PROMPTS[i] + "\nA:").getIds();
        int[] prompt = new int[ids.length];
        for (int j = 0; j < ids.length; j++) {
          prompt[j] = (int) ids[j];
        }
        DecodeLoop.Generation alone = loop.generate(new int[][] {prompt}, options, EOS)[0];
        long[] generated = new long[alone.tokens.length];
        for (int j = 0; j < generated.length; j++) {
          generated[j] = alone.tokens[j];
        }
        String expected = tokenizer.decode(generated, true);
        assertThat(expected).as("row %d generates some text", i).isNotEmpty();
        assertThat(results[i].text).as("row %d", i).isEqualTo(expected);
        assertThat(results[i].tokens).isEqualTo(alone.tokens.length);
        assertThat(results[i].finishReason).isEqualTo(alone.finishReason);

        // A stop string from the middle of that text: the row ends there, its text cut before it.
        String stop = expected.substring(expected.length() / 2, expected.length() / 2 + 1);
        TextGenerator.Result cut = new TextGenerator(loop, tokenizer, template, EOS, List.of(stop))
            .generate(new String[] {PROMPTS[i]}, options)[0];
        assertThat(cut.text).isEqualTo(expected.substring(0, expected.indexOf(stop)));
        assertThat(cut.finishReason).isEqualTo("stop");
        assertThat(cut.tokens).isLessThanOrEqualTo(alone.tokens.length);
      }
    }
  }

  @Test
  void aPromptWithTokensOutsideTheModelsVocabularyIsRefusedNamingRowAndToken() throws Exception {
    Path model = DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx");
    Path tokenizerFile = DecoderModels.decoder("tiny-random-gpt2-fp32/tokenizer.json");
    try (OrtSession.SessionOptions sessionOptions = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), sessionOptions);
        HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(tokenizerFile)) {
      DecodeLoop loop = new DecodeLoop(ENVIRONMENT, session, DecoderLayout.of("gpt2", DecoderModels.signature(session)), true);
      // "The" is token 464 of GPT-2, " quick" 2068: past the model's 1,000.
      assertThatThrownBy(() -> new TextGenerator(loop, tokenizer, PromptTemplate.none(), EOS, List.of())
          .generate(new String[] {"a b", "The quick"}, GenerationOptions.builder().build()))
          .hasMessageContaining("The prompt of row 1: token id 2068 at position 1")
          .hasMessageContaining("outside model 'gpt2''s vocabulary of 1000 tokens");
    }
  }

  @Test
  void templatesWithoutAPromptSlotAndEmptyStopStringsAreRefused() {
    assertThat(PromptTemplate.of("<s>{system}</s><u>{prompt}</u>", "Be brief.").apply("Hi {prompt}"))
        .isEqualTo("<s>Be brief.</s><u>Hi {prompt}</u>");
    assertThatThrownBy(() -> PromptTemplate.of("Answer briefly:", null)).hasMessageContaining("has no {prompt} slot");
    assertThatThrownBy(() -> PromptTemplate.of("{prompt}", "Be brief.")).hasMessageContaining("no {system} slot");
    assertThatThrownBy(() -> new TextGenerator(null, null, PromptTemplate.none(), 0, List.of("")))
        .hasMessageContaining("empty stop string");
  }

}
