package io.github.sparkinfer.spark.generate;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Greedy decoding with the cache equals a reference written here that runs the model without its
 * cache (the whole sequence every step, one prompt at a time), token for token; a prompt in a
 * left-padded batch with longer and shorter prompts gives the tokens it gives alone.
 */
class TestGreedyDecodeLoop {
  private static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment();
  private static final int[][] PROMPTS = {{5, 17, 300, 42, 7, 901, 13}, {250, 3}, {64, 128, 512, 999}};

  @Test
  void gpt2CachedGreedyEqualsTheDecodeWithoutCacheAloneAndInABatch() throws Exception {
    Path model = TestDecoderLayout.decoder("tiny-random-gpt2-fp32/past.onnx");
    int eos = 98;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), options)) {
      DecoderLayout layout = DecoderLayout.of("gpt2", signature(session));
      GreedyDecodeLoop loop = new GreedyDecodeLoop(ENVIRONMENT, session, layout);
      int[][] batched = loop.generate(PROMPTS, 12, new int[] {eos}, eos);
      for (int i = 0; i < PROMPTS.length; i++) {
        int[] reference = referenceDecode(session, layout, PROMPTS[i], 12, eos);
        assertThat(reference).as("reference decode of prompt %d", i).isNotEmpty();
        assertThat(loop.generate(new int[][] {PROMPTS[i]}, 12, new int[] {eos}, eos)[0])
            .as("prompt %d alone", i).containsExactly(reference);
        assertThat(batched[i]).as("prompt %d in a batch of 3", i).containsExactly(reference);
      }
    }
  }

  @Test
  void groupedQueryAttentionFp16DecoderCachedEqualsWithoutCache() throws Exception {
    Path model = TestDecoderLayout.decoder("tiny-qwen35/decoder.onnx");
    int eos = 2;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        OrtSession session = ENVIRONMENT.createSession(model.toString(), options)) {
      DecoderLayout layout = DecoderLayout.of("qwen", signature(session));
      GreedyDecodeLoop loop = new GreedyDecodeLoop(ENVIRONMENT, session, layout);
      for (int[] prompt : PROMPTS) {
        int[] reference = referenceDecode(session, layout, prompt, 10, eos);
        assertThat(reference).as("reference decode").isNotEmpty();
        assertThat(loop.generate(new int[][] {prompt}, 10, new int[] {eos}, 0)[0]).containsExactly(reference);
      }
    }
  }

  /** Greedy without the cache: every step runs the whole sequence so far with an empty past. */
  private static int[] referenceDecode(OrtSession session, DecoderLayout layout, int[] prompt, int maxNew, int eos)
      throws Exception {
    List<Integer> sequence = new ArrayList<>();
    for (int token : prompt) {
      sequence.add(token);
    }
    List<Integer> generated = new ArrayList<>();
    for (int step = 0; step < maxNew; step++) {
      int length = sequence.size();
      Map<String, OnnxTensor> inputs = new HashMap<>();
      try {
        long[] ids = sequence.stream().mapToLong(Integer::longValue).toArray();
        long[] ones = new long[length];
        long[] positions = new long[length];
        for (int i = 0; i < length; i++) {
          ones[i] = 1;
          positions[i] = i;
        }
        inputs.put("input_ids", tensor(layout.inputIds().onnxTypeName(), ids));
        inputs.put("attention_mask", tensor(layout.attentionMask().onnxTypeName(), ones));
        if (layout.positionIds() != null) {
          inputs.put("position_ids", tensor(layout.positionIds().onnxTypeName(), positions));
        }
        for (int layer = 0; layer < layout.layers(); layer++) {
          for (String past : layout.pastNames(layer)) {
            inputs.put(past, OnnxTensor.createTensor(ENVIRONMENT, ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder()),
                layout.cacheShape(1, 0), layout.cacheType().equals("FLOAT16") ? OnnxJavaType.FLOAT16 : OnnxJavaType.FLOAT));
          }
        }
        try (OrtSession.Result result = session.run(inputs)) {
          FloatBuffer logits = ((OnnxTensor) result.get("logits").orElseThrow()).getFloatBuffer();
          int vocabulary = (int) layout.vocabularySize();
          int base = (length - 1) * vocabulary;
          int best = 0;
          for (int token = 1; token < vocabulary; token++) {
            if (logits.get(base + token) > logits.get(base + best)) {
              best = token;
            }
          }
          if (best == eos) {
            break;
          }
          generated.add(best);
          sequence.add(best);
        }
      } finally {
        inputs.values().forEach(OnnxTensor::close);
      }
    }
    return generated.stream().mapToInt(Integer::intValue).toArray();
  }

  private static OnnxTensor tensor(String type, long[] values) throws Exception {
    if (type.equals("INT32")) {
      int[] narrow = new int[values.length];
      for (int i = 0; i < values.length; i++) {
        narrow[i] = (int) values[i];
      }
      return OnnxTensor.createTensor(ENVIRONMENT, new int[][] {narrow});
    }
    return OnnxTensor.createTensor(ENVIRONMENT, new long[][] {values});
  }

  private static ModelSignature signature(OrtSession session) throws Exception {
    return new ModelSignature(specs(session.getInputInfo()), specs(session.getOutputInfo()));
  }

  private static List<TensorSpec> specs(Map<String, NodeInfo> nodes) {
    List<TensorSpec> specs = new ArrayList<>();
    nodes.forEach((name, node) -> {
      TensorInfo info = (TensorInfo) node.getInfo();
      String type = info.onnxType.name().replace("ONNX_TENSOR_ELEMENT_DATA_TYPE_", "");
      TensorElementType element = type.equals("FLOAT") ? TensorElementType.FLOAT
          : type.equals("INT64") ? TensorElementType.INT64 : type.equals("INT32") ? TensorElementType.INT32
          : TensorElementType.UNSUPPORTED;
      specs.add(new TensorSpec(name, element, type, info.getShape(), null));
    });
    return specs;
  }
}
