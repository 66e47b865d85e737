# sparkdedup developer commands. `make test` and `make demo` work on a fresh clone: they create
# .venv, install what is needed (pip packages; gradle and junit4 from apt for the JVM UDF jar) and
# are quick when that is already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.sparkdedup-installed
JAR := python/src/sparkdedup/jars/sparkdedup-udfs.jar
JAVA_SOURCES := $(shell find jvm-udfs/src -type f 2>/dev/null)
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: venv jar test test-fast demo bench lint clean

venv: $(STAMP)

# torch is pinned and installed first: 2.13.0 is a CPU wheel on these machines, and an unpinned
# torch (pulled in by sentence-transformers) would fetch several GB of CUDA packages.
$(STAMP): python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e "python[dev,embed]"
	touch $(STAMP)

jar: $(JAR)

$(JAR): build.gradle settings.gradle $(JAVA_SOURCES) | $(STAMP)
	bash .ci/ensure-gradle.sh
	SPARKDEDUP_PYSPARK_HOME="$$($(PY) -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" \
		gradle --offline --no-daemon --quiet -p . jar test copyJar

test: venv jar
	$(PY) -m pytest tests -q -ra --durations=15

test-fast: venv
	$(PY) -m pytest tests -q -ra -m "not slow"

demo: venv
	$(PY) -m sparkdedup.demo

bench: venv jar
	$(PY) -m benchmarks.run --publish
	$(PY) -m benchmarks.scale --publish
	$(PY) -m benchmarks.semantic_split --publish
	$(PY) -m benchmarks.semantic_scale --publish

lint: venv
	$(VENV)/bin/ruff check python tests benchmarks
	$(VENV)/bin/ruff format --check python tests benchmarks

clean:
	rm -rf $(VENV) jvm-udfs/build build .gradle $(JAR) demo_out
