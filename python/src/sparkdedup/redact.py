"""Credentials kept out of what sparkdedup writes down and prints.

Outputs are shared (datasets are published, catalogs are browsed, job logs land in shared
UIs), so a credential given to a run is used for its reads and writes and never written into
its files, a catalog table's options or its messages:

- reader and writer options whose name is a credential's (`is_credential`): in the stage
  cache's key as a SHA-256 digest, in messages as `REDACTED`, and never stored with a table;
- a password in a URI's user information (``ftp://user:password@host/...``, as Hadoop's FTP
  and SFTP file systems take it), a Spark Connect URL's ``;token=`` and a credential in a
  URL's query (an Azure SAS's ``?sig=``, a pre-signed URL's signature): starred (`uri`) in
  stats.json, the stage cache's key, the output's staging marker, the CLI's lines and the log
  records of sparkdedup's loggers while the CLI runs (`LogFilter`). The claim file of an
  index's commit keeps its output's URI whole: a later run reads that output's stats.json
  through it;
- the launchers' ``--dry-run`` line (`words`), the settings a notebook's widgets changed, and
  a KEY=VALUE item refused as malformed (`malformed`); there a credential set inside another
  value (``extraJavaOptions=-Dfs.s3a.secret.key=...``) is starred too (`inside`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

#: Spark's default ``spark.redaction.regex`` (4.x; 3.5's lacks ``credential`` and needs the
#: dot in ``access.key``), what Spark redacts in its UI and logs.
SPARK_DEFAULT = "(?i)secret|password|token|access[.]?key|credential"
#: Names of credentials Spark's default misses: an Azure account key, a GCS private key,
#: SAS tokens, signatures.
_MORE = re.compile(r"(?i)account[.]key|private[.]key|sas[.]|signature")
REDACTED = "*********(redacted)"
#: ``scheme://user:password@`` (RFC 3986 user information; the password may hold ``@``).
_USERINFO = re.compile(
    r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*://[\w.~%!$&'()*+,;=-]*):[\w.~%!$&'()*+,;=:@-]*@"
)
#: A Spark Connect URL's token parameter (``sc://host:15002/;token=...``).
_TOKEN = re.compile(r"(?i)(;\s*token\s*=)[^;/\s]*")
#: A URL (``scheme://...``) up to the next blank or quote; its query's parameters (`_PARAM`).
_URL = re.compile(r"(?i)(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^\s'\"]*")
_PARAM = re.compile(r"([?&;])([^=&#;?\s]+)=([^&#;\s)\]},]*)")
#: Query parameters that carry a credential under a name Spark's rule and `_MORE` miss: an
#: Azure SAS's ``sig``, an API ``key``.
_QUERY_NAMES = re.compile(r"(?i)^(sig|pwd|passwd|key|apikey|api[-_]key)$")
#: A ``NAME=VALUE`` inside a value (``-Dfs.s3a.secret.key=...`` in ``extraJavaOptions``).
_INSIDE = re.compile(r"(?<![^\s'\"])(-D)?([A-Za-z_][\w.-]*)=(\"[^\"]*\"|'[^']*'|[^\s'\"]*)")


def _spark_rule(spark: Any) -> re.Pattern[str]:
    try:
        pattern = spark.conf.get("spark.redaction.regex", None) or SPARK_DEFAULT
    except Exception:  # noqa: BLE001 - a session that cannot answer: Spark's default
        pattern = SPARK_DEFAULT
    try:
        return re.compile(pattern)
    except re.error:  # a Java pattern Python does not read
        return re.compile(SPARK_DEFAULT)


def is_credential(spark: Any, key: str) -> bool:
    """Whether the option named `key` is a credential: its name (before a ``#column`` suffix,
    as Parquet's per-column options have) matches the session's ``spark.redaction.regex`` or
    names one that Spark's default misses. Names only: a value that mentions a token (a glob,
    a schema) is data, not a secret."""
    name = key.split("#", 1)[0]
    return any(rule.search(name) for rule in (_spark_rule(spark), _MORE))


def options(spark: Any, given: dict[str, str], *, digest: bool = False) -> dict[str, str]:
    """`given` with the values of credentials replaced: by `REDACTED`, or with `digest` by
    their SHA-256 (for a key that must change when they do). A credential set inside another
    value (`inside`) is starred there, or with `digest` the whole value is digested."""

    def hidden(value: str) -> str:
        return f"sha256:{hashlib.sha256(value.encode()).hexdigest()}" if digest else REDACTED

    def shown(key: str, value: str) -> str:
        if is_credential(spark, key):
            return hidden(value)
        starred = inside(spark, uri(value))
        return value if starred == value else hidden(value) if digest else starred

    return {k: shown(k, v) for k, v in given.items()}


def inside(spark: Any, value: str) -> str:
    """`value` with every ``NAME=VALUE`` in it (a JVM option ``-DNAME=VALUE`` too) whose name
    is a credential's starred."""

    def star(match: re.Match[str]) -> str:
        flag, name, _ = match.groups()
        return f"{flag or ''}{name}=*****" if is_credential(spark, name) else match.group(0)

    return _INSIDE.sub(star, value)


