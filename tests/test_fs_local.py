"""The file operations a Spark Connect session gets (sparkdedup.fs without a JVM): this
machine's file system for local paths and file: URIs, a clear error for other schemes."""

from __future__ import annotations

import os

import pytest
from sparkdedup import fs
from sparkdedup.errors import ConfigError, InputError


class _ConnectSession:
    """Stands in for a Spark Connect session: only its type's module is looked at."""


_ConnectSession.__module__ = "pyspark.sql.connect.session"


def test_local_operations_round_trip(tmp_path) -> None:
    spark = _ConnectSession()
    base = tmp_path / "out"
    fs.mkdirs(spark, str(base / "a"))
    fs.write_text(spark, str(base / "a" / "stats.json"), '{"x": 1}')
    fs.write_text(spark, f"file:{base}/_marker", "m")
    assert fs.exists(spark, str(base)) and fs.read_text(spark, f"{base}/a/stats.json") == '{"x": 1}'
    assert fs.read_text(spark, str(base / "missing")) is None
    assert fs.read_text(spark, str(base / "a")) is None  # a directory is not a text file
    assert [e.name for e in fs.list_dir(spark, str(base))] == ["_marker", "a"]
    assert fs.list_files(spark, str(base)) == ["_marker", "a/stats.json"]
    assert fs.qualified(spark, str(base) + "/") == f"file:{base}"
    assert fs.glob_matches(spark, f"{base}/a/*.json") == [f"file:{base}/a/stats.json"]
    entry = fs.status(spark, str(base / "a" / "stats.json"))
    assert entry is not None and entry.size == 8 and not entry.is_dir
    assert fs.file_summary(spark, str(base))[:2] == (1, 8)  # names with _ or . are not data
    fs.rename(spark, str(base / "a"), str(base / "b" / "c"))
    assert fs.exists(spark, str(base / "b" / "c" / "stats.json"))
    with pytest.raises(OSError, match="target exists"):
        fs.rename(spark, str(base / "_marker"), str(base / "b"))
    assert fs.create_new(spark, str(base / "claim"), "first") is True
    assert fs.create_new(spark, f"file:{base}/claim", "second") is False
    assert fs.read_text(spark, str(base / "claim")) == "first"
    fs.delete(spark, str(base / "claim"))
    fs.delete(spark, str(base / "b"))
    fs.delete(spark, str(base / "nothing-here"))
    assert not fs.exists(spark, str(base / "b")) and fs.status(spark, str(base / "b")) is None


def test_file_summary_digest_sees_a_replaced_file_of_the_same_size(tmp_path) -> None:
    """A file replaced by another of its size, older than the newest file: the count, the
    bytes and the latest time stay, the digest of the listing changes."""
    import os

    spark = _ConnectSession()
    (tmp_path / "a.jsonl").write_text("aaaa")
    (tmp_path / "b.jsonl").write_text("bbbb")
    os.utime(tmp_path / "a.jsonl", (1_000_000, 1_000_000))
    os.utime(tmp_path / "b.jsonl", (2_000_000, 2_000_000))
    before = fs.file_summary(spark, str(tmp_path))
    (tmp_path / "a.jsonl").write_text("cccc")
    os.utime(tmp_path / "a.jsonl", (1_500_000, 1_500_000))
    after = fs.file_summary(spark, str(tmp_path))
    assert before[:3] == after[:3] == (2, 8, 2_000_000_000)
    assert before[3] != after[3]


def test_replace_text_is_never_seen_in_part(tmp_path) -> None:
    """A lease's renewal: a reader sees the old content or the new, never an empty or cut
    file, and no temporary file is left."""
    import threading

    spark = _ConnectSession()
    path = str(tmp_path / "_sparkdedup_lease.json")
    texts = [str(i) * 5000 for i in range(10)]
    fs.write_text(spark, path, texts[0])
    seen: set[str] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(fs.read_text(spark, path) or "")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            fs.replace_text(spark, path, texts[i % 10])
    finally:
        done.set()
        reader.join()
    assert seen and seen <= set(texts), sorted(len(t) for t in seen - set(texts))
    assert [p.name for p in tmp_path.iterdir()] == ["_sparkdedup_lease.json"]


