# cuda.mk: the CUDA backend, its GPU tests and the kernel benchmark (run by `make cuda`).
#
#   build/cuda/libtng_cuda.a     backend_cuda(), every kernel, the NCCL collectives and the
#                                device choice (backend_cuda_open)
#   build/cuda/test_kernels      each kernel against the CPU op (needs a GPU to run)
#   build/cuda/test_train_step   one whole training step, CPU vs CUDA (needs a GPU)
#   build/cuda/bench_kernels     kernel timings vs measured ceilings (needs a GPU)
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
# library at run time (the device machine may lack cjson or turbojpeg).
LDLIBS := -lcublas -lcudart -lnccl -lopenblas -lutf8proc -lcjson -lturbojpeg -lz -lpthread -lm -lgomp
# libtng.a's host/engine/dist.c speaks MPI when the main Makefile found mpicc: link it the same way
MPICC ?= mpicc
LDLIBS += $(shell $(MPICC) --showme:link 2>/dev/null)
LDFLAGS := -Xlinker --as-needed
# the same OpenBLAS build as the main Makefile (the OpenMP one, sharing our thread pool)
OPENBLAS_OMP_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
ifneq ($(wildcard $(OPENBLAS_OMP_DIR)/libopenblas.so),)
LDFLAGS += -L$(OPENBLAS_OMP_DIR) -Xlinker -rpath,$(OPENBLAS_OMP_DIR)
endif

KERNEL_HEADERS := $(wildcard kernels/*.cuh kernels/*.h) $(wildcard cuda/*.h) $(wildcard host/*/*.h host/*/*/*.h)
GPU_TESTS := $(patsubst tests/gpu/%.cu,$(CUDA_BUILD)/%,$(wildcard tests/gpu/test_*.cu))

.PHONY: all
all: $(CUDA_BUILD)/libtng_cuda.a $(GPU_TESTS) $(CUDA_BUILD)/bench_kernels

# The host library is the main Makefile's; it is rebuilt through it when a host source changes.
$(BUILD)/libtng.a: $(wildcard host/*/*.c host/*/*.h host/*/*/*.c host/*/*/*.h)
	$(MAKE) -f Makefile BUILD=$(BUILD) $(BUILD)/libtng.a

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

$(CUDA_BUILD)/test_%: tests/gpu/test_%.cu tests/gpu/gpu_test_util.h tests/harness.h \
                      $(KERNEL_HEADERS) $(CUDA_BUILD)/libtng_cuda.a $(BUILD)/libtng.a
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -Itests $< $(CUDA_BUILD)/libtng_cuda.a $(BUILD)/libtng.a \
	    $(LDFLAGS) $(LDLIBS) -o $@

$(CUDA_BUILD)/bench_kernels: bench/bench_kernels.cu $(KERNEL_HEADERS) \
                             $(CUDA_BUILD)/libtng_cuda.a $(BUILD)/libtng.a
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $< $(CUDA_BUILD)/libtng_cuda.a $(BUILD)/libtng.a \
	    $(LDFLAGS) $(LDLIBS) -o $@

# devpack: copies the non-CUDA shared libraries the GPU programs load (OpenBLAS and its
# Fortran runtime, OpenMP) into $(CUDA_BUILD)/lib, so that $(CUDA_BUILD) alone can be
# carried to a GPU machine whose image lacks them; bench/gpu.sh puts that folder first on
# LD_LIBRARY_PATH.
.PHONY: devpack
devpack: all
	@mkdir -p $(CUDA_BUILD)/lib
	ldd $(CUDA_BUILD)/test_kernels | awk '/libopenblas|libgfortran|libquadmath|libgomp/ {print $$3}' \
	    | xargs -r -I{} cp -L {} $(CUDA_BUILD)/lib/
	@du -sh $(CUDA_BUILD)
