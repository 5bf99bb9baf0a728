/* test_sense.c — sensors on the fixture trees of tests/data/sense (Intel
 * laptop, AMD desktop, Jetson Orin, Raspberry Pi 5), counter wrap-around,
 * a root-only energy_uj, a sensor vanishing between samples, and NVML
 * through a fake libnvidia-ml.so.1 (tests/fake_nvml.c, built next to this
 * binary), then discovery on this machine. Run from the repository root. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/sense.h"
#include "test.h"

#define DATA "tests/data/sense"

static char fake_nvml[4096], fake_nvml_old[4096];
static qeil_ctx *ctx;

/* Discovery on a tree; nvml_lib NULL = NVML off. */
static qeil_sense *open_tree(const char *root, const char *nvml_lib)
{
    qeil_sense_params p = qeil_sense_default_params();
    p.root = root;
    p.nvml = nvml_lib != NULL;
    p.nvml_lib = nvml_lib;
    qeil_sense *s = NULL;
    qeil_status st = qeil_sense_create(ctx, &p, &s);
    if (st != QEIL_OK) printf("  create(%s): %s\n", root, qeil_ctx_errmsg(ctx));
    return s;
}

static const qeil_sensor_info *get(const qeil_sense *s, const char *id)
{
    long i = qeil_sense_find(s, id);
    if (i < 0) printf("  no sensor '%s'\n", id);
    return i < 0 ? NULL : qeil_sense_info(s, (size_t)i);
}

/* The value sensor `id` had in sample a (NAN when absent or failed). */
static double val(const qeil_sense *s, const qeil_sense_sample *a, const char *id)
{
    long i = qeil_sense_find(s, id);
    if (i < 0) {
        printf("  no sensor '%s'\n", id);
        return NAN;
    }
    const qeil_sense_reading *r = qeil_sense_sample_get(a, (size_t)i);
    return r && r->status == QEIL_OK ? r->value : NAN;
}

static size_t count_source(const qeil_sense *s, qeil_sense_source src)
{
    size_t n = 0;
    for (size_t i = 0; i < qeil_sense_count(s); i++)
        if (qeil_sense_info(s, i)->source == src) n++;
    return n;
}

/* A scratch copy of a fixture tree, readable by everyone (the permission
 * test reads it as "nobody"). */
