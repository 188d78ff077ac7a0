# The interface of the project: make build test lint demo tools bench.
# Every target prints what it runs.

GO       ?= go
VERSION  := $(shell cat VERSION)
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH   := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/prometheus/common/version
# The same ldflags stamp the binaries here and in the Dockerfile.
LDFLAGS  := -s -w \
	-X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildUser=$(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown) \
	-X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

BINARIES := kube-spread-exporter check_kube_spread

# Debian packages the tests use: a real NRPE daemon and check_nrpe, and
# Icinga 2 to validate the shipped configuration; curl and jq run the
# README's reimage guard as written, openssl the webhook's certificate
# commands of docs/admission.md.
SYSTEM_PACKAGES := nagios-nrpe-server nagios-nrpe-plugin icinga2 curl jq openssl

# Sizes of make bench-scale; the full size is NODES=5000 PODS=150000 SERVICES=15000.
NODES    ?= 50
PODS     ?= 1500
SERVICES ?= 150
# The commits make bench-scale builds the exporter from, comma-separated, each measured on the
# same loaded cluster (EXPORTER_REV= for the working tree; EXPORTER_REV=main,HEAD compares two).
EXPORTER_REV ?= HEAD
# The exporter command lines make bench-scale measures on the same cluster, separated by ';':
# by default with its defaults (kube_spread_node_replicas of the services at risk), with
# every service's, and without any.
EXPORTER_FLAGS ?= ; --collector.node-replicas.scope=all; --no-collector.node-replicas

# Size of make fidelity: cases run with seeds FIDELITY_SEED, FIDELITY_SEED+1, ...
FIDELITY_CASES ?= 100
FIDELITY_SEED  ?= 1
# Size of make fidelity-campaign: generated campaigns, seeds as above.
FIDELITY_CAMPAIGNS ?= 50

.PHONY: all build test unit lint tools system-deps demo demo-secure bench bench-scale fidelity fidelity-campaign fuzz clean

all: lint build test

## build: the product binaries into bin/
build:
	@echo ">> building $(BINARIES) into bin/"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(BINARIES))

## tools: the control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok), Prometheus, Alertmanager, Helm and jsonnet, pinned under tools/, cached in .cache/
tools:
	@echo ">> building the pinned tools into .cache/ (cached by version)"
	@mkdir -p .cache
	flock .cache/tools.lock tools/build-all.sh

## system-deps: the Debian packages of the tests (apt-get, as root; a no-op when installed)
system-deps:
	@echo ">> checking Debian packages: $(SYSTEM_PACKAGES)"
	@if ! dpkg-query -W -f='$${Status}\n' $(SYSTEM_PACKAGES) 2>/dev/null | grep -qv '^install ok installed$$' \
		&& [ "$$(dpkg-query -W -f='$${Status}\n' $(SYSTEM_PACKAGES) 2>/dev/null | wc -l)" -eq "$(words $(SYSTEM_PACKAGES))" ]; then \
		echo ">> all installed"; \
	else \
		echo ">> apt-get install $(SYSTEM_PACKAGES)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

## lint: gofmt and go vet
lint:
	@echo ">> checking formatting (gofmt -l)"
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	@echo ">> go vet ./..."
	$(GO) vet ./...

## test: everything, with the race detector, against the real control plane; then a short fuzz
test: lint tools system-deps
	@echo ">> running all tests with the race detector"
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory fuzz

## unit: the tests that need no external tool (quick feedback while coding)
unit:
	@echo ">> running unit tests"
	$(GO) test -race -count=1 ./spread/... ./cluster/... ./collector/... ./whatif/... ./dashboards/... ./internal/check/... ./internal/nagios/... ./cmd/...

## demo: replay the 2018 mathoid outage on a local control plane
demo: tools
	@echo ">> replaying the mathoid incident of 2018-07-04"
	$(GO) run ./cmd/mathoid-replay

## demo-secure: the same, with the exporter behind TLS and basic auth
demo-secure: tools
	@echo ">> replaying the mathoid incident with a TLS and basic auth exporter"
	$(GO) run ./cmd/mathoid-replay --secure

# Fuzz targets of the parsers that take outside input, as package:target.
FUZZ_TARGETS := ./spread/:FuzzParseMinNodes ./whatif/:FuzzHandler ./internal/nagios/:FuzzParseRange ./internal/check/:FuzzRebuild ./admission/:FuzzHandler
FUZZTIME     ?= 10s
# A target that runs fewer inputs than this in FUZZTIME does not fuzz: the
# run fails. Minimising each new interesting input is capped at a number
# of runs, not Go's default minute, so that it cannot eat the whole time.
FUZZ_MIN_EXECS ?= 1000

