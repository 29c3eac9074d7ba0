# The README's two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
PYTEST ?= python3 -m pytest
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: deps test-deps bench-deps build build-tests generate check-generated unit integration test run bench claim-bench microbench fuzz fuzz-quick clean

## Installs what building needs (apt packages, the Python protobuf package).
deps:
	@scripts/install-deps.sh

## Also installs the test peers: grpcio, nghttp2's tools, PostgreSQL.
test-deps:
	@scripts/install-deps.sh --test

## Also installs the benchmarks' anchors (Redis).
bench-deps:
	@scripts/install-deps.sh --bench

build: deps
	$(SWIFT) build

build-tests: deps
	$(SWIFT) build --build-tests

## Regenerates the C and Swift code of the .proto contracts, and the codegen test vectors.
generate: test-deps
	codegen/generate.sh
	python3 codegen/vectors.py

GENERATED := Sources/CStandardProtos Sources/CFlashSaleProtos Sources/CInteropProtos \
  Sources/StandardProtos/Generated Sources/FlashSaleAPI/Generated Sources/InteropAPI/Generated \
  Tests/CodegenContract/CCodegenTestProtos Tests/CodegenContract/CodegenTestAPI/Generated \
  Tests/ProtoRuntimeTests/PythonVectors.swift Tests/ProtoJSONTests/PythonJSONVectors.swift

## Fails when a committed generated file differs from what `make generate` writes.
check-generated: generate
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
	  echo "generated files differ from the committed ones (run make generate and commit):"; \
	  git status --porcelain -- $(GENERATED); git --no-pager diff --stat -- $(GENERATED); exit 1; \
	else echo "generated files are up to date"; fi

## Unit tests (swift-testing).
unit: build-tests
	$(SWIFT) test --skip-build

## Multi-process tests with real peers (grpcio, nghttp, h2load).
integration: build-tests
	$(PYTEST) -q integration

## Everything CI checks: the unit and integration tests run with a throwaway PostgreSQL cluster,
## then each fuzz target for a minute.
test: test-deps check-generated build-tests
	scripts/with-postgres.sh $(MAKE) --no-print-directory unit integration
	$(MAKE) --no-print-directory fuzz-quick

## The fuzz targets (protobuf codec, JSON transcoder, gRPC framer) for a minute each, fixed seed.
fuzz-quick: deps
	fuzz/run.sh 60 1

## The fuzz targets for longer: FUZZ_SECONDS each (default 600).
FUZZ_SECONDS ?= 600
fuzz: deps
	fuzz/run.sh $(FUZZ_SECONDS)

## Builds in release mode and starts the platform (every role, embedded SQLite store in data/,
## a demo sale) on 127.0.0.1:50051, metrics on :9464.
run: deps
	$(SWIFT) build -c release --product flashsale
	mkdir -p data
	.build/release/flashsale serve --grpc-port 50051 --metrics-port 9464 --store sqlite:data/flashsale.db --demo-sale

## The RPC runtime side by side with the reference peers (../shared/peers), see bench/rpc-compare.sh.
bench: test-deps
	bench/rpc-compare.sh

## The sale core's claim rate with our load generator (flashsale-load) on SQLite and on a
## throwaway PostgreSQL, beside Redis's Lua decrement and pgbench's plain SKIP LOCKED claim, each
## run right after ours on the same machine, in interleaved pairs (3 on SQLite, 2 on PostgreSQL:
## the machine's speed drifts between minutes); then the sold-out path and fsyncs per hold; then
## a summary of the ratios (bench/claim-summary.py). See bench/claim-bench.sh. About 10 minutes.
claim-bench: bench-deps
	@mkdir -p .build; set -o pipefail; { \
	  for pair in 1 2 3; do \
	    PARTS=claims bench/claim-bench.sh sqlite && ROUNDS=1 bash ../shared/peers/storage/redis_bench.sh || exit 1; \
	  done; \
	  PARTS="soldout fsyncs" bench/claim-bench.sh sqlite || exit 1; \
	  for pair in 1 2; do \
	    PARTS=claims scripts/with-postgres.sh bench/claim-bench.sh postgres || exit 1; \
	    ROUNDS=1 bash ../shared/peers/storage/pg_bench.sh || \
	      { echo "(the anchor's cluster did not start; once more)"; sleep 3; \
	        ROUNDS=1 bash ../shared/peers/storage/pg_bench.sh; } || exit 1; \
	  done; \
	  PARTS=soldout scripts/with-postgres.sh bench/claim-bench.sh postgres; \
	} 2>&1 | tee .build/claim-bench.log
	@python3 bench/claim-summary.py .build/claim-bench.log

## Where a call's instructions go: the in-process microbenchmark (add valgrind for counts).
microbench: deps
	$(SWIFT) build -c release --product RPCMicrobench
	.build/release/RPCMicrobench 32 5

clean:
	rm -rf .build
