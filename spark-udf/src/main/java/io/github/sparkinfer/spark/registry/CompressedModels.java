package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.spark.PredictionException;

import io.github.sparkinfer.compression.CompressedModel;
import io.github.sparkinfer.compression.Int8Scheme;
import io.github.sparkinfer.compression.ModelCompressor;
import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.compression.Precision;
import io.github.sparkinfer.compression.StructuredPruner;
import io.github.sparkinfer.device.Device;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelSource;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicLong;
import io.github.sparkinfer.spark.InferenceProperties;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.internal.SQLConf;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Models compressed at load time (spark.sparkinfer.model.&lt;name&gt;.precision): the executor's local
 * copy of the original is compressed once into the cache folder, named by a hash of the original's
 * content, the precision, int8's weight scheme (chosen for the executor's own CPU unless set) and the
 * compressor's output version, so executors on one machine, and URIs with the same content, share
 * it, a newer sparkinfer never reuses an older compressor's file, and a cache folder shared by
 * machines with different CPUs never hands one a file whose int8 sums saturate there.
 */
public final class CompressedModels {
  private static final Logger LOG = LoggerFactory.getLogger(CompressedModels.class);
  private static final ConcurrentMap<String, Path> COMPRESSED = new ConcurrentHashMap<>();
  private static final AtomicLong COMPRESSIONS = new AtomicLong();

  private CompressedModels() {}

  /** fp32, int8, fp16, int4 or auto; anything else is an analysis error naming the key. */
  static String parse(String model, String key, String value) {
    String precision = value.trim().toLowerCase(Locale.ROOT);
    if (!precision.equals("fp32") && !precision.equals("auto")) {
      try {
        Precision.fromShortName(precision);
      } catch (IllegalArgumentException e) {
        throw Errors.analysis("Invalid value '" + value + "' for " + key + " (model '" + model
            + "'): use fp32, int8, fp16, int4 or auto (int8 on CPU, fp16 on GPU)");
      }
    }
    return precision;
  }

  /** A ratio of at least 0 and below 1; anything else is an analysis error naming the key. */
  static double pruneRatio(String model, String key, String value) {
    double ratio;
    try {
      ratio = Double.parseDouble(value.trim());
    } catch (NumberFormatException e) {
      ratio = Double.NaN;
    }
    if (!(ratio >= 0 && ratio < 1)) {
      throw Errors.analysis("Invalid value '" + value + "' for " + key + " (model '" + model
          + "'): give the ratio of hidden units to remove, at least 0 and below 1 (0.25 removes a quarter)");
    }
    return ratio;
  }

  private static final ConcurrentMap<String, Boolean> PRUNABLE = new ConcurrentHashMap<>();

  /**
   * On the driver, before the job: a model without a chain to prune is an analysis error naming the
   * key (read once per JVM and file version, as the driver's local copy).
   */
  static void checkPrunable(ModelSource source, String key, Configuration configuration) {
    Path local = ModelCache.shared().localFile(source, configuration);
    boolean prunable = PRUNABLE.computeIfAbsent(local.toString(), ignored -> {
      try {
        return !StructuredPruner.ofRatio(0).prune(OnnxModel.read(local)).chains().isEmpty();
      } catch (IOException | RuntimeException e) {
        throw Errors.analysis("Cannot read model '" + source.name() + "' (" + source.uri() + ") to prune it: "
            + e.getMessage() + ". Unset " + key, e);
      }
    });
    if (!prunable) {
      throw Errors.analysis("Model '" + source.name() + "' (" + source.uri() + ") has no MatMul/Gemm → activation →"
          + " MatMul/Gemm chain whose hidden units " + key + " could remove. Unset " + key + " for this model");
    }
  }

  /**
   * The int8 scheme setting for {@code model}: its per-model key, else the session key, else auto;
   * anything but auto, u8s8, u8s8-paired, u8u8 or u8s8-reduced is an analysis error naming the key.
   */
  static String int8Scheme(String model, java.util.Map<String, String> settings) {
    String modelKey = InferenceProperties.MODEL_PREFIX + model + InferenceProperties.MODEL_INT8_SCHEME_SUFFIX;
    String key = settings.containsKey(modelKey) ? modelKey : InferenceProperties.INT8_SCHEME;
    String value = settings.getOrDefault(key, InferenceProperties.INT8_SCHEME_DEFAULT);
    String scheme = value.trim().toLowerCase(Locale.ROOT);
    if (!scheme.equals("auto")) {
      try {
        Int8Scheme.fromShortName(scheme);
      } catch (IllegalArgumentException e) {
        throw Errors.analysis("Invalid value '" + value + "' for " + key + " (model '" + model
            + "'): use auto (the fastest scheme exact on each executor's CPU), u8s8, u8s8-paired, u8u8 or u8s8-reduced");
      }
    }
    return scheme;
  }

  /** The precision a model runs at on a device: auto is int8 on CPU, fp16 on accelerators. */
  public static String effective(String precision, Device device) {
    if (precision.equals("auto")) {
      return device.isAccelerator() ? "fp16" : "int8";
    }
    return precision;
  }

