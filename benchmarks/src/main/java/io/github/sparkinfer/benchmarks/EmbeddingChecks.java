package io.github.sparkinfer.benchmarks;

import static io.github.sparkinfer.benchmarks.QueryRunner.collect;
import static io.github.sparkinfer.benchmarks.RunEnvironment.log;
import static org.apache.spark.sql.functions.col;
import dev.langchain4j.model.embedding.EmbeddingModel;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.IntPredicate;
import java.util.stream.IntStream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Correctness checks of the text embedding benchmark, run before anything is timed: every variant's
 * vectors for the checked rows against langchain4j's embedding model and against raw ONNX Runtime,
 * their norms, and the cached input against the texts the raw loop embeds.
 */
final class EmbeddingChecks {
  private EmbeddingChecks() {}

  /**
   * Correctness first: a fast wrong answer is not a result. Every variant's vectors for the
   * checked rows against langchain4j's embedding model, and against (a).
   */
  static void check(
      SparkSession spark,
      MiniLm model,
      String[] texts,
      OrtEmbeddingLoop loop,
      String udfQuery,
      String embedQuery,
      ModelResult result)
      throws Exception {
    long[] ids = checkedIds(texts);
    EmbeddingModel referenceModel = model.reference();
    Map<Long, float[]> reference = new LinkedHashMap<>();
    for (long id : ids) {
      reference.put(id, referenceModel.embed(texts[(int) id]).content().vector());
    }

    Map<String, Map<Long, float[]>> variants = new LinkedHashMap<>();
    // Only the batches that hold a checked row: those rows get what a full run gives them.
    IntPredicate checked = row -> Arrays.binarySearch(ids, row) >= 0;
    variants.put("a", byId(loop.fixedOrder(texts, checked), ids));
    variants.put("b", byId(loop.lengthSorted(texts, checked), ids));
    variants.put("c", collect(spark.sql(udfQuery), ids));
    if (embedQuery != null) {
      variants.put("d", collect(spark.sql(embedQuery), ids));
    }

    Map<Long, float[]> fixedOrder = variants.get("a");
    for (Map.Entry<String, Map<Long, float[]>> variant : variants.entrySet()) {
      String key = variant.getKey();
      checkNorms(model, key, variant.getValue());
      result.referenceCosine.put(key,
          minimumCosine(model, key, "langchain4j's model", variant.getValue(), reference, texts,
              requiredCosine(model, TextEmbeddingBenchmark.BATCHED.contains(key))));
      if (!key.equals("a")) {
        result.fixedOrderCosine.put(key,
            minimumCosine(model, key, "(a)", variant.getValue(), fixedOrder, texts,
                requiredCosine(model, true)));
      }
    }
    log("%s: checked rows %s of every variant: minimum cosine vs langchain4j %s, vs (a) %s",
        model.label(), Arrays.toString(ids), TextEmbeddingBenchmark.format(result.referenceCosine),
        TextEmbeddingBenchmark.format(result.fixedOrderCosine));
  }

  /** The cosine a comparison must reach; {@code batched}: either side shares model calls. */
  static double requiredCosine(MiniLm model, boolean batched) {
    return model == MiniLm.INT8 && batched ? TextEmbeddingBenchmark.INT8_BATCHED_MIN_COSINE : TextEmbeddingBenchmark.MIN_COSINE;
  }

  static void checkNorms(MiniLm model, String key, Map<Long, float[]> vectors) {
    for (Map.Entry<Long, float[]> row : vectors.entrySet()) {
      float[] vector = row.getValue();
      if (vector == null) {
        throw new IllegalStateException(model.label() + " variant (" + key + ") returned no"
            + " vector for row " + row.getKey());
      }
      double norm = Math.sqrt(dot(vector, vector));
      if (!(Math.abs(norm - 1) <= TextEmbeddingBenchmark.NORM_TOLERANCE)) {
        throw new IllegalStateException(String.format(Locale.ROOT,
            "%s variant (%s) returned a vector of length %.6f for row %d, not 1: the embedding"
                + " is L2-normalized", model.label(), key, norm, row.getKey()));
      }
    }
  }

  static double dot(float[] left, float[] right) {
    double dot = 0;
    for (int i = 0; i < left.length; i++) {
      dot += (double) left[i] * right[i];
    }
    return dot;
  }

  static double minimumCosine(
      MiniLm model,
      String key,
      String against,
      Map<Long, float[]> actual,
      Map<Long, float[]> expected,
      String[] texts,
      double required) {
    double minimum = 1;
    for (Map.Entry<Long, float[]> row : expected.entrySet()) {
      long id = row.getKey();
      float[] vector = actual.get(id);
      double cosine = SentenceEmbedder.cosine(vector, row.getValue());
      if (!(cosine >= required)) {
        String text = texts[(int) id];
        throw new IllegalStateException(String.format(Locale.ROOT,
            "%s variant (%s) disagrees with %s on row %d: cosine %.6f, below %s (%s; %d words:"
                + " \"%s\"). Its numbers would not be comparable; find the difference before"
                + " timing", model.label(), key, against, id, cosine, required,
            vector == null ? "no row" : vector.length + " dimensions",
            SentenceData.words(text), text.length() > 120 ? text.substring(0, 120) + "..." : text));
      }
      minimum = Math.min(minimum, cosine);
    }
    return minimum;
  }

  /**
   * Spread over the input, so that many partitions and batches are covered, plus the shortest and
   * the longest row (a truncated one, when any row is).
   */
  static long[] checkedIds(String[] texts) {
    int rows = texts.length;
    int shortest = 0;
    int longest = 0;
    for (int row = 1; row < rows; row++) {
      int words = SentenceData.words(texts[row]);
      shortest = words < SentenceData.words(texts[shortest]) ? row : shortest;
      longest = words > SentenceData.words(texts[longest]) ? row : longest;
    }
    int spread = TextEmbeddingBenchmark.CHECKED_ROWS - 2;
    return IntStream.concat(
            IntStream.range(0, spread).map(i -> (int) (i * (rows - 1L) / Math.max(spread - 1, 1))),
            IntStream.of(shortest, longest))
        .asLongStream()
        .distinct()
        .sorted()
        .toArray();
  }

  /** The cached input holds exactly the strings the raw ONNX Runtime variants embed. */
  static void checkInputMatches(SparkSession spark, String[] texts, long[] ids) {
    Object[] boxed = Arrays.stream(ids).boxed().toArray();
    List<Row> cached = spark.table("docs").where(col("id").isin(boxed)).collectAsList();
    if (cached.size() != ids.length) {
      throw new IllegalStateException(
          "The cached input has " + cached.size() + " of the rows " + Arrays.toString(ids));
    }
    for (Row row : cached) {
      long id = row.getLong(0);
      if (!texts[(int) id].equals(row.getString(1))) {
        throw new IllegalStateException(
            "The cached input's row " + id + " differs from the text raw ONNX Runtime is given: \""
                + row.getString(1) + "\" vs \"" + texts[(int) id] + "\". The variants would not"
                + " see the same data");
      }
    }
  }

  static Map<Long, float[]> byId(float[][] vectors, long[] ids) {
    Map<Long, float[]> result = new LinkedHashMap<>();
    for (long id : ids) {
      result.put(id, vectors[(int) id]);
    }
    return result;
  }
}
