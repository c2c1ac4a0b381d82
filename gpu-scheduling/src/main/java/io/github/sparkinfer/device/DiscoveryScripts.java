package io.github.sparkinfer.device;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * Spark resource discovery scripts for the accelerators sparkinfer binds tasks to, shipped in this
 * jar (and in the repository under src/main/resources/io/github/sparkinfer/device/discovery):
 * {@value #GPU_SCRIPT} lists NVIDIA GPUs with nvidia-smi, {@value #NPU_SCRIPT} lists Ascend NPUs
 * with npu-smi. Each prints Spark's resource JSON, with no addresses on a machine without such
 * devices. Spark runs them from a local path, so they must be extracted first:
 *
 * <pre>
 * java -cp sparkinfer-gpu-scheduling.jar io.github.sparkinfer.device.DiscoveryScripts /opt/sparkinfer
 * </pre>
 *
 * <p>then set {@code spark.executor.resource.gpu.discoveryScript} (and in standalone mode {@code
 * spark.worker.resource.gpu.discoveryScript}) to /opt/sparkinfer/{@value #GPU_SCRIPT}. The
 * addresses they print are device indices, which {@link DeviceResolver} turns into {@code
 * cuda:<index>} and {@code npu:<index>}.
 */
public final class DiscoveryScripts {
  /** Lists NVIDIA GPUs as the resource gpu (nvidia-smi --query-gpu=index). */
  public static final String GPU_SCRIPT = "sparkinfer-gpu-discovery.sh";

  /** Lists Ascend NPUs as the resource npu (npu-smi info -m, else npu-smi info -l). */
  public static final String NPU_SCRIPT = "sparkinfer-npu-discovery.sh";

  private static final String RESOURCE_FOLDER = "discovery/";

  private DiscoveryScripts() {}

  /**
   * Writes both scripts into {@code folder} (created if missing), executable by everyone, replacing
   * earlier copies atomically so that a Spark process running one never reads half a file.
   *
   * @return the scripts' paths, GPU first
   */
  public static List<Path> extractTo(Path folder) throws IOException {
    Files.createDirectories(folder);
    List<Path> scripts = new ArrayList<>();
    for (String script : List.of(GPU_SCRIPT, NPU_SCRIPT)) {
      scripts.add(extract(script, folder));
    }
    return scripts;
  }

  /** The text of {@code script} ({@link #GPU_SCRIPT} or {@link #NPU_SCRIPT}). */
  static String text(String script) {
    try (InputStream input = open(script)) {
      return new String(input.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read " + script + " from the sparkinfer jar", e);
    }
  }

  /**
   * Extracts the scripts into the folder given as the one argument and prints the Spark settings
   * that use them; exits with status 2 and a usage line otherwise.
   */
  public static void main(String[] arguments) throws IOException {
    if (arguments.length != 1) {
      System.err.println(
          "Usage: java -cp sparkinfer-gpu-scheduling.jar "
              + DiscoveryScripts.class.getName()
              + " <folder>\nWrites "
              + GPU_SCRIPT
              + " and "
              + NPU_SCRIPT
              + " into <folder> for spark.{executor,worker}.resource.{gpu,npu}.discoveryScript");
      System.exit(2);
      return;
    }
    List<Path> scripts = extractTo(Paths.get(arguments[0]).toAbsolutePath());
    printSettings(scripts, System.out);
  }

  static void printSettings(List<Path> scripts, PrintStream out) {
    String[] resources = {"gpu", "npu"};
    for (int i = 0; i < scripts.size(); i++) {
      out.println("Wrote " + scripts.get(i) + "; use it with:");
      for (String process : List.of("executor", "worker")) {
        out.println(
            "  spark."
                + process
                + ".resource."
                + resources[i]
                + ".discoveryScript="
                + scripts.get(i));
      }
    }
  }

  private static Path extract(String script, Path folder) throws IOException {
    Path target = folder.resolve(script);
    Path temporary = folder.resolve(script + "." + UUID.randomUUID() + ".tmp");
    try {
      try (InputStream input = open(script)) {
        Files.copy(input, temporary);
      }
      try {
        Files.setPosixFilePermissions(temporary, PosixFilePermissions.fromString("rwxr-xr-x"));
      } catch (UnsupportedOperationException e) {
        // Not a POSIX file system (Windows): Spark's scripts do not run there anyway.
        temporary.toFile().setExecutable(true, false);
      }
      Files.move(
          temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      return target;
    } finally {
      Files.deleteIfExists(temporary);
    }
  }

  private static InputStream open(String script) throws IOException {
    if (!script.equals(GPU_SCRIPT) && !script.equals(NPU_SCRIPT)) {
      throw new IllegalArgumentException(
          "Unknown discovery script '"
              + script
              + "': expected "
              + GPU_SCRIPT
              + " or "
              + NPU_SCRIPT);
    }
    InputStream input = DiscoveryScripts.class.getResourceAsStream(RESOURCE_FOLDER + script);
    if (input == null) {
      throw new IOException(
          script + " is missing from the sparkinfer-gpu-scheduling jar: the jar is incomplete");
    }
    return input;
  }
}
