package io.github.sparkinfer.spark.lifecycle;

import static org.assertj.core.api.Assertions.assertThat;

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
 * SIGTERM in the middle of inference, as dynamic allocation, YARN or Kubernetes preemption and a
 * user's Ctrl-C send it: the JVM must exit as a SIGTERM'd JVM does (status 143), with no native
 * crash (no hs_err file, no SIGSEGV), after the model cache's shutdown waited for the runs in
 * flight, within its grace period.
 */
// Child JVMs have deadlines of their own; this bounds the whole class if one is missed.
@org.junit.jupiter.api.Timeout(value = 5, unit = java.util.concurrent.TimeUnit.MINUTES)
class TestShutdownDuringInference {
  /** The child's spark.sparkinfer.shutdown.gracePeriod default, and margin for the rest of the exit. */
  private static final long EXIT_DEADLINE_SECONDS = 10 + 60;

  @TempDir Path folder;

  @Test
  void sigtermDuringEmbedExitsCleanly() throws Exception {
    assertCleanExitAfterSigterm("embed");
  }

  @Test
  void sigtermDuringPredictExitsCleanly() throws Exception {
    assertCleanExitAfterSigterm("predict");
  }

  /**
   * Up to three children: the SIGTERM must find model runs in flight (the summary says how many),
   * and a child whose runs happened to be between batches proves nothing.
   */
  private void assertCleanExitAfterSigterm(String mode) throws Exception {
    for (int attempt = 1; attempt <= 3; attempt++) {
      int inFlight = sigtermOnce(mode, attempt);
      if (inFlight > 0) {
        return;
      }
    }
    throw new AssertionError("Three SIGTERMs found no model run in flight: the test did not test shutdown mid-batch");
  }

  /** Returns the runs in flight when the model cache shut down. */
  private int sigtermOnce(String mode, int attempt) throws Exception {
    Path log = folder.resolve(mode + "-" + attempt + ".log");
    Path logging = folder.resolve("log4j2.properties");
    Files.writeString(logging, String.join("\n",
        "rootLogger.level = warn",
        "rootLogger.appenderRef.out.ref = out",
        "appender.out.type = Console",
        "appender.out.name = out",
        "appender.out.layout.type = PatternLayout",
        "appender.out.layout.pattern = %p %c{1}: %m%n",
        // The shutdown summary: how many runs it waited for and how long.
        "logger.cache.name = io.github.sparkinfer.device.ModelCache",
        "logger.cache.level = info",
        "logger.djlcuda.name = ai.djl.util.cuda.CudaUtils",
        "logger.djlcuda.level = error"));
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("-Xmx2g");
    command.add("-XX:ErrorFile=" + folder.resolve("hs_err_pid%p.log"));
    command.add("-XX:-CreateCoredumpOnCrash");
    command.add("-Dlog4j2.configurationFile=" + logging.toUri());
    // The Spark opens this test JVM was started with.
    ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(argument -> argument.startsWith("--add-opens") || argument.startsWith("-Djdk.reflect")
            || argument.startsWith("-Dio.netty"))
        .forEach(command::add);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(InferenceUntilStopped.class.getName());
    command.add(mode);
    command.add(folder.toString());
    Process child = new ProcessBuilder(command).directory(folder.toFile()).redirectErrorStream(true)
        .redirectOutput(log.toFile()).start();
    try {
      awaitLine(child, log, "RUNNING", 240);
      // The loop started its next query at once: the model is running now.
      child.destroy();
      boolean exited = child.waitFor(EXIT_DEADLINE_SECONDS, TimeUnit.SECONDS);
      String output = Files.readString(log, StandardCharsets.UTF_8);
      assertThat(exited).as("exited within %d s of SIGTERM:%n%s", EXIT_DEADLINE_SECONDS, output).isTrue();
      assertThat(hsErrFiles()).as(output).isEmpty();
      assertThat(output).doesNotContain("SIGSEGV", "A fatal error has been detected");
      assertThat(child.exitValue()).as(output).isEqualTo(143);
      java.util.regex.Matcher summary = java.util.regex.Pattern.compile(
          "Model cache shut down in (\\d+) ms \\(grace period 10000 ms\\): 1 of 1 sessions closed, 0 left open;"
              + " (\\d+) runs were in flight").matcher(output);
      assertThat(summary.find()).as(output).isTrue();
      assertThat(Long.parseLong(summary.group(1))).as("the shutdown hook's time").isLessThan(10_000);
      System.out.println(mode + " after SIGTERM (attempt " + attempt + "):\n" + summary(output));
      return Integer.parseInt(summary.group(2));
    } finally {
      child.destroyForcibly();
    }
  }

  private List<Path> hsErrFiles() throws IOException {
    try (Stream<Path> files = Files.list(folder)) {
      return files.filter(file -> file.getFileName().toString().startsWith("hs_err")).toList();
    }
  }

  private static String summary(String output) {
    return String.join("\n", output.lines().filter(line -> line.contains("ModelCache") || line.contains("query ended"))
        .toList());
  }

  /** Polls the child's log for a line, up to a deadline; fails early if the child dies. */
  private static void awaitLine(Process child, Path log, String line, long seconds) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < deadline) {
      String output = Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
      if (output.lines().anyMatch(line::equals)) {
        return;
      }
      if (!child.isAlive()) {
        throw new AssertionError("The child JVM ended (status " + child.exitValue() + ") before '" + line + "':\n"
            + output);
      }
      child.waitFor(100, TimeUnit.MILLISECONDS);
    }
    throw new AssertionError("No '" + line + "' from the child JVM within " + seconds + " s:\n"
        + Files.readString(log, StandardCharsets.UTF_8));
  }

}
