# adsim — the README's two commands: `make demo` and `make test`.
# Both set up .venv with the tested set of versions (constraints.txt), using the CPU torch wheel.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
OUT    ?= runs/quickstart

.PHONY: install browser demo test lint test-slow bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[all,dev]'
	@$(PY) -c "import torch, sys; v = torch.__version__; sys.exit(0 if '+cpu' in v or not torch.version.cuda else 'a CUDA build of torch was installed: ' + v)"
	touch $(STAMP)

install: $(STAMP) browser

# report.html is tested in a real headless browser (tests/experiments/test_report_html.py):
# install Debian's chromium when it is missing and we may (root); otherwise say how.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (for the report.html browser test)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "chromium not found and not root: skipping its install; the report.html browser" \
		     "test will skip (CI fails without it). Install it: sudo apt-get install -y chromium"; \
	fi

demo: install
	$(VENV)/bin/adsim run scenarios/quickstart.yaml --out $(OUT)

test: install lint
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check adsim tests benchmarks docs

test-slow: install
	$(PY) -m pytest -q -m slow

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
