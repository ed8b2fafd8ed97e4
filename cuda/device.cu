/*
 * device.cu: choosing the GPU before the CUDA backend is used (backend_cuda_open, called by
 * engine/backend.c's backend_select).
 *
 * The one choice a reader must know: under mpirun every rank of a node sees every GPU, and
 * device 0 is the default, so without this all ranks would share one GPU. Each rank takes
 * local_rank % devices before any CUDA handle, stream or cached attribute exists (cuBLAS
 * handles and streams belong to the device current when they are made). The modulo lets more
 * ranks than GPUs share them instead of failing, which is what a test node with one GPU needs.
 * A machine with no driver or no device is reported as one line, not a crash.
 */
#include <stdio.h>

#include <cuda_runtime.h>

extern "C" int backend_cuda_open(int local_rank, char *desc, size_t desc_len, char *err,
                                 size_t err_len) {
    int devices = 0;
    cudaError_t status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess || devices < 1) {
        snprintf(err, err_len, "no CUDA device visible (%s)",
                 status != cudaSuccess ? cudaGetErrorString(status) : "the driver lists none");
        cudaGetLastError(); /* clear the sticky error, so the CPU path starts clean */
        return -1;
    }
    int device = (local_rank > 0 ? local_rank : 0) % devices;
    cudaDeviceProp prop;
    status = cudaSetDevice(device);
    if (status == cudaSuccess) status = cudaGetDeviceProperties(&prop, device);
    if (status != cudaSuccess) {
        snprintf(err, err_len, "CUDA device %d: %s", device, cudaGetErrorString(status));
        return -1;
    }
    snprintf(desc, desc_len, "%s (device %d of %d, %.0f GiB)", prop.name, device, devices,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 0;
}
