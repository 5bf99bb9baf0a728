/* catalog.c — the built-in platforms (qeil platforms).
 *
 * Every number says where it comes from: a vendor datasheet or spec page,
 * a configuration file shipped by the vendor, or a derivation from those
 * with a documented default for the device class. docs/profiles.md has the
 * same numbers in one table with the same sources; keep the two in step.
 *
 * How the power and thermal numbers are derived (the same recipe for every
 * unit, so platforms are comparable):
 *
 *  - Power budget at the nominal DVFS point, P_full = P_const + P_leak(T_ref)
 *    + P_dyn, from the vendor's TDP / power-mode budget for the unit.
 *  - e_op[t] = P_dyn / (eta_compute * peak[t]): a saturated datapath burns
 *    about the same dynamic power whatever the data type, so a type with
 *    twice the rate costs half the energy per op. Dividing by the achieved
 *    rate (eta * peak) makes a unit that runs flat out draw P_full.
 *  - e_byte = DRAM energy per byte of the pool's memory type (device + PHY +
 *    controller) plus the on-chip path to the unit: +8 pJ/B for a CPU
 *    (cache hierarchy), +4 pJ/B for a GPU or NPU. DRAM figures are class
 *    typical values: DDR5 ≈ 5 pJ/bit, LPDDR5 ≈ 4 pJ/bit, LPDDR5X ≈ 3.5
 *    pJ/bit, LPDDR4X ≈ 5 pJ/bit, GDDR7 ≈ 6 pJ/bit (GDDR6 ≈ 7.5 pJ/bit per
 *    Micron; GDDR7 is specified as more efficient per bit), HBM2 ≈ 3.9
 *    pJ/bit for comparison (O'Connor et al., "Fine-Grained DRAM", MICRO
 *    2017).
 *  - Leakage P_leak(T) = P_leak_ref * exp(kappa (T - T_ref)) with kappa =
 *    ln 2 / 10 K (leakage doubles every 10 K), P_leak_ref ≈ 10-20 % of the
 *    unit's full-load power at a T_ref near its loaded temperature.
 *  - Thermal: units that share a package and cooler share its junction-to-
 *    ambient resistance R_th = (T_design - T_amb) / P_design, where the
 *    cooler is sized so the package at its sustained power P_design sits at
 *    T_design. C_th from the heat sink's mass times the specific heat of its
 *    metal (copper 0.385, aluminium 0.90 J/(g K)).
 *  - DVFS voltages: vendors publish frequency tables but rarely voltages; we
 *    use a linear V/f curve between two typical end points per silicon
 *    family, named at each use. Only ratios (V_k/V_nom)^2 enter the model.
 *
 * Source marks (one per group, see device.h): power and thermal are always
 * `default` here (class defaults applied to datasheet budgets). Compute is
 * `datasheet` when the peaks, bandwidth and clocks come from (or are derived
 * from) vendor data, and `default` when any of them is an assumption (an
 * unpublished NPU clock or DRAM port). eta_compute / eta_mem are class
 * defaults in every catalog entry, whatever the compute mark (documented in
 * docs/profiles.md; `qeil probe` replaces them with measurements). */
#include "qeil/device.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GHZ 1e9
#define GIB 1073741824.0
#define KAPPA 0.069314718055994531 /* ln 2 / 10 K^-1: CMOS leakage doubles every ~10 K */
#define T_AMB 25.0                 /* °C: room ambient for every catalog platform */

/* ------------------------------------------------------------------------ */
/* Builders                                                                  */
/* ------------------------------------------------------------------------ */

/* Round to 3 significant digits: derived coefficients are estimates, and
 * the profile files and docs stay readable. */
static double sig3(double x)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.3g", x); /* the double nearest the 3-digit decimal */
    return strtod(buf, NULL);
}

static int add_pool(qeil_platform *pf, const char *name, double capacity_B, double bw_Bps)
{
    qeil_pool *p = &pf->pools[pf->n_pools];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->capacity_B = capacity_B;
    p->bw_Bps = bw_Bps;
    return pf->n_pools++;
}

static void add_link(qeil_platform *pf, int a, int b, double bw_Bps, double e_byte_J,
                     double latency_s)
{
    qeil_link *l = &pf->links[pf->n_links++];
    l->pool_a = a;
    l->pool_b = b;
    l->bw_Bps = bw_Bps;
    l->e_byte_J = e_byte_J;
    l->latency_s = latency_s;
}

static qeil_unit *add_unit(qeil_platform *pf, const char *name, qeil_unit_kind kind, int pool)
{
    qeil_unit *u = &pf->units[pf->n_units++];
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", name);
    u->kind = kind;
    u->pool = pool;
    u->src_compute = QEIL_SRC_DATASHEET;
    u->src_power = QEIL_SRC_DEFAULT;
    u->src_thermal = QEIL_SRC_DEFAULT;
    u->leak_kappa_perK = KAPPA;
    u->t_amb_C = T_AMB;
    return u;
}

static void set_peaks(qeil_unit *u, double f32, double f16, double int8, double int4)
{
    u->peak_ops[QEIL_DT_F32] = f32;
    u->peak_ops[QEIL_DT_F16] = f16;
    u->peak_ops[QEIL_DT_INT8] = int8;
    u->peak_ops[QEIL_DT_INT4] = int4;
}

