"""Options of the driver JVM the `sparkdedup` command starts itself.

When the CLI launches the driver JVM (not under ``spark-submit``, not with Spark Connect, not in
an existing session) it adds two options to ``spark.driver.extraJavaOptions``, after the user's
own:

- **the parallel garbage collector** (``-XX:+UseParallelGC``), the throughput collector, unless
  the user's options choose a collector. A batch job has no pauses to keep short, and on small
  machines the default collector's concurrent threads take CPU from the work: about 10% off
  the wall of the real-corpus and 1M-document runs of ``benchmarks/scale.py`` (alternated runs,
  2 cores). In local mode this JVM is the executors too; on a cluster only the driver is
  concerned.
- **class-data sharing**: a Spark driver loads some 15,000 classes from about 250 jars before
  its first job, seconds of every short run. The first run writes the classes it loaded to an
  archive as its JVM exits (in the background, about 200 MB, under ``$SPARKDEDUP_CACHE_DIR``,
  else ``$XDG_CACHE_HOME/sparkdedup``, else ``~/.cache/sparkdedup``; the two most recently used
  are kept) and later runs map it at start. The archive is keyed by the Java runtime, the
  pyspark installation and any added driver class path, and the JVM checks it again on every
  start: one that does not match is ignored, never an error. Java 17 or later.

Neither changes what a run computes. Both are left out when spark-defaults.conf or
``PYSPARK_SUBMIT_ARGS`` set driver Java options of their own (the CLI would replace them). The
collector is left out when an option the JVM reads already chooses one (in the driver's extra
or default Java options, ``SPARK_SUBMIT_OPTS``, ``JAVA_TOOL_OPTIONS``, ``JDK_JAVA_OPTIONS`` or
``_JAVA_OPTIONS``: two collectors stop the JVM at start), and the archive when one of them sets
class-data sharing; ``--spark-conf spark.sparkdedup.classDataSharing=false`` turns the archive
off.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import time
from collections.abc import Mapping

#: The setting that turns the archive off (``false``).
CONF_KEY = "spark.sparkdedup.classDataSharing"
CACHE_ENV = "SPARKDEDUP_CACHE_DIR"
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
#: Environment variables whose JVM options the driver JVM reads besides Spark's settings:
#: spark-submit's own, then the Java launcher's. A collector chosen in one of them and a second
#: one added by the CLI would stop the JVM at start ("Multiple garbage collectors selected").
OPTION_VARIABLES = ("SPARK_SUBMIT_OPTS", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")
DEFAULT_OPTIONS = "spark.driver.defaultJavaOptions"
#: A dump left unchanged this long is finished (the JVM writes it in seconds as it exits).
SETTLE_SECONDS = 30.0
#: Archives kept (the most recently used); each is about 200 MB.
KEEP_ARCHIVES = 2
PARALLEL_GC = "-XX:+UseParallelGC"
#: The archive's messages (classes it cannot hold, a mismatch) would land on the CLI's stdout.
_QUIET = "-Xlog:cds*=off"
_MIN_JAVA = 17


def java_release(java_home: str | None = None) -> dict[str, str]:
    """The ``release`` file of the Java runtime Spark will start (``$JAVA_HOME``, else the
    ``java`` on the PATH), as a dict; empty when there is none."""
    home = java_home or os.environ.get("JAVA_HOME")
    if not home:
        java = shutil.which("java")
        if java is None:
            return {}
        home = os.path.dirname(os.path.dirname(os.path.realpath(java)))
    try:
        with open(os.path.join(home, "release"), encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return {}
    found = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, flags=re.MULTILINE))
    found["_home"] = os.path.realpath(home)
    return found


def java_major(release: Mapping[str, str]) -> int | None:
    """17 for ``JAVA_VERSION="17.0.15"``, 8 for ``"1.8.0_392"``; None when unknown."""
    parts = release.get("JAVA_VERSION", "").split(".")
    if not parts or not parts[0].isdigit():
        return None
    major = int(parts[0])
    return int(parts[1]) if major == 1 and len(parts) > 1 and parts[1].isdigit() else major


def cache_dir() -> str:
    """Where sparkdedup keeps files between runs of the CLI (not data: JVM archives)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sparkdedup")


