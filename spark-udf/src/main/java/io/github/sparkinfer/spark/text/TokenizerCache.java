package io.github.sparkinfer.spark.text;

import io.github.sparkinfer.spark.InferenceProperties;
import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.registry.TextSettings;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelLoadException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.hadoop.conf.Configuration;

/**
 * Tokenizers of this JVM (executor), one per tokenizer file version and maximum length, shared by
 * all tasks like models are: the file is copied once through the model cache, and the tokenizer is
 * built once, while other tasks wait for it.
 *
 * <p>Their native handles are never closed: tokenizer threads of running tasks may be inside one at
 * any time, shutdown included, and a closed handle under a running encode would crash the JVM as a
 * closed session does. They live as long as the JVM; a few MB each.
 */
public final class TokenizerCache {
  private static final ConcurrentMap<String, HuggingFaceTokenizer> TOKENIZERS = new ConcurrentHashMap<>();
  private static final AtomicLong LOADS = new AtomicLong();

  static {
    // DJL picks a CUDA build of its tokenizer library on GPU hosts and downloads it; the CPU build
    // inside its jar is the one to use (tokenizing runs on the CPU, and executors may not download).
    if (System.getenv("RUST_FLAVOR") == null && System.getProperty("RUST_FLAVOR") == null) {
      System.setProperty("RUST_FLAVOR", "cpu");
    }
  }

  private TokenizerCache() {}

  public static HuggingFaceTokenizer get(String modelName, TextSettings text, Configuration configuration) {
    Path local;
    try {
      local = ModelCache.shared().localFile(text.tokenizer(), configuration);
    } catch (ModelLoadException e) {
      throw new PredictionException(
          e.getMessage().replace("Cannot load model", "Cannot load the tokenizer of model"), e);
    }
    // The local name carries the file's version, so a replaced tokenizer is a new entry.
    return TOKENIZERS.computeIfAbsent(local + "#" + text.maxLength(), key -> build(modelName, text, local));
  }

  /** Tokenizers built in this JVM, for tests that check each is built once. */
  static long loadCount() {
    return LOADS.get();
  }

  private static HuggingFaceTokenizer build(String modelName, TextSettings text, Path local) {
    try {
      HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder()
          .optTokenizerPath(local)
          .optAddSpecialTokens(true)
          .optPadding(false)
          .optTruncation(true)
          .optMaxLength(text.maxLength())
          .build();
      LOADS.incrementAndGet();
      return tokenizer;
    } catch (IOException | RuntimeException e) {
      throw new PredictionException(
          "Cannot load the tokenizer of model '" + modelName + "' from " + text.tokenizer().uri()
              + ": " + e.getMessage() + ". Register a Hugging Face tokenizer.json with SET " + InferenceProperties.MODEL_PREFIX
              + modelName + InferenceProperties.MODEL_TOKENIZER_SUFFIX + "=<URI>",
          e);
    }
  }
}