static void set_mem(qeil_unit *u, double bw_Bps, double eta_compute, double eta_mem,
                    double e_byte_J)
{
    u->mem_bw_Bps = bw_Bps;
    u->eta_compute = eta_compute;
    u->eta_mem = eta_mem;
    u->e_byte_J = e_byte_J;
}

/* Power budget at the nominal point (see the file comment). */
static void set_power(qeil_unit *u, double p_dyn_W, double p_const_W, double p_leak_W,
                      double t_ref_C)
{
    for (int t = 0; t < QEIL_DT_COUNT; t++)
        u->e_op_J[t] =
            u->peak_ops[t] > 0 ? sig3(p_dyn_W / (u->eta_compute * u->peak_ops[t])) : 0.0;
    u->p_const_W = sig3(p_const_W);
    u->p_leak_ref_W = sig3(p_leak_W);
    u->t_leak_ref_C = t_ref_C;
}

static void set_thermal(qeil_unit *u, double r_th_KpW, double c_th_JpK, double t_max_C)
{
    u->r_th_KpW = r_th_KpW;
    u->c_th_JpK = c_th_JpK;
    u->t_max_C = t_max_C;
}

/* A linear V/f curve from (f0, v0) to (f1, v1), in GHz and V. */
typedef struct {
    double f0, v0, f1, v1;
} vf_curve;

static double volt_at(vf_curve c, double f_GHz)
{
    double v = c.v0 + (c.v1 - c.v0) * (f_GHz - c.f0) / (c.f1 - c.f0);
    return round(v * 1000) / 1000; /* mV resolution */
}

/* DVFS points from a list of clocks in GHz (ascending); `nominal` indexes it. */
static void set_dvfs(qeil_unit *u, const double *f_GHz, int n, int nominal, vf_curve c)
{
    u->n_dvfs = n;
    for (int k = 0; k < n; k++) {
        u->dvfs[k].freq_Hz = f_GHz[k] * GHZ;
        u->dvfs[k].volt_V = volt_at(c, f_GHz[k]);
    }
    u->dvfs_nominal = nominal;
}

/* Clock of an accelerator whose vendor publishes no clock: one point, whose
 * value is inert (only ratios f_k / f_nom enter the model). */
static void set_single_point(qeil_unit *u, double volt_V)
{
    u->n_dvfs = 1;
    u->dvfs[0].freq_Hz = 1.0 * GHZ;
    u->dvfs[0].volt_V = volt_V;
    u->dvfs_nominal = 0;
}

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ------------------------------------------------------------------------ */
/* qeil-laptop: the QEIL v2 evaluation machine                               */
/* ------------------------------------------------------------------------ */

