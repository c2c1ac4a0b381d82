package io.github.sparkinfer.spark.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The exporter's config files beside a decoder, read as hostile input. */
class TestDecoderConfig {
  @TempDir Path folder;

  private DecoderConfig read(String json) throws Exception {
    Path file = folder.resolve("config.json");
    Files.writeString(file, json);
    return DecoderConfig.read(file);
  }

  @Test
  void readsGenaiAndHuggingFaceFields() throws Exception {
    DecoderConfig genai = DecoderConfig.read(DecoderModels.decoder("tiny-random-gpt2-fp32/genai_config.json"));
    assertThat(genai.eosTokenIds()).containsExactly(98);
    assertThat(genai.contextLength()).isEqualTo(512);
    DecoderConfig hf = read("{\"architectures\": [\"Qwen2ForCausalLM\"], \"eos_token_id\": [151645, 151643],"
        + " \"rope_scaling\": {\"type\": null}, \"max_position_embeddings\": 32768}");
    assertThat(hf.eosTokenIds()).containsExactly(151645, 151643);
    assertThat(hf.contextLength()).isEqualTo(32768);
    assertThat(read("{\"n_positions\": 1024, \"eos_token_id\": 50256}").contextLength()).isEqualTo(1024);
    // The first file that names a value gives it.
    assertThat(read("{\"eos_token_id\": 7}").orElse(hf).eosTokenIds()).containsExactly(7);
    assertThat(read("{\"eos_token_id\": 7}").orElse(hf).contextLength()).isEqualTo(32768);
  }

  @Test
  void takesOnlyNumbersInRangeAndRefusesWhatIsNotAConfig() throws Exception {
    DecoderConfig odd = read("{\"eos_token_id\": [1, -2], \"max_position_embeddings\": 99999999999999999999999,"
        + " \"model\": {\"eos_token_id\": \"2\", \"context_length\": -5}}");
    assertThat(odd.eosTokenIds()).as("a list with a negative id is not taken").isNull();
    assertThat(odd.contextLength()).isZero();
    assertThat(read("{\"eos_token_id\": 4294967297}").eosTokenIds()).isNull();
    StringBuilder deep = new StringBuilder("{\"a\": ");
    for (int i = 0; i < 5000; i++) {
      deep.append('[');
    }
    assertThatThrownBy(() -> read(deep.toString())).hasMessageContaining("nests deeper than");
    assertThatThrownBy(() -> read("[1, 2]")).hasMessageContaining("not a JSON object");
    assertThatThrownBy(() -> read("{\"eos_token_id\": [1, 2")).isInstanceOf(java.io.IOException.class);
  }
}
