"""The CLI never loses or corrupts a user's data: output-path rules, schema drift, bad records,
one-line errors and a clean exit. Every case checks the exit code, the one-line message and
that the input and the user's files are byte-identical afterwards."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from sparkdedup import cli


def _digest(*roots: Path) -> dict[str, str]:
    """sha256 of every file under `roots` (hidden ones included), by path."""
    out = {}
    for root in roots:
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
            continue
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _docs(n: int, start: int = 0) -> list[dict]:
    # Pairs of identical texts (2k, 2k+1), so every run removes something.
    return [
        {"id": i, "text": " ".join(f"w{i // 2}x{j}" for j in range(12)), "source": f"s{i}"}
        for i in range(start, start + n)
    ]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _run(capsys, *argv: str) -> tuple[int, list[str]]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def _error_line(lines: list[str]) -> str:
    """The one error line; there must be exactly one, and no traceback."""
    errors = [line for line in lines if line.startswith("sparkdedup: ")]
    assert len(errors) == 1, lines[-20:]
    assert not any(line.startswith("Traceback") for line in lines), lines[-20:]
    return errors[0]


FUZZY = ["--input-format", "jsonl", "--id-col", "id", "--char-ngrams", "5"]


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    _jsonl(d / "a.jsonl", _docs(20))
    _jsonl(d / "b.jsonl", _docs(20, start=20))
    return d


def test_remove_onto_its_own_input_is_refused(spark, corpus, tmp_path, capsys):
    code, _ = _run(capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(tmp_path / "o"))
    assert code == 0
    before = _digest(corpus, tmp_path / "o")
    code, lines = _run(
        capsys,
        "remove",
        "--input",
        str(corpus),
        "--input-format",
        "jsonl",
        "--id-col",
        "id",
        "--duplicates",
        str(tmp_path / "o" / "duplicates"),
        "--output",
        str(corpus),
    )
    assert code == 2
    line = _error_line(lines)
    assert "--output" in line and "is --input" in line, line
    assert _digest(corpus, tmp_path / "o") == before


@pytest.mark.parametrize("how", ["output contains input", "same directory", "symlink", "file uri"])
def test_output_overlapping_the_input_is_refused(spark, corpus, tmp_path, capsys, how):
    out = tmp_path / "o"
    if how == "output contains input":  # deduplicating the deduplicated rows "in place"
        code, _ = _run(capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out))
        assert code == 0
        source, target = out / "deduplicated", out
    elif how == "same directory":
        source, target = corpus, corpus
    elif how == "symlink":
        link = tmp_path / "link"
        link.symlink_to(corpus)
        source, target = corpus, link / "out"
    else:
        source, target = corpus, f"file://{corpus}/out"
    before = _digest(corpus, out)
    code, lines = _run(
        capsys, "fuzzy", "--input", str(source), *FUZZY, "--output", str(target), "--overwrite"
    )
    assert code == 2
    line = _error_line(lines)
    assert "--output" in line and "--input" in line and "outside the input" in line, line
    assert _digest(corpus, out) == before
    assert not (corpus / "out").exists()


def test_cache_path_inside_the_input_is_refused(spark, corpus, tmp_path, capsys):
    before = _digest(corpus)
    code, lines = _run(
        capsys,
        "fuzzy",
        "--input",
        str(corpus),
        *FUZZY,
        "--output",
        str(tmp_path / "o"),
        "--cache-path",
        str(corpus / "cache"),
    )
    assert code == 2 and "--cache-path" in _error_line(lines)
    assert _digest(corpus) == before and not (tmp_path / "o").exists()


def test_existing_output_needs_overwrite_and_keeps_other_files(spark, corpus, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "plots").mkdir()
    (out / "plots" / "a.png").write_bytes(b"\x89PNG")
    mine = _digest(out)
    before = _digest(corpus)
    code, lines = _run(capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out))
    assert code == 2
    line = _error_line(lines)
    assert "is not empty" in line and "notes.txt" in line and "--overwrite" in line, line
    assert _digest(out) == mine

    code, _ = _run(
        capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out), "--overwrite"
    )
    assert code == 0
    assert {k: v for k, v in _digest(out).items() if k in mine} == mine  # untouched
    assert (out / "deduplicated").is_dir() and (out / "stats.json").is_file()

    # A rerun without --overwrite is refused (the earlier output is there), with it replaced.
    code, lines = _run(capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out))
    assert code == 2 and "earlier sparkdedup run" in _error_line(lines)
    # The input spelled another way (through a link, with a trailing slash) is the same input.
    link = tmp_path / "link"
    link.symlink_to(corpus, target_is_directory=True)
    code, _ = _run(
        capsys, "fuzzy", "--input", f"{link}/", *FUZZY, "--output", str(out), "--overwrite"
    )
    assert code == 0 and {k: v for k, v in _digest(out).items() if k in mine} == mine
    assert _digest(corpus) == before
    # The replacing run resumed every stage from the cache the first one left under OUT/cache.
    stats = json.loads((out / "stats.json").read_text())
    assert stats["resumed_stages"] == ["minhash", "edges", "components", "duplicates"], stats


def test_overwrite_never_replaces_foreign_files(spark, corpus, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "deduplicated").mkdir()
    (out / "deduplicated" / "keep.parquet").write_bytes(b"user data")
    before = _digest(out, corpus)
    code, lines = _run(
        capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out), "--overwrite"
    )
    assert code == 2
    line = _error_line(lines)
    assert "deduplicated" in line and "did not write" in line, line
    assert _digest(out, corpus) == before

    # A file added inside an earlier output is not sparkdedup's either.
    out2 = tmp_path / "o2"
    code, _ = _run(capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out2))
    assert code == 0
    (out2 / "duplicates" / "note.md").write_text("added by hand")
    before = _digest(out2)
    code, lines = _run(
        capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out2), "--overwrite"
    )
    assert code == 2 and "note.md" in _error_line(lines)
    assert _digest(out2) == before


def test_output_that_is_a_file_is_refused(spark, corpus, tmp_path, capsys):
    target = tmp_path / "result.txt"
    target.write_text("keep me")
    before = _digest(target, corpus)
    for argv in (
        ["fuzzy", "--input", str(corpus), *FUZZY, "--output", str(target)],
        [
            "fuzzy",
            "--input",
            str(corpus),
            *FUZZY,
            "--output",
            str(tmp_path / "o"),
            "--cache-path",
            str(target),
        ],
    ):
        code, lines = _run(capsys, *argv)
        assert code == 2 and "is a file" in _error_line(lines)
    assert _digest(target, corpus) == before


def test_failed_run_leaves_the_previous_output(spark, corpus, tmp_path, capsys):
    out = tmp_path / "o"
    code, _ = _run(capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out))
    assert code == 0
    before = _digest(out)
    bad = tmp_path / "bad"
    _jsonl(bad / "a.jsonl", _docs(10))
    with open(bad / "a.jsonl", "a", encoding="utf-8") as f:
        f.write("{broken\n")
    code, lines = _run(
        capsys,
        "fuzzy",
        "--input",
        str(bad),
        *FUZZY,
        "--output",
        str(out),
        "--overwrite",
        "--cache-path",
        str(tmp_path / "cache2"),
    )
    assert code == 2 and "line 11" in _error_line(lines)
    assert _digest(out) == before  # no staging directory left, nothing replaced
    assert not [p for p in os.listdir(out) if p.startswith("_sparkdedup_staging")]
    assert not (tmp_path / "cache2" / "_sparkdedup_lease.json").exists()  # given back


def test_a_failed_run_with_its_cache_inside_the_output_reruns_without_overwrite(
    spark, corpus, tmp_path, capsys
):
    """A --cache-path inside --output (not the default OUTPUT/cache) is the run's own: after
    a failed run, the rerun is not refused as a non-empty output."""
    bad = tmp_path / "bad"
    _jsonl(bad / "a.jsonl", _docs(10))
    with open(bad / "a.jsonl", "a", encoding="utf-8") as f:
        f.write("{broken\n")
    out = tmp_path / "o"
    argv = ["fuzzy", "--input", str(bad), *FUZZY, "--output", str(out)]
    argv += ["--cache-path", str(out / "work" / "stages"), "--bad-records", "fail"]
    code, lines = _run(capsys, *argv)
    assert code == 2 and "line 11" in _error_line(lines)
    assert os.listdir(out) == ["work"]
    # The same corpus, its bad line left out: a new run in the same place.
    code, lines = _run(capsys, *argv[:-1], "skip")
    assert code == 0, lines
    assert {"duplicates", "deduplicated", "stats.json", "work"} <= set(os.listdir(out))
    # A directory of the user's there is still refused.
    (out / "mine").mkdir()
    (out / "mine" / "note.txt").write_text("keep")
    code, lines = _run(capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out))
    assert code == 2


def _killed(out) -> str:  # noqa: ANN001 - an OutputDir
    """What a run killed after `out.prepare()` leaves: its staging directory (returned, as a
    local path) and its lease, no longer renewed, naming a process that is gone (this one,
    which no longer holds it)."""
    from sparkdedup import outputs

    lease = out.lease
    lease._stop.set()
    lease._thread.join()
    with outputs._HELD_LOCK:
        outputs._HELD.discard(lease.token)
    return out.staging.split(":", 1)[-1]


def test_the_output_marker_is_replaced_in_one_step(spark, tmp_path, monkeypatch):
    """The marker naming sparkdedup's files is replaced in one step, never truncated and then
    written: a run stopped in between would leave it empty, and its outputs would no longer be
    recognised as sparkdedup's (refused even with --overwrite). A marker Hadoop wrote with its
    checksum file is replaced and read back through Hadoop."""
    from sparkdedup import fs
    from sparkdedup.outputs import MARKER, OutputDir

    target = str(tmp_path / "out")
    write_text, written = fs.write_text, []

    def recording(spark_, path, text):
        written.append(path)
        return write_text(spark_, path, text)

    monkeypatch.setattr(fs, "write_text", recording)
    for run in range(3):
        out = OutputDir(spark, target, ("stats.json",), overwrite=True)
        out.prepare()
        write_text(spark, out.path("stats.json"), json.dumps({"run": run}))
        out.commit()
        assert not [p for p in written if p.endswith(MARKER)], written
        marker = json.loads(fs.read_text(spark, f"{target}/{MARKER}"))
        assert marker["entries"] == {"stats.json": []}
        assert json.loads(fs.read_text(spark, f"{target}/stats.json")) == {"run": run}
        write_text(spark, f"{target}/{MARKER}", json.dumps(marker))  # with a checksum file
    assert os.path.exists(tmp_path / "out" / f".{MARKER}.crc")


def test_dataset_staging_left_by_a_killed_run_is_cleared(spark, tmp_path, caplog):
    """`remove` stages its output beside --output: a copy that a killed run left there is
    deleted by the next run writing that output, unless it holds the earlier output moved
    aside mid-commit (then it is left, with a warning); other targets' staging is untouched."""
    from sparkdedup.outputs import STAGING_PREFIX, OutputDir

    def killed(target: str, *, mid_commit: bool = False) -> str:
        out = OutputDir(spark, target, None, overwrite=True)
        out.prepare()
        os.makedirs(os.path.join(out.path().split(":", 1)[-1], "x"))  # never committed
        if mid_commit:
            os.rename(target, os.path.join(out.staging.split(":", 1)[-1], "replaced"))
        return _killed(out)

    target = str(tmp_path / "clean")
    first = OutputDir(spark, target, None)
    first.prepare()
    # The lease of a single dataset lies beside it, and goes with the commit.
    assert os.path.isfile(tmp_path / "_sparkdedup_lease-clean.json")
    os.makedirs(first.path().split(":", 1)[-1])
    with open(os.path.join(first.path().split(":", 1)[-1], "part-0.txt"), "w") as fh:
        fh.write("an earlier output")
    first.commit()
    assert not os.path.exists(tmp_path / "_sparkdedup_lease-clean.json")
    other = killed(str(tmp_path / "other"))
    left = killed(target)
    assert os.path.isdir(left)
    with caplog.at_level("WARNING", logger="sparkdedup"):
        after = OutputDir(spark, target, None, overwrite=True)
        after.prepare()
    assert "taking over the lease" in caplog.text
    assert not os.path.exists(left) and os.path.isdir(other)
    after.abort()
    assert not os.path.exists(tmp_path / "_sparkdedup_lease-clean.json")
    # Stopped between moving the earlier output aside and moving the new one in: kept.
    aside = killed(target, mid_commit=True)
    assert not os.path.exists(target)
    with caplog.at_level("WARNING", logger="sparkdedup"):
        last = OutputDir(spark, target, None, overwrite=True)
        last.prepare()
    assert os.path.isfile(os.path.join(aside, "replaced", "part-0.txt"))
    assert "holds the earlier output" in caplog.text
    staged = [p for p in os.listdir(tmp_path) if p.startswith(STAGING_PREFIX)]
    assert len(staged) == 3  # other's, the one kept, and the last prepare's own
    last.abort()


