package io.github.sparkinfer.spark.generate;

import ai.onnxruntime.OrtException;

/** Decodes a batch of encoded prompts: a Java loop over runs ({@link DecodeLoop}) or one run ({@link GraphDecoding}). */
interface BatchDecoder {
  /** Each prompt's generation, in the prompts' order; a row also ends where {@code stopCheck} says (null: never). */
  DecodeLoop.Generation[] generate(int[][] prompts, GenerationOptions options, int padToken,
      DecodeLoop.StopCheck stopCheck) throws OrtException;

  long vocabularySize();

  String modelName();
}
