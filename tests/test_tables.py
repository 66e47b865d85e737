"""Catalog tables as the CLI's input and output, in a Hive-enabled session with an embedded
metastore (`tests/table_cases.py`, run in a subprocess: the shared session has no Hive
catalog), and the usage rules that need no Spark."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sparkdedup.cli import main

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("tables")
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "table_cases.py"), str(work)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(work),  # Derby writes its log in the working directory
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_table_in_table_out_keeps_schema_format_and_partitions(cases: dict) -> None:
    assert cases["catalog"] == "hive"
    assert cases["table_run"] == [0, ""]
    assert cases["table_schema"] == cases["input_schema"]  # the map column included
    assert cases["table_describe"] == {"Provider": "orc", "Type": "MANAGED"}
    assert cases["table_partitions"] == ["source=src0", "source=src1", "source=src2"]
    assert cases["table_props"]["sparkdedup.written_by"]
    # The planted exact and near copies go; kept + removed = input.
    assert {100, 101, 102, 103, 200, 203} <= set(cases["removed"])
    assert sorted(cases["table_kept"] + cases["removed"]) == sorted(
        [*range(40), *range(100, 104), *range(200, 204)]
    )
    # The run directory holds duplicates and stats, not a deduplicated/ copy.
    assert "duplicates" in cases["first_entries"] and "deduplicated" not in cases["first_entries"]
    assert cases["stats"] == {
        "input_table": "corpus.docs",
        "output_table": "corpus.dedup",
        "input_format": "orc",
        "removed_docs": len(cases["removed"]),
    }


@pytest.mark.slow
def test_the_same_rows_from_files_or_a_table_give_the_same_output(cases: dict) -> None:
    assert cases["files_run"] == [0, ""]
    assert cases["files_kept"] == cases["table_kept"]
    assert cases["files_describe"]["Provider"] == "parquet"  # the --input-format
    # The table keeps its writer's options, never a credential: the reader's account key
    # is left out, and a credential among the writer's options is refused before any work.
    assert "'compression' = 'gzip'" in cases["files_ddl"], cases["files_ddl"]
    assert "READ-KEY-MARKER" not in cases["files_ddl"] and "account.key" not in cases["files_ddl"]
    code, message = cases["files_secret_write"]
    assert code == 2 and "--write-option fs.s3a.secret.key is a credential" in message, message
    assert "WRITE-KEY-MARKER" not in message and not cases["files_secret_table"]
    assert cases["remove_run"] == [0, ""]
    assert cases["remove_kept"] == cases["table_kept"]


@pytest.mark.slow
def test_output_table_rules(cases: dict) -> None:
    code, message = cases["again_no_overwrite"]
    assert code == 2 and "already holds the output of an earlier sparkdedup run" in message
    code, message = cases["foreign_overwrite"]
    assert code == 2 and "'corpus.mine'" in message and "not written by sparkdedup" in message
    assert cases["foreign_after"] == [7]  # untouched
    code, message = cases["same_as_input"]
    assert code == 2 and "is the input table" in message
    code, message = cases["missing_input"]
    assert code == 2 and "'corpus.nope' does not exist" in message
    code, message = cases["foreign_staging"]
    assert code == 2 and "not a sparkdedup staging table" in message
    # A staging table a crashed run left is replaced; --overwrite replaces sparkdedup's table.
    assert cases["overwrite_run"] == [0, ""]
    assert cases["overwrite_kept"] == cases["table_kept"]
    # spark_catalog.db.t names the session catalog's db.t.
    assert cases["three_part_run"] == [0, ""]
    assert cases["three_part_kept"] == cases["table_kept"]
    # A commit whose rename fails leaves the earlier table as it was.
    code, message = cases["failed_commit"]
    assert code == 1 and "rename refused" in message
    assert cases["failed_commit_kept"] == cases["table_kept"]
    # An earlier table a stopped run left aside is put back, and is sparkdedup's output.
    code, message = cases["aside_no_overwrite"]
    assert code == 2 and "already holds the output of an earlier sparkdedup run" in message
    assert cases["aside_kept"] == cases["table_kept"]
    assert not [t for t in cases["tables"] if "__sparkdedup" in t]
    code, message = cases["location_taken"]
    assert code == 2 and "'corpus.leftover' is new, but its location" in message, message


def test_spark_catalog_names_are_two_parts_only_while_it_is_the_current_catalog() -> None:
    """``spark_catalog.db.t`` is ``db.t`` for Spark's DDL while the session catalog is the
    current one; with another current (Unity, Iceberg) ``db.t`` would be that one's table."""
    from sparkdedup.tables import _rename_target, session_name

    class Catalog:
        def __init__(self, current: str) -> None:
            self.current = current

        def currentCatalog(self) -> str:  # noqa: N802 - pyspark's name
            return self.current

    class Session:
        def __init__(self, current: str) -> None:
            self.catalog = Catalog(current)

    assert session_name(Session("spark_catalog"), "spark_catalog.db.t") == "db.t"
    assert session_name(Session("spark_catalog"), "`Spark_Catalog`.db.`t x`") == "db.`t x`"
    assert session_name(Session("main"), "spark_catalog.db.t") == "spark_catalog.db.t"
    assert session_name(Session("spark_catalog"), "main.db.t") == "main.db.t"
    assert _rename_target("main.db.`t x`") == "db.`t x`" and _rename_target("db.t") == "db.t"


