/* test_actuate.c — actuators and throttle ground truth (qeil/sense.h) on
 * temp copies of the fixture trees of tests/data/sense: writes land in the
 * copy and the test reads the files back; out-of-range values are refused
 * with the field, value and allowed range and nothing is written; a write
 * the file system refuses is an error naming the file, never a crash; NVML
 * application clocks and power limit through the fake libnvidia-ml.so.1
 * (tests/fake_nvml.c logs each write); throttle counters, NVML reasons and
 * critical alarms counted between two samples. Run from the repository
 * root. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <math.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qeil/sense.h"
#include "test.h"

#define DATA "tests/data/sense"

static char fake_nvml[4096];
static char tmpdir[] = "/tmp/qeil-actuate-XXXXXX";
static qeil_ctx *ctx;

/* A fresh copy of fixture `name` under tmpdir; returns its path. */
static const char *copy_tree(const char *name)
{
    static char dst[4200];
    char cmd[9000];
    snprintf(dst, sizeof dst, "%s/%s", tmpdir, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s/%s' '%s'", dst, DATA, name, dst);
    if (system(cmd) != 0) printf("  cannot copy %s\n", name);
    return dst;
}

static qeil_sense *open_tree(const char *root, const char *nvml_lib)
{
    qeil_sense_params p = qeil_sense_default_params();
    p.root = root;
    p.nvml = nvml_lib != NULL;
    p.nvml_lib = nvml_lib;
    qeil_sense *s = NULL;
    if (qeil_sense_create(ctx, &p, &s) != QEIL_OK) printf("  create(%s): %s\n", root, qeil_ctx_errmsg(ctx));
    return s;
}

static long long read_ll(const char *path)
{
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (!f) return -1;
    if (fscanf(f, "%lld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

static void write_str(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(s, f);
    fclose(f);
}

TEST(cpufreq_max_freq_written_in_khz)
{
    const char *root = copy_tree("intel-laptop");
    qeil_sense *s = open_tree(root, NULL);
    CHECK(s != NULL);
    if (!s) return;
    /* intel_pstate: four policies, no frequency list: any value in
     * cpuinfo_min_freq..cpuinfo_max_freq = 0.4..4.7 GHz; no setspeed
     * (governor powersave) */
    CHECK_EQ_INT(qeil_sense_actuator_count(s), 4);
    long i = qeil_sense_actuator_find(s, "cpufreq:cpu0");
    CHECK(i >= 0);
    CHECK_EQ_INT(qeil_sense_actuator_find(s, "cpufreq:cpu0:setspeed"), -1);
    const qeil_actuator_info *in = qeil_sense_actuator_info(s, (size_t)i);
    CHECK_EQ_INT(in->kind, QEIL_ACT_CPUFREQ_MAX);
    CHECK_EQ_STR(in->device, "cpu0");
    CHECK_EQ_STR(in->unit, "Hz");
    CHECK_NEAR(in->min, 400e6, 0, 0);
    CHECK_NEAR(in->max, 4700e6, 0, 0);
    CHECK_NEAR(in->initial, 4700e6, 0, 0);
    CHECK_EQ_INT(in->n_levels, 0);
    CHECK_EQ_INT(in->writable, 1);
    char path[4400];
    snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq", root);
    CHECK_EQ_STR(in->path, path);
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)i, 2.8e9), QEIL_OK);
    CHECK_EQ_INT(read_ll(path), 2800000); /* kHz in the file */
    double v = 0;
    CHECK_EQ_INT(qeil_sense_actuator_get(ctx, s, (size_t)i, &v), QEIL_OK);
    CHECK_NEAR(v, 2.8e9, 0, 0);
    /* out of range: refused, named, nothing written */
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)i, 5e9), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "cpufreq:cpu0");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "scaling_max_freq");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "5000000000 Hz");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "400000000..4700000000 Hz");
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)i, NAN), QEIL_ERR_RANGE);
    CHECK_EQ_INT(read_ll(path), 2800000);
    CHECK_NEAR(qeil_sense_actuator_floor(s, (size_t)i, 9e9), 4.7e9, 0, 0);
    CHECK_NEAR(qeil_sense_actuator_floor(s, (size_t)i, 1e9), 1e9, 0, 0);
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, 99, 1e9), QEIL_ERR_INVALID);
    qeil_sense_free(s);
}

