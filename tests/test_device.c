/* test_device.c — platform profiles: the built-in catalog validates, is
 * physically consistent and round-trips through JSON bit-exactly; the
 * example profiles parse; every bad profile in tests/data/profiles/ is
 * rejected with the right status and a message naming the field; validate
 * catches the same mistakes on hand-built structs; atomic writes; loading
 * by name and by path. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qeil/device.h"
#include "test.h"

static char root[4096];             /* repository root, with a trailing '/' */
static char tmpdir[] = "/tmp/qeil-device-XXXXXX";
static qeil_ctx *ctx;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    size_t got;
    while (s && (got = fread(s + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) {
                free(s);
                s = NULL;
            }
            s = t;
        }
    }
    fclose(f);
    if (len) *len = n;
    return s;
}

static int write_text(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(text, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static void data_path(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s%s", root, rel); }

/* ------------------------------------------------------------------------ */

TEST(enum_names)
{
    CHECK_EQ_STR(qeil_unit_kind_name(QEIL_UNIT_CPU), "cpu");
    CHECK_EQ_STR(qeil_unit_kind_name(QEIL_UNIT_GPU), "gpu");
    CHECK_EQ_STR(qeil_unit_kind_name(QEIL_UNIT_IGPU), "igpu");
    CHECK_EQ_STR(qeil_unit_kind_name(QEIL_UNIT_NPU), "npu");
    CHECK_EQ_STR(qeil_dtype_name(QEIL_DT_F32), "f32");
    CHECK_EQ_STR(qeil_dtype_name(QEIL_DT_F16), "f16");
    CHECK_EQ_STR(qeil_dtype_name(QEIL_DT_INT8), "int8");
    CHECK_EQ_STR(qeil_dtype_name(QEIL_DT_INT4), "int4");
    CHECK_EQ_STR(qeil_source_name(QEIL_SRC_DATASHEET), "datasheet");
    CHECK_EQ_STR(qeil_source_name(QEIL_SRC_MEASURED), "measured");
    CHECK_EQ_STR(qeil_source_name(QEIL_SRC_DEFAULT), "default");
    CHECK_EQ_STR(qeil_unit_kind_name((qeil_unit_kind)42), "?");
}

TEST(catalog_has_the_named_platforms)
{
    static const char *names[] = {"qeil-laptop",
                                  "jetson-orin-nano-super-7w",
                                  "jetson-orin-nano-super-15w",
                                  "jetson-orin-nano-super-25w",
                                  "jetson-agx-orin-64gb",
                                  "snapdragon-8-gen3",
                                  "apple-m3",
                                  "rpi5-hailo10h"};
    CHECK_EQ_INT(qeil_catalog_count(), sizeof names / sizeof *names);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const qeil_platform *pf = qeil_catalog_find(names[i]);
        CHECK(pf != NULL);
        if (pf) CHECK_EQ_STR(pf->name, names[i]);
    }
    CHECK(qeil_catalog_find(QEIL_DEFAULT_PLATFORM) != NULL);
    CHECK(qeil_catalog_find("no-such-board") == NULL);
    CHECK(qeil_catalog_find(NULL) == NULL);
    CHECK(qeil_catalog_get(qeil_catalog_count()) == NULL);
    /* the laptop's discrete GPU is the unit the CLI tests fail on purpose */
    const qeil_platform *lap = qeil_catalog_find("qeil-laptop");
    int found = 0;
    for (int k = 0; lap && k < lap->n_units; k++)
        found |= strcmp(lap->units[k].name, "rtx-pro-5000") == 0 && lap->units[k].kind == QEIL_UNIT_GPU;
    CHECK(found);
}

TEST(catalog_validates_and_round_trips_bit_exactly)
{
    for (size_t i = 0; i < qeil_catalog_count(); i++) {
        const qeil_platform *pf = qeil_catalog_get(i);
        if (qeil_platform_validate(ctx, pf) != QEIL_OK) {
            TEST_FAIL_("%s: %s", pf->name, qeil_ctx_errmsg(ctx));
            continue;
        }
        char *json = NULL;
        CHECK_EQ_INT(qeil_platform_to_json(ctx, pf, &json), QEIL_OK);
        if (!json) continue;
        /* parse from an exact-size buffer with no terminator: ASan catches
         * any read past len */
        size_t n = strlen(json);
        char *exact = malloc(n);
        memcpy(exact, json, n);
        qeil_platform back;
        memset(&back, 0xab, sizeof back);
        qeil_status st = qeil_platform_parse_json(ctx, exact, n, &back);
        if (st != QEIL_OK) TEST_FAIL_("%s: %s", pf->name, qeil_ctx_errmsg(ctx));
        CHECK_EQ_STR(back.name, pf->name);
        CHECK_EQ_STR(back.description, pf->description);
        CHECK_EQ_INT(back.n_units, pf->n_units);
        CHECK_EQ_INT(back.n_pools, pf->n_pools);
        CHECK_EQ_INT(back.n_links, pf->n_links);
        CHECK(memcmp(&back.rho_max, &pf->rho_max, sizeof(double)) == 0);
        for (int k = 0; st == QEIL_OK && k < pf->n_units; k++) {
            const qeil_unit *a = &pf->units[k], *b = &back.units[k];
            /* every double bit for bit */
            CHECK(memcmp(a->peak_ops, b->peak_ops, sizeof a->peak_ops) == 0);
            CHECK(memcmp(a->e_op_J, b->e_op_J, sizeof a->e_op_J) == 0);
            CHECK(memcmp(&a->mem_bw_Bps, &b->mem_bw_Bps, sizeof(double)) == 0);
            CHECK(memcmp(&a->leak_kappa_perK, &b->leak_kappa_perK, sizeof(double)) == 0);
            CHECK(memcmp(a->dvfs, b->dvfs, sizeof(qeil_dvfs_point) * (size_t)a->n_dvfs) == 0);
            CHECK_EQ_INT(a->dvfs_nominal, b->dvfs_nominal);
            CHECK_EQ_INT(a->src_compute, b->src_compute);
            CHECK_EQ_INT(a->src_power, b->src_power);
            CHECK_EQ_INT(a->src_thermal, b->src_thermal);
        }
        /* and the whole struct: the catalog is built from a zeroed table, so
         * padding and unused slots compare too */
        qeil_platform zeroed;
        memset(&zeroed, 0, sizeof zeroed);
        qeil_status st2 = qeil_platform_parse_json(ctx, json, n, &zeroed);
        CHECK_EQ_INT(st2, QEIL_OK);
        CHECK(memcmp(&zeroed, pf, sizeof zeroed) == 0);
        /* serialising the parsed copy gives the same bytes */
        char *json2 = NULL;
        CHECK_EQ_INT(qeil_platform_to_json(ctx, &zeroed, &json2), QEIL_OK);
        if (json2) CHECK_EQ_STR(json2, json);
        qeil_free(ctx, json2);
        qeil_free(ctx, json);
        free(exact);
    }
}

/* The writer prints numbers itself (raw cJSON items): cJSON's own %1.15g
 * accepts a read-back within DBL_EPSILON relative, which turns
 * 0.30000000000000004 into 0.3 (one ulp off) and -0 into 0. */
TEST(numbers_cjson_would_round_read_back_exactly)
{
    qeil_platform pf = *qeil_catalog_find(QEIL_DEFAULT_PLATFORM);
    volatile double a = 0.1, b = 0.2;
    pf.rho_max = a + b; /* 0.30000000000000004 */
    pf.units[0].eta_mem = 1.0 - 1e-16 * 1.1; /* 0.99999999999999989: 1 ulp below 1 */
    pf.units[0].t_amb_C = 25.000000000000004;
    pf.units[0].e_op_J[QEIL_DT_INT4] = -0.0;
    char *json = NULL;
    CHECK_EQ_INT(qeil_platform_to_json(ctx, &pf, &json), QEIL_OK);
    if (!json) return;
    CHECK_CONTAINS(json, "0.30000000000000004");
    qeil_platform back;
    memset(&back, 0, sizeof back);
    CHECK_EQ_INT(qeil_platform_parse_json(ctx, json, strlen(json), &back), QEIL_OK);
    CHECK(memcmp(&back.rho_max, &pf.rho_max, sizeof(double)) == 0);
    CHECK(memcmp(&back.units[0].eta_mem, &pf.units[0].eta_mem, sizeof(double)) == 0);
    CHECK(memcmp(&back.units[0].t_amb_C, &pf.units[0].t_amb_C, sizeof(double)) == 0);
    CHECK(signbit(back.units[0].e_op_J[QEIL_DT_INT4]));
    /* the final newline, and no NaN/Infinity (validate refuses them first) */
    size_t n = strlen(json);
    CHECK(n > 0 && json[n - 1] == '\n');
    qeil_free(ctx, json);
}

/* Steady junction temperature of a unit running alone flat out at its
 * nominal point: T = T_amb + R_th (P_dyn + P_const + P_leak(T)). Returns
 * INFINITY on runaway. */
static double steady_temp(const qeil_unit *u)
{
    int t = u->peak_ops[QEIL_DT_INT8] > 0 ? QEIL_DT_INT8 : QEIL_DT_F16;
    if (u->peak_ops[t] == 0) t = QEIL_DT_F32;
    double p_dyn = u->e_op_J[t] * u->eta_compute * u->peak_ops[t];
    double T = u->t_amb_C;
    for (int it = 0; it < 500; it++) {
        double leak = u->p_leak_ref_W * exp(u->leak_kappa_perK * (T - u->t_leak_ref_C));
        double next = u->t_amb_C + u->r_th_KpW * (p_dyn + u->p_const_W + leak);
        if (next > 1000) return INFINITY;
        if (fabs(next - T) < 1e-9) return next;
        T = next;
    }
    return INFINITY;
}

TEST(catalog_is_physically_consistent)
{
    for (size_t i = 0; i < qeil_catalog_count(); i++) {
        const qeil_platform *pf = qeil_catalog_get(i);
        double best_npu = INFINITY, best_other = INFINITY;
        for (int k = 0; k < pf->n_units; k++) {
            const qeil_unit *u = &pf->units[k];
            /* flat out at the nominal point stays below the default throttle
             * limit (0.85 T_max): the nominal point is a sustainable one */
            double T = steady_temp(u);
            if (!(T < 0.85 * u->t_max_C))
                TEST_FAIL_("%s/%s: steady %.1f °C at nominal, limit %.1f", pf->name, u->name, T,
                           0.85 * u->t_max_C);
            /* cheaper types cost less per op (higher rate, same datapath power) */
            if (u->peak_ops[QEIL_DT_F16] > 0 && u->peak_ops[QEIL_DT_INT8] > u->peak_ops[QEIL_DT_F16])
                CHECK(u->e_op_J[QEIL_DT_INT8] < u->e_op_J[QEIL_DT_F16]);
            /* voltage at the nominal point in a plausible CMOS range */
            double v = u->dvfs[u->dvfs_nominal].volt_V;
            CHECK(v >= 0.5 && v <= 1.4);
            if (u->e_op_J[QEIL_DT_INT8] > 0) {
                if (u->kind == QEIL_UNIT_NPU) best_npu = fmin(best_npu, u->e_op_J[QEIL_DT_INT8]);
                else best_other = fmin(best_other, u->e_op_J[QEIL_DT_INT8]);
            }
        }
        /* where there is an NPU, it is the most energy-efficient int8 unit */
        if (isfinite(best_npu) && !(best_npu < best_other))
            TEST_FAIL_("%s: NPU int8 %.3g J/op not below the best other unit %.3g", pf->name,
                       best_npu, best_other);
    }

    /* the laptop's discrete GPU: fastest, but the largest constant power */
    const qeil_platform *lap = qeil_catalog_find("qeil-laptop");
    const qeil_unit *gpu = NULL;
    for (int k = 0; lap && k < lap->n_units; k++)
        if (lap->units[k].kind == QEIL_UNIT_GPU) gpu = &lap->units[k];
    CHECK(gpu != NULL);
    for (int k = 0; gpu && k < lap->n_units; k++) {
        const qeil_unit *u = &lap->units[k];
        if (u == gpu) continue;
        CHECK(gpu->peak_ops[QEIL_DT_F16] > 5 * u->peak_ops[QEIL_DT_F16]);
        CHECK(gpu->mem_bw_Bps > 5 * u->mem_bw_Bps);
        CHECK(gpu->p_const_W > 3 * u->p_const_W);
        CHECK(gpu->pool != u->pool);
    }
    if (lap) CHECK(qeil_platform_link(lap, 0, 1) >= 0);

    /* Orin Nano power modes: higher mode = faster GPU, more energy per op */
    const qeil_platform *m7 = qeil_catalog_find("jetson-orin-nano-super-7w");
    const qeil_platform *m15 = qeil_catalog_find("jetson-orin-nano-super-15w");
    const qeil_platform *m25 = qeil_catalog_find("jetson-orin-nano-super-25w");
    CHECK(m7 && m15 && m25);
    if (m7 && m15 && m25) {
        const qeil_unit *g7 = &m7->units[1], *g15 = &m15->units[1], *g25 = &m25->units[1];
        CHECK(g7->peak_ops[QEIL_DT_F16] < g15->peak_ops[QEIL_DT_F16]);
        CHECK(g15->peak_ops[QEIL_DT_F16] < g25->peak_ops[QEIL_DT_F16]);
        CHECK(g7->e_op_J[QEIL_DT_F16] < g15->e_op_J[QEIL_DT_F16]);
        CHECK(g15->e_op_J[QEIL_DT_F16] < g25->e_op_J[QEIL_DT_F16]);
        CHECK(m15->pools[0].bw_Bps < m25->pools[0].bw_Bps);
        /* 67 sparse int8 TOPS at 1020 MHz -> 30.1 dense at 918 MHz */
        CHECK_NEAR(g25->peak_ops[QEIL_DT_INT8], 67e12 / 2 * 918.0 / 1020, 0.01, 0);
        CHECK_NEAR(m25->pools[0].bw_Bps, 102.4e9, 1e-9, 0);
    }
}

TEST(link_lookup)
{
    const qeil_platform *pf = qeil_catalog_find("rpi5-hailo10h");
    CHECK(pf != NULL);
    if (!pf) return;
    CHECK_EQ_INT(qeil_platform_link(pf, 0, 1), 0);
    CHECK_EQ_INT(qeil_platform_link(pf, 1, 0), 0);
    CHECK_EQ_INT(qeil_platform_link(pf, 0, 0), -1);
    CHECK_EQ_INT(qeil_platform_link(pf, 0, 3), -1);
    CHECK_EQ_INT(qeil_platform_link(NULL, 0, 1), -1);
    const qeil_platform *soc = qeil_catalog_find("apple-m3");
    CHECK(soc && soc->n_links == 0 && qeil_platform_link(soc, 0, 0) == -1);
}

/* A unit's local device name survives the JSON round trip; units without
 * one are written without the key (catalog profiles are unchanged). */
TEST(unit_device_round_trips)
{
    qeil_platform pf = *qeil_catalog_find("jetson-agx-orin-64gb");
    snprintf(pf.units[1].device, sizeof pf.units[1].device, "vk0");
    char *json = NULL;
    CHECK_EQ_INT(qeil_platform_to_json(ctx, &pf, &json), QEIL_OK);
    if (!json) return;
    CHECK_CONTAINS(json, "\"device\":\t\"vk0\"");
    qeil_platform back;
    CHECK_EQ_INT(qeil_platform_parse_json(ctx, json, strlen(json), &back), QEIL_OK);
    CHECK_EQ_STR(back.units[1].device, "vk0");
    CHECK_EQ_STR(back.units[0].device, "");
    qeil_free(ctx, json);
    /* one key only: the unit without a device has none */
    pf.units[1].device[0] = '\0';
    CHECK_EQ_INT(qeil_platform_to_json(ctx, &pf, &json), QEIL_OK);
    if (json) CHECK(!strstr(json, "\"device\""));
    qeil_free(ctx, json);
    /* a device name with a space is refused by name */
    snprintf(pf.units[0].device, sizeof pf.units[0].device, "vk 0");
    CHECK_EQ_INT(qeil_platform_validate(ctx, &pf), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "units[0].device: 'vk 0'");
}

TEST(example_profiles_parse)
{
    static const char *files[] = {"profiles/example-soc.json", "profiles/example-dgpu.json"};
    for (size_t i = 0; i < 2; i++) {
        char path[4200];
        data_path(path, sizeof path, files[i]);
        qeil_platform pf;
        qeil_status st = qeil_platform_read_file(ctx, path, &pf);
        if (st != QEIL_OK) {
            TEST_FAIL_("%s: %s", path, qeil_ctx_errmsg(ctx));
            continue;
        }
        CHECK(pf.n_units >= 2);
        /* omitted data types read as 0 = unsupported */
        if (i == 0) {
            CHECK_EQ_STR(pf.name, "example-soc");
            CHECK(pf.units[0].peak_ops[QEIL_DT_INT4] == 0 && pf.units[0].e_op_J[QEIL_DT_INT4] == 0);
            CHECK(pf.units[2].peak_ops[QEIL_DT_F32] == 0);
            CHECK(pf.units[2].peak_ops[QEIL_DT_INT4] == 40e12);
            CHECK_EQ_INT(pf.units[2].src_compute, QEIL_SRC_DEFAULT);
        } else {
            CHECK_EQ_STR(pf.name, "example-dgpu");
            CHECK_EQ_INT(pf.n_links, 1);
            CHECK_EQ_INT(pf.units[1].kind, QEIL_UNIT_GPU);
            CHECK_EQ_INT(pf.units[1].pool, 1);
        }
    }
}

/* Each bad profile, the status it must get and a piece of the message that
 * names the field (and, where it matters, the value and the range). */
static const struct {
    const char *file;
    qeil_status st;
    const char *msg;
} bad_profiles[] = {
    {"truncated.json", QEIL_ERR_FORMAT, "JSON syntax error"},
    {"empty.json", QEIL_ERR_FORMAT, "JSON syntax error"},
    {"not-object.json", QEIL_ERR_FORMAT, "top level must be a JSON object"},
    {"trailing-garbage.json", QEIL_ERR_FORMAT, "unexpected data after the JSON value"},
    {"nan-literal.json", QEIL_ERR_FORMAT, "JSON syntax error at line 46"},
    {"unknown-key.json", QEIL_ERR_FORMAT, "units[1].etamem: unknown key"},
    {"unknown-top-key.json", QEIL_ERR_FORMAT, "rho_min: unknown key"},
    {"duplicate-key.json", QEIL_ERR_FORMAT, "units[1].eta_mem: duplicate key"},
    {"missing-key.json", QEIL_ERR_FORMAT, "units[0].mem_bw_Bps: missing"},
    {"missing-top-key.json", QEIL_ERR_FORMAT, "rho_max: missing"},
    {"wrong-type.json", QEIL_ERR_FORMAT, "units[1].eta_mem: expected a number, found a string"},
    {"wrong-type-units.json", QEIL_ERR_FORMAT, "units: expected an array, found an object"},
    {"negative-bw.json", QEIL_ERR_RANGE, "pools[0].bw_Bps: -89600000000 is out of range"},
    {"zero-capacity.json", QEIL_ERR_RANGE, "pools[1].capacity_B: 0 is out of range"},
    {"eta-above-one.json", QEIL_ERR_RANGE,
     "units[1].eta_mem: 1.5 is out of range (allowed (0, 1])"},
    {"huge-number.json", QEIL_ERR_RANGE, "units[0].mem_bw_Bps: inf is out of range"},
    {"kappa-too-big.json", QEIL_ERR_RANGE, "units[0].leak_kappa_perK: 0.7 is out of range"},
    {"tamb-ge-tmax.json", QEIL_ERR_RANGE, "units[0].t_amb_C: 95 is not below t_max_C 95"},
    {"bad-pool-ref.json", QEIL_ERR_RANGE, "units[1].pool: 'hbm' is not a pool"},
    {"bad-link-ref.json", QEIL_ERR_RANGE, "links[0].b: 'sram' is not a pool"},
    {"link-self.json", QEIL_ERR_RANGE, "links[0].b: 'vram' is also links[0].a"},
    {"duplicate-unit-names.json", QEIL_ERR_RANGE, "units[1].name: 'cpu' is already"},
    {"duplicate-pool-names.json", QEIL_ERR_RANGE, "pools[1].name: 'ddr5' is already"},
    {"duplicate-unit-device.json", QEIL_ERR_RANGE,
     "units[1].device: 'cpu' is already the device of units[0] (one unit per local device)"},
    {"too-many-units.json", QEIL_ERR_RANGE, "units: 9 entries (allowed 1..8)"},
    {"empty-dvfs.json", QEIL_ERR_RANGE, "units[0].dvfs: 0 entries (allowed 1..8)"},
    {"nominal-out-of-range.json", QEIL_ERR_RANGE, "units[0].dvfs_nominal: 3 is out of range"},
    {"nominal-not-integer.json", QEIL_ERR_RANGE, "units[0].dvfs_nominal: 1.5"},
    {"dvfs-not-ascending.json", QEIL_ERR_RANGE, "units[0].dvfs[1].freq_Hz: 1500000000"},
    {"dvfs-volt-decreasing.json", QEIL_ERR_RANGE, "units[0].dvfs[1].volt_V: 0.7"},
    {"e-op-without-peak.json", QEIL_ERR_RANGE, "units[0].e_op_J.int4: 1e-12"},
    {"peak-without-e-op.json", QEIL_ERR_RANGE, "units[0].e_op_J.int8: 0"},
    {"no-dtype.json", QEIL_ERR_RANGE, "units[0].peak_ops: every data type is 0"},
    {"unit-bw-above-pool.json", QEIL_ERR_RANGE, "units[0].mem_bw_Bps: 100000000000 is above"},
    {"bad-kind.json", QEIL_ERR_RANGE, "units[1].kind: 'tpu'"},
    {"bad-source.json", QEIL_ERR_RANGE, "units[0].source.power: 'guessed'"},
    {"version-2.json", QEIL_ERR_UNSUPPORTED, "qeil_profile_version: 2"},
    {"name-with-space.json", QEIL_ERR_RANGE, "name: 'example dgpu'"},
    {"name-too-long.json", QEIL_ERR_RANGE, "units[1].name: 70 bytes long"},
    {"rho-max-one.json", QEIL_ERR_RANGE, "rho_max: 1 is out of range (allowed (0, 1))"},
    /* cJSON would cut these at the NUL ("exa", "c") and the rest would pass */
    {"name-with-nul.json", QEIL_ERR_FORMAT, "a string holds \\u0000 (NUL) at line 3, column 15"},
    {"unit-name-with-nul.json", QEIL_ERR_FORMAT, "\\u0000 (NUL) at line 15, column 17"},
};

/* The overhead coefficients `qeil calibrate` writes (op_s, attn_*_flop_s)
 * round-trip exactly, are absent when 0 (a profile without them loads as
 * before, 0), and are range-checked by name. */
TEST(overhead_coefficients_round_trip)
{
    qeil_platform pf = *qeil_catalog_find("jetson-agx-orin-64gb");
    char *json = NULL;
    CHECK_EQ_INT(qeil_platform_to_json(ctx, &pf, &json), QEIL_OK);
    if (json) CHECK(!strstr(json, "\"op_s\"") && !strstr(json, "\"attn_pf_flop_s\""));
    qeil_free(ctx, json);
    pf.units[0].op_s = 1.2345678901234567e-5;
    pf.units[0].attn_pf_flop_s = 3.3e-11;
    pf.units[0].attn_dc_flop_s = 9.1e-11;
    CHECK_EQ_INT(qeil_platform_to_json(ctx, &pf, &json), QEIL_OK);
    if (!json) return;
    qeil_platform back;
    CHECK_EQ_INT(qeil_platform_parse_json(ctx, json, strlen(json), &back), QEIL_OK);
    CHECK(back.units[0].op_s == pf.units[0].op_s);
    CHECK(back.units[0].attn_pf_flop_s == pf.units[0].attn_pf_flop_s);
    CHECK(back.units[0].attn_dc_flop_s == pf.units[0].attn_dc_flop_s);
    CHECK(back.units[1].op_s == 0 && back.units[1].attn_pf_flop_s == 0 &&
          back.units[1].attn_dc_flop_s == 0);
    qeil_free(ctx, json);
    pf.units[0].op_s = -1e-6;
    CHECK_EQ_INT(qeil_platform_validate(ctx, &pf), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "units[0].op_s");
    pf.units[0].op_s = 0;
    pf.units[0].attn_dc_flop_s = 1e-3;
    CHECK_EQ_INT(qeil_platform_validate(ctx, &pf), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "units[0].attn_dc_flop_s: 0.001 is out of range");
}

TEST(bad_profiles_are_rejected_with_the_field_named)
{
    size_t n = sizeof bad_profiles / sizeof *bad_profiles;
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%stests/data/profiles/%s", root, bad_profiles[i].file);
        if (access(path, R_OK) != 0) {
            TEST_FAIL_("missing test file %s", path);
            continue;
        }
        qeil_platform pf;
        qeil_ctx_clear(ctx);
        qeil_status st = qeil_platform_read_file(ctx, path, &pf);
        if (st != bad_profiles[i].st)
            TEST_FAIL_("%s: status %s, expected %s (%s)", bad_profiles[i].file,
                       qeil_status_str(st), qeil_status_str(bad_profiles[i].st),
                       qeil_ctx_errmsg(ctx));
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), bad_profiles[i].msg);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), bad_profiles[i].file); /* the path is named */
    }
    /* every file in the directory is in the table (a new case can't be
     * forgotten) */
    char dir[4200];
    snprintf(dir, sizeof dir, "%stests/data/profiles", root);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.json$'", dir);
    FILE *p = popen(cmd, "r");
    int count = -1;
    if (p) {
        if (fscanf(p, "%d", &count) != 1) count = -1;
        pclose(p);
    }
    CHECK_EQ_INT(count, (long long)n);
}

