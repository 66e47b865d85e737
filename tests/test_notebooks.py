"""The notebooks in notebooks/ run top to bottom on small data (nbclient, a fresh kernel and a
local Spark session each), with the test's parameters injected after their parameters cell, as
papermill does; a failing cell fails the test. The committed notebooks carry no outputs."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
SMALL_SPARK = {
    "SPARK_MASTER": "local[2]",
    "SPARK_CONF": {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"},
}


def _notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)


def _run(name: str, params: dict, tmp_path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    book = _notebook(name)
    index = next(i for i, c in enumerate(book.cells) if "parameters" in c.metadata.get("tags", []))
    lines = ["# Injected by tests/test_notebooks.py"]
    lines += [f"{key} = {value!r}" for key, value in params.items()]
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
    session = "".join(code[1]["source"])  # the cell after the parameters starts Spark
    assert "SparkSession.builder" in session and "getOrCreate()" in session


@pytest.mark.slow
def test_fuzzy_notebook_runs_on_a_small_planted_corpus(tmp_path) -> None:
    out = tmp_path / "deduplicated"
    params = dict(SMALL_SPARK, N_DOCS=300, WORK_DIR=str(tmp_path / "work"), OUTPUT_PATH=str(out))
    book = _run("fuzzy_dedup.ipynb", params, tmp_path)
    assert len(_outputs(book, "image/png")) == 2  # buckets/groups, similarity histogram
    assert "<mark>" in "".join(_outputs(book, "text/html"))  # removed beside kept
    text = _stream(book)
    assert "'recall'" in text and "300 documents in" in text
    assert any(p.name.endswith(".json") for p in out.iterdir())  # written as JSONL


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
