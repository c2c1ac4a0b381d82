package io.github.sparkinfer.spark.batch;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Which ONNX Runtime failures mean "out of memory": a batch split in halves, not a bad row. */
class TestDeviceMemory {
  @Test
  void outOfMemoryMessagesOfOnnxRuntimesAllocatorsAreRecognized() {
    // The CUDA arena with gpu_mem_limit, cudaMalloc, and the CPU allocator, as ONNX Runtime words them.
    assertThat(DeviceMemory.isOutOfMemory(new RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION :"
        + " Non-zero status code returned while running Gemm node. Name:'gemm_1' Status Message:"
        + " /onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:376 void* onnxruntime::BFCArena::AllocateRawInternal("
        + "size_t, bool, onnxruntime::Stream*, bool, onnxruntime::WaitNotificationFn) Available memory of 12582912 is"
        + " smaller than requested bytes of 26214400"))).isTrue();
    assertThat(DeviceMemory.isOutOfMemory(new RuntimeException("CUDA failure 2: out of memory ; GPU=0"))).isTrue();
    assertThat(DeviceMemory.isOutOfMemory(new RuntimeException(new RuntimeException(
        "Failed to allocate memory for requested buffer of size 1073741824")))).isTrue();
    assertThat(DeviceMemory.isOutOfMemory(new RuntimeException("indices element out of data bounds, idx=12"))).isFalse();
    assertThat(DeviceMemory.isOutOfMemory(new RuntimeException((String) null))).isFalse();
  }
}