def test_tree_staging_holding_an_earlier_output_moved_aside_is_kept(spark, tmp_path, caplog):
    """The workflows stage inside --output: a staging directory a killed run left there is
    deleted by the next run, unless its commit had moved an entry of the earlier output aside
    and not yet put the new one in its place (then it is left, with a warning naming it)."""
    from sparkdedup.outputs import STAGING_PREFIX, OutputDir

    target = str(tmp_path / "out")
    entries = ["duplicates", "deduplicated", "stats.json"]

    def local(path: str) -> str:
        return path.split(":", 1)[-1]

    first = OutputDir(spark, target, entries)
    first.prepare()
    for name in ("duplicates", "deduplicated"):
        os.makedirs(local(first.path(name)))
        with open(os.path.join(local(first.path(name)), "part-0.txt"), "w") as fh:
            fh.write(f"the earlier {name}")
    first.commit()
    # Killed before its commit: deleted by the next run.
    early = OutputDir(spark, target, entries, overwrite=True)
    early.prepare()
    left = _killed(early)
    after = OutputDir(spark, target, entries, overwrite=True)
    after.prepare()
    assert not os.path.exists(left)
    after.abort()
    # Killed mid-commit, deduplicated/ moved aside and not yet replaced: kept.
    killed = OutputDir(spark, target, entries, overwrite=True)
    killed.prepare()
    aside = os.path.join(local(killed.staging), "_replaced")
    os.makedirs(aside)
    os.rename(os.path.join(target, "deduplicated"), os.path.join(aside, "deduplicated"))
    _killed(killed)
    with caplog.at_level("WARNING", logger="sparkdedup"):
        last = OutputDir(spark, target, entries, overwrite=True)
        last.prepare()
    assert os.path.isfile(os.path.join(aside, "deduplicated", "part-0.txt"))
    assert "holds the earlier output's deduplicated" in caplog.text
    staged = [p for p in os.listdir(target) if p.startswith(STAGING_PREFIX)]
    assert len(staged) == 2  # the one kept, and the last prepare's own
    last.abort()
    assert not os.path.exists(os.path.join(target, "_sparkdedup_lease.json"))


def test_a_commit_that_fails_midway_leaves_the_earlier_output(spark, tmp_path, monkeypatch, caplog):
    """A move that fails during the commit (a permission, a full disk, a copy on an object
    store) puts back what the commit had moved: the failed run leaves the earlier output as
    it was, in both layouts, whichever move failed, and no marker where there was none. When
    putting back fails too, the earlier entries stay in the staging directory (kept, with a
    warning), never deleted."""
    from sparkdedup import fs
    from sparkdedup.outputs import MARKER, STAGING_PREFIX, OutputDir, prepare_cache

    entries = ["deduplicated", "duplicates", "groups", "stats.json"]

    def local(path: str) -> str:
        return path.split(":", 1)[-1]

    def stage(out: OutputDir, text: str, names) -> None:
        for name in names:
            path = local(out.path(name))
            os.makedirs(path)
            with open(os.path.join(path, f"part-{text}.txt"), "w") as fh:
                fh.write(f"{text} {name}")

    def files(root: str) -> dict[str, str]:
        found = {}
        for folder, _, names in os.walk(root):
            for name in names:
                if not name.startswith((".", "_sparkdedup_lease")):
                    with open(os.path.join(folder, name), encoding="utf-8") as fh:
                        found[os.path.relpath(os.path.join(folder, name), root)] = fh.read()
        return found

    rename = fs.rename

    def failing(*endings: str):
        """fs.rename failing once for each target matching one of `endings` (patterns of
        the path's end)."""
        left = list(endings)

        def move(spark_, source, dest):
            for ending in left:
                if re.search(f"/{ending}$", dest):
                    left.remove(ending)
                    raise OSError(f"could not move {source!r} to {dest!r}")
            return rename(spark_, source, dest)

        return move, left

    earlier, later = entries[:3], ["deduplicated", "duplicates", "stats.json"]
    for layout, endings in (
        ("tree", ("_replaced/groups",)),  # moving the earlier entries aside
        ("tree", ("out/stats.json",)),  # moving the new entries in (groups only earlier)
        ("dataset", ("out",)),  # the new dataset into the place of the earlier one
        # ... and moving the new duplicates/ back to the staging directory fails too.
        ("tree", ("out/stats.json", "_sparkdedup_staging-[0-9a-f]+/duplicates")),
    ):
        target = str(tmp_path / layout / "-".join(endings).replace("/", "_") / "out")
        tree = layout == "tree"
        first = OutputDir(spark, target, entries if tree else None)
        first.prepare()
        stage(first, "earlier", earlier if tree else [None])
        first.commit()
        before = files(target)
        move, left = failing(*endings)
        monkeypatch.setattr(fs, "rename", move)
        second = OutputDir(spark, target, entries if tree else None, overwrite=True)
        second.prepare()
        stage(second, "later", later if tree else [None])
        with pytest.raises(OSError, match="could not move|find their places taken"):
            second.commit()
        with caplog.at_level("WARNING", logger="sparkdedup"):
            second.abort()
        monkeypatch.setattr(fs, "rename", rename)
        assert not left, (layout, endings)
        if len(endings) == 1:
            assert files(target) == before, (layout, endings)
            staged = [p for p in os.listdir(os.path.dirname(target)) if p != "out"]
            assert staged == [] and not os.path.exists(os.path.join(target, STAGING_PREFIX))
        else:
            # duplicates/ could not go back: its new files hold its place, its earlier ones
            # are kept in the staging directory, which abort leaves, saying so.
            assert "could not be put back" in caplog.text
            now = files(target)
            kept = {k.split("/_replaced/", 1)[1]: v for k, v in now.items() if "/_replaced/" in k}
            assert kept == {"duplicates/part-earlier.txt": "earlier duplicates"}
            others = {k: v for k, v in before.items() if not k.startswith(("duplicates", MARKER))}
            assert {k: v for k, v in now.items() if k in others} == others
    # A first commit into a directory that held only a cache: no marker is left.
    target = str(tmp_path / "fresh" / "out")
    prepare_cache(spark, os.path.join(target, "cache"))
    out = OutputDir(spark, target, entries, keep=("cache",))
    out.prepare()
    stage(out, "first", later)
    move, _ = failing("out/duplicates")
    monkeypatch.setattr(fs, "rename", move)
    with pytest.raises(OSError, match="could not move"):
        out.commit()
    out.abort()
    monkeypatch.setattr(fs, "rename", rename)
    assert sorted(os.listdir(target)) == ["cache"]


