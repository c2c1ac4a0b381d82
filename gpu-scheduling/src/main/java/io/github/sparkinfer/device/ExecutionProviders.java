package io.github.sparkinfer.device;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtProviderOptions;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.providers.OrtCUDAProviderOptions;
import ai.onnxruntime.providers.OrtTensorRTProviderOptions;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/** Adds the execution providers of a device to ONNX Runtime session options. */
final class ExecutionProviders {
  static final String CPU = OrtProvider.CPU.getName();
  static final String CUDA = OrtProvider.CUDA.getName();
  static final String TENSORRT = OrtProvider.TENSOR_RT.getName();
  // Not in ORT Java's OrtProvider enum: the name ORT's native library gives the provider.
  static final String CANN = "CANNExecutionProvider";

  private ExecutionProviders() {}

  /** The providers ONNX Runtime's build offers, by ORT name (CPUExecutionProvider, ...). */
  static Set<String> available() {
    // Loads ORT's native library the safe way before anything reads from it.
    OrtEnvironments.get();
    Set<String> names = new TreeSet<>();
    for (OrtProvider provider : OrtEnvironment.getAvailableProviders()) {
      names.add(provider.getName());
    }
    return Collections.unmodifiableSet(names);
  }

  /**
   * The providers a session on {@code device} runs with, in ORT's order of preference; ORT puts the
   * CPU provider last by itself, for the operators the others do not take.
   */
  static List<String> forDevice(Device device, ExecutionProviderOptions options) {
    switch (device.type()) {
      case CUDA:
        return options.tensorrtEnabled() ? List.of(TENSORRT, CUDA, CPU) : List.of(CUDA, CPU);
      case NPU:
        return List.of(CANN, CPU);
      default:
        return List.of(CPU);
    }
  }

  /** Why ONNX Runtime's build cannot run {@code providers}, or null when it can. */
  static String missing(Device device, List<String> providers, Set<String> available) {
    List<String> missing = new ArrayList<>();
    for (String provider : providers) {
      if (!available.contains(provider)) {
        missing.add(provider);
      }
    }
    if (missing.isEmpty()) {
      return null;
    }
    String which = missing.size() == 1 ? missing.get(0) : String.join(" and ", missing);
    return "ONNX Runtime "
        + OrtEnvironments.get().getVersion()
        + " has no "
        + which
        + " in this build (OrtEnvironment.getAvailableProviders(): "
        + new TreeSet<>(available)
        + ")"
        + (device.type() == Device.Type.NPU ? "; " + cannRoute() : "");
  }

  /**
   * Adds the providers of {@code device} to {@code options}. The returned provider options must be
   * closed once the session is created: ORT copies them into the session options when they are
   * added, but the Java objects hold native memory.
   */
  static List<OrtProviderOptions> append(
      OrtSession.SessionOptions options, Device device, ExecutionProviderOptions providerOptions)
      throws OrtException {
    List<OrtProviderOptions> created = new ArrayList<>();
    try {
      switch (device.type()) {
        case CUDA:
          int deviceId = device.index().getAsInt();
          if (providerOptions.tensorrtEnabled()) {
            OrtTensorRTProviderOptions tensorrt = new OrtTensorRTProviderOptions(deviceId);
            created.add(tensorrt);
            for (Map.Entry<String, String> option : providerOptions.tensorrtOptions().entrySet()) {
              tensorrt.add(option.getKey(), option.getValue());
            }
            options.addTensorrt(tensorrt);
          }
          OrtCUDAProviderOptions cuda = new OrtCUDAProviderOptions(deviceId);
          created.add(cuda);
          for (Map.Entry<String, String> option : providerOptions.cudaOptions().entrySet()) {
            cuda.add(option.getKey(), option.getValue());
          }
          options.addCUDA(cuda);
          break;
        case NPU:
          // No Java route to the CANN provider: see ExecutionProviderOptions.
          throw new UnsupportedOperationException(cannRoute());
        default:
          break;
      }
      return created;
    } catch (OrtException | RuntimeException e) {
      closeAll(created);
      throw e;
    }
  }

  static void closeAll(List<OrtProviderOptions> providerOptions) {
    for (OrtProviderOptions options : providerOptions) {
      options.close();
    }
  }

  private static String cannRoute() {
    return "ONNX Runtime's Java API cannot add the CANN provider to a session (no addCANN method,"
        + " and the generic SessionOptionsAppendExecutionProvider does not accept 'CANN'), so an"
        + " Ascend NPU cannot be used from the JVM";
  }
}
