"""Pseudonyms: HMAC-SHA256 keyed by the salt, the same in Spark and Python; no salt, no job outside local/test."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from seasonrec import cli
from seasonrec.features import silver
from support import REPO

USERS = ["17850", "13047", "0", "", "Zoë-ß", "用户42", "user with spaces", "x" * 300, "\u0001tab\there"]
SALTS = ["test-salt", "s", "k" * 63, "k" * 64, "k" * 65, "ü" * 40, "sécret-🔑" * 20]


def _reference(salt: str, user: str) -> str:
    return hmac.new(salt.encode("utf-8"), user.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def test_spark_and_python_pseudonyms_are_hmac_sha256(spark) -> None:
    users = spark.createDataFrame([(u,) for u in USERS] + [(None,)], "user string")
    for salt in SALTS:  # short, one block exactly, longer than a block (hashed first), multi-byte UTF-8
        rows = users.select("user", silver.pseudonymize(F.col("user"), salt).alias("p")).collect()
        in_spark = {r["user"]: r["p"] for r in rows}
        assert in_spark.pop(None) is None  # guest checkouts stay without a user
        expected = {u: _reference(salt, u) for u in USERS}
        assert in_spark == expected, salt
        assert {u: silver.pseudonym(u, salt) for u in USERS} == expected, salt
    assert silver.pseudonym(" 17850.0 ", "test-salt") == _reference("test-salt", "17850")  # ingest's normalisation
    # Not the old unkeyed construction sha256(salt \x01 user), which anyone knowing the salt scheme could redo.
    assert silver.pseudonym("17850", "test-salt") != hashlib.sha256(b"test-salt\x0117850").hexdigest()[:24]


def test_missing_salt_falls_back_only_in_local_and_test(monkeypatch, caplog) -> None:
    from seasonrec.config import load_config

    monkeypatch.delenv("SEASONREC_SALT", raising=False)
    features = load_config(REPO / "conf" / "test.yaml").features
    with caplog.at_level(logging.WARNING, logger="seasonrec"):
        assert silver.salt(features, "test") == features.default_salt == silver.salt(features, "local")
    assert "SEASONREC_SALT is not set" in caplog.text
    for env in ("cluster", "databricks", "prod", None):
        with pytest.raises(silver.MissingSaltError, match=r"^SEASONREC_SALT is not set: env '.*' pseudonymises"):
            silver.salt(features, env)
    monkeypatch.setenv("SEASONREC_SALT", "from-the-secret-store")
    assert silver.salt(features, "cluster") == "from-the-secret-store"


@pytest.mark.parametrize("job", ["features", "stream", "serve"])
def test_jobs_that_pseudonymise_stop_with_one_line_without_a_salt(spark, tmp_path: Path, monkeypatch,
                                                                  capsys: pytest.CaptureFixture[str], job: str) -> None:
    monkeypatch.delenv("SEASONREC_SALT", raising=False)
    options = ["--once"] if job == "stream" else []
    paths = [f"paths.{key}={tmp_path}/{key}" for key in ("lake_root", "checkpoint_dir", "model_dir", "mlflow_dir",
                                                           "report_dir", "petastorm_cache_dir")]
    code = cli.main([job, "--conf", str(REPO / "conf" / "test.yaml"), "--set", "env=cluster",
                     *[arg for kv in paths for arg in ("--set", kv)], *options])
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err[-1].startswith(f"seasonrec {job}: error: SEASONREC_SALT is not set: env 'cluster' pseudonymises")
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "lake_root" / "silver_interactions").exists()


SMALL = ["data.synthetic.n_users=120", "data.synthetic.n_items=60", "data.synthetic.n_events=3000",
         "data.synthetic.start=2010-06-01", "features.negatives_per_positive=2"]


def test_features_refuses_to_add_to_a_silver_table_pseudonymised_another_way(
        spark, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from seasonrec import tables
    from seasonrec.context import JobContext
    from seasonrec.data import jobs as ingest_jobs
    from seasonrec.features import jobs as features_jobs
    from support import as_table, job_args, make_config

    config = make_config(tmp_path, *SMALL)
    ingest_jobs.run(JobContext.create(config, "ingest", spark), job_args(ingest_jobs))
    lake = JobContext.create(config, "features", spark).lake
    # A silver table as seasonrec wrote it before the scheme was recorded (sha256 of salt + id, no property).
    old_id = hashlib.sha256(b"test-salt\x0117850").hexdigest()[:24]
    lake.write(as_table(spark.createDataFrame([(old_id, "85123A")], "user_id string, item_id string"),
                        tables.SILVER_INTERACTIONS), tables.SILVER_INTERACTIONS)
    version = lake.version(tables.SILVER_INTERACTIONS)

    code = cli.main(["features", "--conf", str(REPO / "conf" / "test.yaml"), "--since", "2010-01-01",
                     *[arg for kv in [f"paths.lake_root={config.paths.lake_root}",
                                      f"paths.report_dir={config.paths.report_dir}", *SMALL]
                       for arg in ("--set", kv)]])
    assert code == 1
    line = [x for x in capsys.readouterr().err.splitlines() if x.strip()][-1]
    assert line == ("seasonrec features: error: silver_interactions was written with no recorded pseudonym scheme "
                    "(an older seasonrec), this code writes 'hmac-sha256-v1': its user ids would not match; rebuild "
                    "silver with `seasonrec features` without --since")
    assert lake.version(tables.SILVER_INTERACTIONS) == version  # nothing added

    # The rebuild (no --since) rewrites every row with HMAC pseudonyms and records the scheme.
    features_jobs.run(JobContext.create(config, "features", spark), job_args(features_jobs))
    assert lake.properties(tables.SILVER_INTERACTIONS)[silver.PSEUDONYM_PROPERTY] == "hmac-sha256-v1"
    assert silver.pseudonym_scheme_problem(lake.properties(tables.SILVER_INTERACTIONS)) is None
    raw = lake.read(tables.BRONZE_TRANSACTIONS).where("user_raw is not null").first()["user_raw"]
    user_ids = {r["user_id"] for r in lake.read(tables.SILVER_INTERACTIONS).select("user_id").distinct().collect()}
    assert _reference("test-salt", raw) in user_ids and old_id not in user_ids
    assert "written with pseudonym scheme 'sha256-v0'" in silver.pseudonym_scheme_problem(
        {silver.PSEUDONYM_PROPERTY: "sha256-v0"})
