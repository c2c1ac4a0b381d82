package io.github.sparkinfer.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class TestSentenceData {
  private static final int ROWS = 5000;

  @Test
  void bodyIsAPureFunctionOfTheId() {
    // Spark generates rows on executors in any order; the raw variants rebuild them on the driver.
    assertThat(SentenceData.body(4711)).isEqualTo(SentenceData.body(4711));
    assertThat(SentenceData.body(4711)).isNotEqualTo(SentenceData.body(4712));
  }

  @Test
  void bodiesAreNonBlankSentencesWithinTheWordRange() {
    for (int id = 0; id < ROWS; id++) {
      String body = SentenceData.body(id);
      assertThat(body).isNotBlank().doesNotContain("  ").doesNotStartWith(" ");
      assertThat(body.charAt(body.length() - 1)).isIn('.', '?');
      assertThat(SentenceData.words(body))
          .isBetween(SentenceData.MIN_WORDS, SentenceData.MAX_WORDS);
    }
  }

  @Test
  void lengthsAreSkewedWithALongTail() {
    int[] words =
        IntStream.range(0, ROWS).map(id -> SentenceData.words(SentenceData.body(id))).sorted()
            .toArray();
    assertThat(words[0]).isEqualTo(SentenceData.MIN_WORDS);
    assertThat(words[ROWS - 1]).isEqualTo(SentenceData.MAX_WORDS);
    assertThat(words[ROWS / 2]).isBetween(12, 16);
    // Many short rows, some long: the mean sits well above the median.
    assertThat(Arrays.stream(words).average().orElseThrow()).isGreaterThan(words[ROWS / 2] + 3.0);
    assertThat(Arrays.stream(words).filter(count -> count > 95).count())
        .as("rows past 128 tokens, where truncation starts")
        .isBetween(ROWS / 200L, ROWS / 20L);
  }
}