TEST(parse_limits)
{
    qeil_platform pf;
    /* 1 MiB limit, in memory and on disk */
    size_t big = (1u << 20) + 1;
    char *buf = malloc(big);
    memset(buf, ' ', big);
    buf[0] = '{';
    buf[big - 1] = '}';
    CHECK_EQ_INT(qeil_platform_parse_json(ctx, buf, big, &pf), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1048576");
    char path[4200];
    snprintf(path, sizeof path, "%s/big.json", tmpdir);
    CHECK_EQ_INT(write_text(path, buf, big), 0);
    CHECK_EQ_INT(qeil_platform_read_file(ctx, path, &pf), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "big.json");
    free(buf);
    /* a NUL inside the buffer is not whitespace */
    const char *lap = "{}\0 ";
    CHECK_EQ_INT(qeil_platform_parse_json(ctx, lap, 4, &pf), QEIL_ERR_FORMAT);
    /* bad arguments */
    CHECK_EQ_INT(qeil_platform_parse_json(ctx, NULL, 0, &pf), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_platform_read_file(ctx, "/nonexistent/dir/p.json", &pf), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "/nonexistent/dir/p.json");
    CHECK_EQ_INT(qeil_platform_validate(ctx, NULL), QEIL_ERR_INVALID);
}

/* ---- validate on structs: the same checks as on files ---- */

typedef void (*mutator)(qeil_platform *pf);
static void m_eta_mem(qeil_platform *pf) { pf->units[1].eta_mem = 1.5; }
static void m_eta_zero(qeil_platform *pf) { pf->units[0].eta_compute = 0; }
static void m_nan(qeil_platform *pf) { pf->units[0].mem_bw_Bps = NAN; }
static void m_inf(qeil_platform *pf) { pf->units[2].t_max_C = INFINITY; }
static void m_neg_bw(qeil_platform *pf) { pf->pools[0].bw_Bps = -1e9; }
static void m_tamb(qeil_platform *pf) { pf->units[0].t_amb_C = pf->units[0].t_max_C; }
static void m_pool_ref(qeil_platform *pf) { pf->units[1].pool = 7; }
static void m_link_ref(qeil_platform *pf) { pf->links[0].pool_b = 5; }
static void m_link_self(qeil_platform *pf) { pf->links[0].pool_b = pf->links[0].pool_a; }
static void m_dup_unit(qeil_platform *pf) { strcpy(pf->units[2].name, pf->units[0].name); }
static void m_dup_pool(qeil_platform *pf) { strcpy(pf->pools[1].name, pf->pools[0].name); }
static void m_too_many(qeil_platform *pf) { pf->n_units = QEIL_MAX_UNITS + 1; }
static void m_no_units(qeil_platform *pf) { pf->n_units = 0; }
static void m_no_dvfs(qeil_platform *pf) { pf->units[0].n_dvfs = 0; }
static void m_nominal(qeil_platform *pf) { pf->units[3].dvfs_nominal = pf->units[3].n_dvfs; }
static void m_not_ascending(qeil_platform *pf) { pf->units[0].dvfs[2].freq_Hz = pf->units[0].dvfs[1].freq_Hz; }
static void m_kappa(qeil_platform *pf) { pf->units[0].leak_kappa_perK = 0.6; }
static void m_kind(qeil_platform *pf) { pf->units[0].kind = (qeil_unit_kind)9; }
static void m_source(qeil_platform *pf) { pf->units[0].src_thermal = (qeil_source)-1; }
static void m_eop_missing(qeil_platform *pf) { pf->units[3].e_op_J[QEIL_DT_INT4] = 0; }
static void m_eop_extra(qeil_platform *pf) { pf->units[0].e_op_J[QEIL_DT_INT4] = 1e-12; }
static void m_no_dtype(qeil_platform *pf)
{
    memset(pf->units[2].peak_ops, 0, sizeof pf->units[2].peak_ops);
    memset(pf->units[2].e_op_J, 0, sizeof pf->units[2].e_op_J);
}
static void m_name_unterminated(qeil_platform *pf) { memset(pf->units[0].name, 'a', QEIL_NAME_MAX); }
static void m_name_empty(qeil_platform *pf) { pf->pools[0].name[0] = '\0'; }
static void m_desc_ctrl(qeil_platform *pf) { pf->description[3] = '\n'; }
static void m_desc_utf8(qeil_platform *pf) { pf->description[3] = (char)0xff; }
static void m_rho(qeil_platform *pf) { pf->rho_max = 0; }
static void m_latency(qeil_platform *pf) { pf->links[0].latency_s = -1e-6; }
static void m_unit_bw(qeil_platform *pf) { pf->units[0].mem_bw_Bps = pf->pools[0].bw_Bps * 2; }
static void m_volt(qeil_platform *pf) { pf->units[3].dvfs[0].volt_V = 0; }

static const struct {
    const char *what;
    mutator fn;
    const char *msg;
} mutations[] = {
    {"eta_mem 1.5", m_eta_mem, "units[1].eta_mem: 1.5 is out of range (allowed (0, 1])"},
    {"eta_compute 0", m_eta_zero, "units[0].eta_compute: 0 is out of range"},
    {"NaN bandwidth", m_nan, "units[0].mem_bw_Bps: nan is out of range"},
    {"inf t_max", m_inf, "units[2].t_max_C: inf is out of range"},
    {"negative pool bw", m_neg_bw, "pools[0].bw_Bps: -1000000000 is out of range"},
    {"t_amb = t_max", m_tamb, "units[0].t_amb_C: 105 is not below t_max_C 105"},
    {"pool index", m_pool_ref, "units[1].pool: 7 is out of range (allowed 0..1)"},
    {"link pool index", m_link_ref, "links[0].b: pool 5 is out of range"},
    {"link to itself", m_link_self, "links[0].b:"},
    {"duplicate unit", m_dup_unit, "units[2].name: 'cpu' is already"},
    {"duplicate pool", m_dup_pool, "pools[1].name: 'ddr5' is already"},
    {"too many units", m_too_many, "units: 9 entries (allowed 1..8)"},
    {"no units", m_no_units, "units: 0 entries (allowed 1..8)"},
    {"empty dvfs", m_no_dvfs, "units[0].dvfs: 0 entries"},
    {"nominal index", m_nominal, "units[3].dvfs_nominal: 5 is out of range (allowed 0..4)"},
    {"dvfs not ascending", m_not_ascending, "units[0].dvfs[2].freq_Hz"},
    {"kappa", m_kappa, "units[0].leak_kappa_perK: 0.6 is out of range (allowed [0, 0.5])"},
    {"kind", m_kind, "units[0].kind: 9"},
    {"source", m_source, "units[0].source.thermal: -1"},
    {"e_op missing", m_eop_missing, "units[3].e_op_J.int4: 0 but peak_ops.int4"},
    {"e_op extra", m_eop_extra, "units[0].e_op_J.int4: 1e-12 but peak_ops.int4 is 0"},
    {"no dtype", m_no_dtype, "units[2].peak_ops: every data type is 0"},
    {"unterminated name", m_name_unterminated, "units[0].name: not NUL-terminated"},
    {"empty name", m_name_empty, "pools[0].name: empty"},
    {"control char", m_desc_ctrl, "description: control character 0x0a"},
    {"bad utf-8", m_desc_utf8, "description: invalid UTF-8 at byte 3"},
    {"rho_max 0", m_rho, "rho_max: 0 is out of range (allowed (0, 1))"},
    {"negative latency", m_latency, "links[0].latency_s: -1e-06 is out of range"},
    {"unit bw above pool", m_unit_bw, "units[0].mem_bw_Bps: 204800000000 is above"},
    {"zero volt", m_volt, "units[3].dvfs[0].volt_V: 0 is out of range"},
};

TEST(validate_catches_the_same_on_structs)
{
    const qeil_platform *base = qeil_catalog_find("qeil-laptop");
    CHECK(base != NULL);
    if (!base) return;
    for (size_t i = 0; i < sizeof mutations / sizeof *mutations; i++) {
        qeil_platform pf = *base;
        mutations[i].fn(&pf);
        qeil_ctx_clear(ctx);
        qeil_status st = qeil_platform_validate(ctx, &pf);
        if (st != QEIL_ERR_RANGE)
            TEST_FAIL_("%s: status %s (%s)", mutations[i].what, qeil_status_str(st),
                       qeil_ctx_errmsg(ctx));
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), mutations[i].msg);
        /* and to_json refuses to write it */
        char *json = (char *)1;
        CHECK_EQ_INT(qeil_platform_to_json(ctx, &pf, &json), QEIL_ERR_RANGE);
        CHECK(json == NULL);
    }
}

