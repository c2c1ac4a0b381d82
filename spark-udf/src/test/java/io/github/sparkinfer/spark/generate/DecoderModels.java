package io.github.sparkinfer.spark.generate;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The test decoders of ../shared/models/decoders and their signatures, read here without sparkinfer's reader. */
public final class DecoderModels {
  private DecoderModels() {}

  /** A decoder file of ../shared/models/decoders; the calling test is skipped where that folder is not beside the clone. */
  public static Path decoder(String file) {
    for (Path folder = Path.of("").toAbsolutePath(); folder != null; folder = folder.getParent()) {
      Path candidate = folder.resolve("shared/models/decoders").resolve(file);
      if (Files.isRegularFile(candidate)) {
        return candidate;
      }
    }
    assumeTrue(false, "../shared/models/decoders/" + file + " is not beside this checkout");
    return null;
  }

  /** The signature of the model in {@code model}, as ONNX Runtime reports it. */
  static ModelSignature signatureOf(Path model) throws Exception {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        OrtSession session = ai.onnxruntime.OrtEnvironment.getEnvironment().createSession(model.toString(), options)) {
      return signature(session);
    }
  }

  /** The signature as ONNX Runtime reports it. */
  public static ModelSignature signature(OrtSession session) throws Exception {
    return new ModelSignature(specs(session.getInputInfo()), specs(session.getOutputInfo()));
  }

  static TensorSpec spec(String name, String type, long... shape) {
    TensorElementType element = type.equals("FLOAT") ? TensorElementType.FLOAT
        : type.equals("INT64") ? TensorElementType.INT64 : type.equals("INT32") ? TensorElementType.INT32
        : TensorElementType.UNSUPPORTED;
    return new TensorSpec(name, element, type, shape, null);
  }

  private static List<TensorSpec> specs(Map<String, NodeInfo> nodes) {
    List<TensorSpec> specs = new ArrayList<>();
    nodes.forEach((name, node) -> {
      TensorInfo info = (TensorInfo) node.getInfo();
      specs.add(spec(name, info.onnxType.name().replace("ONNX_TENSOR_ELEMENT_DATA_TYPE_", ""), info.getShape()));
    });
    return specs;
  }

  /** Greedy without the cache: every step runs the whole sequence so far with an empty past. */
  public static int[] referenceDecode(OrtSession session, DecoderLayout layout, int[] prompt, int maxNew, int eos)
      throws Exception {
    List<Integer> sequence = new ArrayList<>();
    for (int token : prompt) {
      sequence.add(token);
    }
    List<Integer> generated = new ArrayList<>();
    for (int step = 0; step < maxNew; step++) {
      float[] logits = lastLogits(session, layout, sequence.stream().mapToInt(Integer::intValue).toArray());
      int best = 0;
      for (int token = 1; token < logits.length; token++) {
        if (logits[token] > logits[best]) {
          best = token;
        }
      }
      if (best == eos) {
        break;
      }
      generated.add(best);
      sequence.add(best);
    }
    return generated.stream().mapToInt(Integer::intValue).toArray();
  }

  /** The next-token logits after {@code sequence}, from one run of the whole sequence with an empty past. */
  public static float[] lastLogits(OrtSession session, DecoderLayout layout, int[] sequence) throws Exception {
    int length = sequence.length;
    Map<String, OnnxTensor> inputs = new HashMap<>();
    try {
      long[] ids = java.util.Arrays.stream(sequence).asLongStream().toArray();
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
          inputs.put(past, OnnxTensor.createTensor(ai.onnxruntime.OrtEnvironment.getEnvironment(),
              ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder()), layout.cacheShape(1, 0),
              layout.cacheType().equals("FLOAT16") ? OnnxJavaType.FLOAT16 : OnnxJavaType.FLOAT));
        }
      }
      try (OrtSession.Result result = session.run(inputs)) {
        FloatBuffer logits = ((OnnxTensor) result.get("logits").orElseThrow()).getFloatBuffer();
        int vocabulary = (int) layout.vocabularySize();
        float[] last = new float[vocabulary];
        logits.position((length - 1) * vocabulary);
        logits.get(last);
        return last;
      }
    } finally {
      inputs.values().forEach(OnnxTensor::close);
    }
  }

  private static OnnxTensor tensor(String type, long[] values) throws Exception {
    if (type.equals("INT32")) {
      int[] narrow = new int[values.length];
      for (int i = 0; i < values.length; i++) {
        narrow[i] = (int) values[i];
      }
      return OnnxTensor.createTensor(ai.onnxruntime.OrtEnvironment.getEnvironment(), new int[][] {narrow});
    }
    return OnnxTensor.createTensor(ai.onnxruntime.OrtEnvironment.getEnvironment(), new long[][] {values});
  }

  /** A textbook beam search: each beam's whole sequence run without the cache, the best numBeams kept. */
  public static int[] beamSearch(OrtSession session, DecoderLayout layout, int[] prompt, int maxNew, int beams)
      throws Exception {
    List<int[]> sequences = new ArrayList<>(List.of(new int[0]));
    List<Double> scores = new ArrayList<>(List.of(0.0));
    for (int step = 0; step < maxNew; step++) {
      List<double[]> candidates = new ArrayList<>();  // score, beam, token
      for (int beam = 0; beam < sequences.size(); beam++) {
        int[] sequence = concat(prompt, sequences.get(beam));
        float[] logits = DecoderModels.lastLogits(session, layout, sequence);
        double max = Double.NEGATIVE_INFINITY;
        for (float logit : logits) {
          max = Math.max(max, logit);
        }
        double sum = 0;
        for (float logit : logits) {
          sum += Math.exp(logit - max);
        }
        double logNormalizer = max + Math.log(sum);
        for (int token = 0; token < logits.length; token++) {
          candidates.add(new double[] {scores.get(beam) + logits[token] - logNormalizer, beam, token});
        }
      }
      candidates.sort(Comparator.<double[]>comparingDouble(c -> -c[0]).thenComparingDouble(c -> c[1])
          .thenComparingDouble(c -> c[2]));
      List<int[]> nextSequences = new ArrayList<>();
      List<Double> nextScores = new ArrayList<>();
      for (double[] candidate : candidates.subList(0, beams)) {
        int[] parent = sequences.get((int) candidate[1]);
        int[] extended = Arrays.copyOf(parent, parent.length + 1);
        extended[parent.length] = (int) candidate[2];
        nextSequences.add(extended);
        nextScores.add(candidate[0]);
      }
      sequences = nextSequences;
      scores = nextScores;
    }
    return sequences.get(0);
  }

  private static int[] concat(int[] a, int[] b) {
    int[] both = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, both, a.length, b.length);
    return both;
  }
}
