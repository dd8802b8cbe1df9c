# loupe — build, test, benchmark.
#
#   make                 build/libloupe.a and build/loupe
#   make test            build and run the test suite
#   make demo            run the main job on shipped weights and images
#   make bench           benchmarks (loupe next to OpenBLAS / PyTorch)
#   make bench-methods   attribution methods, loupe next to PyTorch
#   make bench-evaluate  loupe evaluate next to the same protocol in PyTorch
#   make parity          PyTorch parity suite (needs Debian python3-torch)
#   make golden          regenerate tests/golden/ from PyTorch
#   make fuzz            fuzz every parser for FUZZ_SECONDS each (clang)
#   make fuzz-coverage   line/branch coverage the fuzz corpora reach (clang)
#   make valgrind        the CLI tests with every loupe run under valgrind
#   make install PREFIX=/usr/local
#   make clean
#
# Switches (any target):
#   OPENMP=0|1   (1)  OpenMP threading; 0 builds a serial library
#   NATIVE=0|1   (1)  -march=native; 0 builds a portable x86-64 binary
#   DEBUG=1           -O0 -g
#   SANITIZE=1        AddressSanitizer + UndefinedBehaviorSanitizer
#   CC=clang          any C11 compiler

CC      ?= cc
AR      ?= ar
OPENMP  ?= 1
NATIVE  ?= 1
DEBUG   ?= 0
SANITIZE ?= 0
PREFIX  ?= /usr/local
PYTHON  ?= /usr/bin/python3
BUILD   ?= build

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unknown-pragmas
CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -Iinclude -Iops
LDLIBS  := -lm

ifeq ($(DEBUG),1)
  OPT := -O0 -g
else
  OPT := -O2 -g
endif
ifeq ($(NATIVE),1)
  OPT += -march=native
endif
ifeq ($(OPENMP),1)
  CFLAGS_BASE += -fopenmp
  LDFLAGS_OMP := -fopenmp
endif
ifeq ($(SANITIZE),1)
  OPT += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  LDFLAGS_SAN := -fsanitize=address,undefined
endif

ALL_CFLAGS  := $(CFLAGS_BASE) $(OPT) $(CFLAGS)
ALL_LDFLAGS := $(LDFLAGS_OMP) $(LDFLAGS_SAN) $(LDFLAGS)

# Rebuild everything when the flags change (switching OPENMP=0, SANITIZE=1 ...).
FLAGS_STAMP := $(BUILD)/.flags
$(shell mkdir -p $(BUILD) && echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' | cmp -s - $(FLAGS_STAMP) || echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' > $(FLAGS_STAMP))

