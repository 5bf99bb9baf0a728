/*
 * cpu.c — CPU feature detection (see cpu.h): CPUID + XGETBV on x86,
 * getauxval(AT_HWCAP / AT_HWCAP2) on AArch64 Linux; nothing elsewhere.
 */
#include "core/cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CPU_X86 1
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#define CPU_ARM64 1
#include <sys/auxv.h>
#endif

/* ======================================================================== */
/* x86                                                                       */
/* ======================================================================== */

#ifdef CPU_X86
/* XCR0: which register state the OS saves (XSAVE). Only valid when CPUID
 * says OSXSAVE; xgetbv is written as bytes-free asm so no -mxsave is needed. */
static unsigned long long xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

static unsigned detect_x86(void)
{
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    /* leaf 1 ecx: FMA 12, OSXSAVE 27, AVX 28, F16C 29 */
    if (!((c >> 27) & 1u)) return 0;
    const unsigned long long x = xcr0();
    const int ymm_os = (x & 6u) == 6u;       /* XMM and YMM state */
    const int zmm_os = (x & 0xe6u) == 0xe6u; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!ymm_os || !((c >> 28) & 1u)) return 0;
    f |= QEIL_CPU_AVX;
    if ((c >> 12) & 1u) f |= QEIL_CPU_FMA;
    if ((c >> 29) & 1u) f |= QEIL_CPU_F16C;
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned max_sub = a;
    /* leaf 7.0 ebx: AVX2 5, AVX512F 16, AVX512BW 30, AVX512VL 31; ecx:
     * AVX512_VNNI 11 */
    if ((b >> 5) & 1u) f |= QEIL_CPU_AVX2;
    if (zmm_os && ((b >> 16) & 1u)) {
        f |= QEIL_CPU_AVX512F;
        if ((b >> 30) & 1u) f |= QEIL_CPU_AVX512BW;
        if ((b >> 31) & 1u) f |= QEIL_CPU_AVX512VL;
        if ((c >> 11) & 1u) f |= QEIL_CPU_AVX512VNNI;
    }
    if (max_sub >= 1) {
        /* leaf 7.1 eax: AVX-VNNI 4, AVX512_BF16 5 */
        __cpuid_count(7, 1, a, b, c, d);
        if ((f & QEIL_CPU_AVX2) && ((a >> 4) & 1u)) f |= QEIL_CPU_AVXVNNI;
        if ((f & QEIL_CPU_AVX512F) && ((a >> 5) & 1u)) f |= QEIL_CPU_AVX512BF16;
    }
    return f;
}
#endif

/* ======================================================================== */
/* AArch64 Linux                                                             */
/* ======================================================================== */

#ifdef CPU_ARM64
/* Bit numbers of the Linux uapi (stable ABI), spelled out so an old libc
 * header still builds. */
#define ARM_HWCAP_ASIMD (1UL << 1)
#define ARM_HWCAP_FPHP (1UL << 9)
#define ARM_HWCAP_ASIMDHP (1UL << 10)
#define ARM_HWCAP_ASIMDDP (1UL << 20)
#define ARM_HWCAP_SVE (1UL << 22)
#define ARM_HWCAP2_I8MM (1UL << 13)
#define ARM_HWCAP2_BF16 (1UL << 14)

static unsigned detect_arm64(void)
{
    const unsigned long h = getauxval(AT_HWCAP), h2 = getauxval(AT_HWCAP2);
    unsigned f = 0;
    if (!(h & ARM_HWCAP_ASIMD)) return 0;
    f |= QEIL_CPU_ASIMD;
    if (h & ARM_HWCAP_FPHP) f |= QEIL_CPU_FPHP;
    if (h & ARM_HWCAP_ASIMDHP) f |= QEIL_CPU_ASIMDHP;
    if (h & ARM_HWCAP_ASIMDDP) f |= QEIL_CPU_ASIMDDP;
    if (h & ARM_HWCAP_SVE) f |= QEIL_CPU_SVE;
    if (h2 & ARM_HWCAP2_I8MM) f |= QEIL_CPU_I8MM;
    if (h2 & ARM_HWCAP2_BF16) f |= QEIL_CPU_BF16;
    return f;
}
#endif

unsigned qeil_cpu_features_detect(void)
{
#if defined(CPU_X86)
    return detect_x86();
#elif defined(CPU_ARM64)
    return detect_arm64();
#else
    return 0;
#endif
}

unsigned qeil_cpu_features(void)
{
    /* CPUID traps to the hypervisor in a VM (microseconds): ask once. The
     * answer is a fact about the machine, the same for every caller, so a
     * racing first call stores the same value twice. Bit 31 marks "asked". */
    static atomic_uint cached = 0;
    unsigned v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!v) {
        v = qeil_cpu_features_detect() | 1u << 31;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v & ~(1u << 31);
}

int qeil_cpu_simd_disabled(void)
{
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("QEIL_NO_SIMD");
        v = e && e[0] && strcmp(e, "0") != 0;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

static const struct {
    unsigned flag;
    const char *name;
} k_names[] = {
    {QEIL_CPU_AVX, "avx"},           {QEIL_CPU_AVX2, "avx2"},
    {QEIL_CPU_FMA, "fma"},           {QEIL_CPU_F16C, "f16c"},
    {QEIL_CPU_AVX512F, "avx512f"},   {QEIL_CPU_AVX512BW, "avx512bw"},
    {QEIL_CPU_AVX512VL, "avx512vl"}, {QEIL_CPU_AVX512VNNI, "avx512vnni"},
    {QEIL_CPU_AVXVNNI, "avxvnni"},   {QEIL_CPU_AVX512BF16, "avx512bf16"},
    {QEIL_CPU_ASIMD, "asimd"},       {QEIL_CPU_FPHP, "fphp"},
    {QEIL_CPU_ASIMDHP, "asimdhp"},   {QEIL_CPU_ASIMDDP, "asimddp"},
    {QEIL_CPU_I8MM, "i8mm"},         {QEIL_CPU_BF16, "bf16"},
    {QEIL_CPU_SVE, "sve"},
};

char *qeil_cpu_features_str(unsigned flags, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof k_names / sizeof k_names[0]; i++) {
        if (!(flags & k_names[i].flag)) continue;
        const size_t nl = strlen(k_names[i].name);
        if (len + (len ? 1 : 0) + nl + 1 > n) break;
        if (len) buf[len++] = ' ';
        memcpy(buf + len, k_names[i].name, nl);
        len += nl;
        buf[len] = '\0';
    }
    if (!len && n >= 5) memcpy(buf, "none", 5);
    return buf;
}
