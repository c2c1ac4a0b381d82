package io.github.sparkinfer.benchmarks;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/** What every benchmark records about its run: the commit, the CPU, the jars, the load; and its log lines. */
final class RunEnvironment {
  private RunEnvironment() {}

  static void log(String format, Object... values) {
    System.out.printf(Locale.ROOT, "[%s] %s%n",
        DateTimeFormatter.ofPattern("HH:mm:ss").format(ZonedDateTime.now()),
        String.format(Locale.ROOT, format, values));
  }


  static double seconds(long nanos) {
    return nanos / 1e9;
  }


  static String loadAverage() {
    try {
      String[] fields = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return fields[0] + " " + fields[1] + " " + fields[2];
    } catch (IOException | RuntimeException e) {
      return "unknown";
    }
  }


  /**
   * Where {@code type} was loaded from and when that file was written: the commit above is the
   * working tree's, while exec:exec runs the sparkinfer jars installed in the local repository.
   */
  static String jarOf(Class<?> type) {
    try {
      Path location = Path.of(type.getProtectionDomain().getCodeSource().getLocation().toURI());
      return "`" + location + "` (written " + DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm")
          .format(Files.getLastModifiedTime(location).toInstant().atZone(ZoneOffset.UTC))
          + " UTC)";
    } catch (IOException | java.net.URISyntaxException | RuntimeException e) {
      return "unknown (" + e + ")";
    }
  }




  static String gitCommit() {
    // The GPU host runs a bundle, not a checkout: run-on-gpu.sh passes the bundle's commit.
    String bundled = System.getProperty("sparkinfer.commit");
    if (bundled != null && !bundled.isBlank()) {
      return bundled + " (the GPU bundle's)";
    }
    try {
      String commit = git("rev-parse", "--short", "HEAD").trim();
      if (commit.isEmpty()) {
        return "unknown (not a git checkout)";
      }
      return git("status", "--porcelain").isBlank() ? commit : commit + "-dirty";
    } catch (IOException e) {
      return "unknown (" + e.getMessage() + ")";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "unknown (interrupted)";
    }
  }


  private static String git(String... arguments) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add("git");
    command.addAll(List.of(arguments));
    Process process = new ProcessBuilder(command).redirectErrorStream(false).start();
    String output;
    try (InputStream stream = process.getInputStream()) {
      output = new String(stream.readAllBytes(), StandardCharsets.UTF_8);
    }
    if (!process.waitFor(30, TimeUnit.SECONDS) || process.exitValue() != 0) {
      process.destroy();
      return "";
    }
    return output;
  }


  /** The CPU's model, core count and int8-relevant flags: every figure names the CPU it came from. */
  /** The first GPU's name from nvidia-smi, or "no GPU" where it does not run. */
  static String gpuName() {
    try {
      Process process = new ProcessBuilder("nvidia-smi", "--query-gpu=name", "--format=csv,noheader").start();
      String name = new String(process.getInputStream().readAllBytes()).trim();
      return process.waitFor() == 0 && !name.isEmpty() ? name.lines().findFirst().orElse(name) : "no GPU";
    } catch (IOException e) {
      return "no GPU";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "no GPU";
    }
  }

  static String cpuModel() {
    return io.github.sparkinfer.compression.ProcessorDescription.current().toString();
  }

  /**
   * The start of a RESULTS.md section's run table, the same in every benchmark: the note, then
   * date, commit, CPU, cores and JVM. The caller adds its own rows with {@link #row}.
   */
  static void appendRunTable(StringBuilder text, BenchmarkArguments arguments, ZonedDateTime date) {
    if (arguments.note() != null) {
      text.append("**Note:** ").append(arguments.note().strip()).append("\n\n");
    }
    text.append("| | |\n|---|---|\n");
    row(text, "Date (UTC)", DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").format(date));
    row(text, "Commit", gitCommit());
    row(text, "CPU", cpuModel());
    row(text, "Cores (N)", arguments.cores() + " (local[" + arguments.cores() + "]; the machine has "
        + Runtime.getRuntime().availableProcessors() + ")");
    row(text, "JVM", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version")
        + ", -Xmx" + Runtime.getRuntime().maxMemory() / (1024 * 1024) + "m");
  }

  /** One row of a two-column Markdown table. */
  static void row(StringBuilder text, String name, String value) {
    text.append("| ").append(name).append(" | ").append(value).append(" |\n");
  }
}
