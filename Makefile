# ezrestore: `make demo` runs a backup, a loss and a verified restore on the
# built-in lab; `make test` runs unit and end-to-end tests; `make bench` measures.
GO ?= go
BIN := bin/ezrestore
# End-to-end tests need root, debootstrap and systemd-nspawn; `make test` turns them on.
E2E ?= 1

.PHONY: all build deps test unit lint demo bench clean

all: build

# --version prints this (the commit, and -dirty for uncommitted changes).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -ldflags "-X github.com/ezrestore/ezrestore/cmd.version=$(VERSION)" -o $(BIN) ./cmd/ezrestore

deps:
	bash scripts/deps.sh

unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

test: deps build lint
	EZRESTORE_E2E=$(E2E) EZRESTORE_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 75m ./...

# staticcheck 2026.2.2 is the newest release and reads Go 1.26 code. It is
# installed once per version into GOPATH/bin/staticcheck-<version>/, so
# changing the pin installs the new one beside the old.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck-$(STATICCHECK_VERSION)/staticcheck

$(STATICCHECK):
	GOBIN=$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt -l: these files need gofmt -w:"; gofmt -l .; exit 1; }
	$(STATICCHECK) ./...

demo: deps build
	bash scripts/demo.sh

bench: deps build
	bash scripts/bench.sh $(BENCH_ARGS)

clean:
	rm -rf bin
