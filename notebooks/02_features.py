# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Features (silver + gold)
# MAGIC
# MAGIC Builds `silver_interactions`, `silver_items`, the seasonal `calendar` and the gold user/item features plus
# MAGIC leak-free `gold_training_examples` from bronze.
# MAGIC
# MAGIC Same code path as `seasonrec features`, `make features` and `spark-submit jobs/features.py`: this notebook
# MAGIC only collects parameters and calls `seasonrec.cli.run_job("features", ...)`, which runs
# MAGIC `seasonrec.features.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `since` | `SEASONREC_SINCE` | recompute from this date (YYYY-MM-DD) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec features` options |

# COMMAND ----------

# DBTITLE 1,Setup
# seasonrec is the wheel the bundle installs on the cluster (the task's `libraries`), or the project's venv
# locally (`make setup` installs it editable): never workspace files, so driver and executors run one version.
from seasonrec import tables
from seasonrec.notebook import Notebook

nb = Notebook(globals())  # widgets and display() on Databricks, SEASONREC_<NAME> variables elsewhere
ON_DATABRICKS = nb.on_databricks

# COMMAND ----------

# MAGIC %md
# MAGIC ## Parameters

# COMMAND ----------

# DBTITLE 1,Parameters
conf, overrides = nb.config_params()
job_options = [*nb.option("--since", "since", "", "recompute from this date"), *nb.extra_options()]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `features`

# COMMAND ----------

# DBTITLE 1,Run features
summary = nb.run_job("features", conf, overrides, job_options)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Latest version, row count and a sample of each table the job writes.

# COMMAND ----------

# DBTITLE 1,Outputs
nb.show_tables(conf, overrides, [tables.SILVER_INTERACTIONS, tables.CALENDAR, tables.ITEM_FEATURES,
                                 tables.USER_FEATURES, tables.TRAINING_EXAMPLES])
