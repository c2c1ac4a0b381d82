package io.github.sparkinfer.spark.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.TensorSpec;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The layouts of real exporters' decoders (../shared/models/decoders, made by onnxruntime.transformers
 * and ONNX Runtime GenAI's model builder) are read as their genai_config.json describes them, and
 * signatures generate() cannot feed are refused with the model, the tensor and the fix.
 */
class TestDecoderLayout {

  @Test
  void gpt2ExportHasOneCombinedCacheTensorPerLayer() throws Exception {
    DecoderLayout layout = DecoderLayout.of("gpt2", DecoderModels.signatureOf(DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx")));

    // genai_config.json: 5 layers, 4 key/value heads of 8, vocabulary 1,000, past_%d / present_%d.
    assertThat(layout.style()).isEqualTo(DecoderLayout.Style.COMBINED);
    assertThat(layout.layers()).isEqualTo(5);
    assertThat(layout.cacheHeads()).isEqualTo(4);
    assertThat(layout.headSize()).isEqualTo(8);
    assertThat(layout.vocabularySize()).isEqualTo(1000);
    assertThat(layout.cacheType()).isEqualTo("FLOAT");
    assertThat(layout.positionIds()).isNotNull();
    assertThat(layout.pastNames(4)).containsExactly("past_4");
    assertThat(layout.presentNames(4)).containsExactly("present_4");
    assertThat(layout.cacheShape(3, 7)).containsExactly(2, 3, 4, 7, 8);
    // GPT-2's Attention op takes left-padded batches.
    assertThat(PaddingSide.left(DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx"))).isTrue();
  }

  @Test
  void modelBuilderExportHasKeyAndValuePerLayerWithGroupedQueryAttention() throws Exception {
    DecoderLayout layout = DecoderLayout.of("qwen", DecoderModels.signatureOf(DecoderModels.decoder("tiny-qwen35/decoder.onnx")));

    // genai_config.json: 2 layers, 4 attention heads sharing 2 key/value heads of 16, fp16.
    assertThat(layout.style()).isEqualTo(DecoderLayout.Style.KEY_VALUE);
    assertThat(layout.layers()).isEqualTo(2);
    assertThat(layout.cacheHeads()).isEqualTo(2);
    assertThat(layout.headSize()).isEqualTo(16);
    assertThat(layout.vocabularySize()).isEqualTo(1000);
    assertThat(layout.cacheType()).isEqualTo("FLOAT16");
    assertThat(layout.pastNames(1)).containsExactly("past_key_values.1.key", "past_key_values.1.value");
    assertThat(layout.presentNames(1)).containsExactly("present.1.key", "present.1.value");
    assertThat(layout.cacheShape(3, 7)).containsExactly(3, 2, 7, 16);
    // GroupQueryAttention reads each row's cache from position 0: right padding.
    assertThat(PaddingSide.left(DecoderModels.decoder("tiny-qwen35/decoder.onnx"))).isFalse();
  }

  @Test
  void aModelWithoutACacheIsRefusedNamingItsInputsAndTheExport() {
    ModelSignature mlp = new ModelSignature(List.of(DecoderModels.spec("features", "FLOAT", -1, 64)), List.of(DecoderModels.spec("scores", "FLOAT", -1, 16)));

    assertThatThrownBy(() -> DecoderLayout.of("mlp", mlp))
        .hasMessageContaining("Model 'mlp' has no key/value cache inputs")
        .hasMessageContaining("[features]")
        .hasMessageContaining("text-generation-with-past");
  }

  @Test
  void hostileCacheSignaturesAreRefusedBeforeAnythingIsSized() {
    // A layer number from the file past any real decoder: refused, not used to size a list.
    assertThatThrownBy(() -> DecoderLayout.of("m", keyValueModel(List.of(0, 2147483647), "FLOAT16", 2, 16)))
        .hasMessageContaining("past_key_values.2147483647.key").hasMessageContaining("1024 layers");
    // Layers 0 and 2 without 1.
    assertThatThrownBy(() -> DecoderLayout.of("m", keyValueModel(List.of(0, 2), "FLOAT", 2, 16)))
        .hasMessageContaining("numbered 0 to 1 without gaps");
    // Symbolic heads: nothing to size the cache by.
    assertThatThrownBy(() -> DecoderLayout.of("m", keyValueModel(List.of(0), "FLOAT", -1, 16)))
        .hasMessageContaining("cache input 'past_key_values.0.key' is float[-1, -1, -1, 16]")
        .hasMessageContaining("fixed heads and head size");
    // A vocabulary that would wrap an int when per-row arrays are sized by it.
    ModelSignature huge = keyValueModel(List.of(0), "FLOAT", 2, 16);
    List<TensorSpec> outputs = new ArrayList<>(huge.outputs());
    outputs.set(0, DecoderModels.spec("logits", "FLOAT", -1, -1, 1L << 32));
    assertThatThrownBy(() -> DecoderLayout.of("m", new ModelSignature(huge.inputs(), outputs)))
        .hasMessageContaining("float[-1, -1, 4294967296]").hasMessageContaining("at most 16777216 tokens");
    // A type the loop cannot hold.
    assertThatThrownBy(() -> DecoderLayout.of("m", keyValueModel(List.of(0), "INT8", 2, 16)))
        .hasMessageContaining("int8");
  }

  @Test
  void aLayerWithAKeyButNoValueAndExtraInputsAreRefused() {
    List<TensorSpec> inputs = new ArrayList<>(tokens());
    inputs.add(DecoderModels.spec("past_key_values.0.key", "FLOAT", -1, 2, -1, 16));
    ModelSignature onlyKey = new ModelSignature(inputs, List.of(DecoderModels.spec("logits", "FLOAT", -1, -1, 1000),
        DecoderModels.spec("present.0.key", "FLOAT", -1, 2, -1, 16)));
    assertThatThrownBy(() -> DecoderLayout.of("m", onlyKey)).hasMessageContaining("layer 0 has only its past_key_values.0.key");

    ModelSignature merged = keyValueModel(List.of(0), "FLOAT", 2, 16);
    List<TensorSpec> withBranch = new ArrayList<>(merged.inputs());
    withBranch.add(DecoderModels.spec("use_cache_branch", "BOOL", 1));
    assertThatThrownBy(() -> DecoderLayout.of("m", new ModelSignature(withBranch, merged.outputs())))
        .hasMessageContaining("[use_cache_branch]");
  }

  private static ModelSignature keyValueModel(List<Integer> layers, String type, long heads, long headSize) {
    List<TensorSpec> inputs = new ArrayList<>(tokens());
    List<TensorSpec> outputs = new ArrayList<>(List.of(DecoderModels.spec("logits", "FLOAT", -1, -1, 1000)));
    for (int layer : layers) {
      for (String part : List.of("key", "value")) {
        inputs.add(DecoderModels.spec("past_key_values." + layer + "." + part, type, -1, heads, -1, headSize));
        outputs.add(DecoderModels.spec("present." + layer + "." + part, type, -1, heads, -1, headSize));
      }
    }
    return new ModelSignature(inputs, outputs);
  }

  private static List<TensorSpec> tokens() {
    return List.of(DecoderModels.spec("input_ids", "INT64", -1, -1), DecoderModels.spec("attention_mask", "INT64", -1, -1));
  }

}
