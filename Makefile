# xmc: extreme multi-label classification of product records (library, CLI, daemon, plugin).
#
# One plain Makefile. Sources are found by wildcard, so a new module is a new .c/.h pair in src/lib and
# a new CUnit suite is a new tests/test_<name>.c: neither needs an edit here.
#
#   make            build everything (optimised)
#   make test       build and run every CUnit suite (tests/test_*.c) and the CLI tests
#   make test-asan  the same under ASan+UBSan (separate build dir)
#   make test-faults  R19 alone under ASan: every allocation and read of the loaders and batch paths failed in turn
#   make bench      benchmarks on ../shared/data (or generated data when it is absent), and the stream bench
#                   through xmcd with a 10-minute soak (BENCH_SOAK_SECS=0 skips the soak)
#   make test-reliability  the long Kafka runs: R1, R12 and R20 through xmcd, and `xmc retrain` killed -9 24 times
#   make test-kafka the same daemon on real Apache Kafka brokers (tests/kafka/; needs Java and the broker jars)
#   make demo       install deps if needed, build, train the demo model, run it
#   make docs       rewrite the config key and metric lists of docs/xmcd.md and docs/retrain.md from the tables

CC       ?= cc
BUILD    ?= build
MODE     ?= release
PKGS     := rdkafka libprotobuf-c openblas libconfig libutf8proc jansson libxxhash libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-format-truncation -Wno-unknown-warning-option
ifeq ($(MODE),fuzz)
OPT      := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
LDSAN    := -fsanitize=address,undefined
else ifeq ($(MODE),asan)
OPT      := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN    := -fsanitize=address,undefined
else
OPT      := -O2 -g -march=x86-64-v2 -DNDEBUG
LDSAN    :=
endif
# Only the library and its tests see src/lib: the CLI, the plugin, xmcd and the examples use include/xmc/ alone.
CFLAGS   := -std=c11 -D_GNU_SOURCE -pthread -fPIC $(WARN) $(OPT) -Iinclude -I$(BUILD)/proto $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LIB_INC  := -Isrc/lib
LDLIBS   := $(PKG_LIBS) -lm -lpthread -ldl
LDFLAGS  := -pthread $(LDSAN)

