package io.github.sparkinfer.device;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sessions bound to devices when the device cannot be used: the fallback and failure paths, with the
 * provider missing from the build and, by claiming it is there, with ORT failing to add it. The cache
 * is told which providers the build has, so these tests mean the same on ORT's CPU and GPU builds
 * and on machines with and without GPUs.
 */
class TestModelCacheDevices {
  private static final String CPU = "CPUExecutionProvider";
  private static final String CUDA = "CUDAExecutionProvider";
  private static final String TENSORRT = "TensorrtExecutionProvider";
  private static final String VERSION = OrtEnvironments.get().getVersion();

  @TempDir Path temp;
  private final Configuration hadoopConfiguration = new Configuration();
  private ModelCache cache;
  private ModelSource tiny;

  @BeforeEach
  void createCacheAndModel() throws IOException {
    // What ORT's CPU build reports, whichever build is on the class path.
    cache = new ModelCache(temp.resolve("cache"), () -> Set.of(CPU));
    Path file = temp.resolve("tiny.onnx");
    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    tiny = ModelSource.of("tiny", file.toUri().toString());
  }

  @AfterEach
  void closeCache() {
    cache.close();
  }

  @Test
  void availableProvidersAreOrtsOwnListByName() {
    // The names ORT itself reports for its providers, on the CPU build and the GPU build alike.
    Set<String> reported = new java.util.TreeSet<>();
    for (ai.onnxruntime.OrtProvider provider : ai.onnxruntime.OrtEnvironment.getAvailableProviders()) {
      reported.add(provider.getName());
    }
    assertThat(ExecutionProviders.available()).contains(CPU).containsExactlyInAnyOrderElementsOf(reported);
  }

  @Test
  void cpuSessionsSayWhereTheyRun() {
    LoadedModel model = cache.acquire(tiny, SessionSettings.builder().build(), hadoopConfiguration);

    assertThat(model.device()).isEqualTo(Device.cpu());
    assertThat(model.requestedDevice()).isEqualTo(Device.cpu());
    assertThat(model.executionProviders()).containsExactly(CPU);
    assertThat(model.executionProvider()).isEqualTo(CPU);
    assertThat(model.isFallback()).isFalse();
    assertThat(model.fallbackReason()).isEmpty();
    assertThat(cache.fallbackCount()).isZero();
  }

  @Test
  void gpuWithoutTheCudaProviderFallsBackToTheSharedCpuSession() throws Exception {
    SessionSettings gpu = gpu(0, DeviceFallback.CPU);

    LoadedModel model = cache.acquire(tiny, gpu, hadoopConfiguration);

    assertThat(model.device()).isEqualTo(Device.cpu());
    assertThat(model.requestedDevice()).isEqualTo(Device.cuda(0));
    assertThat(model.settings()).isEqualTo(gpu);
    assertThat(model.source()).isEqualTo(tiny);
    assertThat(model.executionProvider()).isEqualTo(CPU);
    assertThat(model.isFallback()).isTrue();
    assertThat(model.fallbackReason())
        .hasValue(
            "ONNX Runtime "
                + VERSION
                + " has no CUDAExecutionProvider in this build"
                + " (OrtEnvironment.getAvailableProviders(): [CPUExecutionProvider])");
    assertThat(run(model.session())).containsExactly(1f, 2f, 3f, 4f);
    // The CPU session of the same threads: one copy of the model on the CPU.
    LoadedModel cpu = cache.acquire(tiny, SessionSettings.builder().build(), hadoopConfiguration);
    assertThat(cpu.session()).isSameAs(model.session());
    assertThat(cpu.isFallback()).isFalse();
    assertThat(cache.loadCount()).isEqualTo(1);
    assertThat(cache.fallbackCount()).isEqualTo(1);
    assertThat(cache.fallbackCount(tiny)).isEqualTo(1);
    assertThat(cache.fallbackWarningCount()).isEqualTo(1);
  }