static char scratch[256];
static int copy_tree(const char *fixture)
{
    snprintf(scratch, sizeof scratch, "/tmp/qeil-sense-XXXXXX");
    if (!mkdtemp(scratch) || chmod(scratch, 0755) != 0) return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -R %s/%s/. %s/", DATA, fixture, scratch);
    return system(cmd) == 0 ? 0 : -1;
}
static void remove_tree(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", scratch);
    if (system(cmd) != 0) printf("  could not remove %s\n", scratch);
}
static int write_file(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", scratch, rel);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

/* ------------------------------------------------------------------------ */
/* The four machines                                                         */
/* ------------------------------------------------------------------------ */

TEST(intel_laptop_discovered)
{
    qeil_sense *s = open_tree(DATA "/intel-laptop", fake_nvml);
    CHECK(s != NULL);
    if (!s) return;
    /* RAPL: package, core, uncore, dram, psys; intel-rapl-mmio:0 ignored */
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_RAPL), 5);
    const qeil_sensor_info *pkg = get(s, "rapl-package");
    if (pkg) {
        CHECK_EQ_INT(pkg->quantity, QEIL_SENSE_ENERGY);
        CHECK_EQ_STR(pkg->device, "cpu-package");
        CHECK_EQ_STR(pkg->name, "package-0");
        CHECK_NEAR(pkg->range, 262143.328850, 1e-12, 1e-9); /* max_energy_range_uj × 1e-6 */
        CHECK_EQ_INT(pkg->readable, 1);
        CHECK_CONTAINS(pkg->path, "intel-rapl:0/energy_uj");
    }
    const qeil_sensor_info *i;
    if ((i = get(s, "rapl-core"))) CHECK_EQ_STR(i->device, "cpu-cores");
    if ((i = get(s, "rapl-uncore"))) CHECK_EQ_STR(i->device, "uncore");
    if ((i = get(s, "rapl-dram"))) {
        CHECK_EQ_STR(i->device, "dram");
        CHECK_NEAR(i->range, 65712.999613, 1e-12, 1e-9);
    }
    if ((i = get(s, "rapl-psys"))) CHECK_EQ_STR(i->device, "platform");
    /* hwmon */
    if ((i = get(s, "hwmon:coretemp:Package id 0"))) {
        CHECK_EQ_INT(i->quantity, QEIL_SENSE_TEMP);
        CHECK_EQ_STR(i->device, "cpu");
        CHECK_NEAR(i->crit_C, 100.0, 0, 1e-9);
    }
    if ((i = get(s, "hwmon:coretemp:Package id 0:crit_alarm")))
        CHECK_EQ_INT(i->quantity, QEIL_SENSE_ALARM);
    if ((i = get(s, "hwmon:nvme:Composite"))) CHECK_NEAR(i->throttle_C, 81.85, 0, 1e-9);
    if ((i = get(s, "hwmon:acpitz:temp1"))) CHECK_EQ_STR(i->device, "platform");
    if ((i = get(s, "hwmon:BAT0:in0:voltage"))) CHECK_EQ_INT(i->quantity, QEIL_SENSE_VOLTAGE);
    /* thermal zones */
    if ((i = get(s, "thermal:x86_pkg_temp"))) CHECK_EQ_STR(i->device, "cpu");
    if ((i = get(s, "thermal:acpitz"))) CHECK_NEAR(i->crit_C, 128.0, 0, 1e-9);
    /* cpufreq and throttle counters, 4 CPUs */
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_CPUFREQ), 4 * 3);
    if ((i = get(s, "cpufreq:cpu3"))) {
        CHECK_EQ_STR(i->device, "cpu3");
        CHECK_NEAR(i->min_Hz, 400e6, 0, 1e-3);
        CHECK_NEAR(i->max_Hz, 4.7e9, 0, 1e-3);
        CHECK_NEAR(i->cap_Hz, 4.7e9, 0, 1e-3);
    }
    if ((i = get(s, "throttle:cpu1:core"))) CHECK_EQ_INT(i->quantity, QEIL_SENSE_THROTTLE_COUNT);
    /* the dGPU through the fake NVML */
    const char *msg;
    CHECK_EQ_INT(qeil_sense_nvml_available(s, &msg), 1);
    CHECK_CONTAINS(msg, "1 GPU");
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_NVML), 5);
    if ((i = get(s, "nvml:gpu0"))) {
        CHECK_EQ_INT(i->quantity, QEIL_SENSE_ENERGY);
        CHECK_EQ_STR(i->device, "gpu0");
        CHECK_EQ_STR(i->name, "NVIDIA GeForce RTX 4070 Laptop GPU");
    }

    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s);
    CHECK(a != NULL);
    CHECK_EQ_INT(qeil_sense_read(s, a), 0);
    CHECK_NEAR(val(s, a, "rapl-package"), 123.456789, 1e-12, 0);
    CHECK_EQ_INT(qeil_sense_sample_get(a, (size_t)qeil_sense_find(s, "rapl-package"))->raw,
                 123456789);
    CHECK_NEAR(val(s, a, "hwmon:coretemp:Core 1"), 51.0, 0, 1e-12);
    CHECK_NEAR(val(s, a, "cpufreq:cpu0"), 2.1e9, 0, 1e-3);
    CHECK_NEAR(val(s, a, "throttle:cpu0:package"), 7, 0, 0);
    CHECK_NEAR(val(s, a, "nvml:gpu0"), 1000.0, 1e-12, 0);       /* 1e6 mJ */
    CHECK_NEAR(val(s, a, "nvml:gpu0:power"), 35.0, 1e-12, 0);   /* 35000 mW */
    CHECK_NEAR(val(s, a, "nvml:gpu0:temp"), 55.0, 0, 0);
    CHECK_NEAR(val(s, a, "nvml:gpu0:sm-clock"), 1.8e9, 0, 0);
    CHECK_NEAR(val(s, a, "nvml:gpu0:clocks-event-reasons"), 0, 0, 0);
    qeil_sense_sample_free(a);
    qeil_sense_free(s);
}

TEST(amd_desktop_discovered)
{
    qeil_sense *s = open_tree(DATA "/amd-desktop", NULL);
    CHECK(s != NULL);
    if (!s) return;
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_RAPL), 2); /* AMD: package and core */
    const qeil_sensor_info *i;
    if ((i = get(s, "rapl-package"))) CHECK_NEAR(i->range, 65532.610987, 1e-12, 1e-9);
    CHECK(get(s, "rapl-core") != NULL);
    if ((i = get(s, "hwmon:k10temp:Tctl"))) CHECK_EQ_STR(i->device, "cpu");
    CHECK(get(s, "hwmon:k10temp:Tccd1") != NULL);
    if ((i = get(s, "hwmon:amdgpu:PPT"))) {
        CHECK_EQ_INT(i->quantity, QEIL_SENSE_POWER);
        CHECK_EQ_STR(i->device, "gpu");
    }
    if ((i = get(s, "hwmon:amdgpu:junction"))) CHECK_NEAR(i->crit_C, 110.0, 0, 1e-9);
    if ((i = get(s, "hwmon:amdgpu:sclk"))) CHECK_EQ_INT(i->quantity, QEIL_SENSE_FREQ);
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_THERMAL), 0);
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_CPUFREQ), 2); /* no thermal_throttle on AMD */
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_NVML), 0);
    const char *msg;
    CHECK_EQ_INT(qeil_sense_nvml_available(s, &msg), 0);
    CHECK_CONTAINS(msg, "disabled");

    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s);
    CHECK_EQ_INT(qeil_sense_read(s, a), 0);
    CHECK_NEAR(val(s, a, "hwmon:amdgpu:PPT"), 35.0, 1e-12, 0); /* 35000000 µW */
    CHECK_NEAR(val(s, a, "hwmon:k10temp:Tctl"), 54.125, 1e-12, 0);
    CHECK_NEAR(val(s, a, "hwmon:amdgpu:sclk"), 500e6, 0, 0);
    CHECK_NEAR(val(s, a, "hwmon:amdgpu:vddgfx:voltage"), 0.85, 1e-12, 0);
    CHECK_NEAR(val(s, a, "rapl-core"), 123.456789, 1e-12, 0);
    qeil_sense_sample_free(a);
    qeil_sense_free(s);
}