@pytest.mark.slow
def test_partitioned_hive_format_tables_in_and_out(cases: dict) -> None:
    """A partitioned Hive TEXTFILE table is written like itself (Hive's strict dynamic
    partition mode refused every insert, after all the work); a null id in a Hive-format table
    is a bad record (its rows were looked up in Parquet files: an internal error)."""
    assert cases["hive_parts_run"] == [0, ""]
    assert cases["hive_parts_kept"] == cases["table_kept"]
    assert cases["hive_parts"] == ["source=src0", "source=src1", "source=src2"]
    code, message = cases["hive_null_id"]
    assert code == 2 and "bad input record in corpus.htnull" in message, message


@pytest.mark.slow
def test_hive_serde_table_with_derived_ids(cases: dict) -> None:
    assert cases["hive_run"] == [0, ""]
    # 48 rows, 4 of them exact copies and 8 more near copies (as with ids above).
    assert cases["hive_kept_texts"] == cases["hive_kept_distinct"] == len(cases["table_kept"])


@pytest.mark.slow
def test_the_cache_key_of_a_table_sees_every_change_to_its_rows(cases: dict) -> None:
    """A view's SQL replaced (or that of a view it reads), a partition renamed or dropped (its
    files left in place), a file of a partition outside the table's location rewritten (also
    of a Hive-format table, whose scan names no file; a view over one rewritten): each changes the stage cache's key of
    an --input-table (a rerun resumed every stage before, and removed other documents); an
    unchanged table or view keeps it, as does a write to another table of its database."""
    assert cases["fingerprint_changes"] == {
        "view_unchanged": False,
        "view_sql": True,
        "inner_view_sql": True,
        "partition_renamed": True,
        "external_unchanged": False,
        "outside_rewritten": True,
        "partition_dropped": True,
        "hive_sibling_written": False,
        "hive_outside_rewritten": True,
        "hive_view_rewritten": True,
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--input", "x", "--output", "o"], "--input needs --input-format"),
        (
            ["--input-table", "t", "--input-format", "parquet", "--output", "o"],
            "--input-format is for --input",
        ),
        (
            ["--input", "x", "--input-format", "jsonl", "--output", "o", "--output-table", "t"],
            "--output-table needs typed rows",
        ),
        (["--input-table", "a b", "--output", "o"], "--input-table must be a table name"),
        (
            ["--input-table", "t", "--output", "o", "--output-table", "db.`T__SparkDedup_Lease`"],
            "ends with a name sparkdedup keeps for the staging, lease and replaced tables",
        ),
        (
            ["--input-table", "t", "--output", "o", "--output-table", "d__sparkdedup_replaced"],
            "ends with a name sparkdedup keeps",
        ),
        (
            ["--input-table", "t", "--output", "o", "--output-table", "d__sparkdedup_staging"],
            "ends with a name sparkdedup keeps",
        ),
        (["--input", "x", "--input-table", "t", "--output", "o"], "not allowed with argument"),
    ],
)
def test_table_usage_errors(capsys: pytest.CaptureFixture, argv: list[str], expected: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fuzzy", *argv])
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_remove_needs_an_output_or_an_output_table(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["remove", "--input-table", "t", "--duplicates", "d"])
    assert "one of the arguments --output --output-table is required" in capsys.readouterr().err
