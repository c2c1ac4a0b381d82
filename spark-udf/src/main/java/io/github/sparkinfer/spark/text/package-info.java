/**
 * The text path of embed() and predict() on text models: one tokenizer per executor and file,
 * tokenizing ahead of the model on another thread, windows of rows sorted by token length, batches by
 * token budget, pooling and normalization.
 */
package io.github.sparkinfer.spark.text;
