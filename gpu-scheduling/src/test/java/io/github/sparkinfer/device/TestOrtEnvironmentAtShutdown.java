package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OrtEnvironment;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ONNX Runtime's environment outlives every model run at JVM exit. ORT's Java API releases the
 * native environment from a JVM shutdown hook of its own, and the JVM runs shutdown hooks at the
 * same time: without sparkinfer taking that hook out, the environment was freed while the model
 * cache's hook still waited for runs in flight, and those runs crashed the JVM (SIGSEGV in
 * OrtSession.run, issue 28 finding 11).
 */
// Child JVMs have deadlines of their own; this bounds the whole class if one is missed.
@org.junit.jupiter.api.Timeout(value = 5, unit = TimeUnit.MINUTES)
class TestOrtEnvironmentAtShutdown {
  private static final int CHILDREN = 2;

  @TempDir Path folder;

  @Test
  void onnxRuntimesOwnShutdownHookIsTakenOut() throws Exception {
    OrtEnvironment environment = OrtEnvironments.get();

    assertThat(OrtShutdownHook.registered()).as("ORT's environment closers among the JVM's shutdown hooks").isEmpty();
    assertThat(OrtShutdownHook.remove()).isZero();
    assertThat(environment.getVersion()).isNotBlank();
  }

  @Test
  void runsInFlightWhenTheJvmExitsEndWithoutACrash() throws Exception {
    for (int child = 1; child <= CHILDREN; child++) {
      exitDuringRuns(child);
    }
  }

  private void exitDuringRuns(int attempt) throws Exception {
    Path childFolder = Files.createDirectories(folder.resolve("child-" + attempt));
    Path log = childFolder.resolve("child.log");
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("-Xmx1g");
    command.add("-XX:ErrorFile=" + childFolder.resolve("hs_err_pid%p.log"));
    command.add("-XX:-CreateCoredumpOnCrash");
    command.add("-Djava.io.tmpdir=" + childFolder);
    // The opens this test JVM was started with, as Spark starts executors with them.
    ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(argument -> argument.startsWith("--add-opens"))
        .forEach(command::add);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(RunsThroughShutdown.class.getName());
    command.add(childFolder.toString());
    Process child = new ProcessBuilder(command).directory(childFolder.toFile()).redirectErrorStream(true)
        .redirectOutput(log.toFile()).start();
    try {
      boolean exited = child.waitFor(180, TimeUnit.SECONDS);
      String output = Files.readString(log, StandardCharsets.UTF_8);
      assertThat(exited).as("child %d exited within 180 s:%n%s", attempt, output).isTrue();
      assertThat(hsErrFiles(childFolder)).as(output).isEmpty();
      assertThat(output).contains("RUNNING after").doesNotContain("SIGSEGV", "A fatal error has been detected",
          "RUN FAILED");
      // ORT's environment still works once the cache has closed its session, while the JVM exits.
      assertThat(output).contains("LATE SESSION OK [1.0, 2.0, 3.0, 4.0]");
      assertThat(child.exitValue()).as(output).isZero();
      assertThat(output).as("the model cache waited for the runs and closed the session")
          .containsPattern("Model cache shut down in \\d+ ms \\(grace period 10000 ms\\): 1 of 1 sessions closed, 0"
              + " left open");
      System.out.println("Child " + attempt + ": " + output.lines().filter(line -> line.startsWith("sparkinfer:")
          || line.startsWith("RUNNING") || line.startsWith("LATE")).toList());
    } finally {
      child.destroyForcibly();
    }
  }

  private static List<Path> hsErrFiles(Path childFolder) throws IOException {
    try (Stream<Path> files = Files.list(childFolder)) {
      return files.filter(file -> file.getFileName().toString().startsWith("hs_err")).toList();
    }
  }
}
