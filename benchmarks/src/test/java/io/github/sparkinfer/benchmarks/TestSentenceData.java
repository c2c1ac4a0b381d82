package io.github.sparkinfer.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class TestSentenceData {
  private static final int ROWS = 5000;

  @Test
  void bodyIsAPureFunctionOfTheId() throws Exception {
    // Spark generates rows on executors in any order; the raw variants rebuild them on the driver.
    // So bodies made in reverse order, on another thread, after other ids, must equal those made
    // in order: any hidden state (a shared Random, a counter) would break this.
    List<String> inOrder = IntStream.range(0, ROWS).mapToObj(SentenceData::body).toList();
    ExecutorService other = Executors.newSingleThreadExecutor();
    List<String> reversed;
    try {
      reversed = other.submit(() -> {
        String[] bodies = new String[ROWS];
        for (int id = ROWS - 1; id >= 0; id--) {
          bodies[id] = SentenceData.body(id);
        }
        return List.of(bodies);
      }).get(60, TimeUnit.SECONDS);
    } finally {
      other.shutdownNow();
    }
    assertThat(reversed).isEqualTo(inOrder);
    assertThat(new HashSet<>(inOrder)).as("distinct bodies of %d ids", ROWS).hasSizeGreaterThan(ROWS * 99 / 100);
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
