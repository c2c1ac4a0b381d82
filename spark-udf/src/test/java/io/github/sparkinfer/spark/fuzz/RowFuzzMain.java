package io.github.sparkinfer.spark.fuzz;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.fuzz.FuzzChild.Outcome;
import io.github.sparkinfer.spark.fuzz.FuzzRows.Expect;
import io.github.sparkinfer.spark.fuzz.FuzzRows.Value;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.spark.ml.linalg.VectorUDT;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * The row fuzzer's child JVM: each input is a table of 1 to 12 rows ({@link FuzzRows}: a dense array
 * and an ML vector per row, good and bad mixed), written to Parquet with the vector as VectorUDT's
 * storage struct and read back as VectorUDT, then scored by {@code predict} and {@code
 * predict_with_error} with onError=null and a random batch size. A good row must give the MLP's
 * reference output, a bad one a null result with a clear reason, never a failed query.
 *
 * <p>Arguments: seed, first input index, milliseconds to fuzz for once started, work folder.
 */
public final class RowFuzzMain {
  private static final String MODEL = "mlp";
  private static final StructType STORAGE = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("d", DataTypes.createArrayType(DataTypes.FloatType, true), true)
      .add("v", new StructType()
          .add("type", DataTypes.ByteType, true)
          .add("size", DataTypes.IntegerType, true)
          .add("indices", DataTypes.createArrayType(DataTypes.IntegerType, true), true)
          .add("values", DataTypes.createArrayType(DataTypes.DoubleType, true), true), true);
  private static final StructType READ = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("d", DataTypes.createArrayType(DataTypes.FloatType, true), true)
      .add("v", new VectorUDT(), true);

  private RowFuzzMain() {}

  public static void main(String[] arguments) throws Exception {
    long seed = Long.parseLong(arguments[0]);
    long index = Long.parseLong(arguments[1]);
    long millisLeft = Long.parseLong(arguments[2]);
    Path folder = Path.of(arguments[3]);
    SparkSession spark = FuzzChild.session(folder, "sparkinfer-row-fuzz");
    MultilayerPerceptronModel mlp = MultilayerPerceptronModel.builder().layerSizes(FuzzRows.WIDTH, 8, 4).seed(seed)
        .inputName("features").outputName("scores").build();
    Path model = folder.resolve("mlp.onnx");
    mlp.writeTo(model);
    spark.conf().set("spark.sparkinfer.model." + MODEL + ".path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model." + MODEL + ".onError", "null");
    long deadline = System.currentTimeMillis() + millisLeft;
    for (; System.currentTimeMillis() < deadline; index++) {
      SplittableRandom random = FuzzChild.random(seed, index);
      int count = 1 + random.nextInt(12);
      // Mostly good rows around few bad ones: one bad kind that fails a whole query must not hide the others.
      double badShare = new double[] {0.05, 0.15, 0.4}[random.nextInt(3)];
      int batchSize = new int[] {1, 4, 16, 64}[random.nextInt(4)];
      List<Row> rows = new ArrayList<>();
      List<Value[]> values = new ArrayList<>();
      for (int id = 0; id < count; id++) {
        Value[] row = {FuzzRows.dense(random, random.nextDouble() < badShare), FuzzRows.vector(random, random.nextDouble() < badShare)};
        values.add(row);
        rows.add(RowFactory.create((long) id, row[0].value, row[1].value));
      }
      FuzzChild.input(index, count + " rows, batch size " + batchSize + ": " + describe(values));
      long started = System.nanoTime();
      spark.conf().set("spark.sparkinfer.model." + MODEL + ".batchSize", String.valueOf(batchSize));
      Path table = folder.resolve("rows-" + index);
      Outcome outcome;
      String detail;
      try {
        spark.createDataFrame(rows, STORAGE).coalesce(1).write().mode(SaveMode.Overwrite).parquet(table.toString());
        List<Row> results = spark.read().schema(READ).parquet(table.toString())
            .selectExpr("id", "predict('mlp', d) AS pd", "predict_with_error('mlp', d) AS ed",
                "predict('mlp', v) AS pv", "predict_with_error('mlp', v) AS ev")
            .collectAsList();
        RowChecks checks = new RowChecks(mlp);
        for (Row result : results) {
          Value[] row = values.get((int) result.getLong(0));
          checks.check(result, 1, row[0]);
          checks.check(result, 3, row[1]);
        }
        if (results.size() != count) {
          checks.wrong("got " + results.size() + " rows for " + count);
        }
        outcome = checks.outcome();
        detail = checks.detail();
      } catch (Throwable error) {
        String unclear = FuzzChild.unclear(error, MODEL);
        outcome = unclear == null ? Outcome.WRONG : Outcome.UNCLEAR;
        detail = "the query failed although onError=null: " + (unclear == null ? FuzzChild.describe(error) : unclear);
      } finally {
        org.apache.commons.io.FileUtils.deleteQuietly(table.toFile());
      }
      FuzzChild.outcome(index, outcome, detail + " (" + (System.nanoTime() - started) / 1_000_000 + " ms)");
    }
    FuzzChild.done();
    spark.stop();
    System.exit(0);
  }

