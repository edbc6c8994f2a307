# hf-robustmed — developer entry points. `make test` is what CI runs (.ci/run).
#
# What runs where:
#   make test       lint (ruff check, ruff format --check), every test (the `slow` ones included) in .venv, then the
#                   side-by-side parity tests against the MedMNIST-C reference in .venv-ref: what CI runs, on a clean
#                   clone within 15 minutes (2 cores).
#   make lint       ruff alone (`.venv/bin/ruff format .` fixes the layout).
#   make test-fast  the inner loop: `-m "not slow"` in .venv (no end-to-end demo, reproduction or training runs).
#   make parity     the parity tests only (make test-parity: the same, as `make test` runs it).
# A test is marked `slow` when it takes more than about 20 s on the 2-core development machine (pyproject.toml).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The MedMNIST-C reference (medmnistc 0.1.0) needs old pins (numpy<2.3, scikit-image 0.23.2) and ImageMagick,
# so it gets its own environment, used by `make test`, `make parity` and `make bench`.
REF_VENV ?= .venv-ref
REF_PY := $(REF_VENV)/bin/python
PARITY_TESTS := tests/test_reference_medmnistc.py

# The Space's browser test (tests/test_space.py) drives Debian's chromium through PyPI playwright (never a
# Playwright browser download); a fresh machine gets it here. Without apt the test skips (fails under CI=true).
CHROMIUM ?= /usr/bin/chromium
# medmnistc draws motion blur with ImageMagick 6 through Wand; a fresh machine gets MagickWand here.
MAGICKWAND_PKG ?= libmagickwand-6.q16-6
HAS_MAGICKWAND := $(PYTHON) -c "import ctypes.util as u, sys; sys.exit(not u.find_library('MagickWand-6.Q16'))"

.PHONY: lint demo test test-fast test-parity bench parity ref-env clean chromium magickwand

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/hf-robustmed demo -o demo_out

chromium:
	@test -x $(CHROMIUM) || { \
	  echo "installing Debian's chromium for the Space's browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  { $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "WARNING: could not install chromium (apt-get install -y chromium): the browser test will skip, or fail under CI=true"; }

magickwand:
	@$(HAS_MAGICKWAND) || { \
	  echo "installing ImageMagick's MagickWand ($(MAGICKWAND_PKG)) for the MedMNIST-C parity tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  { $$SUDO apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(MAGICKWAND_PKG) >/dev/null; } || \
	  echo "WARNING: could not install $(MAGICKWAND_PKG) (apt-get install -y $(MAGICKWAND_PKG))"; }

# Lint: PEFT's ruff rule set plus zip(strict=) and the 120-column limit (pyproject.toml); `ruff format` fixes layout.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(VENV)/.installed chromium lint
	$(PY) -m pytest -q --ignore=$(PARITY_TESTS)
	@$(MAKE) --no-print-directory test-parity

# A reference environment that cannot be built (no apt, no network) fails under CI=true and is a warning elsewhere;
# a failing parity test always fails.
test-parity:
	@if $(MAKE) --no-print-directory ref-env; then $(MAKE) --no-print-directory parity; \
	elif [ "$${CI:-}" = true ]; then \
	  echo "CI=true: the MedMNIST-C reference environment ($(REF_VENV)) could not be built" >&2; exit 1; \
	else echo "WARNING: $(REF_VENV) could not be built: the MedMNIST-C parity tests did not run (make parity)" >&2; fi

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow" --ignore=$(PARITY_TESTS)

$(REF_VENV)/.installed: | magickwand
	@$(HAS_MAGICKWAND) || (echo "medmnistc needs ImageMagick's MagickWand: apt-get install -y $(MAGICKWAND_PKG)" && exit 1)
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_PY) -m pip install -q --upgrade pip
	$(REF_PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(REF_PY) -m pip install -q medmnistc==0.1.0 "numpy<2.3" pytest scipy
	$(REF_PY) -m pip install -q --no-deps -e .
	touch $@

ref-env: $(REF_VENV)/.installed

parity: $(REF_VENV)/.installed
	$(REF_PY) -m pytest -q -p no:cacheprovider $(PARITY_TESTS)

bench: $(VENV)/.installed
	$(PY) bench/corruptions.py --reference-python $(if $(wildcard $(REF_PY)),$(REF_PY),none)

clean:
	rm -rf $(VENV) $(REF_VENV) .pytest_cache demo_out bench/out
