"""Ingest config mistakes end in one line naming the key and what is allowed (no Spark needed)."""

from __future__ import annotations

import pytest

from seasonrec.config import ConfigError, load_config


@pytest.mark.parametrize(("override", "expected"), [
    ("data.file.timezone=Europe/Lodnon", "config key 'data.file.timezone': Value error, unknown time zone "
                                         "'Europe/Lodnon'; allowed: an IANA zone name such as Europe/London"),
    ("data.online_retail.required_fields=[invoice, sku]", "config key 'data.online_retail.required_fields.1': "
                                                          "Input should be 'invoice', 'user', 'description'"),
    ("data.validation.max_price=0", "config key 'data.validation.max_price': Input should be greater than 0"),
    ("data.validation.max_quantity=5", "unknown config key 'data.validation.max_quantity'; allowed keys here: "
                                       "max_abs_quantity, max_price, earliest_timestamp, max_days_ahead"),
])
def test_mistake_names_key_and_allowed_values(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)


def test_online_retail_override_keeps_the_rest_of_its_preset() -> None:
    preset = load_config(None, ["data.online_retail.path=/data/or.csv"]).data.online_retail
    assert (preset.path, preset.timezone, preset.timestamp_format) == ("/data/or.csv", "Europe/London",
                                                                      "yyyy-MM-dd HH:mm:ss")
    assert preset.numeric_user_ids and preset.required_fields == ["invoice", "description"]
    assert preset.alternative_columns["user"] == ["Customer ID"]
