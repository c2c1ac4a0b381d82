package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A model packaging ONNX Runtime's decode loop, read as a stream: the node, its tokens, its decoder's vocabulary. */
class TestPackagedSearch {
  @TempDir Path folder;

  @Test
  void readsTheNodeItsTokensAndItsDecodersVocabulary() throws Exception {
    OnnxModel decoder = OnnxModel.read(TestGenerationGraph.sharedDecoder("tiny-random-gpt2-fp32/past.onnx"));
    Path greedy = folder.resolve("greedy.onnx");
    GenerationGraph.of("gpt2", decoder).greedySearch(98, 7).writeTo(greedy);
    PackagedSearch search = PackagedSearch.read(greedy);
    assertThat(search.operator()).isEqualTo("GreedySearch");
    assertThat(search.eosTokenId()).isEqualTo(98);
    assertThat(search.padTokenId()).isEqualTo(7);
    assertThat(search.vocabularySize()).isEqualTo(1000);
    Path sampling = folder.resolve("sampling.onnx");
    GenerationGraph.of("gpt2", decoder).sampling(5, 6, 1f, 0.9f).writeTo(sampling);
    assertThat(PackagedSearch.read(sampling).operator()).isEqualTo("Sampling");
    // The decoder itself packages no loop.
    assertThat(PackagedSearch.read(TestGenerationGraph.sharedDecoder("tiny-random-gpt2-fp32/past.onnx"))).isNull();
  }

  @Test
  void aFileThatIsNoModelIsAnIOException() throws Exception {
    Path junk = folder.resolve("junk.onnx");
    Files.write(junk, new byte[] {0x3a, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f, 1, 2});
    assertThatThrownBy(() -> PackagedSearch.read(junk)).isInstanceOf(java.io.IOException.class);
  }
}
