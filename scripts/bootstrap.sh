#!/usr/bin/env bash
# Creates/updates the repo-local virtualenv (.venv) with the pinned stack. Idempotent and cached:
# it reinstalls only when constraints.txt or setup.py changed, and builds Horovod from source once
# per machine (the wheel is cached in ~/.cache/seasonrec/wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_BIN=${PYTHON_BIN:-python3.11}
VENV=.venv
STAMP=$VENV/.seasonrec-stamp
WHEEL_CACHE=${SEASONREC_WHEEL_CACHE:-$HOME/.cache/seasonrec/wheels}
HOROVOD_VERSION=0.28.1

fail() { echo "bootstrap: $*" >&2; exit 1; }

command -v java >/dev/null 2>&1 || fail "Java 17 is required by Spark 3.5 and was not found on PATH (Debian: apt-get install openjdk-17-jre-headless)."
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${java_major:-0}" -ge 17 ] || fail "Java 17 is required by Spark 3.5; found Java ${java_major:-unknown}."
command -v "$PYTHON_BIN" >/dev/null 2>&1 || fail "Python 3.11 ($PYTHON_BIN) is required and was not found."

want=$(cat constraints.txt setup.py scripts/bootstrap.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import horovod.tensorflow.keras, seasonrec" 2>/dev/null; then
  exit 0
fi

echo "bootstrap: preparing $VENV (pinned stack from constraints.txt)"
[ -x "$VENV/bin/python" ] || "$PYTHON_BIN" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
$PIP install --upgrade "pip<25" "setuptools<70" wheel
$PIP install -c constraints.txt -e ".[local,cpu,dev,serving]"

if ! "$VENV/bin/python" -c "import horovod.tensorflow.keras" 2>/dev/null; then
  mkdir -p "$WHEEL_CACHE"
  if ! ls "$WHEEL_CACHE"/horovod-$HOROVOD_VERSION-*.whl >/dev/null 2>&1; then
    echo "bootstrap: building Horovod $HOROVOD_VERSION from source with TensorFlow + Gloo (about 4-5 minutes, once per machine)"
    HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_MXNET=1 \
      HOROVOD_WITHOUT_PYTORCH=1 MAKEFLAGS="-j$(nproc)" \
      $PIP wheel --no-deps --no-build-isolation -w "$WHEEL_CACHE" "horovod==$HOROVOD_VERSION"
  fi
  # --no-deps: Horovod's own requirements are already pinned above; its extras would pull TF 2.21.
  $PIP install --no-deps "$WHEEL_CACHE"/horovod-$HOROVOD_VERSION-*.whl
  $PIP install -c constraints.txt cloudpickle psutil pyyaml packaging cffi
fi
"$VENV/bin/python" -c "import horovod.tensorflow.keras, petastorm, deltalake, pyspark, seasonrec" \
  || fail "the environment does not import; see the pip output above"
echo "$want" > "$STAMP"
echo "bootstrap: $VENV ready"