TEST(jetson_orin_discovered)
{
    /* a Jetson has no NVML power: a library path that does not exist */
    qeil_sense *s = open_tree(DATA "/jetson-orin", "/nonexistent/libnvidia-ml.so.1");
    CHECK(s != NULL);
    if (!s) return;
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_RAPL), 0);
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_NVML), 0);
    CHECK_EQ_INT(qeil_sense_nvml_available(s, NULL), 0);
    static const char *const rails[] = {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"};
    for (int k = 0; k < 3; k++) {
        char id[96];
        snprintf(id, sizeof id, "hwmon:ina3221:%s", rails[k]);
        const qeil_sensor_info *i = get(s, id);
        if (!i) continue;
        CHECK_EQ_INT(i->quantity, QEIL_SENSE_POWER);
        CHECK_EQ_STR(i->device, rails[k]);
        snprintf(id, sizeof id, "hwmon:ina3221:%s:voltage", rails[k]);
        CHECK(get(s, id) != NULL);
        snprintf(id, sizeof id, "hwmon:ina3221:%s:current", rails[k]);
        CHECK(get(s, id) != NULL);
    }
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_THERMAL), 9);
    const qeil_sensor_info *i;
    if ((i = get(s, "thermal:gpu-thermal"))) {
        CHECK_EQ_STR(i->device, "gpu");
        CHECK_NEAR(i->crit_C, 104.5, 0, 1e-9);
        CHECK_NEAR(i->throttle_C, 99.0, 0, 1e-9);
    }
    CHECK(get(s, "thermal:tj-thermal") != NULL);
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_CPUFREQ), 6);

    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s);
    CHECK_EQ_INT(qeil_sense_read(s, a), 0);
    /* 5048 mV × 1480 mA = 7.47104 W */
    CHECK_NEAR(val(s, a, "hwmon:ina3221:VDD_IN"), 5.048 * 1.480, 1e-12, 0);
    CHECK_NEAR(val(s, a, "hwmon:ina3221:VDD_SOC:current"), 0.560, 1e-12, 0);
    CHECK_NEAR(val(s, a, "thermal:cpu-thermal"), 47.5, 1e-12, 0);
    CHECK_NEAR(val(s, a, "cpufreq:cpu5"), 1510.4e6, 1e-12, 0);
    qeil_sense_sample_free(a);
    qeil_sense_free(s);
}

TEST(rpi5_discovered)
{
    qeil_sense *s = open_tree(DATA "/rpi5", NULL);
    CHECK(s != NULL);
    if (!s) return;
    CHECK_EQ_INT(qeil_sense_count(s), 1 + 4); /* cpu-thermal + cpufreq of 4 CPUs */
    const qeil_sensor_info *i;
    if ((i = get(s, "thermal:cpu-thermal"))) {
        CHECK_EQ_STR(i->device, "cpu");
        CHECK_NEAR(i->crit_C, 110.0, 0, 1e-9);
        CHECK(isnan(i->throttle_C)); /* active trips only: fans, not throttling */
        CHECK_EQ_STR(qeil_sense_unit(i->quantity), "C");
    }
    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s);
    CHECK_EQ_INT(qeil_sense_read(s, a), 0);
    CHECK_NEAR(val(s, a, "thermal:cpu-thermal"), 52.65, 1e-12, 0);
    CHECK_NEAR(val(s, a, "cpufreq:cpu1"), 2.4e9, 0, 0);
    /* meter refuses what is not energy or power */
    qeil_sense_energy e;
    CHECK_EQ_INT(qeil_sense_meter(ctx, s, a, a, 0, &e), QEIL_ERR_UNSUPPORTED);
    qeil_sense_sample_free(a);
    qeil_sense_free(s);
}

TEST(bad_root_is_an_error)
{
    qeil_sense_params p = qeil_sense_default_params();
    qeil_sense *s = NULL;
    p.root = "/nonexistent/qeil-root";
    CHECK_EQ_INT(qeil_sense_create(ctx, &p, &s), QEIL_ERR_NOTFOUND);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "/nonexistent/qeil-root");
    CHECK(s == NULL);
    p.root = DATA "/README.md";
    CHECK_EQ_INT(qeil_sense_create(ctx, &p, &s), QEIL_ERR_NOTFOUND);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "not a directory");
    CHECK_EQ_INT(qeil_sense_create(ctx, &p, NULL), QEIL_ERR_INVALID);
    qeil_sense_free(NULL);
    qeil_sense_sample_free(NULL);
}

/* On a live system /sys/class/powercap/intel-rapl:0, /sys/class/hwmon/hwmonN
 * and cpuN/cpufreq are symbolic links into /sys/devices (sub-zones nest in
 * their parent's directory there). The same tree laid out that way reads
 * the same sensors and values. */
