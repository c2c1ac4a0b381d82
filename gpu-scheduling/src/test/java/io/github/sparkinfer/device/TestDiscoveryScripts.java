package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the discovery scripts as Spark would, with fake nvidia-smi and npu-smi commands first on
 * PATH that print the output of the real ones, and reads what they print with Spark's own parser.
 */
class TestDiscoveryScripts {
  // nvidia-smi --query-gpu=index --format=csv,noheader on a machine with four GPUs.
  private static final String FOUR_GPUS = "0\n1\n2\n3\n";

  // npu-smi info -m on a server with two Atlas 300I Duo cards: two NPU chips and a management
  // chip (Mcu, no logic id) under each NPU ID.
  private static final String DUO_CARDS_MAPPING =
      "        NPU ID                         Chip ID                        Chip Logic ID      "
          + "            Chip Name\n"
          + "        0                              0                              0            "
          + "                  Ascend 310P3\n"
          + "        0                              1                              1            "
          + "                  Ascend 310P3\n"
          + "        0                              2                              -            "
          + "                  Mcu\n"
          + "        1                              0                              2            "
          + "                  Ascend 310P3\n"
          + "        1                              1                              3            "
          + "                  Ascend 310P3\n"
          + "        1                              2                              -            "
          + "                  Mcu\n";

  // npu-smi info -l on the same server: NPU IDs are cards, not the chips CANN uses.
  private static final String DUO_CARDS_LIST =
      "        Total Count                    : 2\n"
          + "\n"
          + "        NPU ID                         : 0\n"
          + "        Chip Count                     : 2\n"
          + "\n"
          + "        NPU ID                         : 1\n"
          + "        Chip Count                     : 2\n";

  // npu-smi info -l on a server of eight single-chip NPUs (Atlas 800, Ascend 910B).
  private static final String EIGHT_NPUS_LIST = eightNpusList();

  @TempDir Path temp;
  private Path scripts;
  private Path fakeBin;

  @BeforeEach
  void extractScripts() throws IOException {
    scripts = temp.resolve("scripts");
    fakeBin = Files.createDirectories(temp.resolve("bin"));
    assertThat(DiscoveryScripts.extractTo(scripts))
        .containsExactly(
            scripts.resolve(DiscoveryScripts.GPU_SCRIPT),
            scripts.resolve(DiscoveryScripts.NPU_SCRIPT));
  }

  @Test
  void extractedScriptsAreExecutableCopiesOfTheResources() throws IOException {
    for (String script : List.of(DiscoveryScripts.GPU_SCRIPT, DiscoveryScripts.NPU_SCRIPT)) {
      Path file = scripts.resolve(script);
      assertThat(Files.getPosixFilePermissions(file))
          .isEqualTo(PosixFilePermissions.fromString("rwxr-xr-x"));
      // Against the resource read here, not through DiscoveryScripts.text, which wrote the file.
      String resource;
      try (java.io.InputStream in = TestDiscoveryScripts.class.getResourceAsStream(
          "/io/github/sparkinfer/device/discovery/" + script)) {
        assertThat(in).as(script + " on the class path").isNotNull();
        resource = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      }
      assertThat(Files.readString(file)).isEqualTo(resource).startsWith("#!/usr/bin/env bash\n");
    }
    // Extracting again replaces the scripts and leaves no temporary file behind.
    Files.writeString(scripts.resolve(DiscoveryScripts.GPU_SCRIPT), "stale");
    DiscoveryScripts.extractTo(scripts);
    assertThat(Files.readString(scripts.resolve(DiscoveryScripts.GPU_SCRIPT)))
        .isEqualTo(DiscoveryScripts.text(DiscoveryScripts.GPU_SCRIPT));
    try (var files = Files.list(scripts)) {
      assertThat(files).hasSize(2);
    }
  }

  @Test
  void printsTheSparkSettingsThatUseTheScripts() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DiscoveryScripts.printSettings(
        List.of(
            scripts.resolve(DiscoveryScripts.GPU_SCRIPT),
            scripts.resolve(DiscoveryScripts.NPU_SCRIPT)),
        new PrintStream(bytes, true, StandardCharsets.UTF_8));

