"""The notebooks in notebooks/ run top to bottom on small data (nbclient, a fresh kernel and a
local Spark session each), with the test's parameters injected after their parameters cell, as
papermill does; a failing cell fails the test. The committed notebooks carry no outputs. Two runs
with one WORK_DIR and two inputs each get their own results (the stage cache is keyed by input)."""

from __future__ import annotations

import importlib.util
import json
import os
import re

import nbformat
import numpy as np
import pandas as pd
import pytest

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
SMALL_SPARK = {
    "SPARK_MASTER": "local[2]",
    "SPARK_CONF": {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"},
}


def _notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)


def _run(name: str, params: dict, tmp_path, code: str = "") -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    book = _notebook(name)
    index = next(i for i, c in enumerate(book.cells) if "parameters" in c.metadata.get("tags", []))
    lines = ["# Injected by tests/test_notebooks.py"]
    lines += [f"{key} = {value!r}" for key, value in params.items()]
    lines += [code] if code else []
    injected = nbformat.v4.new_code_cell("\n".join(lines))
    injected.metadata["tags"] = ["injected-parameters"]
    book.cells.insert(index + 1, injected)
    client = NotebookClient(
        book,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    return book


def _outputs(book: nbformat.NotebookNode, mime: str) -> list:
    return [
        out["data"][mime]
        for cell in book.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if mime in out.get("data", {})
    ]


def _stream(book: nbformat.NotebookNode) -> str:
    return "".join(
        out.get("text", "")
        for cell in book.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


def _summary(book: nbformat.NotebookNode) -> tuple[int, int, int]:
    """(documents in, removed, kept) from the notebook's last printed line about them."""
    found = re.findall(r"(\d+) documents in, (\d+) removed, (\d+) kept", _stream(book))
    assert found, "the notebook printed no summary line"
    return tuple(int(x) for x in found[-1])


@pytest.mark.parametrize("name", ["fuzzy_dedup.ipynb", "semantic_dedup.ipynb"])
def test_notebook_is_clean_and_has_a_parameters_cell(name: str) -> None:
    with open(os.path.join(NOTEBOOKS, name), encoding="utf-8") as fh:
        raw = json.load(fh)
    book = _notebook(name)
    nbformat.validate(book)
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    first_code = code[0]
    assert "parameters" in first_code["metadata"].get("tags", [])
    widgets = "".join(code[1]["source"])  # then the parameters as Databricks widgets
    assert "apply_widgets(globals(), PARAMETERS, dbutils)" in widgets
    session = "".join(code[2]["source"])  # then the session
    assert "SparkSession.builder" in session and "getOrCreate()" in session
    # No collect that grows with the corpus: every toPandas() is of an aggregate, a limit or a
    # sample, of the rows of a list of ids that is itself limited, or of the generated corpus.
    for cell in code:
        if "".join(cell["source"]).startswith("if truth is not None:"):
            continue  # the generated corpus's ground truth: small by construction
        for line in "".join(cell["source"]).splitlines():
            if ".toPandas()" in line and "def show" not in line:
                assert any(
                    w in line
                    for w in (
                        "count()",
                        ".limit(",
                        "groupBy",
                        ".sample(",
                        ".isin(",
                        "duplicates.toPandas",
                    )
                ) or line.strip().startswith(("ipython_display", ".groupBy")), line


@pytest.mark.slow
def test_fuzzy_notebook_runs_on_a_small_planted_corpus_then_on_a_file(tmp_path) -> None:
    out, work = tmp_path / "deduplicated", str(tmp_path / "work")
    params = dict(SMALL_SPARK, N_DOCS=300, WORK_DIR=work, OUTPUT_PATH=str(out))
    book = _run("fuzzy_dedup.ipynb", params, tmp_path)
    assert len(_outputs(book, "image/png")) == 2  # buckets/groups, similarity histogram
    assert "<mark>" in "".join(_outputs(book, "text/html"))  # removed beside kept
    text = _stream(book)
    assert "'recall'" in text and "300 documents in" in text
    assert any(p.name.endswith(".json") for p in out.iterdir())  # written as JSONL

    # Then a file of other documents (ids the generated corpus does not have) with the same
    # WORK_DIR: its own results, not the cached stages of the generated corpus.
    from sparkdedup.datagen import generate_corpus

    corpus, _ = generate_corpus(150, seed=8)
    corpus["id"] += 10_000
    path = tmp_path / "other.jsonl"
    corpus.to_json(path, orient="records", lines=True)
    params = dict(SMALL_SPARK, INPUT_PATH=str(path), WORK_DIR=work, OUTPUT_PATH=str(out))
    docs_in, removed, kept = _summary(_run("fuzzy_dedup.ipynb", params, tmp_path))
    assert (docs_in, removed + kept) == (150, 150)
    # Rows read from JSONL are written back as their own lines (part-*.txt).
    lines = [ln for part in out.glob("part-*") for ln in part.read_text("utf-8").splitlines()]
    rows = [json.loads(line) for line in lines]
    assert len(rows) == kept and {r["id"] for r in rows} <= set(corpus["id"])


@pytest.mark.slow
def test_semantic_notebook_runs_with_minilm_on_small_data(tmp_path) -> None:
    pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
    params = dict(
        SMALL_SPARK,
        N_DOCS=120,
        DOC_WORDS=30,
        N_CLUSTERS=4,
        WORK_DIR=str(tmp_path / "work"),
    )
    book = _run("semantic_dedup.ipynb", params, tmp_path)
    assert len(_outputs(book, "image/png")) == 1  # clusters, similarities, eps sweep
    text = _stream(book)
    assert "120 documents in" in text and "planted copies" in text


def _embedded_docs(prefix: str, n: int, seed: int) -> pd.DataFrame:
    """Documents with precomputed embeddings: three groups of random vectors, every fifth one
    also as a scaled, slightly perturbed copy (cosine similarity about 1)."""
    rng = np.random.default_rng(seed)
    base = 5 * np.eye(3, 8)[rng.integers(0, 3, size=n)] + rng.normal(size=(n, 8))
    copies = base[::5] * 1.5 + 1e-4 * rng.normal(size=(len(base[::5]), 8))
    vectors = np.vstack([base, copies])
    return pd.DataFrame(
        {
            "doc": [f"{prefix}{i:03d}" for i in range(len(vectors))],
            "text": [f"document {prefix}{i}" for i in range(len(vectors))],
            "emb": [v.tolist() for v in vectors],
        }
    )


_FAKE_DBUTILS = """
class _Widgets:  # stands in for Databricks' dbutils.widgets: someone typed N_CLUSTERS=2
    def text(self, name, default):
        self.__dict__.setdefault("created", {})[name] = default

    def get(self, name):
        return {"N_CLUSTERS": "2"}.get(name, self.created[name])


class _DBUtils:
    widgets = _Widgets()


dbutils = _DBUtils()
"""


@pytest.mark.slow
def test_semantic_notebook_reruns_on_changed_files_then_on_spark_connect_with_widgets(
    tmp_path,
) -> None:
    """One input path rewritten with other documents between two runs sharing a WORK_DIR: the
    second run gets its own results, not the cached stages of the first. The second run is on
    a Spark Connect session (a local Connect server), its parameters read from (stand-in)
    Databricks widgets."""
    connect = importlib.util.find_spec("grpc") is not None  # pyspark[connect]'s dependency
    path, work = tmp_path / "docs.parquet", str(tmp_path / "work")
    for prefix, n, seed in (("a", 60, 1), ("b", 40, 2)):
        docs = _embedded_docs(prefix, n, seed)
        docs.to_parquet(path)
        out = tmp_path / f"deduplicated-{prefix}"
        params = dict(
            SMALL_SPARK,
            INPUT_PATH=str(path),
            INPUT_FORMAT="parquet",
            EMBEDDING_COL="emb",
            ID_COL="doc",
            N_CLUSTERS=3,
            WORK_DIR=work,
            OUTPUT_PATH=str(out),
        )
        remote = connect and prefix == "b"
        if remote:
            params = {k: v for k, v in params.items() if k not in SMALL_SPARK}
            params["SPARK_REMOTE"] = "local[2]"
        book = _run("semantic_dedup.ipynb", params, tmp_path, code=_FAKE_DBUTILS if remote else "")
        docs_in, removed, kept = _summary(book)
        assert docs_in == len(docs) and removed >= len(docs) - n and removed + kept == docs_in
        remaining = pd.read_parquet(out)
        assert len(remaining) == kept and set(remaining["doc"]) <= set(docs["doc"])
        if remote:
            text = _stream(book)
            assert "parameters from widgets: {'N_CLUSTERS': 2}" in text
            assert "pyspark.sql.connect" in text
    if not connect:  # the rerun was checked; the Connect half could not run
        pytest.skip("the Spark Connect half needs pyspark[connect]'s dependencies (grpc)")
