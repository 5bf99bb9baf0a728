/* test_probe_vulkan.c — the probe on Vulkan devices (qeil_probe_gpus) and
 * the profile units it writes: a quick real probe of the devices present
 * (lavapipe here: vk0 must measure, peaks finite and > 0), parameter
 * checks, the probe without Vulkan (CPU only, and the reason), and
 * synthetic results for what this machine lacks (a discrete GPU's pool and
 * link, unit names, the profile's limits). SKIP where no Vulkan device is
 * there. */
#include <stdlib.h>

#include "qeil/device.h"
#include "qeil/engine.h"
#include "qeil/runtime.h"
#include "test.h"

static qeil_ctx *ctx;
static qeil_probe_result res; /* the quick real probe, shared */
static int have_vk;

/* A CPU result that passes qeil_probe_to_platform (as test_probe's). */
static void fake_cpu(qeil_probe_result *r)
{
    memset(r, 0, sizeof *r);
    r->n_threads = 2;
    r->n_cores = 2;
    r->f32_flops[1] = 1e11;
    r->int8_ops[1] = 4e11;
    r->dram_bw_Bps = 2e10;
    r->mem_total_B = 16e9;
    r->freq_Hz = 3e9;
    r->dram_n_points = 2;
}

static qeil_probe_params quick(void)
{
    qeil_probe_params p = qeil_probe_default_params();
    p.min_time_s = 0.01;
    p.max_ws_B = 8u << 20;
    return p;
}

static int n_steps;
static void on_step(void *user, const char *what, double frac)
{
    (void)user;
    if (strncmp(what, "vk", 2) == 0 && frac >= 0 && frac <= 1) n_steps++;
}

TEST(probe_gpus_measures_vk0)
{
    qeil_probe_params p = quick();
    p.progress = on_step;
    CHECK_EQ_INT(qeil_probe_gpus(ctx, &p, &res), QEIL_OK);
    if (res.n_gpus == 0) SKIP(res.gpu_status[0] ? res.gpu_status : "no Vulkan device");
    have_vk = 1;
    CHECK_EQ_STR(res.gpu_status, "");
    CHECK(n_steps >= 2); /* f32 and the copy at least, each announced */
    for (int i = 0; i < res.n_gpus; i++) {
        const qeil_probe_gpu *g = &res.gpus[i];
        char dev[16];
        snprintf(dev, sizeof dev, "vk%d", i);
        CHECK_EQ_STR(g->device, dev);
        CHECK(g->name[0] != '\0');
        CHECK(g->type[0] != '\0');
        CHECK_EQ_STR(g->error, "");
        CHECK(isfinite(g->f32_flops) && g->f32_flops > 0);
        CHECK(isfinite(g->bw_Bps) && g->bw_Bps > 0);
        CHECK(isfinite(g->f16_flops) && g->f16_flops >= 0);
        CHECK(isfinite(g->int8_ops) && g->int8_ops >= 0);
        /* within this machine's reach: below 1 PFLOP/s and 100 TB/s */
        CHECK(g->f32_flops < 1e15 && g->bw_Bps < 1e14);
        /* the copy's buffers share max_ws_B, whole 16-byte elements */
        CHECK(g->bw_ws_B > 0 && g->bw_ws_B <= p.max_ws_B / 2 && g->bw_ws_B % 16 == 0);
        CHECK(g->form_f32[0] && g->form_bw[0] && g->timing[0]);
        CHECK_EQ_INT(g->form_f16[0] != '\0', g->f16_flops > 0);
        CHECK_EQ_INT(g->form_int8[0] != '\0', g->int8_ops > 0);
        CHECK(g->n_groups >= 64);
    }
    /* lavapipe offers shaderFloat16 and shaderInt8: all three measured */
    if (strstr(res.gpus[0].name, "llvmpipe")) {
        CHECK_EQ_STR(res.gpus[0].type, "cpu");
        CHECK(res.gpus[0].unified_memory);
        CHECK(res.gpus[0].f16_flops > 0);
        CHECK(res.gpus[0].int8_ops > 0);
        CHECK_NEAR(res.gpus[0].link_bw_Bps, 0, 0, 0); /* host memory: no bus to measure */
    }
}

/* The profile from a CPU result and the measured devices: vk0 is a unit
 * with device "vk0", its measured peaks (4 significant digits), it
 * validates, round-trips through JSON, and a plan on it places on vk0. */
