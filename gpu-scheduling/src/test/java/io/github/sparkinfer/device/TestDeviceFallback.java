package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

class TestDeviceFallback {
  @Test
  void readsCpuAndFail() {
    assertThat(DeviceFallback.parse("cpu")).isEqualTo(DeviceFallback.CPU);
    assertThat(DeviceFallback.parse(" FAIL ")).isEqualTo(DeviceFallback.FAIL);
    assertThat(DeviceFallback.CPU).hasToString("cpu");
    assertThat(DeviceFallback.FAIL).hasToString("fail");
  }

  @Test
  void defaultIsCpu() {
    assertThat(DeviceFallback.fromSettings(Map.of())).isEqualTo(DeviceFallback.CPU);
    assertThat(
            DeviceFallback.fromConf(
                new SparkConf(false).set(SchedulingProperties.DEVICE_FALLBACK, "fail")))
        .isEqualTo(DeviceFallback.FAIL);
  }

  @Test
  void rejectsOtherValues() {
    assertThatThrownBy(
            () -> DeviceFallback.fromSettings(Map.of(SchedulingProperties.DEVICE_FALLBACK, "gpu")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "Invalid spark.sparkinfer.device.fallback 'gpu': expected cpu (run on the CPU when the"
                + " accelerator cannot be used) or fail");
  }
}