TEST(class_entries_as_symlinks)
{
    if (copy_tree("intel-laptop") != 0) {
        CHECK(!"copy fixture");
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s/sys && mkdir -p devices/virtual/powercap/intel-rapl "
             "devices/platform/coretemp.0/hwmon devices/system/cpu/cpufreq && "
             "mv class/powercap/intel-rapl:0 devices/virtual/powercap/intel-rapl/ && "
             "mv class/powercap/intel-rapl:0:0 devices/virtual/powercap/intel-rapl/intel-rapl:0/ && "
             "ln -s ../../devices/virtual/powercap/intel-rapl/intel-rapl:0 class/powercap/intel-rapl:0 && "
             "ln -s ../../devices/virtual/powercap/intel-rapl/intel-rapl:0/intel-rapl:0:0 "
             "class/powercap/intel-rapl:0:0 && "
             "mv class/hwmon/hwmon3 devices/platform/coretemp.0/hwmon/ && "
             "ln -s ../../devices/platform/coretemp.0/hwmon/hwmon3 class/hwmon/hwmon3 && "
             "mv devices/system/cpu/cpu2/cpufreq devices/system/cpu/cpufreq/policy2 && "
             "ln -s ../cpufreq/policy2 devices/system/cpu/cpu2/cpufreq",
             scratch);
    CHECK_EQ_INT(system(cmd), 0);
    qeil_sense *s = open_tree(scratch, NULL), *plain = open_tree(DATA "/intel-laptop", NULL);
    CHECK(s && plain);
    if (s && plain) {
        CHECK_EQ_INT(qeil_sense_count(s), qeil_sense_count(plain));
        for (size_t i = 0; i < qeil_sense_count(plain); i++)
            CHECK(qeil_sense_find(s, qeil_sense_info(plain, i)->id) >= 0);
        qeil_sense_sample *a = qeil_sense_sample_create(ctx, s);
        CHECK_EQ_INT(qeil_sense_read(s, a), 0);
        CHECK_NEAR(val(s, a, "rapl-package"), 123.456789, 1e-12, 0);
        CHECK_NEAR(val(s, a, "rapl-core"), 45.678901, 1e-12, 0);
        CHECK_NEAR(val(s, a, "hwmon:coretemp:Core 3"), 52.0, 1e-12, 0);
        CHECK_NEAR(val(s, a, "cpufreq:cpu2"), 3.4e9, 1e-12, 0);
        qeil_sense_sample_free(a);
    }
    qeil_sense_free(s);
    qeil_sense_free(plain);
    remove_tree();
}

/* A second socket's zones take the socket from their parent's name, and
 * two chips with one name get distinct ids. */
TEST(two_sockets_and_duplicate_ids)
{
    if (copy_tree("amd-desktop") != 0) {
        CHECK(!"copy fixture");
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s/sys/class && mkdir -p powercap/intel-rapl:1/ powercap/intel-rapl:1:0 hwmon/hwmon3 && "
             "echo package-1 > powercap/intel-rapl:1/name && echo 5000000 > powercap/intel-rapl:1/energy_uj && "
             "echo core > powercap/intel-rapl:1:0/name && echo 1000000 > powercap/intel-rapl:1:0/energy_uj && "
             "echo nvme > hwmon/hwmon3/name && echo Composite > hwmon/hwmon3/temp1_label && "
             "echo 41000 > hwmon/hwmon3/temp1_input",
             scratch);
    CHECK_EQ_INT(system(cmd), 0);
    qeil_sense *s = open_tree(scratch, NULL);
    CHECK(s != NULL);
    if (!s) {
        remove_tree();
        return;
    }
    const qeil_sensor_info *i;
    if ((i = get(s, "rapl-package-1"))) {
        CHECK_EQ_STR(i->device, "cpu-package1");
        CHECK_NEAR(i->range, 0, 0, 0); /* no max_energy_range_uj in this zone */
    }
    if ((i = get(s, "rapl-core-1"))) CHECK_EQ_STR(i->device, "cpu-cores1");
    CHECK(get(s, "rapl-core") != NULL);
    CHECK(get(s, "hwmon:nvme:Composite") != NULL);
    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s);
    qeil_sense_read(s, a);
    CHECK_NEAR(val(s, a, "hwmon:nvme:Composite"), 38.85, 1e-12, 0);
    CHECK_NEAR(val(s, a, "hwmon:nvme:Composite#2"), 41.0, 1e-12, 0);
    CHECK_NEAR(val(s, a, "rapl-core-1"), 1.0, 1e-12, 0);
    qeil_sense_sample_free(a);
    qeil_sense_free(s);
    remove_tree();
}

/* ------------------------------------------------------------------------ */
/* Counters                                                                  */
/* ------------------------------------------------------------------------ */

TEST(counter_wrap_rule)
{
    uint64_t d = 0;
    CHECK_EQ_INT(qeil_sense_counter_delta(100, 250, 1000, &d), 1);
    CHECK_EQ_INT(d, 150);
    /* wrapped: 1000 − 900 + 50 */
    CHECK_EQ_INT(qeil_sense_counter_delta(900, 50, 1000, &d), 1);
    CHECK_EQ_INT(d, 150);
    CHECK_EQ_INT(qeil_sense_counter_delta(5, 5, 0, &d), 1);
    CHECK_EQ_INT(d, 0);
    CHECK_EQ_INT(qeil_sense_counter_delta(10, 5, 0, &d), 0);    /* reset, no range */
    CHECK_EQ_INT(qeil_sense_counter_delta(2000, 5, 1000, &d), 0); /* past the range */
}

