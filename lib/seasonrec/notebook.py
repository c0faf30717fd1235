"""What every seasonrec notebook does, in one place: parameters, the job call, the output tables.

Notebooks (``notebooks/*.py``, Databricks source format) only declare their parameters and the
tables they show; the job itself is the same ``seasonrec.cli.run_job`` that ``seasonrec <job>``,
``make <job>`` and ``spark-submit jobs/<job>.py`` run::

    from seasonrec.notebook import Notebook
    nb = Notebook(globals())              # finds Databricks' dbutils / display when they exist
    conf, overrides = nb.config_params()
    summary = nb.run_job("score", conf, overrides, nb.option("--date", "date", "", "context date"))
    nb.show_tables(conf, overrides, [tables.RECOMMENDATIONS])

A parameter is a text widget on Databricks (job tasks fill it from ``base_parameters``) and the
environment variable ``SEASONREC_<NAME>`` elsewhere (local runs, tests).
"""

from __future__ import annotations

import os
import shlex
from typing import Any

TRUE_WORDS = ("1", "true", "yes")


class Notebook:
    """A notebook's parameters and job calls, on Databricks (``dbutils`` widgets) or elsewhere (``SEASONREC_<NAME>``
    environment variables); build it with ``Notebook(globals())``."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.dbutils = namespace.get("dbutils")
        self.display = namespace.get("display")

    @property
    def on_databricks(self) -> bool:
        """True when the notebook's namespace has Databricks' ``dbutils``."""
        return self.dbutils is not None

    def param(self, name: str, default: str = "", label: str = "") -> str:
        """Parameter ``name`` as a stripped string: a text widget (created with ``default`` and ``label``) on
        Databricks, else the environment variable ``SEASONREC_<NAME>`` or ``default``."""
        if self.on_databricks:
            self.dbutils.widgets.text(name, default, label or name)
            return self.dbutils.widgets.get(name).strip()
        return os.environ.get(f"SEASONREC_{name.upper()}", default).strip()

    def config_params(self) -> tuple[str, list[str]]:
        """The `conf` file and the `set` overrides (space-separated section.key=value) every notebook takes."""
        conf = self.param("conf", "../conf/databricks.yaml" if self.on_databricks else "conf/local.yaml",
                          "config file")
        return conf, shlex.split(self.param("set", "", "overrides key=value ..."))

    def option(self, flag: str, name: str, default: str = "", label: str = "") -> list[str]:
        """[flag, value] when the parameter has a value, else []."""
        value = self.param(name, default, label)
        return [flag, value] if value else []

    def flag(self, flag: str, name: str, label: str = "") -> list[str]:
        """[flag] when the parameter is true/yes/1 (default false), else []."""
        return [flag] if self.param(name, "false", label).lower() in TRUE_WORDS else []

    def extra_options(self) -> list[str]:
        """The ``options`` parameter split shell-style: more CLI options for the job."""
        return shlex.split(self.param("options", "", "other job options"))

    def run_job(self, job: str, conf: str, overrides: list[str], options: list[str]) -> dict[str, Any]:
        """Run ``job`` as ``seasonrec <job> --conf conf --set k=v ... <options>`` would (through
        `seasonrec.cli.run_job`) and return its summary dict."""
        from seasonrec.cli import build_parser, run_job

        argv = [job, "--conf", conf, *[arg for kv in overrides for arg in ("--set", kv)], *options]
        return run_job(job, build_parser(only=job).parse_args(argv))

    def run_jobs(self, jobs: list[str], conf: str, overrides: list[str],
                 options: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
        """`run_job` for each of ``jobs`` in order, ``options[job]`` as its CLI options; returns the summaries by job.
        An unknown job name raises ConfigError before anything runs."""
        from seasonrec.cli import JOBS
        from seasonrec.config import ConfigError

        unknown = [job for job in jobs if job not in JOBS]
        if unknown:
            raise ConfigError(f"unknown job(s) {unknown}; allowed: {', '.join(JOBS)}")
        return {job: self.run_job(job, conf, overrides, options.get(job, [])) for job in jobs}

    def show_tables(self, conf: str, overrides: list[str], names: list[str], rows: int = 10) -> None:
        """Latest version, row count and (rows > 0) a sample of each table."""
        from seasonrec.config import load_config
        from seasonrec.context import lake_of
        from seasonrec.spark import get_spark

        config = load_config(conf, overrides)
        lake = lake_of(config, get_spark(config))
        for name in names:
            if not lake.exists(name):
                print(f"{name}: not written by this run")
                continue
            table = lake.read(name)
            print(f"{name}: version {lake.version(name)}, {table.count()} rows at {lake.path(name)}")
            if rows and self.display is not None:
                self.display(table.limit(rows))
            elif rows:
                table.show(rows, truncate=60)
