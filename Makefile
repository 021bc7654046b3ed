# ezrestore: `make demo` runs a backup, a loss and a verified restore on the
# built-in lab; `make test` runs unit and end-to-end tests; `make bench` measures.
GO ?= go
BIN := bin/ezrestore
# End-to-end tests need root, debootstrap and systemd-nspawn; `make test` turns them on.
E2E ?= 1

.PHONY: all build deps test unit demo bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ezrestore

deps:
	bash scripts/deps.sh

unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

test: deps build
	$(GO) vet ./...
	EZRESTORE_E2E=$(E2E) EZRESTORE_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 75m ./...

demo: deps build
	bash scripts/demo.sh

bench: deps build
	bash scripts/bench.sh

clean:
	rm -rf bin
