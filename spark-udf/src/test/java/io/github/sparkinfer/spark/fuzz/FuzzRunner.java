package io.github.sparkinfer.spark.fuzz;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Runs a fuzz target's main in child JVMs until the time budget is spent, so that a native crash
 * is counted instead of ending the test run: a child that dies (SIGSEGV, abort, exit without
 * "FUZZ DONE") is a JVM death at the input it had in flight, and the next child starts at the
 * input after it. A child silent on one input past {@link #HANG_SECONDS} is killed and counted
 * as a death too.
 *
 * <p>Settings (system properties): {@code sparkinfer.fuzz.seconds}, each target's budget (default
 * {@value #DEFAULT_SECONDS}; by hand, say, 600); {@code sparkinfer.fuzz.seed} (default {@value
 * #DEFAULT_SEED}); {@code sparkinfer.fuzz.from}, the first input index (to replay a finding).
 */
final class FuzzRunner {
  static final long DEFAULT_SECONDS = 25;
  static final long DEFAULT_SEED = 28;
  private static final long HANG_SECONDS = 120;
  private static final int LISTED = 15;

  /** The figures of one target's run, and each finding, with its seed and input index. */
  static final class Summary {
    final String target;
    final long seed;
    long tried;
    long deaths;
    long refusals;
    long unclear;
    long wrong;
    long fuzzMillis;
    final List<String> deathFindings = new ArrayList<>();
    final List<String> unclearFindings = new ArrayList<>();
    final List<String> wrongFindings = new ArrayList<>();

    Summary(String target, long seed) {
      this.target = target;
      this.seed = seed;
    }

    String line() {
      return "fuzz " + target + " (seed " + seed + "): " + tried + " inputs tried, " + deaths + " JVM deaths, "
          + refusals + " refusals, " + unclear + " unclear errors, " + wrong + " wrong results";
    }

    String report() {
      StringBuilder text = new StringBuilder(line());
      list(text, "JVM deaths", deathFindings);
      list(text, "unclear errors", unclearFindings);
      list(text, "wrong results", wrongFindings);
      if (deaths + unclear + wrong > 0) {
        text.append("\nReplay one input: -Dsparkinfer.fuzz.seed=").append(seed).append(" -Dsparkinfer.fuzz.from=<input>");
      }
      return text.toString();
    }

    private static void list(StringBuilder text, String title, List<String> findings) {
      if (!findings.isEmpty()) {
        text.append("\n").append(title).append(":");
        findings.stream().limit(LISTED).forEach(finding -> text.append("\n  ").append(finding));
        if (findings.size() > LISTED) {
          text.append("\n  ... and ").append(findings.size() - LISTED).append(" more");
        }
      }
    }
  }

  private FuzzRunner() {}

  static long seconds() {
    return Long.getLong("sparkinfer.fuzz.seconds", DEFAULT_SECONDS);
  }

  static long seed() {
    return Long.getLong("sparkinfer.fuzz.seed", DEFAULT_SEED);
  }

  /**
   * Runs children until they spent the budget on inputs: a child's start (Spark, the first model
   * load) is not counted, so a slow machine still tries inputs for the whole budget. A wall-clock
   * bound of four budgets and three minutes stops a run whose children keep dying at start.
   */
  static Summary run(String target, Class<?> main, Path folder) throws Exception {
    Summary summary = new Summary(target, seed());
    long budget = TimeUnit.SECONDS.toMillis(seconds());
    long wallDeadline = System.currentTimeMillis() + 4 * budget + TimeUnit.MINUTES.toMillis(3);
    long next = Long.getLong("sparkinfer.fuzz.from", 0L);
    for (int child = 0; summary.fuzzMillis < budget && System.currentTimeMillis() < wallDeadline; child++) {
      Long resume = runChild(summary, main, folder, child, next, budget - summary.fuzzMillis);
      if (resume == null) {
        break;
      }
      next = resume;
    }
    System.out.println(summary.report());
    return summary;
  }

  /** One child JVM from input {@code first}; returns the input to go on from after a death, or null when done. */
  private static Long runChild(Summary summary, Class<?> main, Path folder, int child, long first, long millisLeft)
      throws Exception {
    Path log = folder.resolve("child-" + child + ".log");
    Process process = new ProcessBuilder(command(main, folder, first, millisLeft, summary.seed))
        .directory(folder.toFile()).redirectError(log.toFile()).start();
    BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    Thread reader = new Thread(() -> {
      try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line = in.readLine(); line != null; line = in.readLine()) {
          lines.add(line);
        }
      } catch (IOException e) {
        lines.add(FuzzChild.PREFIX + "READ-FAILED " + e);
      }
    }, "fuzz-child-output");
    reader.setDaemon(true);
    reader.start();
    long inFlight = -1;
    String inFlightDescription = "";
    long inFlightSince = System.nanoTime();
    boolean started = false;
    boolean hung = false;
    long firstInput = 0;
    try {
      while (true) {
        String line = lines.poll(1, TimeUnit.SECONDS);
        if (line == null) {
          if (!process.isAlive() && !reader.isAlive() && lines.isEmpty()) {
            break;
          }
          if (inFlight >= 0 && System.nanoTime() - inFlightSince > TimeUnit.SECONDS.toNanos(HANG_SECONDS)) {
            hung = true;
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
            break;
          }
          continue;
        }
        if (!line.startsWith(FuzzChild.PREFIX)) {
          continue;
        }
        String[] parts = line.substring(FuzzChild.PREFIX.length()).split(" ", 4);
        if (parts[0].equals("DONE")) {
          summary.fuzzMillis += started ? TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - firstInput) : 0;
          process.waitFor(60, TimeUnit.SECONDS);
          return null;
        } else if (parts[0].equals("INPUT")) {
          if (!started) {
            firstInput = System.nanoTime();
          }
          started = true;
          inFlight = Long.parseLong(parts[1]);
          inFlightDescription = parts.length > 2 ? String.join(" ", java.util.Arrays.asList(parts).subList(2, parts.length)) : "";
          inFlightSince = System.nanoTime();
        } else if (parts[0].equals("OUTCOME")) {
          record(summary, Long.parseLong(parts[1]), FuzzChild.Outcome.valueOf(parts[2]),
              parts.length > 3 ? parts[3] : "", inFlightDescription);
          inFlight = -1;
        }
      }
      int status = process.waitFor();
      if (!started) {
        throw new AssertionError("The fuzz child JVM ended (status " + status + ") before its first input:\n"
            + tail(log));
      }
      if (inFlight < 0) {
        // Died between inputs: nothing to blame; go on after the last one reported.
        inFlight = first - 1;
      }
      summary.fuzzMillis += TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - firstInput);
      summary.tried++;
      summary.deaths++;
      summary.deathFindings.add("seed " + summary.seed + " input " + inFlight + " [" + inFlightDescription + "]: "
          + (hung ? "no outcome within " + HANG_SECONDS + " s, killed" : "exit status " + status) + crashFrame(folder, log));
      return inFlight + 1;
    } finally {
      process.destroyForcibly();
    }
  }

  private static void record(Summary summary, long index, FuzzChild.Outcome outcome, String detail, String input) {
    summary.tried++;
    String finding = "seed " + summary.seed + " input " + index + " [" + input + "]: " + detail;
    switch (outcome) {
      case REFUSED:
        summary.refusals++;
        break;
      case UNCLEAR:
        summary.unclear++;
        summary.unclearFindings.add(finding);
        break;
      case WRONG:
        summary.wrong++;
        summary.wrongFindings.add(finding);
        break;
      default:
        break;
    }
  }

  private static List<String> command(Class<?> main, Path folder, long first, long millisLeft, long seed) throws IOException {
    Path logging = folder.resolve("log4j2.properties");
    Files.writeString(logging, String.join("\n",
        "rootLogger.level = error",
        "rootLogger.appenderRef.err.ref = err",
        "appender.err.type = Console",
        "appender.err.name = err",
        "appender.err.target = SYSTEM_ERR",
        "appender.err.layout.type = PatternLayout",
        "appender.err.layout.pattern = %p %c{1}: %m%n"));
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("-Xmx1g");
    command.add("-Xss1m");
    command.add("-XX:ErrorFile=" + folder.resolve("hs_err_pid%p.log"));
    command.add("-XX:-CreateCoredumpOnCrash");
    command.add("-Dlog4j2.configurationFile=" + logging.toUri());
    // The module opens Spark needs, as the test JVM was started with them.
    ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(argument -> argument.startsWith("--add-opens") || argument.startsWith("-Djdk.reflect")
            || argument.startsWith("-Dio.netty"))
        .forEach(command::add);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(main.getName());
    command.add(String.valueOf(seed));
    command.add(String.valueOf(first));
    command.add(String.valueOf(millisLeft));
    command.add(folder.toString());
    return command;
  }

  /** The native frame an hs_err file names, or the log's fatal-error lines. */
  private static String crashFrame(Path folder, Path log) throws IOException {
    StringBuilder frame = new StringBuilder();
    try (Stream<Path> files = Files.list(folder)) {
      for (Path file : files.filter(f -> f.getFileName().toString().startsWith("hs_err")).sorted().toList()) {
        Path seen = folder.resolve("seen-" + file.getFileName());
        if (Files.exists(seen)) {
          continue;
        }
        Files.move(file, seen);
        frame.append(", ").append(file.getFileName()).append(":");
        Files.readAllLines(seen, StandardCharsets.ISO_8859_1).stream()
            .filter(line -> line.startsWith("# SIGSEGV") || line.startsWith("# SIGBUS") || line.startsWith("# C  [")
                || line.startsWith("# J ") || line.startsWith("# V  [") || line.startsWith("# Internal Error"))
            .limit(3).forEach(line -> frame.append(" ").append(line.substring(2).trim()));
      }
    }
    if (frame.length() == 0) {
      frame.append(", log: ").append(tail(log).replace('\n', ' '));
    }
    return frame.toString();
  }

  private static String tail(Path log) throws IOException {
    List<String> lines = Files.exists(log) ? Files.readAllLines(log, StandardCharsets.ISO_8859_1) : List.of();
    return String.join("\n", lines.subList(Math.max(0, lines.size() - 8), lines.size()));
  }
}
