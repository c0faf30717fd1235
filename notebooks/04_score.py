# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Score (full catalog, Spark UDF)
# MAGIC
# MAGIC Scores every user against every item for the season of `date` with a vectorized Spark UDF and writes the top-K
# MAGIC per user to `recommendations` (partitioned by `context_date`).
# MAGIC
# MAGIC Same code path as `seasonrec score`, `make score` and `spark-submit jobs/score.py`: this notebook only
# MAGIC collects parameters and calls `seasonrec.cli.run_job("score", ...)`, which runs `seasonrec.scoring.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `date` | `SEASONREC_DATE` | context date YYYY-MM-DD (default: the job's default) |
# MAGIC | `top_k` | `SEASONREC_TOP_K` | list length (default: scoring.top_k) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec score` options |

# COMMAND ----------

# DBTITLE 1,Setup
import sys
from pathlib import Path

# Outside an installed wheel (a Databricks Repo / workspace files), import seasonrec from ../lib.
sys.path[:0] = [str(p) for p in (Path.cwd() / "lib", Path.cwd().parent / "lib") if (p / "seasonrec").is_dir()]

from seasonrec import tables  # noqa: E402
from seasonrec.notebook import Notebook  # noqa: E402

nb = Notebook(globals())  # widgets and display() on Databricks, SEASONREC_<NAME> variables elsewhere
ON_DATABRICKS = nb.on_databricks

# COMMAND ----------

# MAGIC %md
# MAGIC ## Parameters

# COMMAND ----------

# DBTITLE 1,Parameters
conf, overrides = nb.config_params()
job_options = [*nb.option("--date", "date", "", "context date YYYY-MM-DD"),
               *nb.option("--top-k", "top_k", "", "list length"),
               *nb.extra_options()]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `score`

# COMMAND ----------

# DBTITLE 1,Run score
summary = nb.run_job("score", conf, overrides, job_options)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Latest version, row count and a sample of each table the job writes.

# COMMAND ----------

# DBTITLE 1,Outputs
nb.show_tables(conf, overrides, [tables.RECOMMENDATIONS])
