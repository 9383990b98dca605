# Thin wrapper: the real work is in scripts/ and CMake.
#   make run      set up everything (packages, build, PostgreSQL, certificates, admin) and run raised
#   make test     the same set-up, then unit + integration tests, again under ASan/UBSan
#   make build | bench | stop-db | format | tidy | clean
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
NPROC := $(shell nproc 2>/dev/null || echo 2)
MAKEFLAGS += --no-print-directory

.PHONY: help run test build bench stop-db format tidy clean
.PHONY: fuzz

help:
	@sed -n '2,4s/^# \{0,1\}//p' Makefile

run:
	scripts/run

test:
	scripts/dev-setup --test
	ctest --test-dir build --output-on-failure --no-tests=error
	cmake -S . -B build-asan -DSANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j$(NPROC)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir build-asan --output-on-failure --no-tests=error
	docker-compose config -q

build:
	scripts/install-deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j$(NPROC)

bench:
	scripts/install-deps --bench
	$(MAKE) --no-print-directory build
	tests/bench/run

fuzz:
	tests/fuzz/run

stop-db:
	scripts/pgcluster stop var/pg

format:
	@command -v clang-format >/dev/null || { echo "clang-format is not installed (apt-get install clang-format)" >&2; exit 1; }
	git ls-files -z -- '*.c' '*.h' | xargs -0 -r clang-format -i

tidy: build
	@command -v clang-tidy >/dev/null || { echo "clang-tidy is not installed (apt-get install clang-tidy)" >&2; exit 1; }
	clang-tidy -p build --quiet $(wildcard server/*.c common/*.c clients/*.c)

clean:
	rm -rf build build-asan
