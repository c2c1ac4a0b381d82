package io.github.sparkinfer.device;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtProviderOptions;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions.ExecutionMode;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import java.nio.file.Path;
import java.util.List;

/** Creating an ONNX Runtime session from a local model file, on the CPU or with a device's providers. */
final class DeviceSessions {
  private DeviceSessions() {}

  /**
   * A CPU session. When ORT cannot read the file, the local copy is deleted (it may be what is
   * broken: a disk error, a stray file under its name), so the next attempt copies it again.
   */
  static OrtSession onCpu(ModelSource source, Path localFile, SessionSettings settings) {
    OrtEnvironment environment = OrtEnvironments.get();
    try (OrtSession.SessionOptions options = options(source, settings)) {
      try {
        return environment.createSession(localFile.toString(), options);
      } catch (OrtException e) {
        ModelFiles.deleteQuietly(localFile);
        throw ModelLoadException.of(source,
            "ONNX Runtime could not read it as an ONNX model (" + e.getMessage() + ")",
            "Check that the file is a complete .onnx file (not truncated, not another format such"
                + " as .pt or .safetensors) and " + source.registrationFix("register a good one"),
            e);
      }
    }
  }

  /**
   * A session with the device's execution providers. Throws what ORT throws when a provider cannot
   * be added or the session not created: the caller decides on the fallback.
   */
  static OrtSession onAccelerator(ModelSource source, Path localFile, SessionSettings settings)
      throws OrtException {
    OrtEnvironment environment = OrtEnvironments.get();
    try (OrtSession.SessionOptions options = options(source, settings)) {
      // No memory patterns on an accelerator: in ONNX Runtime before 1.29 a run's pattern block stays
      // bound to a placeholder stream when freed (microsoft/onnxruntime#29351, fixed by #29589), so
      // runs of varying batch shapes from several threads made the CUDA arena grow past an 80 GB H100
      // (cross-task text batches, GpuBenchmark 2026-12-07). Shapes vary from batch to batch anyway.
      options.setMemoryPatternOptimization(false);
      List<OrtProviderOptions> providerOptions =
          ExecutionProviders.append(options, settings.device(), settings.providerOptions());
      try {
        return environment.createSession(localFile.toString(), options);
      } finally {
        ExecutionProviders.closeAll(providerOptions);
      }
    }
  }

  private static OrtSession.SessionOptions options(ModelSource source, SessionSettings settings) {
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    try {
      options.setIntraOpNumThreads(settings.intraOpThreads());
      options.setInterOpNumThreads(settings.interOpThreads());
      options.setOptimizationLevel(OptLevel.ALL_OPT);
      options.setExecutionMode(ExecutionMode.SEQUENTIAL);
      return options;
    } catch (OrtException e) {
      options.close();
      throw ModelLoadException.of(source,
          "ONNX Runtime rejected the session settings [" + settings + "] (" + e + ")", "Use other settings", e);
    }
  }
}
