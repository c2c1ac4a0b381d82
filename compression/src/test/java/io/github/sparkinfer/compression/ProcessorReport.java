package io.github.sparkinfer.compression;

import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * Prints, before any compression test runs, the CPU and what ONNX Runtime's int8 kernel does on
 * it: int8 results and speeds depend on both, so a test log must say where it came from.
 */
public final class ProcessorReport implements LauncherSessionListener {
  @Override
  public void launcherSessionOpened(LauncherSession session) {
    System.out.println("Compression tests on CPU: " + ProcessorDescription.current());
    System.out.println("int8 scheme for this CPU: " + Int8KernelProbe.result());
  }
}