# ---- sources -------------------------------------------------------------------------------------------
LIB_SRC   := $(wildcard src/lib/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC   := $(wildcard src/cli/*.c)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
XMCD_SRC  := $(wildcard src/xmcd/*.c)
XMCD_OBJ  := $(XMCD_SRC:%.c=$(BUILD)/%.o)
# `xmc retrain` (src/retrain) lives in the xmc binary with xmcd's log, stats, HTTP and config modules
RETRAIN_SRC := $(wildcard src/retrain/*.c)
RETRAIN_OBJ := $(RETRAIN_SRC:%.c=$(BUILD)/%.o)
PROTO_SRC := $(wildcard proto/*.proto)
PROTO_C   := $(PROTO_SRC:proto/%.proto=$(BUILD)/proto/%.pb-c.c)
PROTO_OBJ := $(PROTO_C:%.c=%.o)
PLUGIN_SRC:= $(wildcard plugin/*.c)
PLUGIN_OBJ:= $(PLUGIN_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL := $(wildcard tests/util/*.c)
TEST_UTIL_OBJ := $(TEST_UTIL:%.c=$(BUILD)/%.o)
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

LIBXMC    := $(BUILD)/libxmc.a
XMC_BIN   := $(BUILD)/xmc
XMCD_BIN  := $(BUILD)/xmcd
PLUGIN_SO := $(BUILD)/xmc_stage.so
XMCD_LOAD := $(BUILD)/bench/xmcd_load
TFIDF_EXPORT := $(BUILD)/bench/tfidf_export
BATCH_BENCH := $(BUILD)/bench/batch_bench

ALL := $(LIBXMC) $(XMC_BIN) $(EXAMPLE_BIN) $(TFIDF_EXPORT) $(BATCH_BENCH)
ifneq ($(XMCD_SRC),)
ALL += $(XMCD_BIN) $(XMCD_LOAD)
endif
ifneq ($(PLUGIN_SRC),)
ALL += $(PLUGIN_SO)
endif

.PHONY: all test test-asan test-valgrind test-faults test-reliability test-kafka bench demo clean deps fuzz docs
# keep the protoc-c output (make would delete it as an intermediate file and rebuild everything next time)
.SECONDARY: $(PROTO_C) $(PROTO_C:.c=.h)
all: $(ALL)

# ---- compile -------------------------------------------------------------------------------------------
# V=1 shows the full commands
Q := $(if $(V),,@)
$(BUILD)/%.o: %.c | $(PROTO_C)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(OBJ_FLAGS) -MMD -MP -c $< -o $@

$(LIB_OBJ) $(TEST_UTIL_OBJ): private OBJ_FLAGS := $(LIB_INC)
# the plugin's own symbols stay inside it; the one it exports is marked in its source (and in the version script)
$(PLUGIN_OBJ): private OBJ_FLAGS := -fvisibility=hidden

$(BUILD)/proto/%.pb-c.c: proto/%.proto
	@mkdir -p $(BUILD)/proto
	protoc-c --proto_path=proto --c_out=$(BUILD)/proto $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	$(CC) $(filter-out -Wshadow,$(CFLAGS)) -c $< -o $@

$(LIBXMC): $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

XMC_XMCD_OBJ := $(addprefix $(BUILD)/src/xmcd/,log.o stats.o http.o config.o)
$(XMC_BIN): $(CLI_OBJ) $(RETRAIN_OBJ) $(XMC_XMCD_OBJ) $(PROTO_OBJ) $(LIBXMC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(RETRAIN_OBJ) $(XMC_XMCD_OBJ) $(PROTO_OBJ) $(LIBXMC) $(LDLIBS)

$(XMCD_BIN): $(XMCD_OBJ) $(PROTO_OBJ) $(LIBXMC)
	$(CC) $(LDFLAGS) -o $@ $(XMCD_OBJ) $(PROTO_OBJ) $(LIBXMC) $(LDLIBS)

# the stream bench's load generator and independent checker (bench/stream.sh: make bench, make test-reliability)
$(XMCD_LOAD): $(BUILD)/bench/xmcd_load.o $(PROTO_OBJ)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The plugin carries its own copies of libxmc and the protobuf descriptors; the version script makes every
# symbol but xmc_stage_plugin local, so nothing of them is exported to (or interposed by) the loading process.
PLUGIN_MAP := plugin/xmc_stage.map
$(PLUGIN_SO): $(PLUGIN_OBJ) $(PROTO_OBJ) $(LIBXMC) $(PLUGIN_MAP)
	$(CC) $(LDFLAGS) -shared -Wl,--version-script=$(PLUGIN_MAP) -o $@ $(PLUGIN_OBJ) $(PROTO_OBJ) $(LIBXMC) $(LDLIBS)

# examples/*.c: programs written against the public headers alone (tests/cli/example.sh runs them)
$(BUILD)/examples/%: examples/%.c $(LIBXMC)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LIBXMC) $(LDFLAGS) $(LDLIBS)

# xmc's TF-IDF vocabulary and rows as text, to compare with PECOS's (docs/featurizer.md); it reads libxmc's internals
$(BUILD)/bench/tfidf_export.o: private OBJ_FLAGS := $(LIB_INC)
$(TFIDF_EXPORT): $(BUILD)/bench/tfidf_export.o $(LIBXMC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# in-process predict speed at batch 1 and 256, text in (bench/README.md); public headers only
$(BATCH_BENCH): $(BUILD)/bench/batch_bench.o $(LIBXMC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(LIBXMC) $(TEST_UTIL_OBJ) $(PROTO_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(LIB_INC) -Itests/util -o $@ $< $(TEST_OBJ) $(TEST_UTIL_OBJ) $(PROTO_OBJ) $(LIBXMC) $(LDFLAGS) $(TEST_LDFLAGS) $(LDLIBS) -lcunit

# R19's suite fails the Nth allocation or read: the plugin is linked in (a dlopen()ed copy would escape), and
# GNU ld's --wrap sends this link's calls of these functions to the suite's wrappers (libc's own calls stay).
FAULT_WRAP := malloc calloc realloc strdup free pthread_create fopen fread getline __getdelim open fstat stat mmap \
              munmap realpath json_loadb json_load_file
$(BUILD)/tests/test_alloc_faults: $(PLUGIN_OBJ) tests/alloc_faults.h
$(BUILD)/tests/test_alloc_faults: private TEST_OBJ := $(PLUGIN_OBJ)
$(BUILD)/tests/test_alloc_faults: private TEST_LDFLAGS := $(foreach f,$(FAULT_WRAP),-Wl,--wrap=$(f))
# The same for xmcd's own modules: every object but main.o is linked in (the suite drives xmcd_run itself).
XMCD_LIB_OBJ := $(filter-out $(BUILD)/src/xmcd/main.o,$(XMCD_OBJ))
$(BUILD)/tests/test_xmcd_alloc_faults: $(XMCD_LIB_OBJ) tests/alloc_faults.h tests/xmcd_harness.h
$(BUILD)/tests/test_xmcd_alloc_faults: private TEST_OBJ := $(XMCD_LIB_OBJ)
$(BUILD)/tests/test_xmcd_alloc_faults: private TEST_LDFLAGS := $(foreach f,$(FAULT_WRAP),-Wl,--wrap=$(f))

# xmcd's offset tracker is unit-tested alone, and so are its config key and stats tables
$(BUILD)/tests/test_xmcd_offsets: $(BUILD)/src/xmcd/offsets.o
$(BUILD)/tests/test_xmcd_offsets: private TEST_OBJ := $(BUILD)/src/xmcd/offsets.o
$(BUILD)/tests/test_xmcd_config: $(BUILD)/src/xmcd/config.o $(BUILD)/src/xmcd/log.o
$(BUILD)/tests/test_xmcd_config: private TEST_OBJ := $(BUILD)/src/xmcd/config.o $(BUILD)/src/xmcd/log.o
$(BUILD)/tests/test_xmcd_stats: $(BUILD)/src/xmcd/stats.o $(BUILD)/src/xmcd/log.o
$(BUILD)/tests/test_xmcd_stats: private TEST_OBJ := $(BUILD)/src/xmcd/stats.o $(BUILD)/src/xmcd/log.o
$(BUILD)/tests/test_retrain_window: $(BUILD)/src/retrain/window.o
$(BUILD)/tests/test_retrain_window: private TEST_OBJ := $(BUILD)/src/retrain/window.o

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(RETRAIN_OBJ:.o=.d) $(XMCD_OBJ:.o=.d) $(PLUGIN_OBJ:.o=.d) $(TEST_UTIL_OBJ:.o=.d) $(BUILD)/bench/xmcd_load.d $(BUILD)/bench/tfidf_export.d $(BUILD)/bench/batch_bench.d

# ---- tests ---------------------------------------------------------------------------------------------
# Each suite is its own program; tests/run.sh runs them all plus the shell tests and prints one summary line.
# tests/plugins/*.c are fixture stage plugins (stage.h) that the daemon's tests load: one .so each.
TEST_PLUGIN_SRC := $(wildcard tests/plugins/*.c)
TEST_PLUGIN_SO  := $(TEST_PLUGIN_SRC:tests/plugins/%.c=$(BUILD)/tests/plugins/%.so)

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c include/xmc/stage.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $< $(LDFLAGS) -lconfig

test: all $(TEST_BIN) $(TEST_PLUGIN_SO)
	@BUILD=$(BUILD) bash tests/run.sh

test-asan:
	$(MAKE) MODE=asan BUILD=build-asan test

# The CUnit suites under valgrind (memcheck, leaks); the Kafka end-to-end suite is left to test-asan there.
test-valgrind: all $(TEST_BIN) $(TEST_PLUGIN_SO)
	@BUILD=$(BUILD) VALGRIND="valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite -q" \
	  SKIP="test_xmcd test_xmcd_stage" NO_CLI=1 bash tests/run.sh

# R19 alone under ASan+UBSan: the Nth allocation or read failed for N = 1..K in the model, encoder and data
# loaders, the batch paths and the stage plugin (tests/test_alloc_faults.c), and in xmcd's modules and its
# pipeline on the mock cluster (tests/test_xmcd_alloc_faults.c; every N here, `make test` samples the pipeline).
test-faults:
	$(MAKE) MODE=asan BUILD=build-asan build-asan/tests/test_alloc_faults build-asan/tests/test_xmcd_alloc_faults \
	  build-asan/tests/plugins/upper_stage.so
	build-asan/tests/test_alloc_faults
	BUILD=build-asan XMC_AF_PIPELINE_STEPS=0 build-asan/tests/test_xmcd_alloc_faults

# ---- benchmarks and demo -------------------------------------------------------------------------------
DATA ?= ../shared/data
KAFKA_CHECK := $(BUILD)/tests/kafka/kafka_check
# The Apache Kafka 2.4.1 jars the real-broker tier and the bench's 5b start brokers from (override: make
# test-kafka KAFKA_LIBS=DIR); absent, both say so and skip
KAFKA_LIBS ?= $(abspath ../shared/kafka-broker/libs)
export KAFKA_LIBS
$(KAFKA_CHECK): $(BUILD)/tests/kafka/kafka_check.o
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: all $(KAFKA_CHECK)
	@BUILD=$(BUILD) DATA=$(DATA) bash bench/run.sh

# The longer reliability runs: R1 (kill -9 and restart) over 100,000 records, every input id accounted for; then
# through xmcd + xmc_stage.so with a 10^4-label model (bench/stream.sh reliability): R12 (20 model swaps under load)
# and R20 (a soak with kills and swaps, SOAK_SECS=240 by default); and `xmc retrain` killed -9 24 times at random
# points (tests/cli/retrain_kill.sh; `make test` runs it with 5). About 13 minutes; any failed check fails the target.
test-reliability: all $(TEST_BIN) $(TEST_PLUGIN_SO)
	XMC_R1_RECORDS=100000 XMC_R1_KILLS=5 $(BUILD)/tests/test_xmcd R1
	XMC_RETRAIN_KILLS=24 BUILD=$(BUILD) bash tests/cli/retrain_kill.sh
	@BUILD=$(BUILD) bash bench/stream.sh reliability

# The real-broker tier (tests/kafka/run.sh): Apache Kafka brokers from ../shared/kafka-broker (KAFKA_LIBS), or the
# cluster at KAFKA_BOOTSTRAP=host:port; R1 R2 R3 R6 R8 R9 R10 R12 on one broker, then leader and coordinator
# kill -9 on three. Not part of `make test`; needs Java. About 5 minutes.
test-kafka: $(XMCD_BIN) $(KAFKA_CHECK) $(BUILD)/tests/plugins/upper_stage.so
	@BUILD=$(BUILD) bash tests/kafka/run.sh

# libFuzzer targets (tests/fuzz/fuzz_*.c) built with clang into build-fuzz; each runs FUZZ_SECONDS. Inputs that
# crashed are kept under tests/fuzz/crashes/ and replayed by the same target as regression inputs.
FUZZ_SECONDS ?= 30
fuzz:
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

demo:
	@bash scripts/demo.sh

# docs/xmcd.md's config key and metric lists, rewritten from xmcd's tables (tests/cli/xmcd_docs_tables.sh checks them)
docs: $(XMCD_BIN) $(XMC_BIN)
	@bash scripts/docs-tables.sh $(XMCD_BIN) docs/xmcd.md
	@bash scripts/docs-tables.sh "$(XMC_BIN) retrain" docs/retrain.md "xmc retrain"

deps:
	@bash .ci/install-deps

clean:
	rm -rf build build-asan build-fuzz
.SECONDARY:
