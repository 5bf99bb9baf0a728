/*
 * probe_vulkan.c — `qeil probe` on the Vulkan devices (qeil_probe_gpus;
 * method: docs/probe.md, "Vulkan devices").
 *
 * Per device: f32, f16 (shaderFloat16) and int8 (shaderInt8) peaks from
 * register-resident multiply-add chains (shaders/probe_{f32,f16,int8}.comp),
 * and bandwidth from a copy between two device-local buffers
 * (shaders/probe_copy.comp); on a device whose memory is not the host's, also
 * the copy from host-visible memory over its bus. The shaders are those of
 * the Vulkan backend's folder, compiled by glslc at build time and embedded;
 * Vulkan itself is loaded at run time (vk_loader.h), so a machine without it
 * gets the CPU probe and the reason.
 *
 * Timing: the host's monotonic clock around one vkQueueSubmit and its fence
 * wait. A measurement is n dispatches in one submit: each dispatch is sized
 * to take >= min(min_time_s, DISPATCH_S) (so no single one nears a driver's
 * watchdog), n so the submit takes >= min_time_s; the submit overhead (tens
 * of µs) is then < 1 % of it. Best of REPS (see measure).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/vulkan/vk_loader.h"
#include "backends/vulkan/vk_util.h"
#include "core/util.h"
#include "device/probe_gpu.h"
#include "qeil/device.h"
#include "qeil/vulkan.h"

static const uint32_t spv_f32[] =
#include "probe_f32.spv.inc"
    ;
static const uint32_t spv_f16[] =
#include "probe_f16.spv.inc"
    ;
static const uint32_t spv_int8[] =
#include "probe_int8.spv.inc"
    ;
static const uint32_t spv_copy[] =
#include "probe_copy.spv.inc"
    ;

enum { K_F32, K_F16, K_INT8, K_COPY, K_COUNT };

#define REPS 3
#define GROUPS 4096u         /* workgroups of 64 per compute dispatch: 262,144 threads fill
                                the largest GPUs (128 SMs x 2,048 threads) */
#define COPY_GROUPS 4096u    /* copy: one contiguous block each */
#define DISPATCH_S 0.05      /* one dispatch at most ~this long (watchdogs are ~2 s) */
#define MAX_DISPATCH 4096    /* dispatches per submit */
#define MAX_ITERS (1u << 24) /* loop iterations per thread */
#define OPS_PER_ITER 256.0   /* 8 chains x 4 lanes x 2 (multiply-add) x 4 unrolled */
#define FENCE_NS 60000000000ull /* 60 s: a device that takes longer is hung */
#define MIN_TIME_MAX_S 60.0
#define WS_MIN ((size_t)64 * 1024)
#define PC_BYTES 16

typedef struct {
    qeil_ctx *ctx;
    const vk_api *a;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout pl;
    VkPipeline pipe[K_COUNT];
    vk_commands cmd;       /* descriptor pool, command pool, cb, fence (vk_util.h) */
    VkBuffer buf[3];       /* 0: compute output / copy source, 1: copy destination,
                              2: host-visible copy source (link) */
    VkDeviceMemory mem[3];
    double min_time_s;
    char err[160];
} vk_probe;

/* ---- setup -------------------------------------------------------------- */

/* Buffer k of `bytes` in a memory type with `want` and none of `avoid`.
 * 0 on success, else a reason in s->err. */
static int make_buffer(vk_probe *s, int k, VkDeviceSize bytes, VkMemoryPropertyFlags want,
                       VkMemoryPropertyFlags avoid)
{
    const vk_api *a = s->a;
    VkMemoryRequirements req;
    VkResult r = vk_buffer_create(a, s->dev, bytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, &s->buf[k],
                                  &req);
    if (r != VK_SUCCESS) {
        snprintf(s->err, sizeof s->err, "vkCreateBuffer of %llu bytes: %s",
                 (unsigned long long)bytes, vk_result_str(r));
        return -1;
    }
    VkPhysicalDeviceMemoryProperties mp;
    a->GetPhysicalDeviceMemoryProperties(s->pd, &mp);
    const uint32_t t = vk_find_mem_type(&mp, req.memoryTypeBits, want, avoid, UINT32_MAX);
    if (t == UINT32_MAX) {
        snprintf(s->err, sizeof s->err, "no memory type with flags 0x%x (without 0x%x)",
                 (unsigned)want, (unsigned)avoid);
        return -1;
    }
    r = vk_buffer_back(a, s->dev, s->buf[k], req.size, t, &s->mem[k]);
    if (s->mem[k] == VK_NULL_HANDLE) {
        snprintf(s->err, sizeof s->err, "allocating %llu bytes: %s",
                 (unsigned long long)req.size, vk_result_str(r));
        return -1;
    }
    if (r != VK_SUCCESS) {
        snprintf(s->err, sizeof s->err, "vkBindBufferMemory: %s", vk_result_str(r));
        return -1;
    }
    return 0;
}