## fuzz: run each fuzz target for FUZZTIME and fail one that runs fewer than FUZZ_MIN_EXECS inputs (their seed corpora run in every go test too)
# Go 1.26's fuzzing coordinator may fail a target with a bare "context
# deadline exceeded" when FUZZTIME ends while a worker is busy on a loaded
# machine (go.dev/issue/75804): no input failed and none is written. Such a
# run, and only such a run, is tried once more; a second failure fails.
# Each target starts from its seed corpus in a fresh cache folder: `go test
# -fuzz` would first re-run every input earlier runs on this machine kept in
# the shared Go cache, and once a few hundred had piled up that replay alone
# outlasted FUZZTIME on a loaded machine. The test binary is built once per
# package and run from the package's folder, where testdata/fuzz is.
fuzz:
	@work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	for target in $(FUZZ_TARGETS); do \
		name=$${target#*:}; pkg=$${target%%:*}; \
		echo ">> fuzzing $$name in $$pkg for $(FUZZTIME)"; \
		bin="$$work/$$(echo "$$pkg" | tr -c 'a-z0-9\n' _).test"; \
		[ -x "$$bin" ] || $(GO) test -c -o "$$bin" "$$pkg" || exit 1; \
		for attempt in 1 2; do \
			out=$$(cd "$$pkg" && "$$bin" -test.run '^$$' -test.fuzz "^$$name$$" -test.fuzztime $(FUZZTIME) \
				-test.fuzzminimizetime 200x -test.fuzzcachedir "$$work/cache-$$name" 2>&1); status=$$?; \
			if [ $$status -ne 0 ] && [ $$attempt -eq 1 ] && echo "$$out" | grep -qx '    context deadline exceeded' \
				&& ! echo "$$out" | grep -q 'Failing input written'; then \
				echo "!! $$name: Go's fuzzing coordinator failed on its own FUZZTIME deadline, no input failed (go.dev/issue/75804, fixed in Go 1.27): once more" >&2; \
				continue; \
			fi; \
			break; \
		done; \
		echo "$$out" | grep -v '^fuzz: elapsed: .*gathering' | tail -4; \
		[ $$status -eq 0 ] || { echo "$$out" >&2; exit 1; }; \
		execs=$$(echo "$$out" | sed -n 's/^fuzz: elapsed: .*, execs: \([0-9]*\) .*/\1/p' | tail -1); \
		if [ -z "$$execs" ] || [ "$$execs" -lt $(FUZZ_MIN_EXECS) ]; then \
			echo "!! $$name ran $${execs:-no} inputs in $(FUZZTIME), fewer than FUZZ_MIN_EXECS=$(FUZZ_MIN_EXECS): it does not fuzz" >&2; exit 1; \
		fi; \
		echo ">> $$name: $$execs inputs"; \
	done

## bench: the Go benchmarks of the analysis, the snapshot and the collector
bench:
	@echo ">> running Go benchmarks"
	$(GO) test -run '^$$' -bench . -benchmem ./spread/ ./cluster/ ./collector/

## bench-scale: load NODES/PODS/SERVICES into a local control plane, measure the exporter, print a docs/benchmarks.md row
bench-scale: tools
	@echo ">> scale harness: $(NODES) nodes, $(PODS) pods, $(SERVICES) services, exporter at $(or $(EXPORTER_REV),the working tree)"
	$(GO) run ./test/scale/scale-harness -nodes=$(NODES) -pods=$(PODS) -services=$(SERVICES) -exporter.rev=$(EXPORTER_REV) -exporter.flags='$(EXPORTER_FLAGS)'

## fidelity: compare the what-if's placement with what kube-scheduler does, over FIDELITY_CASES generated cases, and print the agreement
fidelity: tools
	@echo ">> placement fidelity against kube-scheduler: $(FIDELITY_CASES) cases from seed $(FIDELITY_SEED)"
	$(GO) test -count=1 -v -timeout 120m -run '^TestPlacementMatchesScheduler$$' ./test/fidelity/ -fidelity.cases=$(FIDELITY_CASES) -fidelity.seed=$(FIDELITY_SEED)

## fidelity-campaign: run FIDELITY_CAMPAIGNS generated campaigns on the control plane and compare each batch's predicted verdicts and replicas per node with what kube-scheduler did
fidelity-campaign: tools
	@echo ">> campaign fidelity against kube-scheduler: $(FIDELITY_CAMPAIGNS) campaigns from seed $(FIDELITY_SEED)"
	$(GO) test -count=1 -v -timeout 240m -run '^TestCampaignMatchesScheduler$$' ./test/fidelity/ -fidelity.campaigns=$(FIDELITY_CAMPAIGNS) -fidelity.seed=$(FIDELITY_SEED)

clean:
	@echo ">> removing bin/ (the tool cache .cache/ stays; rm -rf .cache to rebuild it)"
	rm -rf bin/
