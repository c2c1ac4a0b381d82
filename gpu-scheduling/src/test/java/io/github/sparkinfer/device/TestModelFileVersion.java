package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class TestModelFileVersion {
  private static final ModelFileVersion VERSION =
      new ModelFileVersion("hdfs://nn/models/m.onnx", 1_700_000_000_000L, 22_972_370L);

  @Test
  void localFolderIsTheSameForTheSameVersion() {
    ModelFileVersion same =
        new ModelFileVersion("hdfs://nn/models/m.onnx", 1_700_000_000_000L, 22_972_370L);

    assertThat(same).isEqualTo(VERSION).hasSameHashCodeAs(VERSION);
    assertThat(same.indexName()).isEqualTo(VERSION.indexName());
    assertThat(VERSION.indexName()).matches("[0-9a-f]{32}");
    assertThat(VERSION.localBaseName()).isEqualTo("m.onnx");
  }

  @Test
  void localFolderChangesWithUriModificationTimeAndLength() {
    assertThat(new ModelFileVersion("hdfs://nn/models/n.onnx", 1_700_000_000_000L, 22_972_370L))
        .isNotEqualTo(VERSION)
        .extracting(ModelFileVersion::indexName)
        .isNotEqualTo(VERSION.indexName());
    assertThat(new ModelFileVersion("hdfs://nn/models/m.onnx", 1_700_000_000_001L, 22_972_370L))
        .isNotEqualTo(VERSION)
        .extracting(ModelFileVersion::indexName)
        .isNotEqualTo(VERSION.indexName());
    assertThat(new ModelFileVersion("hdfs://nn/models/m.onnx", 1_700_000_000_000L, 22_972_371L))
        .isNotEqualTo(VERSION)
        .extracting(ModelFileVersion::indexName)
        .isNotEqualTo(VERSION.indexName());
  }

  @Test
  void localBaseNameKeepsOnlySafeCharacters() {
    assertThat(new ModelFileVersion("s3a://bucket/my model (v2).onnx", 1L, 2L).localBaseName())
        .isEqualTo("my_model__v2_.onnx");
    assertThat(new ModelFileVersion("s3a://bucket/", 1L, 2L).localBaseName())
        .isEqualTo("model.onnx");
  }
}
