/*
 * cudaemu_fiber.h: the fibers the emulator runs CUDA threads on (cudaemu.h), and the
 * sanitizer hooks that follow them.
 *
 * A fiber switch on x86-64 is 20 instructions (the callee-saved registers, MXCSR and the x87
 * control word, no signal-mask system call: about 40x cheaper than swapcontext); elsewhere,
 * or with EMU_UCONTEXT defined at build time, it is ucontext. Under -fsanitize=thread every
 * fiber is a TSan fiber, and under -fsanitize=address every switch is announced to ASan
 * (cudaemu.h does both at its switch points; this file only detects the sanitizer and
 * declares their interfaces).
 */
#ifndef CUDAEMU_FIBER_H
#define CUDAEMU_FIBER_H

#include <stddef.h>
#include <stdint.h>
#include <ucontext.h>

#if defined(__SANITIZE_THREAD__)
#define EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EMU_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif

#ifdef EMU_TSAN
extern "C" {
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
}
#define EMU_NO_TSAN __attribute__((no_sanitize("thread")))
#else
#define EMU_NO_TSAN
#endif
#ifdef EMU_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
}
#endif

namespace emu {

#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
struct Context {
    void *sp;
};
__attribute__((naked, noinline)) static void ctx_switch_asm(void **save_sp, void *load_sp) {
    __asm__ volatile("pushq %rbp\n\t"
                     "pushq %rbx\n\t"
                     "pushq %r12\n\t"
                     "pushq %r13\n\t"
                     "pushq %r14\n\t"
                     "pushq %r15\n\t"
                     "subq $8, %rsp\n\t"
                     "stmxcsr (%rsp)\n\t"
                     "fnstcw 4(%rsp)\n\t"
                     "movq %rsp, (%rdi)\n\t"
                     "movq %rsi, %rsp\n\t"
                     "ldmxcsr (%rsp)\n\t"
                     "fldcw 4(%rsp)\n\t"
                     "addq $8, %rsp\n\t"
                     "popq %r15\n\t"
                     "popq %r14\n\t"
                     "popq %r13\n\t"
                     "popq %r12\n\t"
                     "popq %rbx\n\t"
                     "popq %rbp\n\t"
                     "ret\n\t");
}
EMU_NO_TSAN inline void ctx_switch(Context *from, Context *to) {
    ctx_switch_asm(&from->sp, to->sp);
}
EMU_NO_TSAN inline void ctx_make(Context *c, char *stack, size_t bytes, void (*entry)()) {
    uintptr_t top = ((uintptr_t)(stack + bytes)) & ~(uintptr_t)15;
    uint64_t *p = (uint64_t *)top;
    *--p = 0;                  /* fake return address of entry: rsp % 16 == 8 there */
    *--p = (uint64_t)entry;    /* ret target */
    for (int i = 0; i < 6; i++)
        *--p = 0;              /* rbp rbx r12-r15 */
    uint32_t csr[2];
    __asm__ volatile("stmxcsr %0" : "=m"(csr[0]));
    __asm__ volatile("fnstcw %0" : "=m"(csr[1]));
    *--p = (uint64_t)csr[0] | ((uint64_t)(csr[1] & 0xffff) << 32);
    c->sp = p;
}
#else
struct Context {
    ucontext_t uc;
};
EMU_NO_TSAN inline void ctx_switch(Context *from, Context *to) { swapcontext(&from->uc, &to->uc); }
EMU_NO_TSAN inline void ctx_make(Context *c, char *stack, size_t bytes, void (*entry)()) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = bytes;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
}
#endif

} // namespace emu

#endif
