# cuda.mk: the CUDA backend, its GPU tests and the kernel benchmark (run by `make cuda`).
#
#   build/cuda/libtng_cuda.a     backend_cuda(), every kernel, the NCCL collectives and the
#                                device choice (backend_cuda_open)
#   build/cuda/test_<family>     each kernel family against the CPU op, one program per
#                                tests/gpu/test_*.cu (needs a GPU to run; `make test` runs
#                                them on the CPU emulator, tests/emu/)
#   build/cuda/test_train_step   one whole training step, CPU vs CUDA (needs a GPU)
#   build/cuda/bench_kernels     kernel timings vs measured ceilings (needs a GPU)
#   build/cuda/bench_step        bench/bench_step.c with the CUDA backend: whole training
#                                steps in any precision (needs a GPU for --backend cuda)
#   build/cuda/bin/tng_*         tng_train, tng_eval, tng_synth without MPI, for the device
#   build/cuda-pack.tar.xz       `devpack`: all of it and its libraries, to carry to a GPU
#
# Compiles and links anywhere nvcc exists; the programs run only where a GPU does.
# GENCODE defaults to the H200 (sm_90) alone, which keeps the build quick.

NVCC ?= /usr/local/cuda/bin/nvcc
BUILD ?= build
CUDA_BUILD := $(BUILD)/cuda
GENCODE ?= -gencode arch=compute_90,code=sm_90
NVCCFLAGS := -O3 -std=c++20 $(GENCODE) -lineinfo -Ihost -I. \
             -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter,-fopenmp $(EXTRA_NVCCFLAGS)
# --as-needed: the GPU programs use only part of libtng.a, so they do not need every
# library at run time (the device machine may lack cjson or turbojpeg). No MPI: they link
# the one-process dist.c (dist_single.o, main Makefile) ahead of libtng.a, whose dist.o
# would need libmpi, which the device machine's image does not have.
LDLIBS := -lcublasLt -lcublas -lcudart -lnccl -lopenblas -lutf8proc -lcjson -lturbojpeg -lz -lpthread -lm -lgomp
SINGLE_DIST := $(BUILD)/host/engine/dist_single.o
LDFLAGS := -Xlinker --as-needed
# the same OpenBLAS build as the main Makefile (the OpenMP one, sharing our thread pool)
OPENBLAS_OMP_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
ifneq ($(wildcard $(OPENBLAS_OMP_DIR)/libopenblas.so),)
LDFLAGS += -L$(OPENBLAS_OMP_DIR) -Xlinker -rpath,$(OPENBLAS_OMP_DIR)
endif

KERNEL_HEADERS := $(wildcard kernels/*.cuh kernels/*.h) $(wildcard cuda/*.h) $(wildcard host/*/*.h host/*/*/*.h)
GPU_TESTS := $(patsubst tests/gpu/%.cu,$(CUDA_BUILD)/%,$(wildcard tests/gpu/test_*.cu))
DEVICE_PROGRAMS := $(CUDA_BUILD)/bench_step $(addprefix $(CUDA_BUILD)/bin/,tng_train tng_eval tng_synth)

.PHONY: all
all: $(CUDA_BUILD)/libtng_cuda.a $(GPU_TESTS) $(CUDA_BUILD)/bench_kernels $(DEVICE_PROGRAMS)

# The host library is the main Makefile's; it is rebuilt through it when a host source changes.
$(BUILD)/libtng.a $(SINGLE_DIST): $(wildcard host/*/*.c host/*/*.h host/*/*/*.c host/*/*/*.h)
	$(MAKE) -f Makefile BUILD=$(BUILD) $@

$(CUDA_BUILD)/backend_cuda.o: cuda/backend_cuda.cu $(KERNEL_HEADERS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CUDA_BUILD)/collective_nccl.o: cuda/collective_nccl.cu $(KERNEL_HEADERS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CUDA_BUILD)/device.o: cuda/device.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CUDA_BUILD)/libtng_cuda.a: $(CUDA_BUILD)/backend_cuda.o $(CUDA_BUILD)/collective_nccl.o $(CUDA_BUILD)/device.o
	rm -f $@ && ar rcs $@ $^

