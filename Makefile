# tidegate — developer entry points. `make setup` then `make test`; see README.md.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo .tools/uv/bin/uv)
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup test lint typecheck unit binaries demo clean

setup: $(VENV)/.installed

# uv comes from PyPI when the machine has none.
.tools/uv/bin/uv:
	python3 -m venv .tools/uv
	.tools/uv/bin/pip install --quiet uv

# Bytecode is compiled at install, as pip does for a wheel: the CLI starts without
# compiling its dependencies, also where PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python python3 --compile-bytecode
	touch $@

lint: setup
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts

typecheck: setup
	$(VENV)/bin/mypy

# Installs etcd and the registry (apt) and builds kube-apiserver, the flux CLI, cosign and a
# notation-go signer (go, for side-by-side tests and benchmarks) on first use.
binaries: setup
	$(VENV)/bin/tidegate dev prepare --flux --cosign --notation

test: lint typecheck binaries
	$(VENV)/bin/pytest

# Tests that need no running services.
unit: setup
	$(VENV)/bin/pytest -m "not cluster and not registry and not services"

demo: binaries
	bash scripts/demo.sh $(ARGS)

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
