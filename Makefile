# One entry point for a newcomer: `make run` (local stack) and `make test` (everything CI runs).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# tests/deploy: InfluxData's Flux front end (from npm, with the machine's Node.js and npm) type-checks
# the dashboards' and the task's Flux
FLUXCHECK := tests/deploy/fluxcheck/node_modules/.package-lock.json
# Debian packages the tests and the local stack use (installed when missing, as root).
APT_PACKAGES ?= mosquitto mosquitto-clients socat chromium victoria-metrics nodejs openssl jq libffi8
# The part `make run` installs when missing: the reference broker and its command-line
# clients (not root: make run uses the embedded amqtt broker instead)
RUN_APT_PACKAGES ?= mosquitto mosquitto-clients
MISSING_NOTE ?= tests that need them are skipped
PYTHON ?= python3
# A real Home Assistant for tests/ha: its own venv on pyenv's Python 3.13.0 (HA 2025.4 needs 3.13)
HA_PYTHON ?= $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.13.0/bin/python
HA_VENV   := .venv-ha
HA_STAMP  := $(HA_VENV)/.installed

# make device-host DEVICE=monitor|mini-switch|switcher|p1-dongle: a device's firmware on this
# machine under the MicroPython unix port (devices/host/), against the broker in MQTT_URL
DEVICE ?= monitor
HEAP ?= 32k
MQTT_URL ?= mqtt://127.0.0.1:1883
SITE ?= home
DEVICE_ID ?=
UART ?=
WIFI_FILE ?=
# other settings.json keys: SETTINGS="keepalive_s=10 watchdog_s=10"
SETTINGS ?=

.PHONY: help setup device-host system-deps run test test-fast bench soak check schemas clean ha-venv ha-venv-if-possible

help:
	@echo "make run    - whole stack locally: broker, simulated meter, every service, web page"
	@echo "make test   - install what is missing, then run the full test suite (what CI runs)"
	@echo "make bench  - benchmarks; results written to BENCHMARKS.md"
	@echo "make soak   - the long reliability suite (20 broker kills, 100 SIGKILLs, 1M fuzzed telegrams)"
	@echo "make check  - ruff (with complexity/size rules), mypy --strict, no function over 60 lines"
	@echo "make ha-venv - Home Assistant 2025.4.4 in $(HA_VENV) for tests/ha (needs pyenv Python 3.13.0; ~4 min)"
	@echo "make setup  - virtualenv in $(VENV) with every console script"
	@echo "make device-host DEVICE=monitor|mini-switch|switcher|p1-dongle [HEAP=32k MQTT_URL=... SITE=...]"
	@echo "             - a device's firmware on this machine (MicroPython unix port); Ctrl-C: heap high-water"

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "note: missing Debian packages:$$missing (run 'sudo make system-deps'; $(MISSING_NOTE))"; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

$(FLUXCHECK): tests/deploy/fluxcheck/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/deploy/fluxcheck --no-audit --no-fund --silent; \
	else echo "note: npm is missing: the Flux type check of tests/deploy is skipped"; fi

setup: system-deps $(STAMP) $(FLUXCHECK)

run: $(STAMP)
	-@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(RUN_APT_PACKAGES)" \
	  MISSING_NOTE="make run uses the embedded amqtt broker instead"
	$(VENV)/bin/python -m p1common.runstack $(if $(SERIAL),--serial $(SERIAL),)

# Home Assistant 2025.4.4 plus the requirements of the integrations the test sets up
$(HA_STAMP): tests/ha/requirements.txt
	test -x $(HA_VENV)/bin/python || $(HA_PYTHON) -m venv $(HA_VENV)
	$(HA_VENV)/bin/pip install -q --disable-pip-version-check -r tests/ha/requirements.txt
	touch $(HA_STAMP)

ha-venv: $(HA_STAMP)

ha-venv-if-possible:
	@if [ -x "$(HA_PYTHON)" ]; then $(MAKE) --no-print-directory ha-venv; \
	else echo "note: no Python 3.13 at $(HA_PYTHON): the real Home Assistant tests (tests/ha) are skipped"; fi

test: setup ha-venv-if-possible
	bash scripts/test.sh

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m 'not slow' -x

bench: setup
	$(PIP) install -q --disable-pip-version-check -e '.[dev,bench]'
	$(VENV)/bin/python -m bench.run

soak: setup
	P1_SOAK=1 $(VENV)/bin/pytest -q -m soak tests/reliability

# mypy is strict through pyproject.toml ([tool.mypy] strict = true)
device-host: $(STAMP)
	HEAP="$(HEAP)" MQTT_URL="$(MQTT_URL)" SITE="$(SITE)" DEVICE_ID="$(DEVICE_ID)" UART="$(UART)" \
	  WIFI_FILE="$(WIFI_FILE)" $(VENV)/bin/python devices/host/run.py $(DEVICE) \
	  $(foreach kv,$(SETTINGS),--set $(kv))

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy services
	$(VENV)/bin/python scripts/check_function_length.py services

schemas: $(STAMP)
	$(VENV)/bin/p1-schemas docs/schemas

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
