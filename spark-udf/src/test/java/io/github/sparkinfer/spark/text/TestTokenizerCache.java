package io.github.sparkinfer.spark.text;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.sparkinfer.device.ModelSource;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The executor's tokenizers are bounded: evicted ones are closed, and handles to them still work. */
class TestTokenizerCache {
  private static final String TEXT = "the quick brown fox jumps over the lazy dog again and again, many more times than"
      + " forty tokens would hold, so that every maximum length below cuts it somewhere else in the sentence".repeat(3);

  @TempDir Path temp;

  @Test
  void manyMaximumLengthsKeepTheCacheBoundedAndCloseTheEvicted() throws Exception {
    Path file = temp.resolve("tokenizer.json");
    try (InputStream in = getClass().getClassLoader().getResourceAsStream("all-minilm-l6-v2-tokenizer.json")) {
      Files.copy(in, file);
    }
    ModelSource source = ModelSource.ofFile("minilm", file.toUri().toString(), "spark.sparkinfer.model.minilm.tokenizer");
    Configuration hadoop = new Configuration();
    long closedBefore = TokenizerCache.closedCount();
    List<TokenizerCache.Handle> handles = new ArrayList<>();
    int lengths = 3 * TokenizerCache.MAX_TOKENIZERS;
    for (int maxLength = 4; maxLength < 4 + lengths; maxLength++) {
      TokenizerCache.Handle handle = TokenizerCache.get("minilm", source, maxLength, hadoop);
      handles.add(handle);
      long[] ids = handle.ids(TEXT);
      assertThat(ids).hasSize(maxLength);
      assertThat(ids[0]).isEqualTo(101);  // [CLS]
      assertThat(ids[maxLength - 1]).isEqualTo(102);  // [SEP]
      assertThat(TokenizerCache.size()).isLessThanOrEqualTo(TokenizerCache.MAX_TOKENIZERS);
    }
    assertThat(TokenizerCache.closedCount() - closedBefore).isGreaterThanOrEqualTo(lengths - TokenizerCache.MAX_TOKENIZERS);
    // A task that still has the handle of an evicted tokenizer gets it built again, and right.
    long[] first = handles.get(0).ids(TEXT);
    assertThat(first).hasSize(4).startsWith(101).endsWith(102);
    assertThat(TokenizerCache.size()).isLessThanOrEqualTo(TokenizerCache.MAX_TOKENIZERS);
  }

  @Test
  void lengthsPastFiveHundredTwelveAreKeptAndZeroKeepsEveryToken() throws Exception {
    Path file = temp.resolve("tokenizer.json");
    try (InputStream in = getClass().getClassLoader().getResourceAsStream("all-minilm-l6-v2-tokenizer.json")) {
      Files.copy(in, file);
    }
    ModelSource source = ModelSource.ofFile("minilm", file.toUri().toString(), "spark.sparkinfer.model.minilm.tokenizer");
    String long1000 = "word ".repeat(1000);
    // DJL caps a maximum length at its own default of 512 unless told the model's: a long-context model asks for more.
    assertThat(TokenizerCache.get("minilm", source, 800, new Configuration()).ids(long1000)).hasSize(800);
    assertThat(TokenizerCache.get("minilm", source, 0, new Configuration()).ids(long1000)).hasSize(1002);
  }
}
