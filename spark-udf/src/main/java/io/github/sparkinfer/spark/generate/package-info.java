/**
 * Text generation over decoder-only ONNX models with a key/value cache (generate(), issue 30; not
 * reachable from SQL yet): the cache layout read from the model ({@link
 * io.github.sparkinfer.spark.generate.DecoderLayout}), the decode loop on ONNX Runtime, the choice of
 * each next token, prompt templates and text through the model's tokenizer. docs/design/generate.md
 * says what ONNX Runtime requires and what is left.
 */
package io.github.sparkinfer.spark.generate;