static void make_qeil_laptop(qeil_platform *pf)
{
    snprintf(pf->name, sizeof pf->name, "qeil-laptop");
    snprintf(pf->description, sizeof pf->description,
             "QEIL evaluation laptop: Intel Core Ultra 9 285HX (8P+16E), AI Boost NPU, Intel "
             "Graphics (4 Xe-cores), NVIDIA RTX PRO 5000 Blackwell laptop GPU 24 GB GDDR7, "
             "PCIe 5.0 x16");
    pf->rho_max = 0.9;

    /* 64 GB DDR5-6400, 2 channels x 64 bit: 6400e6 x 16 B = 102.4 GB/s
     * (Intel: 285HX supports DDR5-6400, 2 channels). 8 GiB left to the OS. */
    int ddr5 = add_pool(pf, "ddr5", 56 * GIB, 102.4e9);
    /* 24 GB GDDR7 on 256 bit at 28 Gbps: 28e9 x 32 B = 896 GB/s (GB203
     * laptop configuration, 8 x 3 GB devices). 1 GiB to driver/context. */
    int gddr7 = add_pool(pf, "gddr7", 23 * GIB, 896e9);
    /* PCIe 5.0 x16: 32 GT/s x 16 lanes x 128/130 / 8 = 63.0 GB/s raw per
     * direction; ~80 % after TLP/DLLP overhead -> 50 GB/s. SerDes ≈ 5-6
     * pJ/bit -> 48 pJ/B. 10 µs per transfer: DMA setup + driver launch. */
    add_link(pf, ddr5, gddr7, 50e9, 48e-12, 10e-6);

    /* ---- CPU: 8 Lion Cove P-cores + 16 Skymont E-cores ----
     * Clock = P-core clock; E-cores scale in proportion (base 2.1 vs 2.8).
     * Nominal = base clocks (P 2.8 GHz, E 2.1 GHz), where Intel specifies
     * Processor Base Power 55 W; Maximum Turbo Power 160 W; Tj max 105 °C. */
    qeil_unit *u = add_unit(pf, "cpu", QEIL_UNIT_CPU, ddr5);
    /* f32: P-core 2 x 256-bit FMA = 32 FLOP/cycle, E-core 4 x 128-bit FMA =
     * 32 FLOP/cycle: 8 x 32 x 2.8e9 + 16 x 32 x 2.1e9 = 1.792e12. No native
     * FP16 arithmetic in AVX2 (F16C converts): f16 = f32 rate. int8 via
     * AVX-VNNI dot products ≈ 4x the f32 rate. No int4 instructions. */
    set_peaks(u, 1.792e12, 1.792e12, 7.168e12, 0);
    /* eta_compute 0.6 (GEMM on AVX2 cores), eta_mem 0.75 (DDR5 STREAM-like
     * efficiency): class defaults. e_byte: DDR5 40 pJ/B + 8 pJ/B on-chip. */
    set_mem(u, 102.4e9, 0.6, 0.75, 48e-12);
    /* 55 W at base = 6 W constant (ring, L3, memory controller, SoC tile)
     * + 10 W leakage at 60 °C + 39 W dynamic. e_op_f32 = 39/(0.6 x 1.792e12)
     * = 36 pJ/FLOP; int8 9.1 pJ/op. */
    set_power(u, 39, 6, 10, 60);
    /* Cooler of an 18" workstation laptop: ~100 W sustained at 90 °C ->
     * R_th = (90 - 25) / 100 = 0.65 K/W; ~150 g copper heat pipes + fins ->
     * C_th ≈ 150 x 0.385 ≈ 60 J/K. At 160 W (MTP) the steady state is far
     * above the throttle limit, as on the real machine. */
    set_thermal(u, 0.65, 60, 105);
    /* P-core clocks; voltages: typical Intel client curve 0.65 V @ 0.8 GHz
     * .. 1.25 V @ 5.0 GHz (Intel publishes no V/f table). */
    static const double cpu_f[] = {0.8, 1.6, 2.8, 3.6, 4.4, 5.0};
    set_dvfs(u, cpu_f, N_OF(cpu_f), 2, (vf_curve){0.8, 0.65, 5.0, 1.25});

    /* ---- iGPU: Intel Graphics, Xe-LPG, 4 Xe-cores = 64 EUs, no XMX ---- */
    u = add_unit(pf, "igpu", QEIL_UNIT_IGPU, ddr5);
    /* 64 EU x 8 FP32 lanes x 2 x 1.9 GHz = 1.946 TFLOP/s; f16 2x; int8 by
     * DP4a 4x the f32 rate (TechPowerUp, Arrow Lake iGPU: 4 Xe-cores, 64
     * EUs, 512 shaders, DP4a, no XMX; max dynamic clock ≈ 1.9 GHz). */
    set_peaks(u, 1.9456e12, 3.8912e12, 7.7824e12, 0);
    set_mem(u, 102.4e9, 0.6, 0.75, 44e-12);
    /* ~12 W at 1.9 GHz for a 4-Xe-core iGPU: 1.2 W constant, 1.8 W leakage
     * at 60 °C, 9 W dynamic -> int8 1.9 pJ/op. */
    set_power(u, 9, 1.2, 1.8, 60);
    set_thermal(u, 0.65, 60, 105); /* shares the CPU cooler */
    static const double igpu_f[] = {0.6, 1.0, 1.4, 1.9};
    set_dvfs(u, igpu_f, N_OF(igpu_f), 3, (vf_curve){0.6, 0.65, 1.9, 1.10});

    /* ---- NPU: Intel AI Boost (NPU 3720 class) ----
     * Intel: 13 TOPS int8. 2 neural compute engines x 2048 int8 MAC = 4096
     * MAC/cycle -> 13e12 / 8192 = 1.59 GHz. FP16 at half the int8 rate. */
    u = add_unit(pf, "npu", QEIL_UNIT_NPU, ddr5);
    u->src_compute = QEIL_SRC_DEFAULT; /* its DRAM port bandwidth is assumed */
    set_peaks(u, 0, 6.5e12, 13e12, 0);
    /* Its fabric port reaches ~64 GB/s of the 102.4 GB/s pool (default:
     * NPUs have a narrower path to DRAM than the CPU cluster). */
    set_mem(u, 64e9, 0.5, 0.7, 44e-12);
    /* ~3.3 W flat out: 0.3 W constant, 0.4 W leakage, 2.6 W dynamic ->
     * int8 0.40 pJ/op, the platform's most efficient int8 unit. */
    set_power(u, 2.6, 0.3, 0.4, 60);
    set_thermal(u, 0.65, 60, 105); /* shares the CPU cooler */
    static const double npu_f[] = {0.8, 1.2, 1.587};
    set_dvfs(u, npu_f, N_OF(npu_f), 2, (vf_curve){0.8, 0.65, 1.587, 0.85});

    /* ---- dGPU: NVIDIA RTX PRO 5000 Blackwell laptop GPU (GB203) ----
     * 82 SMs, 10,496 CUDA cores, 328 5th-gen Tensor cores, 24 GB GDDR7
     * 256-bit (NVIDIA RTX PRO Blackwell laptop line-up; purepc.pl table).
     * Nominal clock 1.8 GHz: ~1.81 GHz reported under load in a Dell Pro
     * Max 18 Plus with a 285HX (Benchleaks OpenCL run). */
    u = add_unit(pf, "rtx-pro-5000", QEIL_UNIT_GPU, gddr7);
    /* f32: 10496 x 2 x 1.8e9 = 37.8 TFLOP/s. Tensor, dense, per SM per clock
     * (from RTX 5090 / PRO 6000 Blackwell: AI TOPS / (SMs x boost clock)):
     * f16 1024, int8 2048, 4-bit (FP4) 4096 -> x 82 x 1.8e9. */
    set_peaks(u, 37.7856e12, 151.1424e12, 302.2848e12, 604.5696e12);
    /* eta_compute 0.7, eta_mem 0.85 (GDDR achieves 85-90 % of peak):
     * defaults. GDDR7 48 pJ/B + 4 pJ/B on-chip. */
    set_mem(u, 896e9, 0.7, 0.85, 52e-12);
    /* Total graphics power 150 W (+25 W Dynamic Boost = 175 W max): 20 W
     * constant (GDDR7 refresh/IO, PCIe, clocks), 25 W leakage at 75 °C,
     * 105 W dynamic -> f16 0.99 pJ/FLOP, int8 0.50 pJ/op. The big constant
     * and leakage power is what makes idling it expensive. */
    set_power(u, 105, 20, 25, 75);
    /* Its own vapour chamber holds the 150 W TGP at ~75 °C: R_th = 50 / 150
     * = 0.33 K/W (175 W -> 83 °C); ~200 g copper -> C_th ≈ 80 J/K. */
    set_thermal(u, 0.33, 80, 105);
    /* Typical NVIDIA V/f curve 0.70 V @ 0.6 GHz .. 1.05 V @ 2.1 GHz. */
    static const double gpu_f[] = {0.6, 1.0, 1.4, 1.8, 2.1};
    set_dvfs(u, gpu_f, N_OF(gpu_f), 3, (vf_curve){0.6, 0.70, 2.1, 1.05});
}