def uri(text: str) -> str:
    """`text` with the password of every ``scheme://user:password@``, the value of every
    ``;token=`` and of every credential in a URL's query (``?sig=``, ``X-Amz-Signature=``,
    ``access_token=``) in it starred."""
    return _URL.sub(_query, _TOKEN.sub(r"\1*****", _USERINFO.sub(r"\1:*****@", text)))


def _query(url: re.Match[str]) -> str:
    text = url.group(0)
    cut = text.find("?")
    if cut < 0:
        return text

    def star(param: re.Match[str]) -> str:
        sep, name, _ = param.groups()
        secret = _QUERY_NAMES.match(name) or is_credential(None, name)
        return f"{sep}{name}=*****" if secret else param.group(0)

    return text[:cut] + _PARAM.sub(star, text[cut:])


def malformed(item: str) -> str:
    """A KEY=VALUE item that could not be split, as an error shows it: quoted, or not at all
    when it names a credential (where its value starts is unknown)."""
    if is_credential(None, item) or item.lstrip().startswith("="):
        return "an item naming a credential or without a key (not shown)"
    return repr(uri(item))


def words(spark: Any, command: list[str]) -> list[str]:
    """The words of a command line as it may be shown: the value of each ``KEY=VALUE`` word
    whose key is a credential's replaced by `REDACTED`, and URIs starred (`uri`)."""

    def shown(word: str) -> str:
        if word.startswith("--") and "=" in word:  # --conf=KEY=VALUE
            flag, _, rest = word.partition("=")
            return f"{flag}={shown(rest)}"
        key, sep, value = word.partition("=")
        setting = sep and key and "/" not in key  # not a path's "year=2020" part
        if setting and is_credential(spark, key):
            return f"{key}={REDACTED}"
        return f"{key}={inside(spark, uri(value))}" if setting else uri(word)

    return [shown(word) for word in command]


def main(argv: list[str] | None = None) -> int:
    """``python -m sparkdedup.redact WORD...``: the command, shell-quoted and redacted
    (`words`), on one line (the launchers' ``--dry-run``)."""
    import shlex
    import sys

    command = sys.argv[1:] if argv is None else argv
    print(" ".join(shlex.quote(w) for w in words(None, command)))
    return 0


class LogFilter(logging.Filter):
    """Stars URIs (`uri`) in the records of sparkdedup's loggers, their tracebacks included,
    on the handlers it is added to."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "sparkdedup" and not record.name.startswith("sparkdedup."):
            return True
        message = record.getMessage()
        starred = uri(message)
        if starred != message:
            record.msg, record.args = starred, None
        if record.exc_info and not record.exc_text:
            record.exc_text = uri(logging.Formatter().formatException(record.exc_info))
        return True


if __name__ == "__main__":
    raise SystemExit(main())
