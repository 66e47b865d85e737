"""Output rules shared by every CLI command (DESIGN.md, "Decisions"; SCALE.md, point 7).

1. An output, cache or staging path never is, contains or lies inside an input path (compared
   fully qualified, through symbolic links, globs expanded).
2. An existing non-empty output is refused unless ``--overwrite``; ``--overwrite`` replaces only
   what sparkdedup wrote there, recognised by the marker file it writes beside its outputs
   (``_sparkdedup_output.json``, listing every file of every output). Other files are never
   touched: a foreign file where an output goes, or inside an earlier output, is refused.
3. Outputs are written to a staging directory first and moved into place at the end, so a run
   that fails leaves the previous outputs as they were. A move is a rename: atomic on HDFS and
   local disks, a copy on object stores.
4. One run at a time writes an output: a run holds a lease on it (`OutputLease`) from its
   checks to its commit, so that no other run deletes its staging directory as a leftover,
   writes the same stage cache or moves outputs into place under it.

Two layouts: a workflow writes several entries (``duplicates/``, ``deduplicated/``,
``stats.json``) into an output directory; ``remove`` writes one dataset directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from pyspark.sql import SparkSession

from sparkdedup import __version__, fs, redact
from sparkdedup.errors import ConfigError

log = logging.getLogger("sparkdedup")

MARKER = "_sparkdedup_output.json"
CACHE_MARKER = "_sparkdedup_cache.json"
STAGING_PREFIX = "_sparkdedup_staging-"
_STAGING_MARKER = "_sparkdedup_staging.json"
#: The lease file of a run writing an output: inside it (the workflows' layout) or, for a single
#: dataset (``remove``), beside it as ``_sparkdedup_lease-NAME.json``.
LEASE = "_sparkdedup_lease.json"
#: A live run rewrites its lease this often; one not rewritten for `LEASE_STALE_SECONDS` is
#: taken for the lease of a run that stopped (killed, or its machine lost).
LEASE_RENEW_SECONDS = 20.0
LEASE_STALE_SECONDS = 120.0
_SHOWN = 4  # names listed in a message before "and N more"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _local_real(uri: str) -> str:
    """A qualified path with local paths resolved through symbolic links."""
    if uri.startswith("file:"):
        path = uri[len("file:") :]
        while path.startswith("//"):
            path = path[1:]
        return "file:" + os.path.realpath(path)
    return uri.rstrip("/") or "/"


def _related(a: str, b: str) -> bool:
    """True when `a` is `b`, lies inside it or contains it."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


#: The path options read as Spark reads a path, a glob; sparkdedup reads the others literally.
GLOB_OPTIONS = ("--input",)


def check_separate(
    spark: SparkSession,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    *,
    others_are_outputs: bool = False,
) -> None:
    """Refuse any output path that is, contains or is inside an input path.

    Parameters
    ----------
    inputs : option name -> input path (a file or directory; `GLOB_OPTIONS`' may be globs,
        which are expanded; the others are taken literally, as they are read).
    outputs : option name -> output path (need not exist).
    others_are_outputs : `inputs` are the run's other outputs, not what it reads (the message
        says so).

    Raises
    ------
    ConfigError
        Naming both options and paths.
    """
    resolved_inputs = []
    for option, path in inputs.items():
        matches = []
        if option in GLOB_OPTIONS and not others_are_outputs:
            matches = [_local_real(m) for m in fs.glob_matches(spark, path)]
        resolved_inputs.append((option, path, matches or [fs.qualified(spark, path)]))
    for out_option, out_path in outputs.items():
        target = fs.qualified(spark, out_path)
        for in_option, in_path, matches in resolved_inputs:
            for match in matches:
                if not _related(target, match):
                    continue
                if target == match:
                    how = "is"
                elif target.startswith(match.rstrip("/") + "/"):
                    how = "is inside"
                else:
                    how = "contains"
                raise ConfigError(
                    f"{out_option} {out_path!r} {how} {in_option} {in_path!r}"
                    + (f" (which matches {match})" if match != fs.qualified(spark, in_path) else "")
                    + (
                        f"; both would write there, one over the other's files: choose a "
                        f"{out_option} apart from {in_option}"
                        if others_are_outputs
                        else f"; writing there could overwrite or later re-read the input: "
                        f"choose a {out_option} outside the input"
                    )
                )


