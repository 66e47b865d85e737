"""How long the semantic workflow's embedding step takes on short texts, on the CPU.

Embeds N short documents (default 10,000 of about 20 words, `sparkdedup.datagen` text) with the
default model (all-MiniLM-L6-v2) two ways, in one run:

- the workflow's step, `sparkdedup.semantic.embed.document_embeddings` (`predict_batch_udf`, the
  model loaded once per Python worker, one torch thread per worker) on `local[2]`, forced with a
  `noop` write: a first pass (Python workers start and load the model) and timed warm passes;
- the same model in one process with sentence-transformers `encode`, with 1 and with 2 torch
  threads, for comparison, and with `text_padded_encoder` (what the workers run on the CPU
  instead of `encode`) with 1 thread.

    .venv/bin/python benchmarks/embedding_speed.py --docs 10000 --repeats 3 --json /tmp/embed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _timed(what: str, run, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(round(time.perf_counter() - start, 2))
        print(f"{what}: {times[-1]:.1f} s", file=sys.stderr, flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--mean-words", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    import torch
    from pyspark.sql import SparkSession
    from sentence_transformers import SentenceTransformer
    from sparkdedup.datagen import generate_corpus
    from sparkdedup.semantic.embed import (
        DEFAULT_MODEL,
        document_embeddings,
        resolve_model_path,
        text_padded_encoder,
    )

    docs, _ = generate_corpus(args.docs, mean_words=args.mean_words, seed=1)
    texts = docs["text"].tolist()
    words = statistics.mean(len(t.split()) for t in texts)
    load_before = os.getloadavg()

    spark = (
        SparkSession.builder.master(args.master)
        .appName("sparkdedup-embedding-speed")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "3g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.createDataFrame(docs[["id", "text"]]).cache()
    frame.count()
    embedded = document_embeddings(
        frame,
        id_col="id",
        text_col="text",
        model=DEFAULT_MODEL,
        batch_size=args.batch_size,
        device="cpu",
    )

    def spark_run() -> None:
        embedded.write.format("noop").mode("overwrite").save()

    spark_first = _timed("document_embeddings, first pass", spark_run, 1)[0]
    spark_warm = _timed("document_embeddings, warm pass", spark_run, args.repeats)
    spark.stop()

    encoder = SentenceTransformer(resolve_model_path(DEFAULT_MODEL), device="cpu")
    direct = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        encoder.encode(texts[:256], batch_size=args.batch_size)  # warm-up
        direct[threads] = _timed(
            f"sentence-transformers, {threads} thread(s)",
            lambda: encoder.encode(texts, batch_size=args.batch_size, show_progress_bar=False),
            args.repeats,
        )
    # What the workers run on the CPU instead of encode (each text padded to its own length).
    torch.set_num_threads(1)
    padded = text_padded_encoder(encoder)
    direct["padded"] = _timed(
        "text_padded_encoder, 1 thread", lambda: padded(texts, args.batch_size), args.repeats
    )

    results = {
        "docs": args.docs,
        "mean_words": round(words, 1),
        "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
        "model": DEFAULT_MODEL,
        "batch_size": args.batch_size,
        "master": args.master,
        "cpu_count": os.cpu_count(),
        "spark_first_pass_s": spark_first,
        "spark_warm_pass_s": spark_warm,
        "direct_1_thread_s": direct[1],
        "direct_2_threads_s": direct[2],
        "padded_1_thread_s": direct["padded"],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(results, indent=2))
    median = statistics.median
    print(
        f"\n{args.docs:,} texts of {words:.0f} words:\n"
        f"| path | seconds | texts/s |\n| --- | --- | --- |\n"
        f"| document_embeddings on {args.master}, first pass | {spark_first:.1f} | "
        f"{args.docs / spark_first:,.0f} |\n"
        f"| document_embeddings on {args.master}, warm (median) | {median(spark_warm):.1f} | "
        f"{args.docs / median(spark_warm):,.0f} |\n"
        f"| sentence-transformers, 1 thread (median) | {median(direct[1]):.1f} | "
        f"{args.docs / median(direct[1]):,.0f} |\n"
        f"| sentence-transformers, 2 threads (median) | {median(direct[2]):.1f} | "
        f"{args.docs / median(direct[2]):,.0f} |\n"
        f"| text_padded_encoder, 1 thread (median) | {median(direct['padded']):.1f} | "
        f"{args.docs / median(direct['padded']):,.0f} |"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