TEST(cpufreq_levels_and_userspace_setspeed)
{
    /* rpi5: one policy for cpu0-3 (related_cpus), frequencies 1.5..2.4 GHz
     * by 100 MHz, userspace governor: scaling_max_freq and scaling_setspeed */
    const char *root = copy_tree("rpi5");
    qeil_sense *s = open_tree(root, NULL);
    CHECK(s != NULL);
    if (!s) return;
    CHECK_EQ_INT(qeil_sense_actuator_count(s), 2);
    long i = qeil_sense_actuator_find(s, "cpufreq:cpu0");
    long k = qeil_sense_actuator_find(s, "cpufreq:cpu0:setspeed");
    CHECK(i >= 0 && k >= 0);
    if (i < 0 || k < 0) {
        qeil_sense_free(s);
        return;
    }
    const qeil_actuator_info *in = qeil_sense_actuator_info(s, (size_t)i);
    CHECK_EQ_INT(in->n_levels, 10);
    CHECK_NEAR(in->levels[0], 1.5e9, 0, 0);
    CHECK_NEAR(in->levels[9], 2.4e9, 0, 0);
    CHECK_EQ_INT(qeil_sense_actuator_info(s, (size_t)k)->kind, QEIL_ACT_CPUFREQ_SPEED);
    char path[4400];
    snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq", root);
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)i, 1.8e9), QEIL_OK);
    CHECK_EQ_INT(read_ll(path), 1800000);
    /* in range but not a listed frequency */
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)i, 1.85e9), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1850000000 Hz");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "one of {1500000000, 1600000000");
    CHECK_EQ_INT(read_ll(path), 1800000);
    CHECK_NEAR(qeil_sense_actuator_floor(s, (size_t)i, 1.85e9), 1.8e9, 0, 0);
    CHECK_NEAR(qeil_sense_actuator_floor(s, (size_t)i, 1e9), 1.5e9, 0, 0);
    snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpu0/cpufreq/scaling_setspeed", root);
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)k, 2.0e9), QEIL_OK);
    CHECK_EQ_INT(read_ll(path), 2000000);
    qeil_sense_free(s);
}

TEST(devfreq_gpu_cap_on_jetson)
{
    const char *root = copy_tree("jetson-orin");
    qeil_sense *s = open_tree(root, NULL);
    CHECK(s != NULL);
    if (!s) return;
    long i = qeil_sense_actuator_find(s, "devfreq:17000000.gpu");
    CHECK(i >= 0);
    if (i < 0) {
        qeil_sense_free(s);
        return;
    }
    const qeil_actuator_info *in = qeil_sense_actuator_info(s, (size_t)i);
    CHECK_EQ_INT(in->kind, QEIL_ACT_DEVFREQ_MAX);
    CHECK_EQ_STR(in->device, "gpu");
    CHECK_EQ_INT(in->n_levels, 8);
    CHECK_NEAR(in->min, 306e6, 0, 0);
    CHECK_NEAR(in->max, 1020e6, 0, 0);
    CHECK_NEAR(in->initial, 1020e6, 0, 0);
    char path[4400];
    snprintf(path, sizeof path, "%s/sys/class/devfreq/17000000.gpu/max_freq", root);
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)i, 612e6), QEIL_OK);
    CHECK_EQ_INT(read_ll(path), 612000000); /* Hz in the file */
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)i, 100e6), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "devfreq:17000000.gpu");
    CHECK_EQ_INT(read_ll(path), 612000000);
    qeil_sense_free(s);
}

/* Make path unwritable: chmod for a user; as root (which ignores the mode)
 * the immutable attribute, where the file system has it. 1 when done. */
