/* cmd_devices.c — `qeil devices`: the compute devices this machine offers
 * qeil — the CPU, and each Vulkan physical device with what the vulkan
 * backend uses of it (docs/vulkan.md). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "opt.h"
#include "qeil/device.h"
#include "qeil/engine.h"
#include "qeil/vulkan.h"

#define CMD "devices"

typedef struct {
    cli_output out;
} devices_opts;

static const cli_optdef devices_table[] = {
    {CLI_OUTPUT("table (default) or json", devices_opts, out, "table|json")},
};

static const cli_command devices_cmd = {
    CMD,
    "usage: qeil devices [options]\n\n"
    "List the devices qeil can run work units on: the CPU (placement name 'cpu'),\n"
    "one CPU device per core cluster ('cpu-big', 'cpu-little', 'cpu-p', 'cpu-e':\n"
    "threads bound to the cluster's CPUs; $QEIL_CPU_CLUSTERS=a=0,b=1 treats core\n"
    "sets as clusters, docs/engine.md) and each Vulkan physical device ('vk0',\n"
    "'vk1', ...; units run on vk0) with its type, Vulkan version, memory heaps,\n"
    "subgroup size and the features the shaders use. Without a Vulkan loader or\n"
    "driver the reason is printed and everything runs on the CPU. Vulkan is\n"
    "loaded from libvulkan.so.1, or from $QEIL_VULKAN_LIB when set.\n",
    devices_table,
    CLI_NOPTS(devices_table),
    "Placement: qeil generate/bench --placement (docs/cli.md).\n",
    NULL,
};

/* "model name" of /proc/cpuinfo, else "cpu". */
static void cpu_name(char *buf, size_t n)
{
    snprintf(buf, n, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            const char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t') c++;
                snprintf(buf, n, "%s", c);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    fclose(f);
}

static const char *yes(int v) { return v ? "yes" : "no"; }

int cmd_devices(int argc, char **argv)
{
    devices_opts opts = {.out = CLI_OUT_TABLE};
    int prc = cli_opt_parse(&devices_cmd, argc, argv, &opts);
    if (prc != CLI_OK) return prc == CLI_OPT_HELP ? CLI_OK : prc;
    const cli_output out = opts.out;
    qeil_ctx *ctx = cli_ctx_create();
    qeil_vk_device *d = ctx ? qeil_calloc(ctx, QEIL_VK_MAX_DEVICES, sizeof *d) : NULL;
    if (!d) {
        qeil_ctx_free(ctx);
        return cli_fail(CMD, "out of memory");
    }
    /* core clusters: a bad QEIL_CPU_CLUSTERS is an error (docs/engine.md) */
    char cl_source[32];
    if (qeil_engine_cpu_clusters(ctx, cl_source, sizeof cl_source) != QEIL_OK) {
        const int r = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        qeil_free(ctx, d);
        qeil_ctx_free(ctx);
        return r;
    }
    size_t n = 0;
    const int have_vk = qeil_vk_devices(ctx, d, QEIL_VK_MAX_DEVICES, &n) == QEIL_OK;
    const char *why = have_vk ? NULL : qeil_ctx_errmsg(ctx);
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    const int n_cpus = qeil_probe_cpu_count();
    int rc = CLI_OK;

    if (out == CLI_OUT_JSON) {
        cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "devices");
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", "cpu");
        cJSON_AddStringToObject(c, "backend", "cpu");
        cJSON_AddStringToObject(c, "name", cpu);
        cJSON_AddStringToObject(c, "type", "cpu");
        cJSON_AddNumberToObject(c, "cpus", n_cpus);
        cJSON_AddItemToArray(arr, c);
        for (size_t id = 3; id < qeil_engine_n_backends(); id++) {
            char list[256];
            const int nc = qeil_engine_device_cpus(id, list, sizeof list);
            if (nc < 1) continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", qeil_engine_device_name(id));
            cJSON_AddStringToObject(o, "backend", "cpu");
            cJSON_AddStringToObject(o, "name", cpu);
            cJSON_AddStringToObject(o, "type", "cpu cluster");
            cJSON_AddNumberToObject(o, "cpus", nc);
            cJSON_AddStringToObject(o, "cpu_list", list);
            cJSON_AddItemToArray(arr, o);
        }
        cJSON_AddStringToObject(j, "cpu_clusters", cl_source);
        for (size_t i = 0; i < n; i++) {
            char id[24], ver[48];
            snprintf(id, sizeof id, "vk%zu", i);
            snprintf(ver, sizeof ver, "%u.%u.%u", d[i].api_major, d[i].api_minor, d[i].api_patch);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", id);
            cJSON_AddStringToObject(o, "backend", "vulkan");
            cJSON_AddBoolToObject(o, "runs_units", i == 0);
            cJSON_AddStringToObject(o, "name", d[i].name);
            cJSON_AddStringToObject(o, "type", qeil_vk_device_type_name(d[i].type));
            cJSON_AddStringToObject(o, "vulkan", ver);
            cJSON_AddNumberToObject(o, "vendor_id", d[i].vendor_id);
            cJSON_AddNumberToObject(o, "device_id", d[i].device_id);
            cJSON_AddNumberToObject(o, "subgroup_size", d[i].subgroup_size);
            cJSON_AddBoolToObject(o, "unified_memory", d[i].unified_memory);
            cJSON_AddNumberToObject(o, "max_storage_buffer_B", (double)d[i].max_storage_buffer_B);
            cJSON *h = cJSON_AddArrayToObject(o, "heaps");
            for (uint32_t k = 0; k < d[i].n_heaps; k++) {
                cJSON *ho = cJSON_CreateObject();
                cJSON_AddNumberToObject(ho, "bytes", (double)d[i].heap_bytes[k]);
                cJSON_AddBoolToObject(ho, "device_local", d[i].heap_device_local[k]);
                cJSON_AddItemToArray(h, ho);
            }
            cJSON *f = cJSON_AddObjectToObject(o, "features");
            cJSON_AddBoolToObject(f, "shader_float16", d[i].shader_float16);
            cJSON_AddBoolToObject(f, "shader_int8", d[i].shader_int8);
            cJSON_AddBoolToObject(f, "storage_buffer_16bit", d[i].storage_16bit);
            cJSON_AddBoolToObject(f, "storage_buffer_8bit", d[i].storage_8bit);
            cJSON_AddItemToArray(arr, o);
        }
        if (why) cJSON_AddStringToObject(j, "vulkan_unavailable", why);
        else cJSON_AddNullToObject(j, "vulkan_unavailable");
        if (cli_json_print(j) != 0) rc = cli_fail(CMD, "out of memory");
        cJSON_Delete(j);
    } else {
        printf("%-5s %-10s %s (%d CPUs)\n", "cpu", "cpu", cli_term(cpu), n_cpus);
        for (size_t id = 3; id < qeil_engine_n_backends(); id++) {
            char list[256];
            const int nc = qeil_engine_device_cpus(id, list, sizeof list);
            if (nc < 1) continue;
            printf("%-5s %-10s CPUs %s, threads bound (core cluster, found by %s)\n",
                   qeil_engine_device_name(id), "cpu", list, cl_source);
        }
        for (size_t i = 0; i < n; i++) {
            printf("vk%-3zu %-10s %s (Vulkan %u.%u.%u%s)\n", i, qeil_vk_device_type_name(d[i].type),
                   cli_term(d[i].name), d[i].api_major, d[i].api_minor, d[i].api_patch,
                   i == 0 ? "" : "; listed only: units run on vk0");
            for (uint32_t k = 0; k < d[i].n_heaps; k++)
                printf("      heap %u: %.2f GiB%s\n", k, (double)d[i].heap_bytes[k] / (1u << 30),
                       d[i].heap_device_local[k] ? " device-local" : "");
            printf("      subgroup %u, max buffer %.0f MiB, unified memory %s\n", d[i].subgroup_size,
                   (double)d[i].max_storage_buffer_B / (1u << 20), yes(d[i].unified_memory));
            printf("      float16 %s, int8 %s, 16-bit storage %s, 8-bit storage %s "
                   "(the shaders need none of them)\n",
                   yes(d[i].shader_float16), yes(d[i].shader_int8), yes(d[i].storage_16bit),
                   yes(d[i].storage_8bit));
        }
        if (why) printf("no Vulkan device: %s\n", cli_term(why));
    }
    qeil_free(ctx, d);
    qeil_ctx_free(ctx);
    return rc;
}
