# sdscope: `make run` opens the window on the demo card, `make test` runs every check.
# Both create .venv on first use with the newest Python >= 3.11 that actually runs.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTHON_CANDIDATES := python3.13 python3.12 python3.11 python3

.PHONY: run test venv clean-venv screenshots perf

run: $(STAMP)
	$(VENV)/bin/sdscope

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

venv: $(STAMP)

# The README's pictures, from the real window under a virtual X server.
screenshots: $(STAMP)
	xvfb-run -a -s "-screen 0 1920x1200x24" $(PY) docs/screenshots.py

# The full benchmark suite (~15 min) and the plots of docs/performance.md. Run it on a
# quiet machine: every figure is wall-clock time.
perf: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/sdscope bench --json > docs/perf/results.jsonl
	QT_QPA_PLATFORM=offscreen $(PY) docs/perf/plots.py docs/perf/results.jsonl --out docs/perf

# A candidate counts only if it runs and reports >= 3.11 (a pyenv shim for a version that
# is not installed exists on PATH but fails).
$(PY):
	@python=""; \
	for candidate in $(PYTHON_CANDIDATES); do \
	    if $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	        python=$$candidate; break; \
	    fi; \
	done; \
	if [ -z "$$python" ]; then \
	    echo "error: sdscope needs Python 3.11 or newer; install python3.11 (or newer) with its venv module" >&2; \
	    exit 1; \
	fi; \
	echo "creating $(VENV) with $$python ($$($$python --version 2>&1))"; \
	$$python -m venv $(VENV) || { echo "error: '$$python -m venv' failed; install its venv module (Debian: python3-venv)" >&2; rm -rf $(VENV); exit 1; }

# Editable install in "compat" mode (a .pth naming the source tree), so packages added
# later are importable without reinstalling. Re-runs only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check --quiet --config-settings editable_mode=compat -e '.[dev]'
	@touch $@

clean-venv:
	rm -rf $(VENV)