def test_one_run_at_a_time_writes_an_output(spark, corpus, tmp_path, capsys, caplog, monkeypatch):
    """A run holds a lease on its --output from its checks to its commit, renewed while it
    runs. Another run is refused while the holder renews it (its staging and the cache are
    left alone); a lease whose process is gone is taken over at once, one no longer renewed
    once stale; a run whose lease was taken over is refused at its commit."""
    from sparkdedup import outputs
    from sparkdedup.errors import ConfigError
    from sparkdedup.outputs import LEASE, OutputDir

    monkeypatch.setattr(outputs, "LEASE_RENEW_SECONDS", 0.2)
    monkeypatch.setattr(outputs, "LEASE_STALE_SECONDS", 2.0)
    target = tmp_path / "out"
    lease = target / LEASE
    entries = ["duplicates", "deduplicated", "stats.json"]

    def record() -> dict:
        return json.loads(lease.read_text())

    held = OutputDir(spark, str(target), entries, keep=["cache"])
    held.prepare()
    first = record()
    assert first["run"] == held.lease.token and first["pid"] == os.getpid()
    deadline = time.monotonic() + 10
    while record()["renewed"] == first["renewed"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record()["renewed"] > first["renewed"]  # renewed while the run runs
    staging = held.staging.split(":", 1)[-1]
    (target / "cache").mkdir()
    (target / "cache" / "_sparkdedup_cache.json").write_text("{}")
    before = _digest(target / "cache")
    # A second run of the same output, through the CLI: one line, exit 2, nothing touched.
    code, lines = _run(capsys, "fuzzy", "--input", str(corpus), "--output", str(target), *FUZZY)
    assert code == 2
    error = _error_line(lines)
    assert "is being written by another sparkdedup run" in error
    assert f"process {os.getpid()} on " in error and LEASE in error, error
    assert os.path.isdir(staging) and _digest(target / "cache") == before
    assert record()["run"] == held.lease.token
    # The holder killed: its process (here, a run of this one) holds it no more.
    _killed(held)
    with caplog.at_level("WARNING", logger="sparkdedup"):
        taker = OutputDir(spark, str(target), entries, keep=["cache"])
        taker.prepare()
    assert "an earlier run of this process that did not give it back" in caplog.text
    assert not os.path.exists(staging)  # the killed run's staging, now a leftover
    with pytest.raises(ConfigError, match="was taken over by another run"):
        held.commit()
    taker.abort()
    assert not lease.exists()
    # The output moved away while a run ran: its lease is gone, which the error says (no
    # other run took it over).
    moved = OutputDir(spark, str(target), entries, keep=["cache"])
    moved.prepare()
    target.rename(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=r"this run's lease .* is gone \(the output, or the"):
        moved.commit()
    moved.abort()
    (tmp_path / "elsewhere").rename(target)

    def foreign(host: str, pid: int, age: float) -> None:
        now = time.time()
        written = tmp_path / "foreign.tmp"  # then moved over the lease: read whole or not at all
        written.write_text(json.dumps({"run": "x", "host": host, "pid": pid,
                                       "started": now - 60, "renewed": now - age}))  # fmt: skip
        os.replace(written, lease)

    # A process of this machine that has exited: taken over at once.
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    foreign(socket.gethostname(), int(done.stdout), 0.0)
    caplog.clear()
    with caplog.at_level("WARNING", logger="sparkdedup"):
        out = OutputDir(spark, str(target), entries, keep=["cache"])
        out.prepare()
    assert f"its process {int(done.stdout)} on this machine has exited" in caplog.text
    out.abort()
    # Another machine's run that stopped renewing: taken over once stale (here 2 s).
    foreign("elsewhere.example", 4242, 0.5)
    caplog.clear()
    began = time.monotonic()
    with caplog.at_level("WARNING", logger="sparkdedup"):
        out = OutputDir(spark, str(target), entries, keep=["cache"])
        out.prepare()
    assert time.monotonic() - began >= 1.2
    assert "waiting up to" in caplog.text and "not renewed for" in caplog.text
    assert record()["run"] == out.lease.token
    out.abort()
    # Another machine's run that renews it: refused, naming it.
    foreign("elsewhere.example", 4242, 0.0)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(0.2):
            foreign("elsewhere.example", 4242, 0.0)

    renewer = threading.Thread(target=renew)
    renewer.start()
    try:
        with pytest.raises(ConfigError, match="process 4242 on elsewhere.example"):
            OutputDir(spark, str(target), entries, keep=["cache"]).prepare()
    finally:
        stop.set()
        renewer.join()
    assert record()["run"] == "x"
    lease.unlink()
    lease.mkdir()  # not a lease file: named, not waited on or deleted
    with pytest.raises(ConfigError, match="is not a sparkdedup lease file"):
        OutputDir(spark, str(target), entries, keep=["cache"]).prepare()
    assert lease.is_dir()
    # A --cache-path outside --output is held as well.
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "_sparkdedup_cache.json").write_text("{}")  # as the holder's run made it
    holder = outputs.OutputLease(spark, str(cache / LEASE), str(cache), "--cache-path")
    holder.acquire()
    try:
        code, lines = _run(capsys, "fuzzy", "--input", str(corpus), "--output",
                           str(tmp_path / "o2"), "--cache-path", str(cache), *FUZZY)  # fmt: skip
    finally:
        holder.release()
    assert code == 2
    error = _error_line(lines)
    assert f"--cache-path '{cache}' is being written by another sparkdedup run" in error, error
    assert not (tmp_path / "o2" / LEASE).exists() and not (cache / LEASE).exists()


def test_a_lease_that_cannot_be_created_nor_read_is_an_error_not_a_loop(spark, tmp_path):
    """A lease file the file system reports as there when it is created and as absent when it
    is read (two views of one path: a JVM that spells a name otherwise than Python did) is a
    ConfigError naming it after a few tries, not a loop that never ends."""
    from sparkdedup.errors import ConfigError
    from sparkdedup.outputs import OutputLease

    lease = OutputLease(spark, str(tmp_path / "lease.json"), "out", "--output")
    calls = []
    lease._create = lambda body: calls.append(body) is not None  # "exists": never created
    lease._read = lambda: None
    raised: list[BaseException] = []

    def acquire() -> None:
        try:
            lease.acquire()
        except BaseException as err:  # noqa: BLE001 - handed to the test's thread
            raised.append(err)

    worker = threading.Thread(target=acquire, daemon=True)
    worker.start()
    worker.join(60)
    lease._create = lambda body: True  # a loop still running ends
    assert not worker.is_alive(), f"still trying after {len(calls)} creates"
    assert len(raised) == 1 and isinstance(raised[0], ConfigError), raised
    assert "cannot be created, as if it existed, yet is not there" in str(raised[0])
    assert 5 <= len(calls) <= 100, len(calls)