def test_local_parquet_columns(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": [1], "text": ["a"]}), path)
    assert set(fs.parquet_columns(_ConnectSession(), f"file://{path}")) == {"id", "text"}


def test_other_file_systems_are_an_error_naming_the_path() -> None:
    with pytest.raises(InputError, match=r"'s3a://bucket/out' is not a local path.*Spark Connect"):
        fs.exists(_ConnectSession(), "s3a://bucket/out")


@pytest.mark.parametrize("driver_files", [1000, 3])
def test_file_summary_of_many_files_is_a_spark_job(spark, tmp_path, monkeypatch, driver_files):
    """Past `SUMMARY_DRIVER_FILES` files the summary is one Spark job over the listing (the
    driver lists no file itself: a million files would be an hour of calls); listed on the
    driver or by the job, the counts are the files', the digest sees a file replaced by one of
    its size, and another spelling of the same input (a link, a trailing slash, a glob of all
    its files) has the same summary."""
    import os

    monkeypatch.setattr(fs, "SUMMARY_DRIVER_FILES", driver_files)
    jobs = []
    real_job = fs._job_listing
    monkeypatch.setattr(fs, "_job_listing", lambda *a: jobs.append(a) or real_job(*a))
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for i in range(6):
        (data / ("sub" if i % 2 else "") / f"part-{i}.jsonl").write_text("x" * (i + 1))
        os.utime(data / ("sub" if i % 2 else "") / f"part-{i}.jsonl", (10**6 + i, 10**6 + i))
    (data / "_SUCCESS").write_text("")
    (data / ".part-0.jsonl.crc").write_text("crc")
    link = tmp_path / "link"
    link.symlink_to(data, target_is_directory=True)
    before = fs.file_summary(spark, str(data))
    assert before[:3] == (6, 21, (10**6 + 5) * 1000)
    assert fs.file_summary(spark, f"{link}/") == before
    assert bool(jobs) == (driver_files < 6)
    (data / "part-2.jsonl").write_text("y" * 3)  # the same size, another time
    os.utime(data / "part-2.jsonl", (10**6 + 2.5, 10**6 + 2.5))
    after = fs.file_summary(spark, str(data))
    assert after[:3] == before[:3] and after[3] != before[3]
    globbed = fs.file_summary(spark, f"{data}/part-*.jsonl")
    assert globbed[:2] == (3, 1 + 3 + 5)


def test_glob_depth_counts_the_components_from_the_first_glob() -> None:
    """How far below the literal prefix a glob's matches are, relative globs whose first
    component is one character included (their prefix is "."), for the listing job's test of
    files in subdirectories."""
    cases = {"*": 1, "*/2024": 2, "?/*": 2, "c*/2024": 2, "/abs/corpus": 0, "/abs/c/*": 1,
             "corpus/{a,b}": 1, "corpus/{2024,2025/01}/x": 2, "file:/tmp/*/x/": 2,
             "s3a://b/k/*": 1, "corpus": 0}  # fmt: skip
    assert {path: fs.glob_depth(path) for path in cases} == cases


@pytest.mark.parametrize("driver_files", [1000, 1])
def test_listing_names_files_in_subdirectories_spark_leaves_out(
    spark, tmp_path, monkeypatch, driver_files
):
    """Spark's file sources read only the files directly in an input directory without
    key=value partition directories: `input_listing` names the first file in a subdirectory
    of such a directory (`nested`), listed on the driver or by a job; files in the directories
    a glob matches, hidden subdirectories, and a partitioned directory's deeper files (which
    Spark reads) are not named."""
    monkeypatch.setattr(fs, "SUMMARY_DRIVER_FILES", driver_files)
    for name in ["flat/a.jsonl", "flat/b.jsonl", "years/2024/a.jsonl", "years/2025/b.jsonl",
                 "mixed/a.jsonl", "mixed/sub/deep/b.jsonl", "flat/_tmp/c.jsonl",
                 "parts/k=1/a.jsonl", "parts/k=2/deep/b.jsonl"]:  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")

    def nested(path: str) -> str | None:
        return fs.input_listing(spark, str(tmp_path / path)).nested

    assert nested("flat") is None and nested("parts") is None and nested("flat/a.jsonl") is None
    assert nested("years").endswith("/years/2024/a.jsonl")
    assert nested("mixed").endswith("/mixed/sub/deep/b.jsonl")
    assert nested("years/*") is None and nested("*/2025") is None
    assert nested("{mixed,flat}").endswith("/mixed/sub/deep/b.jsonl")
    # With a pathGlobFilter, Spark reads only the files whose names match it: a subdirectory
    # file it would not match is not left out by the directory (it was refused); one it
    # matches is. The files counted are those it matches.
    (tmp_path / "mixed" / "sub" / "deep" / "b.jsonl").rename(tmp_path / "mixed/sub/deep/b.txt")
    mixed = str(tmp_path / "mixed")
    assert fs.input_listing(spark, mixed, "*.jsonl").nested is None
    assert fs.input_listing(spark, mixed, "*.jsonl").summary[0] == 1
    assert fs.input_listing(spark, mixed, "*.{jsonl,txt}").nested.endswith("/deep/b.txt")
    assert fs.input_listing(spark, mixed, "[!a]*").summary[0] == 1
    if driver_files > 10:  # listed on this machine, as over Spark Connect
        local = fs.input_listing(_ConnectSession(), f"file://{tmp_path}/years")
        assert local.nested == f"file:{tmp_path}/years/2024/a.jsonl"
        assert fs.input_listing(_ConnectSession(), f"file://{tmp_path}/parts").nested is None


def test_glob_regex_matches_names_as_hadoops_glob_filter() -> None:
    """`fs.glob_regex`: Hadoop's glob syntax, as a pathGlobFilter matches file names."""
    cases = {
        "*.jsonl": (["a.jsonl", ".jsonl"], ["a.jsonl.gz", "a.json"]),
        "part-?.{json,jsonl}": (["part-1.json", "part-2.jsonl"], ["part-10.json", "part-1.js"]),
        "[!_]*": (["a", "b_"], ["_a"]),
        "[^a-c]x": (["dx"], ["bx"]),
        "a\\*b": (["a*b"], ["axb"]),
        "x.(1)+": (["x.(1)+"], ["xx(1)"]),
        "{a,b{c,d}}": (["a", "bc", "bd"], ["b", "ac"]),
    }
    cases["\\d.txt"] = (["1.txt"], ["d.txt"])  # an escape goes to the regex, as in Hadoop
    cases["x[?*]y"] = (["x.y", "x*y"], ["x?y", "xay"])  # as Hadoop's GlobPattern has them
    for pattern, (yes, no) in cases.items():
        match = fs.glob_regex(pattern).fullmatch
        assert all(match(n) for n in yes) and not any(match(n) for n in no), pattern
    for bad in ("[abc", "{a,b", "a\\"):  # Hadoop refuses these too
        with pytest.raises(ConfigError, match="pathGlobFilter"):
            fs.glob_regex(bad)


def test_glob_regex_agrees_with_hadoops_glob_pattern(spark) -> None:
    """`fs.glob_regex` against Hadoop's own ``GlobPattern`` (what a pathGlobFilter is), on
    the JVM, for every pattern and name here."""
    hadoop = spark._jvm.org.apache.hadoop.fs.GlobPattern
    patterns = ["x[?*]y", "*.jsonl", "part-?.{json,jsonl}", "[!_]*", "[^a-c]x", "a\\*b"]
    patterns += ["x.(1)+", "{a,b{c,d}}", "\\d.txt", "a+b", "a$b", "a|b", "[a-c]?"]
    names = ["x.y", "x*y", "x?y", "xay", "a.jsonl", ".jsonl", "part-1.json", "part-10.json"]
    names += ["_a", "b_", "dx", "bx", "a*b", "axb", "x.(1)+", "a", "bc", "bd", "ac", "1.txt"]
    names += ["d.txt", "a+b", "aab", "a$b", "a|b", "b", "c1", "d1"]
    for pattern in patterns:
        ours, theirs = fs.glob_regex(pattern).fullmatch, hadoop(pattern)
        assert [bool(ours(n)) for n in names] == [theirs.matches(n) for n in names], pattern


def test_files_a_path_glob_filter_leaves_out_do_not_change_the_listing(
    spark, tmp_path, monkeypatch
) -> None:
    """With a pathGlobFilter, only the files it matches are listed and counted: a file it
    leaves out, added to a directory, changes nothing (it used to tip the listing from the
    driver's to a job's, whose digest differs, and a run saw its input "changed")."""
    monkeypatch.setattr(fs, "SUMMARY_DRIVER_FILES", 3)
    for name in ("a.jsonl", "b.jsonl", "x.log"):
        (tmp_path / name).write_text("{}")
    before = fs.input_listing(spark, str(tmp_path), "*.jsonl").summary
    (tmp_path / "y.log").write_text("{}")
    assert fs.input_listing(spark, str(tmp_path), "*.jsonl").summary == before
    assert before[0] == 2


@pytest.mark.parametrize("session", ["classic", "connect"])
def test_file_summary_lists_the_files_spark_reads(spark, tmp_path, session) -> None:
    """The stage cache's fingerprint covers every file Spark's readers read: a partition named
    `_k=1`, a `_metadata` file; and none they skip (`_SUCCESS`, `.crc`, `_temporary/`, a
    `._COPYING_` file), so that a change to a file read is never served from the cache."""
    on = spark if session == "classic" else _ConnectSession()
    (tmp_path / "_k=1").mkdir()
    (tmp_path / "_k=1" / "a.jsonl").write_text("aa")
    (tmp_path / "_x=1.jsonl").write_text("bbb")
    (tmp_path / "_metadata").write_text("m")
    (tmp_path / "_temporary" / "0").mkdir(parents=True)
    (tmp_path / "_temporary" / "0" / "part-0.jsonl").write_text("skipped")
    for name in ["_SUCCESS", ".a.jsonl.crc", "b.jsonl._COPYING_"]:
        (tmp_path / name).write_text("skipped")
    assert fs.file_summary(on, str(tmp_path))[:2] == (3, 6)
    assert [fs.spark_hidden(n) for n in ["_k=1", "_x", ".y", "_metadata", "z._COPYING_"]] == [
        False,
        True,
        True,
        False,
        True,
    ]


@pytest.mark.parametrize("session", ["classic", "connect", "job"])
def test_a_directory_a_glob_matches_is_in_the_digest(spark, tmp_path, monkeypatch, session):
    """A glob over partition directories (`gp/*`): renaming a matched directory (`src=a` to
    `src=z`, a partition column's value) changes the digest, on the driver's listing (classic
    and Connect) as in the Spark job's."""
    import os

    on = spark if session == "classic" else _ConnectSession()
    if session == "job":
        on = spark
        monkeypatch.setattr(fs, "SUMMARY_DRIVER_FILES", 1)
    root = tmp_path / "gp"
    for part in ("src=a", "src=b"):
        (root / part).mkdir(parents=True)
        (root / part / "f.parquet").write_text("x")
        os.utime(root / part / "f.parquet", (10**6, 10**6))
    glob = f"{root}/*"
    before = fs.file_summary(on, glob)
    (root / "src=a").rename(root / "src=z")
    after = fs.file_summary(on, glob)
    assert after[:3] == before[:3] and after[3] != before[3]


def test_local_globs_read_as_hadoop_globs(tmp_path) -> None:
    """Over Spark Connect the paths are globbed here, with Hadoop's syntax as the server reads
    it: {a,b} alternatives (nested too) and [^x] (Python's glob has neither)."""
    spark = _ConnectSession()
    for name in ["f1.jsonl", "f2.jsonl", "f3.jsonl", "g1.jsonl"]:
        (tmp_path / name).write_text("x")
    names = lambda pattern: [p.rsplit("/", 1)[1] for p in fs.glob_matches(spark, pattern)]  # noqa: E731
    assert names(f"{tmp_path}/f{{1,2}}.jsonl") == ["f1.jsonl", "f2.jsonl"]
    assert names(f"{tmp_path}/{{f{{1,3}},g1}}.jsonl") == ["f1.jsonl", "f3.jsonl", "g1.jsonl"]
    assert names(f"{tmp_path}/f[^1].jsonl") == ["f2.jsonl", "f3.jsonl"]
    assert fs.path_exists(spark, f"{tmp_path}/f{{1,9}}.jsonl")
    assert fs.file_summary(spark, f"{tmp_path}/f{{1,2}}.jsonl")[:2] == (2, 2)
    # Hadoop's escapes name a directory whose name holds glob characters, as on the server.
    (tmp_path / "out[1]").mkdir()
    (tmp_path / "out1").mkdir()
    assert names(f"{tmp_path}/out\\[1\\]") == ["out[1]"]
    assert names(f"{tmp_path}/out[1]") == ["out1"]


@pytest.mark.parametrize("session", ["classic", "connect"])
def test_paths_sparkdedup_reads_back_are_literal(spark, tmp_path, monkeypatch, session) -> None:
    """What sparkdedup wrote is read back literally: not a sibling its name would match as a
    glob, also for a relative path from a working directory whose name would; and a path
    the user gives for sparkdedup's own data is no glob to the output checks either."""
    from sparkdedup.errors import ConfigError
    from sparkdedup.outputs import check_separate

    session_ = spark if session == "classic" else _ConnectSession()
    for name, n in [("w[1]", 3), ("w1", 5)]:
        spark.range(n).write.parquet(str(tmp_path / name / "p"))
        spark.range(n).write.parquet(str(tmp_path / name / "p[2]"))
        spark.range(n + 1).write.parquet(str(tmp_path / name / "p2"))
    assert spark.read.parquet(fs.literal(session_, str(tmp_path / "w[1]" / "p"))).count() == 3
    # Relative paths, from a working directory w[1]: the JVM's Hadoop one (classic), this
    # process's (Connect: a local server's paths are this machine's).
    local, _ = fs.hadoop_path(spark, "/")
    before = local.getWorkingDirectory()
    monkeypatch.chdir(tmp_path / "w[1]")
    try:
        local.setWorkingDirectory(
            spark.sparkContext._jvm.org.apache.hadoop.fs.Path(str(tmp_path / "w[1]"))
        )
        assert spark.read.parquet(fs.literal(session_, "p")).count() == 3
        assert spark.read.parquet(fs.literal(session_, "p[2]")).count() == 3
    finally:
        local.setWorkingDirectory(before)
    assert fs.literal(session_, "/plain/path") == "/plain/path"
    # --output w[1] beside an --index-out w1: two places, whatever w[1] would match.
    check_separate(session_, {"--output": str(tmp_path / "w[1]")},
                   {"--index-out": str(tmp_path / "w1")}, others_are_outputs=True)  # fmt: skip
    check_separate(session_, {"--against": str(tmp_path / "w[1]")},
                   {"--output": str(tmp_path / "w1" / "o")})  # fmt: skip
    with pytest.raises(ConfigError, match="--input"):
        check_separate(session_, {"--input": str(tmp_path / "w[1]")},
                       {"--output": str(tmp_path / "w1" / "o")})  # fmt: skip


def test_the_cache_key_of_a_delta_table_follows_its_log(spark, tmp_path, monkeypatch) -> None:
    """A Delta commit that writes no data file (RESTORE, a DELETE of whole files) changes only
    the transaction log, which Spark's listing hides: the stage-cache key of the table, and of
    the Delta directory given as --input, lists it."""
    from sparkdedup import tables
    from sparkdedup.io import input_fingerprint

    table = tmp_path / "t"
    (table / "_delta_log").mkdir(parents=True)
    (table / "part-0.parquet").write_text("data")
    (table / "_delta_log" / "00000000000000000000.json").write_text("{}")
    info = tables.TableInfo("db.t", "delta", f"file:{table}", {})
    monkeypatch.setattr(tables, "describe", lambda spark, name: info)
    before = tables.table_fingerprint(spark, "db.t")
    by_path = input_fingerprint(spark, str(table), fmt="delta")
    assert tables.table_fingerprint(spark, "db.t") == before
    (table / "_delta_log" / "00000000000000000001.json").write_text("{}")
    after = tables.table_fingerprint(spark, "db.t")
    assert after["listing"] == before["listing"] and after != before
    assert input_fingerprint(spark, str(table), fmt="delta") != by_path  # --input, Delta


def test_a_full_disk_leaves_no_empty_claim_nor_temporary_file(tmp_path, monkeypatch) -> None:
    """A write that fails (here: no space left) removes what it created: an empty lease or
    commit claim left by `create_new` would hold off every later run (one that cannot be
    read looks like another run's), and a temporary file of `replace_text` would make the
    output hold a file sparkdedup does not recognise as its own."""
    import errno
    import io

    spark = _ConnectSession()

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    real_fdopen = os.fdopen
    monkeypatch.setattr(fs.os, "fdopen", lambda fd, *a, **k: (os.close(fd), Full())[1])
    with pytest.raises(OSError, match="No space left"):
        fs.create_new(spark, str(tmp_path / "claim.json"), "{}")
    assert not (tmp_path / "claim.json").exists()
    monkeypatch.setattr(fs.os, "fdopen", real_fdopen)
    assert fs.create_new(spark, str(tmp_path / "claim.json"), "{}") is True

    (tmp_path / "marker.json").write_text("old")

    def creating(path, *args, **kwargs):  # creates the file, then fails to write it
        with open(path, "w"):
            pass
        return Full()

    monkeypatch.setattr(fs, "open", creating, raising=False)
    with pytest.raises(OSError, match="No space left"):
        fs.replace_text(spark, str(tmp_path / "marker.json"), "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claim.json", "marker.json"]
    assert (tmp_path / "marker.json").read_text() == "old"
