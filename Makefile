# The README's two commands: `make demo` and `make test`. Everything else is
# a step they use. Each target installs what is missing first.
BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
SERVE      ?= 1
CMAKE_ARGS ?=

.PHONY: all deps build test test-asan test-tsan fuzz demo bench format format-check clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCHUB_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Unit, protocol, server conformance, end-to-end, fault and browser tests,
# then the whole suite again under ASan+UBSan, the sender tests under TSan,
# and a bounded run of each fuzzer.
test: format-check build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory test-asan test-tsan fuzz

test-asan: deps
	@cmake -S . -B $(BUILD)-asan -DCHUB_WERROR=ON -DCHUB_SANITIZE=address,undefined >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir $(BUILD)-asan --output-on-failure -j $(JOBS) -LE nosan

test-tsan: deps
	@cmake -S . -B $(BUILD)-tsan -DCHUB_WERROR=ON -DCHUB_SANITIZE=thread >/dev/null
	@cmake --build $(BUILD)-tsan -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1 ctest --test-dir $(BUILD)-tsan --output-on-failure -j $(JOBS) -L sender

fuzz: deps
	@CC=clang cmake -S . -B $(BUILD)-fuzz -DCHUB_FUZZ=ON >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzzers
	@./scripts/run-fuzzers.sh $(BUILD)-fuzz

demo: build
	@SERVE=$(SERVE) BUILD=$(BUILD) ./scripts/demo.sh

bench: build
	@./bench/run.sh $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp' '*.hpp')

# The C and C++ sources must be as clang-format leaves them.
format-check: deps
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
