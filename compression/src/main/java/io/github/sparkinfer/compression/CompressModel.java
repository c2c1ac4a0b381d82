package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.TreeSet;

/**
 * Command line: compresses an ONNX model file and prints what it rewrote.
 *
 * <pre>
 * java -cp sparkinfer-compression.jar io.github.sparkinfer.compression.CompressModel \
 *     --in m.onnx --out m.int8.onnx --mode int8|fp16|int4|prune|magnitude [--per-channel] [--ratio R]
 *     [--int8-scheme auto|u8s8|u8s8-paired|u8u8|u8s8-reduced] [--block-size 32|128] [--keep-float32 Op,Op]
 * </pre>
 *
 * <p>Exit status 0 on success, 1 when the model cannot be read, compressed or written, 2 for bad
 * arguments.
 */
public final class CompressModel {
  static final String USAGE =
      "Usage: CompressModel --in MODEL.onnx --out OUTPUT.onnx --mode int8|fp16|int4|prune|magnitude\n"
          + "         [--per-channel]        int8: one weight scale per output column\n"
          + "         [--int8-scheme S]      int8: auto (default: the fastest exact on this CPU), u8s8,\n"
          + "                                u8s8-paired (exact on every x86 CPU whose kernel adds pairs\n"
          + "                                in 16 bits, and where u8s8 is), u8u8 (exact on every CPU,\n"
          + "                                slow) or u8s8-reduced (7-bit weights)\n"
          + "         [--block-size N]       int4: values per block along K, a power of two >= 16"
          + " (default "
          + ModelCompressor.DEFAULT_BLOCK_SIZE
          + ")\n"
          + "         [--keep-float32 Op,Op] fp16: more operator types to keep in float32\n"
          + "         [--ratio R]            prune: share of each linear-activation-linear chain's hidden\n"
          + "                                units to remove, 0 <= R < 1 (lowest weight-norm score first);\n"
          + "                                magnitude: share of each MatMul/Gemm weight matrix set to 0\n"
          + "                                (smallest first; the file stays as large and as fast)\n";

  private CompressModel() {}

  public static void main(String[] args) {
    int status = run(args, System.out, System.err);
    if (status != 0) {
      System.exit(status);
    }
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    Arguments arguments;
    try {
      arguments = Arguments.parse(args);
    } catch (IllegalArgumentException | IllegalStateException e) {
      err.println("Bad arguments: " + e.getMessage());
      err.print(USAGE);
      return 2;
    }
    if (arguments == null) {
      out.print(USAGE);
      return 0;
    }
    try {
      OnnxModel model = OnnxModel.read(arguments.in);
      if (arguments.pruner != null) {
        return prune(model, arguments, out);
      }
      if (arguments.magnitude != null) {
        MagnitudePruner.Result pruned = arguments.magnitude.prune(model);
        writeParent(arguments.out);
        pruned.model().writeTo(arguments.out);
        out.println(pruned);
        out.println("Unstructured: pair it with a file compressor or sparse kernels; for a smaller, faster model"
            + " use --mode prune");
        return 0;
      }
      CompressedModel compressed = arguments.compressor.compress(model);
      writeParent(arguments.out);
      compressed.model().writeTo(arguments.out);
      out.print(compressed.report());
      out.printf(
          Locale.ROOT,
          "wrote %s (%.1f MB, from %.1f MB)%n",
          arguments.out,
          Files.size(arguments.out) / 1e6,
          Files.size(arguments.in) / 1e6);
      warnAboutExternalData(compressed.model(), arguments, err);
      if (compressed.report().int8Scheme().orElse(null) == Int8Scheme.U8S8
          && arguments.compressor.int8Scheme().isEmpty()) {
        err.println("Note: --int8-scheme auto chose u8s8, exact on this CPU and on CPUs with VNNI, AMX or ARM"
            + " dot products; on x86 CPUs without VNNI its sums saturate. For a file that runs on other CPUs,"
            + " use --int8-scheme u8s8-paired (exact on those too, as fast, very nearly as accurate)");
      }
      return 0;
    } catch (IOException e) {
      err.println("Cannot compress " + arguments.in + " into " + arguments.out + ": " + e);
      return 1;
    } catch (IllegalArgumentException e) {
      err.println("Cannot compress " + arguments.in + ": " + e.getMessage());
      return 1;
    }
  }

  private static int prune(OnnxModel model, Arguments arguments, PrintStream out) throws IOException {
    StructuredPruner.Result pruned = arguments.pruner.prune(model);
    writeParent(arguments.out);
    pruned.model().writeTo(arguments.out);
    if (pruned.chains().isEmpty()) {
      out.println("no linear → elementwise → linear chain to prune: the model is written as it was");
    }
    for (StructuredPruner.Chain chain : pruned.chains()) {
      out.println("pruned " + chain);
    }
    out.printf(Locale.ROOT, "wrote %s (%.1f MB, from %.1f MB)%n", arguments.out, Files.size(arguments.out) / 1e6,
        Files.size(arguments.in) / 1e6);
    return 0;
  }

  private static void writeParent(Path out) throws IOException {
    Path parent = out.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
  }