def test_an_interrupted_run_gives_its_output_back(spark, corpus, tmp_path, monkeypatch):
    """Ctrl-C in a notebook or a shell: the run's staging directory and its lease go, so the
    next run of that output (in the same process, too) starts at once."""
    from sparkdedup.fuzzy import workflow

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise KeyboardInterrupt

    monkeypatch.setattr(workflow, "run_fuzzy", interrupted)
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        cli.main(["fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out)])
    left = [p for p in os.listdir(out) if p.startswith("_sparkdedup_")]
    assert left == [], left


def test_remove_writes_atomically_and_overwrites_only_its_own_output(
    spark, corpus, tmp_path, capsys
):
    out = tmp_path / "o"
    assert _run(capsys, "fuzzy", "--input", str(corpus), *FUZZY, "--output", str(out))[0] == 0
    argv = [
        "remove",
        "--input",
        str(corpus),
        "--input-format",
        "jsonl",
        "--id-col",
        "id",
        "--duplicates",
        str(out / "duplicates"),
        "--output",
        str(tmp_path / "clean"),
    ]
    assert _run(capsys, *argv)[0] == 0
    kept = sorted((tmp_path / "clean").glob("part-*"))
    lines = sorted(line for p in kept for line in p.read_text().splitlines())
    assert lines == sorted(
        line for p in (out / "deduplicated").glob("part-*") for line in p.read_text().splitlines()
    )
    code, err = _run(capsys, *argv)
    assert code == 2 and "not empty" in _error_line(err)
    assert _run(capsys, *argv, "--overwrite")[0] == 0
    (tmp_path / "clean" / "mine.txt").write_text("x")
    before = _digest(tmp_path / "clean")
    code, err = _run(capsys, *argv, "--overwrite")
    assert code == 2 and "mine.txt" in _error_line(err)
    assert _digest(tmp_path / "clean") == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith("_sparkdedup_staging")]

    # One command's output is not replaced by another's layout: a fuzzy run over a remove
    # output failed at its commit, after all its work, with an internal error; a remove over a
    # fuzzy output called the fuzzy run's files foreign. Both are refused before any work.
    (tmp_path / "clean" / "mine.txt").unlink()
    before = _digest(tmp_path / "clean")
    fuzzy = ["fuzzy", "--input", str(corpus), *FUZZY, "--overwrite", "--output"]
    code, err = _run(capsys, *fuzzy, str(tmp_path / "clean"))
    line = _error_line(err)
    assert code == 2 and "holds the deduplicated data of an earlier sparkdedup remove" in line
    assert _digest(tmp_path / "clean") == before
    for part in (tmp_path / "clean").glob("part-*"):  # its rows gone, its marker kept
        part.unlink()
    code, err = _run(capsys, *fuzzy, str(tmp_path / "clean"))
    assert code == 2 and "an earlier sparkdedup remove" in _error_line(err)
    before = _digest(out)
    argv[argv.index(str(tmp_path / "clean"))] = str(out)
    shutil.copytree(out / "duplicates", tmp_path / "dups")
    argv[argv.index(str(out / "duplicates"))] = str(tmp_path / "dups")
    code, err = _run(capsys, *argv, "--overwrite")
    line = _error_line(err)
    assert code == 2 and "holds the output of an earlier fuzzy, exact or semantic run" in line
    assert _digest(out) == before


# ------------------------------------------------------------------------------ schema drift
def test_parquet_file_missing_the_text_column_is_refused(spark, tmp_path, capsys):
    d = tmp_path / "pq"
    d.mkdir()
    pq.write_table(pa.Table.from_pylist(_docs(10)), d / "a.parquet")
    rows = [{"id": r["id"], "body": r["text"]} for r in _docs(10, start=10)]
    pq.write_table(pa.Table.from_pylist(rows), d / "b.parquet")
    # A file whose texts are all null but which has the column is fine.
    nulls = pa.table({"id": [99], "text": pa.array([None], pa.string()), "source": ["x"]})
    pq.write_table(nulls, d / "c.parquet")
    before = _digest(d)
    code, lines = _run(
        capsys,
        "fuzzy",
        "--input",
        str(d),
        "--input-format",
        "parquet",
        "--output",
        str(tmp_path / "o"),
    )
    assert code == 2
    line = _error_line(lines)
    assert "column 'text' is missing from some input files" in line and "b.parquet" in line, line
    assert "a.parquet" not in line and "c.parquet" not in line
    assert _digest(d) == before and not (tmp_path / "o" / "duplicates").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith("_sparkdedup_staging")]

    # The check rides on the final write: the same refusal from another workflow, with user
    # ids, and null texts in a file that has the column (a.parquet) do not count.
    scattered = pa.Table.from_pylist(
        [dict(r, text=None if i % 3 == 0 else r["text"]) for i, r in enumerate(_docs(10))]
    )
    pq.write_table(scattered, d / "a.parquet")
    argv = ["exact", "--input", str(d), "--input-format", "parquet", "--id-col", "id"]
    code, lines = _run(capsys, *argv, "--output", str(tmp_path / "o"))
    assert code == 2
    line = _error_line(lines)
    assert "column 'text' is missing from some input files" in line and "b.parquet" in line, line
    assert "a.parquet" not in line and "c.parquet" not in line
    assert not (tmp_path / "o" / "duplicates").exists()
    os.rename(d / "b.parquet", tmp_path / "b.parquet")
    code, lines = _run(capsys, *argv, "--output", str(tmp_path / "o"))
    assert code == 0, lines
    assert json.loads((tmp_path / "o" / "stats.json").read_text())["input_docs"] == 11
    shutil.rmtree(tmp_path / "o")
    os.rename(tmp_path / "b.parquet", d / "b.parquet")
    before = _digest(d)

    # The id column, too.
    os.remove(d / "b.parquet")
    pq.write_table(pa.table({"text": ["a b c d e f"], "source": ["y"]}), d / "d.parquet")
    code, lines = _run(
        capsys,
        "fuzzy",
        "--input",
        str(d),
        "--input-format",
        "parquet",
        "--id-col",
        "id",
        "--output",
        str(tmp_path / "o"),
    )
    assert code == 2
    line = _error_line(lines)
    assert "column 'id' is missing" in line and "d.parquet" in line, line


def test_parquet_files_with_conflicting_types_are_named(spark, tmp_path, capsys):
    d = tmp_path / "pq"
    d.mkdir()
    pq.write_table(pa.Table.from_pylist(_docs(10)), d / "a.parquet")
    rows = [dict(r, id=str(r["id"])) for r in _docs(10, start=10)]
    pq.write_table(pa.Table.from_pylist(rows), d / "b.parquet")
    before = _digest(d)
    code, lines = _run(
        capsys,
        "fuzzy",
        "--input",
        str(d),
        "--input-format",
        "parquet",
        "--output",
        str(tmp_path / "o"),
    )
    assert code == 2
    line = _error_line(lines)
    assert "disagree on the type of column 'id'" in line, line
    assert "a.parquet" in line and "b.parquet" in line, line
    assert _digest(d) == before


def test_a_type_conflict_reads_a_bounded_number_of_footers(spark, tmp_path, capsys, monkeypatch):
    """Naming the files of a type conflict reads footers on the driver, one at a time: at most
    `_CONFLICT_FOOTERS` of them (a million would take hours); past that the error still says
    that the schemas do not merge, with Spark's words."""
    from sparkdedup import io

    monkeypatch.setattr(io, "_CONFLICT_FOOTERS", 1)
    d = tmp_path / "pq"
    d.mkdir()
    pq.write_table(pa.Table.from_pylist(_docs(10)), d / "a.parquet")
    rows = [dict(r, id=str(r["id"])) for r in _docs(10, start=10)]
    pq.write_table(pa.Table.from_pylist(rows), d / "b.parquet")
    argv = ["fuzzy", "--input", str(d), "--input-format", "parquet"]
    code, lines = _run(capsys, *argv, "--output", str(tmp_path / "o"))
    line = _error_line(lines)
    assert code == 2 and "have schemas that cannot be merged (the first 1 data files" in line


def test_parquet_files_with_conflicting_nested_types_are_named(spark, tmp_path, capsys):
    """A list of doubles in one file and of floats in another (embedding columns): the error
    names the column and the files, as for a top-level type."""
    d = tmp_path / "pq"
    d.mkdir()
    for name, kind, start in (("a", pa.float64(), 0), ("b", pa.float32(), 10)):
        table = pa.Table.from_pylist(_docs(10, start=start))
        emb = pa.array([[1.0, 0.5]] * 10, pa.list_(kind))
        pq.write_table(table.append_column("emb", emb), d / f"{name}.parquet")
    code, lines = _run(
        capsys, "fuzzy", "--input", str(d), "--input-format", "parquet", "--output",
        str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2
    line = _error_line(lines)
    assert "disagree on the type of column 'emb'" in line, line
    assert "double element" in line and "float element" in line, line
    assert "a.parquet" in line and "b.parquet" in line, line


def test_parquet_schema_merge_keeps_every_files_columns(spark, tmp_path, capsys):
    d = tmp_path / "pq"
    d.mkdir()
    pq.write_table(pa.Table.from_pylist(_docs(10)), d / "a.parquet")
    extra = [dict(r, url=f"u{r['id']}") for r in _docs(10, start=10)]
    pq.write_table(pa.Table.from_pylist(extra), d / "b.parquet")
    out = tmp_path / "o"
    argv = ["fuzzy", "--input", str(d), "--input-format", "parquet", "--id-col", "id"]
    code, _ = _run(capsys, *argv, "--char-ngrams", "5", "--output", str(out))
    assert code == 0
    kept = pq.read_table(out / "deduplicated").to_pylist()
    assert {r["url"] for r in kept if r["id"] >= 10} == {f"u{i}" for i in range(10, 20, 2)}


# ------------------------------------------------------------------------------ JSONL input
def test_empty_input_file_gives_an_empty_result(spark, tmp_path, capsys):
    d = tmp_path / "e"
    d.mkdir()
    (d / "empty.jsonl").write_text("")
    code, lines = _run(
        capsys,
        "fuzzy",
        "--input",
        str(d),
        "--input-format",
        "jsonl",
        "--output",
        str(tmp_path / "o"),
    )
    assert code == 0, lines[-5:]
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert stats["input_docs"] == 0 and stats["removed_docs"] == 0
    # Semantic, from an embedding field no record shows: an empty corpus of embeddings.
    code, lines = _run(
        capsys, "semantic", "--input", str(d), "--input-format", "jsonl", "--embedding-col",
        "emb", "--id-col", "id", "--n-clusters", "2", "--output", str(tmp_path / "s"),
    )  # fmt: skip
    assert code == 0, lines[-5:]
    stats = json.loads((tmp_path / "s" / "stats.json").read_text())
    assert stats["input_docs"] == 0 and stats["removed_docs"] == 0


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        (b"{not json\n", "not a JSON object"),
        (b'{"id": 999, "text": "bad \xff\xfe bytes"}\n', "invalid UTF-8"),
        (b'{"id": "abc", "text": "an id of another type"}\n', "field 'id' is not of the type"),
        (b'{"id": 1.5, "text": "a fractional id"}\n', "records (bigint)"),
        (b'{"text": "no id"}\n', "'id' is missing"),
        (b"[1, 2, 3]\n", "not a JSON object"),
        (b'{"id": 999, "text": {"body": "a nested object"}}\n', "'text' is a JSON number"),
        (b'{"id": 999, "text": ["a", "list"]}\n', "boolean, object or array, not a string"),
        (b'{"id": 999, "text": -12.5}\n', "'text' is a JSON number"),
        (b'{"id": 999, "text": true}\n', "'text' is a JSON number"),
    ],
)
def test_bad_jsonl_record_names_file_and_line(
    spark, tmp_path, capsys, monkeypatch, bad_line, reason
):
    from sparkdedup import io

    # Field types come from the leading records (3 here): a later id of another type is bad.
    monkeypatch.setattr(io, "JSON_SAMPLE_RECORDS", 3)
    d = tmp_path / "c"
    good = _jsonl(d / "a.jsonl", _docs(6))
    with open(d / "b.jsonl", "wb") as f:
        f.write(b"".join(json.dumps(r).encode() + b"\n" for r in _docs(4, start=6)))
        f.write(b"\n")  # a blank line is not a record, but it counts as a line
        f.write(bad_line)
    before = _digest(d)
    code, lines = _run(capsys, "fuzzy", "--input", str(d), *FUZZY, "--output", str(tmp_path / "o"))
    assert code == 2
    line = _error_line(lines)
    assert "b.jsonl, line 6" in line and reason in line, line
    assert str(good) not in line
    assert _digest(d) == before and not (tmp_path / "o" / "duplicates").exists()


