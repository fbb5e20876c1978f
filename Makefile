# The whole setup on a fresh machine with Python 3.11: `make demo`, `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pins-installed

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv browser demo test test-fast golden golden-reports lab-up lab-down clean build ee-context sanity lint

venv: $(STAMP)

# Re-install whenever the pins change.
$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

# The HTML report's test drives Debian's Chromium through Debian's chromedriver
# (tests/integration/test_report_html.py); nothing is downloaded at test time.
CHROMIUM := /usr/bin/chromium
BROWSER_PACKAGES := chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser: $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(BROWSER_PACKAGES) \
	  || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(BROWSER_PACKAGES); }

demo: venv
	$(PY) -m lab demo

# CI runs `make test` (.ci/run): the validators first (about 30 s and 1-2 min once warm), then the suite.
test: venv browser sanity lint
	$(PY) -m pytest -q -n 2 tests

# ansible-test sanity (no containers) over the collection as it ships: tests/support/sanity.py builds an
# ansible_collections/mailflow/exchange tree from the tarball (no finding is ignored: a
# tests/sanity/ignore-2.19.txt would say why each stays). The first run installs ansible-test's pinned tools into ~/.ansible/test/venv (PyPI).
sanity: venv
	$(PY) -m tests.support.sanity

# ansible-lint's production profile; .ansible-lint records the project's conventions, .ansible-lint-ignore the
# findings kept on purpose.
lint: venv
	$(VENV)/bin/ansible-lint

# The approved audit of the demo's saved snapshots (tests/fixtures/snapshots/demo), regenerated from the lab by
# running playbooks/audit.yml against it. Read the diff of expected/ before committing it: that is the approval.
golden: venv
	PYTHONPATH=.:collections $(PY) -m tests.support.golden demo

# Only the approved reports, from the saved snapshots (wording or decisions changed, not what is collected).
golden-reports: venv
	PYTHONPATH=.:collections $(PY) -m tests.support.golden --reports demo

test-fast: venv browser
	$(PY) -m pytest -q -n 2 tests -m "not slow"

build: venv
	$(VENV)/bin/ansible-galaxy collection build --force --output-path dist .

# The execution environment's build context (execution-environment.yml) in context/. Building the image
# from it (ansible-builder build) needs podman or docker, which CI does not have.
ee-context: build
	$(VENV)/bin/ansible-builder create --file execution-environment.yml --context context --output-filename Containerfile

clean:
	rm -rf $(VENV) dist context reports .pytest_cache
