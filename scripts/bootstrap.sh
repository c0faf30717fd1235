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

# pip repeats one warning per package for index locations a machine's global pip config lists but
# does not have (159 lines on the machine this was measured on): dropped, everything else is shown.
PIP_NOISE="is ignored: it is neither a file nor a directory"
quiet_pip() {
  local log rc=0
  log=$(mktemp)
  $PIP "$@" >"$log" 2>&1 || rc=$?
  grep -v "$PIP_NOISE" "$log" | { if [ "$rc" -ne 0 ]; then tail -40; else cat; fi; } >&2 || true
  rm -f "$log"
  [ "$rc" -eq 0 ] || fail "pip $1 failed (its last lines are above)"
}

command -v java >/dev/null 2>&1 || fail "Java 17 is required by Spark 3.5 and was not found on PATH (Debian: apt-get install openjdk-17-jre-headless)."
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${java_major:-0}" -ge 17 ] || fail "Java 17 is required by Spark 3.5; found Java ${java_major:-unknown}."
command -v "$PYTHON_BIN" >/dev/null 2>&1 || fail "Python 3.11 ($PYTHON_BIN) is required and was not found."

# sha256sum (GNU) or shasum (macOS); nproc or sysctl for the build's parallelism.
sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }
cores=$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)
want=$(cat constraints.txt setup.py scripts/bootstrap.sh | sha256 | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import horovod.tensorflow.keras, seasonrec" 2>/dev/null; then
  exit 0
fi

echo "bootstrap: preparing $VENV (pinned stack from constraints.txt)"
[ -x "$VENV/bin/python" ] || "$PYTHON_BIN" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
quiet_pip install --upgrade "pip<25" "setuptools<70" wheel
quiet_pip install -c constraints.txt -e ".[local,cpu,dev,serving]"

if ! "$VENV/bin/python" -c "import horovod.tensorflow.keras" 2>/dev/null; then
  mkdir -p "$WHEEL_CACHE"
  if ! ls "$WHEEL_CACHE"/horovod-$HOROVOD_VERSION-*.whl >/dev/null 2>&1; then
    # Pre-flight of the build: a C++ compiler from the system; CMake 3.13-3.x from the system, else
    # the version pinned in constraints.txt installed into the venv (CMake 4 refuses the
    # cmake_minimum_required of Horovod's bundled Gloo). Each missing piece is named in one line.
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 \
      || fail "a C++ compiler (g++ 8 or later) is required to build Horovod $HOROVOD_VERSION once and was not found (Debian: apt-get install g++)."
    cmake_version=$(cmake --version 2>/dev/null | sed -n 's/cmake version \([0-9]*\.[0-9]*\).*/\1/p' || true)
    if [ -z "$cmake_version" ] || [ "$(printf '%s\n3.13\n' "$cmake_version" | sort -V | head -1)" != 3.13 ] \
        || [ "${cmake_version%%.*}" -ge 4 ]; then
      echo "bootstrap: CMake 3.13-3.x not on PATH (found: ${cmake_version:-none}); installing the pinned one into $VENV"
      quiet_pip install -c constraints.txt cmake
      [ -x "$VENV/bin/cmake" ] || fail "CMake 3.13-3.x is required to build Horovod and could not be installed (Debian: apt-get install cmake)."
    fi
    echo "bootstrap: building Horovod $HOROVOD_VERSION from source with TensorFlow + Gloo (about 4-5 minutes, once per machine)"
    PATH="$PWD/$VENV/bin:$PATH" HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
      HOROVOD_WITHOUT_MXNET=1 HOROVOD_WITHOUT_PYTORCH=1 MAKEFLAGS="-j$cores" \
      quiet_pip wheel --no-deps --no-build-isolation -w "$WHEEL_CACHE" "horovod==$HOROVOD_VERSION"
  fi
  # --no-deps: Horovod's own requirements are already pinned above; its extras would pull TF 2.21.
  quiet_pip install --no-deps "$WHEEL_CACHE"/horovod-$HOROVOD_VERSION-*.whl
  quiet_pip install -c constraints.txt cloudpickle psutil pyyaml packaging cffi
fi
TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" -c "import horovod.tensorflow.keras, petastorm, deltalake, pyspark, seasonrec" \
  || fail "the environment does not import; see the pip output above"
echo "$want" > "$STAMP"
echo "bootstrap: $VENV ready"