# Lines Spark's JSON parser alone would misread, and how each is classified (None: a good
# record). The parser reads a line's first value and ignores what follows (a second record
# there was lost with no count), writes an unpaired surrogate escape as "?" (so that different
# texts became equal), reads the strings "NaN" and "-Infinity" as numbers where it parses a
# double, and reads any JSON value as its text where it parses a string (a string id column).
MISREAD_LINES = [
    (b'{"id": "a", "text": "first"}{"id": "b", "text": "second"}', "text after the JSON object"),
    (b'{"id": "c", "text": "x"} trailing', "text after the JSON object"),
    (b'{"id": "d", "text": "x"},', "text after the JSON object"),
    (b'{"id": "e", "text": "x"} // a comment', "text after the JSON object"),
    (b'{"id": "f", "text": "x"}] {"id": "f2", "text": "y"}', "text after the JSON object"),
    (b'{"id": "g", "text": "x"}} {"id": "g2", "text": "y"}', "text after the JSON object"),
    (b'{"id": "h", "text": "x"}, {"id": "i", "text": "y"}', "text after the JSON object"),
    (b'{"id": "j", "text": "brackets ]} {[ in a string"}  \t', None),
    (b'{"id": "k", "text": "price \\ud800 dollars"}', "unpaired UTF-16 surrogate escape"),
    (b'{"id": "l", "text": "price \\udfff dollars?"}', "unpaired UTF-16 surrogate escape"),
    (b'{"id": "m", "text": "a pair \\ud83d\\ude00 is one character?"}', None),
    (b'{"id": "n", "text": "an escaped backslash \\\\ud800 is not an escape?"}', None),
    (b'{"id": "o", "text": "-Infinity"}', None),
    (b'{"id": "p", "text": "-INF"}', None),
    (b'{"id": "q", "text": "NaN"}', None),
    (b'{"id": "r", "text": NaN}', "field 'text' is a JSON number"),
    (b'{"id": "s", "text": -Infinity}', "field 'text' is a JSON number"),
    (b'\xef\xbb\xbf{"id": "t", "text": "after a byte-order mark (files joined with cat)"}', None),
    (b'{"id": true, "text": "a boolean id"}', "field 'id' is a JSON boolean"),
    (b'{"id": {"k": 1}, "text": "an object id"}', "field 'id' is a JSON boolean"),
    (b'{"id": [1, 2], "text": "an array id"}', "field 'id' is a JSON boolean"),
    (b'{"id": 1.5, "text": "a fractional id"}', "a number that is not an integer"),
    (b'{"id": 7, "text": "an integer id among strings is its text"}', None),
    (b'{"id": 99999999999999999999, "text": "of any size"}', None),
    (b'{"id": "u", "text": "why?", "url": "http://x/caf\\udce9.html"}', None),
    (b'{"id": "v", "text": "why?", "caf\\udce9": 1}', None),
    (b'{"id": "w\\ud800", "text": "an id"}', "field 'id' holds an unpaired UTF-16"),
    (b'{"id": "x", "text": "a \\ud83d\\\\\\ude00 split by a backslash?"}', "unpaired"),
]


def test_jsonl_lines_the_json_parser_would_misread_are_bad_records(spark, tmp_path):
    from sparkdedup import io

    path = tmp_path / "c" / "a.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"id": "first", "text": "a good first record"}\n')
    with open(path, "ab") as f:
        f.write(b"".join(line + b"\n" for line, _ in MISREAD_LINES))
    df = io.read_input(spark, str(path), "jsonl", text_col="text", id_col="id")
    assert df.schema["id"].dataType.simpleString() == "string"
    got = {r[io.RECORD_COL]: r[io.BAD_COL] for r in df.collect()}
    assert (
        len(got) == len(MISREAD_LINES) + 1
        and got.pop('{"id": "first", "text": "a good first record"}') is None
    )
    for line, reason in MISREAD_LINES:
        bad = got[line.decode()]
        assert bad is None if reason is None else reason in (bad or ""), (line, bad)
    # The lines kept are read as written: a surrogate pair is one character, an escaped
    # backslash a backslash, the byte-order mark is not part of the record's fields.
    texts = {r["id"]: r["text"] for r in df.where(F.col(io.BAD_COL).isNull()).collect()}
    assert texts["m"] == "a pair \U0001f600 is one character?"
    assert texts["n"] == "an escaped backslash \\ud800 is not an escape?"
    assert texts["o"] == "-Infinity" and texts["q"] == "NaN" and texts["7"].startswith("an int")
    assert texts["99999999999999999999"] == "of any size" and texts["u"] == texts["v"] == "why?"
    assert texts["t"].startswith("after a byte-order mark")


def test_a_bad_line_is_numbered_with_the_line_separator_it_was_read_with(spark, tmp_path, capsys):
    """With --read-option lineSep=\\n a raw carriage return is JSON whitespace inside a record
    (Spark's default line reader ends a line there too); the bad line's number counts the
    lines as they were read."""
    d = tmp_path / "c"
    d.mkdir()
    (d / "a.jsonl").write_bytes(
        b'{"id": 1, "text": "one text"}\r\n{"id": 2,\r"text": "a raw CR inside"}\r\n'
        b'{"id": 3, "text": "three"}\n{not json\n{"id": 5, "text": "five"}\n'
    )
    argv = ["exact", "--input", str(d), "--input-format", "jsonl", "--id-col", "id"]
    code, lines = _run(
        capsys, *argv, "--read-option", "lineSep=\n", "--output", str(tmp_path / "o")
    )
    assert code == 2 and "a.jsonl, line 4: not a JSON object" in _error_line(lines), lines[-3:]


def test_jsonl_fractional_ids_are_refused_and_a_drifting_field_is_named(spark, tmp_path, capsys):
    """Ids that are numbers but not integers in the leading records are refused (they were
    read as strings and ordered as text), as a double id column is in Parquet; a field whose
    type drifts after the leading records makes a bad record that names it."""
    from sparkdedup import io

    _jsonl(tmp_path / "f" / "a.jsonl", [{"id": i + 0.5, "text": f"doc {i}"} for i in range(4)])
    code, lines = _run(
        capsys, "fuzzy", "--input", str(tmp_path / "f"), *FUZZY, "--output", str(tmp_path / "o")
    )
    assert code == 2 and "holds numbers that are not integers" in _error_line(lines), lines[-3:]

    io.JSON_SAMPLE_RECORDS, saved = 3, io.JSON_SAMPLE_RECORDS
    try:
        rows = [dict(r, quality=i) for i, r in enumerate(_docs(6))]
        rows[5]["quality"] = 0.5
        _jsonl(tmp_path / "q" / "a.jsonl", rows)
        code, lines = _run(
            capsys,
            "fuzzy",
            "--input",
            str(tmp_path / "q"),
            *FUZZY,
            "--priority-col",
            "quality",
            "--output",
            str(tmp_path / "o2"),
        )
    finally:
        io.JSON_SAMPLE_RECORDS = saved
    line = _error_line(lines)
    assert code == 2 and "line 6: field 'quality' is not of the type" in line, line
    assert "first 3 records (bigint)" in line, line


@pytest.mark.parametrize("top", [2**64, 2**130], ids=["decimal", "past-38-digits"])
def test_jsonl_integer_ids_beyond_64_bits_are_read_as_their_text(spark, tmp_path, capsys, top):
    """Integer ids too large for a bigint (unsigned 64-bit hashes, which Spark infers as
    decimal(20,0); 128-bit ones, past 38 digits, which it infers as double) are integers:
    read as their text (string ids), not refused as fractional numbers."""
    _jsonl(tmp_path / "c" / "a.jsonl", [dict(r, id=top - 1 - r["id"]) for r in _docs(8)])
    out = tmp_path / "o"
    code, lines = _run(
        capsys, "fuzzy", "--input", str(tmp_path / "c"), *FUZZY, "--output", str(out)
    )
    assert code == 0, lines[-3:]
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["input_docs"], stats["kept_docs"]) == (8, 4)
    # Of each pair the smaller id as text is kept: the odd row's.
    removed = pq.read_table(out / "duplicates").column("id").to_pylist()
    assert sorted(removed) == sorted(str(top - 1 - i) for i in (0, 2, 4, 6))
    kept = [json.loads(x)["id"] for p in (out / "deduplicated").glob("part-*") for x in p.open()]
    assert sorted(kept) == sorted(top - 1 - i for i in (1, 3, 5, 7))


