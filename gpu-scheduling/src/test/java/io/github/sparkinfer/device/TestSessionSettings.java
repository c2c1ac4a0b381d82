package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class TestSessionSettings {
  private static final ExecutionProviderOptions CUDA_LIMIT =
      ExecutionProviderOptions.builder().gpuMemoryLimit(1L << 30).build();

  @Test
  void defaultsAreTheCpuWithOneThreadEach() {
    SessionSettings settings = SessionSettings.builder().build();

    assertThat(settings.device()).isEqualTo(Device.cpu());
    assertThat(settings.intraOpThreads()).isEqualTo(1);
    assertThat(settings.interOpThreads()).isEqualTo(1);
    assertThat(settings.providerOptions()).isEqualTo(ExecutionProviderOptions.none());
    assertThat(settings.fallback()).isEqualTo(DeviceFallback.CPU);
    assertThat(settings).hasToString("cpu, intraOpThreads=1, interOpThreads=1");
  }

  @Test
  void devicesAreDifferentSessions() {
    SessionSettings cuda0 = SessionSettings.builder().device(Device.cuda(0)).build();
    SessionSettings cuda0Again = SessionSettings.builder().device(Device.parse("cuda:0")).build();
    SessionSettings cuda1 = SessionSettings.builder().device(Device.cuda(1)).build();
    SessionSettings cpu = SessionSettings.builder().build();

    assertThat(cuda0).isEqualTo(cuda0Again).hasSameHashCodeAs(cuda0Again);
    assertThat(cuda0).isNotEqualTo(cuda1).isNotEqualTo(cpu);
  }

  @Test
  void cpuIgnoresProviderOptionsAndFallback() {
    SessionSettings plain = SessionSettings.builder().intraOpThreads(4).build();
    SessionSettings withEverything =
        SessionSettings.builder()
            .intraOpThreads(4)
            .providerOptions(CUDA_LIMIT)
            .fallback(DeviceFallback.FAIL)
            .build();

    assertThat(withEverything).isEqualTo(plain).hasSameHashCodeAs(plain);
    assertThat(withEverything.providerOptions()).isEqualTo(ExecutionProviderOptions.none());
    assertThat(withEverything.fallback()).isEqualTo(DeviceFallback.CPU);
  }

  @Test
  void acceleratorsKeepTheirOptionsAndFallback() {
    SessionSettings limited =
        SessionSettings.builder()
            .device(Device.cuda(0))
            .providerOptions(CUDA_LIMIT)
            .fallback(DeviceFallback.FAIL)
            .build();
    SessionSettings unlimited =
        SessionSettings.builder().device(Device.cuda(0)).fallback(DeviceFallback.FAIL).build();

    assertThat(limited).isNotEqualTo(unlimited);
    assertThat(limited).isNotEqualTo(limited.toBuilder().fallback(DeviceFallback.CPU).build());
    assertThat(limited.toBuilder().build()).isEqualTo(limited);
    assertThat(limited)
        .hasToString(
            "cuda:0 (fallback fail, cuda {gpu_mem_limit=1073741824}), intraOpThreads=1,"
                + " interOpThreads=1");
    // An NPU session has no use for CUDA options.
    assertThat(limited.toBuilder().device(Device.npu(0)).build().providerOptions())
        .isEqualTo(ExecutionProviderOptions.none());
  }

  @Test
  void onCpuKeepsTheThreadsAndIsAPlainCpuSession() {
    SessionSettings gpu =
        SessionSettings.builder()
            .intraOpThreads(3)
            .interOpThreads(2)
            .device(Device.cuda(1))
            .providerOptions(CUDA_LIMIT)
            .fallback(DeviceFallback.CPU)
            .build();

    assertThat(gpu.onCpu())
        .isEqualTo(SessionSettings.builder().intraOpThreads(3).interOpThreads(2).build());
  }

  @Test
  void survivesJavaSerialization() throws Exception {
    SessionSettings settings =
        SessionSettings.builder().device(Device.cuda(2)).providerOptions(CUDA_LIMIT).build();

    assertThat(TestDevice.roundTrip(settings)).isEqualTo(settings);
  }
}