/* ------------------------------------------------------------------------ */
/* NVIDIA Jetson Orin (Samsung 8 nm, Ampere GA10B GPU)                       */
/* ------------------------------------------------------------------------ */

/* Family defaults shared by Orin Nano and AGX Orin, so the power modes and
 * modules are consistent with each other. Dynamic power P = k n V^2 f.
 *  - A78AE core: k = 0.53 W/(V^2 GHz): 12 cores at 2.2 GHz, 1.0 V ≈ 14 W,
 *    about a quarter of the AGX Orin's 60 W MAXN budget.
 *  - GA10B SM: k = 1.7 W/(V^2 GHz): 16 SMs at 1.3 GHz, 1.0 V ≈ 35 W.
 *  - NVDLA v2: 3.0 W dynamic at 1.6 GHz, 1.0 V (NVIDIA: DLA is several times
 *    more energy-efficient than the GPU on the same network).
 * V/f curves (NVIDIA publishes clocks, not voltages): CPU 0.60 V @ 0.7296
 * GHz .. 1.00 V @ 2.2016 GHz; GPU 0.60 V @ 0.306 .. 1.00 V @ 1.3005 GHz;
 * DLA 0.60 V @ 0.6144 .. 1.00 V @ 1.6 GHz. */
static const vf_curve ORIN_CPU_VF = {0.7296, 0.60, 2.2016, 1.00};
static const vf_curve ORIN_GPU_VF = {0.306, 0.60, 1.3005, 1.00};
static const vf_curve ORIN_DLA_VF = {0.6144, 0.60, 1.6, 1.00};
#define ORIN_K_CPU 0.53
#define ORIN_K_SM 1.7
#define ORIN_T_MAX 105.0 /* °C, Orin maximum operating junction temperature */

/* A78AE cluster: 16 FLOP/cycle/core f32 (2 x 128-bit FMA), f16 2x (FP16
 * NEON), int8 4x (SDOT). Constant 0.3 W per powered 4-core cluster, leakage
 * 0.08 W per core at 1.0 V and 60 °C (scaled by V). */
static void orin_cpu(qeil_unit *u, int cores, int clusters, const double *f_GHz, int n,
                     double pool_bw, double r_th, double c_th)
{
    double f = f_GHz[n - 1], v = volt_at(ORIN_CPU_VF, f);
    double f32 = cores * 16 * f * GHZ;
    set_peaks(u, f32, 2 * f32, 4 * f32, 0);
    /* An A78AE cluster reaches about half of Orin's DRAM peak (default). */
    set_mem(u, pool_bw, 0.6, 0.5, 40e-12); /* LPDDR5 32 + 8 pJ/B */
    set_power(u, ORIN_K_CPU * cores * v * v * f, 0.3 * clusters, 0.08 * cores * v, 60);
    set_thermal(u, r_th, c_th, ORIN_T_MAX);
    set_dvfs(u, f_GHz, n, n - 1, ORIN_CPU_VF);
}

/* GA10B: per SM per clock 256 FLOP f32 (128 CUDA cores), tensor dense f16
 * 2048, int8 4096, int4 8192 (Orin Nano Super: 67 sparse int8 TOPS at 1020
 * MHz with 8 SMs -> 33.5 dense -> 4106 ≈ 4096 /SM/clock). Constant 0.4 W +
 * 0.2 W per powered TPC (2 SMs); leakage 0.15 W per SM at 1.0 V, 60 °C. */
static void orin_gpu(qeil_unit *u, int sms, const double *f_GHz, int n, double pool_bw,
                     double r_th, double c_th)
{
    double f = f_GHz[n - 1], v = volt_at(ORIN_GPU_VF, f), c = sms * f * GHZ;
    set_peaks(u, 256 * c, 2048 * c, 4096 * c, 8192 * c);
    set_mem(u, pool_bw, 0.7, 0.8, 36e-12); /* LPDDR5 32 + 4 pJ/B */
    set_power(u, ORIN_K_SM * sms * v * v * f, 0.4 + 0.2 * sms / 2, 0.15 * sms * v, 60);
    set_thermal(u, r_th, c_th, ORIN_T_MAX);
    set_dvfs(u, f_GHz, n, n - 1, ORIN_GPU_VF);
}

