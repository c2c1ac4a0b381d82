package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model file, or a SQL SET, is the one thing a user of a shared session controls: it must not
 * read another file, reach another host through the driver, or kill the JVM that reads it. Each
 * case goes through SQL, as such a user would.
 */
class TestHostileModelFiles {
  private static final int ROWS = 2;
  private static final int COLUMNS = 2;
  private static final String PREDICT = "SELECT predict('%s', array(CAST(1 AS FLOAT), CAST(0 AS FLOAT)))";

  @TempDir static Path temp;
  private static SparkSession spark;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSessions.shared();
  }

  @AfterEach
  void tearDown() {
    for (String model : List.of("leak", "har", "viewfs", "deep", "mlp")) {
      SparkInference.unregister(spark, model);
    }
    spark.conf().unset("fs.file.impl");
    spark.conf().unset("fs.file.impl.disable.cache");
    spark.conf().unset("fs.viewfs.mounttable.models.link./m");
  }

  @Test
  void externalDataOutsideTheModelsFolderIsRefusedNamingTheTensorAndNeverRead() throws Exception {
    // A file the model's author must not read: four floats as ORT would take them for w.
    Path secret = Files.createDirectories(temp.resolve("secret")).resolve("w.bin");
    Files.write(secret, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putFloat(11).putFloat(22)
        .putFloat(33).putFloat(44).array());
    int variant = 0;
    for (String location : List.of("file:" + secret, "file:/etc/hostname", "hdfs:/user/svc/x", "sub/../../secret/w.bin",
        "a:b", "*/_ORT_MEM_ADDR_/*", "..\\secret\\w.bin", secret.toString())) {
      Path folder = Files.createDirectories(temp.resolve("leak" + variant++).resolve("models"));
      Files.createDirectories(folder.resolve("sub"));
      Files.write(folder.resolve("m.onnx"), HostileModels.externalMatMul(location, "0", "16", ROWS, COLUMNS));
      spark.conf().set("spark.sparkinfer.model.leak.path", folder.resolve("m.onnx").toUri().toString());
      assertThatThrownBy(() -> spark.sql(String.format(PREDICT, "leak")).collectAsList())
          .as(location)
          .isInstanceOf(AnalysisException.class)
          .hasMessageContaining("Cannot load model 'leak'")
          .hasMessageContaining("its tensor 'w' references external data at '" + location + "'")
          .hasMessageContaining("only a file inside the model's own folder may be referenced");
    }
  }

  @Test
  void externalDataRangesPastTheFileOrNotNumbersAreRefused() throws Exception {
    Path folder = Files.createDirectories(temp.resolve("ranges"));
    Files.write(folder.resolve("w.bin"), new byte[16]);
    String[][] cases = {
        {"8", "16", "at offset 8, length 16, past the end of that 16-byte file"},
        {"0", "9223372036854775807", "is not a number from 0 to 999999999999999999"},
        {"999999999999999999", "16", "at offset 999999999999999999, length 16, past the end"},
        {"-1", "16", "the offset '-1', which is not a number"},
        {"0", "99999999999999999999", "the length '99999999999999999999', which is not a number"}};
    for (String[] range : cases) {
      Files.write(folder.resolve("m.onnx"), HostileModels.externalMatMul("w.bin", range[0], range[1], ROWS, COLUMNS));
      spark.conf().set("spark.sparkinfer.model.leak.path", folder.resolve("m.onnx").toUri().toString());
      assertThatThrownBy(() -> spark.sql(String.format(PREDICT, "leak")).collectAsList())
          .as("offset %s length %s", range[0], range[1])
          .isInstanceOf(AnalysisException.class)
          .hasMessageContaining("Cannot load model 'leak'")
          .hasMessageContaining("its tensor 'w'")
          .hasMessageContaining(range[2]);
    }
    // The same model with a range inside the file loads: the checks refuse only what they must.
    Files.write(folder.resolve("w.bin"), ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putFloat(1)
        .putFloat(2).putFloat(3).putFloat(4).array());
    Files.write(folder.resolve("m.onnx"), HostileModels.externalMatMul("sub/../w.bin", "0", "16", ROWS, COLUMNS));
    List<Row> rows = spark.sql(String.format(PREDICT, "leak")).collectAsList();
    assertThat(rows.get(0).getList(0)).containsExactly(1f, 2f);
  }

  @Test
  void wrapperSchemesAreRefusedUnlessARootNamesThem() {
    spark.conf().set("spark.sparkinfer.model.har.path", "har://http-127.0.0.1:9/x.har/m.onnx");
    assertThatThrownBy(() -> spark.sql("SELECT * FROM model_info('har')").collectAsList())
        .isInstanceOf(AnalysisException.class)
        .hasMessageContaining("Cannot load model 'har' from har://http-127.0.0.1:9/x.har/m.onnx: the scheme har: is"
            + " refused unless spark.sparkinfer.model.allowedRoots allows it")
        .hasMessageContaining("have the application set spark.sparkinfer.model.allowedRoots to include har://");
    spark.conf().set("fs.viewfs.mounttable.models.link./m", temp.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.viewfs.path", "viewfs://models/m/m.onnx");
    assertThatThrownBy(() -> spark.sql("SELECT * FROM model_info('viewfs')").collectAsList())
        .isInstanceOf(AnalysisException.class)
        .hasMessageContaining("Cannot load model 'viewfs' from viewfs://models/m/m.onnx: the scheme viewfs: is refused"
            + " unless spark.sparkinfer.model.allowedRoots allows it")
        .hasMessageContaining("have the application set spark.sparkinfer.model.allowedRoots to include viewfs://models");
  }

  @Test
  void aSetOfAHadoopKeyDoesNotChangeHowTheDriverReadsModels() throws Exception {
    Path mlp = TestModels.writeMlp(Files.createDirectories(temp.resolve("mlp")));
    spark.conf().set("spark.sparkinfer.model.mlp.path", mlp.toUri().toString());
    // Read through the session's Hadoop configuration, these would make file: a class that does not exist.
    spark.conf().set("fs.file.impl.disable.cache", "true");
    spark.conf().set("fs.file.impl", "org.example.NoSuchFileSystem");
    List<Row> info = spark.sql("SELECT name FROM model_info('mlp') WHERE kind = 'input'").collectAsList();
    assertThat(info).hasSize(1);
    List<Row> rows = spark.sql("SELECT predict('mlp', array_repeat(CAST(1 AS FLOAT), 16))").collectAsList();
    assertThat(rows).hasSize(1);
  }

  @Test
  void deeplyNestedSubgraphsAreALoadErrorAndTheJvmLives() throws Exception {
    Path deep = temp.resolve("deep.onnx");
    Files.write(deep, HostileModels.nestedIfs(20_000));
    assertThat(Files.size(deep)).isLessThan(1 << 20);
    spark.conf().set("spark.sparkinfer.model.deep.path", deep.toUri().toString());
    for (String query : List.of("SELECT * FROM model_info('deep')",
        "SELECT predict('deep', array(CAST(1 AS FLOAT)))")) {
      assertThatThrownBy(() -> spark.sql(query).collectAsList())
          .as(query)
          .isInstanceOf(AnalysisException.class)
          .hasMessageContaining("Cannot load model 'deep' from " + deep.toUri())
          .hasMessageContaining("its protobuf nests messages more than 100 deep");
    }
    // Still alive, and still serving models.
    Path mlp = TestModels.writeMlp(Files.createDirectories(temp.resolve("alive")));
    spark.conf().set("spark.sparkinfer.model.mlp.path", mlp.toUri().toString());
    assertThat(spark.sql("SELECT predict('mlp', array_repeat(CAST(1 AS FLOAT), 16))").collectAsList()).hasSize(1);
  }
}
