# `make test`: install what the whole test suite needs, then run it (README's second set-up command).
#   - Debian's Chromium for the browser tests, where the system has apt and no chromium (they skip without it)
#   - workbench with its dev extras into the current Python
#   - the anchors group's own venv (.venv-anchors, pinned versions kept out of the main environment)
# then the suite (notebooks included) and the anchors group in their venv. The exit code is
# pytest's (make itself would say 2): `.ci/run` reads it from .pytest-status.
PYTHON ?= python
PYTEST_ARGS ?=
ANCHORS := .venv-anchors
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# a failing pytest leaves its exit code for .ci/run, then stops make
STATUS = || { status=$$?; echo $$status > .pytest-status; exit $$status; }

.PHONY: test chromium dev

test: chromium dev $(ANCHORS)/.installed
	@rm -f .pytest-status
	$(PYTHON) -m pytest $(PYTEST_ARGS) $(STATUS)
	$(ANCHORS)/bin/python -m pytest -o addopts=-ra tests/anchors $(PYTEST_ARGS) $(STATUS)

chromium:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif command -v apt-get >/dev/null 2>&1; then $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; \
	else echo "chromium: not found and no apt-get here; the browser tests will skip"; fi

dev:
	$(PYTHON) -m pip install -e ".[dev]"

$(ANCHORS)/.installed: pyproject.toml
	$(PYTHON) -m venv $(ANCHORS)
	$(ANCHORS)/bin/pip install -e ".[anchors]"
	touch $@
