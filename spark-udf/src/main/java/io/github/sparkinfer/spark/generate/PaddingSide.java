package io.github.sparkinfer.spark.generate;

import io.github.sparkinfer.compression.OnnxModel;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Which side a batch of prompts is padded on, read from the decoder's graph: ONNX Runtime's
 * GroupQueryAttention (what ONNX Runtime GenAI's model builder emits) takes each row's cache from
 * position 0 and its length from the mask, so it needs right padding (left padding gives shorter
 * rows wrong tokens, as TestDecodeLoop shows); every other attention (GPT-2's Attention op, Optimum's
 * exports of standard operators) takes left padding with the mask.
 */
public final class PaddingSide {
  static final String GROUP_QUERY_ATTENTION = "com.microsoft:GroupQueryAttention";

  private PaddingSide() {}

  /** Whether the decoder in {@code model} takes left-padded batches. */
  public static boolean left(Path model) throws IOException {
    return !OnnxModel.operatorTypes(model).contains(GROUP_QUERY_ATTENTION);
  }
}
