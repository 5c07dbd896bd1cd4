# The targets people expect. `make run` and `make test` are the README's two commands.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PORT    ?= 8188
DATA    ?= data

.PHONY: system install install-test run demo lint types test pytest bench clean

$(BIN)/python:
	@# Debian's own python3 needs python3-venv for this; pyenv and python.org builds have it.
	$(PY) -c 'import ensurepip' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

system:
	scripts/ensure-system-packages.sh redis-server:redis-server

install: system $(STAMP)

install-test: install
	@# Page tests drive Debian's chromium; nginx configs are checked by a real nginx; the
	@# deployment tests run their own dockerd (images built on a debootstrapped Debian, certs
	@# by openssl) and check systemd units with systemd-analyze.
	scripts/ensure-system-packages.sh nginx:nginx chromium:chromium dockerd:docker.io \
		docker-compose:docker-compose debootstrap:debootstrap openssl:openssl \
		systemd-analyze:systemd ss:iproute2

run: install
	$(BIN)/comfy-workshop up --port $(PORT) --data $(DATA)

demo: run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy

pytest: install-test
	$(BIN)/pytest

test: lint types pytest

bench: install
	$(BIN)/python -m benchmarks.queue
	$(BIN)/python -m benchmarks.worker
	$(BIN)/python -m benchmarks.relay
	$(BIN)/python -m benchmarks.push
	$(BIN)/python -m benchmarks.pages
	$(BIN)/python -m benchmarks.fanout
	$(BIN)/python -m benchmarks.eta
	$(BIN)/python -m benchmarks.burst
	$(BIN)/python -m benchmarks.duty

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