static void free_buffer(vk_probe *s, int k)
{
    if (s->buf[k]) s->a->DestroyBuffer(s->dev, s->buf[k], NULL);
    if (s->mem[k]) s->a->FreeMemory(s->dev, s->mem[k], NULL);
    s->buf[k] = VK_NULL_HANDLE;
    s->mem[k] = VK_NULL_HANDLE;
}

static void teardown(vk_probe *s)
{
    const vk_api *a = s->a;
    if (!s->dev) return;
    a->DeviceWaitIdle(s->dev);
    for (int k = 0; k < 3; k++) free_buffer(s, k);
    vk_free_commands(a, s->dev, &s->cmd);
    for (int i = 0; i < K_COUNT; i++)
        if (s->pipe[i]) a->DestroyPipeline(s->dev, s->pipe[i], NULL);
    if (s->pl) a->DestroyPipelineLayout(s->dev, s->pl, NULL);
    if (s->dsl) a->DestroyDescriptorSetLayout(s->dev, s->dsl, NULL);
    a->DestroyDevice(s->dev, NULL);
    s->dev = VK_NULL_HANDLE;
}

/* The device with f16/int8 arithmetic enabled where offered (Vulkan 1.2
 * core features: the instance asks for 1.3), one compute queue, the
 * pipelines of the kernels it can run (pipe[k] NULL otherwise). */
static int setup(vk_probe *s, uint32_t api, int f16, int int8)
{
    const vk_api *a = s->a;
    const uint32_t fam = vk_compute_family(a, s->pd, NULL);
    if (fam == UINT32_MAX) {
        snprintf(s->err, sizeof s->err, "no compute queue");
        return -1;
    }
    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = fam,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkPhysicalDeviceShaderFloat16Int8Features fi8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .shaderFloat16 = f16 ? VK_TRUE : VK_FALSE,
        .shaderInt8 = int8 ? VK_TRUE : VK_FALSE};
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = api >= VK_API_VERSION_1_2 && (f16 || int8) ? &fi8 : NULL,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi};
    VkResult r = a->CreateDevice(s->pd, &di, NULL, &s->dev);
    if (r != VK_SUCCESS) {
        s->dev = VK_NULL_HANDLE;
        snprintf(s->err, sizeof s->err, "vkCreateDevice: %s", vk_result_str(r));
        return -1;
    }
    a->GetDeviceQueue(s->dev, fam, 0, &s->queue);

    if ((r = vk_make_layout(a, s->dev, 2, PC_BYTES, &s->dsl, &s->pl)) != VK_SUCCESS) goto fail;
    r = vk_make_commands(a, s->dev, fam, 4, 2, &s->cmd);
    if (r != VK_SUCCESS) goto fail;
    static const struct {
        const uint32_t *code;
        size_t bytes;
    } k_spv[K_COUNT] = {{spv_f32, sizeof spv_f32},
                        {spv_f16, sizeof spv_f16},
                        {spv_int8, sizeof spv_int8},
                        {spv_copy, sizeof spv_copy}};
    for (int k = 0; k < K_COUNT; k++) {
        if ((k == K_F16 && !f16) || (k == K_INT8 && !int8)) continue;
        if ((r = vk_make_pipeline(a, s->dev, s->pl, k_spv[k].code, k_spv[k].bytes, &s->pipe[k])) !=
            VK_SUCCESS)
            goto fail;
    }
    return 0;
