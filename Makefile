# nanoclaw — the two commands a newcomer needs are `make run` and `make test`
# (see README.md). Everything they need is installed by this Makefile and
# scripts/test-env, idempotently.

GO          ?= go
VERSION     := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION) -X github.com/nanoclaw/nanoclaw/internal/version.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Go 1.26 lives in /usr/local/go on the machines this project targets.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run test test-env unit race lint bench fuzz clean

## build: compile bin/nanoclaw (host) and bin/nanoclaw-agent (static, in-container)
build:
	@$(GO) version >/dev/null || { echo "Go 1.26 is required: https://go.dev/doc/install" >&2; exit 1; }
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/nanoclaw ./cmd/nanoclaw
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o bin/nanoclaw-agent ./cmd/nanoclaw-agent

## run: build, then start the daemon in the foreground
run: build
	./bin/nanoclaw run

## test: prepare the test machine (runtimes, base image, Claude Code), then run every test, then the concurrent packages' tests under the race detector, then the fuzz targets briefly
test: test-env
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory race
	$(MAKE) --no-print-directory fuzz

## test-env: install and start what the end-to-end tests need (root on Debian; otherwise they skip)
test-env:
	./scripts/test-env

## unit: the tests alone, without preparing the machine (end-to-end tests skip if it is not ready)
unit:
	$(GO) test ./...

# The packages whose goroutines share state. -short skips the tests that are
# slow under the detector and have nothing for it to see (one goroutine, or
# the work done in child processes).
RACE_PKGS := ./internal/router/... ./internal/queue/... ./internal/scheduler/... \
	./internal/tools/... ./internal/gateway/... ./internal/control/... ./internal/channel/...

## race: the tests of the concurrent packages under the race detector (needs cgo: a C compiler)
race:
	$(GO) test -race -short -count=1 $(RACE_PKGS)

## lint: formatting, go vet and staticcheck (as CI runs them)
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Fuzz targets of the boundaries (SECURITY.md): package:Target.
FUZZ_TARGETS := \
	internal/gateway:FuzzAPIAllowlist internal/gateway:FuzzIPCRouting \
	internal/gateway:FuzzOutputBody internal/gateway:FuzzToolBody \
	internal/egress:FuzzParseRule internal/egress:FuzzParsePolicy \
	internal/egress:FuzzCanonicalHost internal/egress:FuzzDecide \
	internal/router:FuzzFormatPromptRoundTrip internal/sanitize:FuzzTerminal
FUZZTIME ?= 4s

## fuzz: each fuzz target for FUZZTIME (default 4s), from its committed seeds
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*} || exit 1; \
	done

## bench: benchmarks, reporting figures
bench: test-env
	$(GO) test -run '^$$' -bench . -benchtime 10x ./...

clean:
	rm -rf bin