def test_jsonl_texts_that_look_like_json_values_are_texts(spark, tmp_path, capsys):
    """A text field holding a JSON string that reads like a number, boolean, object or array
    is a text like any other (only a value of that kind is a bad record), and a copy of it is
    removed as usual."""
    d = tmp_path / "c"
    looks = ['{"a": 1} braces', "[1, 2] brackets", "-12.5 degrees", "true", "2026 was a year"]
    rows = [{"id": i, "text": t} for i, t in enumerate(looks)] + [{"id": 9, "text": "true"}]
    _jsonl(d / "a.jsonl", rows + _docs(4, start=10))
    out = tmp_path / "o"
    code, lines = _run(capsys, "fuzzy", "--input", str(d), *FUZZY, "--output", str(out))
    assert code == 0, lines[-5:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["input_docs"] == 10 and stats["bad_records"]["rows"] == 0
    removed = {r["id"] for r in spark.read.parquet(str(out / "duplicates")).collect()}
    assert removed == {9, 11, 13}


def test_jsonl_document_over_the_json_parsers_default_limit(spark, tmp_path, capsys):
    big = "lorem ipsum dolor " * (25 * 1024 * 1024 // 18)  # 25 MB: Jackson's default is 20 M
    d = tmp_path / "c"
    _jsonl(d / "a.jsonl", [{"id": 1, "text": big}, *_docs(4, start=2)])
    out = tmp_path / "o"
    code, lines = _run(capsys, "fuzzy", "--input", str(d), *FUZZY, "--output", str(out))
    assert code == 0, lines[-5:]
    kept = [
        line
        for p in sorted((out / "deduplicated").glob("part-*"))
        for line in p.read_bytes().splitlines()
    ]
    assert json.dumps({"id": 1, "text": big}).encode() in kept


def test_jsonl_output_is_the_input_lines_byte_for_byte(spark, tmp_path, capsys):
    d = tmp_path / "c"
    d.mkdir()
    # Odd spacing, key order, unicode escapes and a field missing from some records: all kept.
    lines = [
        '{"text": "alpha beta gamma delta", "id": 1,   "meta": {"b": 2, "a": 1}}',
        '{"id": 2, "text": "alpha beta gamma delta"}',
        '{"id":3,"text":"caf\\u00e9 au lait est bon","extra":null}',
    ]
    (d / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "o"
    code, _ = _run(capsys, "fuzzy", "--input", str(d), *FUZZY, "--output", str(out))
    assert code == 0
    kept = sorted(
        line for p in (out / "deduplicated").glob("part-*") for line in p.read_text().splitlines()
    )
    assert kept == sorted([lines[0], lines[2]])


def test_jsonl_reader_options_choose_the_files_and_others_are_refused(spark, tmp_path, capsys):
    """JSONL takes the reader options of Spark's line reader (a directory's subdirectories
    read with recursiveFileLookup, files chosen by pathGlobFilter) and refuses the others,
    which it could not honour (its records are parsed by sparkdedup)."""
    d = tmp_path / "c"
    (d / "sub").mkdir(parents=True)
    _jsonl(d / "a.jsonl", _docs(4))
    _jsonl(d / "sub" / "b.jsonl", _docs(3, start=10))
    _jsonl(d / "c.txt", _docs(2, start=20))
    # Without recursiveFileLookup, sub/'s rows would be left out: refused (the listing's).
    code, lines = _run(capsys, "fuzzy", "--input", str(d), *FUZZY, "--output", str(tmp_path / "p"))
    assert code == 2 and "sub/b.jsonl is in a subdirectory" in _error_line(lines)
    runs = {
        "recursive": ["--read-option", "recursiveFileLookup=true"],
        "glob": [
            "--read-option",
            "recursiveFileLookup=true",
            "--read-option",
            "pathGlobFilter=*.jsonl",
        ],
    }
    for name, options in runs.items():
        out = tmp_path / name
        code, _ = _run(capsys, "fuzzy", "--input", str(d), *FUZZY, *options, "--output", str(out))
        assert code == 0
        runs[name] = json.loads((out / "stats.json").read_text())["input_docs"]
    assert runs == {"recursive": 9, "glob": 7}
    argv = ["fuzzy", "--input", str(d / "a.jsonl"), *FUZZY, "--read-option", "allowComments=true"]
    code, lines = _run(capsys, *argv, "--output", str(tmp_path / "x"))
    assert code == 2 and "'allowComments' do not apply to JSONL input" in _error_line(lines)
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------ failures
def test_internal_error_is_one_line_with_exit_1(
    spark, corpus, tmp_path, capsys, monkeypatch, caplog
):
    from sparkdedup.fuzzy import workflow

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(workflow, "run_fuzzy", broken)
    argv = ["fuzzy", "--input", str(corpus), *FUZZY, "--output", str(tmp_path / "o")]
    caplog.set_level("DEBUG", logger="sparkdedup")
    code, lines = _run(capsys, *argv)
    assert code == 1
    line = _error_line(lines)
    assert line.startswith("sparkdedup: internal error: RuntimeError: something inside broke")
    assert "--log-level DEBUG" in line
    assert not (tmp_path / "o" / "duplicates").exists()
    # The traceback goes to the log at DEBUG only.
    assert not [r for r in caplog.records if r.exc_info]
    caplog.clear()
    code, lines = _run(capsys, *argv, "--log-level", "DEBUG")
    assert code == 1 and [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(
    "content",
    [
        b"PAR1 this is not parquet",
        # Spark's innermost message names no file here ("the footer index is not within the
        # file"): the file is then named from the failure's parameters.
        b"PAR1garbagegarbagePAR1",
    ],
)
def test_unreadable_parquet_names_the_path(spark, tmp_path, capsys, content):
    d = tmp_path / "pq"
    d.mkdir()
    pq.write_table(pa.Table.from_pylist(_docs(4)), d / "a.parquet")
    (d / "b.parquet").write_bytes(content)
    before = _digest(d)
    code, lines = _run(
        capsys,
        "fuzzy",
        "--input",
        str(d),
        "--input-format",
        "parquet",
        "--output",
        str(tmp_path / "o"),
    )
    assert code == 2
    line = _error_line(lines)
    assert "cannot be read as parquet" in line and str(d) in line, line
    assert f"{d / 'b.parquet'}" in line, line
    assert _digest(d) == before


ENV = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)


@pytest.mark.slow
def test_cli_stops_its_session_cleanly_on_a_cluster(tmp_path, cluster_conf):
    """On local-cluster, a successful run and a failing one end without Spark's stack traces:
    the CLI stops the session it started."""
    corpus = tmp_path / "c"
    _jsonl(corpus / "a.jsonl", _docs(30))
    common = ["--master", "local-cluster[2,1,1024]", "--spark-conf", "spark.ui.enabled=false"]
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparkdedup.cli",
            "fuzzy",
            "--input",
            str(corpus),
            *FUZZY,
            "--output",
            str(tmp_path / "o"),
            *common,
            *cluster_conf,
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "ERROR" not in ok.stderr and "Exception" not in ok.stderr, ok.stderr[-3000:]
    assert ok.stdout.startswith("sparkdedup fuzzy: "), ok.stdout
    # A failing run (local[2] is enough: the session is stopped the same way) ends with one
    # error line and no Spark trace either.
    with open(corpus / "a.jsonl", "a", encoding="utf-8") as f:
        f.write("{oops\n")
    common[1] = "local[2]"
    bad = subprocess.run(
        [sys.executable, "-m", "sparkdedup.cli", "fuzzy", "--input", str(corpus), *FUZZY,
         "--output", str(tmp_path / "o2"), *common],
        capture_output=True, text=True, env=ENV, timeout=600, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    err = bad.stderr.strip().splitlines()
    assert err[-1].startswith("sparkdedup: error: bad input record in ") and "line 31" in err[-1]
    assert not [line for line in err if "ERROR" in line or line.startswith("\tat ")], err[-30:]


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
def test_paths_are_read_as_named_whatever_their_characters(spark, tmp_path, capsys):
    """Directories named as users name them: an input below a crawl snapshot's time (a colon,
    which Hadoop's glob cannot take in a component), an output, its cache and an index whose
    names hold glob characters, beside siblings that those would match as globs. Each run
    reads its own stages and index, never a sibling's, and a rerun resumes from its own
    cache."""
    snap = tmp_path / "2024-01-01T00:00:00" / "in"
    _jsonl(snap / "a.jsonl", _docs(20))
    other = tmp_path / "other"
    _jsonl(other / "a.jsonl", _docs(20, start=100))
    outs = tmp_path / "outs"
    for sibling in ("run1", "stXar"):
        code, lines = _run(capsys, "fuzzy", "--input", str(other), *FUZZY, "--output",
                           str(outs / sibling / "out"), "--index-out", str(outs / sibling / "ix"))  # fmt: skip
        assert code == 0, lines[-5:]
    before = _digest(outs)
    for month, name in enumerate(("run[1]", "st*ar")):
        argv = ["fuzzy", "--input", str(snap), *FUZZY, "--output", str(outs / name / "out")]
        argv += ["--index-out", str(outs / name / "ix")]
        code, lines = _run(capsys, *argv)
        assert code == 0, lines[-5:]
        stats = json.loads((outs / name / "out" / "stats.json").read_text())
        assert (stats["input_docs"], stats["removed_docs"], stats["kept_docs"]) == (20, 10, 10)
        # Another month against that index: copies of indexed texts, all removed; ids that
        # the sibling's index holds (100, 102), which reading it would refuse.
        new = tmp_path / f"new-{month}"
        _jsonl(new / "a.jsonl", [{**d, "id": d["id"] + 100} for d in _docs(4)])
        code, lines = _run(capsys, "fuzzy", "--input", str(new), *FUZZY, "--output",
                           str(outs / name / "next"), "--against", str(outs / name / "ix"))  # fmt: skip
        assert code == 0, lines[-5:]
        stats = json.loads((outs / name / "next" / "stats.json").read_text())
        assert (stats["input_docs"], stats["removed_docs"]) == (4, 4), stats
        code, lines = _run(capsys, *argv, "--overwrite")
        assert code == 0, lines[-5:]
        stats = json.loads((outs / name / "out" / "stats.json").read_text())
        assert stats["resumed_stages"] == ["minhash", "edges", "components", "duplicates"], stats
        assert (stats["input_docs"], stats["removed_docs"]) == (20, 10)
    assert {
        k: v for k, v in _digest(outs).items() if "/run[1]/" not in k and "/st*ar/" not in k
    } == before


@pytest.mark.slow
def test_a_local_path_the_driver_jvm_cannot_spell_is_refused(tmp_path):
    """Under LC_ALL=C the driver's JVM names local files in ASCII and would write an output
    path's other characters as '?' (in a directory the user never named), while Python writes
    them as they are: the path is refused before anything is written, naming it and the
    locale."""
    corpus = tmp_path / "c"
    _jsonl(corpus / "a.jsonl", _docs(10))
    out = tmp_path / "é中" / "out"
    env = {**ENV, "LC_ALL": "C", "LANG": "C"}
    run = subprocess.run(
        [sys.executable, "-m", "sparkdedup", "fuzzy", "--input", str(corpus), *FUZZY,
         "--output", str(out), "--master", "local[1]", "--spark-conf", "spark.ui.enabled=false"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-3000:]
    line = _error_line(run.stderr.strip().splitlines())
    assert f"path {str(out)!r}" in line and "LC_ALL=C.UTF-8" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"], list(tmp_path.iterdir())


# ------------------------------------------------------------------------------ bad records
def _bad_corpus(d: Path) -> int:
    """A JSONL corpus of 20 good records and 4 bad ones (plus a blank line); returns the
    number of good records."""
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "a.jsonl", "wb") as f:
        f.write(b"".join(json.dumps(r).encode() + b"\n" for r in _docs(20)))
        f.write(b"\n{not json\n")
        f.write(b'{"id": 901, "text": "bad \xff bytes"}\n')
        f.write(b'{"text": "no id here"}\n')
        f.write(b'{"id": 902, "text": 12345}\n')  # a text that is not a string
    return 20


@pytest.mark.parametrize("mode", ["skip", "quarantine"])
def test_bad_records_skipped_or_quarantined_and_counted(spark, tmp_path, capsys, mode):
    d = tmp_path / "c"
    good = _bad_corpus(d)
    before = _digest(d)
    out = tmp_path / "o"
    code, lines = _run(
        capsys, "fuzzy", "--input", str(d), *FUZZY, "--output", str(out), "--bad-records", mode
    )
    assert code == 0, lines[-5:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["bad_records"] == {"mode": mode, "rows": 4}
    assert stats["input_docs"] == good and stats["kept_docs"] + stats["removed_docs"] == good

    def lines(directory):
        return sorted(line for p in directory.glob("part-*") for line in p.read_text().splitlines())

    kept = lines(out / "deduplicated")
    assert len(kept) == stats["kept_docs"]
    quarantine = out / "quarantine"
    if mode == "skip":
        assert not quarantine.exists()
        # `remove` parses the fields the run parsed (the text too): it skips the same records
        # and keeps the lines the run kept.
        argv = ["remove", "--input", str(d), *FUZZY[:4], "--duplicates", str(out / "duplicates")]
        code, err = _run(capsys, *argv, "--output", str(tmp_path / "r"), "--bad-records", mode)
        assert code == 0, err[-5:]
        assert lines(tmp_path / "r") == kept
    else:
        rows = [
            json.loads(x) for p in quarantine.glob("part-*") for x in p.read_text().splitlines()
        ]
        assert sorted(r["reason"] for r in rows) == sorted(
            [
                "not a JSON object",
                "invalid UTF-8",
                "field 'id' is missing or null",
                "field 'text' is a JSON number, boolean, object or array, not a string",
            ]
        )
        assert {r["file"].rsplit("/", 1)[-1] for r in rows} == {"a.jsonl"}
        assert any(r["record"] == "{not json" for r in rows)
        # JSON text cannot hold invalid UTF-8: such a line's bytes are in record_base64.
        exact = {r["reason"]: r["record_base64"] for r in rows}
        assert (
            base64.b64decode(exact.pop("invalid UTF-8")) == b'{"id": 901, "text": "bad \xff bytes"}'
        )
        assert set(exact.values()) == {None}
    assert _digest(d) == before


def test_parquet_rows_without_id_are_bad_records(spark, tmp_path, capsys):
    d = tmp_path / "pq"
    d.mkdir()
    rows = _docs(10) + [{"id": None, "text": "orphan text here", "source": "x"}]
    pq.write_table(pa.Table.from_pylist(rows), d / "a.parquet")
    argv = ["fuzzy", "--input", str(d), "--input-format", "parquet", "--id-col", "id"]
    code, lines = _run(capsys, *argv, "--output", str(tmp_path / "o"))
    assert code == 2
    line = _error_line(lines)
    assert "a.parquet, row 11: id column 'id' is null" in line, line
    code, _ = _run(capsys, *argv, "--output", str(tmp_path / "o2"), "--bad-records", "quarantine")
    assert code == 0
    stats = json.loads((tmp_path / "o2" / "stats.json").read_text())
    assert stats["bad_records"]["rows"] == 1 and stats["input_docs"] == 10
    q = pq.read_table(tmp_path / "o2" / "quarantine").to_pylist()
    assert [r["text"] for r in q] == ["orphan text here"]
    assert q[0]["_sparkdedup_reason"] == "id column 'id' is null"


def test_unwritable_output_or_cache_is_one_line(spark, corpus, tmp_path, capsys):
    before = _digest(corpus)
    for extra in (
        ["--output", "/proc/sparkdedup/out"],
        ["--output", str(tmp_path / "o"), "--cache-path", "/proc/sparkdedup"],
    ):
        code, lines = _run(capsys, "fuzzy", "--input", str(corpus), *FUZZY, *extra)
        assert code == 2
        line = _error_line(lines)
        assert "cannot be written" in line and "/proc/sparkdedup" in line, line
    assert _digest(corpus) == before
    assert not (tmp_path / "o" / "duplicates").exists()


@pytest.mark.parametrize("command", ["fuzzy", "semantic", "remove"])
def test_every_command_follows_the_output_rules(spark, corpus, tmp_path, capsys, command):
    """One shared place: each command refuses an --output inside its --input."""
    extra = {
        "fuzzy": FUZZY,
        "semantic": ["--input-format", "jsonl", "--id-col", "id", "--embedding-col", "emb"],
        "remove": [
            "--input-format", "jsonl", "--id-col", "id", "--duplicates", str(tmp_path / "d"),
        ],
    }[command]  # fmt: skip
    before = _digest(corpus)
    code, lines = _run(
        capsys, command, "--input", str(corpus), *extra, "--output", str(corpus / "x")
    )
    assert code == 2 and "is inside --input" in _error_line(lines)
    assert _digest(corpus) == before


def test_one_run_at_a_time_writes_an_output_table(spark, tmp_path, capsys, caplog, monkeypatch):
    """--output-table is held like --output: a lease table renewed while its run runs. Another
    run is refused while the holder renews it and leaves the holder's staging table alone; a
    lease no longer held by its run is taken over, the run that lost it is refused at its
    commit and its abort leaves the new holder's staging table alone."""
    from sparkdedup import outputs
    from sparkdedup.errors import ConfigError
    from sparkdedup.tables import LEASE_PROPERTY, STAGING, OutputTable, TableLease

    monkeypatch.setattr(outputs, "LEASE_RENEW_SECONDS", 0.2)
    monkeypatch.setattr(outputs, "LEASE_STALE_SECONDS", 2.0)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS lease_db LOCATION '{tmp_path / 'warehouse'}'")
    name = "lease_db.dedup"
    docs = tmp_path / "docs"
    docs.mkdir()
    rows = _docs(20)
    pq.write_table(
        pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]}),
        docs / "part-0.parquet",
    )
    argv = ["fuzzy", "--input", str(docs), "--input-format", "parquet", "--id-col", "id"]
    argv += ["--char-ngrams", "5", "--output-table", name]

    def tables() -> set[str]:
        return {r.tableName for r in spark.sql("SHOW TABLES IN lease_db").collect()}

    def record(lease: TableLease) -> dict:
        return json.loads(lease._read())

    try:
        held = OutputTable(spark, name)
        held.prepare()
        first = record(held.lease)
        assert first["run"] == held.lease.token and first["pid"] == os.getpid()
        deadline = time.monotonic() + 10
        while record(held.lease)["renewed"] == first["renewed"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert record(held.lease)["renewed"] > first["renewed"]  # renewed while it runs
        # The holder is writing its staging table.
        spark.range(3).write.saveAsTable(held.staging)
        held._mark(STAGING)
        # A second run of the same table: one line, exit 2, the holder's staging untouched.
        code, lines = _run(capsys, *argv, "--output", str(tmp_path / "o2"))
        assert code == 2
        error = _error_line(lines)
        assert "is being written by another sparkdedup run" in error
        assert f"process {os.getpid()} on " in error and "dedup__sparkdedup_lease" in error
        assert spark.table(held.staging).count() == 3
        assert not (tmp_path / "o2" / "stats.json").exists()
        # The holder stopped without giving the lease back: taken over, its staging dropped.
        lease = held.lease
        lease._stop.set()
        lease._thread.join()
        with outputs._HELD_LOCK:
            outputs._HELD.discard(lease.token)
        with caplog.at_level("WARNING", logger="sparkdedup"):
            taker = OutputTable(spark, name)
            taker.prepare()
        assert "taking over the lease" in caplog.text
        assert "dropping the staging table" in caplog.text
        assert "dedup__sparkdedup_staging" not in tables()
        spark.range(5).write.saveAsTable(taker.staging)  # the new holder's staging
        held.written = True
        with pytest.raises(ConfigError, match="was taken over by another run"):
            held.commit()
        held.abort()  # not its staging any more: left alone
        assert spark.table(taker.staging).count() == 5
        taker.abort()
        assert not {"dedup__sparkdedup_staging", "dedup__sparkdedup_lease"} & tables()
        # A run from start to end gives its lease back.
        code, lines = _run(capsys, *argv, "--output", str(tmp_path / "o3"))
        assert code == 0, lines[-10:]
        assert tables() == {"dedup"} and spark.table(name).count() > 0
        # A table of the lease's name that is not a lease is named, not taken over.
        spark.sql(f"CREATE TABLE {name}__sparkdedup_lease (x INT) USING parquet")
        code, lines = _run(capsys, *argv, "--output", str(tmp_path / "o4"), "--overwrite")
        assert code == 2
        assert "is not a sparkdedup lease" in _error_line(lines) and LEASE_PROPERTY in lines[-1]
        assert "dedup__sparkdedup_lease" in tables()
    finally:
        spark.sql("DROP DATABASE IF EXISTS lease_db CASCADE")


def test_input_files_spark_would_skip_without_a_word_are_refused(spark, tmp_path, capsys):
    """Spark's readers leave out a file whose name starts with '_' or '.' even when it is named
    outright, and the files beside key=value partition directories: the run refuses both,
    naming the file, instead of leaving their rows out uncounted."""

    def jsonl(path: Path, ids: range) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"id": i, "text": f"doc {i} " * 9}) + "\n" for i in ids))

    def run(source: str, *extra: str) -> tuple[int, str]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        argv = ["exact", "--input", source, "--input-format", "jsonl", "--id-col", "id"]
        code = cli.main([*argv, "--output", str(out), *extra])
        return code, capsys.readouterr().err + (
            (out / "stats.json").read_text() if (out / "stats.json").exists() else ""
        )

    jsonl(tmp_path / "d" / "_shard0.jsonl", range(50))
    jsonl(tmp_path / "d" / ".part.jsonl", range(50, 60))
    for named in ["d/_shard0.jsonl", "d/.part.jsonl", "d/_*.jsonl"]:
        code, text = run(str(tmp_path / named))
        assert code == 2 and "which Spark does not read" in text, (named, text)
    jsonl(tmp_path / "p" / "a.jsonl", range(50))
    jsonl(tmp_path / "p" / "k=1" / "b.jsonl", range(50, 100))
    (tmp_path / "p" / "_SUCCESS").write_text("")
    code, text = run(str(tmp_path / "p"))
    assert code == 2 and "beside key=value partition directories" in text and "a.jsonl" in text
    code, text = run(str(tmp_path / "p"), "--read-option", "recursiveFileLookup=true")
    assert code == 0 and json.loads(text[text.index("{") :])["input_docs"] == 100, text
    # A glob whose hidden matches are among others (Spark's _SUCCESS beside its parts) reads
    # the others; partitions alone, and Spark's own hidden files beside them, read as before.
    jsonl(tmp_path / "r" / "part-0.jsonl", range(7))
    (tmp_path / "r" / "_SUCCESS").write_text("")
    (tmp_path / "r" / ".part-0.jsonl.crc").write_text("")
    code, text = run(str(tmp_path / "r" / "*"))
    assert code == 0 and json.loads(text[text.index("{") :])["input_docs"] == 7, text
    jsonl(tmp_path / "q" / "k=1" / "b.jsonl", range(10))
    jsonl(tmp_path / "q" / "k=2" / "c.jsonl", range(10, 20))
    (tmp_path / "q" / "_SUCCESS").write_text("")
    code, text = run(str(tmp_path / "q"))
    assert code == 0 and json.loads(text[text.index("{") :])["input_docs"] == 20, text


