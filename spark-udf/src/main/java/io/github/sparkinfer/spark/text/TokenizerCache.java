package io.github.sparkinfer.spark.text;

import io.github.sparkinfer.spark.InferenceProperties;
import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.registry.TextSettings;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelLoadException;
import io.github.sparkinfer.device.ModelSource;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.hadoop.conf.Configuration;

/**
 * Tokenizers of this JVM (executor), one per tokenizer file version and maximum length, shared by
 * all tasks like models are: the file is copied once through the model cache, and the tokenizer is
 * built once, while other tasks wait for it.
 *
 * <p>At most {@value #MAX_TOKENIZERS} are kept, least recently used first out, so a loop over
 * {@code SET ...maxLength=N} does not pile up native tokenizers. An evicted tokenizer is closed
 * once no encode runs on it (each encode holds it, {@link Handle#ids}): closing its native handle
 * under a running encode would crash the JVM. A {@link Handle} whose tokenizer was evicted gets it
 * again (built anew) on its next encode.
 */
public final class TokenizerCache {
  static final int MAX_TOKENIZERS = 16;
  private static final Map<String, Entry> TOKENIZERS = new LinkedHashMap<>(16, 0.75f, true);
  private static final AtomicLong LOADS = new AtomicLong();
  private static final AtomicLong CLOSED = new AtomicLong();

  static {
    // DJL picks a CUDA build of its tokenizer library on GPU hosts and downloads it; the CPU build
    // inside its jar is the one to use (tokenizing runs on the CPU, and executors may not download).
    if (System.getenv("RUST_FLAVOR") == null && System.getProperty("RUST_FLAVOR") == null) {
      System.setProperty("RUST_FLAVOR", "cpu");
    }
  }

  private TokenizerCache() {}

  /** The tokenizer of {@code modelName}'s text settings, to encode with. */
  public static Handle get(String modelName, TextSettings text, Configuration configuration) {
    return get(modelName, text.tokenizer(), text.maxLength(), configuration);
  }

  /** The tokenizer at {@code tokenizer}, truncating at {@code maxLength} tokens (0: never truncating). */
  public static Handle get(String modelName, ModelSource tokenizer, int maxLength, Configuration configuration) {
    Handle handle = new Handle(modelName, tokenizer, maxLength, configuration);
    handle.release(handle.hold());  // built now, so that a bad file fails here
    return handle;
  }

  /** A task's way to a cached tokenizer: each encode holds it, and it is found again if evicted. */
  public static final class Handle {
    private final String modelName;
    private final ModelSource tokenizer;
    private final int maxLength;
    private final Configuration configuration;
    private volatile Entry entry;

    private Handle(String modelName, ModelSource tokenizer, int maxLength, Configuration configuration) {
      this.modelName = modelName;
      this.tokenizer = tokenizer;
      this.maxLength = maxLength;
      this.configuration = configuration;
    }

    /** The token ids of {@code text}, truncated to the maximum length, special tokens added. */
    public long[] ids(String text) {
      Entry held = hold();
      try {
        return held.tokenizer.encode(text).getIds();
      } finally {
        release(held);
      }
    }

    /** The text of {@code ids}, special tokens skipped (generate()'s new tokens). */
    public String decode(long[] ids) {
      Entry held = hold();
      try {
        return held.tokenizer.decode(ids, true);
      } finally {
        release(held);
      }
    }

    private Entry hold() {
      Entry known = entry;
      if (known != null && known.hold()) {
        return known;
      }
      Entry found = lookup(modelName, tokenizer, maxLength, configuration);
      entry = found;
      return found;
    }

    private void release(Entry held) {
      held.release();
    }
  }

  /** One tokenizer, with the encodes running on it; closed when evicted and none runs. */
  private static final class Entry {
    final HuggingFaceTokenizer tokenizer;
    private int holds;
    private boolean evicted;
    private boolean closed;

    Entry(HuggingFaceTokenizer tokenizer) {
      this.tokenizer = tokenizer;
    }

    synchronized boolean hold() {
      if (evicted) {
        return false;
      }
      holds++;
      return true;
    }

    synchronized void release() {
      holds--;
      closeIfDone();
    }

    synchronized void evict() {
      evicted = true;
      closeIfDone();
    }

    private void closeIfDone() {
      if (evicted && holds == 0 && !closed) {
        closed = true;
        tokenizer.close();
        CLOSED.incrementAndGet();
      }
    }
  }

  /** The entry for the tokenizer's current version and {@code maxLength}, held for the caller. */
  private static Entry lookup(String modelName, ModelSource tokenizer, int maxLength, Configuration configuration) {
    Path local;
    try {
      local = ModelCache.shared().localFile(tokenizer, configuration);
    } catch (ModelLoadException e) {
      throw new PredictionException(
          e.getMessage().replace("Cannot load model", "Cannot load the tokenizer of model"), e);
    }
    // The local path carries the file's version, so a replaced tokenizer is a new entry.
    String key = local + "#" + maxLength;
    synchronized (TOKENIZERS) {
      Entry entry = TOKENIZERS.get(key);
      if (entry == null || !entry.hold()) {
        entry = new Entry(build(modelName, tokenizer, maxLength, local));
        entry.hold();
        TOKENIZERS.put(key, entry);
        while (TOKENIZERS.size() > MAX_TOKENIZERS) {
          Map.Entry<String, Entry> eldest = TOKENIZERS.entrySet().iterator().next();
          TOKENIZERS.remove(eldest.getKey());
          eldest.getValue().evict();
        }
      }
      return entry;
    }
  }

  /** Tokenizers built in this JVM, for tests that check each is built once. */
  static long loadCount() {
    return LOADS.get();
  }

  /** Tokenizers closed after their eviction. */
  static long closedCount() {
    return CLOSED.get();
  }

  /** Tokenizers cached now. */
  static int size() {
    synchronized (TOKENIZERS) {
      return TOKENIZERS.size();
    }
  }

  private static HuggingFaceTokenizer build(String modelName, ModelSource source, int maxLength, Path local) {
    try {
      HuggingFaceTokenizer.Builder builder = HuggingFaceTokenizer.builder()
          .optTokenizerPath(local)
          .optAddSpecialTokens(true)
          .optPadding(false);
      // DJL caps maxLength at its modelMaxLength (512 unless a tokenizer_config.json says otherwise): the model's
      // length is the setting's. No length: generate() keeps every token and applies its own context limit.
      if (maxLength > 0) {
        builder.configure(java.util.Map.of("modelMaxLength", maxLength));
      }
      HuggingFaceTokenizer tokenizer = (maxLength > 0 ? builder.optTruncation(true).optMaxLength(maxLength)
          : builder.optTruncation(false)).build();
      LOADS.incrementAndGet();
      return tokenizer;
    } catch (IOException | RuntimeException e) {
      throw new PredictionException(
          "Cannot load the tokenizer of model '" + modelName + "' from " + source.uri()
              + ": " + e.getMessage() + ". Register a Hugging Face tokenizer.json with SET " + InferenceProperties.MODEL_PREFIX
              + modelName + InferenceProperties.MODEL_TOKENIZER_SUFFIX + "=<URI>",
          e);
    }
  }
}
