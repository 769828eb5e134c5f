# The two commands a newcomer needs: `make demo` and `make test`.
SWIFT ?= swift
TSAN_SCRATCH := .build-tsan

.PHONY: deps demo test check-protos build-tests build-tests-tsan test-unit test-tsan bench bench-channel bench-client bench-memory bench-idle format
.PHONY: docs check-api api-baseline

deps:
	@scripts/install-deps.sh

## Runs the quick-start (connect, create, insert, search) against an embedded milvus-lite that
## this target starts and stops, then the reconnect demo (which restarts its own milvus-lite).
## The examples are a package of their own (Examples/Package.swift), built in Examples/.build.
demo: deps
	$(SWIFT) build --package-path Examples --product milvex-quickstart
	$(SWIFT) build --package-path Examples --product milvex-demo
	scripts/with-milvus-lite.sh Examples/.build/debug/milvex-quickstart
	MILVUS_LITE=.venv/bin/milvus-lite Examples/.build/debug/milvex-demo

## Runs the whole suite, then again under ThreadSanitizer. Both runs share one set of real
## Milvus servers (plain, TLS, mutual TLS), started after the builds and stopped when the runs
## end, also on failure (scripts/milvus-peers.sh). The quick checks come first so that a
## finding fails the run in seconds: lint and the proto check before any build, the API listing
## and the documentation right after the debug build, before the ThreadSanitizer build. The
## examples' package (the search service test runs its binary) and the downstream application
## (Tests/Downstream: the library beside Hummingbird 2 and grpc-swift-2) build in between.
test: deps lint check-protos check-names
	$(MAKE) build-tests
	$(MAKE) check-api docs
	$(MAKE) build-examples build-downstream
	$(MAKE) build-tests-tsan echo-server
	scripts/milvus-peers.sh run -- $(MAKE) test-unit test-tsan

## Fails when a field number, type or enum value in Protos/ differs from Milvus's wire format.
check-protos: deps
	.venv/bin/python scripts/check-protos.py

## The gRPC C++ echo server (Benchmarks/cpp-server): a plain-gRPC test peer and the
## benchmarks' server.
.PHONY: echo-server
echo-server: deps
	$(MAKE) -C Benchmarks/cpp-server ../.build-cpp/generic_server

## Builds the DocC archive (.build/docs/MilvexReactor.doccarchive): the catalog
## Docs/MilvexReactor.docc, the guides Docs/*.md as articles and the public API. Fails on any DocC
## warning, such as a ``Symbol`` link that does not resolve (scripts/docs.sh).
docs: build-tests
	SWIFT=$(SWIFT) scripts/docs.sh

## Fails with a diff when the public API of MilvexReactor differs from API/MilvexReactor.api.txt
## (one declaration per line, without the generated protobuf messages; scripts/api.sh).
check-api: build-tests
	SWIFT=$(SWIFT) scripts/api.sh check

## Rewrites API/MilvexReactor.api.txt after an intended API change; commit it with the change.
api-baseline: build-tests
	SWIFT=$(SWIFT) scripts/api.sh write

## Fails when a target or product name of ours lacks "Milvex" (CLibEV apart) or also appears
## in the graph of Hummingbird, Vapor, grpc-swift-2, swift-nio-ssl, async-http-client or
## swift-crypto, or among applications' usual target names (resolves them, builds nothing).
.PHONY: check-names
check-names:
	SWIFT=$(SWIFT) python3 scripts/check-names.py

## Builds the examples' package (Examples/): milvex-quickstart, milvex-demo and
## milvex-search-service, in Examples/.build.
.PHONY: build-examples
build-examples:
	$(SWIFT) build --package-path Examples