def test_input_files_in_plain_subdirectories_are_refused(spark, tmp_path, capsys):
    """Spark reads only the files directly in an input directory without key=value partitions:
    `--input corpus` over corpus/2024/ and corpus/2025/ read no row and exited 0. The run is
    refused naming a file, and reads them all with recursiveFileLookup, or through a glob."""
    for year, ids in (("2024", range(6)), ("2025", range(6, 12))):
        (tmp_path / "corpus" / year).mkdir(parents=True)
        (tmp_path / "corpus" / year / "a.jsonl").write_text(
            "".join(json.dumps({"id": i, "text": f"doc {i} " * 9}) + "\n" for i in ids)
        )

    def run(source: str, *extra: str) -> tuple[int, str]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        argv = ["exact", "--input", source, "--input-format", "jsonl", "--id-col", "id"]
        code = cli.main([*argv, "--output", str(out), *extra])
        stats = out / "stats.json"
        return code, capsys.readouterr().err + (stats.read_text() if stats.exists() else "")

    code, text = run(str(tmp_path / "corpus"))
    assert code == 2 and "corpus/2024/a.jsonl is in a subdirectory" in text, text
    assert "recursiveFileLookup=true" in text
    for source, extra in (
        (str(tmp_path / "corpus"), ("--read-option", "recursiveFileLookup=true")),
        (str(tmp_path / "corpus" / "*"), ()),
    ):
        code, text = run(source, *extra)
        assert code == 0 and json.loads(text[text.index("{") :])["input_docs"] == 12, text
    # A pathGlobFilter the subdirectories' files do not match leaves nothing unread there.
    (tmp_path / "corpus" / "top.jsonl").write_text(json.dumps({"id": 99, "text": "t"}) + "\n")
    code, text = run(str(tmp_path / "corpus"), "--read-option", "pathGlobFilter=top.*")
    assert code == 0 and json.loads(text[text.index("{") :])["input_docs"] == 1, text
    code, text = run(str(tmp_path / "corpus"), "--read-option", "pathGlobFilter=*.jsonl")
    assert code == 2 and "corpus/2024/a.jsonl is in a subdirectory" in text, text


