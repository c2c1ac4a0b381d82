package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TestDevice {
  @Test
  void printsAndParsesEachType() {
    assertThat(Device.cpu()).hasToString("cpu");
    assertThat(Device.cuda(0)).hasToString("cuda:0");
    assertThat(Device.npu(1)).hasToString("npu:1");

    assertThat(Device.parse("cpu")).isSameAs(Device.cpu());
    assertThat(Device.parse("cuda:0")).isEqualTo(Device.cuda(0));
    assertThat(Device.parse("cuda:12")).isEqualTo(Device.cuda(12));
    assertThat(Device.parse("npu:1")).isEqualTo(Device.npu(1));
    assertThat(Device.parse(" CUDA:3 ")).isEqualTo(Device.cuda(3));
    assertThat(Device.parse("CPU")).isSameAs(Device.cpu());
    for (Device device : new Device[] {Device.cpu(), Device.cuda(7), Device.npu(0)}) {
      assertThat(Device.parse(device.toString())).isEqualTo(device);
    }
  }

  @Test
  void typeIndexAndAccelerator() {
    assertThat(Device.cpu().type()).isEqualTo(Device.Type.CPU);
    assertThat(Device.cpu().index()).isEqualTo(OptionalInt.empty());
    assertThat(Device.cpu().isAccelerator()).isFalse();
    assertThat(Device.cuda(2).type()).isEqualTo(Device.Type.CUDA);
    assertThat(Device.cuda(2).index()).hasValue(2);
    assertThat(Device.cuda(2).isAccelerator()).isTrue();
    assertThat(Device.npu(5).type()).isEqualTo(Device.Type.NPU);
    assertThat(Device.npu(5).index()).hasValue(5);
    assertThat(Device.npu(5).isAccelerator()).isTrue();
  }

  @Test
  void equalityIsTypeAndIndex() {
    assertThat(Device.cuda(1)).isEqualTo(Device.cuda(1)).hasSameHashCodeAs(Device.cuda(1));
    assertThat(Device.cuda(1)).isNotEqualTo(Device.cuda(0));
    assertThat(Device.cuda(1)).isNotEqualTo(Device.npu(1));
    assertThat(Device.cpu()).isNotEqualTo(Device.cuda(0));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "gpu",
        "gpu:0",
        "cuda",
        "cuda:",
        "cuda:-1",
        "cuda:x",
        "cuda:1.5",
        "cuda:0:1",
        "npu",
        "cpu:0",
        ":0",
        "cuda:1234567890",
        "cuda 0"
      })
  void rejectsOtherText(String text) {
    assertThatThrownBy(() -> Device.parse(text))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "Invalid device '"
                + text
                + "': expected cpu, cuda:<index> or npu:<index>, with the index a non-negative"
                + " integer, such as cuda:0");
  }

  @Test
  void rejectsNegativeIndices() {
    assertThatThrownBy(() -> Device.cuda(-1))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("Invalid cuda device index -1: must be 0 or more");
    assertThatThrownBy(() -> Device.npu(-2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("Invalid npu device index -2: must be 0 or more");
  }

  @Test
  void survivesJavaSerialization() throws Exception {
    assertThat(roundTrip(Device.cpu())).isSameAs(Device.cpu());
    assertThat(roundTrip(Device.cuda(3))).isEqualTo(Device.cuda(3));
    assertThat(roundTrip(Device.npu(0))).isEqualTo(Device.npu(0));
  }

  static Object roundTrip(Object value) throws IOException, ClassNotFoundException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream output = new ObjectOutputStream(bytes)) {
      output.writeObject(value);
    }
    try (ObjectInputStream input =
        new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      return input.readObject();
    }
  }
}