## Builds Tests/Downstream, an application that depends on this package by path beside
## Hummingbird 2 and grpc-swift-2, with targets named like an application's (Demo, App,
## COpenSSL…): a name that collides, a missing product or a requirement that cannot resolve
## fails here. Its own scratch path (Tests/Downstream/.build), built once per `make test`;
## then its Demo runs against milvus-lite: a host-owned libev loop with the library embedded
## through the CLibEV product, driving the callback forms; and its tests run, with the
## MilvexTesting product.
.PHONY: build-downstream
build-downstream: deps
	$(SWIFT) build --package-path Tests/Downstream --build-tests
	scripts/with-milvus-lite.sh Tests/Downstream/.build/debug/Demo
	$(SWIFT) test --package-path Tests/Downstream --skip-build

# test-unit, test-tsan and test-asan start the Milvus servers themselves when run alone, and
# use the outer run's when `make test` runs them (MILVEX_MILVUS_*_PORT already set).
MILVUS_PEERS := scripts/milvus-peers.sh run --

build-tests:
	$(SWIFT) build --build-tests

test-unit: build-tests
	$(MILVUS_PEERS) $(SWIFT) test --skip-build

# SWIFT_BACKTRACE=enable=no: the Swift backtracer and TSan clash on fork.
build-tests-tsan:
	SWIFT_BACKTRACE=enable=no $(SWIFT) build --build-tests --sanitize=thread --scratch-path $(TSAN_SCRATCH)

test-tsan: build-tests-tsan
	SWIFT_BACKTRACE=enable=no TSAN_OPTIONS=halt_on_error=1 MILVEX_SANITIZER=thread \
	  $(MILVUS_PEERS) $(SWIFT) test --skip-build --sanitize=thread --scratch-path $(TSAN_SCRATCH)