fail:
    snprintf(s->err, sizeof s->err, "setting up the probe's pipelines: %s", vk_result_str(r));
    return -1;
}

/* ---- one timed submit --------------------------------------------------- */

/* Run kernel k n_disp times (groups workgroups each) on buffers b0, b1 in
 * one submit; seconds from submit to fence, or -1 (reason in s->err). */
static double run(vk_probe *s, int k, VkBuffer b0, VkBuffer b1, const void *pc, uint32_t groups,
                  int n_disp)
{
    const vk_api *a = s->a;
    VkResult r = a->ResetDescriptorPool(s->dev, s->cmd.dpool, 0);
    VkDescriptorSet set;
    VkDescriptorSetAllocateInfo dai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                       .descriptorPool = s->cmd.dpool,
                                       .descriptorSetCount = 1,
                                       .pSetLayouts = &s->dsl};
    if (r == VK_SUCCESS) r = a->AllocateDescriptorSets(s->dev, &dai, &set);
    if (r != VK_SUCCESS) {
        snprintf(s->err, sizeof s->err, "descriptor set: %s", vk_result_str(r));
        return -1;
    }
    VkDescriptorBufferInfo info[2] = {{b0, 0, VK_WHOLE_SIZE}, {b1 ? b1 : b0, 0, VK_WHOLE_SIZE}};
    VkWriteDescriptorSet wr[2];
    for (uint32_t i = 0; i < 2; i++)
        wr[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                       .dstSet = set,
                                       .dstBinding = i,
                                       .descriptorCount = 1,
                                       .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                       .pBufferInfo = &info[i]};
    a->UpdateDescriptorSets(s->dev, 2, wr, 0, NULL);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    a->ResetCommandBuffer(s->cmd.cb, 0);
    if ((r = a->BeginCommandBuffer(s->cmd.cb, &bi)) != VK_SUCCESS) goto fail;
    a->CmdBindPipeline(s->cmd.cb, VK_PIPELINE_BIND_POINT_COMPUTE, s->pipe[k]);
    a->CmdBindDescriptorSets(s->cmd.cb, VK_PIPELINE_BIND_POINT_COMPUTE, s->pl, 0, 1, &set, 0, NULL);
    a->CmdPushConstants(s->cmd.cb, s->pl, VK_SHADER_STAGE_COMPUTE_BIT, 0, PC_BYTES, pc);
    /* no barriers between the dispatches: each rewrites the same values, and
     * a device may overlap them as it would independent work */
    for (int i = 0; i < n_disp; i++) a->CmdDispatch(s->cmd.cb, groups, 1, 1);
    if ((r = a->EndCommandBuffer(s->cmd.cb)) != VK_SUCCESS) goto fail;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &s->cmd.cb};
    const double t0 = qeil_clock_s();
    r = a->QueueSubmit(s->queue, 1, &si, s->cmd.fence);
    if (r == VK_SUCCESS) r = a->WaitForFences(s->dev, 1, &s->cmd.fence, VK_TRUE, FENCE_NS);
    const double t1 = qeil_clock_s();
    if (r != VK_SUCCESS) goto fail;
    a->ResetFences(s->dev, 1, &s->cmd.fence);
    return t1 - t0;
fail:
    snprintf(s->err, sizeof s->err, "running kernel %d: %s", k, vk_result_str(r));
    return -1;
}

/* Compute kernels: GROUPS workgroups (every device filled; a small grid
 * would time the driver's latency, not the device), loop iterations growing
 * until one dispatch takes >= min(min_time, DISPATCH_S); the copy's
 * dispatch is fixed (one pass). Then n dispatches so a submit takes >=
 * min_time; best of REPS, or of 1 when one dispatch alone takes over twice
 * min_time (a slow device: lavapipe's 256 MiB copy). Returns work per second
 * (work = per_item x groups x iterations x dispatches; per_item is per
 * workgroup and iteration), or -1. */
