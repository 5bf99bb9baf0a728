# qeil — plain Makefile.
#   make            library + CLI (build/)
#   make test       unit tests, release and ASan+UBSan builds (what CI runs)
#   make debug      ASan+UBSan build in build-asan/
#   make bench      benchmarks (results go to docs/benchmarks.md by hand)
#   make run        the main job on built-in defaults
#   make install    PREFIX=/usr/local: library, headers, pkg-config file, CLI

CC       ?= cc
PREFIX   ?= /usr/local
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
                     command -v glslc > /dev/null && echo yes)

.PHONY: all deps lib tests test debug bench run install clean fuzz

all: deps $(BIN)

deps:
ifneq ($(HAVE_DEPS),yes)
	sh tools/install-deps.sh
endif

lib: $(LIB)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c $(wildcard include/qeil/*.h) $(wildcard src/*/*.h src/*/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# Vulkan compute shaders: GLSL compiled by glslc into SPIR-V as a C
# initializer list ({0x07230203, ...}), which backend_vulkan.c #includes.
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

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c tests/test.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

tests: deps $(BIN) $(TESTS)

# test_sense loads a fake NVML (tests/fake_nvml.c) through the real dlopen
# path; it is not linked into anything.
$(BUILD)/tests/test_sense $(BUILD)/tests/test_sensors_cli: $(BUILD)/tests/libnvidia-ml.so.1 \
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

# Release and sanitizer builds both run every test; one summary line at the end.
test: deps
	$(MAKE) tests
	$(MAKE) debug
	sh tests/run.sh build build-asan

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

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/qeil $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/qeil/*.h $(DESTDIR)$(PREFIX)/include/qeil/
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/.*QEIL_VERSION_STRING "\(.*\)"/\1/p' include/qeil/qeil.h)|' \
	    qeil.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/qeil.pc

clean:
	rm -rf build build-asan