$(CUDA_BUILD)/test_%: tests/gpu/test_%.cu $(wildcard tests/gpu/*.h tests/*.h) \
                      $(KERNEL_HEADERS) $(CUDA_BUILD)/libtng_cuda.a $(SINGLE_DIST) $(BUILD)/libtng.a
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -Itests $< $(CUDA_BUILD)/libtng_cuda.a $(SINGLE_DIST) $(BUILD)/libtng.a \
	    $(LDFLAGS) $(LDLIBS) -o $@

$(CUDA_BUILD)/bench_kernels: bench/bench_kernels.cu $(KERNEL_HEADERS) \
                             $(CUDA_BUILD)/libtng_cuda.a $(SINGLE_DIST) $(BUILD)/libtng.a
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $< $(CUDA_BUILD)/libtng_cuda.a $(SINGLE_DIST) $(BUILD)/libtng.a \
	    $(LDFLAGS) $(LDLIBS) -o $@

# Host C programs with the CUDA backend and the one-process dist.c (no MPI: the device image has
# none): bench_step, and the programs bench/gpu_programs.sh runs (build/cuda/bin/). Compiled by
# the host compiler, linked like the GPU tests, the linker told to take the backend's entry
# points, to which engine/backend.c refers only weakly.
HOST_CFLAGS := -std=c11 -D_GNU_SOURCE -O3 -g -Wall -Wextra -Werror -Wno-unused-parameter -fopenmp \
               -Ihost -I/usr/include/cjson
$(CUDA_BUILD)/bench_step.o: bench/bench_step.c $(wildcard host/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c $< -o $@
$(CUDA_BUILD)/bin/%.o: host/bin/%.c $(wildcard host/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c $< -o $@

$(DEVICE_PROGRAMS): %: %.o $(CUDA_BUILD)/libtng_cuda.a $(SINGLE_DIST) $(BUILD)/libtng.a
	$(NVCC) $(NVCCFLAGS) $< $(CUDA_BUILD)/libtng_cuda.a -Xlinker --undefined=backend_cuda \
	    -Xlinker --undefined=backend_cuda_open $(SINGLE_DIST) $(BUILD)/libtng.a $(LDFLAGS) $(LDLIBS) -o $@

# devpack: what a GPU machine whose image lacks this project's libraries needs, in one file
# under the 64 MiB a device call carries: build/cuda-pack.tar.xz holds the GPU tests, the
# benchmarks, the device programs, the non-CUDA shared libraries they load (OpenBLAS and its
# Fortran runtime, OpenMP, cjson, turbojpeg, utf8proc; in build/cuda/lib, which bench/gpu.sh
# puts first on LD_LIBRARY_PATH) and the tokenizer's vocabulary and the TNG lexicon
# (data/cache, never committed). On the device: tar -xJf build/cuda-pack.tar.xz.
.PHONY: devpack
devpack: all
	@mkdir -p $(CUDA_BUILD)/lib
	ldd $(GPU_TESTS) $(DEVICE_PROGRAMS) \
	    | awk '/libopenblas|libgfortran|libquadmath|libgomp|libcjson|libturbojpeg|libutf8proc/ {print $$3}' \
	    | sort -u | xargs -r -I{} cp -L {} $(CUDA_BUILD)/lib/
	tar -cJf $(BUILD)/cuda-pack.tar.xz $(GPU_TESTS) $(CUDA_BUILD)/bench_kernels $(DEVICE_PROGRAMS) \
	    $(CUDA_BUILD)/lib data/cache/bpe_simple_vocab_16e6.txt.gz data/cache/lexicon.tsv
	@ls -l $(BUILD)/cuda-pack.tar.xz
