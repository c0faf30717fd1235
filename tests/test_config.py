"""Config loading: validation messages name the key and the allowed keys/values; overrides win."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from seasonrec.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("env", ["local", "cluster", "databricks", "test"])
def test_shipped_configs_validate(env: str) -> None:
    path = REPO / "conf" / f"{env}.yaml"
    if not path.exists():
        pytest.skip(f"{path.name} not present")
    assert load_config(path).env == env


def test_unknown_key_names_the_key_and_allowed_keys(tmp_path: Path) -> None:
    conf = tmp_path / "bad.yaml"
    conf.write_text("training:\n  epoch: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    message = str(err.value)
    assert "training.epoch" in message
    assert "epochs" in message and "batch_size" in message


def test_bad_type_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"training\.epochs.*integer"):
        load_config(None, ["training.epochs=many"])


def test_bad_choice_lists_allowed_values() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["data.source=kafka"])
    assert "data.source" in str(err.value)
    assert "'synthetic'" in str(err.value) and "'online_retail'" in str(err.value)


def test_override_precedence(tmp_path: Path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("training:\n  epochs: 5\n  batch_size: 64\nsplit:\n  train_end: 2011-07-01\n")
    config = load_config(conf, ["training.epochs=2", "training.epochs=3", "split.validation_end=2011-08-15"])
    assert config.training.epochs == 3  # last override wins over the file
    assert config.training.batch_size == 64  # file wins over defaults
    assert config.training.learning_rate == 0.002  # default when nobody sets it
    assert config.split.validation_end == dt.date(2011, 8, 15)


def test_bad_non_product_pattern_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"features\.non_product_pattern.*not a regular expression"):
        load_config(None, ["features.non_product_pattern=^(POST|M$"])
    assert load_config(None, ["features.non_product_pattern=^(POST|M)$"]).features.non_product_pattern == "^(POST|M)$"


def test_split_dates_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match="train_end <= validation_end"):
        load_config(None, ["split.train_end=2012-01-01"])


def test_relative_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    config = load_config(None, ["paths.lake_root=my_lake"], base_dir=tmp_path)
    assert config.paths.lake_root == str(tmp_path / "my_lake")
    assert load_config(None, ["paths.lake_root=dbfs:/lake"]).paths.lake_root == "dbfs:/lake"


def test_missing_file_and_bad_override_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["training.epochs"])


def test_table_namespace_and_location(tmp_path: Path) -> None:
    default = load_config(None, [])
    assert (default.paths.table_namespace, default.paths.table_location) == (None, "managed")
    named = load_config(None, ["paths.table_namespace=main.seasonrec_dev", "paths.table_location=external",
                               "paths.lake_root=abfss://lake@account.dfs.core.windows.net/seasonrec"])
    assert named.paths.table_namespace == "main.seasonrec_dev" and named.paths.table_location == "external"
    assert named.paths.lake_root == "abfss://lake@account.dfs.core.windows.net/seasonrec"  # not made a local path
    for bad in ("main", "main.seasonrec.x", "main.", "main sea.x", "'`a`.b'", "1.5"):
        with pytest.raises(ConfigError) as err:
            load_config(None, [f"paths.table_namespace={bad}"])
        message = str(err.value)
        assert "\n" not in message and message.startswith("config key 'paths.table_namespace'"), message
        assert ("must be catalog.schema: two names" if bad != "1.5" else "valid string") in message, message
    with pytest.raises(ConfigError, match=r"^config key 'paths.table_location': .*'managed' or 'external'"):
        load_config(None, ["paths.table_location=volume"])


def test_external_tables_cannot_live_in_a_volume() -> None:
    refused = r"^config key 'paths.table_location': .*external .*volume, which cannot hold tables"
    with pytest.raises(ConfigError, match=refused):
        load_config(None, ["paths.table_namespace=main.seasonrec", "paths.table_location=external",
                           "paths.lake_root=/Volumes/main/seasonrec/lake"])
    # Managed tables leave lake_root to files, which a volume may hold.
    assert load_config(None, ["paths.table_namespace=main.seasonrec",
                              "paths.lake_root=/Volumes/main/seasonrec/files"]).paths.table_location == "managed"
