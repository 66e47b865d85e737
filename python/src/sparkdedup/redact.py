"""Credentials kept out of what sparkdedup writes down and prints.

Outputs are shared (datasets are published, catalogs are browsed, job logs land in shared
UIs), so a credential given to a run is used for its reads and writes and never written into
its files, a catalog table's options or its messages:

- reader and writer options that are credentials (`is_credential`): their values are redacted
  in the stage cache's key and in messages, and never stored as a table's options;
- a password in a URI's user information (``ftp://user:password@host/...``, as Hadoop's FTP
  and SFTP file systems take it): replaced by ``*****`` in stats.json, the stage cache's key,
  the output's staging marker and every line the CLI prints or logs (`uri`, `Formatter`).
  The claim file of an index's commit keeps its output's URI whole: a later run reads that
  output's stats.json through it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: Spark's default ``spark.redaction.regex``, what Spark redacts in its UI and logs.
SPARK_DEFAULT = "(?i)secret|password|token|access[.]key"
#: Names of credentials Spark's default misses: an Azure account key, a GCS private key,
#: credential files and providers, SAS tokens, signatures.
_MORE = re.compile(r"(?i)account[.]key|private[.]key|credential|sas[.]|signature")
REDACTED = "*********(redacted)"
#: ``scheme://user:password@`` (the password: up to the authority's end).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")


def _spark_rule(spark: Any) -> re.Pattern[str]:
    try:
        pattern = spark.conf.get("spark.redaction.regex", None) or SPARK_DEFAULT
    except Exception:  # noqa: BLE001 - a session that cannot answer: Spark's default
        pattern = SPARK_DEFAULT
    try:
        return re.compile(pattern)
    except re.error:  # a Java pattern Python does not read
        return re.compile(SPARK_DEFAULT)


def is_credential(spark: Any, key: str, value: str) -> bool:
    """Whether the option `key`=`value` is a credential: its name or value matches the
    session's ``spark.redaction.regex`` (as Spark judges its settings) or names one that
    Spark's default misses."""
    rule = _spark_rule(spark)
    return any(r.search(text) for r in (rule, _MORE) for text in (key, value))


def options(spark: Any, given: dict[str, str]) -> dict[str, str]:
    """`given` with the values of credentials replaced by `REDACTED`."""
    return {k: REDACTED if is_credential(spark, k, v) else v for k, v in given.items()}


def uri(text: str) -> str:
    """`text` with the password of every ``scheme://user:password@`` in it replaced."""
    return _USERINFO.sub(r"\1:*****@", text)


class Formatter(logging.Formatter):
    """A log formatter whose lines go through `uri`."""

    def format(self, record: logging.LogRecord) -> str:
        return uri(super().format(record))
