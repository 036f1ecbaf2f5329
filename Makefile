# Two commands for a fresh machine (see README.md):
#   make demo   install everything, run the live demo (simulated chiller → daemon → alerts + metrics)
#   make test   install everything, start real Kafka + Prometheus + PostgreSQL on loopback, run ruff, mypy, promtool
#               and pytest (unit + integration), stop the services
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# torch's wheels and their CUDA libraries are about 3 GB, installed about 6 GB: no second copy in
# pip's cache (a CI machine once ran out of disk here).
export PIP_NO_CACHE_DIR := 1

.PHONY: install system-deps demo test lint typecheck bench-spine dashboards clean

$(VENV)/.installed: pyproject.toml
	deploy/check-disk.sh . 8
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

system-deps:
	deploy/install-system-deps.sh

demo: install
	$(VENV)/bin/sentinelle demo

lint: install
	$(VENV)/bin/ruff check daemon tests bench deploy/grafana
	$(VENV)/bin/ruff format --check daemon tests bench deploy/grafana

typecheck: install
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy deploy/grafana
	$(VENV)/bin/mypy bench
	$(VENV)/bin/mypy --explicit-package-bases tests

# Grafana dashboards and provisioning under deploy/grafana/, written by its generator (commit the result).
dashboards: install
	$(PY) deploy/grafana/dashboards.py

test: install system-deps
	tests/run-all.sh

bench-spine: install
	$(PY) bench/spine.py

clean:
	-deploy/services.sh stop
	rm -rf .run sentinelle-demo
