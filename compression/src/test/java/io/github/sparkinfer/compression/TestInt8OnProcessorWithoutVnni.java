package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The int8 accuracy tests again, in a JVM whose CPU is an emulated Haswell (AVX2, no AVX-512, no
 * VNNI: the kind of CPU whose ONNX Runtime kernel saturates uint8 x int8 sums), through Debian's
 * qemu-user. Whatever CPU runs the suite, this covers the one where u8s8 is wrong: the probe must
 * find the saturation there, and the default scheme must still give exact results.
 *
 * <p>Needs qemu-x86_64 on an x86-64 host; .ci/run installs it and sets
 * SPARKINFER_REQUIRE_EMULATED_CPU=1 so that CI fails rather than skips without it.
 */
class TestInt8OnProcessorWithoutVnni {
  private static final List<String> TEST_CLASSES =
      List.of(TestInt8Schemes.class.getName(), TestModelCompressorInt8.class.getName());

  @Test
  void int8TestsPassOnAnAvx2CpuWithoutVnni(@TempDir Path directory) throws Exception {
    Optional<Path> qemu = onPath("qemu-x86_64");
    boolean required = "1".equals(System.getenv("SPARKINFER_REQUIRE_EMULATED_CPU"));
    boolean x86 = System.getProperty("os.arch").equals("amd64") || System.getProperty("os.arch").equals("x86_64");
    if (required) {
      assertThat(qemu).as("qemu-x86_64 (apt-get install qemu-user), required by SPARKINFER_REQUIRE_EMULATED_CPU=1")
          .isPresent();
      assertThat(x86).as("an x86-64 host for the emulated x86-64 CPU").isTrue();
    }
    assumeTrue(qemu.isPresent() && x86,
        "qemu-x86_64 is not installed (apt-get install qemu-user), or this is not an x86-64 host: not run");

    Path log = directory.resolve("emulated.log");
    Process process = new ProcessBuilder(Stream.concat(Stream.of(
            qemu.get().toString(), "-cpu", "Haswell",
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx1g", "-cp", System.getProperty("java.class.path"), EmulatedProcessorTests.class.getName()),
            TEST_CLASSES.stream()).toArray(String[]::new))
        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    boolean finished = process.waitFor(10, TimeUnit.MINUTES);
    if (!finished) {
      process.destroyForcibly().waitFor();
    }
    String output = String.join("\n", Files.readAllLines(log, StandardCharsets.UTF_8).stream()
        .filter(line -> !line.contains("TCG doesn't support requested feature")).toList());
    System.out.println("On an emulated Haswell:\n" + output);
    assertThat(finished).as("the emulated run finished within 10 minutes").isTrue();
    // The emulation really is a CPU where u8s8 saturates, and the default chose the exact scheme.
    assertThat(output).contains("int8 scheme for this CPU: u8s8-paired",
        "kernel is exact only for pairs of weights within 128");
    assertThat(output).contains("0 tests failed");
    assertThat(process.exitValue()).as(output).isZero();
  }

  private static Optional<Path> onPath(String command) {
    String path = System.getenv("PATH");
    if (path == null) {
      return Optional.empty();
    }
    return Stream.of(path.split(File.pathSeparator))
        .map(folder -> Path.of(folder, command))
        .filter(Files::isExecutable)
        .findFirst();
  }
}