/* RAPL package counter just below its range, then past the wrap. */
TEST(rapl_counter_wraps_in_meter)
{
    if (copy_tree("intel-laptop") != 0) {
        CHECK(!"copy fixture");
        return;
    }
    qeil_sense *s = open_tree(scratch, NULL);
    CHECK(s != NULL);
    if (!s) {
        remove_tree();
        return;
    }
    size_t k = (size_t)qeil_sense_find(s, "rapl-package");
    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s), *b = qeil_sense_sample_create(ctx, s);
    /* range 262143328850 µJ; a = range − 1 J, b = 2 J after the wrap */
    CHECK_EQ_INT(write_file("sys/class/powercap/intel-rapl:0/energy_uj", "262142328850\n"), 0);
    CHECK_EQ_INT(qeil_sense_read(s, a), 0);
    usleep(2000);
    CHECK_EQ_INT(write_file("sys/class/powercap/intel-rapl:0/energy_uj", "2000000\n"), 0);
    CHECK_EQ_INT(qeil_sense_read(s, b), 0);
    qeil_sense_energy e;
    CHECK_EQ_INT(qeil_sense_meter(ctx, s, a, b, k, &e), QEIL_OK);
    CHECK_NEAR(e.energy_J, 3.0, 1e-12, 0); /* 1 J before the wrap + 2 J after */
    CHECK_EQ_INT(e.wrapped, 1);
    CHECK_EQ_STR(e.provenance, "rapl-package");
    CHECK_EQ_INT(e.method, QEIL_SENSE_METER_COUNTER);
    double dt = qeil_sense_sample_time_s(b) - qeil_sense_sample_time_s(a);
    CHECK(dt >= 0.002);
    CHECK_NEAR(e.t_s, dt, 1e-12, 0);
    CHECK_NEAR(e.power_W, 3.0 / dt, 1e-12, 0);
    /* the plain case: 2 J → 5.5 J */
    CHECK_EQ_INT(write_file("sys/class/powercap/intel-rapl:0/energy_uj", "5500000\n"), 0);
    usleep(1000);
    CHECK_EQ_INT(qeil_sense_read(s, a), 0);
    CHECK_EQ_INT(qeil_sense_meter(ctx, s, b, a, k, &e), QEIL_OK);
    CHECK_NEAR(e.energy_J, 3.5, 1e-12, 0);
    CHECK_EQ_INT(e.wrapped, 0);
    /* the same sample twice: no interval */
    CHECK_EQ_INT(qeil_sense_meter(ctx, s, a, a, k, &e), QEIL_ERR_RANGE);
    qeil_sense_sample_free(a);
    qeil_sense_sample_free(b);
    qeil_sense_free(s);
    remove_tree();
}

/* An hwmon energy counter (i915/xe energy1_input) has no documented wrap:
 * going backwards is a reset, reported, not turned into joules. */
TEST(hwmon_energy_counter_reset)
{
    if (copy_tree("intel-laptop") != 0) {
        CHECK(!"copy fixture");
        return;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sys/class/hwmon/hwmon4", scratch);
    CHECK_EQ_INT(mkdir(dir, 0755), 0);
    CHECK_EQ_INT(write_file("sys/class/hwmon/hwmon4/name", "i915\n"), 0);
    CHECK_EQ_INT(write_file("sys/class/hwmon/hwmon4/energy1_input", "5000000\n"), 0);
    qeil_sense *s = open_tree(scratch, NULL);
    CHECK(s != NULL);
    long k = s ? qeil_sense_find(s, "hwmon:i915:energy1") : -1;
    CHECK(k >= 0);
    if (k >= 0) {
        const qeil_sensor_info *i = qeil_sense_info(s, (size_t)k);
        CHECK_EQ_STR(i->device, "gpu");
        CHECK_EQ_INT(i->quantity, QEIL_SENSE_ENERGY);
        CHECK_NEAR(i->range, 0, 0, 0);
        qeil_sense_sample *a = qeil_sense_sample_create(ctx, s), *b = qeil_sense_sample_create(ctx, s);
        qeil_sense_read(s, a);
        usleep(1000);
        CHECK_EQ_INT(write_file("sys/class/hwmon/hwmon4/energy1_input", "7250000\n"), 0);
        qeil_sense_read(s, b);
        qeil_sense_energy e;
        CHECK_EQ_INT(qeil_sense_meter(ctx, s, a, b, (size_t)k, &e), QEIL_OK);
        CHECK_NEAR(e.energy_J, 2.25, 1e-12, 0);
        CHECK_EQ_STR(e.provenance, "hwmon:i915:energy1");
        CHECK_EQ_INT(write_file("sys/class/hwmon/hwmon4/energy1_input", "1000\n"), 0);
        usleep(1000);
        qeil_sense_read(s, a);
        CHECK_EQ_INT(qeil_sense_meter(ctx, s, b, a, (size_t)k, &e), QEIL_ERR_RANGE);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "reset");
        qeil_sense_sample_free(a);
        qeil_sense_sample_free(b);
    }
    qeil_sense_free(s);
    remove_tree();
}

/* ------------------------------------------------------------------------ */
/* Permission denied, vanishing sensors                                      */
/* ------------------------------------------------------------------------ */

/* energy_uj mode 0400 root (Linux >= 5.10) seen by an unprivileged user.
 * Root reads any file whatever its mode (CAP_DAC_OVERRIDE), so as root
 * the check runs in a child that has become "nobody" (uid 65534), which
 * drops every capability: the kernel then applies the mode for real. */
