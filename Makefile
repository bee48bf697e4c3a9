SHELL := /bin/bash
# GenPulse — `make` builds build/genpulse; `make run` starts the embedded server;
# `make test` installs what is missing and runs every test under ASan + UBSan.
BUILD     ?= build
SAN       ?=
OPT       ?= -O2
CC        ?= cc
PKGS      := libmicrohttpd libsystemd jansson sqlite3 libpng libpq hiredis libcurl libcrypto vips \
             libavformat libavcodec libavutil libswscale
WARN      := -Wall -Wextra -Werror -Wshadow -Wconversion -Wno-sign-conversion -Wstrict-prototypes
CFLAGS    := -std=gnu17 -D_GNU_SOURCE $(OPT) -g $(WARN) -pthread -Iinclude -Isrc -I$(BUILD)/gen \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(SAN) $(EXTRA_CFLAGS)
LDLIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lespeak-ng -lm -pthread
LDFLAGS   := $(SAN)

SRCS      := $(sort $(shell find src -name '*.c'))
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
OBJS      := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/gen/registry_gen.o \
             $(BUILD)/obj/gen/dashboard_gen.o $(BUILD)/obj/gen/docs_gen.o
DASHBOARD := $(sort $(wildcard dashboard/*.html dashboard/*.css dashboard/*.js))
ASAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all deps run test unit fuzz blackbox release bench tsan docs clean check-docs format check-format

# deps first, then a fresh make: pkg-config flags are read when the Makefile is parsed.
all: deps
	@$(MAKE) --no-print-directory $(BUILD)/genpulse $(BUILD)/libgenpulse.a

deps:
	@sh tools/deps.sh build

$(BUILD)/gen/registry_gen.c: $(LIB_SRCS) tools/gen_registry.sh
	@mkdir -p $(dir $@)
	sh tools/gen_registry.sh $@ $(LIB_SRCS)

# The dashboard's files become C data (tools/embed.sh): the binary serves them offline.
$(BUILD)/gen/dashboard_gen.c: $(DASHBOARD) tools/embed.sh
	@mkdir -p $(dir $@)
	sh tools/embed.sh $@ $(DASHBOARD)

# GET /docs: Swagger UI (vendored) and our page, through .incbin (tools/embed_incbin.sh).
DOCS_UI   := apidocs/index.html apidocs/init.js apidocs/docs.css \
             third_party/swagger-ui/swagger-ui-bundle.js third_party/swagger-ui/swagger-ui.css \
             third_party/swagger-ui/LICENSE third_party/swagger-ui/NOTICE \
             third_party/swagger-ui/swagger-ui-bundle.js.LICENSE.txt
$(BUILD)/gen/docs_gen.c: $(DOCS_UI) tools/embed_incbin.sh
	@mkdir -p $(dir $@)
	sh tools/embed_incbin.sh $@ gp_docs_files $(DOCS_UI)

$(BUILD)/obj/gen/docs_gen.o: $(BUILD)/gen/docs_gen.c $(DOCS_UI)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/gen/dashboard_gen.o: $(BUILD)/gen/dashboard_gen.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/gen/registry_gen.o: $(BUILD)/gen/registry_gen.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libgenpulse-core.a: $(OBJS)
	ar rcs $@ $^

# The RPC client library: include/genpulse/client.h; link with -lhiredis -ljansson. Its objects
# are linked into one relocatable object whose only global symbols are the gp_client_*
# functions client.h declares, so a host program never meets our internals (gp_xmalloc, …).
CLIENT_OBJS := $(BUILD)/obj/client/client.o $(BUILD)/obj/infra/redis/conn.o \
               $(BUILD)/obj/infra/celery/wire.o \
               $(BUILD)/obj/core/util.o $(BUILD)/obj/core/base64.o
$(BUILD)/libgenpulse.a: $(CLIENT_OBJS) include/genpulse/client.h
	grep -oE '\bgp_client_[a-z_]+\(' include/genpulse/client.h | tr -d '(' | sort -u > $(BUILD)/client-exports.txt
	ld -r -o $(BUILD)/obj/libgenpulse.o $(CLIENT_OBJS)
	objcopy --keep-global-symbols=$(BUILD)/client-exports.txt $(BUILD)/obj/libgenpulse.o
	rm -f $@ && ar rcs $@ $(BUILD)/obj/libgenpulse.o

$(BUILD)/genpulse: $(BUILD)/obj/main.o $(BUILD)/libgenpulse-core.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

run: all
	$(BUILD)/genpulse serve

release:
	$(MAKE) BUILD=build-release OPT="-O2 -DNDEBUG" all

# ---- tests: unit (cmocka) + fuzz smoke (libFuzzer) + black-box (real process), all sanitized
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
test:
	@sh tools/deps.sh test
	$(MAKE) BUILD=build-asan SAN="$(ASAN)" OPT=-O1 build-asan/genpulse build-asan/libgenpulse.a unit-bins
	sh tools/check_client_lib.sh build-asan "$(ASAN)"
	sh tools/check_deploy.sh build-asan/genpulse
	$(MAKE) fuzz
	$(MAKE) BUILD=build-asan SAN="$(ASAN)" OPT=-O1 check-docs
	@svc=/tmp/genpulse-test-services-$$$$; trap 'sh tools/test-services.sh stop '$$svc EXIT; \
	  sh tools/test-services.sh start $$svc >/dev/null && set -a && . $$svc/env && set +a && \
	  $(MAKE) BUILD=build-asan SAN="$(ASAN)" OPT=-O1 unit && \
	  GENPULSE_BIN=build-asan/genpulse /usr/bin/python3 tests/blackbox/run.py

unit-bins: $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

$(BUILD)/tests/test_engines: tests/unit/test_engines.c tests/unit/ctx_stub.c $(BUILD)/libgenpulse-core.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ tests/unit/test_engines.c tests/unit/ctx_stub.c \
	  src/engines/*.c src/handlers/*.c src/core/task_errors.c src/core/media_type.c $(LDLIBS) $(shell pkg-config --libs cmocka) $(LDFLAGS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libgenpulse-core.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libgenpulse-core.a $(LDLIBS) $(shell pkg-config --libs cmocka) $(LDFLAGS)

unit: unit-bins
	@set -e; for t in $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS)); do echo "== $$t"; $$t; done

# Every tests/fuzz/fuzz_<name>.c is a libFuzzer target, run for FUZZ_SECONDS each with its
# seed corpus tests/fuzz/corpus/fuzz_<name>/ (when present).
FUZZ_SECONDS ?= 10
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang SAN="-fsanitize=address,undefined" OPT=-O1 \
	  EXTRA_CFLAGS="-Wno-unused-command-line-argument" $(FUZZ_BINS)
	@set -e -o pipefail; for bin in $(FUZZ_BINS); do name=$$(basename $$bin); \
	  mkdir -p build-fuzz/corpus/$$name; seeds=tests/fuzz/corpus/$$name; [ -d $$seeds ] || seeds=; \
	  echo "== $$name"; $$bin -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    build-fuzz/corpus/$$name $$seeds 2>&1 | tail -2; done

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libgenpulse-core.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libgenpulse-core.a $(LDLIBS) $(LDFLAGS)

# The tree's style is .clang-format; `make format` applies it to every tracked C file.
format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	@bad=$$(for f in $$(git ls-files '*.c' '*.h'); do clang-format --dry-run --Werror $$f >/dev/null 2>&1 || echo $$f; done); \
	  [ -z "$$bad" ] || { echo "not formatted (run make format):"; echo "$$bad"; exit 1; }

tsan:
	@sh tools/deps.sh test
	$(MAKE) BUILD=build-tsan CC=clang SAN="-fsanitize=thread" OPT=-O1 \
	  EXTRA_CFLAGS="-Wno-unused-command-line-argument" build-tsan/genpulse
	@svc=/tmp/genpulse-test-services-$$$$; trap 'sh tools/test-services.sh stop '$$svc EXIT; \
	  sh tools/test-services.sh start $$svc >/dev/null && set -a && . $$svc/env && set +a && \
	  GENPULSE_BIN=build-tsan/genpulse TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" /usr/bin/python3 tests/blackbox/run.py

bench:
	@sh tools/deps.sh bench
	$(MAKE) release
	GENPULSE_BIN=build-release/genpulse bash bench/run.sh
	bash bench/media.sh

# Generated docs: docs/settings.md whole, and the task error section of docs/api.md.
docs: $(BUILD)/genpulse
	$(BUILD)/genpulse settings > docs/settings.md
	$(BUILD)/genpulse errors | sh tools/splice_doc.sh docs/api.md "genpulse errors" > docs/api.md.new
	mv docs/api.md.new docs/api.md

check-docs: $(BUILD)/genpulse
	@$(BUILD)/genpulse settings | cmp -s - docs/settings.md || \
	  { echo "docs/settings.md is out of date: run make docs"; exit 1; }
	@$(BUILD)/genpulse errors | sh tools/splice_doc.sh docs/api.md "genpulse errors" | \
	  cmp -s - docs/api.md || { echo "docs/api.md (task error codes) is out of date: run make docs"; exit 1; }

clean:
	rm -rf build build-asan build-fuzz build-tsan build-release

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