typedef struct {
    const char *name, *desc;
    int cpu_cores, cpu_clusters;
    double cpu_f[8];
    int n_cpu_f;
    int gpu_sms;
    double gpu_f[8];
    int n_gpu_f;
    double emc_MHz;
} orin_nano_mode;

/* Jetson Orin Nano 8 GB (Super firmware) power modes. Clocks are the
 * nvpmodel caps from NVIDIA's L4T configuration files
 * nvpmodel_p3767_0003.conf (7W) and nvpmodel_p3767_0003_super.conf (15W,
 * 25W); the lists are the available frequencies up to each cap. In 7W only
 * 2 of 4 TPCs are powered (TPC_PG_MASK 252) and 4 of 6 CPU cores are
 * online. EMC 2133 MHz = LPDDR5-4266 x 128 bit = 68.3 GB/s; 3199 MHz (the
 * nvpmodel value for 3.2 GHz, LPDDR5-6400) = 102.4 GB/s ("102 GB/s" in the Super developer kit datasheet). */
static const orin_nano_mode NANO_MODES[3] = {
    {"jetson-orin-nano-super-7w",
     "NVIDIA Jetson Orin Nano Super 8 GB, nvpmodel 7W: 4x Cortex-A78AE @ 0.96 GHz, Ampere GPU "
     "512 of 1024 cores @ 408 MHz, LPDDR5 68 GB/s; no DLA",
     4, 1, {0.7296, 0.96}, 2, 4, {0.306, 0.408}, 2, 2133},
    {"jetson-orin-nano-super-15w",
     "NVIDIA Jetson Orin Nano Super 8 GB, nvpmodel 15W: 6x Cortex-A78AE @ 1.4976 GHz, Ampere GPU "
     "1024 cores @ 612 MHz, LPDDR5 68 GB/s; no DLA",
     6, 2, {0.7296, 0.96, 1.1904, 1.4976}, 4, 8, {0.306, 0.408, 0.51, 0.612}, 4, 2133},
    {"jetson-orin-nano-super-25w",
     "NVIDIA Jetson Orin Nano Super 8 GB, nvpmodel 25W: 6x Cortex-A78AE @ 1.344 GHz, Ampere GPU "
     "1024 cores @ 918 MHz, LPDDR5 102 GB/s; no DLA",
     6, 2, {0.7296, 0.96, 1.1904, 1.344}, 4, 8, {0.306, 0.408, 0.612, 0.816, 0.918}, 5, 3200},
};

static void make_orin_nano(qeil_platform *pf, const orin_nano_mode *m)
{
    snprintf(pf->name, sizeof pf->name, "%s", m->name);
    snprintf(pf->description, sizeof pf->description, "%s", m->desc);
    pf->rho_max = 0.9;
    /* 8 GB LPDDR5 128-bit shared by CPU and GPU; 1.5 GiB to JetPack. */
    double bw = 2 * m->emc_MHz * 1e6 * 16; /* DDR x 128 bit */
    int pool = add_pool(pf, "lpddr5", 6.5 * GIB, bw);
    /* Developer-kit heat sink + fan sized for 25 W at ~65 °C: R_th = 40 / 25
     * = 1.6 K/W; ~80 g aluminium -> C_th ≈ 70 J/K. */
    orin_cpu(add_unit(pf, "cpu", QEIL_UNIT_CPU, pool), m->cpu_cores, m->cpu_clusters, m->cpu_f,
             m->n_cpu_f, bw, 1.6, 70);
    orin_gpu(add_unit(pf, "gpu", QEIL_UNIT_IGPU, pool), m->gpu_sms, m->gpu_f, m->n_gpu_f, bw, 1.6,
             70);
}

static void make_agx_orin(qeil_platform *pf)
{
    snprintf(pf->name, sizeof pf->name, "jetson-agx-orin-64gb");
    snprintf(pf->description, sizeof pf->description,
             "NVIDIA Jetson AGX Orin 64 GB, MAXN (60 W): 12x Cortex-A78AE @ 2.2 GHz, Ampere GPU "
             "2048 cores @ 1.3 GHz, 2x NVDLA v2 @ 1.6 GHz, LPDDR5 204.8 GB/s");
    pf->rho_max = 0.9;
    /* 64 GB LPDDR5 256-bit at 6400 MT/s = 204.8 GB/s (datasheet); 2 GiB OS. */
    int pool = add_pool(pf, "lpddr5", 62 * GIB, 204.8e9);
    /* Developer-kit cooler sized for 60 W at ~75 °C: R_th = 50/60 = 0.83
     * K/W; ~300 g aluminium -> C_th ≈ 270 J/K. */
    double r = 0.83, c = 270;
    /* MAXN: 12 cores (3 clusters) up to 2.2016 GHz; A78AE frequency table. */
    static const double cpu_f[] = {0.7296, 1.1136, 1.4976, 1.728, 1.9584, 2.2016};
    orin_cpu(add_unit(pf, "cpu", QEIL_UNIT_CPU, pool), 12, 3, cpu_f, N_OF(cpu_f), 204.8e9, r, c);
    /* 16 SMs (2048 cores, 64 Tensor cores) up to 1300.5 MHz: f16 42.6, int8
     * 85.2 dense TOPS (170 sparse, NVIDIA's GPU share of 275 TOPS). */
    static const double gpu_f[] = {0.306, 0.408, 0.612, 0.816, 1.02, 1.3005};
    orin_gpu(add_unit(pf, "gpu", QEIL_UNIT_IGPU, pool), 16, gpu_f, N_OF(gpu_f), 204.8e9, r, c);
    /* 2x NVDLA v2: 105 sparse int8 TOPS together (NVIDIA: 275 = 170 GPU +
     * 105 DLA) -> 26.25 dense TOPS each at 1.6 GHz; FP16 at half rate; no
     * f32 or int4. Clock caps 614.4 / 1228.8 / 1369.6 MHz from the AGX
     * nvpmodel modes, 1.6 GHz at MAXN. */
    static const double dla_f[] = {0.6144, 1.2288, 1.3696, 1.6};
    for (int i = 0; i < 2; i++) {
        qeil_unit *u = add_unit(pf, i ? "dla1" : "dla0", QEIL_UNIT_NPU, pool);
        u->src_compute = QEIL_SRC_DEFAULT; /* its DRAM port bandwidth is assumed */
        set_peaks(u, 0, 13.125e12, 26.25e12, 0);
        /* The DLA reads DRAM through its own port; ~50 GB/s (default). */
        set_mem(u, 50e9, 0.5, 0.7, 36e-12);
        /* 3.0 W dynamic, 0.3 W constant, 0.3 W leakage -> int8 0.23 pJ/op
         * vs 0.59 pJ/op on the GPU. */
        set_power(u, 3.0, 0.3, 0.3, 60);
        set_thermal(u, r, c, ORIN_T_MAX);
        set_dvfs(u, dla_f, N_OF(dla_f), 3, ORIN_DLA_VF);
    }
}

