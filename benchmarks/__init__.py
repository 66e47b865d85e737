"""sparkdedup benchmarks: `python -m benchmarks.run` (what `make bench` runs).

Compares, on one synthetic corpus with planted near-duplicates (`sparkdedup.datagen`), the
sparkdedup MinHash kernel, sparkdedup end to end on Spark, datasketch and Spark MLlib's
MinHashLSH, and writes JSON plus a markdown table under benchmarks/results/ (see RESULTS.md).
"""
