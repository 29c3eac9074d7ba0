# The two set-up commands of the README are `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift

.PHONY: deps test-deps build generate check-generated test

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

build: deps
	$(SWIFT) build

## Regenerates the C and Swift code of the .proto contracts, and the codegen test vectors.
generate: test-deps
	codegen/generate.sh
	python3 codegen/vectors.py

## Fails when a committed generated file differs from what `make generate` writes.
check-generated: generate
	@git status --porcelain -- Sources Tests | grep . && { echo "generated files differ from the committed ones (run make generate)"; git diff --stat -- Sources Tests; exit 1; } || echo "generated files are up to date"

test: test-deps check-generated
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
