# tng: build, test and sanitizer targets.
#
# Layout the rules rely on (so new files need no Makefile edits):
#   host/<concern>/*.c   library code (engine, train, tng, text, dataset, io, eval, synth,
#                        util), archived into libtng.a and linked into every program and test
#   host/bin/tng_*.c     one program each, built at the top level as ./tng_*
#   host/engine/cpu/*.c  the CPU backend, compiled twice: float32 (the engine) and
#                        float64 (the reference that finite-difference tests use)
#   tests/test_*.c       one test binary each; `make test` runs them all
#   tests/fuzz/fuzz_*.c  libFuzzer targets (clang), built by `make fuzz`
#   bench/bench_*.c      benchmark programs, built by `make bench`
#   cuda/*.cu kernels/*.cuh  the CUDA backend, built by `make cuda` (see cuda/cuda.mk)
#   tests/gpu/*.cu tests/emu/*.cu  the GPU tests, built for the CPU emulator and run by
#                        `make test` (see tests/emu/emu.mk)

CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif
BUILD ?= build
OPT ?= -O3 -march=native
WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) -fopenmp -Ihost -I/usr/include/cjson
CFLAGS += $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDLIBS := -lopenblas -lutf8proc -lcjson -lturbojpeg -lz -lpthread -lm
NO_MPI_LDLIBS := $(LDLIBS)
# Prefer Debian's OpenMP build of OpenBLAS: BLAS then shares our OpenMP thread pool. With
# the default pthread build, its idle workers spin while our OpenMP loops run (and the
# other way round), and on a 2-core machine the two pools steal each other's cores.
OPENBLAS_OMP_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
ifneq ($(wildcard $(OPENBLAS_OMP_DIR)/libopenblas.so),)
BLAS_LDFLAGS := -L$(OPENBLAS_OMP_DIR) -Wl,-rpath,$(OPENBLAS_OMP_DIR)
endif
LDFLAGS += -fopenmp $(BLAS_LDFLAGS) $(EXTRA_LDFLAGS)
# MPI for data-parallel training (host/engine/dist.c), found through Open MPI's compiler wrapper.
# Without mpicc, dist.c builds a one-process world and `mpirun -np N` is refused.
MPICC ?= mpicc
MPI_LDLIBS := $(shell $(MPICC) --showme:link 2>/dev/null)
ifneq ($(strip $(MPI_LDLIBS)),)
MPI_CFLAGS := -DTNG_HAVE_MPI $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_NOTE := MPI: yes, flags from $(shell command -v $(MPICC)) --showme
LDLIBS += $(MPI_LDLIBS)
else
MPI_NOTE := MPI: no ($(MPICC) not found): one-process build, mpirun is refused
endif

