"""What a run prints: seasonrec's own progress, third-party noise kept out unless ``--verbose``.

Quiet (the default):
- Python logging: the ``seasonrec`` loggers at INFO, every other logger (Horovod's Gloo rendezvous
  server, petastorm, py4j's retried-connection traceback, MLflow/alembic) at WARNING or above;
- Python warnings: deprecation/future warnings and Keras' "unseeded initializer" warning raised inside
  third-party packages are ignored, here and inside the Horovod tasks (:func:`quiet_task`);
- TensorFlow's C++ INFO/WARNING lines (``TF_CPP_MIN_LOG_LEVEL=2``, inherited by Spark workers);
- Spark: log4j at ERROR and no console progress bar unless stderr is a terminal (``seasonrec.spark``).

``--verbose`` (``SEASONREC_VERBOSE=1``, also seen by Spark workers and Horovod ranks) keeps all of it.
Errors are never filtered: every logger still passes ERROR, and a failing job ends with its one line.

MLflow prints some notices with ``print`` rather than logging ("Successfully registered model ...",
"Created version ..."): :func:`without_lines` drops those lines around the call that prints them.

Also here: the one-line job summary (:func:`summary_line`; the full JSON goes to a file, see
:func:`write_summary`) and the closing block of a pipeline run (:func:`closing_block`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

VERBOSE_ENV = "SEASONREC_VERBOSE"
FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATEFMT = "%H:%M:%S"
# Third-party loggers that log progress at INFO/WARNING (rendezvous keys, converter cache, store setup).
NOISY_LOGGERS = ("py4j", "petastorm", "horovod", "mlflow", "alembic", "tensorflow", "absl", "urllib3",
                 "numexpr", "matplotlib", "fsspec", "statsforecast")
# MLflow's model-registry notices, printed (not logged) by `log_model(registered_model_name=...)`.
MLFLOW_REGISTRY_NOTICES = re.compile(r"^(Successfully registered model |Registered model .* already exists|"
                                     r"Created version ')")
# Packages whose deprecation notices are not actionable here (pinned stack, see DEVELOPERS.md).
THIRD_PARTY_MODULES = (r"(petastorm|pyarrow|keras|tensorflow|tf_keras|horovod|mlflow|pyspark|statsforecast|"
                       r"lightgbm|sklearn|pandas|numpy|google|absl|h5py|matplotlib|setuptools|pkg_resources|"
                       r"distutils|cloudpickle)(\.|$)")


def is_verbose() -> bool:
    """``--verbose`` in this process or in the CLI process that started it (through the environment)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes")


def configure(verbose: bool = False) -> None:
    """Set up logging and warnings for a CLI run (before Spark starts, so workers inherit the env)."""
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
        root.addHandler(handler)
    logging.getLogger("seasonrec").setLevel(logging.INFO)
    if verbose:
        root.setLevel(logging.INFO)
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.getLogger("py4j").setLevel(logging.WARNING)  # its INFO is every gateway command
        return
    root.setLevel(logging.WARNING)  # e.g. py4j's `logging.info("Exception while sending command.")` retries
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")  # mlflow sets up its own logger at import
    ignore_third_party_warnings()


def ignore_third_party_warnings() -> None:
    """Ignore deprecation/future warnings raised inside the pinned third-party packages."""
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY_MODULES)
    # Keras 2 warns about every reuse of an initializer object; the model seeds TF globally instead.
    warnings.filterwarnings("ignore", message=r"The initializer \w+ is unseeded", category=UserWarning)


def quiet_task(verbose: bool | None = None) -> None:
    """Inside a Horovod rank (or any Spark task): the same filters, unless the run is verbose."""
    if is_verbose() if verbose is None else verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ignore_third_party_warnings()
    for name in ("tensorflow", "absl", "petastorm", "horovod"):
        logging.getLogger(name).setLevel(logging.ERROR)


