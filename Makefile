# sparkdedup developer commands. `make test` and `make demo` work on a fresh clone: they create
# .venv, install what is needed (pip packages; gradle and junit4 from apt for the JVM UDF jar) and
# are quick when that is already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.sparkdedup-installed
# Spark Connect's client alone (pyspark-client: no JVM, no py4j), beside the dev venv: a Connect
# test imports sparkdedup from it (tests/connect_cases.py).
CLIENT_ONLY := $(VENV)/pyspark-client
CLIENT_STAMP := $(CLIENT_ONLY)/.installed
# A second venv runs the Spark integration tests on pyspark 3.5 (the dev venv has 4.3).
VENV35 := .venv-spark35
PY35 := $(VENV35)/bin/python
# A third, in the slow tier, runs the JVM UDF jar's tests on the oldest Spark 4 (test-spark40).
VENV40 := .venv-spark40
PY40 := $(VENV40)/bin/python
PYSPARK40 := 4.0.5
STAMP40 := $(VENV40)/.sparkdedup-installed
SPARK40_TESTS := tests/test_jvm.py tests/test_sql_fuzzy.py
PYSPARK35 := 3.5.9
STAMP35 := $(VENV35)/.sparkdedup-installed
RAPIDS_TOOLS := 26.8.4
SPARK35_TESTS := tests/test_fuzzy_workflow.py tests/test_fuzzy_steps.py tests/test_ids_removal.py \
	tests/test_components.py tests/test_minhash_spark.py tests/test_cli.py \
	tests/test_semantic_spark.py tests/test_semantic_cli.py tests/test_ml.py tests/test_session.py \
	tests/test_jvm.py tests/test_sql_fuzzy.py tests/test_rapids_plan.py tests/test_incremental.py \
	tests/test_tables.py tests/test_fs_local.py
# make test runs these on 4.x only; make test-slow runs them on 3.5, with the 3.5 modules' tests
# marked slow (not listed here). They are the longest of the 3.5 pass, and its other tests run
# their code paths there too (the fuzzy workflow, on one partitioning, the CLI's readers and
# writers, derived ids, both components backends, the pipeline wrappers, KMeans, the semantic
# CLI, index updates and runs against an index).
SPARK35_SLOW := tests/test_cli.py::test_fuzzy_cli_end_to_end \
	tests/test_incremental.py::test_a_run_against_an_index_in_band_groups \
	tests/test_incremental.py::test_against_errors \
	tests/test_components.py::test_persisted_rounds_are_planned_on_their_own \
	tests/test_semantic_spark.py::test_derived_ids_vectors_and_clamped_k \
	tests/test_semantic_spark.py::test_exact_copies_are_ranked_as_one_whatever_their_embedding_rounding \
	tests/test_semantic_spark.py::test_exact_copies_that_kmeans_splits_are_compared_in_one_cluster \
	tests/test_incremental.py::test_compact_index_merges_the_segments_in_place \
	tests/test_incremental.py::test_replaced_segments_stay_for_the_runs_reading_them \
	tests/test_incremental.py::test_each_replaced_segment_keeps_its_own_hours \
	tests/test_cli.py::test_stages_of_a_run_whose_input_changed_are_never_resumed \
	tests/test_fuzzy_workflow.py::test_backends_agree_and_64_bit_mode \
	tests/test_components.py::test_int_ids_keep_their_type_whatever_the_rounds_are_kept_in \
	tests/test_ml.py::test_transforms_release_their_persisted_stages \
	tests/test_ml.py::test_fit_then_transform_of_the_same_data_embeds_it_once \
	tests/test_ml.py::test_semantic_fit_transform_equals_semantic_duplicates \
	tests/test_semantic_spark.py::test_kmeans_fits_on_a_sample_and_assigns_every_document \
	tests/test_semantic_cli.py::test_semantic_cli_end_to_end_and_resume \
	tests/test_incremental.py::test_against_removes_what_a_full_run_defines \
	tests/test_fuzzy_workflow.py::test_same_output_whatever_partitioning_order_and_run
# Spark 4 tests that run in the background stream, after the 3.5 pass, instead of in the main
# pass: the two streams then take about as long as each other. None of them starts a Spark
# Connect server (the local server's port is taken by the main pass's Connect tests).
SHARD_TESTS := tests/test_cli.py tests/test_benchmarks.py tests/test_cli_safety.py tests/test_tables.py
JAR := python/src/sparkdedup/jars/sparkdedup-udfs.jar
JAVA_SOURCES := $(shell find jvm-udfs/src -type f 2>/dev/null)
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: venv venv35 venv40 jar test test-slow test-all test-spark35 test-spark35-slow test-shard \
	test-shard-slow test-spark40 test-fast _streams demo bench gpu-check rapids-plan lint clean