  private static String describe(List<Value[]> values) {
    StringBuilder text = new StringBuilder();
    for (int id = 0; id < values.size(); id++) {
      text.append(id == 0 ? "" : ", ").append(id).append(": ").append(values.get(id)[0].description).append(" / ")
          .append(values.get(id)[1].description);
    }
    return text.toString();
  }

  /** Checks each row's two results against what its values must give; the worst outcome wins. */
  private static final class RowChecks {
    private static final List<String> BARE = List.of("NullPointerException", "IndexOutOfBounds",
        "NegativeArraySize", "ClassCastException", "StackOverflow", "ArithmeticException");
    private final MultilayerPerceptronModel mlp;
    private Outcome outcome = Outcome.OK;
    private String detail = "all rows as expected";

    RowChecks(MultilayerPerceptronModel mlp) {
      this.mlp = mlp;
    }

    void check(Row result, int column, Value value) {
      List<Float> plain = result.isNullAt(column) ? null : result.getList(column);
      Row withError = result.getStruct(column + 1);
      List<Float> reported = withError == null || withError.isNullAt(0) ? null : withError.getList(0);
      String error = withError == null || withError.isNullAt(1) ? null : withError.getString(1);
      String row = "row " + result.getLong(0) + " (" + value.description + ")";
      if ((plain == null) != (reported == null)) {
        wrong(row + ": predict gave " + plain + " and predict_with_error " + reported);
        return;
      }
      boolean matches = plain != null && value.reference != null && close(plain, mlp.forward(value.reference));
      switch (value.expect) {
        case GOOD:
          if (!matches) {
            wrong(row + ": gave " + plain + " (error " + error + "), not " + FuzzRows.show(mlp.forward(value.reference)));
          }
          break;
        case LOOSE:
          if (plain == null || plain.size() != 4) {
            wrong(row + ": gave " + plain + " (error " + error + ") for a row the model can take");
          }
          break;
        case NULL_IN:
          if (plain != null) {
            wrong(row + ": gave " + plain + " for a null input");
          } else if (error != null) {
            clear(row, error);
          }
          break;
        case ANY:
          if (plain == null) {
            clear(row, error);
          } else if (plain.size() != 4) {
            wrong(row + ": gave " + plain);
          }
          break;
        case EITHER:
          if (plain != null && !matches) {
            wrong(row + ": gave " + plain + ", neither an error nor " + FuzzRows.show(mlp.forward(value.reference)));
          } else if (plain == null) {
            clear(row, error);
          }
          break;
        default:
          if (plain != null) {
            wrong(row + ": gave " + plain + " for a row it cannot take");
          } else {
            clear(row, error);
          }
      }
    }

    private void clear(String row, String error) {
      if (error == null) {
        unclear(row + ": a null result without a reason");
      } else if (!error.contains("'" + MODEL + "'") || BARE.stream().anyMatch(error::contains)) {
        unclear(row + ": unclear reason: " + error);
      } else if (outcome == Outcome.OK) {
        outcome = Outcome.REFUSED;
        detail = "bad rows refused, e.g. " + row + ": " + error;
      }
    }

    void wrong(String problem) {
      if (outcome != Outcome.WRONG) {
        outcome = Outcome.WRONG;
        detail = problem;
      }
    }

    private void unclear(String problem) {
      if (outcome != Outcome.WRONG && outcome != Outcome.UNCLEAR) {
        outcome = Outcome.UNCLEAR;
        detail = problem;
      }
    }

    Outcome outcome() {
      return outcome;
    }

    String detail() {
      return detail;
    }

    private static boolean close(List<Float> actual, float[] expected) {
      if (actual.size() != expected.length) {
        return false;
      }
      for (int k = 0; k < expected.length; k++) {
        if (actual.get(k) == null || Math.abs(actual.get(k) - expected[k]) > 1e-4 * (1 + Math.abs(expected[k]))) {
          return false;
        }
      }
      return true;
    }
  }
}
