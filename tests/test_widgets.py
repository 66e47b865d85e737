"""Notebook parameters as Databricks widgets (sparkdedup.widgets), with a stand-in dbutils."""

from __future__ import annotations

import pytest
from sparkdedup.errors import ConfigError
from sparkdedup.widgets import apply_widgets


class _Widgets:
    def __init__(self, typed: dict[str, str]) -> None:
        self.created: dict[str, str] = {}
        self.typed = typed

    def text(self, name: str, default: str) -> None:
        self.created[name] = default

    def get(self, name: str) -> str:
        return self.typed.get(name, self.created[name])


class _DBUtils:
    def __init__(self, typed: dict[str, str]) -> None:
        self.widgets = _Widgets(typed)


def test_widgets_default_to_the_cell_and_override_it_with_types() -> None:
    ns = {"N_DOCS": 2000, "EPS": 0.01, "ID_COL": "id", "PRIORITY_COL": None, "CONF": {}}
    ns.update(FLAG=False)
    dbutils = _DBUtils({"N_DOCS": "300", "PRIORITY_COL": "score", "CONF": '{"a": "b"}'})
    changed = apply_widgets(ns, list(ns), dbutils)
    assert dbutils.widgets.created == {
        "N_DOCS": "2000",
        "EPS": "0.01",
        "ID_COL": "id",
        "PRIORITY_COL": "",
        "CONF": "{}",
        "FLAG": "False",
    }
    assert changed == {"N_DOCS": 300, "PRIORITY_COL": "score", "CONF": {"a": "b"}}
    assert ns["N_DOCS"] == 300 and ns["EPS"] == 0.01 and ns["PRIORITY_COL"] == "score"
    # An untouched widget keeps the cell's value, None included.
    again = {"PRIORITY_COL": None, "FLAG": True}
    assert apply_widgets(again, list(again), _DBUtils({})) == {}
    assert again == {"PRIORITY_COL": None, "FLAG": True}


def test_a_widget_of_the_wrong_type_names_itself() -> None:
    with pytest.raises(ConfigError, match="widget 'N_DOCS' must be int"):
        apply_widgets({"N_DOCS": 1}, ["N_DOCS"], _DBUtils({"N_DOCS": "many"}))
    with pytest.raises(ConfigError, match="widget 'FLAG' must be true or false"):
        apply_widgets({"FLAG": False}, ["FLAG"], _DBUtils({"FLAG": "maybe"}))


def test_the_changed_spark_conf_is_shown_without_its_credentials() -> None:
    """The notebook prints what the widgets changed: a SPARK_CONF credential's value is
    redacted there, and the session gets it whole."""
    typed = '{"spark.hadoop.fs.s3a.secret.key": "KEY-1", "spark.sql.shuffle.partitions": "8"}'
    ns = {"SPARK_CONF": {}}
    changed = apply_widgets(ns, ["SPARK_CONF"], _DBUtils({"SPARK_CONF": typed}))
    assert changed == {
        "SPARK_CONF": {
            "spark.hadoop.fs.s3a.secret.key": "*********(redacted)",
            "spark.sql.shuffle.partitions": "8",
        }
    }
    assert ns["SPARK_CONF"]["spark.hadoop.fs.s3a.secret.key"] == "KEY-1"


def test_a_widget_shows_no_credential() -> None:
    """A URI's password or token is starred in what the widgets changed, and a setting's JSON
    that does not parse is refused without its text."""
    ns = {"SPARK_REMOTE": None, "INPUT_PATH": "", "SPARK_CONF": {}}
    typed = {"SPARK_REMOTE": "sc://h:443/;token=TOK-1", "INPUT_PATH": "ftp://u:PW-2@h/x"}
    changed = apply_widgets(ns, list(ns), _DBUtils(typed))
    assert changed == {"SPARK_REMOTE": "sc://h:443/;token=*****", "INPUT_PATH": "ftp://u:*****@h/x"}
    assert ns["SPARK_REMOTE"] == typed["SPARK_REMOTE"] and ns["INPUT_PATH"] == typed["INPUT_PATH"]
    bad = _DBUtils({"SPARK_CONF": '{"spark.hadoop.fs.s3a.secret.key": "KEY-3",}'})
    with pytest.raises(ConfigError, match="widget 'SPARK_CONF' must be JSON of a dict") as err:
        apply_widgets({"SPARK_CONF": {}}, ["SPARK_CONF"], bad)
    assert "KEY-3" not in str(err.value)
