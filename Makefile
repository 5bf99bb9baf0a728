# qeil — plain Makefile.
#   make            library + CLI (build/)
#   make test       unit tests, release and ASan+UBSan builds (what CI runs)
#   make debug      ASan+UBSan build in build-asan/
#   make bench      benchmarks (results go to docs/benchmarks.md by hand)
#   make run        the main job on built-in defaults
#   make install    PREFIX=/usr/local: libraries (shared + static), headers,
#                   pkg-config file, CLI; DESTDIR= for staging; make uninstall

CC       ?= cc
PREFIX   ?= /usr/local
# Cross build: make CROSS=aarch64-linux-gnu- (gcc, ar of that prefix; the
# build goes to build-<prefix without its dash>, e.g. build-aarch64-linux-gnu,
# unless BUILD is given). make test-arm builds and runs it under qemu.
CROSS    ?=
ifneq ($(CROSS),)
CC       := $(CROSS)gcc
AR       := $(CROSS)ar
BUILD    ?= build-$(patsubst %-,%,$(CROSS))
# Debian 12's aarch64 gcc 12 dies (internal compiler error in
# vect_transform_reduction) on fmax reductions in test_engine.c and
# test_kernels.c; the tests need no vectorizer.
TEST_CFLAGS += -fno-tree-vectorize
endif
BUILD    ?= build
OPT      ?= -O2 -g
SAN      ?=
WARN      = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror=implicit-function-declaration
CPPFLAGS += -Iinclude -Isrc -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64
CFLAGS   += -std=c11 $(OPT) $(WARN) $(SAN) -fPIC -pthread
# No a*b+c fused behind the code's back, whatever -std/-march a user adds:
# several kernels promise the bits of their portable definitions (tests
# compare them with memcmp), which a contracted reference would break
# (clang contracts by default, gcc in GNU mode). Kept even when CFLAGS is
# given on the command line.
override CFLAGS += -ffp-contract=off
LDFLAGS  += $(SAN) -pthread
LDLIBS   += -lcjson -lm -ldl
# the HTTP server of `qeil serve` (cli/serve_*.c): the CLI links it, libqeil does not
CLI_LDLIBS = -lmicrohttpd

