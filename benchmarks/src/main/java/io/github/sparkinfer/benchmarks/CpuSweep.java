package io.github.sparkinfer.benchmarks;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * {@link Sweep} on this machine's CPU alone (no GPU needed): predict() against batch size and
 * embed() against token budget, local[all cores], written as CSV, PNG charts and a markdown section
 * to --out (a folder).
 *
 * <p>Arguments: --out FOLDER, --mlp-rows N (1000000), --text-rows N (1000).
 */
public final class CpuSweep {
  private CpuSweep() {}

  public static void main(String[] arguments) throws Exception {
    Path out = Path.of("cpu-sweep");
    long mlpRows = 1_000_000;
    int textRows = 1_000;
    for (int i = 0; i < arguments.length; i += 2) {
      switch (arguments[i]) {
        case "--out": out = Path.of(arguments[i + 1]); break;
        case "--mlp-rows": mlpRows = Long.parseLong(arguments[i + 1]); break;
        case "--text-rows": textRows = Integer.parseInt(arguments[i + 1]); break;
        // Passed by exec:exec to every benchmark; this one writes to --out only.
        case "--results": case "--work-dir": break;
        default: throw new IllegalArgumentException("Unknown argument " + arguments[i]
            + "; use --out, --mlp-rows, --text-rows");
      }
    }
    Files.createDirectories(out);
    int cores = Runtime.getRuntime().availableProcessors();
    Path work = Files.createTempDirectory("sparkinfer-cpu-sweep");
    SparkSession spark = LocalSpark.session("sparkinfer-cpu-sweep", cores);
    Path mlp = work.resolve("mlp.onnx");
    MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 16).seed(42).inputName("features")
        .outputName("scores").build().writeTo(mlp);
    spark.sql("SET spark.sparkinfer.model.mlp.path=" + mlp.toUri());
    Dataset<Row> points = TabularData.generate(spark, mlpRows, cores * 2).cache();
    points.count();
    points.createOrReplaceTempView("points");
    spark.sql("SET spark.sparkinfer.model.minilm.path=" + MiniLm.FP32.extractModel(work).toUri());
    spark.sql("SET spark.sparkinfer.model.minilm.tokenizer=" + MiniLm.FP32.extractTokenizer(work).toUri());
    Dataset<Row> docs = SentenceData.generate(spark, textRows, cores * 2).cache();
    docs.count();
    docs.createOrReplaceTempView("few_docs");
    List<String> lines = new ArrayList<>();
    lines.add("CPU sweep on " + RunEnvironment.cpuModel() + " (" + cores + " cores)" + ", local[" + cores + "], commit "
        + RunEnvironment.gitCommit() + ":");
    Sweep.run(spark, List.of("cpu"), true, out.resolve("cpu-sweep.csv"), out.resolve("cpu-sweep-predict.png"),
        out.resolve("cpu-sweep-embed.png"), mlpRows, textRows, textRows, 5, lines);
    Files.write(out.resolve("cpu-sweep.md"), lines);
    lines.forEach(System.out::println);
    spark.stop();
  }
}
