# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · end to end
# MAGIC
# MAGIC Runs ingest → features → train → register → score → forecast → evaluate in order, each through
# MAGIC `seasonrec.cli.run_job` (the code path of `seasonrec pipeline`, `make demo` and the Databricks workflow
# MAGIC in `databricks.yml`), then lists every Delta table with its version.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, `SEASONREC_<NAME>` environment variables elsewhere:
# MAGIC
# MAGIC | widget | meaning |
# MAGIC |---|---|
# MAGIC | `conf` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | space-separated `section.key=value` overrides |
# MAGIC | `jobs` | comma-separated subset of the stages, in order |
# MAGIC | `date` | scoring context date (`score --date`) |
# MAGIC | `as_of` / `horizon` | forecast origin and weeks ahead |
# MAGIC | `split` | evaluation split (validation/test) |

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
PIPELINE = "ingest,features,train,register,score,forecast,evaluate"
jobs = [name.strip() for name in nb.param("jobs", PIPELINE, "jobs").split(",") if name.strip()]
score_date = nb.option("--date", "date", "", "score date (also the serving snapshot date)")
stage_options = {
    "score": score_date,
    "register": score_date,
    "forecast": [*nb.option("--as-of", "as_of", "", "forecast as-of"),
                 *nb.option("--horizon", "horizon", "", "weeks ahead")],
    "evaluate": nb.option("--split", "split", "test", "evaluation split"),
}

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the pipeline

# COMMAND ----------

# DBTITLE 1,Run
summaries = nb.run_jobs(jobs, conf, overrides, stage_options)
{job: summary["seconds"] for job, summary in summaries.items()}

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs

# COMMAND ----------

# DBTITLE 1,Outputs
ALL_TABLES = [value for name, value in vars(tables).items() if name.isupper() and isinstance(value, str)]
nb.show_tables(conf, overrides, ALL_TABLES, rows=0)
report = summaries.get("evaluate", {}).get("report")
if report:
    print("evaluation report:", report)
