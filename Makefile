# `make run` opens the designer, `make test` runs every test; both set up .venv on a bare machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian libraries Qt needs offscreen (tests) and under X11 (a real window, make run).
QT_DEBS := libegl1 libgl1 libfontconfig1 libxkbcommon0 libglib2.0-0 fonts-dejavu-core libdbus-1-3
X11_DEBS := libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libx11-xcb1 \
	libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1
CORES := $(shell nproc 2>/dev/null || echo 2)
# torch's CPU build (the test extra's) is the wheel on these machines' disk
TORCH_CPU := $(if $(wildcard /opt/wheels/torch-*.whl),--find-links /opt/wheels)

.PHONY: run test debs debs-x11 bench lint clean

run: $(STAMP) debs debs-x11
	$(VENV)/bin/convdesigner $(FILE)

# The CUDA tests run in a second process: numba's simulator must be chosen before numba loads.
test: $(STAMP) debs
	QT_QPA_PLATFORM=offscreen NUMBA_NUM_THREADS=$(CORES) $(PY) -m pytest -q
	NUMBA_ENABLE_CUDASIM=1 $(PY) -m pytest -q tests/cuda

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(VENV)/bin/convdesigner bench

lint: $(STAMP)
	$(VENV)/bin/ruff check engine designer tests benchmarks

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_CPU) -e ".[test]"
	touch $@

# Installs the missing Debian packages when root; otherwise says what to install.
define apt_missing
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends $$missing >/dev/null; \
		else echo "Please install: sudo apt-get install $$missing"; exit 1; fi; \
	fi
endef

debs:
	$(call apt_missing,$(QT_DEBS))

debs-x11:
	$(call apt_missing,$(X11_DEBS))

clean:
	rm -rf $(VENV) build *.egg-info
