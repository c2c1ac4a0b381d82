package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.sparkinfer.compression.Attribute;
import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Output shapes and buffer sizes that a model file or a setting decides: a text model whose graph
 * returns [b, 1, d] where it declares [b, s, d] is a clear error (not vectors pooled from memory
 * past the output), and sizes whose product exceeds a buffer (sortWindowRows × the embedding's
 * width; an input's dimensions) are refused naming the key or the tensor, not a
 * NegativeArraySizeException or a wrapped-around size.
 */
class TestOutputShapesAndSizes {
  private static final int WIDE = 4096;

  @TempDir static Path folder;
  private static SparkSession spark;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    String tokenizer = TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json").toUri().toString();
    // Token states [b, s, d] summed over the tokens with keepdims: [b, 1, d], declared [b, s, d], with a width
    // only the run knows (d = s here), so the output is not pinned and sparkinfer reads what ONNX Runtime returns.
    Path shrunk = folder.resolve("shrunk.onnx");
    OnnxModelBuilder.create("shrunk")
        .input("input_ids", OnnxElementType.INT64, "batch", "seq")
        .initializer("axes1", new long[] {1}, 1)
        .initializer("axes2", new long[] {2}, 1)
        .node("Cast", List.of("input_ids"), List.of("ids"), Attribute.ofInt("to", 1))
        .node("Unsqueeze", List.of("ids", "axes2"), List.of("column"))
        .node("Unsqueeze", List.of("ids", "axes1"), List.of("row"))
        .node("MatMul", List.of("column", "row"), List.of("states"))
        .node("ReduceSum", List.of("states", "axes1"), List.of("last_hidden_state"), Attribute.ofInt("keepdims", 1))
        .output("last_hidden_state", OnnxElementType.FLOAT, "batch", "seq", "dim")
        .writeTo(shrunk);
    spark.conf().set("spark.sparkinfer.model.shrunk.path", shrunk.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.shrunk.tokenizer", tokenizer);
    // The same with a fixed width: the output is pinned, ONNX Runtime writes into sparkinfer's buffer.
    Path shrunkFixed = folder.resolve("shrunk_fixed.onnx");
    textModel("shrunk_fixed", 8, true, 8).writeTo(shrunkFixed);
    spark.conf().set("spark.sparkinfer.model.shrunk_fixed.path", shrunkFixed.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.shrunk_fixed.tokenizer", tokenizer);
    // An honest text model of width 4,096.
    Path wide = folder.resolve("wide.onnx");
    textModel("wide", WIDE, false, WIDE).writeTo(wide);
    spark.conf().set("spark.sparkinfer.model.wide.path", wide.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.wide.tokenizer", tokenizer);
    // An input of 2^32 × 2^32 values per row: the product wraps around to 0 in long.
    // One partition: both texts in one batch.
    spark.sql("SELECT * FROM VALUES ('a first text with several tokens'), ('another one') AS docs(t)").coalesce(1)
        .createOrReplaceTempView("shape_docs");
    Path huge = folder.resolve("huge.onnx");
    OnnxModelBuilder.create("huge")
        .input("x", OnnxElementType.FLOAT, "batch", 1L << 32, 1L << 32)
        .initializer("axes", new long[] {1, 2}, 2)
        .node("ReduceSum", List.of("x", "axes"), List.of("y"), Attribute.ofInt("keepdims", 0))
        .output("y", OnnxElementType.FLOAT, "batch")
        .writeTo(huge);
    spark.conf().set("spark.sparkinfer.model.huge.path", huge.toUri().toString());
  }

  /** input_ids [batch, seq] as floats times a [1, width] row: states [batch, seq, width], summed over seq if asked. */
  private static OnnxModelBuilder textModel(String name, int width, boolean keepOneToken, Object declaredWidth) {
    float[] weights = new float[width];
    for (int i = 0; i < width; i++) {
      weights[i] = 0.01f * (i + 1);
    }
    OnnxModelBuilder builder = OnnxModelBuilder.create(name)
        .input("input_ids", OnnxElementType.INT64, "batch", "seq")
        .initializer("axes2", new long[] {2}, 1)
        .initializer("w", weights, 1, width)
        .node("Cast", List.of("input_ids"), List.of("ids"), Attribute.ofInt("to", 1))
        .node("Unsqueeze", List.of("ids", "axes2"), List.of("column"))
        .node("MatMul", List.of("column", "w"), List.of(keepOneToken ? "states" : "last_hidden_state"));
    if (keepOneToken) {
      builder.initializer("axes1", new long[] {1}, 1)
          .node("ReduceSum", List.of("states", "axes1"), List.of("last_hidden_state"), Attribute.ofInt("keepdims", 1));
    }
    return builder.output("last_hidden_state", OnnxElementType.FLOAT, "batch", "seq", declaredWidth);
  }

  @AfterAll
  static void tearDown() {
    spark.catalog().dropTempView("shape_docs");
    for (String model : List.of("shrunk", "shrunk_fixed", "wide", "huge")) {
      SparkInference.unregister(spark, model);
      spark.conf().unset("spark.sparkinfer.model." + model + ".tokenizer");
    }
  }

  @AfterEach
  void reset() {
    SparkTestSessions.reset("spark.sparkinfer.sortWindowRows");
  }

  @Test
  void anOutputShorterThanItsDeclaredTokensIsAClearErrorNotPooledGarbage() {
    // A batch of r texts of n tokens: [r, 1, n] returned where pooling would read [r, n, d].
    assertThatThrownBy(() -> spark.sql("SELECT embed('shrunk', t) FROM shape_docs").collectAsList())
        .satisfies(error -> assertThat(org.apache.commons.lang3.exception.ExceptionUtils.getStackTrace(error))
            .containsPattern("Model 'shrunk' output 'last_hidden_state' has shape \\[(\\d+), 1, (\\d+)\\] for a batch of"
                + " \\1 texts of \\2 tokens; expected \\[\\1, \\2, any\\] \\(declared \\[batch, "));
  }

  @Test
  void aPinnedOutputShorterThanDeclaredIsAnErrorToo() {
    assertThatThrownBy(() -> spark.sql("SELECT embed('shrunk_fixed', t) FROM shape_docs").collectAsList())
        .hasStackTraceContaining("shrunk_fixed");
  }

  @Test
  void aWindowTooLargeForItsVectorsIsRefusedNamingTheKeyAndTheValue() {
    spark.conf().set("spark.sparkinfer.sortWindowRows", "524288");
    assertThatThrownBy(() -> spark.sql("SELECT embed('wide', t) FROM VALUES ('one text'), ('two texts') AS docs(t)")
        .collectAsList())
        .hasStackTraceContaining("spark.sparkinfer.sortWindowRows=524288")
        .hasStackTraceContaining("4096-value embeddings")
        .hasStackTraceContaining("at most 131071");
    spark.conf().set("spark.sparkinfer.sortWindowRows", "1000");
    assertThat(spark.sql("SELECT embed('wide', t) AS e FROM VALUES ('one text'), ('two texts') AS docs(t)")
        .collectAsList()).allSatisfy(row -> assertThat(row.getList(0)).hasSize(WIDE));
  }

  @Test
  void anInputWhoseRowSizeOverflowsIsRefusedAtAnalysis() {
    assertThatThrownBy(() -> spark.sql("SELECT predict('huge', array(1F)) FROM VALUES (1) AS t(x)").collectAsList())
        .isInstanceOf(org.apache.spark.sql.AnalysisException.class)
        .hasMessageContaining("'x' [batch, 4294967296, 4294967296] is too large per row")
        .hasMessageContaining("more than 2^63 values");
  }
}
