package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;

import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Cross-task batching of embed() (spark.sparkinfer.crossTaskBatching=true, the default on GPUs):
 * the texts of the executor's concurrent tasks share batches, each task still gets its own rows in
 * its order with the vectors an independent embedder gives (langchain4j's all-MiniLM-L6-v2 classes),
 * and a task killed while its texts wait in the queue leaves none of them behind.
 */
class TestCrossTaskBatching {
  private static final String[] WORDS = {"river", "stone", "quiet", "market", "lantern", "orbit", "copper", "meadow"};

  @TempDir static Path folder;
  private static SparkSession spark;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSessions.shared();
    spark.conf().set("spark.sparkinfer.model.shared_minilm.path",
        TestModels.copyResource(folder, "all-minilm-l6-v2.onnx").toUri().toString());
    spark.conf().set("spark.sparkinfer.model.shared_minilm.tokenizer",
        TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json").toUri().toString());
    spark.conf().set("spark.sparkinfer.model.shared_minilm.crossTaskBatching", "true");
    // Room for batches larger than one task's rows.
    spark.conf().set("spark.sparkinfer.model.shared_minilm.tokenBudget", "16384");
    spark.conf().set("spark.sparkinfer.model.shared_minilm.batchSize", "4096");
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "shared_minilm");
    for (String key : new String[] {"path", "tokenizer", "crossTaskBatching", "tokenBudget", "batchSize"}) {
      spark.conf().unset("spark.sparkinfer.model.shared_minilm." + key);
    }
  }

  /** Text i: a sentence of 2 to 14 words, so batches are formed by length across tasks. */
  static String text(long i) {
    StringBuilder text = new StringBuilder("note " + i);
    for (int w = 0; w < i % 13; w++) {
      text.append(' ').append(WORDS[(int) ((i * 7 + w * 3) % WORDS.length)]);
    }
    return text.toString();
  }

  private static Dataset<Row> documents(int count, int partitions) {
    List<Row> rows = new ArrayList<>();
    for (long i = 0; i < count; i++) {
      rows.add(RowFactory.create(i, i % 41 == 5 ? null : text(i)));
    }
    return spark.createDataFrame(rows, new StructType()
            .add("id", DataTypes.LongType, false).add("body", DataTypes.StringType, true))
        .repartition(partitions).sortWithinPartitions("id");
  }

  @Test
  void textsOfSeveralTasksShareBatchesAndEachTaskGetsItsRowsInOrder() {
    documents(600, 4).createOrReplaceTempView("shared_docs");
    Dataset<Row> result = spark.sql(
        "SELECT spark_partition_id() AS part, id, embed('shared_minilm', body) AS e FROM shared_docs");
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(600);

    EmbeddingModel oracle = new AllMiniLmL6V2EmbeddingModel();
    Map<Integer, Long> lastId = new HashMap<>();
    double worst = 1;
    for (Row row : rows) {
      int part = row.getInt(0);
      long id = row.getLong(1);
      assertThat(id).as("rows of partition %d leave in their order", part).isGreaterThan(lastId.getOrDefault(part, -1L));
      lastId.put(part, id);
      if (id % 41 == 5) {
        assertThat(row.isNullAt(2)).as("null text gives null").isTrue();
        continue;
      }
      float[] actual = TestEmbed.floats(row.getList(2));
      double cosine = TestEmbed.cosine(actual, oracle.embed(text(id)).content().vector());
      worst = Math.min(worst, cosine);
      assertThat(cosine).as("cosine for text %d", id).isGreaterThanOrEqualTo(0.9999);
    }
    assertThat(lastId).as("four tasks").hasSize(4);
    long batches = TestPredictSql.metric(result, "batches");
    long crossTask = TestPredictSql.metric(result, "crossTaskBatches");
    // The first runner takes the first chunk it finds; the rows that pile up while it runs come from all tasks.
    assertThat(crossTask).as("batches mixing tasks, of %d", batches).isGreaterThan(0);
    assertThat(TestPredictSql.metric(result, "modelRows")).isEqualTo(600 - 15);
    assertThat(TestPredictSql.metric(result, "nullRows")).isEqualTo(15);
    assertThat(TestPredictSql.metric(result, "numOutputRows")).isEqualTo(600);
  }

  /** A bad value of the per-model or the session key is an analysis error naming that key and the choices. */
  @Test
  void anInvalidValueIsRejectedBeforeTheQueryRuns() {
    documents(10, 1).createOrReplaceTempView("bad_docs");
    spark.conf().set("spark.sparkinfer.model.shared_minilm.crossTaskBatching", "always");
    try {
      org.assertj.core.api.Assertions.assertThatThrownBy(() ->
              spark.sql("SELECT embed('shared_minilm', body) FROM bad_docs").collect())
          .hasMessageContaining("Invalid value 'always' for spark.sparkinfer.model.shared_minilm.crossTaskBatching")
          .hasMessageContaining("use auto");
      // The per-model key wins over the session key; unset, the session key is read and checked.
      spark.conf().unset("spark.sparkinfer.model.shared_minilm.crossTaskBatching");
      spark.conf().set("spark.sparkinfer.crossTaskBatching", "1");
      org.assertj.core.api.Assertions.assertThatThrownBy(() ->
              spark.sql("SELECT embed('shared_minilm', body) FROM bad_docs").collect())
          .hasMessageContaining("Invalid value '1' for spark.sparkinfer.crossTaskBatching");
    } finally {
      spark.conf().unset("spark.sparkinfer.crossTaskBatching");
      spark.conf().set("spark.sparkinfer.model.shared_minilm.crossTaskBatching", "true");
    }
  }

  @Test
  void aTaskKilledWhileItsTextsAreQueuedLeavesNoneBehind() throws Exception {
    documents(40_000, 4).createOrReplaceTempView("many_docs");
    String group = "cross-task-kill";
    CompletableFuture<Throwable> job = CompletableFuture.supplyAsync(() -> {
      spark.sparkContext().setJobGroup(group, "embed() to be cancelled", true);
      try {
        spark.sql("SELECT id, embed('shared_minilm', body) AS e FROM many_docs").write().format("noop")
            .mode("overwrite").save();
        return null;
      } catch (Throwable e) {
        return e;
      } finally {
        spark.sparkContext().clearJobGroup();
      }
    });
    // Cancel once the embed() stage has its four tasks running: their texts are in the queue.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (!embedStageRunsFourTasks(group)) {
      assertThat(System.nanoTime()).as("the embed() stage started its four tasks").isLessThan(deadline);
      assertThat(job).as("the job is still running").isNotDone();
      Thread.onSpinWait();
    }
    spark.sparkContext().cancelJobGroup(group);
    Throwable failure = job.get(120, TimeUnit.SECONDS);
    assertThat(failure).as("the job was cancelled, not finished").isNotNull();
    assertThat(failure.toString() + failure.getCause()).containsIgnoringCase("cancel");
    // A kill waits for a run in flight: the next query starts once the killed tasks have ended.
    while (runsTasks(group)) {
      assertThat(System.nanoTime()).as("the killed tasks ended").isLessThan(deadline);
      Thread.onSpinWait();
    }

    // Rows a killed task left in the queue would be run by the next query's tasks: count its model rows.
    documents(120, 2).createOrReplaceTempView("few_docs");
    Dataset<Row> next = spark.sql("SELECT id, embed('shared_minilm', body) AS e FROM few_docs");
    assertThat(next.collectAsList()).hasSize(120);
    assertThat(TestPredictSql.metric(next, "modelRows")).as("only the next query's own texts ran").isEqualTo(120 - 3);
  }

  private static boolean runsTasks(String group) {
    org.apache.spark.SparkStatusTracker tracker = spark.sparkContext().statusTracker();
    for (int jobId : tracker.getJobIdsForGroup(group)) {
      scala.Option<org.apache.spark.SparkJobInfo> job = tracker.getJobInfo(jobId);
      for (int stageId : job.isDefined() ? job.get().stageIds() : new int[0]) {
        scala.Option<SparkStageInfo> stage = tracker.getStageInfo(stageId);
        if (stage.isDefined() && stage.get().numActiveTasks() > 0) {
          return true;
        }
      }
    }
    return false;
  }

  /** Whether the job's last stage (the one after the shuffle, with embed()) runs four tasks. */
  private static boolean embedStageRunsFourTasks(String group) {
    org.apache.spark.SparkStatusTracker tracker = spark.sparkContext().statusTracker();
    for (int jobId : tracker.getJobIdsForGroup(group)) {
      scala.Option<org.apache.spark.SparkJobInfo> job = tracker.getJobInfo(jobId);
      if (job.isEmpty() || job.get().stageIds().length == 0) {
        continue;
      }
      int last = java.util.Arrays.stream(job.get().stageIds()).max().getAsInt();
      scala.Option<SparkStageInfo> stage = tracker.getStageInfo(last);
      if (stage.isDefined() && stage.get().numActiveTasks() >= 4) {
        return true;
      }
    }
    return false;
  }
}