LIB_SRC   := $(wildcard ops/*.c nn/*.c formats/*.c interp/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_SRC  := $(wildcard tools/*.c)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(wildcard tests/*.c)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_SRC := $(wildcard bench/*.c)
HEADERS   := $(wildcard include/*.h ops/*.h nn/*.h formats/*.h interp/*.h tools/*.h tests/*.h)

LIB   := $(BUILD)/libloupe.a
LOUPE := $(BUILD)/loupe
TESTS := $(BUILD)/loupe_tests

# Fuzz harnesses: tests/fuzz/fuzz_NAME.c (the rules are under "fuzzing").
FUZZ_NAMES   ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY  := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)

.PHONY: all test bench demo parity golden install clean

all: $(LIB) $(LOUPE)

$(BUILD)/%.o: %.c $(HEADERS) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LOUPE): $(TOOL_OBJ) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $(TOOL_OBJ) $(LIB) $(LDLIBS)

$(TESTS): $(TEST_OBJ) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS)

# The test suite. TEST_ARGS filters by name: make test TEST_ARGS=conv
# tests/test_cli.sh then runs the loupe program end to end.
# Under the sanitizers (10x slower) the 10,000-image real-weight checks
# are left to the other builds.
TEST_ENV := LOUPE_ROOT=$(CURDIR) $(if $(filter 1,$(SANITIZE)),LOUPE_TEST_QUICK=1)
test: $(TESTS) $(LOUPE) $(FUZZ_REPLAY)
	$(TEST_ENV) ./$(TESTS) $(TEST_ARGS)
	@if [ -z "$(TEST_ARGS)" ]; then $(TEST_ENV) sh tests/test_cli.sh $(BUILD); fi
	@if [ -z "$(TEST_ARGS)" ]; then $(TEST_ENV) sh tests/test_evaluate.sh $(BUILD); fi
	@if [ -z "$(TEST_ARGS)" ]; then $(TEST_ENV) sh tests/test_report.sh $(BUILD); fi
	@if [ -z "$(TEST_ARGS)" ]; then $(TEST_ENV) sh tests/test_harden.sh $(BUILD); fi
	@if [ -z "$(TEST_ARGS)" ]; then $(TEST_ENV) sh tests/test_determinism.sh $(BUILD); fi
	@if [ -z "$(TEST_ARGS)" ]; then sh tests/fuzz/replay.sh $(BUILD) $(FUZZ_NAMES); fi

# ---- benchmarks --------------------------------------------------------
# bench/gemm compares against OpenBLAS when libopenblas-dev is installed
# (used only here, never linked into loupe).
HASH := \#
OPENBLAS_OK := $(shell printf '$(HASH)include <cblas.h>\nint main(void){return 0;}' | $(CC) -x c - -o /dev/null -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas 2>/dev/null && echo 1)
ifeq ($(OPENBLAS_OK),1)
  BENCH_BLAS_CFLAGS := -DHAVE_OPENBLAS -I/usr/include/x86_64-linux-gnu/openblas-pthread
  BENCH_BLAS_LIBS := -lopenblas
endif

$(BUILD)/bench/%: bench/%.c $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(BENCH_BLAS_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(BENCH_BLAS_LIBS) $(LDLIBS)

BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

# Programs in bench/ that take no arguments run here; bench/model is
# driven by bench/models.py (loupe next to PyTorch).
bench: $(BENCH_BIN) $(LOUPE)
	@for b in peak gemm; do \
	  if [ -x $(BUILD)/bench/$$b ]; then echo "== bench/$$b"; ./$(BUILD)/bench/$$b || exit 1; fi; \
	done
	@if $(PYTHON) -c 'import torch, torchvision' 2>/dev/null; then \
	  echo "== bench/models.py"; LOUPE_BUILD=$(BUILD) $(PYTHON) bench/models.py $(BENCH_ARGS); \
	else echo "bench/models.py skipped: no PyTorch for $(PYTHON)"; fi

# The interpretability workloads next to PyTorch (long: tens of minutes
# each; docs/PERFORMANCE.md): bench/methods.py times single methods on
# ResNet-50, bench/evaluate.py the evaluate command's metrics.
.PHONY: bench-methods bench-evaluate
bench-methods bench-evaluate: bench-%: $(LOUPE)
	LOUPE_BUILD=$(BUILD) $(PYTHON) bench/$*.py $(BENCH_ARGS)

# ---- demo ---------------------------------------------------------------
# Shipped real weights on shipped images (weights/README.md).
demo: $(LOUPE)
	@echo "== CIFAR-10 ResNet-20 on the first test image of each class"
	./$(LOUPE) predict --model weights/resnet20_cifar10.lpw --topk 2 \
	  $(foreach f,$(sort $(wildcard weights/samples/*_0000.jpg)),--image $(f))
	@echo "== MNIST ViT on one test digit of each class"
	./$(LOUPE) predict --model weights/vit_mnist.lpw --topk 1 \
	  $(foreach f,$(sort $(wildcard weights/samples/mnist_*.png)),--image $(f))
	@echo "== What ResNet-20 looked at: Grad-CAM and integrated gradients"
	@mkdir -p $(BUILD)/demo
	./$(LOUPE) explain --model weights/resnet20_cifar10.lpw --image weights/samples/cat_0000.jpg \
	  --method gradcam,integrated-gradients --png $(BUILD)/demo/cat.png --out $(BUILD)/demo/cat.npy
	@echo "== and the MNIST ViT: attention rollout"
	./$(LOUPE) explain --model weights/vit_mnist.lpw --image weights/samples/mnist_7_0000.png \
	  --method rollout,chefer --png $(BUILD)/demo/seven.png
	@echo "== Which method explains ResNet-20 best? 16 CIFAR-10 test images, three metrics"
	./$(LOUPE) evaluate --model weights/resnet20_cifar10.lpw --data tests/data/cifar10_test_first200.bin \
	  --limit 16 --method saliency,gradcam,rise,random --masks 300 --metric deletion,insertion,mufidelity \
	  --out $(BUILD)/demo/evaluate.json --report $(BUILD)/demo/report.html
	@echo "heatmaps: $(BUILD)/demo/*.png; the evaluation report: $(BUILD)/demo/report.html"

# ---- PyTorch parity --------------------------------------------------------
parity: $(LOUPE)
	@if ! $(PYTHON) -c 'import torch' 2>/dev/null; then \
	  echo "parity: skipped (no PyTorch for $(PYTHON); apt-get install python3-torch python3-torchvision)"; \
	else \
	  echo "== tests/test_convert.py (the converter and tools/lpw.py)" && \
	  LOUPE_BUILD=$(BUILD) $(PYTHON) tests/test_convert.py && \
	  LOUPE_BUILD=$(BUILD) $(PYTHON) tests/parity/run_parity.py $(PARITY_ARGS) && \
	  LOUPE_BUILD=$(BUILD) $(PYTHON) tests/parity/real_weights.py && \
	  LOUPE_BUILD=$(BUILD) $(PYTHON) tests/parity/preprocess.py && \
	  for f in tests/parity/methods_*.py; do \
	    echo "== $$f"; LOUPE_BUILD=$(BUILD) $(PYTHON) $$f || exit 1; \
	  done; \
	fi

# ---- fuzzing (tests/fuzz/README.md) --------------------------------------
# `make test` replays tests/fuzz/corpus/ and tests/fuzz/regress/ through
# replay drivers built with $(CC) and this build's flags. `make fuzz`
# builds the harnesses with clang for libFuzzer (ASan + UBSan, serial) into
# $(FUZZ_BUILD) and runs each for FUZZ_SECONDS, FUZZ_JOBS at a time;
# FUZZ_NAMES="png jpeg" picks harnesses. `make fuzz-merge` minimises the
# corpora (with the raw seeds of `make fuzz-seeds`).
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= $(BUILD)-fuzz
FUZZ_DEPS    := tests/fuzz/util.c tests/fuzz/fuzz.h
# the CLI harness links the loupe program without its main()
FUZZ_TOOL_OBJ := $(filter-out $(BUILD)/tools/loupe.o,$(TOOL_OBJ)) $(BUILD)/fuzz/loupe_nomain.o
fuzz_link = tests/fuzz/util.c $(if $(filter cli,$(1)),$(FUZZ_TOOL_OBJ)) $(LIB) $(LDLIBS)
FUZZ_MAKE = $(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPENMP=0 \
	SANITIZE=1 CFLAGS=-fsanitize=fuzzer-no-link FUZZ_NAMES='$(FUZZ_NAMES)'

.PHONY: fuzz fuzz-build fuzz-seeds fuzz-merge fuzz-coverage fuzz-replay-build

$(BUILD)/fuzz/loupe_nomain.o: tools/loupe.c $(HEADERS) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DLOUPE_NO_MAIN -c $< -o $@

$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_DEPS) $(FUZZ_TOOL_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< tests/fuzz/replay.c $(call fuzz_link,$*)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS) $(FUZZ_TOOL_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $(ALL_LDFLAGS) -o $@ $< $(call fuzz_link,$*)

$(BUILD)/fuzz/gen_seeds: tests/fuzz/gen_seeds.c $(FUZZ_DEPS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< tests/fuzz/util.c $(LIB) $(LDLIBS)

fuzz-build: $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)

fuzz:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "fuzz: $(FUZZ_CC) not found (Debian: apt-get install clang)"; exit 1; }
	@$(FUZZ_MAKE) fuzz-build
	FUZZ_JOBS=$(FUZZ_JOBS) sh tests/fuzz/run.sh run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_NAMES)

# Line and branch coverage that the committed corpora reach in the files
# each harness tests (clang source-based coverage; docs/SECURITY.md).
COV_BUILD ?= $(BUILD)-cov
fuzz-replay-build: $(FUZZ_REPLAY)

fuzz-coverage:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "fuzz-coverage: $(FUZZ_CC) not found (Debian: apt-get install clang)"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=$(COV_BUILD) CC=$(FUZZ_CC) OPENMP=0 SANITIZE=0 \
	  CFLAGS="-fprofile-instr-generate -fcoverage-mapping" LDFLAGS=-fprofile-instr-generate \
	  FUZZ_NAMES='$(FUZZ_NAMES)' fuzz-replay-build
	sh tests/fuzz/coverage.sh $(COV_BUILD) $(FUZZ_NAMES)

fuzz-seeds: $(BUILD)/fuzz/gen_seeds
	sh tests/fuzz/seeds.sh $(BUILD)/fuzz/gen_seeds $(BUILD)/fuzz/seeds

fuzz-merge: fuzz-seeds
	@$(FUZZ_MAKE) fuzz-build
	sh tests/fuzz/run.sh merge $(FUZZ_BUILD) $(BUILD)/fuzz/seeds $(FUZZ_NAMES)

# ---- valgrind ----------------------------------------------------------------
# tests/test_cli.sh with every loupe run under memcheck: no error, no
# definite or indirect leak. Its own serial, portable build: OpenMP's
# thread pool confuses valgrind, and valgrind does not know AVX-512.
VALGRIND       ?= valgrind
VALGRIND_BUILD ?= build-valgrind
VALGRIND_RUN   := $(VALGRIND) -q --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect

.PHONY: valgrind
valgrind:
	@command -v $(VALGRIND) >/dev/null 2>&1 || { echo "valgrind: not found (Debian: apt-get install valgrind)"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=$(VALGRIND_BUILD) OPENMP=0 NATIVE=0 SANITIZE=0 \
	  DEBUG=0 FUZZ_NAMES= $(VALGRIND_BUILD)/loupe
	LOUPE_RUN="$(VALGRIND_RUN)" sh tests/test_cli.sh $(VALGRIND_BUILD)

golden:
	$(PYTHON) tests/gen_golden.py

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 $(LOUPE) $(DESTDIR)$(PREFIX)/bin/loupe
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libloupe.a
	install -m 644 include/loupe.h $(DESTDIR)$(PREFIX)/include/loupe.h

clean:
	rm -rf $(BUILD)
