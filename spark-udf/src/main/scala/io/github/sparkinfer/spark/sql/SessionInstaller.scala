package io.github.sparkinfer.spark.sql

import io.github.sparkinfer.spark.plan.BatchPredictStrategy
import io.github.sparkinfer.spark.plan.ExtractPredictions
import io.github.sparkinfer.spark.plan.ReadColumnarInput

import org.apache.spark.sql.SparkSessionExtensions
import org.apache.spark.sql.SparkSession

/** Puts sparkinfer's functions, optimizer rule and planner strategy into a session. */
object SessionInstaller {

  def inject(extensions: SparkSessionExtensions): Unit = {
    // Analysis: the SQL functions, resolved against the model registry (usage for DESCRIBE FUNCTION).
    SqlFunctions.scalarFunctions.foreach(extensions.injectFunction)
    SqlFunctions.tableFunctions.foreach(extensions.injectTableFunction)

    // Analysis: a SET of an application key (a path, a library, a host, a shared size) is refused.
    extensions.injectCheckRule(session => RefuseApplicationSettings(session))

    // Optimization: model calls into BatchPredict nodes, after operator optimization so that
    // pushed-down filters cut the rows the model sees.
    extensions.injectPreCBORule(_ => ExtractPredictions)

    // Planning: BatchPredict as the physical node that runs a task's batches.
    extensions.injectPlannerStrategy(_ => BatchPredictStrategy)

    // Columnar transitions: the node reads a vectorized scan or a cache itself, not through ColumnarToRow.
    extensions.injectColumnar(_ => ReadColumnarInput)
  }

  /** For a session that is already running (notebooks): same functions, same rule, same strategy. */
  def install(session: SparkSession): Unit = synchronized {
    // Names as this Spark line's registry takes them (RegistryNames: the shim of the line).
    SqlFunctions.scalarFunctions.foreach {
      case (id, info, builder) => SessionBridge.functionRegistry(session).registerFunction(RegistryNames.registered(id), info, builder)
    }
    SqlFunctions.tableFunctions.foreach {
      case (id, info, builder) =>
        SessionBridge.tableFunctionRegistry(session).registerFunction(RegistryNames.registered(id), info, builder)
    }
    val experimental = SessionBridge.experimental(session)
    if (!experimental.extraOptimizations.contains(ExtractPredictions)) {
      experimental.extraOptimizations = experimental.extraOptimizations :+ ExtractPredictions
    }
    if (!experimental.extraStrategies.contains(BatchPredictStrategy)) {
      experimental.extraStrategies = experimental.extraStrategies :+ BatchPredictStrategy
    }
  }

  // Under the name this line's registry keeps (RegistryNames), as for install().
  def isInstalled(session: SparkSession): Boolean =
    SessionBridge.functionRegistry(session).functionExists(
      RegistryNames.registered(org.apache.spark.sql.catalyst.FunctionIdentifier(SqlFunctions.PredictName)))
}
