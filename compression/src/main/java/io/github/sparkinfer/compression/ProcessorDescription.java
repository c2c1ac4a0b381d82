package io.github.sparkinfer.compression;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The CPU this JVM runs on, as far as int8 kernels care: its model and which of the instruction
 * sets that decide ONNX Runtime's int8 kernels it has (from /proc/cpuinfo; only the architecture
 * elsewhere). Said in compression reports, test logs and benchmark results, so that every figure
 * names the CPU it came from.
 */
public final class ProcessorDescription {
  /** The flags that choose MLAS's int8 GEMM kernels on x86-64. */
  private static final List<String> INT8_FLAGS =
      List.of("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "amx_int8");

  private static final ProcessorDescription THIS = read(Path.of("/proc/cpuinfo"));

  private final String model;
  private final List<String> flags;
  private final int cores;

  private ProcessorDescription(String model, List<String> flags, int cores) {
    this.model = model;
    this.flags = List.copyOf(flags);
    this.cores = cores;
  }

  /** This JVM's CPU. */
  public static ProcessorDescription current() {
    return THIS;
  }

  /** "model name" of /proc/cpuinfo, or os.arch where that is not readable. */
  public String model() {
    return model;
  }

  /** Of avx2, avx512f, avx512bw, avx512vl, avx512_vnni, avx_vnni and amx_int8: those present. */
  public List<String> int8Flags() {
    return flags;
  }

  public boolean hasVnni() {
    return flags.contains("avx_vnni") || flags.contains("avx512_vnni");
  }

  /** Cores this JVM may use. */
  public int cores() {
    return cores;
  }

  /** For example "AMD EPYC 7B13, 2 cores, flags avx2 (no AVX-512, no VNNI)". */
  @Override
  public String toString() {
    String notes = "";
    if (flags.contains("avx2") || flags.contains("avx512f")) {
      notes = " (" + (flags.contains("avx512f") ? "AVX-512" : "no AVX-512") + ", "
          + (hasVnni() ? "VNNI" : "no VNNI") + ")";
    }
    return model + ", " + cores + " cores, flags " + (flags.isEmpty() ? "unknown" : String.join(" ", flags)) + notes;
  }

  static ProcessorDescription read(Path cpuinfo) {
    int cores = Runtime.getRuntime().availableProcessors();
    String model = System.getProperty("os.arch");
    List<String> present = new ArrayList<>();
    try (Stream<String> lines = Files.lines(cpuinfo)) {
      String[] found = new String[2];
      lines.forEach(line -> {
        int colon = line.indexOf(':');
        if (colon < 0) {
          return;
        }
        String key = line.substring(0, colon).trim();
        if (found[0] == null && key.equals("model name")) {
          found[0] = line.substring(colon + 1).trim();
        } else if (found[1] == null && key.equals("flags")) {
          found[1] = line.substring(colon + 1).trim();
        }
      });
      if (found[0] != null) {
        model = found[0];
      }
      if (found[1] != null) {
        Set<String> all = Set.copyOf(Arrays.asList(found[1].split("\\s+")));
        INT8_FLAGS.stream().filter(all::contains).forEach(present::add);
      }
    } catch (IOException | RuntimeException e) {
      // Not Linux, or not readable: the model stays the architecture, the flags unknown.
    }
    return new ProcessorDescription(model, present, cores);
  }
}
