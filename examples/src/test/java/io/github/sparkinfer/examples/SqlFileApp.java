package io.github.sparkinfer.examples;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.SparkSession;

/**
 * A spark-submit application that runs a SQL file, statement by statement (each ends with a ';' at
 * the end of a line), and writes every result row as JSON: {@code result <statement> <json>}. It
 * knows nothing of sparkinfer: the functions come from the runtime jar and spark.sql.extensions.
 *
 * <p>Arguments: the SQL file, the output file.
 */
public final class SqlFileApp {
  private SqlFileApp() {}

  public static void main(String[] args) throws Exception {
    String sql = Files.readString(Path.of(args[0]), StandardCharsets.UTF_8);
    SparkSession spark = SparkSession.builder().getOrCreate();
    List<String> lines = new ArrayList<>();
    try {
      int statement = 0;
      for (String text : sql.split(";\\s*\\n")) {
        String trimmed = text.strip();
        if (trimmed.isEmpty() || trimmed.startsWith("--")) {
          continue;
        }
        statement++;
        for (String json : spark.sql(trimmed).toJSON().collectAsList()) {
          lines.add("result " + statement + " " + json);
        }
      }
    } finally {
      Files.write(Path.of(args[1]), lines, StandardCharsets.UTF_8);
      spark.stop();
    }
  }
}
