package io.github.sparkinfer.spark

import scala.jdk.CollectionConverters._

/**
 * Scala collections as Java ones, for the Java code: Scala 2.13's scala.jdk.javaapi converters do
 * not exist on Scala 2.12 (Spark 3.5's other build), while these decorators compile on both (2.12
 * through scala-collection-compat, which Spark 3.5 ships).
 */
object JavaCollections {

  def asJava[K, V](map: scala.collection.Map[K, V]): java.util.Map[K, V] = map.asJava

  def asJava[T](sequence: scala.collection.Seq[T]): java.util.List[T] = sequence.asJava
}