TEST(energy_uj_root_only)
{
    if (copy_tree("intel-laptop") != 0) {
        CHECK(!"copy fixture");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/sys/class/powercap/intel-rapl:0/energy_uj", scratch);
    CHECK_EQ_INT(chmod(path, 0400), 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(77);
        if (access(path, R_OK) == 0) _exit(78); /* still readable: no test */
        qeil_ctx *c = qeil_ctx_create(NULL);
        qeil_sense_params p = qeil_sense_default_params();
        p.root = scratch;
        p.nvml = 0;
        qeil_sense *s = NULL;
        CHECK_EQ_INT(qeil_sense_create(c, &p, &s), QEIL_OK); /* discovery succeeds */
        const qeil_sensor_info *pkg = s ? get(s, "rapl-package") : NULL;
        if (pkg) {
            CHECK_EQ_INT(pkg->readable, 0);
            CHECK_CONTAINS(pkg->note, path);
            CHECK_CONTAINS(pkg->note, "Permission denied");
            CHECK_CONTAINS(pkg->note, "run as root");
            CHECK_CONTAINS(pkg->note, "chmod");
            CHECK_CONTAINS(pkg->note, "modeled");
        }
        const qeil_sensor_info *core = s ? get(s, "rapl-core") : NULL;
        if (core) CHECK_EQ_INT(core->readable, 1);
        if (s) {
            qeil_sense_sample *a = qeil_sense_sample_create(c, s);
            CHECK_EQ_INT(qeil_sense_read(s, a), 1); /* only the package fails */
            const qeil_sense_reading *r =
                qeil_sense_sample_get(a, (size_t)qeil_sense_find(s, "rapl-package"));
            if (r) {
                CHECK_EQ_INT(r->status, QEIL_ERR_IO);
                CHECK_CONTAINS(r->error, "Permission denied");
            }
            qeil_sense_sample_free(a);
        }
        qeil_sense_free(s);
        qeil_ctx_free(c);
        fflush(stdout);
        _exit(test_failed_ ? 1 : 0);
    }
    int wst = 0;
    CHECK(pid > 0 && waitpid(pid, &wst, 0) == pid);
    remove_tree();
    CHECK(WIFEXITED(wst));
    int code = WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
    if (code == 77) SKIP("running as root and cannot switch to uid 65534 (no setuid)");
    if (code == 78) SKIP("a mode-0400 file stays readable here (capabilities kept)");
    CHECK_EQ_INT(code, 0);
}

TEST(sensor_vanishes_between_samples)
{
    if (copy_tree("jetson-orin") != 0) {
        CHECK(!"copy fixture");
        return;
    }
    qeil_sense *s = open_tree(scratch, NULL);
    CHECK(s != NULL);
    if (!s) {
        remove_tree();
        return;
    }
    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s), *b = qeil_sense_sample_create(ctx, s);
    CHECK_EQ_INT(qeil_sense_read(s, a), 0);
    char path[512], cmd[600];
    snprintf(path, sizeof path, "%s/sys/class/hwmon/hwmon1/curr2_input", scratch);
    CHECK_EQ_INT(unlink(path), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s/sys/class/thermal/thermal_zone3", scratch);
    CHECK_EQ_INT(system(cmd), 0);
    CHECK_EQ_INT(write_file("sys/class/thermal/thermal_zone0/temp", "47x00\n"), 0);
    usleep(1000);
    /* the rail's current, the rail's power (V × I), one zone gone, one junk */
    CHECK_EQ_INT(qeil_sense_read(s, b), 4);
    const qeil_sense_reading *junk =
        qeil_sense_sample_get(b, (size_t)qeil_sense_find(s, "thermal:cpu-thermal"));
    if (junk) {
        CHECK_EQ_INT(junk->status, QEIL_ERR_FORMAT);
        CHECK_CONTAINS(junk->error, "thermal_zone0/temp");
    }
    long k = qeil_sense_find(s, "hwmon:ina3221:VDD_CPU_GPU_CV");
    const qeil_sense_reading *r = qeil_sense_sample_get(b, (size_t)k);
    CHECK(r != NULL);
    if (r) {
        CHECK_EQ_INT(r->status, QEIL_ERR_IO);
        CHECK_CONTAINS(r->error, "curr2_input");
        CHECK_CONTAINS(r->error, "No such file");
        CHECK(isnan(r->value));
    }
    r = qeil_sense_sample_get(b, (size_t)qeil_sense_find(s, "thermal:cv1-thermal"));
    if (r) CHECK_CONTAINS(r->error, "thermal_zone3/temp");
    qeil_sense_energy e;
    CHECK_EQ_INT(qeil_sense_meter(ctx, s, a, b, (size_t)k, &e), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "second sample");
    /* the other rails still measure: power mean × interval */
    k = qeil_sense_find(s, "hwmon:ina3221:VDD_IN");
    CHECK_EQ_INT(qeil_sense_meter(ctx, s, a, b, (size_t)k, &e), QEIL_OK);
    CHECK_EQ_INT(e.method, QEIL_SENSE_METER_POWER_MEAN);
    CHECK_NEAR(e.power_W, 5.048 * 1.480, 1e-12, 0);
    CHECK_NEAR(e.energy_J, 5.048 * 1.480 * e.t_s, 1e-12, 0);
    qeil_sense_sample_free(a);
    qeil_sense_sample_free(b);
    qeil_sense_free(s);
    remove_tree();
}

/* ------------------------------------------------------------------------ */
/* NVML                                                                      */
/* ------------------------------------------------------------------------ */

static void fake_env_clear(void)
{
    static const char *const vars[] = {"FAKE_NVML_INIT",      "FAKE_NVML_COUNT",
                                       "FAKE_NVML_NAME",      "FAKE_NVML_POWER_MW",
                                       "FAKE_NVML_ENERGY_MJ", "FAKE_NVML_TEMP_C",
                                       "FAKE_NVML_SM_MHZ",    "FAKE_NVML_REASONS",
                                       "FAKE_NVML_LOST",      "QEIL_NVML_LIB"};
    for (size_t k = 0; k < sizeof vars / sizeof *vars; k++) unsetenv(vars[k]);
}

TEST(fake_nvml_values_read_back)
{
    fake_env_clear();
    setenv("FAKE_NVML_COUNT", "2", 1);
    setenv("FAKE_NVML_NAME", "NVIDIA RTX PRO 5000 Blackwell", 1);
    setenv("FAKE_NVML_POWER_MW", "40000", 1);
    setenv("FAKE_NVML_ENERGY_MJ", "5000000", 1);
    setenv("FAKE_NVML_TEMP_C", "61", 1);
    setenv("FAKE_NVML_SM_MHZ", "1410", 1);
    setenv("FAKE_NVML_REASONS", "36", 1); /* SwPowerCap 0x4 | SwThermalSlowdown 0x20 */
    qeil_sense *s = open_tree(DATA "/rpi5", fake_nvml);
    CHECK(s != NULL);
    if (!s) return;
    const char *msg;
    CHECK_EQ_INT(qeil_sense_nvml_available(s, &msg), 1);
    CHECK_CONTAINS(msg, "555.42.fake");
    CHECK_CONTAINS(msg, "2 GPUs");
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_NVML), 10);
    const qeil_sensor_info *i;
    if ((i = get(s, "nvml:gpu1"))) {
        CHECK_EQ_STR(i->name, "NVIDIA RTX PRO 5000 Blackwell");
        CHECK_EQ_STR(i->device, "gpu1");
        CHECK_NEAR(i->range, 0, 0, 0);
    }
    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s), *b = qeil_sense_sample_create(ctx, s);
    CHECK_EQ_INT(qeil_sense_read(s, a), 0);
    CHECK_NEAR(val(s, a, "nvml:gpu0:power"), 40.0, 1e-12, 0);
    CHECK_NEAR(val(s, a, "nvml:gpu1:power"), 41.0, 1e-12, 0);
    CHECK_NEAR(val(s, a, "nvml:gpu0"), 5000.0, 1e-12, 0);
    CHECK_NEAR(val(s, a, "nvml:gpu0:temp"), 61, 0, 0);
    CHECK_NEAR(val(s, a, "nvml:gpu1:sm-clock"), 1410e6, 0, 0);
    CHECK_NEAR(val(s, a, "nvml:gpu0:clocks-event-reasons"), 36, 0, 0);
    usleep(1000);
    setenv("FAKE_NVML_ENERGY_MJ", "5012500", 1);
    CHECK_EQ_INT(qeil_sense_read(s, b), 0);
    qeil_sense_energy e;
    CHECK_EQ_INT(qeil_sense_meter(ctx, s, a, b, (size_t)qeil_sense_find(s, "nvml:gpu0"), &e),
                 QEIL_OK);
    CHECK_NEAR(e.energy_J, 12.5, 1e-12, 0); /* 12500 mJ */
    CHECK_EQ_STR(e.provenance, "nvml:gpu0");
    /* GPU 1 falls off the bus: its five sensors fail, GPU 0 keeps going */
    setenv("FAKE_NVML_LOST", "1", 1);
    CHECK_EQ_INT(qeil_sense_read(s, b), 5);
    const qeil_sense_reading *r = qeil_sense_sample_get(b, (size_t)qeil_sense_find(s, "nvml:gpu1"));
    if (r) {
        CHECK_EQ_INT(r->status, QEIL_ERR_IO);
        CHECK_CONTAINS(r->error, "GPU is lost");
    }
    CHECK_NEAR(val(s, b, "nvml:gpu0:power"), 40.0, 1e-12, 0);
    qeil_sense_sample_free(a);
    qeil_sense_sample_free(b);
    qeil_sense_free(s);

    /* a pre-535 library: no _v2 entry points, ...ThrottleReasons */
    fake_env_clear();
    setenv("FAKE_NVML_REASONS", "64", 1); /* HwThermalSlowdown */
    s = open_tree(DATA "/rpi5", fake_nvml_old);
    CHECK_EQ_INT(qeil_sense_nvml_available(s, &msg), 1);
    CHECK_CONTAINS(msg, "470.00.fake-old");
    a = qeil_sense_sample_create(ctx, s);
    CHECK_EQ_INT(qeil_sense_read(s, a), 0);
    CHECK_NEAR(val(s, a, "nvml:gpu0:clocks-event-reasons"), 64, 0, 0);
    CHECK_NEAR(val(s, a, "nvml:gpu0:power"), 35.0, 1e-12, 0);
    qeil_sense_sample_free(a);
    qeil_sense_free(s);

    /* no total-energy counter (pre-Volta): power stays, energy is absent */
    fake_env_clear();
    setenv("FAKE_NVML_ENERGY_MJ", "unsupported", 1);
    s = open_tree(DATA "/rpi5", fake_nvml);
    CHECK(s && qeil_sense_find(s, "nvml:gpu0") < 0);
    CHECK(s && qeil_sense_find(s, "nvml:gpu0:power") >= 0);
    qeil_sense_free(s);
    fake_env_clear();
}