TEST(profile_has_a_vk0_unit)
{
    if (!have_vk) SKIP("no Vulkan device measured");
    static qeil_probe_result r;
    fake_cpu(&r);
    r.n_gpus = res.n_gpus;
    memcpy(r.gpus, res.gpus, sizeof r.gpus);
    qeil_platform pf;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_OK);
    CHECK_EQ_INT(qeil_platform_validate(ctx, &pf), QEIL_OK);
    CHECK_EQ_INT(pf.n_units, 1 + res.n_gpus);
    CHECK_EQ_STR(pf.units[0].device, "cpu");
    const qeil_unit *u = &pf.units[1];
    CHECK_EQ_STR(u->device, "vk0");
    CHECK_CONTAINS(pf.description, "Vulkan vk0");
    CHECK_EQ_INT(u->src_compute, QEIL_SRC_MEASURED);
    CHECK_EQ_INT(u->src_power, QEIL_SRC_DEFAULT);
    CHECK_NEAR(u->peak_ops[QEIL_DT_F32], res.gpus[0].f32_flops, 5e-4, 0);
    CHECK_NEAR(u->peak_ops[QEIL_DT_F16], res.gpus[0].f16_flops, 5e-4, 0);
    CHECK_NEAR(u->peak_ops[QEIL_DT_INT8], res.gpus[0].int8_ops, 5e-4, 0);
    CHECK_NEAR(u->peak_ops[QEIL_DT_INT4], 0, 0, 0);
    CHECK_NEAR(u->mem_bw_Bps, res.gpus[0].bw_Bps, 5e-4, 0);
    CHECK(pf.pools[u->pool].bw_Bps >= u->mem_bw_Bps);
    if (strcmp(res.gpus[0].type, "cpu") == 0 || strcmp(res.gpus[0].type, "integrated") == 0) {
        /* the host's memory: the cpu's pool, no link */
        CHECK_EQ_INT(u->kind, QEIL_UNIT_IGPU);
        CHECK_EQ_INT(u->pool, 0);
    }
    if (strstr(res.gpus[0].name, "llvmpipe")) {
        /* "llvmpipe (LLVM 15.0.6, 256 bits)" -> "llvmpipe-llvm-15-0-6-256-bits" */
        CHECK(strncmp(u->name, "llvmpipe-llvm-", 14) == 0);
        CHECK(strspn(u->name, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(u->name));
        CHECK(strstr(u->name, "--") == NULL);
        /* a CPU implementation takes the CPU's per-core defaults: 2.5 W x 2 cores */
        CHECK_NEAR(u->e_op_J[QEIL_DT_F32], 5.0 / u->peak_ops[QEIL_DT_F32], 0.005, 0);
        CHECK_NEAR(u->p_const_W, 1.0, 0, 0);
    }
    char *json = NULL;
    CHECK_EQ_INT(qeil_platform_to_json(ctx, &pf, &json), QEIL_OK);
    if (json) {
        qeil_platform back;
        CHECK_EQ_INT(qeil_platform_parse_json(ctx, json, strlen(json), &back), QEIL_OK);
        CHECK_EQ_INT(back.n_units, pf.n_units);
        CHECK_EQ_STR(back.units[1].device, "vk0");
        CHECK_EQ_STR(back.units[1].name, u->name);
        CHECK_NEAR(back.units[1].peak_ops[QEIL_DT_F16], u->peak_ops[QEIL_DT_F16], 0, 0);
        qeil_free(ctx, json);
    }
    /* a plan's decode on unit 1, prefill on unit 0: vk0 and cpu */
    qeil_assignment a;
    memset(&a, 0, sizeof a);
    for (int w = 0; w < 4; w++) a.dc_unit[w] = 1;
    uint8_t b[4];
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, &a, 1, 4, b), QEIL_OK);
    for (int w = 0; w < 4; w++) CHECK_EQ_STR(qeil_engine_device_name(b[w]), "vk0");
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, &a, 0, 4, b), QEIL_OK);
    for (int w = 0; w < 4; w++) CHECK_EQ_STR(qeil_engine_device_name(b[w]), "cpu");
}

/* Without a Vulkan loader the probe succeeds with the CPU only and says
 * why (QEIL_VULKAN_LIB, which the loader honours). */