  @Test
  void concurrentTasksOnOneGpuFallBackOnceAndShareTheSession() throws Exception {
    SessionSettings gpu = gpu(0, DeviceFallback.CPU);
    int threads = 16;
    CyclicBarrier start = new CyclicBarrier(threads);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    List<LoadedModel> models = new ArrayList<>();
    try {
      List<Future<LoadedModel>> futures = new ArrayList<>();
      for (int i = 0; i < threads; i++) {
        futures.add(
            pool.submit(
                () -> {
                  start.await(30, SECONDS);
                  return cache.acquire(tiny, gpu, hadoopConfiguration);
                }));
      }
      for (Future<LoadedModel> future : futures) {
        models.add(future.get(60, SECONDS));
      }
    } finally {
      pool.shutdownNow();
    }

    assertThat(models).extracting(LoadedModel::session).containsOnly(models.get(0).session());
    assertThat(models).allSatisfy(model -> assertThat(model.isFallback()).isTrue());
    assertThat(cache.loadCount()).isEqualTo(1);
    assertThat(cache.fallbackCount()).isEqualTo(1);
    assertThat(cache.fallbackWarningCount()).isEqualTo(1);
  }

  @Test
  void eachDeviceFallsBackOnceAndIsWarnedAboutOnce() {
    LoadedModel first = cache.acquire(tiny, gpu(0, DeviceFallback.CPU), hadoopConfiguration);
    LoadedModel second = cache.acquire(tiny, gpu(1, DeviceFallback.CPU), hadoopConfiguration);
    cache.acquire(tiny, gpu(0, DeviceFallback.CPU), hadoopConfiguration);

    assertThat(first.requestedDevice()).isEqualTo(Device.cuda(0));
    assertThat(second.requestedDevice()).isEqualTo(Device.cuda(1));
    assertThat(second.session()).isSameAs(first.session());
    assertThat(cache.fallbackCount()).isEqualTo(2);
    assertThat(cache.fallbackWarningCount()).isEqualTo(2);

    // Other settings are another session, and another fallback, but not another warning.
    SessionSettings twoThreads = gpu(0, DeviceFallback.CPU).toBuilder().intraOpThreads(2).build();
    LoadedModel threaded = cache.acquire(tiny, twoThreads, hadoopConfiguration);
    assertThat(threaded.session()).isNotSameAs(first.session());
    assertThat(cache.loadCount()).isEqualTo(2);
    assertThat(cache.fallbackCount()).isEqualTo(3);
    assertThat(cache.fallbackWarningCount()).isEqualTo(2);
  }

  @Test
  void fallbackKeepsTheNameEachCallerAskedFor() throws IOException {
    ModelSource other = ModelSource.of("other", tiny.uri());

    LoadedModel first = cache.acquire(tiny, gpu(0, DeviceFallback.CPU), hadoopConfiguration);
    LoadedModel second = cache.acquire(other, gpu(0, DeviceFallback.CPU), hadoopConfiguration);

    assertThat(first.source()).isEqualTo(tiny);
    assertThat(second.source()).isEqualTo(other);
    assertThat(second.session()).isSameAs(first.session());
    assertThat(second.isFallback()).isTrue();
  }

