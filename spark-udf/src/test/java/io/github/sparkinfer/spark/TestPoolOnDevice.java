package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pooling inside the model's graph (spark.sparkinfer.poolOnDevice=true, forced on the CPU here; auto
 * does it on GPUs) against pooling in Java and against langchain4j's own MiniLM: the same vectors up
 * to float rounding (the graph sums in another order), rows in their order, nulls kept.
 */
class TestPoolOnDevice {
  @TempDir static Path folder;

  private static SparkSession spark;
  private static List<String> texts;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSessions.shared();
    spark.conf().set("spark.sparkinfer.model.pooled.path",
        TestModels.copyResource(folder, "all-minilm-l6-v2.onnx").toUri().toString());
    spark.conf().set("spark.sparkinfer.model.pooled.tokenizer",
        TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json").toUri().toString());
    texts = new ArrayList<>();
    java.util.SplittableRandom random = new java.util.SplittableRandom(11);
    String[] words = {"spark", "executor", "model", "vector", "the", "batch", "of", "token", "GPU", "runs",
        "quickly", "über", "naïve", "table", "rows", "embedding", "cluster", "memory", "2026", "!"};
    for (int i = 0; i < 300; i++) {
      StringBuilder text = new StringBuilder();
      int length = 1 + random.nextInt(i % 10 == 0 ? 150 : 25);
      for (int w = 0; w < length; w++) {
        text.append(words[random.nextInt(words.length)]).append(' ');
      }
      texts.add(text.toString().trim());
    }
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      rows.add(RowFactory.create((long) i, texts.get(i)));
    }
    rows.add(RowFactory.create(-1L, null));
    spark.createDataFrame(rows, new StructType()
            .add("id", DataTypes.LongType, false).add("body", DataTypes.StringType, true))
        .repartition(3).createOrReplaceTempView("pooled_docs");
  }

  @AfterEach
  void unsetPerTest() {
    spark.conf().unset("spark.sparkinfer.poolOnDevice");
    spark.conf().unset("spark.sparkinfer.model.pooled.poolOnDevice");
    spark.conf().unset("spark.sparkinfer.model.pooled.pooling");
    spark.conf().unset("spark.sparkinfer.model.pooled.tokenBudget");
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "pooled");
    spark.conf().unset("spark.sparkinfer.model.pooled.tokenizer");
  }

  @Test
  void meanPoolingInTheGraphEqualsJavaPoolingAndLangchain4j() {
    spark.conf().set("spark.sparkinfer.model.pooled.tokenBudget", "2048");
    spark.conf().set("spark.sparkinfer.model.pooled.poolOnDevice", "false");
    Map<Long, float[]> inJava = embeddings("pooling=java");
    // The session key, below the per-model one: unset the model's so that the session's applies.
    spark.conf().unset("spark.sparkinfer.model.pooled.poolOnDevice");
    spark.conf().set("spark.sparkinfer.poolOnDevice", "true");
    Map<Long, float[]> inGraph = embeddings("pooling=graph");
    assertThat(inGraph.keySet()).isEqualTo(inJava.keySet());
    AllMiniLmL6V2EmbeddingModel oracle = new AllMiniLmL6V2EmbeddingModel();
    double largest = 0;
    for (Map.Entry<Long, float[]> entry : inGraph.entrySet()) {
      float[] graph = entry.getValue();
      float[] java = inJava.get(entry.getKey());
      if (entry.getKey() < 0) {
        assertThat(graph).as("a null text gives null").isNull();
        continue;
      }
      for (int k = 0; k < graph.length; k++) {
        largest = Math.max(largest, Math.abs(graph[k] - java[k]));
      }
      float[] expected = oracle.embed(texts.get(entry.getKey().intValue())).content().vector();
      assertThat(TestEmbed.cosine(graph, expected)).as("text %d", entry.getKey()).isGreaterThanOrEqualTo(0.9999);
    }
    // Unit vectors summed in another order: differences of float rounding only.
    assertThat(largest).as("largest |graph - java| over all dimensions").isLessThan(2e-6);
  }

  @Test
  void clsPoolingInTheGraphIsTheFirstTokenState() {
    spark.conf().set("spark.sparkinfer.model.pooled.pooling", "cls");
    spark.conf().set("spark.sparkinfer.model.pooled.poolOnDevice", "false");
    Map<Long, float[]> inJava = embeddings("pooling=java");
    spark.conf().set("spark.sparkinfer.model.pooled.poolOnDevice", "true");
    Map<Long, float[]> inGraph = embeddings("pooling=graph");
    for (Map.Entry<Long, float[]> entry : inGraph.entrySet()) {
      if (entry.getKey() >= 0) {
        // A copy of one token's state, then the same normalization: equal up to the last bit or two.
        float[] java = inJava.get(entry.getKey());
        for (int k = 0; k < java.length; k++) {
          assertThat(entry.getValue()[k]).isCloseTo(java[k], org.assertj.core.data.Offset.offset(1e-7f));
        }
      }
    }
  }

  @Test
  void anInvalidValueNamesTheKeyAndTheChoices() {
    spark.conf().set("spark.sparkinfer.model.pooled.poolOnDevice", "gpu");
    assertThatThrownBy(() -> spark.sql("SELECT embed('pooled', body) FROM pooled_docs").collectAsList())
        .isInstanceOf(AnalysisException.class)
        .hasMessageContaining("Invalid value 'gpu' for spark.sparkinfer.model.pooled.poolOnDevice")
        .hasMessageContaining("use auto");
  }

  private static Map<Long, float[]> embeddings(String pooling) {
    Dataset<Row> result = spark.sql("SELECT id, embed('pooled', body) AS e FROM pooled_docs");
    List<Row> rows = result.collectAsList();
    assertThat(SparkInference.deviceBindings(result)).isNotEmpty()
        .allSatisfy(binding -> assertThat(binding).contains(pooling));
    Map<Long, float[]> vectors = new HashMap<>();
    for (Row row : rows) {
      float[] vector = null;
      if (!row.isNullAt(1)) {
        List<Float> values = row.getList(1);
        vector = new float[values.size()];
        for (int i = 0; i < vector.length; i++) {
          vector[i] = values.get(i);
        }
      }
      vectors.put(row.getLong(0), vector);
    }
    assertThat(vectors).hasSize(texts.size() + 1);
    return vectors;
  }
}
