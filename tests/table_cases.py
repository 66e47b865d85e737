"""The CLI on catalog tables, in a Hive-enabled session with an embedded metastore
(test_tables.py runs this in a subprocess: a Python process holds one Spark session, and the
tests' shared one has no Hive catalog).

    python tests/table_cases.py WORKDIR     # prints one JSON object with what each case saw
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from typing import Any

TEXTS = [
    f"document {i} about topic {i % 5}: " + " ".join(f"w{(i * 7 + j) % 50}" for j in range(40))
    for i in range(40)
]


def _rows() -> list[tuple[int, str, str, dict[str, str]]]:
    rows = [(i, t) for i, t in enumerate(TEXTS)]
    # Planted: exact copies of 0-3 and near copies (one word changed) of 10-13.
    rows += [(100 + i, TEXTS[i]) for i in range(4)]
    rows += [(200 + i, TEXTS[10 + i].replace(" w", " x", 1)) for i in range(4)]
    return [(i, t, f"src{i % 3}", {"lang": "en", "n": str(i)}) for i, t in rows]


def _cli(argv: list[str]) -> tuple[int, str]:
    from sparkdedup.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""


def _ids(spark: Any, table: str) -> list[int]:
    return sorted(r[0] for r in spark.read.table(table).select("id").collect())


def _props(spark: Any, table: str) -> dict[str, str]:
    return {r[0]: r[1] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}


def _describe(spark: Any, table: str) -> dict[str, str]:
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    return {r[0]: r[1] for r in rows if r[0] in ("Provider", "Type")}


def run(work: str) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers that import sparkdedup
    spark = (
        SparkSession.builder.master("local[2]")
        .enableHiveSupport()
        .config("spark.sql.warehouse.dir", os.path.join(work, "warehouse"))
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={os.path.join(work, 'metastore')};create=true",
        )
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("FATAL")
    out: dict[str, Any] = {"catalog": spark.conf.get("spark.sql.catalogImplementation")}
    df = spark.createDataFrame(
        _rows(), "id long, text string, source string, meta map<string,string>"
    )
    spark.sql("CREATE DATABASE corpus")
    df.write.partitionBy("source").format("orc").saveAsTable("corpus.docs")
    df.drop("meta").write.parquet(os.path.join(work, "docs.parquet"))
    spark.sql("CREATE TABLE corpus.hive_docs (text string) STORED AS TEXTFILE")
    df.select("text").write.insertInto("corpus.hive_docs")
    out["input_schema"] = spark.read.table("corpus.docs").schema.simpleString()

    fuzzy = ["fuzzy", "--id-col", "id", "--device", "cpu", "--log-level", "ERROR"]
    first = os.path.join(work, "run1")
    out["table_run"] = _cli(
        [
            *fuzzy,
            "--input-table",
            "corpus.docs",
            "--output",
            first,
            "--output-table",
            "corpus.dedup",
        ]
    )
    out["table_kept"] = _ids(spark, "corpus.dedup")
    out["table_schema"] = spark.read.table("corpus.dedup").schema.simpleString()
    out["table_describe"] = _describe(spark, "corpus.dedup")
    out["table_partitions"] = sorted(
        r[0] for r in spark.sql("SHOW PARTITIONS corpus.dedup").collect()
    )
    out["table_props"] = _props(spark, "corpus.dedup")
    out["first_entries"] = sorted(os.listdir(first))
    with open(os.path.join(first, "stats.json")) as fh:
        stats = json.load(fh)
    out["stats"] = {
        k: stats[k] for k in ("input_table", "output_table", "input_format", "removed_docs")
    }
    removed = spark.read.parquet(os.path.join(first, "duplicates"))
    out["removed"] = sorted(r[0] for r in removed.select("id").collect())

    # The same rows from files, written to a directory: the same removals.
    files = os.path.join(work, "files")
    out["files_run"] = _cli(
        [
            *fuzzy,
            "--input",
            os.path.join(work, "docs.parquet"),
            "--input-format",
            "parquet",
            "--output",
            files,
            "--output-table",
            "corpus.from_files",
            # A credential for the input is not stored with the table; a writer option is.
            "--read-option",
            "fs.azure.account.key.acct.dfs.core.windows.net=READ-KEY-MARKER",
            "--write-option",
            "compression=gzip",
        ]
    )
    out["files_kept"] = _ids(spark, "corpus.from_files")
    out["files_describe"] = _describe(spark, "corpus.from_files")
    out["files_ddl"] = spark.sql("SHOW CREATE TABLE corpus.from_files").collect()[0][0]
    out["files_secret_write"] = _cli(
        [
            *fuzzy,
            "--input",
            os.path.join(work, "docs.parquet"),
            "--input-format",
            "parquet",
            "--output",
            os.path.join(work, "files-secret"),
            "--output-table",
            "corpus.from_files_secret",
            "--write-option",
            "fs.s3a.secret.key=WRITE-KEY-MARKER",
        ]
    )
    out["files_secret_table"] = spark.catalog.tableExists("corpus.from_files_secret")

    # Output rules.
    again = os.path.join(work, "run2")
    out["again_no_overwrite"] = _cli(
        [
            *fuzzy,
            "--input-table",
            "corpus.docs",
            "--output",
            again,
            "--output-table",
            "corpus.dedup",
        ]
    )
    spark.sql("CREATE TABLE corpus.mine (id bigint) USING parquet")
    spark.sql("INSERT INTO corpus.mine VALUES (7)")
    out["foreign_overwrite"] = _cli(
        [
            *fuzzy,
            "--input-table",
            "corpus.docs",
            "--output",
            again,
            "--output-table",
            "corpus.mine",
            "--overwrite",
        ]
    )
    out["foreign_after"] = _ids(spark, "corpus.mine")
    out["same_as_input"] = _cli(
        [*fuzzy, "--input-table", "corpus.docs", "--output", again, "--output-table", "corpus.docs"]
    )
    out["missing_input"] = _cli([*fuzzy, "--input-table", "corpus.nope", "--output", again])
    # A staging table a crashed run left is dropped; one sparkdedup did not make is refused.
    spark.sql("CREATE TABLE corpus.dedup__sparkdedup_staging (id bigint) USING parquet")
    out["foreign_staging"] = _cli(
        [
            *fuzzy,
            "--input-table",
            "corpus.docs",
            "--output",
            again,
            "--output-table",
            "corpus.dedup",
            "--overwrite",
        ]
    )
    spark.sql(
        "ALTER TABLE corpus.dedup__sparkdedup_staging SET TBLPROPERTIES ('sparkdedup.staging' = 'x')"
    )
    out["overwrite_run"] = _cli(
        [
            *fuzzy,
            "--input-table",
            "corpus.docs",
            "--output",
            again,
            "--output-table",
            "corpus.dedup",
            "--overwrite",
        ]
    )
    out["overwrite_kept"] = _ids(spark, "corpus.dedup")
    # The session catalog's three-part names (Spark's DDL takes two there), and a commit whose
    # rename fails: the earlier table is put back (it was dropped first, then the rename
    # failed: no table at all).
    from sparkdedup import tables

    three = [*fuzzy, "--input-table", "spark_catalog.corpus.docs", "--output", again]
    three += ["--output-table", "spark_catalog.corpus.dedup", "--overwrite"]
    # (A staging table a commit stopped after marking it written is dropped too.)
    spark.sql(
        "CREATE TABLE corpus.dedup__sparkdedup_staging (id bigint) USING parquet "
        "TBLPROPERTIES ('sparkdedup.written_by' = 'x')"
    )
    out["three_part_run"] = _cli(three)
    out["three_part_kept"] = _ids(spark, "corpus.dedup")
    real, calls = tables._rename_target, []

    def failing(name: str) -> str:
        calls.append(name)
        if len(calls) == 2:  # the staged table's rename into place
            raise RuntimeError("rename refused")
        return real(name)

    tables._rename_target = failing
    try:
        out["failed_commit"] = _cli(three)
    finally:
        tables._rename_target = real
    out["failed_commit_kept"] = _ids(spark, "corpus.dedup")
    # A run stopped between its renames left the earlier table aside: the next run puts it
    # back, then applies the output rules to it.
    spark.sql("ALTER TABLE corpus.dedup RENAME TO corpus.dedup__sparkdedup_replaced")
    fresh = [*fuzzy, "--input-table", "corpus.docs", "--output", os.path.join(work, "run3")]
    out["aside_no_overwrite"] = _cli([*fresh, "--output-table", "spark_catalog.corpus.dedup"])
    out["aside_kept"] = _ids(spark, "corpus.dedup")
    # A new table's location already taken (a table dropped without its files): refused
    # before any work, not at the commit's rename.
    os.makedirs(os.path.join(work, "warehouse", "corpus.db", "leftover", "part"))
    out["location_taken"] = _cli([*fresh, "--overwrite", "--output-table", "corpus.leftover"])
    out["tables"] = sorted(r.tableName for r in spark.sql("SHOW TABLES IN corpus").collect())

    # A partitioned Hive TEXTFILE table into an output table like it (Hive's strict dynamic
    # partition mode refused the insert), and a null id in such a table: a bad record.
    spark.sql(
        "CREATE TABLE corpus.htp (id bigint, text string) PARTITIONED BY (source string) "
        "STORED AS TEXTFILE"
    )
    spark.conf.set("hive.exec.dynamic.partition.mode", "nonstrict")
    df.select("id", "text", "source").write.insertInto("corpus.htp")
    spark.conf.unset("hive.exec.dynamic.partition.mode")
    out["hive_parts_run"] = _cli(
        [*fuzzy, "--input-table", "corpus.htp", "--output", os.path.join(work, "htp")]
        + ["--output-table", "corpus.htp_out"]
    )
    out["hive_parts_kept"] = _ids(spark, "corpus.htp_out")
    out["hive_parts"] = sorted(r[0] for r in spark.sql("SHOW PARTITIONS corpus.htp_out").collect())
    spark.sql("CREATE TABLE corpus.htnull (id bigint, text string) STORED AS TEXTFILE")
    spark.sql("INSERT INTO corpus.htnull VALUES (1, 'some text'), (NULL, 'no id here')")
    out["hive_null_id"] = _cli(
        [*fuzzy, "--input-table", "corpus.htnull", "--output", os.path.join(work, "htnull")]
    )

    # remove: from a table, into a table.
    out["remove_run"] = _cli(
        [
            "remove",
            "--input-table",
            "corpus.docs",
            "--id-col",
            "id",
            "--duplicates",
            os.path.join(first, "duplicates"),
            "--output-table",
            "corpus.removed",
            "--log-level",
            "ERROR",
        ]
    )
    out["remove_kept"] = _ids(spark, "corpus.removed")

    # A Hive serde table with derived ids, its deduplicated rows in a directory.
    hive_out = os.path.join(work, "hive")
    out["hive_run"] = _cli(
        [
            "fuzzy",
            "--device",
            "cpu",
            "--log-level",
            "ERROR",
            "--input-table",
            "corpus.hive_docs",
            "--output",
            hive_out,
        ]
    )
    kept = spark.read.parquet(os.path.join(hive_out, "deduplicated"))
    out["hive_kept_texts"] = kept.count()
    out["hive_kept_distinct"] = kept.distinct().count()
    out["fingerprint_changes"] = _fingerprint_changes(spark, work)
    spark.stop()
    return out


def _outside_partition(spark: Any, table: str, stored: str, work: str, name: str) -> str:
    """An external table partitioned by p, a row in partition p='in' under its location and
    one in p='out' at a location of its own (returned)."""
    location, outside = os.path.join(work, name), os.path.join(work, f"{name}_outside", "p1")
    spark.sql(
        f"CREATE EXTERNAL TABLE {table} (id bigint, text string) PARTITIONED BY (p string) "
        f"STORED AS {stored} LOCATION '{location}'"
    )
    spark.sql(f"ALTER TABLE {table} ADD PARTITION (p='out') LOCATION '{outside}'")
    spark.sql(f"INSERT INTO {table} PARTITION (p='out') VALUES (5, 'x')")
    spark.sql(f"INSERT INTO {table} PARTITION (p='in') VALUES (6, 'y')")
    return outside


def _fingerprint_changes(spark: Any, work: str) -> dict[str, bool]:
    """Whether `table_fingerprint` (the stage cache's key of an --input-table) changes with
    each change to the rows a table or view gives, and stays for an unchanged one."""
    import pyarrow.parquet as pq
    from sparkdedup.tables import table_fingerprint

    def fp(table: str) -> dict[str, Any]:
        return table_fingerprint(spark, table)

    changes: dict[str, bool] = {}
    spark.sql("CREATE TABLE corpus.fp_src (id bigint, text string, q double) USING parquet")
    spark.sql("INSERT INTO corpus.fp_src VALUES (1, 'a', 0.5), (2, 'b', 0.7)")
    spark.sql("CREATE VIEW corpus.fp_view AS SELECT id, text, 1 - q AS q FROM corpus.fp_src")
    before = fp("corpus.fp_view")
    changes["view_unchanged"] = before != fp("corpus.fp_view")
    spark.sql("CREATE VIEW corpus.fp_outer AS SELECT * FROM corpus.fp_view")
    outer = fp("corpus.fp_outer")
    spark.sql("CREATE OR REPLACE VIEW corpus.fp_view AS SELECT id, text, q FROM corpus.fp_src")
    changes["view_sql"] = before != fp("corpus.fp_view")
    changes["inner_view_sql"] = outer != fp("corpus.fp_outer")

    spark.sql(
        "CREATE TABLE corpus.fp_parts (id bigint, text string) PARTITIONED BY (src string) "
        "STORED AS PARQUET"
    )
    spark.sql("INSERT INTO corpus.fp_parts PARTITION (src='a') VALUES (1, 'x')")
    spark.sql("INSERT INTO corpus.fp_parts PARTITION (src='c') VALUES (2, 'y')")
    before = fp("corpus.fp_parts")
    spark.sql("ALTER TABLE corpus.fp_parts PARTITION (src='a') RENAME TO PARTITION (src='z')")
    changes["partition_renamed"] = before != fp("corpus.fp_parts")

    outside = _outside_partition(spark, "corpus.fp_ext", "PARQUET", work, "ext")
    before = fp("corpus.fp_ext")
    changes["external_unchanged"] = before != fp("corpus.fp_ext")
    # A file of the partition outside the table's location rewritten in place, same name.
    (name,) = [n for n in os.listdir(outside) if n.endswith(".parquet")]
    table = pq.read_table(os.path.join(outside, name))
    pq.write_table(
        table.set_column(1, "text", [["a longer text than before"]]), os.path.join(outside, name)
    )
    spark.catalog.refreshTable("corpus.fp_ext")
    rewritten = fp("corpus.fp_ext")
    changes["outside_rewritten"] = before != rewritten
    spark.sql("ALTER TABLE corpus.fp_ext DROP PARTITION (p='in')")  # external: the files stay
    changes["partition_dropped"] = rewritten != fp("corpus.fp_ext")

    # A Hive-format table (its scan names its location, not its files), a partition outside.
    away = _outside_partition(spark, "corpus.fp_text", "TEXTFILE", work, "hive_text")
    before = fp("corpus.fp_text")
    spark.sql("CREATE TABLE corpus.fp_sibling (id bigint) STORED AS TEXTFILE")
    spark.sql("INSERT INTO corpus.fp_sibling VALUES (1)")  # another table of the database
    changes["hive_sibling_written"] = before != fp("corpus.fp_text")
    (name,) = [n for n in os.listdir(away) if not n.startswith((".", "_"))]
    with open(os.path.join(away, name), "a", encoding="utf-8") as handle:
        handle.write("7\tz\n")
    changes["hive_outside_rewritten"] = before != fp("corpus.fp_text")

    # A view over a Hive-format table: the table rewritten with as many rows.
    spark.sql("CREATE TABLE corpus.fp_ht (id bigint, text string) STORED AS TEXTFILE")
    spark.sql("INSERT INTO corpus.fp_ht VALUES (1, 'a'), (2, 'b')")
    spark.sql("CREATE VIEW corpus.fp_vht AS SELECT id, text FROM corpus.fp_ht")
    before = fp("corpus.fp_vht")
    spark.sql("INSERT OVERWRITE TABLE corpus.fp_ht VALUES (1, 'c'), (2, 'dd')")
    changes["hive_view_rewritten"] = before != fp("corpus.fp_vht")
    return changes


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1]), sort_keys=True))