  /** External data locations are relative to the model file: they break when it moves. */
  private static void warnAboutExternalData(OnnxModel model, Arguments arguments, PrintStream err) {
    Path from = arguments.in.toAbsolutePath().getParent();
    Path to = arguments.out.toAbsolutePath().getParent();
    if (Objects.equals(from, to)) {
      return;
    }
    TreeSet<String> locations = new TreeSet<>();
    for (TensorProto tensor : model.proto().getGraph().getInitializerList()) {
      if (Tensors.isExternal(tensor)) {
        for (StringStringEntryProto entry : tensor.getExternalDataList()) {
          if (entry.getKey().equals("location")) {
            locations.add(entry.getValue());
          }
        }
      }
    }
    if (!locations.isEmpty()) {
      err.println(
          "Note: the model keeps weights in external files, referenced relative to the model: copy "
              + String.join(", ", locations)
              + " from "
              + from
              + " to "
              + to);
    }
  }

  static final class Arguments {
    final Path in;
    final Path out;
    final ModelCompressor compressor;
    final StructuredPruner pruner;
    final MagnitudePruner magnitude;

    private Arguments(Path in, Path out, ModelCompressor compressor, StructuredPruner pruner,
        MagnitudePruner magnitude) {
      this.in = in;
      this.out = out;
      this.pruner = pruner;
      this.compressor = compressor;
      this.magnitude = magnitude;
    }

    /** Null for --help. */
    static Arguments parse(String[] args) {
      Path in = null;
      Path out = null;
      Precision precision = null;
      boolean perChannel = false;
      String int8Scheme = null;
      Integer blockSize = null;
      String keepFloat32 = null;
      boolean prune = false;
      boolean magnitude = false;
      Double ratio = null;
      for (int i = 0; i < args.length; i++) {
        String arg = args[i];
        switch (arg) {
          case "--help":
          case "-h":
            return null;
          case "--in":
            in = Path.of(value(args, ++i, arg));
            break;
          case "--out":
            out = Path.of(value(args, ++i, arg));
            break;
          case "--mode":
            {
              String mode = value(args, ++i, arg);
              prune = mode.trim().equalsIgnoreCase("prune");
              magnitude = mode.trim().equalsIgnoreCase("magnitude");
              precision = prune || magnitude ? null : Precision.fromShortName(mode);
              break;
            }
          case "--ratio":
            {
              String text = value(args, ++i, arg);
              try {
                ratio = Double.valueOf(text);
              } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--ratio takes a number from 0 to below 1, got '" + text + "'");
              }
              break;
            }
          case "--per-channel":
            perChannel = true;
            break;
          case "--int8-scheme":
            int8Scheme = value(args, ++i, arg);
            break;
          case "--block-size":
            {
              String text = value(args, ++i, arg);
              try {
                blockSize = Integer.valueOf(text);
              } catch (NumberFormatException e) {
                throw new IllegalArgumentException(
                    "--block-size takes a number, got '" + text + "'");
              }
              break;
            }
          case "--keep-float32":
            keepFloat32 = value(args, ++i, arg);
            break;
          default:
            throw new IllegalArgumentException("Unknown argument '" + arg + "'");
        }
      }
      List<String> missing = new ArrayList<>();
      if (in == null) {
        missing.add("--in");
      }
      if (out == null) {
        missing.add("--out");
      }
      if (precision == null && !prune && !magnitude) {
        missing.add("--mode");
      }
      if (!missing.isEmpty()) {
        throw new IllegalArgumentException(
            "--in, --out and --mode are required; missing " + String.join(", ", missing));
      }
      if (!Files.isRegularFile(in)) {
        throw new IllegalArgumentException("--in " + in + " is not a readable file");
      }
      if (in.toAbsolutePath().normalize().equals(out.toAbsolutePath().normalize())) {
        throw new IllegalArgumentException(
            "--out " + out + " is the input model: write the compressed model to another file");
      }
      if (prune || magnitude) {
        String mode = prune ? "prune" : "magnitude";
        if (ratio == null) {
          throw new IllegalArgumentException("--mode " + mode + " needs --ratio R (0 <= R < 1)");
        }
        if (perChannel || int8Scheme != null || blockSize != null || keepFloat32 != null) {
          throw new IllegalArgumentException("--mode " + mode + " takes only --ratio");
        }
        return prune ? new Arguments(in, out, null, StructuredPruner.ofRatio(ratio), null)
            : new Arguments(in, out, null, null, MagnitudePruner.ofRatio(ratio));
      }
      if (ratio != null) {
        throw new IllegalArgumentException("--ratio applies to --mode prune or magnitude, not " + precision.shortName());
      }
      ModelCompressor.Builder builder = ModelCompressor.builder().precision(precision);
      if (perChannel) {
        requireMode(precision, Precision.INT8, "--per-channel");
        builder.perChannel(true);
      }
      if (int8Scheme != null) {
        requireMode(precision, Precision.INT8, "--int8-scheme");
        if (!int8Scheme.trim().equalsIgnoreCase("auto")) {
          builder.int8Scheme(Int8Scheme.fromShortName(int8Scheme));
        }
      }
      if (blockSize != null) {
        requireMode(precision, Precision.INT4, "--block-size");
        builder.blockSize(blockSize);
      }
      if (keepFloat32 != null) {
        requireMode(precision, Precision.FLOAT16, "--keep-float32");
        builder.keepFloat32(keepFloat32.split(","));
      }
      return new Arguments(in, out, builder.build(), null, null);
    }

    private static void requireMode(Precision precision, Precision required, String option) {
      if (precision != required) {
        throw new IllegalArgumentException(
            option
                + " applies to --mode "
                + required.shortName()
                + ", not "
                + precision.shortName());
      }
    }

    private static String value(String[] args, int index, String option) {
      if (index >= args.length || args[index].startsWith("--")) {
        throw new IllegalArgumentException(option + " needs a value");
      }
      return args[index];
    }
  }
}