TEST(write_file_is_atomic_and_round_trips)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/profile.json", tmpdir);
    const qeil_platform *pf = qeil_catalog_find("jetson-agx-orin-64gb");
    CHECK(pf != NULL);
    if (!pf) return;
    CHECK_EQ_INT(qeil_platform_write_file(ctx, pf, path), QEIL_OK);
    qeil_platform back;
    memset(&back, 0, sizeof back);
    CHECK_EQ_INT(qeil_platform_read_file(ctx, path, &back), QEIL_OK);
    CHECK(memcmp(&back, pf, sizeof back) == 0);
    size_t n1 = 0;
    char *before = slurp(path, &n1);
    CHECK(before != NULL);

    /* an invalid platform is not written; the old file stays */
    qeil_platform bad = *pf;
    bad.units[0].eta_mem = 2;
    CHECK_EQ_INT(qeil_platform_write_file(ctx, &bad, path), QEIL_ERR_RANGE);
    size_t n2 = 0;
    char *after = slurp(path, &n2);
    CHECK(after && before && n1 == n2 && memcmp(before, after, n1) == 0);
    free(after);

    /* a failing rename (the target is a directory) leaves no temp file */
    char dirpath[4200];
    snprintf(dirpath, sizeof dirpath, "%s/adir", tmpdir);
    CHECK_EQ_INT(mkdir(dirpath, 0755), 0);
    CHECK_EQ_INT(qeil_platform_write_file(ctx, pf, dirpath), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "adir");
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp", tmpdir);
    FILE *p = popen(cmd, "r");
    int leftovers = -1;
    if (p) {
        if (fscanf(p, "%d", &leftovers) != 1) leftovers = -1;
        pclose(p);
    }
    CHECK_EQ_INT(leftovers, 0);

    /* a directory that does not exist */
    CHECK_EQ_INT(qeil_platform_write_file(ctx, pf, "/nonexistent/dir/p.json"), QEIL_ERR_IO);

    /* a FIFO and a symbolic link are refused, not replaced by the rename */
    char fifo[4200], lnk[4200];
    snprintf(fifo, sizeof fifo, "%s/afifo", tmpdir);
    snprintf(lnk, sizeof lnk, "%s/alink", tmpdir);
    CHECK_EQ_INT(mkfifo(fifo, 0644), 0);
    CHECK_EQ_INT(symlink(path, lnk), 0);
    struct stat sb;
    CHECK_EQ_INT(qeil_platform_write_file(ctx, pf, fifo), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "not a regular file");
    CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    CHECK_EQ_INT(qeil_platform_write_file(ctx, pf, lnk), QEIL_ERR_IO);
    CHECK(lstat(lnk, &sb) == 0 && S_ISLNK(sb.st_mode));
    unlink(fifo);
    unlink(lnk);

    /* overwrite with another platform: the file is replaced as a whole */
    const qeil_platform *pf2 = qeil_catalog_find("apple-m3");
    CHECK_EQ_INT(qeil_platform_write_file(ctx, pf2, path), QEIL_OK);
    CHECK_EQ_INT(qeil_platform_read_file(ctx, path, &back), QEIL_OK);
    CHECK_EQ_STR(back.name, "apple-m3");
    free(before);
}

