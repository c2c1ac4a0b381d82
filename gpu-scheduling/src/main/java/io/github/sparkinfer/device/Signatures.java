package io.github.sparkinfer.device;

import ai.onnxruntime.MapInfo;
import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.SequenceInfo;
import ai.onnxruntime.TensorInfo;
import ai.onnxruntime.ValueInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Reads a {@link ModelSignature} from an ONNX Runtime session. */
final class Signatures {
  private static final String ONNX_TYPE_PREFIX = "ONNX_TENSOR_ELEMENT_DATA_TYPE_";
  private static final long[] NO_SHAPE = new long[0];

  private Signatures() {}

  static ModelSignature of(OrtSession session) throws OrtException {
    return new ModelSignature(specs(session.getInputInfo()), specs(session.getOutputInfo()));
  }

  // ORT returns a LinkedHashMap in the model's order; iterating it keeps that order.
  private static List<TensorSpec> specs(Map<String, NodeInfo> nodes) {
    List<TensorSpec> specs = new ArrayList<>(nodes.size());
    for (NodeInfo node : nodes.values()) {
      specs.add(spec(node.getName(), node.getInfo()));
    }
    return specs;
  }

  static TensorSpec spec(String name, ValueInfo info) {
    if (info instanceof TensorInfo) {
      TensorInfo tensor = (TensorInfo) info;
      return new TensorSpec(
          name,
          elementType(tensor.type),
          onnxTypeName(tensor),
          tensor.getShape(),
          tensor.getDimensionNames());
    } else if (info instanceof SequenceInfo) {
      return new TensorSpec(name, TensorElementType.UNSUPPORTED, "SEQUENCE", NO_SHAPE, null);
    } else if (info instanceof MapInfo) {
      return new TensorSpec(name, TensorElementType.UNSUPPORTED, "MAP", NO_SHAPE, null);
    } else {
      String kind =
          info == null ? "UNKNOWN" : info.getClass().getSimpleName().toUpperCase(Locale.ROOT);
      return new TensorSpec(name, TensorElementType.UNSUPPORTED, kind, NO_SHAPE, null);
    }
  }

  static TensorElementType elementType(OnnxJavaType type) {
    switch (type) {
      case FLOAT:
        return TensorElementType.FLOAT;
      case DOUBLE:
        return TensorElementType.DOUBLE;
      case INT32:
        return TensorElementType.INT32;
      case INT64:
        return TensorElementType.INT64;
      default:
        return TensorElementType.UNSUPPORTED;
    }
  }

  // ONNX's own element type name (FLOAT, UINT16, BFLOAT16, ...): OnnxJavaType folds the types Java
  // has no array for into UNKNOWN, which would hide what the model actually wants.
  private static String onnxTypeName(TensorInfo tensor) {
    if (tensor.onnxType == null) {
      return tensor.type.name();
    }
    String name = tensor.onnxType.name();
    return name.startsWith(ONNX_TYPE_PREFIX) ? name.substring(ONNX_TYPE_PREFIX.length()) : name;
  }
}