# The tests' Spark JVMs (drivers started by pyspark or the CLI, Connect servers; pyspark's
# launcher reads SPARK_SUBMIT_OPTS) compile with C1 only. Most of them live well under a
# minute, and in that time C2's compilations cost more CPU than they save on 2 cores: a
# 4,000-document CLI run takes about 25% less wall time (tests/test_cluster.py's three
# passes tests, 103 -> 74 s). They also use the parallel collector, as the CLI's own driver
# does: the default one's concurrent threads take CPU from the tests (tests/test_verify.py,
# alternated runs: 99.9 and 87.6 s -> 83.4 and 81.1 s). The local-cluster tests give their
# executors the same options (the cluster_conf fixture, tests/conftest.py): a 20,000-document
# run on local-cluster[2,1,1024], alternated, median of 3: 74.1 -> 45.3 s. Benchmarks keep the
# JVM's defaults.
test test-slow test-shard test-shard-slow test-spark35 test-spark35-slow test-spark40 test-fast: export SPARK_SUBMIT_OPTS ?= -XX:TieredStopAtLevel=1 -XX:+UseParallelGC

venv: $(STAMP) $(CLIENT_STAMP)

$(CLIENT_STAMP): | $(STAMP)
	$(PIP) install -q --no-deps --target $(CLIENT_ONLY) "pyspark-client==4.2.0"
	touch $(CLIENT_STAMP)

# torch is pinned and installed first: 2.13.0 is a CPU wheel on these machines, and an unpinned
# torch (pulled in by sentence-transformers) would fetch several GB of CUDA packages.
$(STAMP): python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e "python[dev,embed]"
	touch $(STAMP)

venv35: $(STAMP35)

# pyspark 3.5 with the package's own dependencies, no torch: the embedding tests use stand-ins.
# It also holds the RAPIDS qualification tool (spark-rapids-user-tools, for the jar it bundles;
# its own Python dependencies are not needed to run the jar): the RAPIDS plan check runs here.
# gRPC makes it a pyspark 3.5 Spark Connect client as well, which the slow tier's
# tests/test_connect.py runs against a Connect server of the dev venv (pyspark[connect]'s
# dependencies, less its numpy<2 pin: the venv's pyarrow needs NumPy 2).
CONNECT35 := "grpcio>=1.56" "grpcio-status>=1.56" "googleapis-common-protos>=1.56.4"
$(STAMP35): python/pyproject.toml Makefile
	test -x $(PY35) || $(PYTHON) -m venv $(VENV35)
	$(VENV35)/bin/pip install -q --upgrade pip
	$(VENV35)/bin/pip install -q "pyspark==$(PYSPARK35)" -e python "pytest>=8" "psutil>=5.9" \
		$(CONNECT35)
	$(VENV35)/bin/pip install -q --no-deps "spark-rapids-user-tools==$(RAPIDS_TOOLS)"
	touch $(STAMP35)

jar: $(JAR)

$(JAR): build.gradle settings.gradle $(JAVA_SOURCES) | $(STAMP)
	bash .ci/ensure-gradle.sh
	SPARKDEDUP_PYSPARK_HOME="$$($(PY) -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" \
		gradle --offline --no-daemon --quiet -p . jar test copyJar

# make test: the tests not marked slow, in two streams: the main pass (Spark 4, every module
# but SHARD_TESTS) and, beside it, the pyspark 3.5 pass (its venv made first) followed by
# SHARD_TESTS on Spark 4. Together they take less time than one after the other, and on 2
# cores they keep both busy. The background stream's output is shown after the main pass's;
# make test fails when any pass fails. The main pass first compiles the CPU kernels, once,
# while the background stream makes its venv (numba's cache, beside the sources, serves both
# venvs): otherwise the first Python workers of both streams compile them at the same time,
# about 30 s of a core each.
# make test-slow: the tests marked slow (tests/conftest.py says which: processes, clusters,
# notebooks, a Connect server, long runs) and SPARK35_SLOW on 3.5, in the same two streams.
# The two tiers together run every test; CI (.ci/run) runs both, make test-all too.
test: venv
	@$(MAKE) --no-print-directory _streams TIER="not slow" SUFFIX=

test-slow: venv venv35
	@$(MAKE) --no-print-directory _streams TIER="slow" SUFFIX=-slow

test-all: test test-slow

# In both tiers the JVM UDF jar is built (when out of date) in the main stream, under a lock,
# while the background stream runs the 3.5 pass (which does not use it); the background stream
# takes the lock too before its Spark 4 tests, so it never starts a second gradle build beside
# the first.
_streams:
	@( $(MAKE) --no-print-directory test-spark35$(SUFFIX); a=$$?; \
	   flock .jar.lock $(MAKE) --no-print-directory jar; j=$$?; \
	   echo "--- Spark 4 tests of the background stream (make test-shard$(SUFFIX)) ---"; \
	   $(MAKE) --no-print-directory test-shard$(SUFFIX); b=$$?; \
	   test $$a -eq 0 && test $$j -eq 0 && test $$b -eq 0 ) > .test-background.log 2>&1 & pid=$$!; \
	$(PY) -c "from sparkdedup.device import warm_cpu_kernels as w; w(False); w(True)"; \
	if flock .jar.lock $(MAKE) --no-print-directory jar; then \
	  $(PY) -m pytest tests $(addprefix --ignore=,$(SHARD_TESTS)) -m "$(TIER)" -q -ra --durations=15; \
	  main=$$?; \
	else main=1; fi; \
	wait $$pid; other=$$?; \
	echo "--- pyspark $(PYSPARK35) pass (make test-spark35$(SUFFIX)), then make test-shard$(SUFFIX) ---"; \
	cat .test-background.log; \
	test $$main -eq 0 && test $$other -eq 0