TEST(load_by_name_and_by_path)
{
    qeil_platform pf;
    CHECK_EQ_INT(qeil_platform_load(ctx, "jetson-orin-nano-super-15w", &pf), QEIL_OK);
    CHECK_EQ_STR(pf.name, "jetson-orin-nano-super-15w");

    char path[4200];
    data_path(path, sizeof path, "profiles/example-soc.json");
    CHECK_EQ_INT(qeil_platform_load(ctx, path, &pf), QEIL_OK);
    CHECK_EQ_STR(pf.name, "example-soc");

    /* a .json name without '/' is a path too (relative to the cwd) */
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_EQ_INT(chdir(tmpdir), 0);
    const qeil_platform *m3 = qeil_catalog_find("apple-m3");
    CHECK_EQ_INT(qeil_platform_write_file(ctx, m3, "mine.json"), QEIL_OK);
    CHECK_EQ_INT(qeil_platform_load(ctx, "mine.json", &pf), QEIL_OK);
    CHECK_EQ_STR(pf.name, "apple-m3");
    CHECK_EQ_INT(qeil_platform_load(ctx, "missing.json", &pf), QEIL_ERR_IO);
    CHECK_EQ_INT(chdir(cwd), 0);

    /* unknown name: NOTFOUND, naming it and listing the valid names */
    CHECK_EQ_INT(qeil_platform_load(ctx, "no-such-board", &pf), QEIL_ERR_NOTFOUND);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "no-such-board");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "qeil-laptop");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "rpi5-hailo10h");
    CHECK_EQ_INT(qeil_platform_load(ctx, NULL, &pf), QEIL_ERR_INVALID);
}

/* The repository root: the cwd when run from it (make test), else two
 * levels above the binary (build/tests/test_device). */
static void find_root(const char *argv0)
{
    if (access("tests/data/profiles", R_OK) == 0) {
        root[0] = '\0';
        return;
    }
    char self[4096];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(root, sizeof root, "%s/../../", dirname(self));
}

int main(int argc, char **argv)
{
    (void)argc;
    find_root(argv[0]);
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    ctx = qeil_ctx_create(NULL);
    RUN(enum_names);
    RUN(catalog_has_the_named_platforms);
    RUN(catalog_validates_and_round_trips_bit_exactly);
    RUN(catalog_is_physically_consistent);
    RUN(link_lookup);
    RUN(unit_device_round_trips);
    RUN(overhead_coefficients_round_trip);
    RUN(example_profiles_parse);
    RUN(bad_profiles_are_rejected_with_the_field_named);
    RUN(parse_limits);
    RUN(validate_catches_the_same_on_structs);
    RUN(numbers_cjson_would_round_read_back_exactly);
    RUN(write_file_is_atomic_and_round_trips);
    RUN(load_by_name_and_by_path);
    qeil_ctx_free(ctx);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    return test_summary("device");
}
