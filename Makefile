# One virtualenv in .venv, made from pyproject.toml; every target installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test up demo chaos soak protos clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Every test: guards (proto conventions, gen/ freshness, pure domains), unit, service,
# storage (SQLite, and PostgreSQL when COPYTRADE_TEST_POSTGRES_URL is set), gateway, end to end.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

# The whole mesh on this machine with the exchange emulators, a demo user, a leader and followers.
up: $(STAMP)
	$(VENV)/bin/copytrade up --demo

# The scripted scenario: leader trades, followers copy, reconciliation; exits 0 when all matched.
demo: $(STAMP)
	$(VENV)/bin/copytrade demo

# The chaos suite alone (it is part of `make test` too); `make soak` runs the long tier.
chaos: $(STAMP)
	$(PY) -m pytest tests/chaos -q -p no:cacheprovider

soak: $(STAMP)
	CHAOS_SOAK=1 $(PY) -m pytest tests/chaos -q -p no:cacheprovider

protos: $(STAMP)
	$(PY) scripts/gen_protos.py

clean:
	rm -rf $(VENV) .copytrade *.egg-info
