"""`seasonrec <job> [options]`: the one entry point behind Makefile targets, jobs/*.py and notebooks.

Each job lives in ``seasonrec.<stage>.jobs`` and exposes ``DESCRIPTION``, ``add_arguments(parser)``
and ``run(ctx, args) -> dict``; the dict is the job summary: one line in the log, the full JSON in
``<paths.report_dir>/runs/<job>-<run_id>.json`` and, for a single job whose stdout is not a terminal
(scripts, tests, spark-submit logs), on stdout. Job modules import only light dependencies at module
level so ``--help`` stays fast. Optional: ``check(config, args)`` refuses bad arguments before Spark
starts; ``PRINTS_RESULT = True`` (``seasonrec show``) makes stdout the command's own result, no summary.
Output is quiet by default (``seasonrec.logs``); ``--verbose`` shows Spark's, Horovod's and the
libraries' own messages, ``--debug`` full tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from types import ModuleType
from typing import Any

from seasonrec import logs
from seasonrec.config import ConfigError, load_config

JOBS: dict[str, str] = {
    "ingest": "seasonrec.data.jobs",
    "features": "seasonrec.features.jobs",
    "train": "seasonrec.training.jobs",
    "register": "seasonrec.serving.jobs",
    "score": "seasonrec.scoring.jobs",
    "forecast": "seasonrec.forecasting.jobs",
    "evaluate": "seasonrec.evaluation.jobs",
    "stream": "seasonrec.streaming.jobs",
    "serve": "seasonrec.serving.serve",
    "maintain": "seasonrec.maintenance",
    "show": "seasonrec.show",
}
# Jobs that run until stopped are not steps of `seasonrec pipeline` / `make demo`, nor is the lake's
# housekeeping (`maintain`, scheduled on its own).
LONG_RUNNING = {"stream", "serve"}
# Commands that only read and print (`seasonrec show`) are not pipeline steps either.
READ_ONLY = {"show"}
PIPELINE = [name for name in JOBS if name not in LONG_RUNNING | READ_ONLY | {"maintain"}]
DEFAULT_CONF = "conf/local.yaml"
# Added to an exception raised by a pipeline step, so its one-line error names the step.
_PIPELINE_STEP_NOTE = "pipeline job: "

log = logging.getLogger("seasonrec")


def _job_module(name: str) -> ModuleType:
    return importlib.import_module(JOBS[name])


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conf", default=os.environ.get("SEASONREC_CONF", DEFAULT_CONF),
                        help="YAML config file (default: $SEASONREC_CONF or conf/local.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set training.epochs=3 (repeatable)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--verbose", action="store_true",
                        help="also show Spark, Horovod/Gloo, TensorFlow and library messages and warnings")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with ``only``, just that job's module is imported (fast, and one broken stage
    module does not take the other jobs down)."""
    parser = argparse.ArgumentParser(prog="seasonrec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="job", metavar="JOB")
    for name in JOBS:
        if only is not None and name != only:
            continue
        module = _job_module(name)
        job_parser = sub.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION)
        _common_options(job_parser)
        module.add_arguments(job_parser)
    if only is None or only == "pipeline":
        pipeline = sub.add_parser("pipeline", help="run " + " -> ".join(PIPELINE) + " with default job options")
        _common_options(pipeline)
        pipeline.add_argument("--jobs", default=",".join(PIPELINE), help="comma-separated subset, in order")
    return parser


def job_args(module: ModuleType, *argv: str) -> argparse.Namespace:
    """A job's options with their defaults (plus ``argv``), as the CLI would parse them."""
    job_parser = argparse.ArgumentParser()
    module.add_arguments(job_parser)
    return job_parser.parse_args(list(argv))


def _default_args(name: str, base: argparse.Namespace) -> argparse.Namespace:
    args = job_args(_job_module(name))
    for key, value in vars(base).items():
        setattr(args, key, value)
    return args


def run_job(name: str, args: argparse.Namespace, *, print_json: bool | None = None) -> dict[str, Any]:
    """Run one job; log its one-line summary, write the full JSON (``<report_dir>/runs/``) and print it
    on stdout when ``print_json`` (default: stdout is not a terminal, i.e. a caller may parse it)."""
    from seasonrec.context import JobContext

    config = load_config(args.conf, args.overrides)
    module = _job_module(name)
    check = getattr(module, "check", None)
    if check is not None:  # refuse bad arguments before Spark starts
        check(config, args)
    if print_json is None:
        print_json = not sys.stdout.isatty()
    started = time.perf_counter()
    if not getattr(module, "NEEDS_SPARK", True):  # e.g. serve: no Spark session, no lake
        summary = {"job": name, **module.run(config, args)}
        print(json.dumps(summary, default=str, indent=2))
        return summary
    ctx = JobContext.create(config, name)
    if getattr(module, "PRINTS_RESULT", False):  # its stdout is the result (`seasonrec show`): no summary
        return {"job": name, "run_id": ctx.run_id, **module.run(ctx, args)}
    log.info("[%s] run %s, tables %s (%s engine)", name, ctx.run_id, ctx.lake.where, ctx.lake.engine)
    summary = module.run(ctx, args)
    summary = {"job": name, "run_id": ctx.run_id, "seconds": round(time.perf_counter() - started, 1), **summary}
    path = logs.write_summary(summary, config.paths.report_dir)
    log.info("%s", logs.summary_line(summary, path))
    if print_json or path is None:
        print(json.dumps(summary, default=str, indent=2), flush=True)
    return summary


