/* test_guard.c — the thermal guard (qeil/guard.h): the online RC fit on
 * hand-built readings, the forward prediction against the closed form, the
 * controller's decisions (DVFS down, migrate on a refused actuator, hold,
 * restore with hysteresis), parameter errors, no allocation per step, and
 * the simulated platform: unguarded it throttles, guarded it does not, on
 * two catalog platforms. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "qeil/guard.h"
#include "qeil/model.h"
#include "test.h"

/* A one-unit platform: R = 2 K/W, C = 10 J/K (τ = 20 s), T_amb = 25 °C,
 * T_max = 100 °C (limit 85 °C), three DVFS points, no leakage (so the
 * model is the plain linear ODE and every number below is closed-form). */
static qeil_platform one_unit(double r, double c, double t_amb)
{
    const qeil_platform *base = qeil_catalog_find("jetson-orin-nano-super-15w");
    qeil_platform pf = *base;
    pf.n_units = 1;
    pf.n_links = 0;
    qeil_unit *u = &pf.units[0];
    u->r_th_KpW = r;
    u->c_th_JpK = c;
    u->t_amb_C = t_amb;
    u->t_max_C = 100;
    u->p_leak_ref_W = 0;
    u->n_dvfs = 3;
    u->dvfs_nominal = 2;
    u->dvfs[0] = (qeil_dvfs_point){0.5e9, 0.7};
    u->dvfs[1] = (qeil_dvfs_point){1.0e9, 0.8};
    u->dvfs[2] = (qeil_dvfs_point){1.5e9, 0.9};
    return pf;
}

/* One trapezoidal step of C dT/dt = P − (T − T_amb)/R, solved for T₁:
 * (T₁ − T₀)/dt = a P − b (T₀ + T₁)/2 + c, a = 1/C, b = 1/(RC), c = T_amb/(RC). */
static double trap_step(double r, double c, double t_amb, double t0, double p, double dt)
{
    double a = 1 / c, b = 1 / (r * c), cc = t_amb / (r * c);
    return (t0 * (1 - b * dt / 2) + dt * (a * p + cc)) / (1 + b * dt / 2);
}

TEST(fit_recovers_r_c_tamb_from_exact_readings)
{
    /* Truth R = 2, C = 10, T_amb = 25: a = 0.1, b = 0.05, c = 1.25. First
     * step from 25 °C at 20 W, dt = 1 s:
     *   T₁ = (25·(1 − 0.025) + 1·(0.1·20 + 1.25)) / 1.025
     *      = (24.375 + 3.25) / 1.025 = 26.951219512195...               */
    CHECK_NEAR(trap_step(2, 10, 25, 25, 20, 1), 27.625 / 1.025, 1e-15, 0);
    /* The profile (prior) is wrong in all three: R 1, C 20, T_amb 20; the
     * power alternates 20 W / 5 W so a and c are separable; the prior's
     * pull is made negligible. */
    qeil_platform pf = one_unit(1, 20, 20);
    qeil_guard_params gp = qeil_guard_default_params();
    gp.prior_weight = 1e-12;
    gp.prior_weight_c = 1e-12;
    gp.forget = 1;
    gp.min_period_s = 0;
    qeil_guard *g = NULL;
    CHECK_EQ_INT(qeil_guard_create(NULL, &gp, &pf, NULL, &g), QEIL_OK);
    double t = 25;
    CHECK_EQ_INT(qeil_guard_observe(g, 0, 0, t, 0), 1);
    for (int k = 0; k < 80; k++) {
        double p = (k / 20) % 2 ? 5 : 20;
        t = trap_step(2, 10, 25, t, p, 1);
        CHECK_EQ_INT(qeil_guard_observe(g, 0, k + 1, t, p), 1);
    }
    qeil_guard_model m = qeil_guard_get_model(g, 0);
    CHECK_EQ_INT(m.fitted, 1);
    CHECK_EQ_INT(m.n_samples, 80);
    CHECK_NEAR(m.r_th_KpW, 2, 1e-6, 0);
    CHECK_NEAR(m.c_th_JpK, 10, 1e-6, 0);
    CHECK_NEAR(m.t_amb_C, 25, 0, 1e-5);
    /* readings ignored: not after the last, non-finite, negative power */
    CHECK_EQ_INT(qeil_guard_observe(g, 0, 80, 30, 5), 0);
    CHECK_EQ_INT(qeil_guard_observe(g, 0, 81, NAN, 5), 0);
    CHECK_EQ_INT(qeil_guard_observe(g, 0, 81, 30, -1), 0);
    CHECK_EQ_INT(qeil_guard_observe(g, 1, 81, 30, 5), 0); /* no unit 1 */
    qeil_guard_free(g);
}

