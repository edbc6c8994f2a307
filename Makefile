# hf-robustmed — developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The MedMNIST-C reference (medmnistc 0.1.0) needs old pins (numpy<2.3, scikit-image 0.23.2) and ImageMagick,
# so it gets its own environment, used only by `make parity` and `make bench`.
REF_VENV ?= .venv-ref
REF_PY := $(REF_VENV)/bin/python

# The Space's browser test (tests/test_space.py) drives Debian's chromium through PyPI playwright (never a
# Playwright browser download); a fresh machine gets it here. Without apt the test skips (fails under CI=true).
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test test-all bench parity ref-env clean chromium

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

test: $(VENV)/.installed chromium
	$(PY) -m pytest -q -m "not slow"

test-all: $(VENV)/.installed chromium
	$(PY) -m pytest -q

$(REF_VENV)/.installed:
	@$(PYTHON) -c "import ctypes.util, sys; sys.exit(0 if ctypes.util.find_library('MagickWand-6.Q16') else 1)" || \
	  (echo "medmnistc needs ImageMagick's MagickWand: apt-get install -y libmagickwand-6.q16-6" && exit 1)
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_PY) -m pip install -q --upgrade pip
	$(REF_PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(REF_PY) -m pip install -q medmnistc==0.1.0 "numpy<2.3" pytest scipy
	$(REF_PY) -m pip install -q --no-deps -e .
	touch $@

ref-env: $(REF_VENV)/.installed

parity: $(REF_VENV)/.installed
	$(REF_PY) -m pytest -q tests/test_reference_medmnistc.py

bench: $(VENV)/.installed
	$(PY) bench/corruptions.py --reference-python $(if $(wildcard $(REF_PY)),$(REF_PY),none)

clean:
	rm -rf $(VENV) $(REF_VENV) .pytest_cache demo_out bench/out
