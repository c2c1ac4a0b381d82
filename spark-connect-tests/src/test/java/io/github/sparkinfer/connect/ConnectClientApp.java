package io.github.sparkinfer.connect;

import static org.apache.spark.sql.functions.call_function;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.expr;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.map;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * A Spark Connect client, run in a JVM with only spark-connect-client-jvm on its class path: registers
 * sparkinfer models on the server with SET, then calls model_info, predict, embed and generate through
 * SQL and through the client's DataFrame API (call_function, expr). Writes {@code <case> <json row>} lines.
 *
 * <p>Arguments: the server's sc:// URL, the MLP's URI, MiniLM's URI, its tokenizer's URI, the output file,
 * and optionally a decoder's URI and its tokenizer's URI (generate() is called only with them).
 */
public final class ConnectClientApp {
  private ConnectClientApp() {}

  public static void main(String[] args) throws Exception {
    SparkSession spark = SparkSession.builder().remote(args[0]).getOrCreate();
    List<String> lines = new ArrayList<>();
    try {
      spark.sql("SET spark.sparkinfer.model.mlp.path=" + args[1]);
      spark.sql("SET spark.sparkinfer.model.minilm.path=" + args[2]);
      spark.sql("SET spark.sparkinfer.model.minilm.tokenizer=" + args[3]);
      add(lines, "model_info", spark.sql("SELECT kind, name, element_type, shape FROM model_info('mlp')"));
      spark.sql("SELECT id, transform(sequence(0, 15), i -> CAST(sin(id * 16 + i) AS FLOAT)) AS features"
          + " FROM range(0, 500, 1, 4)").createOrReplaceTempView("points");
      add(lines, "sql_predict", spark.sql("SELECT id, predict('mlp', features) AS scores FROM points"));
      spark.sql("SELECT * FROM VALUES (0, 'Spark runs the model in the executors.'), (1, 'a quick brown fox')"
          + " AS t(id, body)").createOrReplaceTempView("docs");
      add(lines, "sql_embed", spark.sql("SELECT id, embed('minilm', body) AS embedding FROM docs"));
      Dataset<Row> points = spark.table("points");
      add(lines, "api_predict",
          points.select(col("id"), call_function("predict", lit("mlp"), col("features")).as("scores")));
      add(lines, "api_embed", spark.table("docs").select(col("id"), expr("embed('minilm', body)").as("embedding")));
      // explain() prints the server's plan: the batch node must be in it.
      java.io.PrintStream out = System.out;
      java.io.ByteArrayOutputStream plan = new java.io.ByteArrayOutputStream();
      System.setOut(new java.io.PrintStream(plan, true, StandardCharsets.UTF_8));
      try {
        points.select(call_function("predict", lit("mlp"), col("features"))).explain();
      } finally {
        System.setOut(out);
      }
      lines.add("plan " + plan.toString(StandardCharsets.UTF_8).replace('\n', ' '));
      if (args.length > 6) {
        spark.sql("SET spark.sparkinfer.model.gpt2.path=" + args[5]);
        spark.sql("SET spark.sparkinfer.model.gpt2.tokenizer=" + args[6]);
        spark.sql("SELECT * FROM VALUES (0, 'a b c d e'), (1, 's t') AS t(id, prompt)").createOrReplaceTempView("prompts");
        add(lines, "sql_generate", spark.sql("SELECT id, generate('gpt2', prompt, map('maxNewTokens', '6')) AS g FROM prompts"));
        add(lines, "api_generate", spark.table("prompts").select(col("id"),
            call_function("generate", lit("gpt2"), col("prompt"), map(lit("maxNewTokens"), lit("6"))).as("g")));
      }
    } finally {
      Files.write(Path.of(args[4]), lines, StandardCharsets.UTF_8);
      spark.stop();
    }
  }

  private static void add(List<String> lines, String name, Dataset<Row> result) {
    for (String json : result.toJSON().collectAsList()) {
      lines.add(name + " " + json);
    }
  }
}