/* ------------------------------------------------------------------------ */
/* Qualcomm Snapdragon 8 Gen 3 (SM8650, TSMC N4P) in a phone                 */
/* ------------------------------------------------------------------------ */

static void make_snapdragon(qeil_platform *pf)
{
    snprintf(pf->name, sizeof pf->name, "snapdragon-8-gen3");
    snprintf(pf->description, sizeof pf->description,
             "Qualcomm Snapdragon 8 Gen 3 phone: Kryo CPU (1x X4 3.3 GHz, 5x A720, 2x A520), "
             "Adreno 750, Hexagon NPU, 12 GB LPDDR5X-9600 76.8 GB/s; ~5 W sustained");
    pf->rho_max = 0.9;
    /* LPDDR5X at 4800 MHz (9600 MT/s) x 64 bit = 76.8 GB/s (Qualcomm spec);
     * 12 GB phone, 4 GiB kept by Android. */
    int pool = add_pool(pf, "lpddr5x", 8 * GIB, 76.8e9);
    /* A phone sheds ~5 W sustained before its skin gets too hot: R_th = (75 -
     * 25) / 5 = 10 K/W; vapour chamber + frame ≈ 60 J/K (minutes-scale
     * heating, as phones throttle after a few minutes). Junction limit 105. */
    double r = 10, c = 60, tmax = 105;

    /* CPU: clock = prime core; others scale. At max clocks: X4 4x128-bit FMA
     * 32 FLOP/cycle x 3.3 GHz = 105.6 G; A720 2x128-bit 16 x (3x3.2 + 2x3.0)
     * = 249.6 G; A520 8 x 2 x 2.3 = 36.8 G -> 392 GFLOP/s. Nominal 2.2 GHz
     * (sustainable in a phone) = 2/3 of that: 261.3 G; f16 2x, int8 4x. */
    qeil_unit *u = add_unit(pf, "cpu", QEIL_UNIT_CPU, pool);
    set_peaks(u, 261.33e9, 522.67e9, 1045.3e9, 0);
    set_mem(u, 76.8e9, 0.6, 0.6, 36e-12); /* LPDDR5X 28 + 8 pJ/B */
    /* 4.5 W at nominal: 0.4 W constant, 0.5 W leakage at 75 °C, 3.6 W
     * dynamic -> f32 23 pJ/FLOP. */
    set_power(u, 3.6, 0.4, 0.5, 75);
    set_thermal(u, r, c, tmax);
    /* Typical TSMC N4P mobile curve 0.55 V @ 1.0 GHz .. 1.05 V @ 3.3 GHz. */
    static const double cpu_f[] = {1.0, 1.6, 2.2, 2.8, 3.3};
    set_dvfs(u, cpu_f, N_OF(cpu_f), 2, (vf_curve){1.0, 0.55, 3.3, 1.05});

    /* Adreno 750: 1536 FP32 ALUs, up to 903 MHz (2.77 TFLOP/s); nominal 720
     * MHz (sustained): 1536 x 2 x 0.72e9 = 2.21 TFLOP/s; f16 2x; int8 4x. */
    u = add_unit(pf, "adreno-750", QEIL_UNIT_IGPU, pool);
    set_peaks(u, 2.21184e12, 4.42368e12, 8.84736e12, 0);
    set_mem(u, 76.8e9, 0.6, 0.75, 32e-12);
    /* ~5 W at 720 MHz: 0.4 W constant, 0.6 W leakage, 4.0 W dynamic. */
    set_power(u, 4.0, 0.4, 0.6, 75);
    set_thermal(u, r, c, tmax);
    static const double gpu_f[] = {0.231, 0.422, 0.578, 0.72, 0.903};
    set_dvfs(u, gpu_f, N_OF(gpu_f), 3, (vf_curve){0.231, 0.55, 0.903, 0.95});

    /* Hexagon NPU: Qualcomm publishes no TOPS figure for 8 Gen 3; 45 int8
     * TOPS is the commonly cited value (e.g. runlocalai.co hardware page);
     * int4 2x (8 Gen 3 added INT4), f16 half rate; no f32. */
    u = add_unit(pf, "hexagon", QEIL_UNIT_NPU, pool);
    u->src_compute = QEIL_SRC_DEFAULT; /* TOPS and clock unpublished, port assumed */
    set_peaks(u, 0, 22.5e12, 45e12, 90e12);
    set_mem(u, 51.2e9, 0.5, 0.7, 32e-12); /* 2/3 of the pool: default */
    /* ~3 W flat out: 0.2 constant, 0.3 leakage, 2.5 dynamic -> int8 0.11
     * pJ/op (≈ 9 TOPS/W at the achieved rate). */
    set_power(u, 2.5, 0.2, 0.3, 75);
    set_thermal(u, r, c, tmax);
    set_single_point(u, 0.75); /* clock not published */
}

