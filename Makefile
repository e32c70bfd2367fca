# ember: build, run, test and benchmark emberd and emberctl.
# `make run` and `make test` are the two commands the README starts with.

SHELL := bash
GO ?= go
PREFIX ?= /usr/local
DESTDIR ?=

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w \
	-X github.com/ember-edge/ember/internal/buildinfo.Version=$(VERSION) \
	-X github.com/ember-edge/ember/internal/buildinfo.Commit=$(COMMIT) \
	-X github.com/ember-edge/ember/internal/buildinfo.BuildDate=$(BUILD_DATE)

# No cgo anywhere: yzma reaches llama.cpp through libffi at run time, so the
# same source cross-compiles to arm64 with nothing but the Go toolchain.
export CGO_ENABLED := 0

LIBDIR := lib/ember/llama
TOOLS := $(CURDIR)/.cache/tools
# Pinned code generators for `make proto`.
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2

TEST_TIMEOUT ?= 20m
FUZZTIME ?= 10s

.PHONY: all build cross run test test-unit fuzz bench proto llama-libs llama-libs-arm64 tahu-client check-libffi clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/emberd ./cmd/emberctl

cross:
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/linux-amd64/ ./cmd/emberd ./cmd/emberctl
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/linux-arm64/ ./cmd/emberd ./cmd/emberctl

# llama.cpp shared libraries for this machine, from node-llama-cpp's npm
# packages, checked against the registry's sha512 before unpacking.
llama-libs:
	@scripts/llama-libs.sh $(LIBDIR)

llama-libs-arm64:
	@ARCH=arm64 scripts/llama-libs.sh lib/ember/llama-arm64

# The Eclipse Tahu Sparkplug edge node client (npm sparkplug-client) the
# MQTT interop tests drive, pinned by daemon/mqtt/testdata/tahu's lockfile,
# into .cache/tahu. The test also runs this itself.
tahu-client:
	@scripts/tahu-client.sh

# emberd loads libffi.so.8 at start (yzma's binding needs it).
check-libffi:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libffi\.so\.8 '; then \
		echo "libffi.so.8 is missing: emberd needs it at run time. Debian/Ubuntu: apt-get install libffi8" >&2; exit 1; fi

# Runs emberd in the foreground on ember.dev.yaml: state under .ember/, a
# generated demo model (random weights: it writes gibberish), and the
# default socket, so emberctl needs no flags.
run: build llama-libs check-libffi
	@mkdir -p .ember
	@[ -f .ember/demo.gguf ] || bin/emberctl models synth --out .ember/demo.gguf
	@bin/emberd check-config --config ember.dev.yaml
	@echo
	@echo "  The demo model has random weights: it writes gibberish. For real answers put a"
	@echo "  GGUF model (e.g. Qwen2.5-0.5B-Instruct or SmolLM2-360M-Instruct, Q4_K_M) in"
	@echo "  ember.dev.yaml's models list, or: bin/emberctl models import FILE.gguf"
	@echo
	@echo "  In another terminal try:  bin/emberctl generate \"The pump on line 3 reports\""
	@echo
	bin/emberd --config ember.dev.yaml

test: llama-libs tahu-client check-libffi
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

# Each fuzz target runs for FUZZTIME (a bounded smoke run in `make test`;
# run longer by hand: make fuzz FUZZTIME=10m).
fuzz:
	@GO=$(GO) scripts/fuzz.sh ./daemon/gguf/ FuzzRead $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/engine/ FuzzTextStream $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/sparkplug/ FuzzDecode $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/pipeline/ FuzzPrepare $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/pipeline/ FuzzTopicName $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/pipeline/guard/ FuzzScan $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/jsonschema/ FuzzValidate $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/store/ FuzzEncodeJob $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/audit/ FuzzDecodeEntry $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/audit/ FuzzDecodeCheckpoint $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./sync/fleet/ FuzzVerifyEnvelope $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./sync/fleet/ FuzzVerifyKeyList $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./sync/fleet/ FuzzDecodeWatermark $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./sync/redact/ FuzzRedact $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./sync/uplink/ FuzzDecodeEnvelope $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./sync/consumer/ FuzzHandle $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/auth/ FuzzParseToken $(FUZZTIME)
	@GO=$(GO) scripts/fuzz.sh ./daemon/api/ FuzzValidators $(FUZZTIME)

bench: build llama-libs
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./daemon/bench/

proto:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	cd protos && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate

clean:
	rm -rf bin .ember

# ---- Installation (systemd service) -------------------------------------
# `make install` is DESTDIR-aware; every path below may be overridden. Units,
# sysusers.d and tmpfiles.d go under the prefix, not /lib: systemd reads
# /usr/local/lib/systemd/system, /usr/local/lib/sysusers.d and
# /usr/local/lib/tmpfiles.d as well as their /usr/lib twins, so the default
# prefix keeps a hand install out of the package manager's /usr/lib, and a
# package built with PREFIX=/usr lands where distributions put units. Only
# the config goes outside the prefix (SYSCONFDIR), and only when absent.
BINDIR ?= $(PREFIX)/bin
EMBER_LIBDIR ?= $(PREFIX)/lib/ember/llama
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
SYSCONFDIR ?= /etc
DOCDIR ?= $(PREFIX)/share/doc/ember

.PHONY: install test-arm64

# INSTALL_BUILD is where install builds the binaries (as `make build` does);
# tests point it at a temporary directory so they never race a build in bin/.
INSTALL_BUILD ?= bin

install: llama-libs
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(INSTALL_BUILD)/ ./cmd/emberd ./cmd/emberctl
	@PREFIX='$(PREFIX)' BINDIR='$(BINDIR)' EMBER_LIBDIR='$(EMBER_LIBDIR)' SYSTEMDUNITDIR='$(SYSTEMDUNITDIR)' \
		SYSUSERSDIR='$(SYSUSERSDIR)' TMPFILESDIR='$(TMPFILESDIR)' SYSCONFDIR='$(SYSCONFDIR)' DOCDIR='$(DOCDIR)' \
		DESTDIR='$(DESTDIR)' BINSRC='$(INSTALL_BUILD)' LIBSRC='$(LIBDIR)' systemd/install.sh

# Portability check: the linux/arm64 emberd, run under qemu-user (as a Pi 4
# and a Pi 5 core) with the arm64 llama.cpp libraries, must stream the same
# greedy tokens as this machine's build on the same model and prompts; so
# must the amd64 build on x86 cores without AVX2. .ci/run installs qemu.
test-arm64: llama-libs llama-libs-arm64
	@scripts/test-arm64.sh