  /**
   * The source to load for {@code precision}: the original for fp32, else a local file with the
   * compressed model, made at most once per JVM and content.
   */
  public static ModelSource source(ModelSource original, String precision, String int8Scheme, double pruneRatio,
      Configuration configuration) {
    if (precision.equals("fp32") && pruneRatio == 0) {
      return original;
    }
    Path local = ModelCache.shared().localFile(original, configuration);
    Precision target = precision.equals("fp32") ? null : Precision.fromShortName(precision);
    // Resolved here, on the executor that runs the model: auto follows this machine's CPU.
    Int8Scheme scheme = target != Precision.INT8 ? null
        : int8Scheme.equals("auto") ? Int8Scheme.forThisProcessor() : Int8Scheme.fromShortName(int8Scheme);
    // Made again when the cache deleted it with the original's local copy (an evicted version).
    Path compressed = COMPRESSED.compute(local + "#" + precision + "#" + (scheme == null ? "" : scheme.shortName())
        + "#" + pruneRatio,
        (key, made) -> made != null && java.nio.file.Files.isRegularFile(made) ? made
            : compress(original, local, target, scheme, !int8Scheme.equals("auto"), pruneRatio));
    return original.withUri(compressed.toUri().toString());
  }

  /** The compressed files this JVM loads, for tests that check their names. */
  static Collection<Path> compressedFiles() {
    return List.copyOf(COMPRESSED.values());
  }

  /** Compressions done in this JVM, for tests that check each is done once. */
  static long compressionCount() {
    return COMPRESSIONS.get();
  }

  private static Path compress(ModelSource original, Path local, Precision precision, Int8Scheme scheme,
      boolean schemeSet, double pruneRatio) {
    String done = (pruneRatio > 0 ? "pruned " + pruneRatio : "")
        + (pruneRatio > 0 && precision != null ? ", " : "") + (precision == null ? "" : precision.shortName());
    try {
      Path target = local.resolveSibling(contentHash(local)
          + (pruneRatio > 0 ? "-pruned" + pruneRatio : "")
          + (precision == null ? "" : "-" + precision.shortName())
          + (scheme == null ? "" : "-" + scheme.shortName())
          + "-v" + ModelCompressor.OUTPUT_VERSION + ".onnx");
      if (Files.isRegularFile(target)) {
        return target;
      }
      long start = System.nanoTime();
      OnnxModel model = OnnxModel.read(local);
      String report = "";
      if (pruneRatio > 0) {
        StructuredPruner.Result pruned = StructuredPruner.ofRatio(pruneRatio).prune(model);
        if (pruned.chains().isEmpty()) {
          throw new IllegalArgumentException("it has no MatMul/Gemm → activation → MatMul/Gemm chain to prune");
        }
        model = pruned.model();
        report = pruned.chains().toString();
      }
      if (precision != null) {
        ModelCompressor.Builder builder = ModelCompressor.builder().precision(precision);
        if (precision == Precision.INT8) {
          // Per output channel: much closer to fp32 than one scale per tensor, at the same speed.
          builder.perChannel(true);
          if (schemeSet) {
            // Else the compressor chooses the same scheme and its report says why (the probe).
            builder.int8Scheme(scheme);
          }
        }
        CompressedModel compressed = builder.build().compress(model);
        model = compressed.model();
        report = (report.isEmpty() ? "" : report + "; ") + compressed.report().toString().replace('\n', ' ');
      }
      Path temporary = target.resolveSibling(target.getFileName() + "." + UUID.randomUUID() + ".tmp");
      try {
        model.writeTo(temporary);
        Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } finally {
        Files.deleteIfExists(temporary);
      }
      COMPRESSIONS.incrementAndGet();
      LOG.info("Compressed model '{}' ({}): {} in {} ms: {}", original.name(), original.uri(), done,
          (System.nanoTime() - start) / 1_000_000, report);
      return target;
    } catch (IOException | RuntimeException e) {
      String fix = pruneRatio > 0 ? "Set " + InferenceProperties.MODEL_PREFIX + original.name()
          + InferenceProperties.MODEL_PRUNE_RATIO_SUFFIX + "=0" : "Set " + InferenceProperties.MODEL_PREFIX
          + original.name() + InferenceProperties.MODEL_PRECISION_SUFFIX + "=fp32";
      throw new PredictionException("Cannot compress model '" + original.name() + "' (" + original.uri() + ") ("
          + done + "): " + e.getMessage() + ". " + fix + " to run it as it is", e);
    }
  }

  public static String contentHash(Path file) throws IOException {
    try (InputStream in = new DigestInputStream(Files.newInputStream(file), MessageDigest.getInstance("SHA-256"))) {
      in.transferTo(java.io.OutputStream.nullOutputStream());
      return HexFormat.of().formatHex(((DigestInputStream) in).getMessageDigest().digest()).substring(0, 32);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
