package io.github.sparkinfer.benchmarks;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/** Words and tokens per row, over the whole input. */
final class LengthSummary {
  final int[] words;
  final int[] tokens;
  final int truncated;

  private LengthSummary(int[] words, int[] tokens, int truncated) {
    this.words = words;
    this.tokens = tokens;
    this.truncated = truncated;
  }

  /** Tokens as fp32's tokenizer.json counts them; int8's must be the same file. */
  static LengthSummary of(String[] texts, Path folder) throws Exception {
    Path tokenizerFile = MiniLm.FP32.extractTokenizer(folder);
    Path otherFile = MiniLm.INT8.extractTokenizer(folder);
    if (Files.mismatch(tokenizerFile, otherFile) != -1) {
      throw new IllegalStateException(
          tokenizerFile + " and " + otherFile + " differ: the fp32 and int8 rows would be"
              + " tokenized differently, and the length summary would not hold for both");
    }
    try (HuggingFaceTokenizer tokenizer = SentenceEmbedder.loadTokenizer(tokenizerFile)) {
      Encoding[] encodings = tokenizer.batchEncode(texts);
      int[] words = Arrays.stream(texts).mapToInt(SentenceData::words).sorted().toArray();
      int[] tokens =
          Arrays.stream(encodings).mapToInt(encoding -> encoding.getIds().length).sorted()
              .toArray();
      int truncated = (int) Arrays.stream(encodings).filter(Encoding::exceedMaxLength).count();
      return new LengthSummary(words, tokens, truncated);
    }
  }

  String words() {
    return describe(words);
  }

  String tokens() {
    return describe(tokens) + String.format(Locale.ROOT, "; %,d rows (%.1f%%) truncated to %d",
        truncated, 100.0 * truncated / tokens.length, SentenceEmbedder.MAX_TOKENS);
  }

  static String describe(int[] sorted) {
    return String.format(Locale.ROOT, "min %d, median %d, mean %.1f, p90 %d, max %d",
        sorted[0], sorted[sorted.length / 2], Arrays.stream(sorted).average().orElse(0),
        sorted[(int) (sorted.length * 0.9)], sorted[sorted.length - 1]);
  }
}