TEST(fit_at_constant_power_finds_the_hotter_room)
{
    /* The profile says 20 °C ambient, the room is at 25; R and C are
     * right. At one constant power (20 W) the readings fix b and a·P + c;
     * the C prior fixes a, so c — the ambient — comes out right, up to the
     * default 1e-3 ridge pull on c towards the 20 °C prior (c's column is
     * nearly collinear with the temperature's, which magnifies the pull to
     * about 0.07 K here; 20 °C would be 5 K off). */
    qeil_platform pf = one_unit(2, 10, 20);
    qeil_guard_params gp = qeil_guard_default_params();
    gp.min_period_s = 0;
    qeil_guard *g = NULL;
    CHECK_EQ_INT(qeil_guard_create(NULL, &gp, &pf, NULL, &g), QEIL_OK);
    double t = 25;
    qeil_guard_observe(g, 0, 0, t, 20);
    for (int k = 0; k < 60; k++) {
        t = trap_step(2, 10, 25, t, 20, 0.5);
        qeil_guard_observe(g, 0, 0.5 * (k + 1), t, 20);
    }
    qeil_guard_model m = qeil_guard_get_model(g, 0);
    CHECK_EQ_INT(m.fitted, 1);
    CHECK_NEAR(m.t_amb_C, 25, 0, 0.1);
    CHECK_NEAR(m.r_th_KpW, 2, 0.01, 0);
    /* the prediction then follows the truth: 30 s ahead the closed form
     * T_inf + (T − T_inf) e^{−30/20}, T_inf = 25 + 2·20 = 65 */
    double want = 65 + (t - 65) * exp(-1.5);
    CHECK_NEAR(qeil_guard_predict_C(g, 0, 30), want, 0, 0.05);
    qeil_guard_free(g);
}

TEST(prediction_matches_the_closed_form)
{
    /* Prior only (one reading): T = 60 °C at P = 20 W, R = 2, C = 10,
     * T_amb = 25: T_inf = 25 + 2·20 = 65, τ = 20 s; 20 s ahead
     *   65 + (60 − 65)·e^{−1} = 65 − 1.8393972058572117 = 63.16060279414279 */
    qeil_platform pf = one_unit(2, 10, 25);
    qeil_guard *g = NULL;
    CHECK_EQ_INT(qeil_guard_create(NULL, NULL, &pf, NULL, &g), QEIL_OK);
    CHECK(isnan(qeil_guard_predict_C(g, 0, 20))); /* no reading yet */
    qeil_guard_observe(g, 0, 0, 60, 20);
    CHECK_NEAR(qeil_guard_predict_C(g, 0, 20), 63.16060279414279, 0, 1e-9);
    CHECK_NEAR(qeil_guard_predict_C(g, 0, 0), 60, 0, 0);
    /* cooling: the peak is the reading itself */
    qeil_guard_observe(g, 0, 1, 70, 5);
    CHECK_NEAR(qeil_guard_predict_C(g, 0, 30), 70, 0, 0);
    qeil_guard_free(g);
}

