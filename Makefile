# clinicbox: the two commands a newcomer needs are `make demo` and `make test`.
GO      ?= go
PKGS    ?= ./...
TESTFLAGS ?= -race -count=1 -timeout 60m

.PHONY: all build test setup demo bench torture image smoke vet

all: build

setup:
	./.ci/setup

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

# Runs every test, installing what the integration tests need first.
test: setup
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) $(PKGS)
