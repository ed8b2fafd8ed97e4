/* cuda_bf16.h for the CPU emulator (tests/emu/README.md): bf16 as a storage type with the
 * two conversions the kernels use. float -> bf16 rounds to nearest, ties to even, keeps
 * subnormals, overflows to infinity past the largest bf16 (by half an ulp), and turns every
 * NaN into the canonical 0x7FFF: CUDA's __float2bfloat16_rn, bit for bit. */
#pragma once
#include <stdint.h>
#include <string.h>
struct __nv_bfloat16 {
    uint16_t x;
};
static inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 h;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        h.x = 0x7fff;
        return h;
    }
    /* adding 0x7fff plus the kept part's lowest bit carries exactly when the dropped half
     * is above one half, or is one half and the kept part is odd */
    u += 0x7fffu + ((u >> 16) & 1u);
    h.x = (uint16_t)(u >> 16);
    return h;
}