TEST(controller_lowers_dvfs_then_migrates_when_refused)
{
    /* limit 0.85·100 = 85 °C, act at 84. Reading 80 °C at 40 W: T_inf =
     * 105, 30 s ahead 105 − 25·e^{−1.5} = 99.42 ≥ 84: DVFS 2 → 1. */
    qeil_platform pf = one_unit(2, 10, 25);
    qeil_guard_params gp = qeil_guard_default_params();
    gp.min_samples = 1000000; /* the prior throughout: decisions by hand */
    qeil_guard *g = NULL;
    CHECK_EQ_INT(qeil_guard_create(NULL, &gp, &pf, NULL, &g), QEIL_OK);
    qeil_guard_action a[4];
    CHECK_EQ_INT(qeil_guard_step(g, 0, a, 4), 0); /* no reading: nothing */
    qeil_guard_observe(g, 0, 0, 80, 40);
    CHECK_EQ_INT(qeil_guard_step(g, 0, a, 4), 1);
    CHECK_EQ_INT(a[0].kind, QEIL_GUARD_DVFS_DOWN);
    CHECK_EQ_INT(a[0].from, 2);
    CHECK_EQ_INT(a[0].to, 1);
    CHECK_NEAR(a[0].predicted_C, 105 - 25 * exp(-1.5), 0, 1e-9);
    qeil_guard_applied(g, &a[0], 1);
    /* no fresh reading since the change: wait for one */
    CHECK_EQ_INT(qeil_guard_step(g, 0.1, a, 4), 0);
    /* at the new point 10 W: T_inf = 45, cooling from 80.5: no action */
    qeil_guard_observe(g, 0, 0.5, 80.5, 10);
    CHECK_EQ_INT(qeil_guard_step(g, 0.5, a, 4), 0);
    /* heating again (35 W → T_inf 95): down to 0; then the actuator
     * refuses the next change: the one after is a migration */
    qeil_guard_observe(g, 0, 1.0, 81, 35);
    CHECK_EQ_INT(qeil_guard_step(g, 1.0, a, 4), 1);
    CHECK_EQ_INT(a[0].kind, QEIL_GUARD_DVFS_DOWN);
    CHECK_EQ_INT(a[0].to, 0);
    qeil_guard_applied(g, &a[0], 0); /* EACCES */
    CHECK_EQ_INT(qeil_guard_get_model(g, 0).dvfs, 1);
    qeil_guard_observe(g, 0, 1.5, 81.2, 35);
    CHECK_EQ_INT(qeil_guard_step(g, 1.5, a, 4), 1);
    CHECK_EQ_INT(a[0].kind, QEIL_GUARD_MIGRATE);
    qeil_guard_applied(g, &a[0], 1);
    /* still hot right after: no second migration within hold_s (20 s) */
    qeil_guard_observe(g, 0, 2.0, 81.3, 35);
    CHECK_EQ_INT(qeil_guard_step(g, 2.0, a, 4), 0);
    qeil_guard_observe(g, 0, 21.6, 81.3, 35);
    CHECK_EQ_INT(qeil_guard_step(g, 21.6, a, 4), 1);
    CHECK_EQ_INT(a[0].kind, QEIL_GUARD_MIGRATE);
    /* the log holds the applied actions with their outcome */
    const qeil_guard_action *log = NULL;
    CHECK_EQ_INT(qeil_guard_log(g, &log), 3);
    CHECK_EQ_INT(log[1].ok, 0);
    CHECK_EQ_INT(log[2].kind, QEIL_GUARD_MIGRATE);
    CHECK_EQ_INT(qeil_guard_log_total(g), 3);
    qeil_guard_free(g);
}