def run_pipeline(names: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The jobs in order, one summary line each, then where the results are."""
    summaries: list[dict[str, Any]] = []
    for name in names:
        try:
            summaries.append(run_job(name, _default_args(name, args), print_json=False))
        except Exception as exc:
            exc.add_note(_PIPELINE_STEP_NOTE + name)
            raise
    print("\n".join(logs.closing_block(load_config(args.conf, args.overrides), summaries)), flush=True)
    return summaries


def _one_line_reason(exc: BaseException) -> str:
    """Turn JVM/py4j/pyspark failures into the line that explains them."""
    from seasonrec.context import JobError
    from seasonrec.lake import LakeError
    from seasonrec.spark import SparkStartError

    text = str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, ConfigError | JobError | LakeError | SparkStartError) and text:
        return " ".join(text.split())  # already phrased for the user
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"input not found: {exc.filename}"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"cannot read {exc.filename}: permission denied"
    if name == "Py4JJavaError":
        java = getattr(exc, "java_exception", None)
        text = str(java) if java is not None else text
    if "JAVA_GATEWAY_EXITED" in text or "Java gateway process exited" in text:
        return "Spark could not start a JVM: Java 17 must be installed and on PATH (or JAVA_HOME set)"
    if "All masters are unresponsive" in text or "Could not connect to spark://" in text:
        return "the Spark master does not answer; check the MASTER/spark.master address"
    if "Cannot call methods on a stopped SparkContext" in text:
        return "the Spark application was stopped (master lost or application killed); see the driver log above"
    if "PATH_NOT_FOUND" in text or "Path does not exist" in text:
        first = next((line for line in text.splitlines() if "Path does not exist" in line), text.splitlines()[0])
        path = first.split("Path does not exist:")[-1].strip().rstrip(".")
        return "input not found: " + (path[len("file:"):] if path.startswith("file:") else path)
    lines = [line for line in text.splitlines() if line.strip()]
    return f"{name}: {lines[0] if lines else 'no message'}"


def main(argv: list[str] | None = None) -> int:
    """The ``seasonrec`` command: run one job (``seasonrec <job> [options]``) or ``seasonrec pipeline --jobs a,b``.

    ``argv`` defaults to ``sys.argv[1:]``. Returns the process exit code: 0 on success, 2 for an unknown job or no job
    (help printed), 1 when a job fails (one ``seasonrec <job>: error: ...`` line on stderr, the traceback only with
    ``--debug``), 130 on Ctrl-C.

    >>> import sys
    >>> sys.exit(main(["ingest", "--source", "synthetic"]))  # doctest: +SKIP
    """
    logging.basicConfig(level=logging.INFO, format=logs.FORMAT, datefmt=logs.DATEFMT)
    argv = sys.argv[1:] if argv is None else argv
    requested = argv[0] if argv and not argv[0].startswith("-") else None
    if requested is not None and requested not in JOBS and requested != "pipeline":
        print(f"seasonrec: error: unknown job '{requested}'; allowed: {', '.join([*JOBS, 'pipeline'])}",
              file=sys.stderr)
        return 2
    try:
        parser = build_parser(only=requested)
    except ImportError as exc:
        print(f"seasonrec: error: cannot load job '{requested or 'all'}': {_one_line_reason(exc)}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if args.job is None:
        parser.print_help()
        return 2
    logs.configure(verbose=args.verbose)
    try:
        if args.job == "pipeline":
            names = [n.strip() for n in args.jobs.split(",") if n.strip()]
            unknown = [n for n in names if n not in JOBS]
            if unknown:
                raise ConfigError(f"unknown job(s) {unknown} in --jobs; allowed: {', '.join(JOBS)}")
            run_pipeline(names, args)
        else:
            run_job(args.job, args)
    except KeyboardInterrupt:
        print("seasonrec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's job is to turn any failure into one line
        if getattr(args, "debug", False):
            raise
        failed = next((note.removeprefix(_PIPELINE_STEP_NOTE) for note in getattr(exc, "__notes__", [])
                       if note.startswith(_PIPELINE_STEP_NOTE)), None)
        where = f"{args.job} ({failed})" if failed else args.job
        print(f"seasonrec {where}: error: {_one_line_reason(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