static double measure(vk_probe *s, int k, VkBuffer b0, VkBuffer b1, uint32_t pc[4],
                      uint32_t groups, double per_item, int compute)
{
    const double one = s->min_time_s < DISPATCH_S ? s->min_time_s : DISPATCH_S;
    uint32_t iters = 1;
    double t;
    if (compute) {
        /* untimed: a driver may compile the pipeline at its first use */
        pc[0] = 1;
        if (run(s, k, b0, b1, pc, 64, 1) < 0) return -1;
    }
    for (;;) {
        if (compute) pc[0] = iters;
        if ((t = run(s, k, b0, b1, pc, groups, 1)) < 0) return -1;
        if (compute && t >= one) { /* once more: a preempted run is no size */
            const double t2 = run(s, k, b0, b1, pc, groups, 1);
            if (t2 < 0) return -1;
            if (t2 < t) t = t2;
        }
        if (!compute || t >= one || iters >= MAX_ITERS) break;
        double grow = t > 0 ? 1.25 * one / t : 64;
        grow = grow < 2 ? 2 : grow > 64 ? 64 : grow;
        const double it = iters * grow;
        iters = it >= MAX_ITERS ? MAX_ITERS : (uint32_t)it;
    }
    int n_disp = 1;
    if (t < s->min_time_s) {
        double n = ceil(s->min_time_s / (t > 1e-6 ? t : 1e-6));
        n_disp = n > MAX_DISPATCH ? MAX_DISPATCH : (int)n;
    }
    const int reps = t > 2 * s->min_time_s ? 1 : REPS;
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        if ((t = run(s, k, b0, b1, pc, groups, n_disp)) < 0) return -1;
        const double rate = t > 0 ? per_item * groups * iters * n_disp / t : 0;
        if (rate > best) best = rate;
    }
    return best;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ---- one device --------------------------------------------------------- */