TEST(controller_restores_with_hysteresis)
{
    /* At 84.5 °C (≥ 84) with 20 W the guard steps down 2 → 1 although the
     * steady state at 20 W is 65 °C (a transient). Cool readings (70 °C
     * at 10 W, < 85 − 5) for hold_s = 20 s: back up 1 → 2, because the
     * steady state at the 20 W last seen at point 2, 65 °C, is below 80. */
    qeil_platform pf = one_unit(2, 10, 25);
    qeil_guard_params gp = qeil_guard_default_params();
    gp.min_samples = 1000000;
    qeil_guard *g = NULL;
    CHECK_EQ_INT(qeil_guard_create(NULL, &gp, &pf, NULL, &g), QEIL_OK);
    qeil_guard_action a[2];
    qeil_guard_observe(g, 0, 0, 84.5, 20);
    CHECK_EQ_INT(qeil_guard_step(g, 0, a, 2), 1);
    CHECK_EQ_INT(a[0].kind, QEIL_GUARD_DVFS_DOWN);
    qeil_guard_applied(g, &a[0], 1);
    double t = 0;
    int ups = 0;
    double up_t = NAN;
    for (int k = 1; k <= 60; k++) {
        t = 0.5 * k;
        qeil_guard_observe(g, 0, t, 70, 10);
        size_t n = qeil_guard_step(g, t, a, 2);
        if (n == 1 && a[0].kind == QEIL_GUARD_DVFS_UP) {
            if (!ups) up_t = t;
            ups++;
            CHECK_EQ_INT(a[0].from, 1);
            CHECK_EQ_INT(a[0].to, 2);
            qeil_guard_applied(g, &a[0], 1);
        } else {
            CHECK_EQ_INT(n, 0);
        }
    }
    CHECK_EQ_INT(ups, 1);
    /* cool from the first fresh reading (0.5 s) for 20 s */
    CHECK_NEAR(up_t, 20.5, 0, 1e-12);
    qeil_guard_free(g);

    /* The same, but 40 W were seen at point 2 (steady 105 °C): it never
     * goes back up, however long it stays cool. */
    CHECK_EQ_INT(qeil_guard_create(NULL, &gp, &pf, NULL, &g), QEIL_OK);
    qeil_guard_observe(g, 0, 0, 84.5, 40);
    CHECK_EQ_INT(qeil_guard_step(g, 0, a, 2), 1);
    qeil_guard_applied(g, &a[0], 1);
    for (int k = 1; k <= 200; k++) {
        qeil_guard_observe(g, 0, 0.5 * k, 70, 10);
        CHECK_EQ_INT(qeil_guard_step(g, 0.5 * k, a, 2), 0);
    }
    qeil_guard_free(g);
}

TEST(bad_params_are_named)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = one_unit(2, 10, 25);
    qeil_guard_params gp = qeil_guard_default_params();
    gp.limit_frac = 1.5;
    qeil_guard *g = NULL;
    CHECK_EQ_INT(qeil_guard_create(ctx, &gp, &pf, NULL, &g), QEIL_ERR_RANGE);
    CHECK(g == NULL);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "limit_frac");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1.5");
    gp = qeil_guard_default_params();
    gp.horizon_s = 0;
    CHECK_EQ_INT(qeil_guard_create(ctx, &gp, &pf, NULL, &g), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "horizon_s");
    uint8_t dv[QEIL_MAX_UNITS] = {3};
    CHECK_EQ_INT(qeil_guard_create(ctx, NULL, &pf, dv, &g), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "dvfs[0]: 3");
    qeil_guard_free(NULL);
    CHECK_EQ_INT(qeil_guard_step(NULL, 0, NULL, 0), 0);
    CHECK_EQ_STR(qeil_guard_action_name(QEIL_GUARD_MIGRATE), "migrate");
    CHECK_EQ_STR(qeil_guard_action_name((qeil_guard_action_kind)99), "?");
    qeil_thermal_sim_params sp = qeil_thermal_sim_default_params();
    sp.minutes = 0;
    qeil_model_desc md;
    qeil_workload wl;
    qeil_workload_params wp = qeil_workload_default_params();
    CHECK_EQ_INT(qeil_model_load(ctx, QEIL_DEFAULT_MODEL, &md), QEIL_OK);
    CHECK_EQ_INT(qeil_workload_build(ctx, &md, &wp, &wl), QEIL_OK);
    qeil_thermal_sim_result r;
    CHECK_EQ_INT(qeil_thermal_sim_run(ctx, qeil_catalog_find("jetson-orin-nano-super-15w"), &wl, &sp,
                                      &r, NULL),
                 QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "minutes: 0");
    qeil_ctx_free(ctx);
}

/* Counting allocator: observe and step must not allocate. */
static size_t n_alloc;
static void *count_realloc(void *user, void *p, size_t n)
{
    (void)user;
    if (n == 0) {
        free(p);
        return NULL;
    }
    n_alloc++;
    return realloc(p, n);
}

