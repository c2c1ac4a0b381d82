package io.github.sparkinfer.spark.generate;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The test decoders of ../shared/models/decoders and their signatures, read here without sparkinfer's reader. */
final class DecoderModels {
  private DecoderModels() {}

  /** A decoder file of ../shared/models/decoders; the calling test is skipped where that folder is not beside the clone. */
  static Path decoder(String file) {
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
  static ModelSignature signature(OrtSession session) throws Exception {
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
}
