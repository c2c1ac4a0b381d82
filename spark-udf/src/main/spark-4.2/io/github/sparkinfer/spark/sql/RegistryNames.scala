package io.github.sparkinfer.spark.sql

import java.util.Locale

import org.apache.spark.sql.catalyst.FunctionIdentifier

/**
 * Spark 4.2 shim: the registry asserts that a name is qualified (system.builtin.predict), and 4.2's
 * own SparkSessionExtensions qualifies injected functions the same way (FunctionRegistry's
 * builtinFunctionIdentifier with CatalogManager's SYSTEM_CATALOG_NAME and BUILTIN_NAMESPACE, all
 * private to Spark, hence the names here).
 */
private[sql] object RegistryNames {
  private val SystemCatalog = "system"
  private val BuiltinNamespace = "builtin"

  def registered(id: FunctionIdentifier): FunctionIdentifier =
    if (id.catalog.isDefined && id.database.isDefined) id
    else FunctionIdentifier(id.funcName.toLowerCase(Locale.ROOT), Some(BuiltinNamespace), Some(SystemCatalog))
}
