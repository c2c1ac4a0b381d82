package io.github.sparkinfer.benchmarks;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes prompts-2048.txt: SentenceData.body(id) for ids 0 to 2047, one a line (UTF-8), the prompts of
 * hf_generate.py, the same text the Java benchmarks generate. Not part of the Maven build; from the repository root:
 *
 * <pre>
 * ./mvnw -B -ntp -o -q -pl benchmarks -am compile
 * javac -d /tmp/dump-prompts -cp benchmarks/target/classes benchmarks/generate/DumpPrompts.java
 * java -cp /tmp/dump-prompts:benchmarks/target/classes io.github.sparkinfer.benchmarks.DumpPrompts \
 *     benchmarks/generate/prompts-2048.txt 2048
 * </pre>
 */
public final class DumpPrompts {
  private DumpPrompts() {}

  public static void main(String[] arguments) throws Exception {
    Path out = Path.of(arguments.length > 0 ? arguments[0] : "prompts-2048.txt");
    int count = arguments.length > 1 ? Integer.parseInt(arguments[1]) : 2048;
    List<String> lines = new ArrayList<>();
    for (long id = 0; id < count; id++) {
      String body = SentenceData.body(id);
      if (body.indexOf('\n') >= 0 || body.indexOf('\r') >= 0) {
        throw new IllegalStateException("row " + id + " has a line break");
      }
      lines.add(body);
    }
    Files.write(out, lines, StandardCharsets.UTF_8);
  }
}
