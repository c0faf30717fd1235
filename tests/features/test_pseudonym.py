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
