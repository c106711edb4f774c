/* Loaded with LD_PRELOAD into a measured process (a perf worker, PyTorch, ONNX Runtime), it
 * hides the CPU's AVX-512 (and AVX10, AMX, AVX-VNNI) from every library in that process that
 * reads `cpuid` after start-up, so that each dispatches to its AVX2 kernels: `gemm`, MLAS,
 * oneDNN and MKL have no common setting of their own. (glibc's own string functions were
 * chosen before this library loaded, and keep their AVX-512 variants.) Linux on x86-64 with
 * CPUID faulting (`cpuid_fault` in /proc/cpuinfo): every `cpuid` then traps, and the handler
 * runs it with the faulting lifted for a moment and clears the feature bits before returning.
 * The setting holds for threads started later and is dropped at `execve`. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static int cpuid_faulting(int on) { return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, !on); }

static void on_segv(int sig, siginfo_t *info, void *context) {
    greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
    /* A trapped `cpuid` arrives from the kernel (SI_KERNEL) at a `cpuid` instruction (0F A2);
     * anything else is the program's own fault, or a signal sent to it: let it take its
     * course. */
    if (info->si_code != SI_KERNEL || ip[0] != 0x0f || ip[1] != 0xa2) {
        signal(sig, SIG_DFL);
        if (info->si_code <= 0) {
            raise(sig);
        }
        return;
    }
    int saved_errno = errno;
    unsigned leaf = (unsigned)regs[REG_RAX], sub = (unsigned)regs[REG_RCX];
    unsigned a, b, c, d;
    cpuid_faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    cpuid_faulting(1);
    if (leaf == 7 && sub == 0) {
        /* AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL */
        b &= ~(1u << 16 | 1u << 17 | 1u << 21 | 1u << 26 | 1u << 27 | 1u << 28 | 1u << 30 | 1u << 31);
        /* AVX512 VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ */
        c &= ~(1u << 1 | 1u << 6 | 1u << 11 | 1u << 12 | 1u << 14);
        /* AVX512 4VNNIW, 4FMAPS, VP2INTERSECT, FP16; AMX BF16, TILE, INT8 */
        d &= ~(1u << 2 | 1u << 3 | 1u << 8 | 1u << 22 | 1u << 23 | 1u << 24 | 1u << 25);
    } else if (leaf == 7 && sub == 1) {
        /* AVX-VNNI, AVX512 BF16, AMX FP16 */
        a &= ~(1u << 4 | 1u << 5 | 1u << 21);
        /* AMX COMPLEX, AVX10 */
        d &= ~(1u << 8 | 1u << 19);
    } else if (leaf == 0x24) {
        /* AVX10's own leaf */
        a = b = c = d = 0;
    }
    regs[REG_RAX] = a;
    regs[REG_RBX] = b;
    regs[REG_RCX] = c;
    regs[REG_RDX] = d;
    regs[REG_RIP] += 2;
    errno = saved_errno;
}

__attribute__((constructor)) static void hide_avx512(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_segv;
    /* On the alternate stack where the program has set one up, and with other signals held
     * while the faulting is lifted. */
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigfillset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, NULL) != 0 || cpuid_faulting(1) != 0) {
        perror("cpuid_cap: CPUID faulting is not available (arch_prctl ARCH_SET_CPUID)");
        exit(97);
    }
}