TEST(no_vulkan_cpu_only_with_reason)
{
    static qeil_probe_result r;
    fake_cpu(&r);
    qeil_probe_params p = quick();
    setenv("QEIL_VULKAN_LIB", "/nonexistent/libvulkan.so.1", 1);
    qeil_status st = qeil_probe_gpus(ctx, &p, &r);
    unsetenv("QEIL_VULKAN_LIB");
    CHECK_EQ_INT(st, QEIL_OK);
    CHECK_EQ_INT(r.n_gpus, 0);
    CHECK_CONTAINS(r.gpu_status, "cannot load /nonexistent/libvulkan.so.1");
    qeil_platform pf;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_OK);
    CHECK_EQ_INT(pf.n_units, 1);
    CHECK_EQ_STR(pf.units[0].device, "cpu");
    /* the CPU fields were left as they were */
    CHECK_NEAR(r.f32_flops[1], 1e11, 0, 0);
}

TEST(rejects_bad_params)
{
    static qeil_probe_result r;
    qeil_probe_params p = quick();
    p.min_time_s = 0;
    CHECK_EQ_INT(qeil_probe_gpus(ctx, &p, &r), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "min_time_s: 0 is out of range");
    p.min_time_s = NAN;
    CHECK_EQ_INT(qeil_probe_gpus(ctx, &p, &r), QEIL_ERR_RANGE);
    p.min_time_s = 61;
    CHECK_EQ_INT(qeil_probe_gpus(ctx, &p, &r), QEIL_ERR_RANGE);
    p = quick();
    p.max_ws_B = 1024;
    CHECK_EQ_INT(qeil_probe_gpus(ctx, &p, &r), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "max_ws_B: 1024");
    CHECK_EQ_INT(qeil_probe_gpus(ctx, &p, NULL), QEIL_ERR_INVALID);
}

/* A synthetic device as a driver would report it. */
static void fake_gpu(qeil_probe_gpu *g, int i, const char *name, const char *type, int unified)
{
    memset(g, 0, sizeof *g);
    snprintf(g->device, sizeof g->device, "vk%d", i);
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->type, sizeof g->type, "%s", type);
    g->unified_memory = unified;
    g->heap_B = 24e9;
    g->f32_flops = 8.2e13;
    g->f16_flops = 1.65e14;
    g->int8_ops = 3.3e14;
    g->bw_Bps = 9.0e11;
}

/* What this machine cannot show: discrete devices get a pool and a link
 * (measured, else the documented 25 GB/s default), resizable BAR or not;
 * integrated ones share the host pool and lift its bandwidth to theirs;
 * names are sanitised and made unique; a failed device is no unit; f16
 * unsupported is 0 with e_op 0; a fourth discrete device finds no pool. */