LIB_SRC  := $(sort $(wildcard src/*/*.c src/*/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
BENCH_SRC:= $(sort $(wildcard bench/bench_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB      := $(BUILD)/libqeil.a
BIN      := $(BUILD)/qeil

# Debian packages the build needs; installed on first build if missing.
HAVE_DEPS := $(shell test -f /usr/include/cjson/cJSON.h && test -f /usr/include/vulkan/vulkan.h && \
                     test -f /usr/include/microhttpd.h && \
                     command -v glslc > /dev/null && echo yes)

.PHONY: all deps lib tests test test-arm test-arm-build debug bench run install clean fuzz

all: deps $(BIN)

deps:
ifneq ($(HAVE_DEPS),yes)
	sh tools/install-deps.sh
endif

lib: $(LIB)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c $(wildcard include/qeil/*.h) $(wildcard src/*/*.h src/*/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# Vulkan compute shaders: GLSL compiled by glslc into SPIR-V as a C
# initializer list ({0x07230203, ...}), which backend_vulkan.c (and
# src/device/probe_vulkan.c, for the probe_*.comp) #includes.
# Nothing links Vulkan: the backend dlopens libvulkan.so.1 at run time.
GLSLC    ?= glslc
SHADER_DIR := src/backends/vulkan/shaders
SHADERS  := $(sort $(wildcard $(SHADER_DIR)/*.comp))
SPV_INC  := $(SHADERS:$(SHADER_DIR)/%.comp=$(BUILD)/shaders/%.spv.inc)

$(BUILD)/shaders/%.spv.inc: $(SHADER_DIR)/%.comp $(wildcard $(SHADER_DIR)/*.glsl)
	@mkdir -p $(dir $@)
	$(GLSLC) -O --target-env=vulkan1.1 -mfmt=c $< -o $@

$(BUILD)/src/backends/vulkan/backend_vulkan.o: $(SPV_INC)
$(BUILD)/src/backends/vulkan/backend_vulkan.o: CPPFLAGS += -I$(BUILD)/shaders
# the probe's shaders (shaders/probe_*.comp) are the probe's (docs/probe.md)
$(BUILD)/src/device/probe_vulkan.o: $(SPV_INC)
$(BUILD)/src/device/probe_vulkan.o: CPPFLAGS += -I$(BUILD)/shaders

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(CLI_LDLIBS) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c tests/test.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(TEST_CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

tests: deps $(BIN) $(TESTS)

# test_sense loads a fake NVML (tests/fake_nvml.c) through the real dlopen
# path; it is not linked into anything.
$(BUILD)/tests/test_sense $(BUILD)/tests/test_sensors_cli $(BUILD)/tests/test_actuate: $(BUILD)/tests/libnvidia-ml.so.1 \
	$(BUILD)/tests/old/libnvidia-ml.so.1
$(BUILD)/tests/libnvidia-ml.so.1: tests/fake_nvml.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 $(OPT) $(WARN) -fPIC -shared $< -o $@
$(BUILD)/tests/old/libnvidia-ml.so.1: tests/fake_nvml.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DFAKE_NVML_OLD -std=c11 $(OPT) $(WARN) -fPIC -shared $< -o $@

SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

debug: deps
	$(MAKE) BUILD=build-asan OPT="-O1 -g" SAN="$(SANFLAGS)" tests

# Release and sanitizer builds both run every test; the release build once
# more with QEIL_NO_SIMD=1 (every kernel on its portable path); one summary
# line at the end; on x86_64 then the aarch64 cross build under qemu
# (test-arm). Every run appends its counts to $(TOTALS); the last line is
# their sum. A failing run does not stop the others (the leading -), the
# sum does.
TOTALS = build/test-totals
test: deps
	$(MAKE) tests
	$(MAKE) debug
ifeq ($(shell uname -m),x86_64)
	$(MAKE) test-arm-build
endif
	@rm -f $(TOTALS)
	-QEIL_TEST_TOTALS=$(TOTALS) sh tests/run.sh build build-asan
	-QEIL_NO_SIMD=1 QEIL_TEST_TOTALS=$(TOTALS) sh tests/run.sh build
ifeq ($(shell uname -m),x86_64)
	-$(call ARM_RUN_ALL,$(TOTALS))
endif
	@sh tests/run.sh --sum $(TOTALS)

# The aarch64 cross build (build-aarch64-linux-gnu/) run under qemu-user
# with the multiarch arm64 libc (-L /; the cross toolchain's own libc hangs
# in pthread_create under this qemu). Installed by install-deps.sh --test.
# Every test executable runs under -cpu max (ASIMD, SDOT and I8MM on),
# the CLI suites and test_runtime included: they exec the aarch64 qeil
# (built here too; it links the arm64 libmicrohttpd and cJSON through
# Debian multiarch) behind $QEIL_TEST_RUNNER (tests/cli_harness.h), so no
# binfmt_misc is needed. Under the emulator the long sweeps take a stated
# subset (each test prints it): test_recover's and test_recover_plan's
# fault sweeps every 7th op and the last, the CLI out-of-memory sweeps
# every 5th allocation; tests that time things or need a GPU SKIP.
# ARM_EXCLUDE (empty) leaves executables out, e.g. make test-arm
# ARM_EXCLUDE=test_vulkan%.
# Then each feature forced off, one at a time, for the suites whose results
# go through the kernels (ARM_FEAT_TESTS: every NEON kernel against the
# reference, the engine's logits against the PyTorch references, the
# CPU-feature module seeing exactly the model's features, and the golden
# tokens and results of the phases, the sampler and the selection cascade;
# not test_runtime: its drift test times real runs against a fixed model,
# which three emulators at once on a loaded machine do not hold, so it
# runs under -cpu max only):
#   I8MM off:   -cpu cortex-a76 (ARMv8.2: SDOT, no SMMLA)
#   SDOT off:   -cpu cortex-a53 (ARMv8.0: neither; I8MM implies SDOT)
#   NEON off:   -cpu max with QEIL_NO_SIMD=1 (every kernel portable; ASIMD
#               itself is mandatory on AArch64, so no core model lacks it)
ARM_CROSS   ?= aarch64-linux-gnu-
ARM_EXCLUDE ?=
ARM_TESTS   ?= $(filter-out $(ARM_EXCLUDE),$(TEST_SRC:tests/%.c=%))
ARM_FEAT_TESTS ?= test_kernels test_engine test_core test_phases test_sampler test_select
ARM_QEMU    ?= qemu-aarch64-static -L /
ARM_BUILD    = build-$(patsubst %-,%,$(ARM_CROSS))
ARM_RUN      = QEIL_TEST_RUNNER="$(ARM_QEMU) -cpu $(1)" QEIL_TESTS="$(2)" sh tests/run.sh $(ARM_BUILD)
# the suites that exec qeil or sweep faults: a run of their own (below)
ARM_CLI_TESTS  = $(filter %_cli test_cli test_runtime test_recover test_recover_plan,$(ARM_TESTS))
ARM_RUN_MAX    = $(call ARM_RUN,max,$(filter-out $(ARM_CLI_TESTS),$(ARM_TESTS)))
ARM_RUN_MAXCLI = $(call ARM_RUN,max,$(ARM_CLI_TESTS))
ARM_RUN_A76    = $(call ARM_RUN,cortex-a76,$(ARM_FEAT_TESTS))
ARM_RUN_A53    = $(call ARM_RUN,cortex-a53,$(ARM_FEAT_TESTS))
ARM_RUN_NOSIMD = QEIL_NO_SIMD=1 $(call ARM_RUN,max,$(ARM_FEAT_TESTS))
# The five runs at once (-cpu max in two: the library suites, and the CLI
# and fault-sweep suites, so that neither is the long pole), each into its
# own log, printed in order when all are done: each is one qemu process
# (one core), so on 2 cores their wall time is about half their sum.
# $(1): the file their counts go to.
ARM_LOG = $(ARM_BUILD)/test-arm-$(1).log
ARM_RUN_ALL = rm -f $(call ARM_LOG,*); \
	QEIL_TEST_TOTALS=$(1) $(ARM_RUN_MAX) > $(call ARM_LOG,max) 2>&1 & \
	QEIL_TEST_TOTALS=$(1) $(ARM_RUN_MAXCLI) > $(call ARM_LOG,max-cli) 2>&1 & \
	QEIL_TEST_TOTALS=$(1) $(ARM_RUN_A76) > $(call ARM_LOG,a76) 2>&1 & \
	QEIL_TEST_TOTALS=$(1) $(ARM_RUN_A53) > $(call ARM_LOG,a53) 2>&1 & \
	QEIL_TEST_TOTALS=$(1) $(ARM_RUN_NOSIMD) > $(call ARM_LOG,nosimd) 2>&1 & \
	wait; for r in max max-cli a76 a53 nosimd; do echo "== aarch64 under qemu: $$r"; cat $(call ARM_LOG,$$r); done
# the arm64 libraries the aarch64 qeil links (multiarch: cJSON, libmicrohttpd)
ARM_LIBDIR  ?= /usr/lib/aarch64-linux-gnu
test-arm-build:
	@command -v $(ARM_CROSS)gcc > /dev/null && command -v $(firstword $(ARM_QEMU)) > /dev/null && \
	    test -f $(ARM_LIBDIR)/libcjson.so && test -f $(ARM_LIBDIR)/libmicrohttpd.so || \
	    sh tools/install-deps.sh --test
	$(MAKE) CROSS=$(ARM_CROSS) BUILD=$(ARM_BUILD) $(ARM_BUILD)/qeil $(ARM_TESTS:%=$(ARM_BUILD)/tests/%)

ARM_TOTALS = $(ARM_BUILD)/test-totals
test-arm: test-arm-build
	@rm -f $(ARM_TOTALS)
	-$(call ARM_RUN_ALL,$(ARM_TOTALS))
	@sh tests/run.sh --sum $(ARM_TOTALS)

bench: deps $(BIN) $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

# libFuzzer targets (needs clang); the corpora also run as plain regression
# tests inside make test.
fuzz:
	sh tests/fuzz/build.sh

# The main job on built-in defaults: plan the default platform, then a short
# end-to-end demo with the committed demo model (docs/demo-model.md): five
# arithmetic problems, up to 16 samples each, the cascade against the
# standard and v1 configurations, with the energy/latency report.
DEMO_MODEL := models/qeil-demo.gguf
DEMO_TASKS := data/tasks/arith.jsonl
run: all
	./$(BIN) plan
	./$(BIN) eval -m $(DEMO_MODEL) --tasks $(DEMO_TASKS) --limit 5 --samples 16 --compare -v

# ---------------------------------------------------------------------------
# Shared library, install and uninstall (issue #17)
# ---------------------------------------------------------------------------
# libqeil.so.MAJOR.MINOR.PATCH (soname libqeil.so.MAJOR, dev link libqeil.so)
# beside libqeil.a, from the same objects. They are compiled with
# -fvisibility=hidden: only the functions the public headers mark QEIL_API
# are exported (tests/install_test.sh compares `nm -D` with the headers).
# Static links (the CLI, tests, benchmarks) still see every symbol.
VERSION := $(shell sed -n 's/^\#define QEIL_VERSION_STRING "\(.*\)"/\1/p' include/qeil/qeil.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libqeil.so.$(SOMAJOR)
SHLIB   := $(BUILD)/libqeil.so.$(VERSION)
# libraries the shared library records (DT_NEEDED); -z defs makes a missing
# one a link error (not with sanitizers, whose runtime the executable brings)
SHLIB_LDFLAGS = -shared -Wl,-soname,$(SONAME) $(if $(SAN),,-Wl,-z,defs)

$(LIB_OBJ): override CFLAGS += -fvisibility=hidden

$(SHLIB): $(LIB_OBJ)
	$(CC) $(SHLIB_LDFLAGS) $(LDFLAGS) $(LIB_OBJ) $(LDLIBS) -o $@
	ln -sf libqeil.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libqeil.so

all lib tests: $(SHLIB)

BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
HEADERS      := $(notdir $(wildcard include/qeil/*.h))

.PHONY: uninstall

# Staged installs (packaging): make install DESTDIR=/tmp/stage PREFIX=/usr;
# qeil.pc names the final paths, without DESTDIR. Installing into a system
# directory, run ldconfig afterwards.
install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/qeil $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libqeil.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libqeil.so
	install -m 644 $(addprefix include/qeil/,$(HEADERS)) $(DESTDIR)$(INCLUDEDIR)/qeil/
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' qeil.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/qeil.pc

# Removes what install wrote (same PREFIX/DESTDIR), and include/qeil when
# that leaves it empty; the standard directories stay.
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libqeil.a $(DESTDIR)$(LIBDIR)/libqeil.so.$(VERSION) \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libqeil.so \
	      $(DESTDIR)$(BINDIR)/qeil $(DESTDIR)$(PKGCONFIGDIR)/qeil.pc \
	      $(addprefix $(DESTDIR)$(INCLUDEDIR)/qeil/,$(HEADERS))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/qeil 2>/dev/null
# ---------------------------------------------------------------------------
# end of the shared library / install block

clean:
	rm -rf build build-asan
