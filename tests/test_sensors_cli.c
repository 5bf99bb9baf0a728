/* test_sensors_cli.c — `qeil sensors` end to end on the fixture trees of
 * tests/data/sense and on this machine: exit codes, option errors, table
 * and JSON output, the interval measurement. Runs the qeil binary of the
 * same build directory (argv[0]/../../qeil) and the fake NVML built next
 * to this test. Run from the repository root. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define CLI_HARNESS_TMPDIR "/tmp/qeil-sensors-cli-XXXXXX"
#include "cli_harness.h"

static char fake_nvml[4200];

TEST(help_and_usage_errors)
{
    CHECK_EQ_INT(qeil("sensors --help"), 0);
    CHECK_CONTAINS(out_text, "--interval");
    CHECK_EQ_INT(qeil("--help"), 0);
    CHECK_CONTAINS(out_text, "sensors");
    CHECK_EQ_INT(qeil("sensors --interval 0"), 2);
    CHECK_CONTAINS(err_text, "--interval");
    CHECK_CONTAINS(err_text, "0.01");
    CHECK_EQ_INT(qeil("sensors --interval 1x"), 2);
    CHECK_CONTAINS(err_text, "1x");
    CHECK_EQ_INT(qeil("sensors --output csv"), 2);
    CHECK_EQ_INT(qeil("sensors --frobnicate"), 2);
    CHECK_CONTAINS(err_text, "--frobnicate");
    CHECK_EQ_INT(qeil("sensors extra"), 2);
    CHECK_EQ_INT(qeil("sensors --root"), 2);
    CHECK_EQ_INT(qeil("sensors --root /nonexistent/qeil-root"), 1);
    CHECK_CONTAINS(err_text, "/nonexistent/qeil-root");
}

TEST(jetson_table)
{
    CHECK_EQ_INT(qeil("sensors --root tests/data/sense/jetson-orin --no-nvml"), 0);
    CHECK_CONTAINS(out_text, "hwmon:ina3221:VDD_IN ");
    CHECK_CONTAINS(out_text, "7.471 W"); /* 5048 mV × 1480 mA */
    CHECK_CONTAINS(out_text, "thermal:tj-thermal");
    CHECK_CONTAINS(out_text, "crit 104.5 C");
    CHECK_CONTAINS(out_text, "measured");
    CHECK_CONTAINS(out_text, "NVML: not loaded");
}

TEST(intel_laptop_json_with_interval)
{
    char args[4400];
    snprintf(args, sizeof args,
             "sensors --root tests/data/sense/intel-laptop --nvml-lib %s --interval 0.02 "
             "--output json",
             fake_nvml);
    CHECK_EQ_INT(qeil(args), 0);
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    if (!j) return;
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "command")), "sensors");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "provenance")), "measured");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "nvml"), "available")));
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "units"), "energy")),
                 "J");
    int found = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "sensors"))
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(it, "id"));
        if (!id || strcmp(id, "rapl-package") != 0) continue;
        found = 1;
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "value")), 123.456789, 1e-12, 0);
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(it, "raw")), "123456789");
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(it, "device")), "cpu-package");
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "range_J")), 262143.32885, 1e-12, 0);
    }
    CHECK(found);
    found = 0;
    cJSON *iv = cJSON_GetObjectItem(j, "interval");
    CHECK(iv != NULL);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(iv, "measured"))
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(it, "id"));
        if (!id || strcmp(id, "nvml:gpu0:power") != 0) continue;
        found = 1;
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(it, "method")), "power-mean");
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "power_W")), 35.0, 1e-9, 0);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "t_s")) >= 0.02);
    }
    CHECK(found);
    cJSON_Delete(j);
}

TEST(no_power_sensor_says_modeled)
{
    CHECK_EQ_INT(qeil("sensors --root tests/data/sense/rpi5 --no-nvml --interval 0.01"), 0);
    CHECK_CONTAINS(out_text, "no readable energy or power sensor");
    CHECK_CONTAINS(out_text, "modeled");
    CHECK_CONTAINS(out_text, "cpufreq:cpu3");
}

TEST(this_machine)
{
    CHECK_EQ_INT(qeil("sensors"), 0);
    CHECK_CONTAINS(out_text, "under /");
    printf("  %.*s", (int)strcspn(out_text ? out_text : "", "\n") + 1, out_text ? out_text : "");
}

int main(int argc, char **argv)
{
    (void)argc;
    if (cli_harness_init(argv[0]) != 0) return 1;
    snprintf(fake_nvml, sizeof fake_nvml, "%.4080s/libnvidia-ml.so.1", test_dir);
    unsetenv("QEIL_NVML_LIB");
    RUN(help_and_usage_errors);
    RUN(jetson_table);
    RUN(intel_laptop_json_with_interval);
    RUN(no_power_sensor_says_modeled);
    RUN(this_machine);
    cli_harness_done();
    return test_summary("sensors-cli");
}
