#!/usr/bin/env bash
# spark-submit one seasonrec job to a cluster (what `make submit` runs).
#   MASTER=spark://host:7077 CONF=conf/cluster.yaml SET="training.epochs=2" scripts/submit.sh features [job options]
# Environment:
#   MASTER          cluster master URL (required): spark://host:port, yarn, k8s://..., local[2]
#   CONF            seasonrec config file (default conf/cluster.yaml); SET: space-separated key=value overrides
#   DELTA_PACKAGES  e.g. io.delta:delta-spark_2.12:3.2.0: adds --packages and the Delta SQL extension/catalog
#                   (leave empty on clusters with Delta preinstalled or to use the delta-rs commit engine)
#   SUBMIT_ARGS     extra spark-submit options, e.g. "--total-executor-cores 2 --executor-memory 2g"
#   PYSPARK_PYTHON  interpreter on the executors (default: this repo's .venv/bin/python; on a real
#                   cluster, the path of the env that has seasonrec, TensorFlow and Horovod on every node)
# The job file may also be a path to a .py file (handy for smoke tests).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "submit: $*" >&2; exit 2; }

JOB=${1:-}
[ -n "$JOB" ] || fail "no job given; usage: MASTER=spark://host:7077 scripts/submit.sh JOB [job options]"
shift
if [ -f "jobs/$JOB.py" ]; then
  ENTRY=jobs/$JOB.py
elif [[ "$JOB" == *.py && -f "$JOB" ]]; then
  ENTRY=$JOB
else
  allowed=$(cd jobs && ls ./*.py | sed 's|^\./||; s|\.py$||' | paste -sd, | sed 's/,/, /g')
  fail "unknown job '$JOB'; allowed: $allowed"
fi
[ -n "${MASTER:-}" ] || fail "MASTER is not set (e.g. MASTER=spark://host:7077)"
CONF=${CONF:-conf/cluster.yaml}
[ -r "$CONF" ] || fail "config file $CONF not found"
PY_FILES=${PY_FILES:-dist/seasonrec.zip}
[ -r "$PY_FILES" ] || fail "$PY_FILES not found; run 'make package' first"
if [ "$PY_FILES" = dist/seasonrec.zip ] && [ -n "$(find lib/seasonrec -name '*.py' -newer "$PY_FILES" -print -quit)" ]; then
  fail "$PY_FILES is older than lib/seasonrec; run 'make package' (make submit does it for you)"
fi
EXEC_PYTHON=${PYSPARK_PYTHON:-$(pwd)/.venv/bin/python}
DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-$EXEC_PYTHON}
if [ -n "${SPARK_HOME:-}" ]; then
  SPARK_SUBMIT=$SPARK_HOME/bin/spark-submit
else
  SPARK_SUBMIT=.venv/bin/spark-submit
fi
[ -x "$SPARK_SUBMIT" ] || fail "spark-submit not found at $SPARK_SUBMIT (set SPARK_HOME or run 'make setup')"

args=(
  --master "$MASTER"
  --name "seasonrec-$(basename "$ENTRY" .py)"
  --py-files "$PY_FILES"
  --conf spark.sql.session.timeZone=UTC
  --conf spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS
  --conf spark.pyspark.python="$EXEC_PYTHON"
  --conf spark.pyspark.driver.python="$DRIVER_PYTHON"
  --conf spark.executorEnv.PYSPARK_PYTHON="$EXEC_PYTHON"
  --conf spark.executorEnv.TF_CPP_MIN_LOG_LEVEL=2
  --conf spark.driver.extraJavaOptions="-Dlog4j2.configurationFile=file:$(pwd)/scripts/log4j2-submit.properties"
)
if [ -n "${DELTA_PACKAGES:-}" ]; then
  args+=(
    --packages "$DELTA_PACKAGES"
    --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension
    --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog
  )
fi
set -f  # no globbing: SUBMIT_ARGS and SET are word lists, split on spaces only
# shellcheck disable=SC2206
extra=(${SUBMIT_ARGS:-})
set_args=()
for kv in ${SET:-}; do set_args+=(--set "$kv"); done

export PYSPARK_PYTHON=$EXEC_PYTHON PYSPARK_DRIVER_PYTHON=$DRIVER_PYTHON
[ -n "${SUBMIT_DRY_RUN:-}" ] && SPARK_SUBMIT="echo $SPARK_SUBMIT"
exec $SPARK_SUBMIT "${args[@]}" ${extra[@]+"${extra[@]}"} "$ENTRY" --conf "$CONF" ${set_args[@]+"${set_args[@]}"} "$@"