def _read_marker(spark: SparkSession, path: str) -> dict | None:
    text = fs.read_text(spark, path)
    if text is None:
        return None
    try:
        marker = json.loads(text)
    except ValueError:
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("entries"), dict) else None


def _ours_staging(spark: SparkSession, entry: fs.Entry) -> bool:
    return (
        entry.is_dir
        and entry.name.startswith(STAGING_PREFIX)
        and fs.exists(spark, f"{entry.path}/{_STAGING_MARKER}")
    )


def prepare_cache(spark: SparkSession, path: str, option: str = "--cache-path") -> None:
    """Use `path` as a stage cache: refuse a non-empty directory sparkdedup did not make (its
    stages would be overwritten), else create it with its marker."""
    entry = fs.status(spark, path)
    if entry is not None and not entry.is_dir:
        raise ConfigError(f"{option} {path!r} is a file; give a directory")
    if entry is not None and fs.list_dir(spark, path):
        if not fs.exists(spark, f"{path.rstrip('/')}/{CACHE_MARKER}"):
            raise ConfigError(
                f"{option} {path!r} is not empty and is not a sparkdedup cache (it has no "
                f"{CACHE_MARKER}); sparkdedup never overwrites files it did not write: choose "
                f"a new or empty {option}"
            )
        return
    with _writable(option, path):
        fs.mkdirs(spark, path)
        fs.write_text(
            spark,
            f"{path.rstrip('/')}/{CACHE_MARKER}",
            json.dumps({"sparkdedup_version": __version__, "kind": "stage cache"}),
        )


@contextmanager
def _writable(option: str, path: str) -> Iterator[None]:
    """A file system refusal to create `path` becomes a one-line ConfigError naming it."""
    from sparkdedup.io import SPARK_ERRORS, first_line

    try:
        yield
    except (*SPARK_ERRORS, OSError) as err:  # through Hadoop, or on the local disk
        raise ConfigError(f"{option} {path!r} cannot be written: {first_line(err)}") from err


#: Tokens of the leases this process holds and renews: a lease naming this process and none of
#: them was left by an earlier run of this process that stopped without giving it back.
_HELD: set[str] = set()
#: Times in a row a lease may be found absent right after its create found it present (another
#: run giving it back between the two, each time) before that is an error, not a race.
_LEASE_VANISHED_TRIES = 20
_HELD_LOCK = threading.Lock()


