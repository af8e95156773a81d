# Two commands matter (README's Quick start): `make demo` and `make test`.
# Each creates .venv and installs what it needs when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck importlint unit cluster-binaries compiled-engine bench clean proto options report-assets screenshot

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	@echo "installing gaggle and its dev tools into $(VENV) (log: $(VENV)/install.log)"
	@{ $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e '.[dev]'; } \
		> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

demo: $(STAMP)
	@bash examples/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy -p gaggle -p gaggle_operator

importlint: $(STAMP)
	PYTHONPATH=worker:operator $(BIN)/lint-imports

# The test cluster's etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and
# CoreDNS, built from their Go modules once per machine into ~/.cache/gaggle (minutes cold, nothing
# warm): before pytest, so that no test's timeout covers a build.
cluster-binaries: $(STAMP)
	$(BIN)/python -m tests.cluster.binaries > /dev/null

# The engine with its hot modules compiled by mypyc (tools/compiled.py): a C compiler and Python's
# headers, then one build per source state into ~/.cache/gaggle/compiled (about a minute).
# tests/project/test_compiled.py runs the engine's suites on it; throughput.py measures it.
compiled-engine: $(STAMP)
	@command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc libc6-dev; }
	@test -f "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" \
		|| { apt-get update -qq && apt-get install -y -qq python3-dev; }
	$(BIN)/python tools/compiled.py > /dev/null

# Two pytest processes at once: the test cluster's tests in one, in order, the rest in the other
# (tools/run_tests.py says why); each prints its slowest tests.
unit: $(STAMP) cluster-binaries compiled-engine image
	$(BIN)/python tools/run_tests.py

test: lint typecheck importlint unit

bench: $(STAMP) compiled-engine
	@test -x /usr/sbin/nginx || { apt-get update -qq && apt-get install -y -qq nginx; }  # the target README's figures used
	$(BIN)/pip install -q -e '.[bench]' > $(VENV)/install-bench.log 2>&1 || { cat $(VENV)/install-bench.log; exit 1; }
	$(BIN)/python benchmarks/goose.py > /dev/null  # throughput.py's peer Goose: cargo, once per machine
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/live_view.py
	$(BIN)/python benchmarks/open_model.py
	$(BIN)/python benchmarks/reads.py
	$(BIN)/python benchmarks/manager_scale.py
	$(BIN)/python benchmarks/many_names.py

clean:
	rm -rf .build .mypy_cache .pytest_cache .ruff_cache

# The gRPC stubs in worker/gaggle/wire/ come from proto/ by this one command (tests check for drift).
proto: $(STAMP)
	$(BIN)/python proto/generate.py

# gaggle.Default and README's option tables are written from the option table (the fields of
# RunConfig and RoleOptions) by this one command (tests check for drift).
options: $(STAMP)
	$(BIN)/python tools/generate_options.py

# docs/terminal.png, the live view README's Quick start shows: the demo on a pseudo-terminal,
# its screen replayed through pyte, drawn as HTML and screenshotted by headless Chromium; and
# docs/live-page.png, the demo's live web page (--web) in headless Chromium.
screenshot: $(STAMP)
	$(BIN)/python tools/screenshot_terminal.py
	$(BIN)/python tools/screenshot_web.py

# The HTML report's chart library (uPlot) comes from the npm registry and ships inside the package
# with its licence and version, so a report renders offline. This refreshes that copy.
UPLOT ?= uplot
ASSETS := worker/gaggle/report/assets
report-assets:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		(cd "$$tmp" && npm pack --silent $(UPLOT) >/dev/null && tar xzf uplot-*.tgz) && \
		cp "$$tmp/package/dist/uPlot.iife.min.js" "$$tmp/package/dist/uPlot.min.css" $(ASSETS)/ && \
		cp "$$tmp/package/LICENSE" $(ASSETS)/uPlot.LICENSE && \
		node -p "require('$$tmp/package/package.json').version" > $(ASSETS)/uPlot.version && \
		echo "uPlot $$(cat $(ASSETS)/uPlot.version) in $(ASSETS)"

# The one image of the operator, the manager and the workers, from the Dockerfile as it is: built
# with docker when a daemon answers, else with podman (apt-get installs it), on a local stand-in
# for python:3.11-slim made from Debian bookworm only where that cannot be pulled (tools/image.py).
# Cached by a hash of what goes into it (~/.cache/gaggle/image, with a docker-archive of it): a
# second run builds nothing. Named localhost/gaggle:<hash> and :dev, and tagged as the chart deploys
# it (its appVersion is the package's version). Push it to your registry and install the chart with
# --set image.registry=... (see README, "Run on Kubernetes"); `make image-kind` loads it into kind.
VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' worker/gaggle/_version.py)
IMAGE ?= ghcr.io/gaggle-dev/gaggle:$(VERSION)
image: $(STAMP)
	$(BIN)/python tools/image.py --tag $(IMAGE)

image-kind: image
	kind load docker-image $(IMAGE)
