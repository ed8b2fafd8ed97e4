/*
 * cudaemu_runtime.h: the CUDA runtime API and the device math of the emulator (cudaemu.h):
 * device memory, copies, streams and events, device attributes, and the arithmetic
 * intrinsics the kernels call.
 *
 * Device memory is host memory from malloc, filled with 0xFF (NaN as float and bf16) so that
 * reading what no kernel or copy wrote shows; the emulator keeps the ranges so that a
 * kernel argument or a copy outside them is reported. Copies are synchronous (there is
 * nothing to wait for), and once a kernel has faulted every call returns the fault.
 * Every call that would block the host on a GPU is counted (emu::st().host_syncs, read with
 * emu_counters()): cudaMemcpy between host and device, cudaMemcpyAsync with pageable host
 * memory (not from cudaMallocHost), cudaFree and cudaFreeHost, and the device, stream and
 * event synchronisations; so are device allocations.
 * The shared-memory opt-in limit is sm_90's 227 KB unless EMU_SMEM_OPTIN lowers it.
 */
#ifndef CUDAEMU_RUNTIME_H
#define CUDAEMU_RUNTIME_H

#include <stdio.h>

#include <math.h>

#include "cudaemu.h"

/* ------------------------------------------------------------------ device math */
inline int min(int a, int b) { return a < b ? a : b; }

/* IEEE single operations rounded to nearest even, never contracted into a fused
 * multiply-add: what nvcc's __fadd_rn & co. promise. The emulated build compiles with
 * -ffp-contract=off (tests/emu/emu.mk), so host arithmetic is exactly these operations. */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }

/* ------------------------------------------------------------------ runtime API */
namespace emu {
/* The fault of a kernel that trapped: every call after it returns it (a sticky error). */
inline cudaError_t sticky() { return st().fault ? (st().last_error = st().fault) : cudaSuccess; }
} // namespace emu

namespace emu {
/* whether [p, p + bytes) lies in one cudaMallocHost allocation */
inline bool is_pinned(const void *p, size_t bytes) {
    auto &a = st().pinned;
    auto it = a.upper_bound((uintptr_t)p);
    if (it == a.begin())
        return false;
    --it;
    return (uintptr_t)p + bytes <= it->first + it->second;
}
} // namespace emu

/* What the calls so far would cost on a GPU (tests/gpu/test_train_step.cu reads them). */
struct EmuCounters {
    unsigned long long host_syncs, device_allocs, launches, gemms, graph_launches, graph_instantiations;
};
inline EmuCounters emu_counters() {
    emu::State &s = emu::st();
    return EmuCounters{s.host_syncs, s.device_allocs, s.launches, s.gemms, s.graph_launches, s.graph_instantiations};
}

inline cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (emu::sticky())
        return emu::st().fault;
    if (emu::st().capturing) {
        emu::st().capture_invalidated = true;
        return emu::st().last_error = cudaErrorStreamCaptureUnsupported;
    }
    emu::st().device_allocs++;
    size_t n = bytes ? bytes : 1;
    *p = malloc(n);
    if (!*p)
        return emu::st().last_error = cudaErrorMemoryAllocation;
    memset(*p, 0xff, n); /* NaN: reading what no kernel wrote shows */
    emu::st().allocations[(uintptr_t)*p] = n;
    return cudaSuccess;
}
template <typename T> inline cudaError_t cudaMalloc(T **p, size_t bytes) {
    return cudaMalloc((void **)p, bytes);
}
inline cudaError_t cudaFree(void *p) {
    if (emu::sticky())
        return emu::st().fault;
    if (!p)
        return cudaSuccess;
    if (cudaError_t e = emu::blocking_call()) /* cudaFree waits for the device */
        return e;
    auto &a = emu::st().allocations;
    auto it = a.find((uintptr_t)p);
    if (it == a.end())
        return emu::st().last_error = cudaErrorInvalidDevicePointer;
    a.erase(it);
    free(p);
    return cudaSuccess;
}
namespace emu {
/* Both ends are checked against the device ranges the kind says they are in. */
inline cudaError_t copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (emu::sticky())
        return emu::st().fault;
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    bool dst_bad = dst_dev && !emu::is_device_range(dst, bytes);
    bool src_bad = src_dev && !emu::is_device_range(src, bytes);
    if (dst_bad || src_bad) {
        fprintf(stderr, "cudaemu: cudaMemcpy of %zu bytes (kind %d): %s is not a device range\n",
                bytes, (int)kind, dst_bad ? "dst" : "src");
        return emu::st().last_error = cudaErrorInvalidValue;
    }
    memmove(dst, src, bytes);
    return cudaSuccess;
}
} // namespace emu
/* Page-locked host memory: an asynchronous copy from or to it does not block the host. */
inline cudaError_t cudaMallocHost(void **p, size_t bytes) {
    if (emu::sticky())
        return emu::st().fault;
    size_t n = bytes ? bytes : 1;
    *p = malloc(n);
    if (!*p)
        return emu::st().last_error = cudaErrorMemoryAllocation;
    emu::st().pinned[(uintptr_t)*p] = n;
    return cudaSuccess;
}
inline cudaError_t cudaFreeHost(void *p) {
    if (emu::sticky())
        return emu::st().fault;
    if (!p)
        return cudaSuccess;
    auto &a = emu::st().pinned;
    auto it = a.find((uintptr_t)p);
    if (it == a.end())
        return emu::st().last_error = cudaErrorInvalidValue;
    if (cudaError_t e = emu::blocking_call()) /* like cudaFree, it waits for the device */
        return e;
    a.erase(it);
    free(p);
    return cudaSuccess;
}
/* cudaMemcpy between host and device blocks the host (device to device does not); so does
 * cudaMemcpyAsync when its host side is pageable memory. */
inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (kind != cudaMemcpyDeviceToDevice)
        if (cudaError_t e = emu::blocking_call())
            return e;
    return emu::copy(dst, src, bytes, kind);
}
/* Captured, it copies at cudaGraphLaunch what the pinned source holds then. */
inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t) {
    const void *host = kind == cudaMemcpyHostToDevice ? src : kind == cudaMemcpyDeviceToHost ? dst : NULL;
    if (host && !emu::is_pinned(host, bytes))
        if (cudaError_t e = emu::blocking_call())
            return e;
    if (emu::record([=]() { emu::copy(dst, src, bytes, kind); }))
        return cudaSuccess;
    return emu::copy(dst, src, bytes, kind);
}
inline cudaError_t cudaMemset(void *p, int v, size_t bytes) {
    if (emu::sticky())
        return emu::st().fault;
    if (!emu::is_device_range(p, bytes)) {
        fprintf(stderr, "cudaemu: cudaMemset of %zu bytes at %p: not a device range\n", bytes, p);
        return emu::st().last_error = cudaErrorInvalidValue;
    }
    memset(p, v, bytes);
    return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t) {
    if (emu::record([=]() { cudaMemset(p, v, bytes); }))
        return cudaSuccess;
    return cudaMemset(p, v, bytes);
}
/* The last error of a call, cleared by reading it; a kernel's fault is not one (it is
 * reported by the synchronising calls). */
inline cudaError_t cudaGetLastError() {
    cudaError_t e = emu::st().last_error;
    emu::st().last_error = cudaSuccess;
    return e;
}
inline const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unknown error";
}
inline cudaError_t cudaDeviceSynchronize() {
    if (cudaError_t e = emu::blocking_call())
        return e;
    return emu::sticky();
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) {
    if (cudaError_t e = emu::blocking_call())
        return e;
    return emu::sticky();
}
/* Events: every one has happened when it is recorded (work runs as it is queued), so a query
 * finds it complete; waiting for one still counts as what it would be on a GPU. */
enum { cudaEventDefault = 0, cudaEventDisableTiming = 2 };
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
    static char token;
    *e = (cudaEvent_t)&token;
    return emu::sticky();
}
inline cudaError_t cudaEventDestroy(cudaEvent_t) { return emu::sticky(); }
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t = 0) { return emu::sticky(); }
inline cudaError_t cudaEventQuery(cudaEvent_t) {
    if (emu::st().capturing) {
        emu::st().capture_invalidated = true;
        return emu::st().last_error = cudaErrorStreamCaptureUnsupported;
    }
    return emu::sticky();
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) {
    if (cudaError_t e = emu::blocking_call())
        return e;
    return emu::sticky();
}

/* Streams other than the legacy one (0), which cannot be captured; each is the one in-order CPU. */
inline cudaError_t cudaStreamCreate(cudaStream_t *stream) {
    static char token;
    *stream = (cudaStream_t)&token;
    return emu::sticky();
}
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return emu::sticky(); }

/* Graphs: a capture records the kernels, copies, memsets and GEMMs queued (kernel arguments, GEMM
 * scalars and copy addresses by value, as CUDA's capture does); an instantiated graph replays them
 * in order at each cudaGraphLaunch, reading device and pinned memory as they are then. */
typedef struct emu_graph *cudaGraph_t;
typedef struct emu_graph *cudaGraphExec_t;
struct emu_graph {
    std::vector<std::function<void()>> work;
};
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1 };
inline cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
    emu::State &s = emu::st();
    if (!stream || s.capturing)
        return s.last_error = cudaErrorStreamCaptureUnsupported;
    s.capturing = true;
    s.capture_invalidated = false;
    s.captured.clear();
    return emu::sticky();
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *graph) {
    emu::State &s = emu::st();
    if (!s.capturing)
        return s.last_error = cudaErrorInvalidValue;
    s.capturing = false;
    *graph = nullptr;
    if (s.capture_invalidated)
        return s.last_error = cudaErrorStreamCaptureInvalidated;
    *graph = new emu_graph{std::move(s.captured)};
    s.captured.clear();
    return emu::sticky();
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    *exec = new emu_graph(*graph);
    emu::st().graph_instantiations++;
    return emu::sticky();
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
    if (emu::sticky())
        return emu::st().fault;
    emu::st().graph_launches++;
    for (auto &work : exec->work)
        work();
    return emu::sticky();
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int *d) {
    *d = 0;
    return emu::sticky();
}
/* One device, named as what it is, so a program's device choice and settings block run as on a
 * GPU machine (cuda/device.cu). */
inline cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int device) {
    return device == 0 ? cudaSuccess : (emu::st().last_error = cudaErrorInvalidValue);
}
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
};
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (device != 0) return emu::st().last_error = cudaErrorInvalidValue;
    snprintf(prop->name, sizeof prop->name, "cudaemu (the CPU emulator of tests/emu)");
    prop->totalGlobalMem = (size_t)1 << 30;
    return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr attr, int) {
    if (attr != cudaDevAttrMaxSharedMemoryPerBlockOptin)
        return emu::st().last_error = cudaErrorInvalidValue;
    *v = (int)emu::st().smem_optin;
    return emu::sticky();
}
/* Raises one kernel's dynamic shared memory allowance, at most to the opt-in limit. */
template <typename F> inline cudaError_t cudaFuncSetAttribute(F f, cudaFuncAttribute attr, int v) {
    if (emu::sticky())
        return emu::st().fault;
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || v < 0 ||
        (size_t)v > emu::st().smem_optin)
        return emu::st().last_error = cudaErrorInvalidValue;
    emu::st().max_dyn_smem[(const void *)f] = v;
    return cudaSuccess;
}

#endif
