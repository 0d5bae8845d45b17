# nanoclaw — the two commands a newcomer needs are `make run` and `make test`
# (see README.md). Everything they need is installed by this Makefile and the
# scripts it calls (scripts/runtime, scripts/base-image, scripts/test-env, which
# share scripts/lib.sh),
# idempotently.

GO          ?= go
VERSION     := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION) -X github.com/nanoclaw/nanoclaw/internal/version.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Go 1.26 lives in /usr/local/go on the machines this project targets.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run image test test-env unit race lint bench fuzz clean

## build: compile bin/nanoclaw (host) and bin/nanoclaw-agent (static, in-container)
build:
	@$(GO) version >/dev/null || { echo "Go 1.26 is required: https://go.dev/doc/install" >&2; exit 1; }
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/nanoclaw ./cmd/nanoclaw
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o bin/nanoclaw-agent ./cmd/nanoclaw-agent

## run: build; make sure a container runtime works and the agent image is current (installing podman, building the image, when missing), and the browser image too when a group has browser=true; then start the daemon in the foreground
# On a ready machine the checks cost about half a second: `podman info` and
# `image inspect`s. Without a credential the daemon still starts, and the
# local chat answers with the line that says how to add one.
run: build
	@./scripts/runtime
	@./bin/nanoclaw image status >/dev/null 2>&1 || { $(IMAGE_IF_NEEDED); }
	@./bin/nanoclaw image status --browser --if-used >/dev/null || { $(IMAGE_IF_NEEDED) --browser || echo "make run: the browser image could not be built (see above); groups with the browser will not start until 'nanoclaw image build --browser' succeeds" >&2; }
	./bin/nanoclaw run

## image: build the agent image when it is missing or stale, with progress (on Debian as root FROM a Debian base made offline, so no image registry is needed)
image: build
	@./scripts/runtime
	@$(IMAGE_IF_NEEDED)

# scripts/base-image prints the base it made, or nothing where it cannot (not
# Debian as root): the Dockerfile's own base is pulled then.
IMAGE_IF_NEEDED = base=$$(./scripts/base-image) && ./bin/nanoclaw image build --if-needed $${base:+--base "$$base"}

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
	internal/router:FuzzFormatPromptRoundTrip internal/sanitize:FuzzTerminal \
	internal/skills:FuzzParseFrontMatter
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