  @Test
  void failPolicyNamesTheModelDeviceProvidersAndFix() {
    SessionSettings gpu = gpu(0, DeviceFallback.FAIL);

    ModelLoadException failure =
        catchThrowableOfType(
            ModelLoadException.class, () -> cache.acquire(tiny, gpu, hadoopConfiguration));

    assertThat(failure)
        .hasMessage(
            "Cannot load model 'tiny' from "
                + tiny.uri()
                + ": device cuda:0 cannot be used: ONNX Runtime "
                + VERSION
                + " has no CUDAExecutionProvider in this build"
                + " (OrtEnvironment.getAvailableProviders(): [CPUExecutionProvider]). Put ONNX"
                + " Runtime's GPU build on the executors' classpath"
                + " (com.microsoft.onnxruntime:onnxruntime_gpu:"
                + VERSION
                + " in place of com.microsoft.onnxruntime:onnxruntime); or set"
                + " spark.sparkinfer.device.fallback=cpu to run on the CPU instead");
    // Failures are not cached: the next task tries again, and fails the same way.
    assertThatThrownBy(() -> cache.acquire(tiny, gpu, hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessage(failure.getMessage());
    assertThat(cache.loadCount()).isZero();
    assertThat(cache.fallbackCount()).isZero();
    assertThat(cache.fallbackWarningCount()).isZero();
  }

  @Test
  void tensorrtWithoutItsProviderNamesBothProviders() {
    SessionSettings tensorrt =
        gpu(1, DeviceFallback.FAIL).toBuilder()
            .providerOptions(ExecutionProviderOptions.builder().tensorrt(true).build())
            .build();

    assertThatThrownBy(() -> cache.acquire(tiny, tensorrt, hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining(
            "device cuda:1 cannot be used: ONNX Runtime "
                + VERSION
                + " has no TensorrtExecutionProvider and CUDAExecutionProvider in this build")
        .hasMessageContaining("or set spark.sparkinfer.tensorrt.enabled=false");
  }

  @Test
  void npuFailsForWantOfAJavaRouteToCann() {
    assertThatThrownBy(() -> cache.acquire(tiny, npu(DeviceFallback.FAIL), hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining(
            "Cannot load model 'tiny' from "
                + tiny.uri()
                + ": device npu:0 cannot be used: ONNX Runtime "
                + VERSION
                + " has no CANNExecutionProvider in this build"
                + " (OrtEnvironment.getAvailableProviders(): [CPUExecutionProvider]); ONNX"
                + " Runtime's Java API cannot add the CANN provider to a session")
        .hasMessageContaining("Give these tasks a GPU or the CPU instead of an Ascend NPU")
        .hasMessageEndingWith(
            "or set spark.sparkinfer.device.fallback=cpu to run on the CPU instead");

    LoadedModel fallback = cache.acquire(tiny, npu(DeviceFallback.CPU), hadoopConfiguration);
    assertThat(fallback.device()).isEqualTo(Device.cpu());
    assertThat(fallback.requestedDevice()).isEqualTo(Device.npu(0));
    assertThat(fallback.fallbackReason().orElseThrow()).contains("CANNExecutionProvider");
  }

  @Test
  void cudaProviderThatOrtCannotAddFallsBack() throws Exception {
    // As if this were the GPU build: ORT itself then fails to add the CUDA provider (the CPU
    // build has no provider library; the GPU build has no device 63 on any machine here).
    ModelCache claimsCuda = new ModelCache(temp.resolve("cache"), () -> Set.of(CPU, CUDA));
    try {
      LoadedModel model = claimsCuda.acquire(tiny, gpu(63, DeviceFallback.CPU), hadoopConfiguration);

      assertThat(model.device()).isEqualTo(Device.cpu());
      assertThat(model.fallbackReason().orElseThrow())
          .startsWith(
              "ONNX Runtime "
                  + VERSION
                  + " could not create the session with CUDAExecutionProvider (")
          .endsWith(
              "; OrtEnvironment.getAvailableProviders(): [CPUExecutionProvider,"
                  + " CUDAExecutionProvider])");
      assertThat(run(model.session())).containsExactly(1f, 2f, 3f, 4f);
      assertThat(claimsCuda.fallbackCount()).isEqualTo(1);

      ModelLoadException failure =
          catchThrowableOfType(
              ModelLoadException.class,
              () -> claimsCuda.acquire(tiny, gpu(62, DeviceFallback.FAIL), hadoopConfiguration));
      assertThat(failure)
          .hasMessageStartingWith(
              "Cannot load model 'tiny' from "
                  + tiny.uri()
                  + ": device cuda:62 cannot be used: ONNX Runtime "
                  + VERSION
                  + " could not create the session with CUDAExecutionProvider ("
                  + failure.getCause().getMessage()
                  + "; ")
          .hasMessageContaining(
              "Check that cuda:62 exists and is visible to the executor (nvidia-smi;"
                  + " CUDA_VISIBLE_DEVICES)")
          .hasMessageEndingWith(
              "or set spark.sparkinfer.device.fallback=cpu to run on the CPU instead")
          .hasCauseInstanceOf(OrtException.class);
    } finally {
      claimsCuda.close();
    }
  }

  @Test
  void tensorrtProviderThatOrtCannotAddFallsBack() {
    ModelCache claimsTensorrt =
        new ModelCache(temp.resolve("cache"), () -> Set.of(CPU, CUDA, TENSORRT));
    SessionSettings tensorrt =
        gpu(63, DeviceFallback.CPU).toBuilder()
            .providerOptions(
                ExecutionProviderOptions.builder().tensorrt(true).tensorrtFp16(true).build())
            .build();
    try {
      LoadedModel model = claimsTensorrt.acquire(tiny, tensorrt, hadoopConfiguration);

      assertThat(model.device()).isEqualTo(Device.cpu());
      assertThat(model.fallbackReason().orElseThrow())
          .contains(
              "could not create the session with TensorrtExecutionProvider, CUDAExecutionProvider"
                  + " (");
    } finally {
      claimsTensorrt.close();
    }
  }

  @Test
  void cannProviderCannotBeAddedEvenWhenClaimed() {
    ModelCache claimsCann =
        new ModelCache(temp.resolve("cache"), () -> Set.of(CPU, ExecutionProviders.CANN));
    try {
      assertThatThrownBy(
              () -> claimsCann.acquire(tiny, npu(DeviceFallback.FAIL), hadoopConfiguration))
          .isInstanceOf(ModelLoadException.class)
          .hasMessageContaining(
              "device npu:0 cannot be used: ONNX Runtime "
                  + VERSION
                  + " could not create the session with CANNExecutionProvider (ONNX Runtime's Java"
                  + " API cannot add the CANN provider to a session")
          .hasCauseInstanceOf(UnsupportedOperationException.class);
    } finally {
      claimsCann.close();
    }
  }

  @Test
  void corruptModelOnAGpuIsReportedAsAModelError() throws IOException {
    Path file = temp.resolve("broken.onnx");
    Files.write(file, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
    ModelSource broken = ModelSource.of("broken", file.toUri().toString());

    assertThatThrownBy(() -> cache.acquire(broken, gpu(0, DeviceFallback.CPU), hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("Cannot load model 'broken'")
        .hasMessageContaining("could not read it as an ONNX model");
    assertThat(cache.fallbackCount()).isZero();
    assertThat(cache.fallbackWarningCount()).isZero();
  }

  @Test
  void closeAllClosesFallbackSessionsOnce() {
    LoadedModel fallback = cache.acquire(tiny, gpu(0, DeviceFallback.CPU), hadoopConfiguration);

    cache.close();

    assertThatThrownBy(() -> fallback.session().getInputInfo())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed OrtSession");
  }

  private static SessionSettings gpu(int index, DeviceFallback fallback) {
    return SessionSettings.builder().device(Device.cuda(index)).fallback(fallback).build();
  }

  private static SessionSettings npu(DeviceFallback fallback) {
    return SessionSettings.builder().device(Device.npu(0)).fallback(fallback).build();
  }

  private static float[] run(OrtSession session) throws OrtException {
    try (OnnxTensor input =
            OnnxTensor.createTensor(OrtEnvironments.get(), new float[][] {{1f, 2f, 3f, 4f}});
        OrtSession.Result result = session.run(Map.of("x", input))) {
      return ((float[][]) result.get(0).getValue())[0];
    }
  }
}
