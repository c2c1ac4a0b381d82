package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.partitioning.StageResources;
import io.github.sparkinfer.spark.plan.BatchPredictExec;
import io.github.sparkinfer.spark.plan.BatchPredictNodes;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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
 * Stage resource keys in Spark's local mode, which has no stage-level scheduling: the keys are read
 * and checked at analysis, shown in the plan, and the query runs with the default profile, saying
 * so (WARN and the "stage resources not applied" metric). The profile itself is exercised on a real
 * cluster by TestStageResourcesCluster.
 */
class TestStageResourcesLocal {
  private static final int ROWS = 120;

  @TempDir static Path folder;

  private static SparkSession spark;
  private static float[][] expected;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    Path mlpFile = TestModels.writeMlp(folder);
    float[][] features = TestModels.randomRows(ROWS, TestModels.MLP_INPUTS, 41);
    expected = TestModels.runFloatModel(mlpFile, "features", features);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      rows.add(RowFactory.create((long) i, TestPredictSql.boxed(features[i])));
    }
    StructType schema = new StructType()
        .add("id", DataTypes.LongType, false)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), false);
    spark.createDataFrame(rows, schema).repartition(3).createOrReplaceTempView("stage_points");
    SparkInference.register(spark, ModelSpec.builder("stage_mlp").path(mlpFile.toUri().toString()).batchSize(32).build());
    SparkInference.register(spark, ModelSpec.builder("stage_mlp2").path(mlpFile.toUri().toString()).batchSize(32).build());
  }

  @AfterEach
  void unsetStageKeys() {
    for (String key : List.of("spark.sparkinfer.stage.task.resource.gpu.amount", "spark.sparkinfer.stage.task.cpus",
        "spark.sparkinfer.model.stage_mlp.stage.task.resource.gpu.amount",
        "spark.sparkinfer.model.stage_mlp.stage.task.gpu.amount",
        "spark.sparkinfer.model.stage_mlp2.stage.task.resource.gpu.amount")) {
      spark.conf().unset(key);
    }
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "stage_mlp");
    SparkInference.unregister(spark, "stage_mlp2");
  }

  @Test
  void localModeRunsWithTheDefaultProfileAndCountsIt() {
    spark.conf().set("spark.sparkinfer.stage.task.resource.gpu.amount", "1");
    spark.conf().set("spark.sparkinfer.model.stage_mlp.stage.task.resource.gpu.amount", "0.5");
    Dataset<Row> scored = spark.sql("SELECT id, predict('stage_mlp', features) AS scores FROM stage_points");

    List<Row> rows = scored.collectAsList();
    assertThat(rows).hasSize(ROWS);
    for (Row row : rows) {
      List<Float> scores = row.getList(1);
      float[] reference = expected[(int) row.getLong(0)];
      for (int i = 0; i < reference.length; i++) {
        assertThat(scores.get(i)).as("score %d of row %d", i, row.getLong(0)).isCloseTo(reference[i], within(1e-6f));
      }
    }
    BatchPredictExec node = BatchPredictNodes.in(scored.queryExecution().executedPlan()).get(0);
    assertThat(node.prediction().binding().stageResources())
        .as("the per-model key wins over the session key")
        .isEqualTo(StageResources.builder().taskResource("gpu", 0.5).build());
    assertThat(node.simpleString(25)).contains("stage resources [task gpu=0.5]");
    assertThat(TestPredictSql.metric(scored, "stageProfileNotApplied")).isEqualTo(1);
    assertThat(TestPredictSql.metric(scored, "stageProfile")).isZero();
  }

  @Test
  void withoutStageKeysNothingIsAskedFor() {
    Dataset<Row> scored = spark.sql("SELECT id, predict('stage_mlp', features) AS scores FROM stage_points");
    assertThat(scored.collectAsList()).hasSize(ROWS);
    BatchPredictExec node = BatchPredictNodes.in(scored.queryExecution().executedPlan()).get(0);
    assertThat(node.prediction().binding().stageResources().isEmpty()).isTrue();
    assertThat(node.simpleString(25)).doesNotContain("stage resources");
    assertThat(TestPredictSql.metric(scored, "stageProfileNotApplied")).isZero();
  }

  @Test
  void dataFrameApiSettingReplacesTheKeys() {
    spark.conf().set("spark.sparkinfer.stage.task.cpus", "2");
    StageResources quarterGpu = StageResources.builder().taskResource("gpu", 0.25).build();
    Dataset<Row> scored = Inference.model("stage_mlp").input("features").stageResources(quarterGpu)
        .transform(spark.table("stage_points"));

    assertThat(scored.collectAsList()).hasSize(ROWS);
    BatchPredictExec node = BatchPredictNodes.in(scored.queryExecution().executedPlan()).get(0);
    assertThat(node.prediction().binding().stageResources()).isEqualTo(quarterGpu);
    assertThat(TestPredictSql.metric(scored, "stageProfileNotApplied")).isEqualTo(1);
  }

  /**
   * Spark gives a stage one profile: two calls asking for different resources in one stage are
   * found before Spark's own error (which names no model); a shuffle between them separates them.
   */
  @Test
  void differentStageResourcesInOneStageAreFoundAndNamed() {
    spark.conf().set("spark.sparkinfer.model.stage_mlp.stage.task.resource.gpu.amount", "1");
    spark.conf().set("spark.sparkinfer.model.stage_mlp2.stage.task.resource.gpu.amount", "0.5");
    Dataset<Row> together = spark.sql(
        "SELECT id, predict('stage_mlp', features) AS a, predict('stage_mlp2', features) AS b FROM stage_points");
    together.collectAsList();
    List<BatchPredictExec> nodes = BatchPredictNodes.in(together.queryExecution().executedPlan());
    assertThat(nodes).hasSize(2);
    List<String> conflicts = new ArrayList<>();
    for (BatchPredictExec node : nodes) {
      scala.Option<String> conflict = BatchPredictNodes.conflictInStage(node);
      if (conflict.isDefined()) {
        conflicts.add(conflict.get());
      }
    }
    assertThat(conflicts).as("the upper call sees the lower one").singleElement().satisfies(message ->
        assertThat(message).contains("'stage_mlp'").contains("'stage_mlp2'").contains("[task gpu=1]")
            .contains("[task gpu=0.5]").contains("repartition").contains("profileMergeConflicts"));

    Dataset<Row> apart = spark.sql("SELECT id, features, predict('stage_mlp', features) AS a FROM stage_points")
        .repartition(2).selectExpr("id", "a", "predict('stage_mlp2', features) AS b");
    apart.collectAsList();
    for (BatchPredictExec node : BatchPredictNodes.in(apart.queryExecution().executedPlan())) {
      assertThat(BatchPredictNodes.conflictInStage(node).isDefined()).as("calls with a shuffle between").isFalse();
    }
  }

  @Test
  void aMistypedKeyFailsTheQueryNamingIt() {
    spark.conf().set("spark.sparkinfer.model.stage_mlp.stage.task.gpu.amount", "1");
    assertThatThrownBy(() -> spark.sql("SELECT predict('stage_mlp', features) FROM stage_points"))
        .isInstanceOf(AnalysisException.class)
        .hasMessageContaining("spark.sparkinfer.model.stage_mlp.stage.task.gpu.amount=1")
        .hasMessageContaining("model 'stage_mlp'")
        .hasMessageContaining("task.resource.<resource>.amount");
  }
}
