"""`seasonrec serve`: `mlflow models serve` of the registered champion on loopback (no Spark).

    seasonrec serve                        # models:/seasonrec-recommender@champion on 127.0.0.1:5001
    curl -s 127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
      -d '{"dataframe_records": [{"user_id": "17850", "date": "2011-12-01", "k": 5}]}'
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

# One BLAS/OpenMP thread per server process (set before it starts, so every pool reads it): the model
# answers one request at a time under a lock, and with default pools idle threads spin on the other
# core, doubling the CPU per request on 2 cores (issue #15). A value already in the environment wins.
SINGLE_THREADED_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

DESCRIPTION = "serve the registered champion recommender with `mlflow models serve` (POST /invocations)"
NEEDS_SPARK = False  # run(config, args): the CLI starts no Spark session for this job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``seasonrec serve`` options: ``--model-uri``, ``--host``, ``--port``."""
    parser.add_argument("--model-uri", default=None,
                        help="what to serve (default: models:/<serving.model_name>@<serving.champion_alias>)")
    parser.add_argument("--host", default=None, help="bind address (default: serving.host, loopback)")
    parser.add_argument("--port", type=int, default=None, help="port (default: serving.port)")


def serve_command(config: Any, args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The `mlflow models serve` command line and environment (`SINGLE_THREADED_ENV` unless already set)
    for ``config`` and the CLI options."""
    from seasonrec.serving.registry import model_uri
    from seasonrec.tracking import registry_uri, tracking_uri

    cfg = config.serving
    uri = tracking_uri(config)
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", args.model_uri or model_uri(config),
               "-h", args.host or cfg.host, "-p", str(args.port or cfg.port), "-w", str(cfg.workers),
               "--env-manager", "local"]
    # mlflow starts uvicorn by name: the interpreter's bin directory (the venv's) must be on PATH.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return command, {**SINGLE_THREADED_ENV, **os.environ, "PATH": path, "MLFLOW_TRACKING_URI": uri,
                     "MLFLOW_REGISTRY_URI": registry_uri(config)}


def check_servable(config: Any) -> str:
    """The registry version the champion alias names; JobError in one line when there is none."""
    from seasonrec.context import JobError
    from seasonrec.tracking import client, tracking_uri

    cfg = config.serving
    try:
        return str(client(config).get_model_version_by_alias(cfg.model_name, cfg.champion_alias).version)
    except Exception:  # noqa: BLE001 - any lookup failure means the same thing to the user
        raise JobError(f"no '{cfg.champion_alias}' version of {cfg.model_name} in {tracking_uri(config)}: run "
                       "`make demo` (or `seasonrec train` + `seasonrec register`) first, or pass --model-uri "
                       f"models:/{cfg.model_name}/<version>") from None


def run(config: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Run the server in the foreground until it is stopped; returns its exit code."""
    from seasonrec.features.silver import resolve_salt

    resolve_salt(config.features.salt_env, config.features.default_salt, config.env)  # fail here, not in the server
    if args.model_uri is None:
        check_servable(config)
    command, env = serve_command(config, args)
    print("serving:", " ".join(command[1:]), flush=True)
    return {"exit_code": subprocess.call(command, env=env)}