/* ------------------------------------------------------------------------ */
/* Apple M3 (TSMC N3B) in a 14" MacBook Pro                                   */
/* ------------------------------------------------------------------------ */

static void make_apple_m3(qeil_platform *pf)
{
    snprintf(pf->name, sizeof pf->name, "apple-m3");
    snprintf(pf->description, sizeof pf->description,
             "Apple M3 (MacBook Pro 14\"): 4P+4E CPU, 10-core GPU, 16-core Neural Engine 18 TOPS, "
             "16 GB LPDDR5-6400 unified memory 100 GB/s");
    pf->rho_max = 0.9;
    /* Apple: "100GB/s unified memory bandwidth" (LPDDR5-6400, 128 bit);
     * 16 GB, 4 GiB kept by macOS. */
    int pool = add_pool(pf, "lpddr5", 12 * GIB, 100e9);
    /* Fan-cooled 14" chassis: ~30 W sustained at ~85 °C -> R_th = 60/30 = 2.0
     * K/W; heat sink + part of the chassis ≈ 100 J/K. */
    double r = 2.0, c = 100, tmax = 105;

    /* CPU: clock = P-core (max 4.05 GHz); nominal all-core 3.6 GHz, E-cores
     * 2.75 x 3.6/4.05 = 2.44 GHz. P 4x128-bit FMA 32 FLOP/cycle, E 16:
     * 4 x 32 x 3.6 + 4 x 16 x 2.444 = 617 GFLOP/s; f16 2x, int8 (SDOT) 4x.
     * The AMX matrix coprocessor is not modelled (no public rates). */
    qeil_unit *u = add_unit(pf, "cpu", QEIL_UNIT_CPU, pool);
    set_peaks(u, 617.2e9, 1234.4e9, 2468.8e9, 0);
    set_mem(u, 100e9, 0.6, 0.7, 40e-12); /* LPDDR5 32 + 8 pJ/B */
    /* ~16 W all-core: 1 W constant, 2 W leakage at 70 °C, 13 W dynamic. */
    set_power(u, 13, 1, 2, 70);
    set_thermal(u, r, c, tmax);
    static const double cpu_f[] = {1.0, 1.8, 2.6, 3.6, 4.05};
    set_dvfs(u, cpu_f, N_OF(cpu_f), 3, (vf_curve){1.0, 0.60, 4.05, 1.05});

    /* GPU: 10 cores x 128 ALUs x 2 x 1.398 GHz = 3.58 TFLOP/s; FP16 runs at
     * the FP32 rate on Apple GPUs; no faster int8 path (int8 = f32 rate). */
    u = add_unit(pf, "gpu", QEIL_UNIT_IGPU, pool);
    set_peaks(u, 3.57888e12, 3.57888e12, 3.57888e12, 0);
    set_mem(u, 100e9, 0.65, 0.8, 36e-12);
    /* ~17 W: 1.5 W constant, 2.5 W leakage at 70 °C, 13 W dynamic. */
    set_power(u, 13, 1.5, 2.5, 70);
    set_thermal(u, r, c, tmax);
    static const double gpu_f[] = {0.444, 0.808, 1.11, 1.398};
    set_dvfs(u, gpu_f, N_OF(gpu_f), 3, (vf_curve){0.444, 0.60, 1.398, 0.95});

    /* Neural Engine: 16 cores, "18 trillion operations per second" (Apple),
     * FP16; int8 runs at the same rate on M3. */
    u = add_unit(pf, "ane", QEIL_UNIT_NPU, pool);
    u->src_compute = QEIL_SRC_DEFAULT; /* clock unpublished, port assumed */
    set_peaks(u, 0, 18e12, 18e12, 0);
    set_mem(u, 60e9, 0.5, 0.7, 36e-12); /* narrower DRAM path: default */
    /* ~4 W flat out: 0.2 constant, 0.3 leakage, 3.5 dynamic -> 0.39 pJ/op
     * (vs 5.6 pJ/FLOP f16 on the GPU). */
    set_power(u, 3.5, 0.2, 0.3, 70);
    set_thermal(u, r, c, tmax);
    set_single_point(u, 0.8); /* clock not published */
}

/* ------------------------------------------------------------------------ */
/* Raspberry Pi 5 + Hailo-10H (AI HAT+ 2)                                     */
/* ------------------------------------------------------------------------ */

