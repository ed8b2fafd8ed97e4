# emu.mk: the GPU tests on the CPU emulator of the CUDA programming model (tests/emu/), built
# with the host C++ compiler; included by the main Makefile, whose `make test` runs them.
#
#   $(EMU_BUILD)/plain/test_*   every tests/gpu/test_*.cu and tests/emu/test_*.cu
#   $(EMU_BUILD)/tsan/test_*    the kernel tests (all but test_train_step) and the emulator's
#                               own, under ThreadSanitizer: a missing barrier is a data race
#   $(EMU_BUILD)/asan/test_*    the kernel tests under AddressSanitizer: shared and global
#                               memory out of bounds
#   $(EMU_BUILD)/run/TEST.MODE  one script per (test, mode) that sets the mode and runs it
#
# The modes `make test` runs: plain (every test); reverse (threads and blocks in reverse
# order: a missing barrier or a race between blocks changes the result) and small-smem (no
# shared-memory opt-in above 48 KB: attention takes its streamed paths), every GPU test
# (test_train_step on its small model, see below); tsan and asan, the kernel tests on their
# quick shapes (and the emulator's own under tsan). The emulated programs link a one-process
# dist.c (no MPI), as the GPU programs do (cuda/cuda.mk).
#
# -ffp-contract=off: the host compiler must not fuse a*b+c where the kernels write two
# operations (g++ does in its C++ modes); the kernels' own bits stay the ones the source
# says. nvcc does contract, which the emulator therefore cannot show (tests/emu/README.md).

EMU_BUILD := $(BUILD)/emu
EMU_CXX ?= g++
# -g1: line tables, for the sanitizers' reports (a third faster to compile than -g);
# -Wno-unknown-pragmas: g++ does not know nvcc's #pragma unroll
EMU_CXXFLAGS := -x c++ -std=c++20 -D_GNU_SOURCE -g1 -fopenmp -ffp-contract=off $(WARN) \
                -Wno-unknown-pragmas -Itests/emu/include -Ihost -Itests -I. -I/usr/include/cjson
EMU_VARIANT_FLAGS_plain := -O1
EMU_VARIANT_FLAGS_tsan := -O1 -fsanitize=thread
# -fsanitize=address alone: with undefined and -fno-omit-frame-pointer added, ASan reports a
# stack-buffer-underflow at the launch lambda (a fiber reading the launcher's frame) that is
# not understood yet. -O0: twice as quick to compile, and the quick shapes run in seconds.
EMU_VARIANT_FLAGS_asan := -O0 -fsanitize=address
EMU_LINK := $(BUILD)/host/engine/dist_single.o $(BUILD)/libtng.a $(BLAS_LDFLAGS) \
            -Wl,--as-needed $(NO_MPI_LDLIBS)
