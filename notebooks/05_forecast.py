# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Forecast (weekly demand)
# MAGIC
# MAGIC Weekly demand per item with p10/p50/p90 intervals: a global LSTM (Horovod) and statistical baselines, chosen
# MAGIC per series by backtest; writes `gold_weekly_demand` and `demand_forecast`.
# MAGIC
# MAGIC Same code path as `seasonrec forecast`, `make forecast` and `spark-submit jobs/forecast.py`: this notebook
# MAGIC only collects parameters and calls `seasonrec.cli.run_job("forecast", ...)`, which runs
# MAGIC `seasonrec.forecasting.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `as_of` | `SEASONREC_AS_OF` | forecast origin YYYY-MM-DD (default: last full week) |
# MAGIC | `horizon` | `SEASONREC_HORIZON` | weeks ahead (default: forecast.horizon) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec forecast` options |

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
job_options = [*nb.option("--as-of", "as_of", "", "forecast origin YYYY-MM-DD"),
               *nb.option("--horizon", "horizon", "", "weeks ahead"),
               *nb.extra_options()]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `forecast`

# COMMAND ----------

# DBTITLE 1,Run forecast
summary = nb.run_job("forecast", conf, overrides, job_options)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Latest version, row count and a sample of each table the job writes.

# COMMAND ----------

# DBTITLE 1,Outputs
nb.show_tables(conf, overrides, [tables.WEEKLY_DEMAND, tables.DEMAND_FORECAST])
