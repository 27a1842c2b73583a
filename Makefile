# neurodeploy: `make demo` and `make test` set everything up from a fresh clone.
# Lava (lava-nc 0.10.0, lava-dl 0.6.0) needs Python 3.10, so the venv is made with it.
PY310 := $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do \
	if $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PY310)" || { echo "error: python3.10 not found (Lava needs Python 3.10)"; exit 2; }
	@test -x $(PY) || $(PY310) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all]"
	@# sinabs 2.0.3 (the newest that accepts nir 1.0.8) declares samna, whose PyPI stub reinstalls itself from
	@# SynSense's index at import: install sinabs without it (docs/frontends.md)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -c constraints.txt sinabs pbr
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	mkdir -p build && $(PY) -m pytest -q -s benchmarks --benchmark-only --benchmark-json=build/bench.json

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks build *.egg-info
