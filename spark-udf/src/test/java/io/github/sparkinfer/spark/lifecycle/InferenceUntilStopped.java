package io.github.sparkinfer.spark.lifecycle;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.SparkInferenceExtensions;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.apache.spark.sql.SparkSession;

/**
 * Main of the child JVM that {@link TestShutdownDuringInference} stops with SIGTERM: a local[2]
 * session runs embed() (all-MiniLM-L6-v2) or predict() (an MLP large enough that its runs take
 * most of the time) over and over, printing "RUNNING" once the model is loaded and queries loop.
 *
 * <p>Arguments: embed|predict, a work folder.
 */
public final class InferenceUntilStopped {
  private InferenceUntilStopped() {}

  public static void main(String[] arguments) throws Exception {
    String mode = arguments[0];
    Path folder = Path.of(arguments[1]);
    SparkSession spark = SparkSession.builder()
        .master("local[2]")
        .appName("sparkinfer-shutdown-" + mode)
        .config("spark.sql.extensions", SparkInferenceExtensions.class.getName())
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sparkinfer.cache.dir", folder.resolve("model-cache").toString())
        .getOrCreate();
    String query;
    if (mode.equals("embed")) {
      spark.conf().set("spark.sparkinfer.model.minilm.path", copy("all-minilm-l6-v2.onnx", folder).toUri().toString());
      spark.conf().set("spark.sparkinfer.model.minilm.tokenizer",
          copy("all-minilm-l6-v2-tokenizer.json", folder).toUri().toString());
      spark.range(0, 20_000, 1, 2)
          .selectExpr("id", "concat('document ', id, ' about spark executors', repeat(' and model batches', CAST(id % 40 AS INT)))"
              + " AS body")
          .cache().createOrReplaceTempView("docs");
      query = "SELECT count(*), sum(e[0]) FROM (SELECT embed('minilm', body) AS e FROM docs%s)";
    } else {
      Path mlp = folder.resolve("wide-mlp.onnx");
      MultilayerPerceptronModel.builder().layerSizes(256, 2048, 2048, 16).seed(3)
          .inputName("features").outputName("scores").build().writeTo(mlp);
      spark.conf().set("spark.sparkinfer.model.wide.path", mlp.toUri().toString());
      spark.range(0, 40_000, 1, 2)
          .selectExpr("id", "transform(sequence(1, 256), i -> CAST(((id * 31 + i) % 97) / 97.0 AS FLOAT)) AS features")
          .cache().createOrReplaceTempView("points");
      query = "SELECT count(*), sum(p[0]) FROM (SELECT predict('wide', features) AS p FROM points%s)";
    }
    // A small first query loads the model and caches the table; then the whole table, over and
    // over, on another thread.
    spark.sql(String.format(query, " WHERE id < 100")).collect();
    String everything = String.format(query, "");
    Thread loop = new Thread(() -> {
      while (true) {
        try {
          spark.sql(everything).collect();
        } catch (RuntimeException e) {
          // The SIGTERM's shutdown stopped the SparkContext under the query: the JVM is exiting.
          System.out.println("query ended: " + e);
          return;
        }
      }
    }, "inference-loop");
    loop.start();
    // RUNNING once both tasks of a stage run: they spend nearly all their time in model runs.
    org.apache.spark.SparkStatusTracker status = spark.sparkContext().statusTracker();
    boolean running = false;
    while (!running && loop.isAlive()) {
      for (int stage : status.getActiveStageIds()) {
        org.apache.spark.SparkStageInfo info = status.getStageInfo(stage).getOrElse(() -> null);
        running |= info != null && info.numActiveTasks() == 2;
      }
      loop.join(20);
    }
    System.out.println("RUNNING");
    System.out.flush();
    loop.join();
  }

  private static Path copy(String resource, Path folder) throws Exception {
    Path target = folder.resolve(resource);
    try (InputStream in = InferenceUntilStopped.class.getClassLoader().getResourceAsStream(resource)) {
      Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
    }
    return target;
  }
}