    assertThat(bytes.toString(StandardCharsets.UTF_8))
        .contains(
            "spark.executor.resource.gpu.discoveryScript="
                + scripts.resolve(DiscoveryScripts.GPU_SCRIPT))
        .contains(
            "spark.worker.resource.gpu.discoveryScript="
                + scripts.resolve(DiscoveryScripts.GPU_SCRIPT))
        .contains(
            "spark.executor.resource.npu.discoveryScript="
                + scripts.resolve(DiscoveryScripts.NPU_SCRIPT));
  }

  @Test
  void gpusAreNvidiaSmiIndices() throws Exception {
    fake("nvidia-smi", FOUR_GPUS, 0);

    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of()), "0", "1", "2", "3");
  }

  @Test
  void gpuLinesAreTrimmedAndNonIndicesSkipped() throws Exception {
    fake("nvidia-smi", "0\r\n 1 \nWARNING: infoROM is corrupted at gpu 0000:01:00.0\n\n", 0);

    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of()), "0", "1");
  }

  @Test
  void noGpuWhenNvidiaSmiFindsNone() throws Exception {
    // What nvidia-smi prints, with status 6, on a machine whose driver sees no GPU.
    fake("nvidia-smi", "No devices were found\n", 6);

    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of()));
  }

  @Test
  void noGpuWhenTheDriverIsMissing() throws Exception {
    fake(
        "nvidia-smi",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure"
            + " that the latest NVIDIA driver is installed and running.\n",
        9);

    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of()));
  }

  @Test
  void noGpuWithoutNvidiaSmi() throws Exception {
    assertGpus(
        run(
            DiscoveryScripts.GPU_SCRIPT,
            Map.of("SPARKINFER_NVIDIA_SMI", temp.resolve("no-such-nvidia-smi").toString())));
  }

  @Test
  void cudaVisibleDevicesRenumbersTheGpus() throws Exception {
    fake("nvidia-smi", FOUR_GPUS, 0);

    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of("CUDA_VISIBLE_DEVICES", "2,3")), "0", "1");
    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of("CUDA_VISIBLE_DEVICES", "3")), "0");
    // CUDA stops at the first entry that names no GPU.
    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of("CUDA_VISIBLE_DEVICES", "1,7,2")), "0");
    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of("CUDA_VISIBLE_DEVICES", "")));
    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of("CUDA_VISIBLE_DEVICES", "-1")));
    assertGpus(run(DiscoveryScripts.GPU_SCRIPT, Map.of("CUDA_VISIBLE_DEVICES", "NoDevFiles")));
    assertGpus(
        run(
            DiscoveryScripts.GPU_SCRIPT,
            Map.of("CUDA_VISIBLE_DEVICES", "GPU-4a2f8c1e-9b6d-4e3a-8f0c-1d2e3f4a5b6c")),
        "0");
  }

  @Test
  void gpuResourceNameCanBeChanged() throws Exception {
    fake("nvidia-smi", "0\n", 0);

    ResourceInformation resource =
        run(DiscoveryScripts.GPU_SCRIPT, Map.of("SPARKINFER_GPU_RESOURCE_NAME", "nvidia.com-gpu"));

    assertThat(resource.name()).isEqualTo("nvidia.com-gpu");
    assertThat(resource.addresses()).containsExactly("0");
  }

  @Test
  void invalidResourceNameFailsTheScript() throws Exception {
    Result result =
        execute(DiscoveryScripts.GPU_SCRIPT, Map.of("SPARKINFER_GPU_RESOURCE_NAME", "gpu\"}"));

    assertThat(result.status).isEqualTo(1);
    assertThat(result.stdout).isEmpty();
    assertThat(result.stderr).contains("invalid resource name 'gpu\"}'");
  }

  @Test
  void npusAreChipLogicIdsOfTheMapping() throws Exception {
    fakeNpuSmi(DUO_CARDS_MAPPING, 0, DUO_CARDS_LIST, 0);

    // Four NPU chips on two cards; the management chips are skipped.
    assertNpus(run(DiscoveryScripts.NPU_SCRIPT, Map.of()), "0", "1", "2", "3");
  }

  @Test
  void npusAreNpuIdsWhenTheMappingIsNotAvailable() throws Exception {
    fakeNpuSmi("Error: unknown option -m\n", 1, EIGHT_NPUS_LIST, 0);

    assertNpus(run(DiscoveryScripts.NPU_SCRIPT, Map.of()), "0", "1", "2", "3", "4", "5", "6", "7");
  }

  @Test
  void npusAreNpuIdsWhenTheMappingListsNoChip() throws Exception {
    fakeNpuSmi("        NPU ID    Chip ID    Chip Logic ID    Chip Name\n", 0, DUO_CARDS_LIST, 0);

    assertNpus(run(DiscoveryScripts.NPU_SCRIPT, Map.of()), "0", "1");
  }

  @Test
  void noNpuWhenNpuSmiListsNone() throws Exception {
    fakeNpuSmi("", 0, "        Total Count                    : 0\n", 0);

    assertNpus(run(DiscoveryScripts.NPU_SCRIPT, Map.of()));
  }

  @Test
  void noNpuWhenNpuSmiFails() throws Exception {
    fakeNpuSmi(
        "dcmi model initialized failed, because the device is used. ret is -8020\n",
        1,
        "dcmi model initialized failed, because the device is used. ret is -8020\n",
        1);

    assertNpus(run(DiscoveryScripts.NPU_SCRIPT, Map.of()));
  }

  @Test
  void noNpuWithoutNpuSmi() throws Exception {
    assertNpus(
        run(
            DiscoveryScripts.NPU_SCRIPT,
            Map.of("SPARKINFER_NPU_SMI", temp.resolve("no-such-npu-smi").toString())));
  }

  @Test
  void ascendVisibleDevicesRenumbersTheNpus() throws Exception {
    fakeNpuSmi(DUO_CARDS_MAPPING, 0, DUO_CARDS_LIST, 0);

    assertNpus(
        run(DiscoveryScripts.NPU_SCRIPT, Map.of("ASCEND_RT_VISIBLE_DEVICES", "2,3")), "0", "1");
    assertNpus(run(DiscoveryScripts.NPU_SCRIPT, Map.of("ASCEND_RT_VISIBLE_DEVICES", "1,9")), "0");
    assertNpus(run(DiscoveryScripts.NPU_SCRIPT, Map.of("ASCEND_RT_VISIBLE_DEVICES", "")));
  }

  @Test
  void npuResourceNameCanBeChanged() throws Exception {
    fakeNpuSmi(DUO_CARDS_MAPPING, 0, DUO_CARDS_LIST, 0);

    ResourceInformation resource =
        run(DiscoveryScripts.NPU_SCRIPT, Map.of("SPARKINFER_NPU_RESOURCE_NAME", "ascend"));

    assertThat(resource.name()).isEqualTo("ascend");
    assertThat(resource.addresses()).hasSize(4);
  }

  private static void assertGpus(ResourceInformation resource, String... addresses) {
    assertThat(resource.name()).isEqualTo("gpu");
    assertThat(resource.addresses()).containsExactly(addresses);
  }

  private static void assertNpus(ResourceInformation resource, String... addresses) {
    assertThat(resource.name()).isEqualTo("npu");
    assertThat(resource.addresses()).containsExactly(addresses);
  }

  /** A fake command that prints {@code output} and exits with {@code status}. */
  private void fake(String command, String output, int status) throws IOException {
    Path printed = fakeBin.resolve(command + ".out");
    Files.writeString(printed, output);
    script(command, "cat '" + printed + "'\nexit " + status + "\n");
  }

  /** A fake npu-smi answering info -m and info -l. */
  private void fakeNpuSmi(String mapping, int mappingStatus, String list, int listStatus)
      throws IOException {
    Files.writeString(fakeBin.resolve("mapping.out"), mapping);
    Files.writeString(fakeBin.resolve("list.out"), list);
    script(
        "npu-smi",
        "if [ \"$1 $2\" = 'info -m' ]; then cat '"
            + fakeBin.resolve("mapping.out")
            + "'; exit "
            + mappingStatus
            + "; fi\n"
            + "if [ \"$1 $2\" = 'info -l' ]; then cat '"
            + fakeBin.resolve("list.out")
            + "'; exit "
            + listStatus
            + "; fi\n"
            + "echo \"unexpected arguments: $*\" >&2\nexit 2\n");
  }

  private void script(String command, String body) throws IOException {
    Path file = fakeBin.resolve(command);
    Files.writeString(file, "#!/bin/sh\n" + body);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  /** Runs the script, checks it succeeded, and parses its output as Spark does. */
  private ResourceInformation run(String script, Map<String, String> environment) throws Exception {
    Result result = execute(script, environment);
    assertThat(result.status).as("status; stderr: %s", result.stderr).isZero();
    assertThat(result.stdout).endsWith("}\n").doesNotContain(" ");
    // Spark reads discovery output with ResourceInformation.parseJson (private[spark] in Scala,
    // public to Java), so this is exactly what an executor would make of it.
    return ResourceInformation.parseJson(result.stdout);
  }

  private Result execute(String script, Map<String, String> environment) throws Exception {
    ProcessBuilder builder = new ProcessBuilder(scripts.resolve(script).toString());
    Map<String, String> processEnvironment = builder.environment();
    // This machine's own settings must not leak into the scenarios.
    processEnvironment.remove("CUDA_VISIBLE_DEVICES");
    processEnvironment.remove("ASCEND_RT_VISIBLE_DEVICES");
    processEnvironment.put("PATH", fakeBin + ":" + System.getenv("PATH"));
    processEnvironment.putAll(environment);
    Path stdout = temp.resolve("stdout");
    Path stderr = temp.resolve("stderr");
    builder.redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
    Process process = builder.start();
    if (!process.waitFor(60, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError(script + " did not finish within 60 seconds");
    }
    return new Result(process.exitValue(), Files.readString(stdout), Files.readString(stderr));
  }

  private static String eightNpusList() {
    StringBuilder list = new StringBuilder("        Total Count                    : 8\n");
    for (int id = 0; id < 8; id++) {
      list.append("\n        NPU ID                         : ")
          .append(id)
          .append("\n        Chip Count                     : 1\n");
    }
    return list.toString();
  }

  private static final class Result {
    final int status;
    final String stdout;
    final String stderr;

    Result(int status, String stdout, String stderr) {
      this.status = status;
      this.stdout = stdout;
      this.stderr = stderr;
    }
  }
}