static void make_rpi5_hailo(qeil_platform *pf)
{
    snprintf(pf->name, sizeof pf->name, "rpi5-hailo10h");
    snprintf(pf->description, sizeof pf->description,
             "Raspberry Pi 5 8 GB (4x Cortex-A76 @ 2.4 GHz, LPDDR4X-4267 17 GB/s) + Hailo-10H "
             "(40 TOPS int4, 8 GB own LPDDR4X) on PCIe Gen3 x1");
    pf->rho_max = 0.9;
    /* BCM2712: LPDDR4X-4267 x 32 bit = 17.07 GB/s; 8 GB, 1 GiB to the OS. */
    int lp = add_pool(pf, "lpddr4x", 7 * GIB, 17.07e9);
    /* Hailo-10H on-module LPDDR4X, 8 GB on the AI HAT+ 2. Bus width not
     * published: x32 LPDDR4X-4266 assumed = 17.07 GB/s (consistent with
     * Hailo's ~9.5 tok/s on Qwen2-1.5B at 4 bit). 0.5 GiB to the runtime. */
    int hd = add_pool(pf, "hailo-dram", 7.5 * GIB, 17.07e9);
    /* PCIe Gen3 x1: 8 GT/s x 128/130 / 8 = 0.985 GB/s raw, ~0.8 GB/s
     * effective; older 8 Gb/s SerDes ≈ 8 pJ/bit -> 64 pJ/B; 20 µs/transfer. */
    add_link(pf, lp, hd, 0.8e9, 64e-12, 20e-6);

    /* Cortex-A76: 2x128-bit FMA = 16 FLOP/cycle: 4 x 16 x 2.4e9 = 153.6
     * GFLOP/s; f16 2x; int8 (SDOT) 4x. */
    qeil_unit *u = add_unit(pf, "cpu", QEIL_UNIT_CPU, lp);
    set_peaks(u, 153.6e9, 307.2e9, 614.4e9, 0);
    set_mem(u, 17.07e9, 0.6, 0.6, 48e-12); /* LPDDR4X 40 + 8 pJ/B */
    /* ~5 W for 4 cores at 2.4 GHz: 0.5 constant, 0.6 leakage, 3.9 dynamic. */
    set_power(u, 3.9, 0.5, 0.6, 60);
    /* Official Active Cooler: ~7 W at ~60 °C -> R_th = 35/7 = 5 K/W; ~30 g
     * aluminium -> 30 J/K. t_max 100 so that the default throttle fraction
     * 0.85 gives the Pi firmware's 85 °C soft limit. */
    set_thermal(u, 5, 30, 100);
    static const double cpu_f[] = {1.0, 1.5, 2.0, 2.4};
    set_dvfs(u, cpu_f, N_OF(cpu_f), 3, (vf_curve){1.0, 0.70, 2.4, 0.90});

    /* Hailo-10H: 40 TOPS int4, 20 TOPS int8, 2.5 W typical (Hailo). No
     * floating-point datapath exposed. */
    u = add_unit(pf, "hailo-10h", QEIL_UNIT_NPU, hd);
    u->src_compute = QEIL_SRC_DEFAULT; /* DRAM bandwidth and clock unpublished */
    set_peaks(u, 0, 0, 20e12, 40e12);
    set_mem(u, 17.07e9, 0.5, 0.6, 44e-12); /* LPDDR4X 40 + 4 pJ/B */
    /* 2.5 W typical: 0.3 constant (incl. its DRAM), 0.2 leakage, 2.0 dynamic
     * -> int8 0.20 pJ/op, int4 0.10 pJ/op. */
    set_power(u, 2.0, 0.3, 0.2, 60);
    /* M.2 module with a small heat sink: ~55 °C at 2.5 W -> R_th = 30/2.5 =
     * 12 K/W; ~10 g of aluminium and copper -> C_th 10 J/K. AEC-Q100 grade 2
     * part (ambient to 105 °C): junction limit taken as 125 °C. */
    set_thermal(u, 12, 10, 125);
    set_single_point(u, 0.8); /* clock not published */
}

/* ------------------------------------------------------------------------ */
/* The table                                                                 */
/* ------------------------------------------------------------------------ */

#define N_CATALOG 8
static qeil_platform catalog[N_CATALOG];
static pthread_once_t catalog_once = PTHREAD_ONCE_INIT;

/* Built once, then read-only. */
static void build_catalog(void)
{
    memset(catalog, 0, sizeof catalog);
    make_qeil_laptop(&catalog[0]);
    for (int i = 0; i < 3; i++) make_orin_nano(&catalog[1 + i], &NANO_MODES[i]);
    make_agx_orin(&catalog[4]);
    make_snapdragon(&catalog[5]);
    make_apple_m3(&catalog[6]);
    make_rpi5_hailo(&catalog[7]);
}

size_t qeil_catalog_count(void) { return N_CATALOG; }

const qeil_platform *qeil_catalog_get(size_t i)
{
    if (i >= N_CATALOG) return NULL;
    pthread_once(&catalog_once, build_catalog);
    return &catalog[i];
}

const qeil_platform *qeil_catalog_find(const char *name)
{
    if (!name) return NULL;
    pthread_once(&catalog_once, build_catalog);
    for (size_t i = 0; i < N_CATALOG; i++)
        if (strcmp(catalog[i].name, name) == 0) return &catalog[i];
    return NULL;
}