## Runs the whole suite under AddressSanitizer with leak detection; fails on any error or leak.
## The suppressions cover only XCTest's and Foundation's own leaks and pointers LeakSanitizer
## cannot read in Swift objects (Docs/reliability.md, "AddressSanitizer"). Not part of `make test`.
.PHONY: test-asan
test-asan:
	SWIFT_BACKTRACE=enable=no $(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 MILVEX_SANITIZER=address \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan-suppressions.txt \
	  $(MILVUS_PEERS) $(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan

## Prints the benchmark figures recorded in Docs/benchmarks.md.
bench: deps
	cd Benchmarks && $(SWIFT) build -c release --product ReactorBenchmark
	Benchmarks/.build/release/ReactorBenchmark

## The side-by-side channel benchmark (Benchmarks/README.md): milvex vs h2load vs grpc-swift-2.
bench-channel:
	@scripts/install-deps.sh --bench
	$(MAKE) -C Benchmarks/cpp-server
	cd Benchmarks && $(SWIFT) build -c release
	Benchmarks/run-channel-bench.py --milvex-client Benchmarks/.build/release/MilvexChannelBench \
	  --milvex-async-client Benchmarks/.build/release/MilvexAsyncChannelBench

## The search service under load (Benchmarks/run-service-bench.py, issue 16): wrk at 64
## connections for 30 s against Examples/SearchService with two Milvus endpoints (two proxies in
## front of one milvus-lite), then again with one endpoint killed and restarted mid-run.
.PHONY: bench-service
bench-service: deps
	@scripts/install-deps.sh --bench
	$(SWIFT) build --package-path Examples -c release --product milvex-search-service
	Benchmarks/run-service-bench.py --service Examples/.build/release/milvex-search-service

## The channel benchmark over TLS (Benchmarks/README.md): the same clients over TLS 1.3 against
## the echo server with a test certificate, plus connection set-up time; medians of 3 runs.
.PHONY: bench-channel-tls
bench-channel-tls:
	@scripts/install-deps.sh --bench
	$(MAKE) -C Benchmarks/cpp-server
	cd Benchmarks && for product in MilvexChannelBench MilvexAsyncChannelBench GRPCSwiftClientBench; do \
	  $(SWIFT) build -c release --product $$product || exit 1; done
	Benchmarks/run-channel-bench.py --tls --repeat 3 \
	  --milvex-client Benchmarks/.build/release/MilvexChannelBench \
	  --milvex-async-client Benchmarks/.build/release/MilvexAsyncChannelBench

## Resident memory and idle CPU per connection: IDLE_CONNECTIONS (10,000) idle connections to the
## C++ echo server for IDLE_SECONDS (10).
IDLE_CONNECTIONS ?= 10000
IDLE_SECONDS ?= 10
bench-idle:
	@scripts/install-deps.sh --bench
	$(MAKE) -C Benchmarks/cpp-server
	cd Benchmarks && $(SWIFT) build -c release --product MilvexIdleConnections
	Benchmarks/.build/release/MilvexIdleConnections --connections $(IDLE_CONNECTIONS) \
	  --idle-seconds $(IDLE_SECONDS) --server Benchmarks/.build-cpp/generic_server

## The same, then the server killed (SIGKILL) and started again on its port after RESTART_PAUSE
## (3) seconds: time until all are back, attempts per 100 ms and per second as the clients made
## them and the server accepted them (Benchmarks/README.md).
RESTART_PAUSE ?= 3
.PHONY: bench-many
bench-many:
	@scripts/install-deps.sh --bench
	$(MAKE) -C Benchmarks/cpp-server
	cd Benchmarks && $(SWIFT) build -c release --product MilvexIdleConnections
	Benchmarks/.build/release/MilvexIdleConnections --connections $(IDLE_CONNECTIONS) \
	  --idle-seconds $(IDLE_SECONDS) --server Benchmarks/.build-cpp/generic_server \
	  --restart-pause $(RESTART_PAUSE) --accept-counter Benchmarks/.build-cpp/accept_counter.so

## Resident memory around 5,000 short-lived connections (MEMORY_PROBE_CYCLES to change).
bench-memory:
	cd Benchmarks && $(SWIFT) build -c release --product MilvexMemoryProbe
	Benchmarks/.build/release/MilvexMemoryProbe

## What the typed Milvus layer costs: per call on top of the channel, and local encoding (then
## pymilvus encoding the same inserts, for comparison).
bench-client:
	@scripts/install-deps.sh --bench
	$(MAKE) -C Benchmarks/cpp-server
	cd Benchmarks && $(SWIFT) build -c release --product MilvexClientBench
	taskset -c 0 Benchmarks/.build/release/MilvexClientBench --server Benchmarks/.build-cpp/generic_server --server-cpu 1
	taskset -c 0 .venv/bin/python Benchmarks/pymilvus_encode_bench.py

## The fault soak (Benchmarks/README.md): SOAK_SECONDS (default 600) of calls through a proxy
## that breaks the network, with server kills; fails on a lost, duplicated or late call.
## SOAK_SEED repeats a run's fault plan. Not part of `make test`.
SOAK_SECONDS ?= 600
.PHONY: soak
soak:
	@scripts/install-deps.sh --bench
	$(MAKE) -C Benchmarks/cpp-server
	cd Benchmarks && $(SWIFT) build -c release --product MilvexSoak
	Benchmarks/.build/release/MilvexSoak --seconds $(SOAK_SECONDS) $(if $(SOAK_SEED),--seed $(SOAK_SEED))

## Fails on any swift format finding (.swift-format) in Sources, Tests, Examples,
## Benchmarks/Sources and Fuzz, without the generated protobuf messages (scripts/format.sh).
.PHONY: lint
lint:
	SWIFT=$(SWIFT) scripts/format.sh lint

## Reformats the files `make lint` checks, in place.
format:
	SWIFT=$(SWIFT) scripts/format.sh format

## Fuzzes the config parser, the gRPC response parser and the Milvus result decoding for
## FUZZ_SECONDS (default 60) seconds each (Docs/reliability.md, "Fuzzing"). `make test` replays
## the committed corpora without instrumentation.
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh
