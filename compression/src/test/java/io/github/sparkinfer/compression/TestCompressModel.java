package io.github.sparkinfer.compression;

import static io.github.sparkinfer.compression.OrtTesting.operatorCounts;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestCompressModel {
  @TempDir Path directory;

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int run(String... args) {
    return CompressModel.run(
        args,
        new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  private String out() {
    return out.toString(StandardCharsets.UTF_8);
  }

  private String err() {
    return err.toString(StandardCharsets.UTF_8);
  }

  private Path mlp(int... sizes) throws Exception {
    Path file = directory.resolve("mlp.onnx");
    MultilayerPerceptronModel.builder().layerSizes(sizes).seed(1).build().writeTo(file);
    return file;
  }

  @Test
  void writesEachModeAndPrintsWhatItRewrote() throws Exception {
    Path in = mlp(128, 256, 128);

    Path int8 = directory.resolve("out/m.int8.onnx");
    assertThat(
            run("--in", in.toString(), "--out", int8.toString(), "--mode", "int8", "--per-channel",
                "--int8-scheme", "u8u8"))
        .as(err())
        .isZero();
    assertThat(operatorCounts(OnnxModel.read(int8))).containsEntry("MatMulInteger", 2L);
    assertThat(OrtTesting.initializer(OnnxModel.read(int8), "layer0.weight_transposed_quantized").getDataType())
        .isEqualTo(OnnxElementType.UINT8.onnxNumber());
    assertThat(out())
        .contains("int8: rewrote 2, left 0")
        .contains("int8 scheme u8u8: set explicitly")
        .contains("MatMulInteger: 0 -> 2")
        .contains("rewrote Gemm Gemm_0: Gemm features x layer0.weight [K=128, N=256] (transB)")
        .contains("per-channel")
        .contains("wrote " + int8);
    assertThat(err()).isEmpty();

    // auto: the scheme for this CPU, and a note when the file would saturate on other CPUs.
    Int8Scheme chosen = Int8Scheme.forThisProcessor();
    assertThat(run("--in", in.toString(), "--out", int8.toString(), "--mode", "int8", "--int8-scheme", "auto"))
        .isZero();
    assertThat(out()).contains("int8 scheme " + chosen.shortName() + ": chosen for this CPU");
    if (chosen == Int8Scheme.U8S8) {
      assertThat(err()).contains("--int8-scheme auto chose u8s8", "use --int8-scheme u8s8-paired");
    } else {
      assertThat(err()).isEmpty();
    }
    err.reset();

    Path fp16 = directory.resolve("m.fp16.onnx");
    assertThat(run("--in", in.toString(), "--out", fp16.toString(), "--mode", "FP16")).isZero();
    assertThat(OnnxModel.read(fp16).proto().getGraph().getInitializer(0).getDataType())
        .isEqualTo(OnnxElementType.FLOAT16.onnxNumber());

    Path int4 = directory.resolve("m.int4.onnx");
    assertThat(
            run(
                "--in",
                in.toString(),
                "--out",
                int4.toString(),
                "--mode",
                "int4",
                "--block-size",
                "128"))
        .isZero();
    assertThat(operatorCounts(OnnxModel.read(int4))).containsEntry("com.microsoft:MatMulNBits", 2L);
    assertThat(out()).contains("block size 128");
    assertThat(err()).isEmpty();
  }

  @Test
  void pruneModeRemovesHiddenUnitsAndSaysHowMany() throws Exception {
    Path in = mlp(64, 256, 16);
    Path pruned = directory.resolve("out/mlp.pruned.onnx");
    assertThat(run("--in", in.toString(), "--out", pruned.toString(), "--mode", "prune", "--ratio", "0.5"))
        .as(err()).isZero();
    assertThat(out()).contains("pruned layer0.weight: 256 → 128 hidden units").contains("wrote " + pruned);
    assertThat(Files.size(pruned)).isLessThan(Files.size(in));
    assertThat(run("--in", in.toString(), "--out", pruned.toString(), "--mode", "prune")).isEqualTo(2);
    assertThat(err()).contains("--mode prune needs --ratio");
    assertThat(run("--in", in.toString(), "--out", pruned.toString(), "--mode", "int8", "--ratio", "0.5")).isEqualTo(2);
    assertThat(err()).contains("--ratio applies to --mode prune or magnitude, not int8");
  }

  @Test
  void magnitudeModeSaysItShrinksNothing() throws Exception {
    Path in = mlp(64, 256, 16);
    Path zeroed = directory.resolve("out/mlp.magnitude.onnx");
    assertThat(run("--in", in.toString(), "--out", zeroed.toString(), "--mode", "magnitude", "--ratio", "0.75"))
        .as(err()).isZero();
    assertThat(out()).contains("zeroed 15,360 of 20,480 weights (75.0 %) in 2 matrices")
        .contains("the file is as large and the model as fast on dense kernels").contains("use --mode prune");
    assertThat(run("--in", in.toString(), "--out", zeroed.toString(), "--mode", "magnitude")).isEqualTo(2);
    assertThat(err()).contains("--mode magnitude needs --ratio");
  }

  @Test
  void badArgumentsSayWhatIsWrongAndExitWith2() throws Exception {
    Path in = mlp(16, 8);
    String model = in.toString();
    String output = directory.resolve("out.onnx").toString();
    assertBadArguments(
        new String[] {"--in", model, "--out", output, "--mode", "int2"},
        "Unknown precision 'int2': use one of int8, fp16, int4");
    assertBadArguments(new String[] {"--in", model, "--mode", "int8"}, "missing --out");
    assertBadArguments(new String[] {"--in", model, "--out", output}, "missing --mode");
    assertBadArguments(
        new String[] {"--in", model, "--out", output, "--mode", "fp16", "--per-channel"},
        "--per-channel applies to --mode int8, not fp16");
    assertBadArguments(
        new String[] {"--in", model, "--out", output, "--mode", "int8", "--block-size", "32"},
        "--block-size applies to --mode int4, not int8");
    assertBadArguments(
        new String[] {"--in", model, "--out", output, "--mode", "int4", "--int8-scheme", "u8u8"},
        "--int8-scheme applies to --mode int8, not int4");
    assertBadArguments(
        new String[] {"--in", model, "--out", output, "--mode", "int8", "--int8-scheme", "s4"},
        "Unknown int8 scheme 's4': use u8s8, u8s8-paired, u8u8 or u8s8-reduced");
    assertBadArguments(
        new String[] {"--in", model, "--out", output, "--mode", "int4", "--block-size", "abc"},
        "--block-size takes a number, got 'abc'");
    assertBadArguments(
        new String[] {"--in", model, "--out", output, "--mode", "int4", "--block-size", "48"},
        "power of two of at least 16",
        "got 48");
    assertBadArguments(
        new String[] {
          "--in", directory.resolve("missing.onnx").toString(), "--out", output, "--mode", "int8"
        },
        "missing.onnx is not a readable file");
    assertBadArguments(
        new String[] {"--in", model, "--out", model, "--mode", "int8"}, "is the input model");
    assertBadArguments(
        new String[] {"--in", model, "--out", output, "--mode", "int8", "--fast"},
        "Unknown argument '--fast'");
    assertBadArguments(
        new String[] {"--in", model, "--out", output, "--mode"}, "--mode needs a value");
    assertThat(Files.exists(Path.of(output))).isFalse();
  }

  private void assertBadArguments(String[] args, String... messages) {
    out.reset();
    err.reset();
    assertThat(run(args)).as(String.join(" ", args)).isEqualTo(2);
    assertThat(err()).contains(messages).contains("Usage: CompressModel");
  }

  @Test
  void modelsItCannotCompressExitWith1() throws Exception {
    Path garbage = directory.resolve("garbage.onnx");
    Files.write(garbage, new byte[] {(byte) 0xff, (byte) 0xff, 1});
    assertThat(
            run(
                "--in",
                garbage.toString(),
                "--out",
                directory.resolve("o.onnx").toString(),
                "--mode",
                "int8"))
        .isEqualTo(1);
    assertThat(err()).contains("Cannot compress " + garbage);
  }

  @Test
  void helpPrintsUsage() {
    assertThat(run("--help")).isZero();
    assertThat(out()).contains("--mode int8|fp16|int4", "--per-channel", "--int8-scheme", "--block-size");
  }

  @Test
  void mainRunsAsACommandWithExitStatuses() throws Exception {
    Path in = mlp(64, 128, 64);
    Path output = directory.resolve("cli.int8.onnx");
    assertThat(java("--in", in.toString(), "--out", output.toString(), "--mode", "int8")).isZero();
    assertThat(operatorCounts(OnnxModel.read(output))).containsEntry("MatMulInteger", 2L);
    assertThat(java("--in", in.toString(), "--out", output.toString(), "--mode", "int3"))
        .isEqualTo(2);
  }

  private static int java(String... args) throws Exception {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(CompressModel.class.getName());
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    process.getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return process.exitValue();
  }
}