TEST(missing_nvml_is_not_available)
{
    fake_env_clear();
    qeil_sense *s = open_tree(DATA "/rpi5", "/nonexistent/libnvidia-ml.so.1");
    CHECK(s != NULL);
    const char *msg = NULL;
    CHECK_EQ_INT(qeil_sense_nvml_available(s, &msg), 0);
    CHECK_CONTAINS(msg, "not available");
    CHECK_CONTAINS(msg, "/nonexistent/libnvidia-ml.so.1");
    CHECK_EQ_INT(qeil_sense_count(s), 5);
    qeil_sense_free(s);

    /* the library loads but the driver is not (NVML_ERROR_DRIVER_NOT_LOADED) */
    setenv("FAKE_NVML_INIT", "9", 1);
    s = open_tree(DATA "/rpi5", fake_nvml);
    CHECK_EQ_INT(qeil_sense_nvml_available(s, &msg), 0);
    CHECK_CONTAINS(msg, "Driver Not Loaded");
    CHECK_EQ_INT(count_source(s, QEIL_SENSE_SRC_NVML), 0);
    qeil_sense_free(s);

    /* QEIL_NVML_LIB picks the library when the caller names none */
    fake_env_clear();
    setenv("QEIL_NVML_LIB", fake_nvml, 1);
    qeil_sense_params p = qeil_sense_default_params();
    p.root = DATA "/rpi5";
    s = NULL;
    CHECK_EQ_INT(qeil_sense_create(ctx, &p, &s), QEIL_OK);
    CHECK_EQ_INT(qeil_sense_nvml_available(s, NULL), 1);
    qeil_sense_free(s);
    fake_env_clear();
}