EMU_HEADERS := $(wildcard tests/emu/include/*.h tests/emu/*.h kernels/*.cuh kernels/*.h cuda/*.h \
                          tests/gpu/*.h tests/*.h) $(HOST_HEADERS) tests/emu/emu.mk

EMU_GPU_TESTS := $(patsubst tests/gpu/%.cu,%,$(wildcard tests/gpu/test_*.cu))
EMU_KERNEL_TESTS := $(filter-out test_train_step,$(EMU_GPU_TESTS))
EMU_SELF_TESTS := $(patsubst tests/emu/%.cu,%,$(wildcard tests/emu/test_*.cu))

# The runs, in the order `make test` prints them.
EMU_RUNS := $(addprefix $(EMU_BUILD)/plain/,$(EMU_SELF_TESTS) $(EMU_GPU_TESTS)) \
            $(patsubst %,$(EMU_BUILD)/run/%.reverse,$(EMU_GPU_TESTS)) \
            $(patsubst %,$(EMU_BUILD)/run/%.small-smem,$(EMU_GPU_TESTS)) \
            $(patsubst %,$(EMU_BUILD)/run/%.tsan,$(EMU_SELF_TESTS) $(EMU_KERNEL_TESTS)) \
            $(patsubst %,$(EMU_BUILD)/run/%.asan,$(EMU_KERNEL_TESTS))

.PHONY: emu
emu: $(EMU_RUNS)

# one object per source and variant; backend_cuda.cu is the backend every test links
define EMU_VARIANT
$(EMU_BUILD)/$(1)/backend_cuda.o: cuda/backend_cuda.cu $(EMU_HEADERS)
	@mkdir -p $$(dir $$@)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_VARIANT_FLAGS_$(1)) -c $$< -o $$@
$(EMU_BUILD)/$(1)/%.o: tests/gpu/%.cu $(EMU_HEADERS)
	@mkdir -p $$(dir $$@)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_VARIANT_FLAGS_$(1)) -c $$< -o $$@
$(EMU_BUILD)/$(1)/%.o: tests/emu/%.cu $(EMU_HEADERS)
	@mkdir -p $$(dir $$@)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_VARIANT_FLAGS_$(1)) -c $$< -o $$@
$(EMU_BUILD)/$(1)/test_%: $(EMU_BUILD)/$(1)/test_%.o $(EMU_BUILD)/$(1)/backend_cuda.o \
                          $(BUILD)/host/engine/dist_single.o $(BUILD)/libtng.a
	$(EMU_CXX) -fopenmp $(EMU_VARIANT_FLAGS_$(1)) $$< $(EMU_BUILD)/$(1)/backend_cuda.o \
	    $(EMU_LINK) -o $$@
endef
$(eval $(call EMU_VARIANT,plain))
$(eval $(call EMU_VARIANT,tsan))
$(eval $(call EMU_VARIANT,asan))

# The whole-program check: the programs that run a model, linked with the CUDA backend built
# for the emulator (cuda/device.cu and cuda/backend_cuda.cu, plain variant) and the library as
# every program has it (dist.c with MPI, no NCCL: the emulated backend's collectives go over
# MPI, its device memory being host memory). `--backend cuda` and `mpirun -np 2` then run the
# real wiring on the CPU; tests/test_emulated_programs.c compares their runs with the CPU
# backend's. make test hands the folder to the tests as TNG_EMU_BIN_DIR.
EMU_PROGRAMS := $(addprefix $(EMU_BUILD)/bin/,tng_train tng_eval bench_step)
$(EMU_BUILD)/plain/device.o: cuda/device.cu $(EMU_HEADERS)
	@mkdir -p $(dir $@)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_VARIANT_FLAGS_plain) -c $< -o $@
EMU_PROGRAM_LINK = @mkdir -p $(dir $@) && $(CC) $(CFLAGS) $< $(EMU_BUILD)/plain/backend_cuda.o \
    $(EMU_BUILD)/plain/device.o $(BUILD)/libtng.a $(LDFLAGS) $(LDLIBS) -lstdc++ -o $@
$(EMU_BUILD)/bin/%: host/bin/%.c $(EMU_BUILD)/plain/backend_cuda.o $(EMU_BUILD)/plain/device.o $(BUILD)/libtng.a
	$(EMU_PROGRAM_LINK)
$(EMU_BUILD)/bin/%: bench/%.c $(EMU_BUILD)/plain/backend_cuda.o $(EMU_BUILD)/plain/device.o $(BUILD)/libtng.a
	$(EMU_PROGRAM_LINK)

# The repeated modes run test_train_step quick (its small model): the ViT-B/32-width model's
# kernels and shapes are ones the family tests run in every mode, and it is the slowest run.
EMU_QUICK_REPEATS := test_train_step
EMU_REPEAT_ARGS = $$(if $$(filter $(EMU_QUICK_REPEATS),$$*),quick)

# EMU_RUNNER(mode, environment, variant, arguments): the script that runs a test in a mode
define EMU_RUNNER
$(EMU_BUILD)/run/%.$(1): $(EMU_BUILD)/$(3)/% tests/emu/emu.mk
	@mkdir -p $$(dir $$@)
	@printf '#!/bin/sh\n# the $(1) mode of %s (tests/emu/emu.mk)\nexec env $(2) %s $(4)\n' \
	    $$* $$< >$$@ && chmod +x $$@
endef
EMU_REVERSE := EMU_THREAD_ORDER=reverse EMU_BLOCK_ORDER=reverse
$(eval $(call EMU_RUNNER,reverse,$(EMU_REVERSE),plain,$(EMU_REPEAT_ARGS)))
$(eval $(call EMU_RUNNER,small-smem,EMU_SMEM_OPTIN=49152,plain,$(EMU_REPEAT_ARGS)))
# The sanitizer runs on the small shared memory too: their quick shapes then cover both of
# attention's paths (K/V resident at T = 50 and 77, streamed at T = 257). One OpenMP thread
# under TSan: the CPU oracle (libtng.a, not instrumented) must not run on threads whose
# synchronisation TSan cannot see.
$(eval $(call EMU_RUNNER,tsan,OMP_NUM_THREADS=1 EMU_SMEM_OPTIN=49152,tsan,quick))
$(eval $(call EMU_RUNNER,asan,EMU_SMEM_OPTIN=49152,asan,quick))

# the objects and the binaries the run scripts start are intermediate files to make: they stay
.SECONDARY: $(foreach v,plain tsan asan,$(EMU_BUILD)/$(v)/backend_cuda.o \
              $(patsubst %,$(EMU_BUILD)/$(v)/%.o,$(EMU_GPU_TESTS) $(EMU_SELF_TESTS)) \
              $(addprefix $(EMU_BUILD)/$(v)/,$(EMU_GPU_TESTS) $(EMU_SELF_TESTS)))
