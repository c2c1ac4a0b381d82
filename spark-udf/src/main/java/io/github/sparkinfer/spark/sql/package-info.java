/**
 * The SQL functions sparkinfer registers (predict, embed, tokenize, compare_outputs, model_info), their
 * usage texts for DESCRIBE FUNCTION, and the expressions they build. The expressions only describe a
 * model call; the optimizer rule in {@code plan} turns them into a batch node.
 */
package io.github.sparkinfer.spark.sql;