HOST_HEADERS := $(wildcard host/*/*.h host/*/*.inc host/*/*/*.h)
LIB_SRCS := $(filter-out host/bin/% host/engine/cpu/%,$(wildcard host/*/*.c))
CPU_SRCS := $(wildcard host/engine/cpu/*.c)
LIB_OBJS := $(patsubst host/%.c,$(BUILD)/host/%.o,$(LIB_SRCS)) \
            $(patsubst host/%.c,$(BUILD)/host/%_f32.o,$(CPU_SRCS)) \
            $(patsubst host/%.c,$(BUILD)/host/%_f64.o,$(CPU_SRCS))
PROG_SRCS := $(wildcard host/bin/tng_*.c)
PROGS := $(patsubst host/bin/%.c,%,$(PROG_SRCS))
TEST_SRCS := $(wildcard tests/test_*.c)
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
VOCAB := data/cache/bpe_simple_vocab_16e6.txt.gz

.PHONY: all test asan cuda fuzz fuzzers clean vocab lexicon fixtures parity-vitb32 bench demo plot
all: # the first rule is the default goal; its prerequisites are added below

$(BUILD)/host/%.o: host/%.c $(HOST_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/host/engine/dist.o: host/engine/dist.c $(HOST_HEADERS)
	@mkdir -p $(dir $@)
	@echo "$(MPI_NOTE)"
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -c $< -o $@
# dist.c again without MPI (a world of one): the GPU test programs link it ahead of libtng.a,
# so they need no MPI library (the GPU machine's image has none): tests/emu/emu.mk, cuda.mk
$(BUILD)/host/engine/dist_single.o: host/engine/dist.c $(HOST_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/host/engine/cpu/%_f32.o: host/engine/cpu/%.c $(HOST_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTNG_REAL_DOUBLE=0 -c $< -o $@
$(BUILD)/host/engine/cpu/%_f64.o: host/engine/cpu/%.c $(HOST_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTNG_REAL_DOUBLE=1 -c $< -o $@
$(BUILD)/libtng.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

# The CUDA backend in the programs that run a model (CUDA_PROGRAMS): where nvcc, cuBLAS and NCCL
# are found (and TNG_CUDA is not 0), they link $(BUILD)/cuda/libtng_cuda.a (cuda/cuda.mk) and take
# --backend cuda; the library, the other programs and the tests stay CPU-only. --undefined makes the linker take the entry points that
# engine/backend.c and engine/dist.c refer to only weakly (a weak reference pulls nothing out of
# an archive). Without nvcc the programs are CPU-only, exactly as before.
NVCC ?= /usr/local/cuda/bin/nvcc
TNG_CUDA ?= auto
CUDA_LIBDIR ?= $(patsubst %/bin/nvcc,%,$(NVCC))/lib64
CUDA_FOUND := $(and $(wildcard $(NVCC)),$(wildcard $(CUDA_LIBDIR)/libcublas.so),\
                    $(wildcard $(CUDA_LIBDIR)/libnccl.so /usr/lib/x86_64-linux-gnu/libnccl.so))
ifneq ($(and $(filter-out 0,$(TNG_CUDA)),$(CUDA_FOUND)),)
CUDA_PROGRAMS := tng_train tng_eval tng_embed tng_negate
PROG_CUDA := $(BUILD)/cuda/libtng_cuda.a
CUDA_LINK := $(PROG_CUDA) -Wl,--undefined=backend_cuda -Wl,--undefined=backend_cuda_open \
    -Wl,--undefined=dist_attach_nccl -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) \
    -lcublasLt -lcublas -lcudart -lnccl -lstdc++
CUDA_NOTE := CUDA: yes ($(NVCC), cuBLAS and NCCL in $(CUDA_LIBDIR)): the programs take --backend cuda
else
CUDA_NOTE := CUDA: no ($(if $(filter 0,$(TNG_CUDA)),TNG_CUDA=0,nvcc, cuBLAS or NCCL not found)): CPU-only programs
endif
$(BUILD)/cuda/libtng_cuda.a: $(wildcard cuda/*.cu cuda/*.h kernels/*.cuh kernels/*.h) $(HOST_HEADERS)
	@echo "$(CUDA_NOTE)"
	$(MAKE) -f cuda/cuda.mk NVCC=$(NVCC) BUILD=$(BUILD) $@

# Programs land at the top level in the default build, inside $(BUILD) otherwise.
LINK_PROGRAM = @mkdir -p $(dir $@) && echo "link $@" && \
    $(CC) $(CFLAGS) $< $(PROG_CUDA_LINK) $(BUILD)/libtng.a $(LDFLAGS) $(LDLIBS) -o $@
ifeq ($(BUILD),build)
PROG_PATHS := $(PROGS)
CUDA_PROG_PATHS := $(filter $(CUDA_PROGRAMS),$(PROGS))
$(PROGS): %: host/bin/%.c $(BUILD)/libtng.a
	$(LINK_PROGRAM)
else
PROG_PATHS := $(addprefix $(BUILD)/,$(PROGS))
CUDA_PROG_PATHS := $(addprefix $(BUILD)/,$(filter $(CUDA_PROGRAMS),$(PROGS)))
$(PROG_PATHS): $(BUILD)/%: host/bin/%.c $(BUILD)/libtng.a
	$(LINK_PROGRAM)
endif
ifneq ($(PROG_CUDA),)
$(CUDA_PROG_PATHS): $(PROG_CUDA)
$(CUDA_PROG_PATHS): PROG_CUDA_LINK = $(CUDA_LINK)
endif
all: $(PROG_PATHS)
# where the tests find the programs of this build
BIN_DIR := $(if $(filter build,$(BUILD)),.,$(BUILD))

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/libtng.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< $(BUILD)/libtng.a $(LDFLAGS) $(LDLIBS) -o $@

# Benchmarks: bench/bench_*.c, one program each; never run by the tests.
BENCH_SRCS := $(wildcard bench/bench_*.c)
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
bench: $(BENCHES)
$(BUILD)/bench/%: bench/%.c $(BUILD)/libtng.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libtng.a $(LDFLAGS) $(LDLIBS) -o $@

vocab: $(VOCAB)
$(VOCAB):
	bash data/get_vocab.sh
# The TNG generator's concrete-noun lexicon, built from Debian's wordnet-base.
LEXICON := data/cache/lexicon.tsv
lexicon: $(LEXICON)
$(LEXICON): data/build_lexicon.py
	python3 data/build_lexicon.py --out $@

# The GPU tests on the CPU emulator (tests/emu/emu.mk) run after the host tests, unless
# EMULATED=no (make asan: the emulated runs have their own ASan and TSan modes).
EMULATED ?= yes
include tests/emu/emu.mk
TEST_RUNS := $(TESTS) $(if $(filter yes,$(EMULATED)),$(EMU_RUNS))
test: $(TEST_RUNS) $(PROG_PATHS) $(if $(filter yes,$(EMULATED)),$(EMU_PROGRAMS)) $(VOCAB) $(LEXICON)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} TNG_BIN_DIR=$(BIN_DIR) \
	    TNG_EMU_BIN_DIR=$(if $(filter yes,$(EMULATED)),$(EMU_BUILD)/bin) tests/run_all.sh $(TEST_RUNS)

# The main job on the embedded default: the synthetic world, pre-train, plain vs TNG, eval.
demo: all $(VOCAB) $(LEXICON)
	bash data/run_demo.sh

# The TNG ablation: variants fine-tuned from one base, table and curves in bench/ablation/
.PHONY: ablate
ablate: all $(VOCAB) $(LEXICON)
	BIN=$(dir $(firstword $(PROG_PATHS))) bash data/ablate.sh

# Curves of a training run: make plot RUN=runs/demo/tng
plot:
	bash data/plot_run.sh $(RUN)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer, in their own tree.
asan:
	$(MAKE) test BUILD=build-asan TNG_CUDA=0 EMULATED=no OPT="-O1 -march=native -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined"

# libFuzzer targets: clang with ASan+UBSan, in their own tree.
# Run one with: build-fuzz/fuzz/fuzz_NAME -max_total_time=600 [corpus dir]
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
fuzz:
	$(MAKE) fuzzers BUILD=build-fuzz TNG_CUDA=0 CC=clang OPT="-O1 -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" \
	    EXTRA_LDFLAGS="-fsanitize=fuzzer,address,undefined"
fuzzers: $(FUZZERS)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libtng.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< $(BUILD)/libtng.a $(LDFLAGS) $(LDLIBS) -o $@

# CUDA: compiled and linked here and in CI; run only where a GPU exists.
CUDA_SRCS := $(wildcard cuda/*.cu kernels/*.cu tests/gpu/*.cu)
cuda:
ifeq ($(strip $(CUDA_SRCS)),)
	@echo "make cuda: no CUDA sources yet (cuda/ and kernels/ are placeholders)"
else
	$(MAKE) -f cuda/cuda.mk NVCC=$(NVCC)
endif

clean:
	rm -rf build build-asan build-fuzz $(PROGS)

# Parity with transformers/open_clip. The committed fixtures are regenerated by hand (CI runs
# only test_parity on them); the ViT-B/32-shaped check writes 600 MB under data/cache.
PYTHON ?= .venv/bin/python
fixtures:
	$(PYTHON) tests/ref/make_fixtures.py --out tests/fixtures/parity
	$(PYTHON) tests/ref/make_optimizer_fixture.py --fixture tests/fixtures/parity
parity-vitb32: $(BUILD)/tests/test_parity
	$(PYTHON) tests/ref/make_fixtures.py --vitb32 data/cache/parity-vitb32
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BUILD)/tests/test_parity data/cache/parity-vitb32
