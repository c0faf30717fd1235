"""Bad input ends with one line naming the problem and a non-zero exit, never only a JVM stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seasonrec import cli

REPO = Path(__file__).resolve().parents[1]


def run_cli(*argv: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m seasonrec.cli ARGV` in a fresh interpreter (no Spark session of the test process)."""
    base = {**os.environ, "SEASONREC_SALT": "test-salt", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "seasonrec.cli", *argv], cwd=REPO, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no error message at all"
    assert "Traceback" not in stderr, stderr
    assert not any(line.lstrip().startswith("at org.apache") for line in lines), stderr
    return lines[-1]


def test_unknown_job(tmp_path: Path) -> None:
    result = run_cli("featurs", "--conf", "conf/test.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == ("seasonrec: error: unknown job 'featurs'; allowed: ingest, features, train, "
                                     "register, score, forecast, evaluate, stream, serve, maintain, show, "
                                     "pipeline")


def test_unknown_job_in_pipeline_list(tmp_path: Path) -> None:
    result = run_cli("pipeline", "--conf", "conf/test.yaml", "--jobs", "ingest,scoring")
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith("seasonrec pipeline: error: unknown job(s) ['scoring']") and "score" in line


def test_config_key_typo_names_key_and_allowed_keys(tmp_path: Path) -> None:
    result = run_cli("train", "--conf", "conf/test.yaml", "--set", "training.epoch=3")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr  # exactly one line
    line = error_line(result.stderr)
    assert line.startswith("seasonrec train: error: unknown config key 'training.epoch'")
    assert "allowed keys here:" in line and "epochs" in line


def test_config_file_typo_and_bad_value(tmp_path: Path) -> None:
    conf = tmp_path / "bad.yaml"
    conf.write_text("scoring:\n  top_k: 20\n  exlude_bought: true\n")
    line = error_line(run_cli("score", "--conf", str(conf)).stderr)
    assert "unknown config key 'scoring.exlude_bought'" in line and "exclude_bought" in line
    result = run_cli("score", "--conf", "conf/test.yaml", "--set", "data.source=csv")
    assert result.returncode == 1
    assert "config key 'data.source'" in error_line(result.stderr)


def test_missing_config_file() -> None:
    result = run_cli("ingest", "--conf", "conf/missing.yaml")
    assert result.returncode == 1
    assert error_line(result.stderr) == ("seasonrec ingest: error: cannot read config file conf/missing.yaml: "
                                         "No such file or directory")