# The Spark 4 tests of the background stream, alone (each tier's).
test-shard: venv jar
	$(PY) -m pytest $(SHARD_TESTS) -m "not slow" -q -ra -p no:cacheprovider --durations=8 \
		--basetemp=$(abspath .pytest-shard)

test-shard-slow: venv jar
	$(PY) -m pytest $(SHARD_TESTS) -m slow -q -ra -p no:cacheprovider --durations=8 \
		--basetemp=$(abspath .pytest-shard); a=$$?; \
	$(MAKE) --no-print-directory test-spark40; b=$$?; \
	test $$a -eq 0 && test $$b -eq 0

# The JVM UDF jar is compiled against the dev venv's Spark (4.3) and shipped for every Spark 4:
# its tests and the SQL-only workflow run again on the oldest 4.x (4.0, as on Databricks Runtime
# 17), where a jar built on 4.3 once failed to register its functions
# (IncompatibleClassChangeError). Part of the slow tier's background stream (test-shard-slow).
venv40: $(STAMP40)

$(STAMP40): python/pyproject.toml Makefile
	test -x $(PY40) || $(PYTHON) -m venv $(VENV40)
	$(VENV40)/bin/pip install -q --upgrade pip
	$(VENV40)/bin/pip install -q "pyspark==$(PYSPARK40)" -e python "pytest>=8" "psutil>=5.9"
	touch $(STAMP40)

test-spark40: venv40 jar
	PYSPARK_PYTHON=$(abspath $(PY40)) PYSPARK_DRIVER_PYTHON=$(abspath $(PY40)) \
		$(PY40) -m pytest $(SPARK40_TESTS) -q -ra -p no:cacheprovider --durations=4 \
		-W ignore::DeprecationWarning --basetemp=$(abspath .pytest-spark40)

# The Spark integration tests again on pyspark 3.5 (the JVM UDF jar's tests skip: it is built
# for Spark 4).
SPARK35_ENV := PYSPARK_PYTHON=$(abspath $(PY35)) PYSPARK_DRIVER_PYTHON=$(abspath $(PY35)) \
	SPARKDEDUP_RAPIDS_PLAN=1
SPARK35_PYTEST := $(PY35) -m pytest -q -ra -p no:cacheprovider --durations=8 \
	-W ignore::DeprecationWarning --basetemp=$(abspath .pytest-spark35)

test-spark35: venv35
	$(SPARK35_ENV) $(SPARK35_PYTEST) $(SPARK35_TESTS) -m "not slow" \
		$(addprefix --deselect=,$(SPARK35_SLOW))

test-spark35-slow: venv35
	$(SPARK35_ENV) $(SPARK35_PYTEST) $(SPARK35_TESTS) -m slow; a=$$?; \
	$(SPARK35_ENV) $(SPARK35_PYTEST) $(SPARK35_SLOW); b=$$?; \
	test $$a -eq 0 && test $$b -eq 0

# make test's tier on Spark 4 in one stream, without the 3.5 pass.
test-fast: venv
	$(PY) -m pytest tests -q -ra -m "not slow"

demo: venv
	$(PY) -m sparkdedup.demo

bench: venv jar
	$(PY) -m benchmarks.run --publish
	$(PY) -m benchmarks.scale --publish
	$(PY) -m benchmarks.semantic_split --publish
	$(PY) -m benchmarks.semantic_scale --publish
	$(PY) -m benchmarks.verify_quality --publish
	$(PY) -m benchmarks.kernel_scripts --publish
	$(PY) -m benchmarks.incremental --publish

# The CUDA kernels against the CPU kernels on a GPU machine: needs NumPy, pyarrow, numba-cuda
# and CuPy only (no Spark, no venv); prints why and exits 0 where there is no CUDA GPU.
GPU_PY ?= $(shell test -x $(PY) && echo $(PY) || echo python3)
gpu-check:
	PYTHONPATH=python/src $(GPU_PY) -m benchmarks.gpu_check

# Which operators of the three CLIs the RAPIDS Accelerator runs on the GPU (the qualification
# tool over their event logs); fails on one outside the allow-list. make test-spark35 runs it too.
rapids-plan: venv35
	PYSPARK_PYTHON=$(abspath $(PY35)) PYSPARK_DRIVER_PYTHON=$(abspath $(PY35)) \
		$(PY35) -m benchmarks.rapids_plan --table

lint: venv
	$(VENV)/bin/ruff check python tests benchmarks
	$(VENV)/bin/ruff format --check python tests benchmarks

clean:
	rm -rf $(VENV) $(VENV35) $(VENV40) jvm-udfs/build build .gradle $(JAR) demo_out