static int make_unwritable(const char *path)
{
    if (geteuid() != 0) return chmod(path, 0444) == 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    int flags = 0, ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
    if (ok) {
        flags |= FS_IMMUTABLE_FL;
        ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
    close(fd);
    return ok;
}

static void make_writable(const char *path)
{
    chmod(path, 0644);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    int flags = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags &= ~FS_IMMUTABLE_FL;
        ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    close(fd);
}

TEST(refused_write_names_the_file)
{
    const char *root = copy_tree("intel-laptop");
    char path[4400];
    snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpu1/cpufreq/scaling_max_freq", root);
    if (!make_unwritable(path)) SKIP("cannot make a file unwritable here (root without FS_IMMUTABLE_FL)");
    qeil_sense *s = open_tree(root, NULL);
    long i = s ? qeil_sense_actuator_find(s, "cpufreq:cpu1") : -1;
    CHECK(i >= 0);
    if (i >= 0) {
        const qeil_actuator_info *in = qeil_sense_actuator_info(s, (size_t)i);
        CHECK_EQ_INT(in->writable, 0);
        CHECK_CONTAINS(in->note, path);
        CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)i, 1e9), QEIL_ERR_IO);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "cannot write");
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), path);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "run as root");
        CHECK_EQ_INT(read_ll(path), 4700000);
    }
    make_writable(path);
    qeil_sense_free(s);
}

TEST(nvml_clocks_and_power_limit_through_dlopen)
{
    char log[4300];
    snprintf(log, sizeof log, "%s/nvml-writes.log", tmpdir);
    unlink(log);
    setenv("FAKE_NVML_WRITE_LOG", log, 1);
    unsetenv("FAKE_NVML_NO_PERMISSION");
    qeil_sense *s = open_tree(DATA "/amd-desktop", fake_nvml);
    CHECK(s != NULL);
    if (!s) return;
    long c = qeil_sense_actuator_find(s, "nvml:gpu0:clocks");
    long p = qeil_sense_actuator_find(s, "nvml:gpu0:power-limit");
    CHECK(c >= 0 && p >= 0);
    if (c < 0 || p < 0) {
        qeil_sense_free(s);
        return;
    }
    const qeil_actuator_info *ci = qeil_sense_actuator_info(s, (size_t)c);
    CHECK_EQ_INT(ci->n_levels, 6);
    CHECK_NEAR(ci->levels[0], 600e6, 0, 0); /* ascending, NVML lists descending */
    CHECK_NEAR(ci->max, 2100e6, 0, 0);
    const qeil_actuator_info *pi = qeil_sense_actuator_info(s, (size_t)p);
    CHECK_NEAR(pi->min, 10, 0, 1e-12);
    CHECK_NEAR(pi->max, 115, 0, 1e-12);
    CHECK_NEAR(pi->initial, 80, 0, 1e-12);
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)c, 1200e6), QEIL_OK);
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)p, 55), QEIL_OK);
    double v = 0;
    CHECK_EQ_INT(qeil_sense_actuator_get(ctx, s, (size_t)c, &v), QEIL_OK);
    CHECK_NEAR(v, 1200e6, 0, 0);
    CHECK_EQ_INT(qeil_sense_actuator_get(ctx, s, (size_t)p, &v), QEIL_OK);
    CHECK_NEAR(v, 55, 0, 1e-12);
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)p, 200), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "nvml:gpu0:power-limit");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "10..115 W");
    FILE *f = fopen(log, "r");
    char text[512] = "";
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    CHECK_CONTAINS(text, "app-clocks gpu0 mem=8001 graphics=1200\n");
    CHECK_CONTAINS(text, "power-limit gpu0 mW=55000\n");
    /* no permission: an error naming the call, never a crash */
    setenv("FAKE_NVML_NO_PERMISSION", "1", 1);
    CHECK_EQ_INT(qeil_sense_actuate(ctx, s, (size_t)c, 900e6), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "nvmlDeviceSetApplicationsClocks");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "Insufficient Permissions");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "run as root");
    unsetenv("FAKE_NVML_NO_PERMISSION");
    unsetenv("FAKE_NVML_WRITE_LOG");
    qeil_sense_free(s);
}