TEST(no_allocation_per_step)
{
    qeil_ctx_params cp = qeil_ctx_default_params();
    cp.realloc = count_realloc;
    qeil_ctx *ctx = qeil_ctx_create(&cp);
    qeil_platform pf = one_unit(2, 10, 25);
    qeil_guard *g = NULL;
    CHECK_EQ_INT(qeil_guard_create(ctx, NULL, &pf, NULL, &g), QEIL_OK);
    size_t before = n_alloc;
    qeil_guard_action a[2];
    double t = 25;
    for (int k = 0; k < 1000; k++) {
        t = trap_step(2, 10, 25, t, 40, 0.5);
        qeil_guard_observe(g, 0, 0.5 * k, t, 40);
        size_t n = qeil_guard_step(g, 0.5 * k, a, 2);
        for (size_t i = 0; i < n; i++) qeil_guard_applied(g, &a[i], 1);
    }
    CHECK_EQ_INT(n_alloc, before);
    CHECK(qeil_guard_log_total(g) > 0); /* 40 W → 105 °C: it did act */
    qeil_guard_free(g);
    qeil_ctx_free(ctx);
}

/* The simulated platform: sustained generation of the default model's
 * default workload for 30 minutes. Unguarded the hottest unit crosses its
 * throttle point (>0 events); guarded, none does and every powered unit's
 * peak stays below it. */
static void sim_pair(const char *platform)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    qeil_workload wl;
    qeil_workload_params wp = qeil_workload_default_params();
    CHECK_EQ_INT(qeil_model_load(ctx, QEIL_DEFAULT_MODEL, &md), QEIL_OK);
    CHECK_EQ_INT(qeil_workload_build(ctx, &md, &wp, &wl), QEIL_OK);
    const qeil_platform *pf = qeil_catalog_find(platform);
    CHECK(pf != NULL);
    if (!pf) {
        qeil_ctx_free(ctx);
        return;
    }
    qeil_thermal_sim_params sp = qeil_thermal_sim_default_params();
    qeil_thermal_sim_result off, on, on2;
    sp.guard = 0;
    CHECK_EQ_INT(qeil_thermal_sim_run(ctx, pf, &wl, &sp, &off, NULL), QEIL_OK);
    sp.guard = 1;
    qeil_guard *g = NULL;
    CHECK_EQ_INT(qeil_thermal_sim_run(ctx, pf, &wl, &sp, &on, &g), QEIL_OK);
    CHECK_EQ_INT(qeil_thermal_sim_run(ctx, pf, &wl, &sp, &on2, NULL), QEIL_OK);
    printf("  %s: ambient %.2f C; off: %llu events, %.1f J, %.5f s/token; on: %llu events, "
           "%.1f J, %.5f s/token, %llu actions\n",
           platform, off.t_amb_C, (unsigned long long)off.throttle_events, off.energy_J,
           off.latency_per_token_s, (unsigned long long)on.throttle_events, on.energy_J,
           on.latency_per_token_s, (unsigned long long)qeil_guard_log_total(g));
    CHECK(off.throttle_events > 0);
    CHECK(off.throttled_s > 0);
    CHECK_EQ_INT(on.throttle_events, 0);
    CHECK(qeil_guard_log_total(g) > 0);
    for (int d = 0; d < pf->n_units; d++)
        if (on.powered[d]) CHECK(on.peak_C[d] < on.limit_C[d]);
    CHECK_NEAR(on.sim_s, 1800, 0, 1e-9);
    CHECK(isfinite(on.energy_J) && on.energy_J > 0);
    CHECK(isfinite(off.energy_J) && off.energy_J > 0);
    /* deterministic */
    CHECK(memcmp(&on, &on2, sizeof on) == 0);
    qeil_guard_free(g);
    qeil_ctx_free(ctx);
}

TEST(sim_jetson_orin_nano_15w) { sim_pair("jetson-orin-nano-super-15w"); }
TEST(sim_jetson_agx_orin) { sim_pair("jetson-agx-orin-64gb"); }

int main(void)
{
    RUN(fit_recovers_r_c_tamb_from_exact_readings);
    RUN(fit_at_constant_power_finds_the_hotter_room);
    RUN(prediction_matches_the_closed_form);
    RUN(controller_lowers_dvfs_then_migrates_when_refused);
    RUN(controller_restores_with_hysteresis);
    RUN(bad_params_are_named);
    RUN(no_allocation_per_step);
    RUN(sim_jetson_orin_nano_15w);
    RUN(sim_jetson_agx_orin);
    return test_summary("guard");
}