/* ------------------------------------------------------------------------ */
/* This machine                                                              */
/* ------------------------------------------------------------------------ */

TEST(live_machine)
{
    fake_env_clear();
    qeil_sense *s = NULL;
    CHECK_EQ_INT(qeil_sense_create(ctx, NULL, &s), QEIL_OK);
    if (!s) return;
    size_t n = qeil_sense_count(s), unreadable = 0;
    for (size_t i = 0; i < n; i++) {
        const qeil_sensor_info *a = qeil_sense_info(s, i);
        CHECK(a->id[0] != '\0');
        CHECK(strcmp(qeil_sense_unit(a->quantity), "?") != 0);
        if (!a->readable) unreadable++;
        for (size_t j = 0; j < i; j++)
            if (strcmp(qeil_sense_info(s, j)->id, a->id) == 0) TEST_FAIL_("duplicate id %s", a->id);
    }
    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s);
    size_t failed = qeil_sense_read(s, a);
    const char *msg;
    qeil_sense_nvml_available(s, &msg);
    printf("  live: %zu sensors (%zu RAPL, %zu hwmon, %zu thermal, %zu cpufreq, %zu NVML), "
           "%zu unreadable, %zu failed to read; NVML: %s\n",
           n, count_source(s, QEIL_SENSE_SRC_RAPL), count_source(s, QEIL_SENSE_SRC_HWMON),
           count_source(s, QEIL_SENSE_SRC_THERMAL), count_source(s, QEIL_SENSE_SRC_CPUFREQ),
           count_source(s, QEIL_SENSE_SRC_NVML), unreadable, failed, msg);
    qeil_sense_sample_free(a);
    qeil_sense_free(s);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[1024], cwd[1024] = ".";
    snprintf(self, sizeof self, "%s", argv[0]);
    const char *dir = dirname(self);
    /* dlopen searches the library path for a name without '/': make it absolute */
    if (dir[0] != '/' && !getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
    snprintf(fake_nvml, sizeof fake_nvml, "%s%s%s/libnvidia-ml.so.1", dir[0] == '/' ? "" : cwd,
             dir[0] == '/' ? "" : "/", dir);
    snprintf(fake_nvml_old, sizeof fake_nvml_old, "%s%s%s/old/libnvidia-ml.so.1",
             dir[0] == '/' ? "" : cwd, dir[0] == '/' ? "" : "/", dir);
    ctx = qeil_ctx_create(NULL);
    RUN(intel_laptop_discovered);
    RUN(amd_desktop_discovered);
    RUN(jetson_orin_discovered);
    RUN(rpi5_discovered);
    RUN(bad_root_is_an_error);
    RUN(class_entries_as_symlinks);
    RUN(two_sockets_and_duplicate_ids);
    RUN(counter_wrap_rule);
    RUN(rapl_counter_wraps_in_meter);
    RUN(hwmon_energy_counter_reset);
    RUN(energy_uj_root_only);
    RUN(sensor_vanishes_between_samples);
    RUN(fake_nvml_values_read_back);
    RUN(missing_nvml_is_not_available);
    RUN(live_machine);
    qeil_ctx_free(ctx);
    return test_summary("sense");
}
