package io.github.sparkinfer.benchmarks;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import io.github.sparkinfer.device.OrtEnvironments;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The sentence embedding every hand-written variant of {@link TextEmbeddingBenchmark} computes,
 * in one place so that they cannot drift apart, and the definition sparkinfer's {@code embed()}
 * must match:
 *
 * <ol>
 *   <li>the model's tokenizer.json through DJL's HuggingFaceTokenizer, without padding, truncated
 *       to {@value #MAX_TOKENS} tokens (the tokenizer.json's own truncation length), with [CLS]
 *       and [SEP];
 *   <li>input_ids, attention_mask and token_type_ids (zeros) as int64 [batch, L], each row padded
 *       with 0 to the batch's longest row L;
 *   <li>output last_hidden_state [batch, L, {@value #DIMENSIONS}], averaged over the tokens whose
 *       attention mask is 1 (mean pooling);
 *   <li>L2 normalization.
 * </ol>
 *
 * <p>Thread-safe: ONNX Runtime sessions and DJL tokenizers may be called from several threads.
 */
final class SentenceEmbedder {
  static final int MAX_TOKENS = 128;
  static final int DIMENSIONS = 384;
  static final String INPUT_IDS = "input_ids";
  static final String ATTENTION_MASK = "attention_mask";
  static final String TOKEN_TYPE_IDS = "token_type_ids";
  static final String OUTPUT = "last_hidden_state";

  private final HuggingFaceTokenizer tokenizer;
  private final OrtSession session;

  /** @throws IllegalArgumentException when the model does not have MiniLM's inputs and output */
  SentenceEmbedder(HuggingFaceTokenizer tokenizer, OrtSession session) throws OrtException {
    this.tokenizer = tokenizer;
    this.session = session;
    checkSignature(session);
  }

  /** The tokenizer every variant uses, with the options above. */
  static HuggingFaceTokenizer loadTokenizer(Path tokenizerJson) throws IOException {
    HuggingFaceTokenizer tokenizer =
        HuggingFaceTokenizer.newInstance(
            tokenizerJson,
            Map.of(
                "padding", "false",
                "truncation", "true",
                "maxLength", String.valueOf(MAX_TOKENS),
                "addSpecialTokens", "true"));
    if (tokenizer.getMaxLength() != MAX_TOKENS) {
      throw new IllegalStateException(
          "The tokenizer from " + tokenizerJson + " truncates at " + tokenizer.getMaxLength()
              + " tokens, not " + MAX_TOKENS + ": DJL ignored the maxLength option");
    }
    return tokenizer;
  }

  /**
   * The truncation length the tokenizer.json itself declares, read through DJL without options;
   * the benchmark refuses to run when it is not {@value #MAX_TOKENS}, since embed() defaults to it.
   */
  static int declaredMaxTokens(Path tokenizerJson) throws IOException {
    try (HuggingFaceTokenizer plain = HuggingFaceTokenizer.newInstance(tokenizerJson)) {
      return plain.getMaxLength();
    }
  }

  Encoding tokenize(String text) {
    return tokenizer.encode(text);
  }

  /** One call for all texts: DJL encodes them on several threads. */
  Encoding[] tokenize(String[] texts) {
    return tokenizer.batchEncode(texts);
  }

  /** One row on its own: shape [1, L]. */
  float[] embed(String text) throws OrtException {
    float[][] vectors = new float[1][];
    embed(new Encoding[] {tokenize(text)}, vectors, new int[] {0});
    return vectors[0];
  }

  /**
   * Runs {@code batch} as one model call and puts row i's vector in {@code
   * vectors[targets[i]]}.
   *
   * @return tokens the model was given, padding included: batch rows x the longest row
   */
  long embed(Encoding[] batch, float[][] vectors, int[] targets) throws OrtException {
    int rows = batch.length;
    int length = 0;
    for (Encoding encoding : batch) {
      length = Math.max(length, encoding.getIds().length);
    }
    // Zero is both [PAD]'s id and "not attended"; token types are all zero for one sentence.
    long[] ids = new long[rows * length];
    long[] mask = new long[rows * length];
    for (int row = 0; row < rows; row++) {
      long[] rowIds = batch[row].getIds();
      long[] rowMask = batch[row].getAttentionMask();
      System.arraycopy(rowIds, 0, ids, row * length, rowIds.length);
      System.arraycopy(rowMask, 0, mask, row * length, rowMask.length);
    }
    long[] shape = {rows, length};
    OrtEnvironment environment = OrtEnvironments.get();
    try (OnnxTensor idsTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(ids), shape);
        OnnxTensor maskTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(mask), shape);
        OnnxTensor typesTensor =
            OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[rows * length]), shape);
        OrtSession.Result result =
            session.run(
                Map.of(INPUT_IDS, idsTensor, ATTENTION_MASK, maskTensor, TOKEN_TYPE_IDS,
                    typesTensor),
                Set.of(OUTPUT))) {
      FloatBuffer hidden = ((OnnxTensor) result.get(0)).getFloatBuffer();
      for (int row = 0; row < rows; row++) {
        vectors[targets[row]] = meanPoolAndNormalize(hidden, mask, row, length);
      }
    }
    return (long) rows * length;
  }

  /** Row {@code row} of [rows, length, DIMENSIONS], averaged where the mask is 1, unit length. */
  static float[] meanPoolAndNormalize(FloatBuffer hidden, long[] mask, int row, int length) {
    double[] sum = new double[DIMENSIONS];
    int attended = 0;
    for (int token = 0; token < length; token++) {
      if (mask[row * length + token] == 0) {
        continue;
      }
      attended++;
      int offset = (row * length + token) * DIMENSIONS;
      for (int i = 0; i < DIMENSIONS; i++) {
        sum[i] += hidden.get(offset + i);
      }
    }
    double squares = 0;
    for (int i = 0; i < DIMENSIONS; i++) {
      sum[i] /= Math.max(attended, 1);
      squares += sum[i] * sum[i];
    }
    // As sentence-transformers' normalize: the epsilon only matters for an all-zero vector.
    double norm = Math.max(Math.sqrt(squares), 1e-12);
    float[] vector = new float[DIMENSIONS];
    for (int i = 0; i < DIMENSIONS; i++) {
      vector[i] = (float) (sum[i] / norm);
    }
    return vector;
  }

  static double cosine(float[] left, float[] right) {
    if (left == null || right == null || left.length != right.length) {
      return Double.NaN;
    }
    double dot = 0;
    double leftSquares = 0;
    double rightSquares = 0;
    for (int i = 0; i < left.length; i++) {
      dot += (double) left[i] * right[i];
      leftSquares += (double) left[i] * left[i];
      rightSquares += (double) right[i] * right[i];
    }
    return dot / Math.sqrt(leftSquares * rightSquares);
  }

  private static void checkSignature(OrtSession session) throws OrtException {
    Set<String> inputs = new TreeSet<>(session.getInputNames());
    Set<String> expected = new TreeSet<>(Set.of(INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS));
    if (!inputs.equals(expected)) {
      throw new IllegalArgumentException(
          "The model's inputs are " + inputs + ", expected " + expected
              + ": this is not a BERT-style sentence encoder such as all-MiniLM-L6-v2");
    }
    NodeInfo output = session.getOutputInfo().get(OUTPUT);
    long[] shape = output == null ? null : ((TensorInfo) output.getInfo()).getShape();
    if (shape == null || shape.length != 3 || shape[2] != DIMENSIONS) {
      throw new IllegalArgumentException(
          "The model has no output " + OUTPUT + " of shape [batch, tokens, " + DIMENSIONS
              + "] (outputs: " + session.getOutputInfo() + ", its shape: "
              + Arrays.toString(shape) + ")");
    }
  }
}
