"""Options of the driver JVM the CLI starts: the parallel collector and the class-data sharing
archive (written by a first run, used by later ones, never in the way of the user's options).
Spark-free; the CLI end-to-end test checks that a real run maps the archive."""

from __future__ import annotations

import os

import pytest
from sparkdedup import driver_jvm
from sparkdedup.driver_jvm import driver_java_options, java_major, java_release

JDK17 = {"JAVA_VERSION": "17.0.15", "JAVA_RUNTIME_VERSION": "17.0.15+6", "_home": "/jdk"}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARKDEDUP_CACHE_DIR", str(tmp_path / "cache"))
    for name in (
        "PYSPARK_SUBMIT_ARGS",
        "SPARK_CONF_DIR",
        "SPARK_HOME",
        *driver_jvm.OPTION_VARIABLES,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(driver_jvm, "java_release", lambda: dict(JDK17))
    return tmp_path / "cache" / "jvm"


def _archive(options: str, flag: str) -> str:
    (path,) = [o.split("=", 1)[1] for o in options.split() if o.startswith(flag + "=")]
    return path


def test_first_run_writes_the_archive_later_runs_map_it(cache):
    first = driver_java_options({}, now=1000.0)
    dump = _archive(first, "-XX:ArchiveClassesAtExit")
    assert first.split()[0] == "-XX:+UseParallelGC" and first.endswith("-Xlog:cds*=off")
    assert dump.endswith(f".{os.getpid()}.tmp") and os.path.dirname(dump) == str(cache)

    # The first run's JVM writes the dump as it exits.
    with open(dump, "wb") as fh:
        fh.write(b"archive")
    os.utime(dump, (1000.0, 1000.0))
    # Being written (changed in the last 30 s): no second dump, no archive yet.
    assert driver_java_options({}, now=1010.0) == "-XX:+UseParallelGC"
    # Settled: moved into place and mapped.
    later = driver_java_options({}, now=1100.0)
    final = _archive(later, "-XX:SharedArchiveFile")
    assert final == dump.rsplit(".", 2)[0] and final.endswith(".jsa")
    assert os.path.exists(final) and not os.path.exists(dump)
    # A second dump that settles after the archive exists is dropped.
    stray = f"{final}.12345.tmp"
    open(stray, "wb").close()
    os.utime(stray, (1000.0, 1000.0))
    assert _archive(driver_java_options({}, now=1200.0), "-XX:SharedArchiveFile") == final
    assert not os.path.exists(stray)


def test_the_users_options_come_first_and_their_collector_stays(cache):
    own = "-XX:+UseG1GC -Dfoo=1"
    options = driver_java_options({"spark.driver.extraJavaOptions": own}, now=1.0)
    assert options.startswith(own + " ") and "-XX:+UseParallelGC" not in options
    assert "-XX:ArchiveClassesAtExit=" in options


def test_the_archive_can_be_turned_off(cache):
    conf = {"spark.sparkdedup.classDataSharing": "false"}
    assert driver_java_options(conf) == "-XX:+UseParallelGC"
    assert not cache.exists()


def test_archives_are_keyed_and_the_two_most_recent_kept(cache):
    key = driver_jvm._archive_key(JDK17, {})
    assert key != driver_jvm._archive_key(JDK17, {"spark.driver.extraClassPath": "/x.jar"})
    assert key != driver_jvm._archive_key(dict(JDK17, JAVA_RUNTIME_VERSION="17.0.16"), {})
    cache.mkdir(parents=True)
    for i, name in enumerate(("driver-old1.jsa", "driver-old2.jsa", f"driver-{key}.jsa")):
        (cache / name).write_bytes(b"a")
        os.utime(cache / name, (100.0 + i, 100.0 + i))
    driver_java_options({}, now=500.0)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        ["driver-old2.jsa", f"driver-{key}.jsa"]
    )


def test_old_java_and_unknown_java_get_no_archive(cache, monkeypatch):
    for version in ("11.0.2", "1.8.0_392", ""):
        monkeypatch.setattr(driver_jvm, "java_release", lambda v=version: {"JAVA_VERSION": v})
        assert driver_java_options({}) == "-XX:+UseParallelGC"
    assert java_major({"JAVA_VERSION": "1.8.0_392"}) == 8
    assert java_major({"JAVA_VERSION": "21"}) == 21
    assert java_major({}) is None


def test_options_set_elsewhere_are_left_alone(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--driver-java-options -Dx=1 pyspark-shell")
    assert driver_java_options({}) is None
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS")
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf_dir))
    (conf_dir / "spark-defaults.conf").write_text("spark.executor.memory 2g\n")
    assert driver_java_options({}) is not None
    (conf_dir / "spark-defaults.conf").write_text("spark.driver.extraJavaOptions -Dy=2\n")
    assert driver_java_options({}) is None


def test_an_unwritable_cache_costs_only_the_archive(cache, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SPARKDEDUP_CACHE_DIR", str(blocker))
    assert driver_java_options({}) == "-XX:+UseParallelGC"


def test_java_release_is_read_from_java_home(tmp_path, monkeypatch):
    (tmp_path / "release").write_text('JAVA_VERSION="17.0.15"\nIMPLEMENTOR="Debian"\n')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    release = java_release()
    assert release["JAVA_VERSION"] == "17.0.15" and release["_home"] == str(tmp_path)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "missing"))
    assert java_release() == {}


@pytest.mark.parametrize(
    "where", ["SPARK_SUBMIT_OPTS", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "conf"]
)
def test_a_collector_or_archive_chosen_elsewhere_is_not_doubled(cache, monkeypatch, where):
    """A second collector would stop the JVM at start ("Multiple garbage collectors
    selected"): one chosen in the environment or in spark.driver.defaultJavaOptions is kept
    alone, as is the user's class-data sharing."""

    def options(value: str) -> str | None:
        if where == "conf":
            return driver_java_options({"spark.driver.defaultJavaOptions": value}, now=1.0)
        monkeypatch.setenv(where, value)
        return driver_java_options({}, now=1.0)

    chosen = options("-Xmx2g -XX:+UseSerialGC")
    assert "GC" not in chosen and "-XX:ArchiveClassesAtExit=" in chosen
    assert options("-XX:+UseParallelGC -Xshare:off") is None
    assert options("-XX:SharedArchiveFile=/mine.jsa") == "-XX:+UseParallelGC"
    assert options("-Dunrelated=1").startswith("-XX:+UseParallelGC -XX:ArchiveClassesAtExit=")


def test_spark_defaults_with_default_java_options_are_left_alone(cache, monkeypatch, tmp_path):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf_dir))
    (conf_dir / "spark-defaults.conf").write_text("spark.driver.defaultJavaOptions -XX:+UseZGC\n")
    assert driver_java_options({}) is None
