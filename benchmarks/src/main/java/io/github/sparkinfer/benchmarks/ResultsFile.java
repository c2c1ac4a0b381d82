package io.github.sparkinfer.benchmarks;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * benchmarks/RESULTS.md: one {@code ## } section per benchmark. A benchmark replaces its own
 * section and leaves the others, so that benchmarks added later append theirs.
 */
final class ResultsFile {
  static final String PREAMBLE =
      String.join(
          "\n",
          "# Benchmark results",
          "",
          "Written by the programs in benchmarks/: each run replaces its own `## ` section and keeps"
              + " the others.",
          "Numbers hold for the machine and commit they name; compare runs on the same hardware"
              + " only.",
          "");

  private ResultsFile() {}

  /**
   * Replaces the section that starts with the line {@code heading} (up to the next {@code ## }
   * heading) with {@code heading} and {@code body}, or appends it when the file has none.
   */
  static void replaceSection(Path file, String heading, String body) throws IOException {
    List<String> lines =
        Files.exists(file)
            ? new ArrayList<>(Files.readAllLines(file, StandardCharsets.UTF_8))
            : new ArrayList<>(List.of(PREAMBLE.split("\n", -1)));
    int start = lines.indexOf(heading);
    int end;
    if (start < 0) {
      while (!lines.isEmpty() && lines.get(lines.size() - 1).isBlank()) {
        lines.remove(lines.size() - 1);
      }
      lines.add("");
      start = lines.size();
      end = start;
    } else {
      end = start + 1;
      while (end < lines.size() && !lines.get(end).startsWith("## ")) {
        end++;
      }
    }
    List<String> section = new ArrayList<>();
    section.add(heading);
    section.add("");
    section.addAll(List.of(body.strip().split("\n", -1)));
    if (end < lines.size()) {
      section.add("");
    }
    lines.subList(start, end).clear();
    lines.addAll(start, section);
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    Files.write(file, (String.join("\n", lines) + "\n").getBytes(StandardCharsets.UTF_8));
  }
}