def test_compressed_files_spark_would_misread_are_refused(spark, tmp_path, capsys, monkeypatch):
    """A text input's compressed files that Spark would misread are refused before any job,
    naming the file: a suffix no codec of Spark's reads (.xz: its bytes would be lines), a
    .lz4 or .snappy file in the lz4 or snappy tools' frame format (it stopped the driver JVM
    for lack of memory) or a plain file so named (read as no rows). Spark's own .lz4 and
    .snappy files (Hadoop's block format) read as before; so does a listing made by a job."""
    import lzma

    from sparkdedup import fs

    lines = "".join(json.dumps({"id": i, "text": f"doc {i} " * 9}) + "\n" for i in range(40))

    def run(source: Path) -> tuple[int, str]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        argv = ["exact", "--input", str(source), "--input-format", "jsonl", "--id-col", "id"]
        code = cli.main([*argv, "--output", str(out)])
        stats = out / "stats.json"
        return code, capsys.readouterr().err + (stats.read_text() if stats.exists() else "")

    cases = {
        "xz/a.jsonl.xz": lzma.compress(lines.encode()),
        "frame/a.jsonl.lz4": bytes.fromhex("04224d18") + bytes(range(60)),
        "framed/a.jsonl.snappy": bytes.fromhex("ff060000734e61507059") + bytes(40),
        "plain/a.jsonl.lz4": lines.encode(),
    }
    for name, data in cases.items():
        (tmp_path / name).parent.mkdir()
        (tmp_path / name).write_bytes(data)
        code, text = run((tmp_path / name).parent)
        assert code == 2 and name.split("/")[1] in text, (name, text)
        assert "no codec" in text or "block format" in text, text
    for codec in ("lz4", "snappy"):
        written = tmp_path / f"spark-{codec}"
        rows = spark.read.json(spark.sparkContext.parallelize(lines.splitlines()))
        rows.coalesce(2).write.option("compression", codec).json(str(written))
        code, text = run(written)
        assert code == 0 and json.loads(text[text.index("{") :])["input_docs"] == 40, text
    monkeypatch.setattr(fs, "SUMMARY_DRIVER_FILES", 1)  # listed by a Spark job
    (tmp_path / "xz" / "b.jsonl").write_text(lines)
    code, text = run(tmp_path / "xz")
    assert code == 2 and "a.jsonl.xz: Spark has no codec for .xz files" in text, text


def test_ignore_corrupt_files_is_a_warning(spark, tmp_path, capsys, caplog):
    """Spark's ignoreCorruptFiles drops what it cannot read of a file without a count: a run
    with it says so (the README's "nothing is left out without being counted" cannot hold)."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"t {i} " * 5}) + "\n" for i in range(5)))
    argv = ["exact", "--input", str(src), "--input-format", "jsonl", "--id-col", "id"]
    with caplog.at_level("WARNING", logger="sparkdedup"):
        code = cli.main(
            [*argv, "--output", str(tmp_path / "o"), "--read-option", "ignoreCorruptFiles=TRUE"]
        )
    assert code == 0, capsys.readouterr().err
    assert "ignoreCorruptFiles is on" in caplog.text