static void describe(qeil_probe_gpu *g, const qeil_vk_device *d, int index)
{
    snprintf(g->device, sizeof g->device, "vk%d", index);
    snprintf(g->name, sizeof g->name, "%.127s", d->name);
    for (char *c = g->name; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?';
    snprintf(g->type, sizeof g->type, "%s", qeil_vk_device_type_name(d->type));
    g->vendor_id = d->vendor_id;
    g->device_id = d->device_id;
    snprintf(g->api, sizeof g->api, "%u.%u.%u", d->api_major, d->api_minor, d->api_patch);
    g->unified_memory = d->unified_memory;
    for (uint32_t h = 0; h < d->n_heaps; h++)
        if (d->heap_device_local[h] && (double)d->heap_bytes[h] > g->heap_B)
            g->heap_B = (double)d->heap_bytes[h];
}

typedef void (*step_fn)(void *user, const char *what);

static void measure_device(vk_probe *s, const qeil_vk_device *d, qeil_probe_gpu *g, size_t max_ws_B,
                           uint32_t inst_api, step_fn step, void *user)
{
    const uint32_t api = VK_MAKE_API_VERSION(0, d->api_major, d->api_minor, 0) < inst_api
                             ? VK_MAKE_API_VERSION(0, d->api_major, d->api_minor, 0)
                             : inst_api;
    /* the feature bits qeil_vk_devices read need a 1.2 device, as enabling them does */
    const int f16 = d->shader_float16 && api >= VK_API_VERSION_1_2;
    const int int8 = d->shader_int8 && api >= VK_API_VERSION_1_2;
    snprintf(g->timing, sizeof g->timing, "host clock, submit to fence");
    if (setup(s, api, f16, int8) != 0) goto fail;
    const VkMemoryPropertyFlags local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    if (make_buffer(s, 0, (VkDeviceSize)GROUPS * 64 * 4, local, 0) != 0) goto fail;

    char what[64];
    uint32_t pc[4] = {0, f32_bits(0.999f), f32_bits(1e-3f), 0};
    snprintf(what, sizeof what, "%s: f32 fma", g->device);
    step(user, what);
    if ((g->f32_flops = measure(s, K_F32, s->buf[0], VK_NULL_HANDLE, pc, GROUPS,
                                OPS_PER_ITER * 64, 1)) < 0)
        goto fail;
    g->n_groups = (int)GROUPS;
    snprintf(g->form_f32, sizeof g->form_f32, "probe_f32: 8 vec4 fma chains");
    if (f16) {
        snprintf(what, sizeof what, "%s: f16 fma", g->device);
        step(user, what);
        if ((g->f16_flops = measure(s, K_F16, s->buf[0], VK_NULL_HANDLE, pc, GROUPS,
                                    OPS_PER_ITER * 64, 1)) < 0)
            goto fail;
        snprintf(g->form_f16, sizeof g->form_f16, "probe_f16: 8 f16vec4 fma chains");
    }
    if (int8) {
        snprintf(what, sizeof what, "%s: int8 multiply-add", g->device);
        step(user, what);
        uint32_t pci[4] = {0, 3, 1, 0};
        if ((g->int8_ops = measure(s, K_INT8, s->buf[0], VK_NULL_HANDLE, pci, GROUPS,
                                   OPS_PER_ITER * 64, 1)) < 0)
            goto fail;
        snprintf(g->form_int8, sizeof g->form_int8, "probe_int8: 8 i8vec4 mul-add chains");
    }
    free_buffer(s, 0);

    /* the copy's two buffers: max_ws_B between them, each within the
     * device's largest storage buffer and a quarter of its heap, whole
     * 16-byte elements */
    VkPhysicalDeviceProperties props;
    s->a->GetPhysicalDeviceProperties(s->pd, &props);
    double each = (double)max_ws_B / 2;
    if (each > (double)props.limits.maxStorageBufferRange) each = props.limits.maxStorageBufferRange;
    if (g->heap_B > 0 && each > g->heap_B / 4) each = g->heap_B / 4;
    const size_t bytes = (size_t)each & ~(size_t)15;
    if (bytes < 4096) {
        snprintf(s->err, sizeof s->err, "no room for the copy's buffers (%zu bytes each)", bytes);
        goto fail;
    }
    g->bw_ws_B = bytes;
    snprintf(what, sizeof what, "%s: copy bandwidth, 2 x %.0f MiB", g->device,
             (double)bytes / (1024.0 * 1024));
    step(user, what);
    if (make_buffer(s, 0, bytes, local, 0) != 0 || make_buffer(s, 1, bytes, local, 0) != 0)
        goto fail;
    const uint32_t n_el = (uint32_t)(bytes / 16);
    /* every workgroup a block of >= 256 elements (4 KiB): a small buffer
     * spread over 4096 groups times their launch, not the memory */
    const uint32_t copy_groups = n_el / 256 < COPY_GROUPS ? (n_el / 256 ? n_el / 256 : 1) : COPY_GROUPS;
    uint32_t pcc[4] = {n_el, (n_el + copy_groups - 1) / copy_groups, 0, 0};
    /* the first run (measure's sizing pass) touches the pages */
    if ((g->bw_Bps = measure(s, K_COPY, s->buf[0], s->buf[1], pcc, copy_groups,
                             2.0 * (double)bytes / copy_groups, 0)) < 0)
        goto fail;
    snprintf(g->form_bw, sizeof g->form_bw, "probe_copy: uvec4 copy, a block per group");

    /* a device with memory of its own: the copy from host memory it reads
     * over its bus (a host-visible type that is not device-local) */
    if (probe_gpu_own_memory(g)) {
        free_buffer(s, 0);
        if (make_buffer(s, 2, bytes, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, local) == 0) {
            snprintf(what, sizeof what, "%s: host-to-device copy", g->device);
            step(user, what);
            const double l = measure(s, K_COPY, s->buf[2], s->buf[1], pcc, copy_groups,
                                     (double)bytes / copy_groups, 0);
            if (l > 0) g->link_bw_Bps = l;
        }
        s->err[0] = '\0'; /* no such memory type: the link stays a default */
    }
    /* figures a profile cannot hold (docs/profiles.md ranges) make the
     * device no unit, with the reason, rather than the profile invalid */
    if (!(g->bw_Bps >= 1e6 && g->bw_Bps <= 1e14) || !(g->f32_flops <= 1e17) ||
        !(g->f16_flops <= 1e17) || !(g->int8_ops <= 1e17) ||
        !(g->link_bw_Bps == 0 || (g->link_bw_Bps >= 1e6 && g->link_bw_Bps <= 1e14))) {
        snprintf(s->err, sizeof s->err,
                 "implausible: f32 %.3g FLOP/s, copy %.3g B/s, link %.3g B/s (a profile allows "
                 "1e6..1e14 B/s, peaks <= 1e17)",
                 g->f32_flops, g->bw_Bps, g->link_bw_Bps);
        goto fail;
    }
    teardown(s);
    return;
fail:
    snprintf(g->error, sizeof g->error, "%s", s->err);
    g->f32_flops = g->f16_flops = g->int8_ops = g->bw_Bps = g->link_bw_Bps = 0;
    teardown(s);
}

/* ---- entry -------------------------------------------------------------- */

/* Progress: STEPS_PER_DEVICE announced per device at most (f32, f16,
 * int8, copy, link), the fraction over all devices, below 1. */
#define STEPS_PER_DEVICE 5
typedef struct {
    const qeil_probe_params *p;
    int done, total;
} step_state;

static void step_cb(void *user, const char *what)
{
    step_state *st = user;
    if (st->p->progress)
        st->p->progress(st->p->progress_user, what,
                        st->total > 0 ? (double)st->done / st->total : 0.0);
    if (st->done < st->total - 1) st->done++;
}

qeil_status qeil_probe_gpus(qeil_ctx *ctx, const qeil_probe_params *params, qeil_probe_result *out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_probe_gpus: result is NULL");
    qeil_probe_params p = params ? *params : qeil_probe_default_params();
    if (!(p.min_time_s > 0 && p.min_time_s <= MIN_TIME_MAX_S))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "min_time_s: %g is out of range (allowed (0, %g] seconds)",
                             p.min_time_s, MIN_TIME_MAX_S);
    if (p.max_ws_B < WS_MIN)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "max_ws_B: %zu is out of range (allowed >= %zu bytes)", p.max_ws_B,
                             WS_MIN);
    out->n_gpus = 0;
    out->gpu_status[0] = '\0';
    memset(out->gpus, 0, sizeof out->gpus);

    qeil_vk_device d[QEIL_PROBE_MAX_GPUS];
    size_t n = 0;
    /* a failure here is the answer, not an error: the message goes to the
     * result, and the context's last error is left as the caller had it */
    qeil_ctx *quiet = qeil_ctx_create(NULL);
    if (!quiet) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "probe: out of memory");
    vk_api a;
    if (qeil_vk_devices(quiet, d, QEIL_PROBE_MAX_GPUS, &n) != QEIL_OK ||
        vk_open_version(quiet, &a, VK_API_VERSION_1_3) != QEIL_OK) {
        snprintf(out->gpu_status, sizeof out->gpu_status, "%.223s", qeil_ctx_errmsg(quiet));
        qeil_ctx_free(quiet);
        return QEIL_OK;
    }
    qeil_ctx_free(quiet);
    PFN_vkEnumerateInstanceVersion ver_fn = (PFN_vkEnumerateInstanceVersion)a.GetInstanceProcAddr(
        NULL, "vkEnumerateInstanceVersion");
    uint32_t inst_api = VK_API_VERSION_1_1;
    if (ver_fn) ver_fn(&inst_api);
    if (inst_api > VK_API_VERSION_1_3) inst_api = VK_API_VERSION_1_3;
    VkPhysicalDevice pd[QEIL_VK_MAX_DEVICES];
    uint32_t count = QEIL_VK_MAX_DEVICES;
    VkResult r = a.EnumeratePhysicalDevices(a.instance, &count, pd);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || count < n) {
        snprintf(out->gpu_status, sizeof out->gpu_status,
                 "vulkan: the second enumeration found %u devices, the first %zu", count, n);
        vk_close(&a);
        return QEIL_OK;
    }
    step_state ss = {&p, 0, (int)n * STEPS_PER_DEVICE};
    for (size_t i = 0; i < n; i++) {
        ss.done = (int)i * STEPS_PER_DEVICE;
        qeil_probe_gpu *g = &out->gpus[i];
        describe(g, &d[i], (int)i);
        vk_probe s;
        memset(&s, 0, sizeof s);
        s.ctx = ctx;
        s.a = &a;
        s.pd = pd[i];
        s.min_time_s = p.min_time_s;
        measure_device(&s, &d[i], g, p.max_ws_B, inst_api, step_cb, &ss);
    }
    out->n_gpus = (int)n;
    vk_close(&a);
    return QEIL_OK;
}
