package io.github.sparkinfer.spark.text;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** truncation.max_length is streamed from a tokenizer.json, with bounds against a hostile file. */
class TestTokenizerJson {
  @TempDir Path temp;

  private Path write(String json) throws IOException {
    return Files.writeString(temp.resolve("tokenizer.json"), json);
  }

  @Test
  void readsTruncationMaxLengthAndStopsThere() throws Exception {
    // What follows truncation is never read: here it is not even JSON.
    assertThat(TokenizerJson.truncationMaxLength(write(
        "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"x\":[1,[2]]}],\"truncation\":{\"direction\":\"Right\","
            + "\"max_length\":128,\"strategy\":\"LongestFirst\"},\"model\": not json"))).isEqualTo(128);
    assertThat(TokenizerJson.truncationMaxLength(write("{\"version\":\"1.0\",\"truncation\":null,\"model\":{}}")))
        .isZero();
    assertThat(TokenizerJson.truncationMaxLength(write("{\"model\":{\"vocab\":{\"a\":1}}}"))).isZero();
    assertThat(TokenizerJson.truncationMaxLength(write("{\"truncation\":{\"max_length\":-3}}"))).isZero();
    assertThat(TokenizerJson.truncationMaxLength(write("{\"truncation\":{\"max_length\":99999999999}}"))).isZero();
  }

  @Test
  void aDeeplyNestedFileIsAClearError() throws Exception {
    Path file = temp.resolve("deep.json");
    try (Writer out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
      out.write("{\"model\":");
      for (int i = 0; i < 1_000_000; i++) {
        out.write('[');
      }
    }
    assertThatThrownBy(() -> TokenizerJson.truncationMaxLength(file))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("nests deeper than 64 levels");
  }

  @Test
  void aHugeOrBrokenFileIsAClearError() throws Exception {
    Path huge = temp.resolve("huge.json");
    try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(huge,
        java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE)) {
      // Sparse: 300 MB that take no disk.
      channel.write(java.nio.ByteBuffer.wrap(new byte[] {'{'}), TokenizerJson.MAX_BYTES + 1);
    }
    assertThatThrownBy(() -> TokenizerJson.truncationMaxLength(huge))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("over the " + TokenizerJson.MAX_BYTES);
    assertThatThrownBy(() -> TokenizerJson.truncationMaxLength(write("[1,2]")))
        .isInstanceOf(IOException.class).hasMessageContaining("not a JSON object");
    assertThatThrownBy(() -> TokenizerJson.truncationMaxLength(write("{\"model\":{\"a\":[1,2")))
        .isInstanceOf(IOException.class);
  }
}
