package io.github.sparkinfer.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The JShell session of docs/your-code.md, run as it stands in the JDK's own jshell, with the flags and
 * the CLASSPATH the page gives: the runtime jar and Spark's jars, nothing else of sparkinfer. Its two
 * lines, Spark's predict() and the Java forward pass, must agree. Runs after packaging (failsafe).
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class TestJShellSession {
  private static final Path PAGE = Path.of("..", "docs", "your-code.md");
  private static final Pattern VALUES = Pattern.compile("^(predict|forward) \\[(.*)]$", Pattern.MULTILINE);

  @TempDir Path folder;

  @Test
  void theDocumentedSessionRunsInJShell() throws Exception {
    Path session = folder.resolve("session.jsh");
    Files.writeString(session, documentedSession(), StandardCharsets.UTF_8);
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "jshell").toString());
    for (String flag : System.getProperty("sparkinfer.spark.jvm.opens").trim().split("\\s+")) {
      command.add("-R" + flag);
    }
    command.add(session.toString());
    ProcessBuilder builder = new ProcessBuilder(command).directory(folder.toFile()).redirectErrorStream(true)
        .redirectOutput(folder.resolve("jshell.log").toFile());
    builder.environment().put("CLASSPATH", runtimeAndSparkJars());
    Process jshell = builder.start();
    boolean ended = jshell.waitFor(4, TimeUnit.MINUTES);
    if (!ended) {
      jshell.destroyForcibly();
    }
    String log = Files.readString(folder.resolve("jshell.log"), StandardCharsets.UTF_8);
    assertThat(ended).as("jshell ended; its output:\n%s", log).isTrue();
    assertThat(jshell.exitValue()).as("jshell's exit code; its output:\n%s", log).isZero();
    assertThat(log).as("jshell output").doesNotContain("Exception").doesNotContain("Error:");

    Matcher matcher = VALUES.matcher(log);
    float[][] values = new float[2][];
    while (matcher.find()) {
      String[] parts = matcher.group(2).split(",\\s*");
      float[] parsed = new float[parts.length];
      for (int i = 0; i < parts.length; i++) {
        parsed[i] = Float.parseFloat(parts[i]);
      }
      values[matcher.group(1).equals("predict") ? 0 : 1] = parsed;
    }
    assertThat(values[0]).as("predict line in:\n%s", log).isNotNull().hasSize(2);
    assertThat(values[1]).as("forward line in:\n%s", log).isNotNull().hasSize(2);
    for (int i = 0; i < 2; i++) {
      // fp32 ORT against the Java forward pass, as the other tests.
      assertThat(values[0][i]).as("score %d", i).isCloseTo(values[1][i], within(1e-5f));
    }
  }

  /** The java block after the page's "session:" marker, as a user would save it. */
  private static String documentedSession() throws Exception {
    String page = Files.readString(PAGE, StandardCharsets.UTF_8);
    int marker = page.indexOf("<!-- session:");
    assertThat(marker).as("the session marker in %s", PAGE).isPositive();
    int start = page.indexOf("```java\n", marker) + "```java\n".length();
    int end = page.indexOf("```", start);
    return page.substring(start, end);
  }

  /** The runtime jar and Spark's own jars from the test class path, nothing else of sparkinfer. */
  private static String runtimeAndSparkJars() {
    String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    return java.util.Arrays.stream(classPath.split(java.io.File.pathSeparator))
        .filter(entry -> entry.endsWith(".jar"))
        .filter(entry -> {
          String name = Path.of(entry).getFileName().toString();
          return (name.matches("sparkinfer-spark-runtime-[0-9.]+_[0-9.]+-.*") && !name.contains("without"))
              || !name.matches("(sparkinfer-|langchain4j|junit-|assertj-|opentest4j-|apiguardian-|surefire|failsafe).*");
        })
        .collect(Collectors.joining(java.io.File.pathSeparator));
  }
}