def test_missing_java_on_path(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(empty_bin)
    result = subprocess.run([sys.executable, "-m", "seasonrec.cli", "ingest", "--conf", "conf/test.yaml",
                             "--set", f"paths.lake_root={tmp_path}/lake"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith("seasonrec ingest: error: Java not found") and "Java 17" in line


def test_java_home_pointing_nowhere(tmp_path: Path) -> None:
    result = run_cli("ingest", "--conf", "conf/test.yaml", "--set", f"paths.lake_root={tmp_path}/lake",
                     env={"JAVA_HOME": str(tmp_path / "no-jdk")})
    assert result.returncode == 1
    assert error_line(result.stderr) == (f"seasonrec ingest: error: Java not found: JAVA_HOME={tmp_path}/no-jdk has "
                                         "no bin/java; point JAVA_HOME at a Java 17 installation or unset it")


def test_spark_master_that_does_not_answer(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("features", "--conf", "conf/test.yaml", "--set", f"paths.lake_root={tmp_path}/lake",
                     "--set", f"spark.master=spark://127.0.0.1:{port}", timeout=120)
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith(f"seasonrec features: error: the Spark master spark://127.0.0.1:{port} does not answer")


def test_missing_input_path(spark, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs in-process on the session's Spark: the reason comes from Spark's PATH_NOT_FOUND error."""
    missing = tmp_path / "exports" / "transactions.csv"
    code = cli.main(["ingest", "--conf", str(REPO / "conf" / "test.yaml"), "--set", f"paths.lake_root={tmp_path}/lake",
                     "--source", "file", "--path", str(missing)])
    assert code == 1
    line = error_line(capsys.readouterr().err)
    assert line == f"seasonrec ingest: error: input not found: {missing}"


def test_one_line_reason_for_jvm_failures() -> None:
    """py4j/pyspark failures reduce to the line that explains them."""

    class Py4JJavaError(Exception):
        pass

    jvm = Py4JJavaError("An error occurred while calling o51.load.\n: org.apache.spark.sql.AnalysisException: "
                        "[PATH_NOT_FOUND] Path does not exist: file:/data/in.csv.\n\tat org.apache.spark.X(X.scala:1)")
    assert cli._one_line_reason(jvm) == "input not found: /data/in.csv"
    gateway = RuntimeError("[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number.")
    assert "Java 17" in cli._one_line_reason(gateway)
    stopped = RuntimeError("java.lang.IllegalStateException: Cannot call methods on a stopped SparkContext.\n...")
    assert cli._one_line_reason(stopped).startswith("the Spark application was stopped")
    assert cli._one_line_reason(ValueError("first\nsecond")) == "ValueError: first"


def test_serve_without_a_champion_says_what_to_run(tmp_path: Path) -> None:
    result = run_cli("serve", "--conf", "conf/test.yaml", "--set", f"paths.mlflow_dir={tmp_path}/mlflow")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("seasonrec serve: error: no 'champion' version of seasonrec-recommender")
    assert "make demo" in line


# ---------------------------------------------------------------- quiet, informative output
def test_summary_line_is_one_line_with_the_scalars_and_the_file() -> None:
    from seasonrec import logs

    summary = {"job": "train", "run_id": "abc", "seconds": 104.04, "model_version": "v1", "epochs_run": 5,
               "model_dir": "/a/very/long/path/that/belongs/in/the/json/file/only/x", "val_recall_at_20": 0.518920,
               "early_stopped": False, "curve": [{"d": 0.1}], "note": None}
    line = logs.summary_line(summary, "/r/runs/train-abc.json")
    assert "\n" not in line
    assert line.startswith("[train] done in 104s: model_version=v1, epochs_run=5, val_recall_at_20=0.5189, "
                           "early_stopped=false")
    assert line.endswith("(full summary, +3 more: /r/runs/train-abc.json)")
    many = {"job": "x", "seconds": 1.0, **{f"key_{i}": i for i in range(100)}}
    assert len(logs.summary_line(many)) <= 220


def test_verbose_flag_and_quiet_logging_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from seasonrec import logs

    args = cli.build_parser(only="ingest").parse_args(["ingest", "--verbose"])
    assert args.verbose is True
    monkeypatch.setenv(logs.VERBOSE_ENV, "")
    root = logging.getLogger()
    saved = (root.level, {n: logging.getLogger(n).level for n in (*logs.NOISY_LOGGERS, "seasonrec")})
    try:
        logs.configure(verbose=False)
        assert not logs.is_verbose()
        assert logging.getLogger("seasonrec.features").getEffectiveLevel() == logging.INFO
        assert root.level == logging.WARNING  # e.g. Gloo's "scope ... has keys" and py4j's retry traceback
        assert logging.getLogger("horovod").getEffectiveLevel() == logging.ERROR
        assert logging.getLogger("py4j.clientserver").isEnabledFor(logging.ERROR)  # errors always pass
        logs.configure(verbose=True)
        assert logs.is_verbose() and root.level == logging.INFO
    finally:
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


def test_closing_block_names_report_tables_and_mlflow(tmp_path: Path) -> None:
    from seasonrec import logs
    from seasonrec.config import load_config

    config = load_config(REPO / "conf" / "test.yaml", [f"paths.lake_root={tmp_path}/lake",
                                                       f"paths.mlflow_dir={tmp_path}/mlflow",
                                                       f"paths.report_dir={tmp_path}/r"])
    (tmp_path / "lake" / "recommendations" / "_delta_log").mkdir(parents=True)
    lines = logs.closing_block(config, [{"job": "score", "seconds": 3.0},
                                        {"job": "evaluate", "seconds": 4.0, "report": f"{tmp_path}/r/report.md"}])
    text = "\n".join(lines)
    assert "2 job(s) done in 7s" in text
    assert f"report:    {tmp_path}/r/report.md" in text
    assert f"summaries: {tmp_path}/r/runs/<job>-<run_id>.json" in text
    assert f"tables:    {tmp_path}/lake/<table> (recommendations)" in text
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow/mlflow.db" in text
    named = config.model_copy(update={"paths": config.paths.model_copy(update={"table_namespace": "main.seasonrec"})})
    assert "  tables:    main.seasonrec.<table>" in logs.closing_block(named, [])


def test_a_job_prints_its_steps_and_one_summary_line_without_third_party_noise(tmp_path: Path) -> None:
    """A real job in a fresh process on a non-terminal: no Spark WARN/startup lines, no progress bars."""
    result = run_cli("ingest", "--conf", "conf/test.yaml", "--set", f"paths.lake_root={tmp_path}/lake",
                     "--set", f"paths.report_dir={tmp_path}/reports")
    assert result.returncode == 0, result.stderr[-3000:]
    log_lines = result.stderr.splitlines()
    assert not [line for line in log_lines if " INFO [" not in line], result.stderr
    summary = [line for line in log_lines if "[ingest] done in" in line]
    assert len(summary) == 1 and "(full summary" in summary[0]
    assert "\r" not in result.stderr and "Traceback" not in result.stderr
    files = list((tmp_path / "reports" / "runs").glob("ingest-*.json"))
    assert len(files) == 1
    assert result.stdout.lstrip().startswith("{")  # stdout is not a terminal: the JSON for scripts


def test_step_lines_carry_duration_counts_and_failures(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from seasonrec.context import JobContext

    ctx = JobContext(config=None, spark=None, lake=None, job="features")  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="seasonrec"):
        with ctx.step("gold item features") as step:
            step.note(items=800, tiers=3)
        with pytest.raises(ValueError), ctx.step("gold user features"):
            raise ValueError("boom")
    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("[features] gold item features done in ") and line.endswith("s (items 800, tiers 3)")
               for line in lines), lines
    assert any(line.startswith("[features] gold user features failed after ") for line in lines), lines
    assert not any(line.endswith(" ...") for line in lines)  # start lines only on a terminal or --verbose


def test_mlflow_registry_notices_are_dropped_unless_verbose(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from seasonrec import logs

    def register() -> None:  # what mlflow's eprint writes around an error it reports
        print("Successfully registered model 'seasonrec-recommender'.", file=sys.stderr)
        print("Created version '3' of model 'seasonrec-recommender'.", file=sys.stderr)
        print("ERROR mlflow: registry unavailable", file=sys.stderr)

    monkeypatch.setenv(logs.VERBOSE_ENV, "0")
    with logs.without_lines(logs.MLFLOW_REGISTRY_NOTICES):
        register()
    assert capsys.readouterr().err == "ERROR mlflow: registry unavailable\n"
    monkeypatch.setenv(logs.VERBOSE_ENV, "1")
    with logs.without_lines(logs.MLFLOW_REGISTRY_NOTICES):
        register()
    assert "Created version '3'" in capsys.readouterr().err


def test_epoch_line_has_metrics_and_eta() -> None:
    from seasonrec.core.horovod_runner import EpochClock, epoch_line

    clock = EpochClock(initial_epoch=2)
    clock.started -= 30.0  # two epochs (3 and 4) in 30 s
    line = epoch_line("[train]", 4, 10, {"loss": 0.43214, "val_recall_at_20": 0.5}, clock)
    assert line.startswith("[train] epoch 4/10: loss 0.4321, val_recall_at_20 0.5000 (15.0s/epoch, ETA 90s)")