class OutputLease:
    """One run's hold on an output path, from its checks to its commit.

    The lease is a small file, created only if absent (`fs.create_new`), naming its run (a
    token, the host, the process, when it started) and when it was last renewed; a thread of
    the run rewrites it every `LEASE_RENEW_SECONDS`. A run that finds another run's lease:

    - takes it over at once when its process, on this machine, is gone (or is this process, and
      the run that took it stopped without giving it back), or when it was last renewed over
      `LEASE_STALE_SECONDS` ago, with a warning;
    - else waits for a renewal, up to `LEASE_STALE_SECONDS` after the last one: a renewal means
      its holder is running, and this run is refused (ConfigError naming it); none, that its
      holder stopped (a driver killed on another machine), and the lease is taken over.

    A run whose lease was taken over (it was not renewed for that long) is refused by `check`,
    before anything of it is moved into place.
    """

    def __init__(self, spark: SparkSession, path: str, display: str, option: str) -> None:
        self.spark = spark
        self.path = path
        self.display = display
        self.option = option
        self.token = uuid.uuid4().hex
        self._started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # a renewal and this run's own reads of its lease
        self._lost = False

    def _body(self) -> str:
        return json.dumps(
            {
                "run": self.token,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": self._started,
                "renewed": time.time(),
                "sparkdedup_version": __version__,
            },
            sort_keys=True,
        )

    def _holder(self) -> dict | None:
        """The lease's record; None when there is none. One that cannot be read after a few
        tries (being rewritten at each, or damaged) counts as renewed when its file was last
        written."""
        for attempt in range(5):
            if attempt:
                time.sleep(0.05)
            try:
                text = self._read()
            except ConfigError:
                raise
            except Exception:  # noqa: BLE001 - say, a checksum left by a hand-deleted lease
                log.debug("sparkdedup: reading the lease %s failed", self.path, exc_info=True)
                text = ""
            if text is None:
                return None
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("renewed"), (int, float)):
                return record
        return self._unreadable()

    # Where the lease is kept: a file (these methods) or a catalog table (`tables.TableLease`).
    def _create(self, body: str) -> bool:
        """Create the lease holding `body` unless there is one; whether it was created."""
        with _writable(self.option, self.display):
            return fs.create_new(self.spark, self.path, body)

    def _read(self) -> str | None:
        """The lease's text; None when there is none."""
        return fs.read_text(self.spark, self.path)

    def _replace(self, body: str) -> None:
        fs.replace_text(self.spark, self.path, body)

    def _delete(self) -> None:
        fs.delete(self.spark, self.path)

    def _unreadable(self) -> dict | None:
        """The record of a lease whose text cannot be read: renewed when its file was last
        written; None when it is gone."""
        entry = fs.status(self.spark, self.path)
        return None if entry is None else {"renewed": entry.mtime / 1000}

    def _check_not_foreign(self) -> None:
        """ConfigError when the lease's place holds something that is not a lease."""
        if fs.exists(self.spark, self.path):  # there, and not a file
            raise ConfigError(
                f"{self.option} {self.display!r}: {self.path!r} is not a sparkdedup lease file; "
                "move it away"
            )

    def acquire(self) -> None:
        """Take the lease, waiting as the class says; ConfigError when another run holds it."""
        waited_since = time.monotonic()
        with _HELD_LOCK:  # before the file exists: this process's other runs see it held
            _HELD.add(self.token)
        try:
            self._wait_and_take(waited_since)
        except BaseException:
            with _HELD_LOCK:
                _HELD.discard(self.token)
            raise
        self._thread = threading.Thread(
            target=self._renew, name="sparkdedup-output-lease", daemon=True
        )
        self._thread.start()

    def _wait_and_take(self, waited_since: float) -> None:
        first_seen: float | None = None
        vanished = 0
        while True:
            if self._create(self._body()):
                return
            holder = self._holder()
            if holder is None:  # given back meanwhile
                self._check_not_foreign()
                vanished += 1
                if vanished >= _LEASE_VANISHED_TRIES:  # not a race: the two views differ
                    raise ConfigError(
                        f"{self.option} {self.display!r}: its lease {self.path!r} cannot be "
                        "created, as if it existed, yet is not there when read "
                        f"({_LEASE_VANISHED_TRIES} tries): where it is kept gives two views of "
                        "it; check it by hand"
                    )
                time.sleep(0.02 * vanished)
                continue
            vanished = 0
            age = time.time() - float(holder["renewed"])
            why = _gone(holder)
            if why is None and (
                age >= LEASE_STALE_SECONDS or time.monotonic() - waited_since >= LEASE_STALE_SECONDS
            ):
                why = f"not renewed for {max(age, time.monotonic() - waited_since):.0f} s"
            if why is not None:
                log.warning(
                    "sparkdedup: %s %s: taking over the lease %s, left by a run that stopped (%s)",
                    self.option,
                    self.display,
                    self.path,
                    why,
                )
                if (self._holder() or {}).get("renewed") == holder["renewed"]:
                    self._delete()
                continue
            if first_seen is None:
                first_seen = holder["renewed"]
                log.warning(
                    "sparkdedup: %s %s is held by another run (%s); waiting up to %.0f s to see "
                    "whether that run is still running",
                    self.option,
                    self.display,
                    _who(holder),
                    max(0.0, LEASE_STALE_SECONDS - age),
                )
            elif holder["renewed"] != first_seen:
                raise ConfigError(
                    f"{self.option} {self.display!r} is being written by another sparkdedup run "
                    f"({_who(holder)}, its lease {self.path!r} renewed {max(age, 0):.0f} s ago); "
                    f"one run at a time writes an output: wait for that run to finish, or "
                    f"choose another {self.option}"
                )
            time.sleep(min(LEASE_RENEW_SECONDS / 4, 5.0))

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_RENEW_SECONDS):
            try:
                with self._lock:
                    if (self._holder() or {}).get("run") != self.token:
                        self._lost = True  # taken over: `check` refuses the commit
                        return
                    self._replace(self._body())
            except Exception:  # noqa: BLE001 - a renewal missed; the next one tries again
                log.debug("sparkdedup: renewing the lease %s failed", self.path, exc_info=True)

    def check(self) -> None:
        """ConfigError unless this run still holds its lease."""
        with self._lock:
            holder = self._holder()
            lost = self._lost or (holder or {}).get("run") != self.token
        if lost:
            self._lost = True
            if holder is None:
                raise ConfigError(
                    f"{self.option} {self.display!r}: this run's lease {self.path!r} is gone "
                    "(the output, or the lease in it, was moved or deleted while this run "
                    "ran): nothing of this run was moved into place; run it again"
                )
            raise ConfigError(
                f"{self.option} {self.display!r} was taken over by another run while this one "
                f"ran (this run's lease {self.path!r} went {LEASE_STALE_SECONDS:.0f} s without "
                "being renewed): nothing of this run was moved into place; run it again"
            )

    def release(self) -> None:
        """Stop renewing and give the lease back (when it is still this run's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with _HELD_LOCK:
            held = self.token in _HELD
            _HELD.discard(self.token)
        if held and not self._lost and (self._holder() or {}).get("run") == self.token:
            self._delete()


def _gone(holder: dict) -> str | None:
    """Why the run holding a lease is known to have stopped; None when it may be running."""
    host, pid = holder.get("host"), holder.get("pid")
    if host != socket.gethostname() or not isinstance(pid, int):
        return None
    if pid == os.getpid():
        with _HELD_LOCK:
            held = holder.get("run") in _HELD
        return None if held else "an earlier run of this process that did not give it back"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"its process {pid} on this machine has exited"
    except OSError:  # not ours to signal: it exists
        return None
    return None


def _who(holder: dict) -> str:
    if "host" not in holder:
        return "its lease file cannot be read"
    started = time.time() - float(holder.get("started") or holder["renewed"])
    return f"process {holder.get('pid')} on {holder.get('host')}, started {started:.0f} s ago"


class OutputDir:
    """The outputs of one CLI run, staged and then moved into place.

    Parameters
    ----------
    root : the ``--output`` directory.
    entries : names of what the run writes inside `root` (``duplicates``, ``deduplicated``,
        ``stats.json``), or None for a single dataset written at `root` itself (``remove``).
    overwrite : ``--overwrite``.
    keep : paths relative to `root` of sparkdedup directories that may already sit there
        without counting as earlier output (the stage cache: ``cache`` by default, or a
        ``--cache-path`` inside `root`), when they carry a cache marker.

    Use: `prepare` (checks, creates the staging directory), `path` for each entry, then
    `commit`, or `abort` when the run failed.
    """

    def __init__(
        self,
        spark: SparkSession,
        root: str,
        entries: Sequence[str] | None,
        *,
        overwrite: bool = False,
        keep: Sequence[str] = (),
        option: str = "--output",
    ) -> None:
        self.spark = spark
        self.display = root
        # Qualified (scheme, absolute path, symbolic links resolved) so that the staging
        # directory of a relative --output lands beside it.
        self.root = fs.qualified(spark, root)
        self.entries = list(entries) if entries is not None else None
        self.overwrite = overwrite
        self.keep = tuple(keep)
        self.option = option
        self.staging: str | None = None
        self.lease: OutputLease | None = None
        self._created = False  # whether `prepare` created `root`

    # ------------------------------------------------------------------------ checks
    def prepare(self) -> None:
        """Take the output's lease, apply the output rules, then create the staging
        directory."""
        entry = fs.status(self.spark, self.root)
        if entry is not None and not entry.is_dir:
            raise ConfigError(
                f"{self.option} {self.display!r} is a file; give a directory (sparkdedup writes "
                "a directory there)"
            )
        if self.entries is None:
            parent, name = self._parent_and_name()
            where = f"{parent.rstrip('/')}/{LEASE.replace('.json', f'-{name}.json')}"
        else:
            where = f"{self.root}/{LEASE}"
        self.lease = OutputLease(self.spark, where, self.display, self.option)
        self.lease.acquire()
        try:
            self._created = entry is None and self.entries is not None
            self._prepare(entry is not None)
        except BaseException:
            self.lease.release()
            self.lease = None
            raise

    def _prepare(self, existed: bool) -> None:
        if existed:
            if self.entries is None:
                self._check_dataset()
            else:
                self._check_tree()
        token = uuid.uuid4().hex[:12]
        if self.entries is None:
            parent, name = self._parent_and_name()
            self._clear_stale_dataset_staging(parent, name)
            self.staging = f"{parent}/{STAGING_PREFIX}{token}-{name}"
        else:
            self.staging = f"{self.root}/{STAGING_PREFIX}{token}"
        with _writable(self.option, self.display):
            fs.mkdirs(self.spark, self.staging)
            fs.write_text(
                self.spark,
                f"{self.staging}/{_STAGING_MARKER}",
                json.dumps({"sparkdedup_version": __version__, "target": redact.uri(self.root)}),
            )

    def _clear_stale_dataset_staging(self, parent: str, name: str) -> None:
        """Delete the staging directories beside `root` that runs writing it left when they
        did not finish (a copy of their output each), except one holding an earlier output
        moved aside by a commit that stopped before the new one took its place: that one is
        left, with a warning naming it."""
        for child in fs.list_dir(self.spark, parent) or []:
            if not (child.name.endswith(f"-{name}") and _ours_staging(self.spark, child)):
                continue
            try:
                staged = json.loads(
                    fs.read_text(self.spark, f"{child.path}/{_STAGING_MARKER}") or ""
                )
            except ValueError:
                continue
            if not isinstance(staged, dict) or staged.get("target") != redact.uri(self.root):
                continue
            if fs.exists(self.spark, f"{child.path}/replaced") and not fs.exists(
                self.spark, self.root
            ):
                log.warning(
                    "sparkdedup: %s holds the earlier output of %s, moved aside by a run that "
                    "stopped while replacing it; it is left as it is",
                    child.path,
                    self.display,
                )
                continue
            fs.delete(self.spark, child.path)

    def _parent_and_name(self) -> tuple[str, str]:
        parent, _, name = self.root.rpartition("/")
        if not name:
            raise ConfigError(f"{self.option} {self.display!r} cannot be a file system root")
        return parent or "/", name

    def _check_dataset(self) -> None:
        files = [f for f in fs.list_files(self.spark, self.root) if f != MARKER]
        if not files:
            return
        if not self.overwrite:
            raise ConfigError(
                f"{self.option} {self.display!r} is not empty; choose a new or empty directory, "
                "or pass --overwrite to replace what an earlier sparkdedup run wrote there"
            )
        marker = _read_marker(self.spark, f"{self.root}/{MARKER}")
        tree = sorted(set(marker["entries"]) - {"."}) if marker else []
        if tree:
            raise ConfigError(
                f"{self.option} {self.display!r} holds the output of an earlier fuzzy, exact or "
                f"semantic run ({_names(tree)}): --overwrite replaces it only with another such "
                "run's output; choose another directory, or delete that one first"
            )
        listed = set(marker["entries"].get(".", []) or []) if marker else set()
        foreign = [f for f in files if f not in listed]
        if foreign:
            raise ConfigError(
                f"{self.option} {self.display!r} holds files sparkdedup did not write "
                f"({_names(foreign)}); --overwrite replaces only sparkdedup's own output: move "
                "them or choose another directory"
            )

    def _check_tree(self) -> None:
        assert self.entries is not None
        marker = _read_marker(self.spark, f"{self.root}/{MARKER}")
        ours = marker["entries"] if marker else {}
        children = fs.list_dir(self.spark, self.root)
        if "." in ours:
            # A `remove` output (its marker's "." entry): its rows are the directory's own
            # files, which this layout's commit cannot move aside (they are the directory
            # itself), even when they are gone but for the marker.
            held = sorted(ours.get(".") or []) or [MARKER]
            raise ConfigError(
                f"{self.option} {self.display!r} holds the deduplicated data of an earlier "
                f"sparkdedup remove ({_names(held)}): --overwrite replaces it only with "
                "another remove's output; choose another directory, or delete that one first"
            )
        earlier, foreign = [], []
        for child in children:
            if (
                child.name == MARKER
                or child.name.startswith(LEASE)  # the lease, and a rewrite's temporary file
                or _ours_staging(self.spark, child)
            ):
                continue
            if any(
                kept.split("/")[0] == child.name
                and fs.exists(self.spark, f"{self.root}/{kept}/{CACHE_MARKER}")
                for kept in self.keep
            ):
                continue
            (earlier if child.name in ours else foreign).append(child.name)
        if (earlier or foreign) and not self.overwrite:
            if earlier:
                raise ConfigError(
                    f"{self.option} {self.display!r} already holds the output of an earlier "
                    f"sparkdedup run ({_names(earlier)}); pass --overwrite to replace it "
                    "(nothing else there is touched), or choose another directory"
                )
            raise ConfigError(
                f"{self.option} {self.display!r} is not empty (it holds {_names(foreign)}); choose "
                "a new or empty directory, or pass --overwrite to write beside those files "
                "(sparkdedup never touches files it did not write)"
            )
        clash = [name for name in self.entries if name in foreign]
        if clash:
            raise ConfigError(
                f"{self.option} {self.display!r} holds {_names(clash)}, which sparkdedup did not "
                "write; --overwrite never replaces other files: move them or choose another "
                "directory"
            )
        for child in children:
            if child.name not in earlier or not child.is_dir:
                continue
            listed = set(ours.get(child.name) or [])
            extra = [f for f in fs.list_files(self.spark, child.path) if f not in listed]
            if extra:
                raise ConfigError(
                    f"{self.display.rstrip('/')}/{child.name} holds files sparkdedup did not write "
                    f"({_names(extra)}); --overwrite replaces only sparkdedup's own output: "
                    "move them first"
                )
        for child in children:
            if not _ours_staging(self.spark, child):
                continue
            aside = self._moved_aside(child.path)
            if aside:
                log.warning(
                    "sparkdedup: %s holds the earlier output's %s, moved aside by a run that "
                    "stopped while replacing it; it is left as it is",
                    child.path,
                    _names(aside),
                )
                continue
            fs.delete(self.spark, child.path)  # left by a run that did not finish

    def _moved_aside(self, staging: str) -> list[str]:
        """The entries of an earlier output that a commit stopped midway (`_commit_tree`) left
        moved aside in the directory `staging`: those whose place in the output is empty."""
        replaced = fs.list_dir(self.spark, f"{staging}/_replaced") or []
        return [e.name for e in replaced if not fs.exists(self.spark, f"{self.root}/{e.name}")]

    # ------------------------------------------------------------------------ writing
    def path(self, entry: str | None = None) -> str:
        """Where to write `entry` (None: the dataset of the single-dataset layout)."""
        if self.staging is None:
            raise RuntimeError("OutputDir.prepare() must run before path()")
        if self.entries is None:
            return f"{self.staging}/data"
        if entry not in self.entries:
            raise ValueError(f"{entry!r} is not one of this run's outputs {self.entries}")
        return f"{self.staging}/{entry}"

    def commit(self) -> None:
        """Move the staged outputs into place, replacing only sparkdedup's earlier ones."""
        if self.staging is None or self.lease is None:
            raise RuntimeError("OutputDir.prepare() must run before commit()")
        self.lease.check()
        if self.entries is None:
            self._commit_dataset()
        else:
            self._commit_tree()
        # Committed: from here on nothing is put back, whatever fails.
        staging, self.staging = self.staging, None
        try:
            fs.delete(self.spark, staging)
        except Exception as err:  # noqa: BLE001 - the output is in place; the next run deletes it
            log.warning(
                "sparkdedup: the output is committed, but its staging directory %s could not be "
                "deleted (%s); the next run writing it deletes it",
                staging,
                err,
            )
        self._release()

    def _release(self) -> None:
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def _files(self, path: str) -> list[str] | None:
        entry = fs.status(self.spark, path)
        if entry is None:
            return None
        return fs.list_files(self.spark, path) if entry.is_dir else []

    def _marker_text(self, entries: Mapping[str, list[str] | None]) -> str:
        return json.dumps(
            {"sparkdedup_version": __version__, "entries": dict(entries)}, sort_keys=True
        )

    def _commit_dataset(self) -> None:
        data = f"{self.staging}/data"
        if not fs.exists(self.spark, data):
            fs.mkdirs(self.spark, data)
        files = self._files(data) or []
        fs.write_text(self.spark, f"{data}/{MARKER}", self._marker_text({".": files}))
        if fs.exists(self.spark, self.root):
            fs.rename(self.spark, self.root, f"{self.staging}/replaced")
        try:
            fs.rename(self.spark, data, self.root)
        except BaseException:
            self._put_back()  # the earlier output back in its place
            raise

    def _commit_tree(self) -> None:
        assert self.entries is not None and self.staging is not None
        marker_path = f"{self.root}/{MARKER}"
        marker = _read_marker(self.spark, marker_path)
        previous = (marker or {"entries": {}})["entries"]
        new = {}
        for name in self.entries:
            files = self._files(f"{self.staging}/{name}")
            if files is not None:
                new[name] = files
        # While entries move, the marker lists the old and the new files: whatever a crash
        # leaves behind is recognised as sparkdedup's own by the next run.
        union = {
            name: sorted(set(previous.get(name) or []) | set(new.get(name) or []))
            for name in set(previous) | set(new)
        }
        # Replaced in one step (on the local disk): a run stopped while the marker is written
        # must not leave it empty, which would make these outputs no longer sparkdedup's.
        fs.replace_text(self.spark, marker_path, self._marker_text(union))
        moved_in: list[str] = []
        try:
            for name in sorted(set(previous) | set(new)):
                target = f"{self.root}/{name}"
                if fs.exists(self.spark, target):
                    fs.rename(self.spark, target, f"{self.staging}/_replaced/{name}")
            for name in new:
                fs.rename(self.spark, f"{self.staging}/{name}", f"{self.root}/{name}")
                moved_in.append(name)
            fs.replace_text(self.spark, marker_path, self._marker_text(new))
        except BaseException:
            # A move that failed midway (a permission, a full disk, a copy on an object
            # store): the new entries go back to the staging directory and the earlier ones
            # to their places, so that the failed run leaves the earlier output as it was.
            # Entry by entry: one that cannot go back keeps its earlier one moved aside
            # (`_put_back` says so, and `abort` then keeps the staging directory).
            for name in reversed(moved_in):
                with contextlib.suppress(Exception):
                    fs.rename(self.spark, f"{self.root}/{name}", f"{self.staging}/{name}")
            self._put_back()
            if marker is not None:
                fs.replace_text(self.spark, marker_path, self._marker_text(previous))
            else:
                fs.delete(self.spark, marker_path)
            raise

    def _put_back(self) -> None:
        """Move the entries of the earlier output that a commit moved aside (the whole of it
        in the single-dataset layout) back to their places; OSError, after putting back the
        others, for those whose place is taken (by a new entry that could not be moved back):
        they stay in the staging directory."""
        assert self.staging is not None
        if self.entries is None:
            aside = f"{self.staging}/replaced"
            if fs.exists(self.spark, aside):
                if fs.exists(self.spark, self.root):
                    raise OSError(
                        f"the earlier output, moved aside to {aside}, finds its place taken"
                    )
                fs.rename(self.spark, aside, self.root)
            return
        taken = []
        for entry in fs.list_dir(self.spark, f"{self.staging}/_replaced") or []:
            target = f"{self.root}/{entry.name}"
            if fs.exists(self.spark, target):
                taken.append(entry.name)
            else:
                fs.rename(self.spark, f"{self.staging}/_replaced/{entry.name}", target)
        if taken:
            raise OSError(
                f"the earlier output's {_names(taken)}, moved aside to {self.staging}/_replaced, "
                "find their places taken"
            )

    def abort(self) -> None:
        """Remove the staging directory, give the lease back; earlier outputs stay as they
        were (what a failed commit moved aside is put back first; when that fails too, the
        staging directory is left, and the next run says where they are)."""
        try:
            if self.staging is not None:
                try:
                    self._put_back()
                except Exception as err:  # noqa: BLE001 - keep the run's own error
                    log.warning(
                        "sparkdedup: the earlier output's entries moved aside in %s could not "
                        "be put back (%s); they are left there",
                        self.staging,
                        err,
                    )
                else:
                    fs.delete(self.spark, self.staging)
                self.staging = None
        finally:
            self._release()
        if self._created and not fs.list_dir(self.spark, self.root):
            # The run created the directory (to stage in it) and left nothing there.
            fs.delete(self.spark, self.root)