TEST(throttle_ground_truth_counted)
{
    /* intel-laptop: thermal_throttle counters for 4 CPUs; the fake NVML's
     * reasons; a crit alarm added to the copy's coretemp chip */
    const char *root = copy_tree("intel-laptop");
    char hw[4400], cnt[4400];
    snprintf(hw, sizeof hw, "%s/sys/class/hwmon/hwmon1/temp1_crit_alarm", root);
    snprintf(cnt, sizeof cnt, "%s/sys/devices/system/cpu/cpu2/thermal_throttle/core_throttle_count",
             root);
    /* find the coretemp chip: the alarm goes next to its temp1_input */
    for (int h = 0; h < 8; h++) {
        char name[4400], buf[64] = "";
        snprintf(name, sizeof name, "%s/sys/class/hwmon/hwmon%d/name", root, h);
        FILE *f = fopen(name, "r");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f) && strncmp(buf, "coretemp", 8) == 0)
            snprintf(hw, sizeof hw, "%s/sys/class/hwmon/hwmon%d/temp1_crit_alarm", root, h);
        fclose(f);
    }
    write_str(hw, "0\n");
    setenv("FAKE_NVML_REASONS", "0", 1);
    qeil_sense *s = open_tree(root, fake_nvml);
    CHECK(s != NULL);
    if (!s) return;
    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s), *b = qeil_sense_sample_create(ctx, s);
    qeil_sense_read(s, a);
    qeil_sense_throttle t;
    qeil_sense_read(s, b);
    qeil_sense_throttle_between(s, a, b, &t);
    CHECK_EQ_INT(t.available, 1);
    CHECK_EQ_INT(t.events, 0);
    /* 3 more core throttles on cpu2, the GPU's HW thermal slowdown bit
     * (0x40) set, the alarm raised */
    long long c0 = read_ll(cnt);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld\n", c0 + 3);
    write_str(cnt, buf);
    setenv("FAKE_NVML_REASONS", "64", 1);
    write_str(hw, "1\n");
    qeil_sense_read(s, b);
    qeil_sense_throttle_between(s, a, b, &t);
    CHECK_EQ_INT(t.counter_events, 3);
    CHECK_EQ_INT(t.reason_events, 1);
    CHECK_EQ_INT(t.alarm_events, 1);
    CHECK_EQ_INT(t.events, 5);
    /* a reason that is not heat or power (0x1, GPU idle) counts nothing */
    setenv("FAKE_NVML_REASONS", "1", 1);
    qeil_sense_read(s, b);
    qeil_sense_throttle_between(s, a, b, &t);
    CHECK_EQ_INT(t.reason_events, 0);
    unsetenv("FAKE_NVML_REASONS");
    qeil_sense_sample_free(a);
    qeil_sense_sample_free(b);
    qeil_sense_free(s);

    /* no source at all: unknown, not zero */
    s = open_tree(DATA "/rpi5", NULL);
    a = qeil_sense_sample_create(ctx, s);
    qeil_sense_read(s, a);
    qeil_sense_throttle_between(s, a, a, &t);
    CHECK_EQ_INT(t.available, 0);
    qeil_sense_sample_free(a);
    qeil_sense_free(s);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[1024], cwd[1024] = ".";
    snprintf(self, sizeof self, "%s", argv[0]);
    const char *dir = dirname(self);
    if (dir[0] != '/' && !getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
    snprintf(fake_nvml, sizeof fake_nvml, "%s%s%s/libnvidia-ml.so.1", dir[0] == '/' ? "" : cwd,
             dir[0] == '/' ? "" : "/", dir);
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    ctx = qeil_ctx_create(NULL);
    RUN(cpufreq_max_freq_written_in_khz);
    RUN(cpufreq_levels_and_userspace_setspeed);
    RUN(devfreq_gpu_cap_on_jetson);
    RUN(refused_write_names_the_file);
    RUN(nvml_clocks_and_power_limit_through_dlopen);
    RUN(throttle_ground_truth_counted);
    qeil_ctx_free(ctx);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("  cannot remove %s\n", tmpdir);
    return test_summary("actuate");
}
