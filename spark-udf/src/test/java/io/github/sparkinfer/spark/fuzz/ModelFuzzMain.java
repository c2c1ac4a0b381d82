package io.github.sparkinfer.spark.fuzz;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.SparkInference;
import io.github.sparkinfer.spark.fuzz.FuzzChild.Outcome;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;

/**
 * The model fuzzer's child JVM: each input is a mutant of a small MLP ({@link ModelMutations}),
 * written with its data files to a folder of its own and registered by SET as a user would; then
 * {@code model_info} reads it on the driver (the model cache's load: copy, external data, ORT
 * session, signature) and, when that works, {@code predict} runs it on one row in a task. A load
 * that works although the mutant's external data lies outside its folder is a breach (WRONG).
 *
 * <p>Arguments: seed, first input index, milliseconds to fuzz for once started, work folder.
 */
public final class ModelFuzzMain {
  private static final int INPUTS = 16;

  private ModelFuzzMain() {}

  public static void main(String[] arguments) throws Exception {
    long seed = Long.parseLong(arguments[0]);
    long index = Long.parseLong(arguments[1]);
    long millisLeft = Long.parseLong(arguments[2]);
    Path folder = Path.of(arguments[3]);
    SparkSession spark = FuzzChild.session(folder, "sparkinfer-model-fuzz");
    Path canary = folder.resolve(ModelMutations.CANARY);
    MultilayerPerceptronModel mlp = MultilayerPerceptronModel.builder().layerSizes(INPUTS, 8, 4).seed(seed)
        .inputName("features").outputName("scores").build();
    ModelMutations mutations = new ModelMutations(mlp.toBytes(), canary);
    StringBuilder row = new StringBuilder("array(");
    for (int i = 0; i < INPUTS; i++) {
      row.append(i == 0 ? "" : ", ").append("CAST(").append(0.1 * i).append(" AS FLOAT)");
    }
    row.append(")");
    long deadline = System.currentTimeMillis() + millisLeft;
    for (; System.currentTimeMillis() < deadline; index++) {
      SplittableRandom random = FuzzChild.random(seed, index);
      ModelMutations.Mutant mutant = mutations.mutate(random);
      String name = "fz" + index;
      FuzzChild.input(index, mutant.description());
      Path modelFolder = folder.resolve("m" + index);
      write(modelFolder, mutant, canary);
      String key = "spark.sparkinfer.model." + name + ".path";
      spark.conf().set(key, modelFolder.resolve("model.onnx").toUri().toString());
      long started = System.nanoTime();
      Outcome outcome;
      String detail;
      try {
        spark.sql("SELECT * FROM model_info('" + name + "')").collect();
        spark.sql("SELECT predict('" + name + "', " + row + ")").collect();
        outcome = mutant.escapes ? Outcome.WRONG : Outcome.OK;
        detail = mutant.escapes ? "loaded and ran although its external data lies outside its folder" : "loaded and ran";
      } catch (Throwable error) {
        String unclear = FuzzChild.unclear(error, name);
        outcome = unclear == null ? Outcome.REFUSED : Outcome.UNCLEAR;
        detail = unclear == null ? FuzzChild.describe(error) : unclear;
      } finally {
        spark.conf().unset(key);
        try {
          SparkInference.unregister(spark, name);
        } catch (RuntimeException e) {
          // Not registered: the load failed before.
        }
        delete(modelFolder);
      }
      FuzzChild.outcome(index, outcome, detail + " (" + (System.nanoTime() - started) / 1_000_000 + " ms)");
    }
    FuzzChild.done();
    spark.stop();
    System.exit(0);
  }

  private static void write(Path modelFolder, ModelMutations.Mutant mutant, Path canary) throws Exception {
    Files.createDirectories(modelFolder.resolve("data"));
    Files.write(modelFolder.resolve("model.onnx"), mutant.model);
    for (Map.Entry<String, byte[]> file : mutant.files.entrySet()) {
      Path target = file.getKey().equals("../" + ModelMutations.CANARY) ? canary : modelFolder.resolve(file.getKey());
      Files.write(target, file.getValue());
    }
  }

  private static void delete(Path folder) throws Exception {
    try (Stream<Path> files = Files.walk(folder)) {
      for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(file);
      }
    }
  }
}
