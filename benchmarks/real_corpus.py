"""A real corpus from this machine's own text files, as a user would assemble one.

Manual pages (every language installed), package documentation (copyright files, changelogs,
READMEs), licences, and the Markdown/reStructuredText/text files of the Python environment, in
path order, until about `max_docs` documents or `max_chars` characters. Each becomes one JSONL
record ``{"id", "path", "text"}``; compressed files are read decompressed, and files that are not
UTF-8 are decoded with replacement. Real corpora repeat themselves (the same licence in many
packages, a man page in several languages), so there is something to find.

    python -m benchmarks.real_corpus --out /tmp/real.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from collections.abc import Iterator

SOURCES = (
    ("/usr/share/man", (".gz",)),
    ("/usr/share/doc", ("copyright", ".gz", "README", ".md", ".txt")),
    ("/usr/share/common-licenses", ("",)),
    (os.path.join(sys.prefix, "lib"), (".md", ".rst", ".txt", "LICENSE", "LICENSE.txt")),
)
_MAX_FILE_BYTES = 65536


def _files() -> Iterator[str]:
    """The sources' files, each source in path order, taken in turn (round robin)."""
    lists = []
    for root, endings in SOURCES:
        found = []
        for dirpath, _, names in os.walk(root):
            for name in names:
                if any(name.endswith(e) or name == e for e in endings):
                    found.append(os.path.join(dirpath, name))
        lists.append(iter(sorted(found)))
    while lists:
        for it in list(lists):
            path = next(it, None)
            if path is None:
                lists.remove(it)
            else:
                yield path


def _read(path: str) -> str | None:
    try:
        if os.path.islink(path) or os.path.getsize(path) > _MAX_FILE_BYTES:
            return None
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            data = fh.read(_MAX_FILE_BYTES + 1)
    except (OSError, EOFError):
        return None
    if len(data) > _MAX_FILE_BYTES:
        return None
    text = data.decode("utf-8", errors="replace")
    return text if text.strip() else None


def build(out: str, *, max_docs: int = 10_000, max_chars: int = 60_000_000) -> dict:
    """Write the corpus to `out` (JSONL); returns documents, characters and sources."""
    docs = chars = 0
    with open(out, "w", encoding="utf-8") as fh:
        for path in _files():
            text = _read(path)
            if text is None:
                continue
            fh.write(json.dumps({"id": docs, "path": path, "text": text}, ensure_ascii=False))
            fh.write("\n")
            docs += 1
            chars += len(text)
            if docs >= max_docs or chars >= max_chars:
                break
    return {"path": out, "docs": docs, "chars": chars, "bytes": os.path.getsize(out)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--max-docs", type=int, default=10_000)
    p.add_argument("--max-chars", type=int, default=60_000_000)
    args = p.parse_args()
    print(json.dumps(build(args.out, max_docs=args.max_docs, max_chars=args.max_chars)))


if __name__ == "__main__":
    main()
