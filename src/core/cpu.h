/*
 * cpu.h — what this CPU (and its OS) can run (internal): one detection for
 * the kernel dispatch (src/kernels/dot.c, ops.c) and the probe
 * (src/device/probe_kernels.c), so both always agree on which instruction
 * forms exist.
 *
 *     unsigned f = qeil_cpu_features();
 *     if (f & QEIL_CPU_AVX512VNNI) ...;             // EVEX vpdpbusd usable
 *     char buf[QEIL_CPU_FEATURES_STR_MAX];
 *     qeil_cpu_features_str(f, buf, sizeof buf);  // "avx2 fma f16c ..."
 *
 * A flag is set only when the CPU reports the instructions AND the OS saves
 * the registers they need (XGETBV on x86; on AArch64 Linux the HWCAP bits
 * already mean both). The flags describe the hardware: QEIL_NO_SIMD does
 * not clear them (qeil_cpu_simd_disabled() reports it; the kernel dispatch
 * applies it). Detected once per process; thread-safe.
 */
#ifndef QEIL_CORE_CPU_H
#define QEIL_CORE_CPU_H

#include <stddef.h>

enum {
    /* x86 (Intel SDM vol. 2A, CPUID; vol. 1, 13.3 for XCR0) */
    QEIL_CPU_AVX = 1u << 0,
    QEIL_CPU_AVX2 = 1u << 1,
    QEIL_CPU_FMA = 1u << 2,
    QEIL_CPU_F16C = 1u << 3,
    QEIL_CPU_AVX512F = 1u << 4,
    QEIL_CPU_AVX512BW = 1u << 5,
    QEIL_CPU_AVX512VL = 1u << 6,
    QEIL_CPU_AVX512VNNI = 1u << 7, /* EVEX vpdpbusd (leaf 7 ecx 11) */
    QEIL_CPU_AVXVNNI = 1u << 8,    /* VEX vpdpbusd (leaf 7.1 eax 4) */
    QEIL_CPU_AVX512BF16 = 1u << 9, /* leaf 7.1 eax 5 */
    /* AArch64 (Linux HWCAP / HWCAP2, arch/arm64/include/uapi/asm/hwcap.h) */
    QEIL_CPU_ASIMD = 1u << 16,
    QEIL_CPU_FPHP = 1u << 17,    /* scalar half-precision arithmetic */
    QEIL_CPU_ASIMDHP = 1u << 18, /* vector half-precision arithmetic */
    QEIL_CPU_ASIMDDP = 1u << 19, /* SDOT / UDOT (ARMv8.2 FEAT_DotProd) */
    QEIL_CPU_I8MM = 1u << 20,    /* SMMLA / USDOT (ARMv8.6 FEAT_I8MM) */
    QEIL_CPU_BF16 = 1u << 21,    /* BFDOT / BFMMLA (FEAT_BF16) */
    QEIL_CPU_SVE = 1u << 22
};

/* Longest string qeil_cpu_features_str writes, NUL included. */
#define QEIL_CPU_FEATURES_STR_MAX 192

/* The flags above for this CPU (asked once, then cached). */
unsigned qeil_cpu_features(void);
/* Asks the CPU again (tests; the cached answer is the same). */
unsigned qeil_cpu_features_detect(void);
/* 1 when the environment variable QEIL_NO_SIMD is set to anything but ""
 * or "0" (read once): every kernel then takes its portable path. */
int qeil_cpu_simd_disabled(void);
/* Names of the set flags, space-separated, in the order of the enum
 * ("avx2 fma f16c avx512f ..."; "none" when no flag is set). Writes at most
 * n bytes, NUL-terminated (n >= 1). Returns buf. */
char *qeil_cpu_features_str(unsigned flags, char *buf, size_t n);

#endif /* QEIL_CORE_CPU_H */
