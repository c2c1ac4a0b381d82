package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.spark.InferenceProperties;
import io.github.sparkinfer.spark.PredictionException;

import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.compression.PoolingHead;
import io.github.sparkinfer.device.Device;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.TensorSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.stream.Collectors;
import org.apache.hadoop.conf.Configuration;

/**
 * embed() pooling inside the model's graph (spark.sparkinfer.poolOnDevice): the executor's copy of
 * a text model gets a pooling head ({@link PoolingHead}), so on a GPU the token states stay on the
 * device and one vector per text comes back, not one per token. The file is made once per JVM and
 * content, next to the local copy in the cache folder, named by the content's hash, the pooling,
 * the output and the head's version.
 */
public final class DevicePooling {
  private static final ConcurrentMap<String, Path> POOLED = new ConcurrentHashMap<>();

  private DevicePooling() {}

  /** The output the head adds: float [batch, dim]. */
  public static String output() {
    return PoolingHead.OUTPUT;
  }

  /**
   * Why the model's graph cannot pool {@code output} this way (states not of rank 3, no
   * attention_mask input for mean pooling), or null when it can.
   */
  static String whyNot(ModelBinding binding, String output, TextSettings.Pooling pooling) {
    TensorSpec states = binding.signature().outputs().stream()
        .filter(spec -> spec.name().equals(output)).findFirst().orElse(null);
    if (states == null || states.rank() != 3) {
      return "output '" + output + "' is not of shape [batch, tokens, dim]";
    }
    if (pooling == TextSettings.Pooling.MEAN
        && binding.signature().inputs().stream().noneMatch(spec -> spec.name().equals(TextSettings.ATTENTION_MASK))) {
      return "mean pooling needs an input '" + TextSettings.ATTENTION_MASK + "', and the model's inputs are "
          + binding.describeInputs();
    }
    return null;
  }

  /** Whether the model runs with a pooling head on {@code device}. */
  public static boolean applies(ModelBinding binding, Device device) {
    TextSettings text = binding.text();
    if (text == null) {
      return false;
    }
    switch (text.poolOnDevice()) {
      case "true":
        return true;
      case "auto":
        return device.isAccelerator();
      default:
        return false;
    }
  }

  /** The source of {@code source}'s model with the pooling head, a local file made at most once per JVM and content. */
  public static ModelSource source(ModelSource source, ModelBinding binding, Configuration configuration) {
    Path local = ModelCache.shared().localFile(source, configuration);
    TextSettings text = binding.text();
    PoolingHead.Mode mode = text.pooling() == TextSettings.Pooling.CLS ? PoolingHead.Mode.FIRST : PoolingHead.Mode.MEAN;
    // Made again when the cache deleted it with the local copy (an evicted version).
    Path pooled = POOLED.compute(local + "#" + mode + "#" + text.embeddingOutput(),
        (key, made) -> made != null && Files.isRegularFile(made) ? made : write(source, local, text, mode));
    return source.withUri(pooled.toUri().toString());
  }

  /** The signature the query was planned with: {@code loaded}'s, less the head's output. */
  public static ModelSignature planned(ModelSignature loaded) {
    return new ModelSignature(loaded.inputs(), loaded.outputs().stream()
        .filter(spec -> !spec.name().equals(PoolingHead.OUTPUT)).collect(Collectors.toList()));
  }

  private static Path write(ModelSource source, Path local, TextSettings text, PoolingHead.Mode mode) {
    try {
      Path target = local.resolveSibling(CompressedModels.contentHash(local) + "-pooled-"
          + mode.name().toLowerCase(java.util.Locale.ROOT) + "-" + Integer.toHexString(text.embeddingOutput().hashCode())
          + "-v" + PoolingHead.VERSION + ".onnx");
      if (Files.isRegularFile(target)) {
        return target;
      }
      OnnxModel pooled = PoolingHead.append(OnnxModel.read(local), text.embeddingOutput(), TextSettings.ATTENTION_MASK,
          mode);
      Path temporary = target.resolveSibling(target.getFileName() + "." + UUID.randomUUID() + ".tmp");
      try {
        pooled.writeTo(temporary);
        Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } finally {
        Files.deleteIfExists(temporary);
      }
      return target;
    } catch (IOException | RuntimeException e) {
      throw new PredictionException("Cannot add a pooling head to model '" + source.name() + "' (" + source.uri()
          + "): " + e.getMessage() + ". Set " + InferenceProperties.MODEL_PREFIX + source.name()
          + InferenceProperties.MODEL_POOL_ON_DEVICE_SUFFIX + "=false to pool in Java", e);
    }
  }
}
