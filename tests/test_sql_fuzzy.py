"""Fuzzy dedup written in Spark SQL only, with the JVM UDFs (sparkdedup_minhash and
sparkdedup_band_buckets) and built-in SQL for everything else.

What it shows: on a planted corpus of 50 documents (unrelated random-word texts, two
near-duplicate pairs, one exact duplicate, one group of three chained near-duplicates, an empty
and a null text), the pipeline signatures -> bands (posexplode) -> buckets (group by band, key)
-> star edges to each bucket's smallest id -> connected components -> ids to remove finds
exactly the planted duplicates, keeps the smallest id of each group, and never pairs the empty
or null documents (their signature is null). Components are computed by two rounds of min-label
propagation over the undirected edges, which is exact for components of diameter <= 2 -- enough
for this tiny example; real corpora need `sparkdedup.connected_components`.
"""

from __future__ import annotations

import random

import pytest
from sparkdedup import jvm

pytestmark = [
    pytest.mark.jvm,
    pytest.mark.skipif(
        jvm.jar_path() is None or jvm.unsupported_reason() is not None,
        reason=jvm.unsupported_reason()
        or "JVM UDF jar not built: run 'make jar' (make test builds it)",
    ),
]

NUM_BANDS, MINHASHES_PER_BAND = 20, 13

SQL_FUZZY_DEDUP = """
WITH signatures AS (
  SELECT id, sparkdedup_minhash(text, 24, {k}, 42, {use64}) AS sig FROM docs
),
bands AS (
  SELECT id, band, bucket
  FROM signatures
  LATERAL VIEW posexplode(sparkdedup_band_buckets(sig, {bands}, {r})) b AS band, bucket
  WHERE sig IS NOT NULL
),
buckets AS (
  SELECT min(id) AS anchor, collect_set(id) AS ids
  FROM bands GROUP BY band, bucket HAVING count(*) > 1
),
edges AS (
  SELECT DISTINCT anchor AS src, member AS dst
  FROM buckets LATERAL VIEW explode(ids) m AS member WHERE member <> anchor
),
undirected AS (
  SELECT src AS a, dst AS b FROM edges UNION SELECT dst AS a, src AS b FROM edges
),
round1 AS (
  SELECT a AS id, least(a, min(b)) AS label FROM undirected GROUP BY a
),
round2 AS (
  SELECT u.a AS id, least(min(r.label), min(s.label)) AS label
  FROM undirected u
  JOIN round1 r ON r.id = u.b
  JOIN round1 s ON s.id = u.a
  GROUP BY u.a
)
SELECT id, label AS kept_id FROM round2 WHERE id <> label
"""


def _planted_corpus() -> tuple[list[tuple[int, str | None]], dict[int, int]]:
    """50 documents and the planted duplicates {removed id: kept id}."""
    rnd = random.Random(1234)
    vocabulary = [
        "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 9)))
        for _ in range(3000)
    ]

    def text(n_words: int = 220) -> str:
        return " ".join(rnd.choice(vocabulary) for _ in range(n_words))

    def edit(t: str, n_edits: int) -> str:
        # Replace a few words: Jaccard of 24-char shingles stays around 0.9 or more.
        words = t.split(" ")
        for _ in range(n_edits):
            words[rnd.randrange(len(words))] = rnd.choice(vocabulary)
        return " ".join(words)

    docs: dict[int, str | None] = {i: text() for i in range(50)}
    planted: dict[int, int] = {}
    docs[17] = edit(docs[3], 1)  # near-duplicate pair
    planted[17] = 3
    docs[40] = edit(docs[25], 2)  # near-duplicate pair
    planted[40] = 25
    docs[33] = docs[8]  # exact duplicate
    planted[33] = 8
    docs[44] = edit(docs[12], 1)  # group of three, chained: 12 ~ 44 ~ 45
    docs[45] = edit(docs[44], 1)
    planted[44] = 12
    planted[45] = 12
    docs[48] = ""
    docs[49] = None
    return sorted(docs.items()), planted


@pytest.mark.parametrize("use_64_bit_hash", [False, True])
def test_sql_only_fuzzy_dedup_finds_the_planted_duplicates(spark, use_64_bit_hash: bool) -> None:
    jvm.register_udfs(spark)
    rows, planted = _planted_corpus()
    spark.createDataFrame(rows, "id bigint, text string").createOrReplaceTempView("docs")
    query = SQL_FUZZY_DEDUP.format(
        k=NUM_BANDS * MINHASHES_PER_BAND,
        use64="true" if use_64_bit_hash else "false",
        bands=NUM_BANDS,
        r=MINHASHES_PER_BAND,
    )
    found = {row.id: row.kept_id for row in spark.sql(query).collect()}
    assert found == planted