def _defaults_set_java_options() -> bool:
    """Whether a spark-defaults.conf that Spark will read sets driver Java options (a value
    the CLI would replace, or options it cannot see; then it leaves them alone)."""
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if conf_dir is None and os.environ.get("SPARK_HOME"):
        conf_dir = os.path.join(os.environ["SPARK_HOME"], "conf")
    if conf_dir is None:
        return False
    try:
        with open(os.path.join(conf_dir, "spark-defaults.conf"), encoding="utf-8") as fh:
            return any(line.split()[:1] in ([JAVA_OPTIONS], [DEFAULT_OPTIONS]) for line in fh)
    except OSError:
        return False


def _archive_key(release: Mapping[str, str], conf: Mapping[str, str]) -> str:
    import pyspark

    parts = [
        release.get("_home", ""),
        release.get("JAVA_RUNTIME_VERSION", release.get("JAVA_VERSION", "")),
        os.path.realpath(os.path.dirname(pyspark.__file__)),
        getattr(pyspark, "__version__", ""),
        conf.get("spark.driver.extraClassPath", ""),
        conf.get("spark.jars", ""),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _archive_option(conf: Mapping[str, str], now: float) -> str | None:
    """``-XX:SharedArchiveFile=...`` when this run's archive exists, ``-XX:ArchiveClassesAtExit=
    ...`` when it should be written, None when neither (off, old Java, being written)."""
    if conf.get(CONF_KEY, "true").strip().lower() in ("false", "0", "no", "off"):
        return None
    release = java_release()
    major = java_major(release)
    if major is None or major < _MIN_JAVA:
        return None
    directory = os.path.join(cache_dir(), "jvm")
    final = os.path.join(directory, f"driver-{_archive_key(release, conf)}.jsa")
    if any(c.isspace() for c in final):
        return None  # Spark splits the options at whitespace
    try:
        os.makedirs(directory, exist_ok=True)
        writing = False
        for dump in glob.glob(glob.escape(final) + ".*.tmp"):
            if now - os.path.getmtime(dump) < SETTLE_SECONDS:
                writing = True  # another run's JVM is (or was just) writing one
            elif os.path.exists(final):
                os.remove(dump)
            else:
                os.replace(dump, final)
        if os.path.exists(final):
            os.utime(final, (now, now))  # last used: the archives kept are the recent ones
            _forget_old_archives(directory)
            return f"-XX:SharedArchiveFile={final}"
        if writing:
            return None
        return f"-XX:ArchiveClassesAtExit={final}.{os.getpid()}.tmp"
    except OSError:
        return None  # an unwritable cache directory costs the speed-up only


def _forget_old_archives(directory: str) -> None:
    archives = sorted(
        glob.glob(os.path.join(glob.escape(directory), "driver-*.jsa")),
        key=os.path.getmtime,
        reverse=True,
    )
    for old in archives[KEEP_ARCHIVES:]:
        os.remove(old)


_COLLECTOR = re.compile(r"-XX:\+Use\w*GC\b")
_SHARING = re.compile(r"-Xshare:|-XX:(SharedArchiveFile|ArchiveClassesAtExit)=")


def _other_options(conf: Mapping[str, str]) -> str:
    """The JVM options the driver JVM gets from elsewhere than `spark.driver.extraJavaOptions`:
    `spark.driver.defaultJavaOptions` and the environment (`OPTION_VARIABLES`)."""
    return " ".join(
        [conf.get(DEFAULT_OPTIONS, ""), *(os.environ.get(v, "") for v in OPTION_VARIABLES)]
    )


def driver_java_options(conf: Mapping[str, str], *, now: float | None = None) -> str | None:
    """The value `spark.driver.extraJavaOptions` should have for a driver JVM the CLI starts
    with `conf` (the user's own options first), or None to leave it as it is. The collector is
    added only when no option the JVM reads chooses one, and the archive only when none of
    them sets class-data sharing."""
    if os.environ.get("PYSPARK_SUBMIT_ARGS") or _defaults_set_java_options():
        return None
    own = conf.get(JAVA_OPTIONS, "").strip()
    every = f"{own} {_other_options(conf)}"
    added = []
    if not _COLLECTOR.search(every):
        added.append(PARALLEL_GC)
    if not _SHARING.search(every):
        archive = _archive_option(conf, time.time() if now is None else now)
        if archive is not None:
            added += [archive, _QUIET]
    return " ".join([own, *added]).strip() if added else None