def stderr_is_terminal() -> bool:
    """True when stderr is an interactive terminal; False when redirected, closed or replaced by an object without
    ``isatty``."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _LineFilter:
    """A text stream that forwards whole lines to ``target`` except those matching ``pattern``."""

    def __init__(self, target: TextIO, pattern: re.Pattern[str]) -> None:
        self.target = target
        self.pattern = pattern
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if not self.pattern.search(line):
                self.target.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def close_pending(self) -> None:
        if self.pending and not self.pattern.search(self.pending):
            self.target.write(self.pending)
        self.pending = ""

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ... of the real stream
        return getattr(self.target, name)


@contextlib.contextmanager
def without_lines(pattern: re.Pattern[str]) -> Iterator[None]:
    """Drop the lines matching ``pattern`` that the block writes to ``sys.stderr`` (every other line
    passes, errors included); nothing is dropped when the run is verbose."""
    if is_verbose():
        yield
        return
    filtered = _LineFilter(sys.stderr, pattern)
    try:
        with contextlib.redirect_stderr(filtered):  # type: ignore[type-var]
            yield
    finally:
        filtered.close_pending()


# ---------------------------------------------------------------- job summaries
SUMMARY_DIR = "runs"
_HEAD_KEYS = ("job", "run_id", "seconds")


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_line(summary: dict[str, Any], path: str | None = None, width: int = 200) -> str:
    """``[job] done in 12.3s: key=value, ... (+N more in PATH)``: the summary's scalars, in order, up to
    ``width`` characters; nested values and the rest stay in the JSON file."""
    head = f"[{summary.get('job', '?')}] done in {_short(summary.get('seconds', '?'))}s"
    parts: list[str] = []
    hidden = 0
    budget = width - len(head)
    for key, value in summary.items():
        if key in _HEAD_KEYS:
            continue
        if value is None or isinstance(value, dict | list | tuple) or len(_short(value)) > 40:
            hidden += 1
            continue
        part = f"{key}={_short(value)}"
        if len(part) + 2 > budget:
            hidden += 1
            continue
        parts.append(part)
        budget -= len(part) + 2
    line = head + (": " + ", ".join(parts) if parts else "")
    if path:
        line += f" (full summary{f', +{hidden} more' if hidden else ''}: {path})"
    elif hidden:
        line += f" (+{hidden} more)"
    return line


def summary_path(report_dir: str, summary: dict[str, Any]) -> str:
    """``<report_dir>/runs/<job>-<run_id>.json``."""
    return os.path.join(report_dir, SUMMARY_DIR, f"{summary.get('job', 'job')}-{summary.get('run_id', 'run')}.json")


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def write_summary(summary: dict[str, Any], report_dir: str) -> str | None:
    """The full summary as JSON under ``<report_dir>/runs/``; None (with a warning) when it cannot be written."""
    path = summary_path(report_dir, summary)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, default=str, indent=2)
    except OSError as exc:
        logging.getLogger("seasonrec").warning("job summary not written to %s: %s", path, exc)
        return None
    return _absolute(path)


def closing_block(config: Any, summaries: list[dict[str, Any]]) -> list[str]:
    """What a finished pipeline leaves behind and how to look at it."""
    from seasonrec import tables
    from seasonrec.tracking import tracking_uri

    lines = ["", f"seasonrec: {len(summaries)} job(s) done in {sum(s.get('seconds', 0) or 0 for s in summaries):.0f}s"]
    report = next((s["report"] for s in reversed(summaries) if s.get("report")), None)
    if report:
        lines.append(f"  report:    {_absolute(report)}")
    lines.append(_tables_line(config.paths, tables.TABLES))
    lines.append(f"  summaries: {_absolute(os.path.join(config.paths.report_dir, SUMMARY_DIR))}/<job>-<run_id>.json")
    uri = tracking_uri(config)
    if uri.startswith("databricks"):
        lines.append(f"  MLflow:    experiment {config.training.mlflow_experiment} in the Databricks workspace")
    else:
        lines.append(f"  MLflow:    mlflow ui --backend-store-uri {uri}")
    return lines


def _tables_line(paths: Any, names: Any) -> str:
    """Where the tables are: ``catalog.schema.<table>`` (catalog tables, listed in Catalog Explorer), else
    ``<lake_root>/<table>`` with the registered tables found there."""
    if paths.table_namespace:
        return f"  tables:    {paths.table_namespace}.<table>"
    lake_root = _absolute(paths.lake_root)
    found = [name for name in names if _exists(lake_root, name)]
    return f"  tables:    {lake_root}/<table>" + (f" ({', '.join(found)})" if found else "")


def _exists(lake_root: str, name: str) -> bool:
    return "://" in lake_root or os.path.isdir(os.path.join(lake_root, name, "_delta_log"))