TEST(synthetic_devices_in_the_profile)
{
    static qeil_probe_result r;
    fake_cpu(&r);
    r.n_gpus = 4;
    fake_gpu(&r.gpus[0], 0, "NVIDIA GeForce RTX 4090", "discrete", 1); /* resizable BAR */
    r.gpus[0].link_bw_Bps = 2.41234e10;
    fake_gpu(&r.gpus[1], 1, "NVIDIA GeForce RTX 4090", "discrete", 0);
    fake_gpu(&r.gpus[2], 2, "  Intel(R) Graphics (ARL) ", "integrated", 1);
    r.gpus[2].f16_flops = 0; /* no shaderFloat16 */
    r.gpus[2].bw_Bps = 5e10; /* above the CPU's 2e10 */
    fake_gpu(&r.gpus[3], 3, "broken", "discrete", 0);
    snprintf(r.gpus[3].error, sizeof r.gpus[3].error, "vkCreateDevice: VK_ERROR_DEVICE_LOST");
    qeil_platform pf;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_OK);
    CHECK_EQ_INT(pf.n_units, 4); /* cpu + 3; the broken one left out */
    CHECK_EQ_INT(pf.n_pools, 3);
    CHECK_EQ_INT(pf.n_links, 2);
    const qeil_unit *d0 = &pf.units[1], *d1 = &pf.units[2], *ig = &pf.units[3];
    CHECK_EQ_STR(d0->name, "nvidia-geforce-rtx-4090");
    CHECK_EQ_STR(d1->name, "nvidia-geforce-rtx-4090-vk1");
    CHECK_EQ_STR(ig->name, "intel-r-graphics-arl");
    CHECK_EQ_STR(d0->device, "vk0");
    CHECK_EQ_STR(d1->device, "vk1");
    CHECK_EQ_STR(ig->device, "vk2");
    CHECK_EQ_INT(d0->kind, QEIL_UNIT_GPU);
    CHECK_EQ_INT(d1->kind, QEIL_UNIT_GPU);
    CHECK_EQ_INT(ig->kind, QEIL_UNIT_IGPU);
    CHECK_EQ_STR(pf.pools[d0->pool].name, "vk0-mem");
    CHECK_NEAR(pf.pools[d0->pool].capacity_B, 24e9, 0, 0);
    CHECK_NEAR(pf.pools[d0->pool].bw_Bps, 9e11, 0, 0);
    const int l0 = qeil_platform_link(&pf, 0, d0->pool), l1 = qeil_platform_link(&pf, 0, d1->pool);
    CHECK(l0 >= 0 && l1 >= 0);
    if (l0 >= 0) CHECK_NEAR(pf.links[l0].bw_Bps, 2.412e10, 0, 0); /* measured, 4 digits */
    if (l1 >= 0) CHECK_NEAR(pf.links[l1].bw_Bps, 25e9, 0, 0);     /* the default */
    CHECK_EQ_INT(ig->pool, 0);
    CHECK_NEAR(pf.pools[0].bw_Bps, 5e10, 0, 0);
    CHECK_NEAR(ig->peak_ops[QEIL_DT_F16], 0, 0, 0);
    CHECK_NEAR(ig->e_op_J[QEIL_DT_F16], 0, 0, 0);
    /* class defaults: a discrete GPU's 100 W dynamic over its rate; an
     * integrated one's 10 W */
    CHECK_NEAR(d0->e_op_J[QEIL_DT_F32], 100.0 / 8.2e13, 0.005, 0);
    CHECK_NEAR(ig->e_op_J[QEIL_DT_F32], 10.0 / 8.2e13, 0.005, 0);
    CHECK_NEAR(d0->t_max_C, 90, 0, 0);
    /* each class's design point is stable: R κ P_leak(T_design) < 1 */
    for (int i = 1; i < pf.n_units; i++) {
        const qeil_unit *u = &pf.units[i];
        const double t_design = u->kind == QEIL_UNIT_GPU ? 75.0 : 80.0;
        CHECK(u->r_th_KpW * u->leak_kappa_perK * u->p_leak_ref_W *
                  exp(u->leak_kappa_perK * (t_design - u->t_leak_ref_C)) <
              1.0);
    }
    /* a fourth discrete device: no pool left (dram + 3 of QEIL_MAX_POOLS 4) */
    snprintf(r.gpus[3].error, sizeof r.gpus[3].error, "%s", "");
    fake_gpu(&r.gpus[2], 2, "dgpu two", "discrete", 0);
    fake_gpu(&r.gpus[3], 3, "dgpu three", "discrete", 0);
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_OK);
    CHECK_EQ_INT(pf.n_pools, QEIL_MAX_POOLS);
    CHECK_EQ_INT(pf.n_units, 4);
    CHECK_EQ_STR(pf.units[3].device, "vk2");
    /* a device with no usable figure (NaN, or outside a profile's ranges:
     * bandwidth below 1e6 B/s) is left out, not an error */
    r.gpus[0].f32_flops = NAN;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_OK);
    CHECK_EQ_STR(pf.units[1].device, "vk1");
    r.gpus[1].bw_Bps = 7.155e5;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_OK);
    CHECK_EQ_STR(pf.units[1].device, "vk2");
    r.gpus[2].link_bw_Bps = INFINITY;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_OK);
    CHECK_EQ_STR(pf.units[1].device, "vk3");
    CHECK_EQ_INT(pf.n_units, 2);
}

int main(void)
{
    ctx = qeil_ctx_create(NULL);
    if (!ctx) return 1;
    RUN(rejects_bad_params);
    RUN(no_vulkan_cpu_only_with_reason);
    RUN(synthetic_devices_in_the_profile);
    RUN(probe_gpus_measures_vk0);
    RUN(profile_has_a_vk0_unit);
    qeil_ctx_free(ctx);
    return test_summary("probe_vulkan");
}
