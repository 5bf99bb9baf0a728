/*
 * backend_vulkan.c — the "vulkan" backend: the forward pass's ops as GLSL
 * compute shaders (shaders/, compiled to SPIR-V by glslc at build time and
 * embedded here) on Vulkan physical device 0 ("vk0"), loaded at run time
 * (vk_loader.h). docs/vulkan.md describes the design; in short:
 *
 * - Buffers: every allocation is its own VkBuffer in host-visible, coherent
 *   memory (device-local too where the device has such a type: integrated
 *   GPUs, lavapipe, resizable-BAR discrete GPUs), persistently mapped. The
 *   "backend pointer" the engine passes around is the mapped address, so its
 *   arithmetic (s->q + q_dim, kv->k + offset) is ordinary C; each op finds
 *   the VkBuffer holding an address (buf_find) and passes the element
 *   offset to the shader in push constants. Whole buffers are bound, so no
 *   offset alignment rule applies.
 * - Recording: ops append dispatches to one command buffer, with a global
 *   compute-to-compute barrier between consecutive dispatches; sync,
 *   to_host, to_backend and copy submit it and wait (a fence). Per-call
 *   host metadata (token ids, row positions) goes to a mapped "meta"
 *   buffer; descriptor sets come from a pool reset after each submit.
 * - Matmul and get_rows take f32, f16, bf16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
 *   IQ4_NL, Q4_K and Q6_K; a type outside props.weight_types (Q5_K,
 *   IQ4_XS) makes the engine refuse the placement (the unit stays where it
 *   was).
 * - Ops that return void record failures (an address that is not this
 *   backend's, head_dim > 256) in s->err; the next matmul returns it.
 */
#include <stdint.h>
#include <string.h>

#include "backends/vulkan/vk_loader.h"
#include "engine/backend.h"
#include "kernels/quant.h"

static const uint32_t spv_matmul[] =
#include "matmul.spv.inc"
    ;
static const uint32_t spv_get_rows[] =
#include "get_rows.spv.inc"
    ;
static const uint32_t spv_eltwise[] =
#include "eltwise.spv.inc"
    ;
static const uint32_t spv_norm[] =
#include "norm.spv.inc"
    ;
static const uint32_t spv_rope[] =
#include "rope.spv.inc"
    ;
static const uint32_t spv_kv_store[] =
#include "kv_store.spv.inc"
    ;
static const uint32_t spv_attention[] =
#include "attention.spv.inc"
    ;
static const uint32_t spv_shortconv[] =
#include "shortconv.spv.inc"
    ;

enum {
    SH_MATMUL, SH_GET_ROWS, SH_ELTWISE, SH_NORM, SH_ROPE, SH_KV_STORE, SH_ATTENTION, SH_SHORTCONV,
    SH_COUNT
};

static const struct {
    const uint32_t *code;
    size_t bytes;
} k_shaders[SH_COUNT] = {
    {spv_matmul, sizeof spv_matmul},     {spv_get_rows, sizeof spv_get_rows},
    {spv_eltwise, sizeof spv_eltwise},   {spv_norm, sizeof spv_norm},
    {spv_rope, sizeof spv_rope},         {spv_kv_store, sizeof spv_kv_store},
    {spv_attention, sizeof spv_attention}, {spv_shortconv, sizeof spv_shortconv},
};

#define N_BINDINGS 6        /* storage buffers per dispatch (most an op uses) */
#define PC_BYTES 128        /* push constants: the minimum every device has */
#define MAX_SETS 1024       /* dispatches per submit (a block of a layer is ~20) */
#define META_BYTES (1u << 20)
#define WG 64u              /* local_size_x of every shader */
#define MAX_GROUPS 65535u   /* maxComputeWorkGroupCount minimum per dimension */
#define MATMUL_ROWS 8u    /* rows per matmul workgroup (shaders/matmul.comp ROWS) */
#define MATMUL_NV 4u      /* vectors per matmul workgroup (NV) */
#define ELTWISE_ADD 0u
#define ELTWISE_ADD_BIAS 1u
#define ELTWISE_SILU_MUL 2u
#define ELTWISE_GELU 3u
#define ELTWISE_SCALE 4u

typedef struct {
    uint8_t *host; /* mapped address: the backend pointer the engine sees */
    size_t bytes;
    VkBuffer buf;
    VkDeviceMemory mem;
} vk_buf;

typedef struct {
    qeil_ctx *ctx;
    vk_api api;
    VkPhysicalDevice pd;
    VkPhysicalDeviceProperties props;
    VkDevice dev;
    VkQueue queue;
    uint32_t mem_type[2]; /* preferred (device-local + host-visible), fallback; UINT32_MAX: none */
    vk_buf *bufs;         /* live allocations, any order */
    size_t n_bufs, cap_bufs;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout pl;
    VkPipeline pipe[SH_COUNT];
    VkDescriptorPool dpool;
    VkCommandPool cpool;
    VkCommandBuffer cb;
    VkFence fence;
    vk_buf meta;
    size_t meta_used;
    uint32_t n_sets, n_dispatch;
    int recording;
    int hung;        /* a wait timed out: work may still run, nothing is freed until destroy */
    qeil_status err;
    uint32_t max_rows, max_ctx;
} vk_state;

/* ---- buffers ------------------------------------------------------------ */

static void buf_free(vk_state *s, vk_buf *b)
{
    const vk_api *a = &s->api;
    if (b->host) a->UnmapMemory(s->dev, b->mem);
    if (b->buf) a->DestroyBuffer(s->dev, b->buf, NULL);
    if (b->mem) a->FreeMemory(s->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

static qeil_status buf_make(vk_state *s, size_t bytes, vk_buf *out)
{
    const vk_api *a = &s->api;
    memset(out, 0, sizeof *out);
    const size_t size = bytes < 16 ? 16 : (bytes + 15) & ~(size_t)15;
    if (size > s->props.limits.maxStorageBufferRange)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: a buffer of %zu bytes exceeds the device's maxStorageBufferRange "
                             "(%u bytes; splitting large tensors is not implemented)",
                             bytes, s->props.limits.maxStorageBufferRange);
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = a->CreateBuffer(s->dev, &bi, NULL, &out->buf);
    if (r != VK_SUCCESS) {
        out->buf = VK_NULL_HANDLE;
        return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM, "vulkan: vkCreateBuffer of %zu bytes: %s",
                             size, vk_result_str(r));
    }
    VkMemoryRequirements req;
    a->GetBufferMemoryRequirements(s->dev, out->buf, &req);
    r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
    for (int k = 0; k < 2 && r != VK_SUCCESS; k++) {
        const uint32_t t = s->mem_type[k];
        if (t == UINT32_MAX || !((req.memoryTypeBits >> t) & 1)) continue;
        VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                   .allocationSize = req.size,
                                   .memoryTypeIndex = t};
        r = a->AllocateMemory(s->dev, &ai, NULL, &out->mem);
        if (r != VK_SUCCESS) out->mem = VK_NULL_HANDLE;
    }
    if (r != VK_SUCCESS) {
        buf_free(s, out);
        return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM,
                             "vulkan: out of device memory for %zu bytes (%s)", size,
                             vk_result_str(r));
    }
    void *p = NULL;
    if ((r = a->BindBufferMemory(s->dev, out->buf, out->mem, 0)) != VK_SUCCESS ||
        (r = a->MapMemory(s->dev, out->mem, 0, VK_WHOLE_SIZE, 0, &p)) != VK_SUCCESS) {
        buf_free(s, out);
        return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM, "vulkan: binding or mapping %zu bytes: %s",
                             size, vk_result_str(r));
    }
    out->host = p;
    out->bytes = size;
    memset(p, 0, size);
    return QEIL_OK;
}

/* The buffer holding backend address p, and p's byte offset in it. */
static const vk_buf *buf_find(vk_state *s, const void *p, uint32_t *off)
{
    const uint8_t *q = p;
    for (size_t i = 0; i < s->n_bufs; i++) {
        const vk_buf *b = &s->bufs[i];
        /* compared as integers: p may belong to no buffer at all */
        if ((uintptr_t)q >= (uintptr_t)b->host && (uintptr_t)q < (uintptr_t)b->host + b->bytes) {
            *off = (uint32_t)((uintptr_t)q - (uintptr_t)b->host);
            return b;
        }
    }
    if (s->err == QEIL_OK)
        s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_INVALID,
                               "vulkan: address %p is not a buffer of this backend", p);
    return NULL;
}

/* A new zero-filled buffer of `bytes`; *out: its backend address. */
static qeil_status buf_register(vk_state *s, size_t bytes, void **out)
{
    *out = NULL;
    if (s->n_bufs == s->cap_bufs) {
        size_t cap = s->cap_bufs ? 2 * s->cap_bufs : 64;
        vk_buf *nb = qeil_realloc(s->ctx, s->bufs, cap * sizeof *nb);
        if (!nb) return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM, "vulkan: out of memory");
        s->bufs = nb;
        s->cap_bufs = cap;
    }
    vk_buf b;
    qeil_status st = buf_make(s, bytes, &b);
    if (st != QEIL_OK) return st;
    s->bufs[s->n_bufs++] = b;
    *out = b.host;
    return QEIL_OK;
}

static void buf_unregister(vk_state *s, void *p)
{
    for (size_t i = 0; i < s->n_bufs; i++)
        if (s->bufs[i].host == p) {
            buf_free(s, &s->bufs[i]);
            s->bufs[i] = s->bufs[--s->n_bufs];
            return;
        }
}

/* ---- command recording -------------------------------------------------- */

/* Submit what was recorded and wait for it, at most timeout_ns (the
 * engine's watchdog on sync; UINT64_MAX for the copies). A failure is
 * sticky in s->err: device lost (QEIL_ERR_DEVICE), out of memory
 * (QEIL_ERR_NOMEM), the wait timed out (QEIL_ERR_DEVICE: a hung device). */
static void flush_wait(vk_state *s, uint64_t timeout_ns)
{
    if (!s->recording) return;
    const vk_api *a = &s->api;
    /* shader writes visible to the host's reads after the fence */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    a->CmdPipelineBarrier(s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                          0, 1, &mb, 0, NULL, 0, NULL);
    VkResult r = a->EndCommandBuffer(s->cb);
    if (r == VK_SUCCESS) {
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                           .commandBufferCount = 1,
                           .pCommandBuffers = &s->cb};
        r = a->QueueSubmit(s->queue, 1, &si, s->fence);
        if (r == VK_SUCCESS) r = a->WaitForFences(s->dev, 1, &s->fence, VK_TRUE, timeout_ns);
        /* a timed-out fence stays unsignalled: the instance is failed from here */
        if (r != VK_TIMEOUT) a->ResetFences(s->dev, 1, &s->fence);
    }
    if (r == VK_TIMEOUT) s->hung = 1;
    if (r == VK_TIMEOUT && s->err == QEIL_OK)
        s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_DEVICE,
                               "vulkan: work did not finish within %.3g s (watchdog): device hung",
                               (double)timeout_ns * 1e-9);
    else if (r != VK_SUCCESS && s->err == QEIL_OK)
        s->err = qeil_ctx_fail(s->ctx,
                               r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY
                                   ? QEIL_ERR_NOMEM
                                   : QEIL_ERR_DEVICE,
                               "vulkan: submitting work failed: %s", vk_result_str(r));
    if (r != VK_TIMEOUT) { /* the buffer may still be pending: leave it */
        a->ResetCommandBuffer(s->cb, 0);
        a->ResetDescriptorPool(s->dev, s->dpool, 0);
    }
    s->recording = 0;
    s->n_sets = s->n_dispatch = 0;
    s->meta_used = 0;
}

static void flush(vk_state *s) { flush_wait(s, UINT64_MAX); }

/* Room for one dispatch with meta_bytes of metadata (submits when full). */
static void reserve(vk_state *s, size_t meta_bytes)
{
    if (s->n_sets + 1 > MAX_SETS || s->meta_used + ((meta_bytes + 15) & ~(size_t)15) > s->meta.bytes)
        flush(s);
}

/* Copy host metadata into the meta buffer; returns its offset in words. */
static uint32_t meta_put(vk_state *s, const void *src, size_t bytes)
{
    const uint32_t off = (uint32_t)s->meta_used;
    memcpy(s->meta.host + off, src, bytes);
    s->meta_used += (bytes + 15) & ~(size_t)15;
    return off / 4;
}

/* Record shader sh over groups gx x gy x gz with buffers b[0..nb) at
 * bindings 0..nb-1 (the rest bound to the meta buffer) and push constants
 * pc. reserve() must have been called. */
static void dispatch(vk_state *s, int sh, const VkBuffer *b, int nb, const void *pc,
                     size_t pc_bytes, uint32_t gx, uint32_t gy, uint32_t gz)
{
    const vk_api *a = &s->api;
    if (s->err != QEIL_OK || gx == 0 || gy == 0 || gz == 0) return;
    if (!s->recording) {
        VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                       .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
        if (a->BeginCommandBuffer(s->cb, &bi) != VK_SUCCESS) {
            s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_IO, "vulkan: vkBeginCommandBuffer failed");
            return;
        }
        s->recording = 1;
    }
    if (s->n_dispatch > 0) {
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
        a->CmdPipelineBarrier(s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                              VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    }
    VkDescriptorSet set;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = s->dpool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &s->dsl};
    VkResult r = a->AllocateDescriptorSets(s->dev, &ai, &set);
    if (r != VK_SUCCESS) {
        s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_IO, "vulkan: vkAllocateDescriptorSets: %s",
                               vk_result_str(r));
        return;
    }
    s->n_sets++;
    VkDescriptorBufferInfo info[N_BINDINGS];
    VkWriteDescriptorSet wr[N_BINDINGS];
    for (int i = 0; i < N_BINDINGS; i++) {
        info[i] = (VkDescriptorBufferInfo){i < nb ? b[i] : s->meta.buf, 0, VK_WHOLE_SIZE};
        wr[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                       .dstSet = set,
                                       .dstBinding = (uint32_t)i,
                                       .descriptorCount = 1,
                                       .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                       .pBufferInfo = &info[i]};
    }
    a->UpdateDescriptorSets(s->dev, N_BINDINGS, wr, 0, NULL);
    a->CmdBindPipeline(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE, s->pipe[sh]);
    a->CmdBindDescriptorSets(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE, s->pl, 0, 1, &set, 0, NULL);
    a->CmdPushConstants(s->cb, s->pl, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)pc_bytes, pc);
    a->CmdDispatch(s->cb, gx, gy, gz);
    s->n_dispatch++;
}

/* n items of WG threads' groups as gx x gy (the shaders index
 * x + y * gx * WG). */
static void grid1(uint64_t n, uint32_t *gx, uint32_t *gy)
{
    const uint64_t groups = (n + WG - 1) / WG;
    *gx = (uint32_t)(groups < MAX_GROUPS ? groups : MAX_GROUPS);
    *gy = *gx ? (uint32_t)((groups + *gx - 1) / *gx) : 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void vk_destroy(void *p)
{
    vk_state *s = p;
    if (!s) return;
    qeil_ctx *ctx = s->ctx;
    const vk_api *a = &s->api;
    if (s->dev) {
        flush(s);
        a->DeviceWaitIdle(s->dev);
        for (size_t i = 0; i < s->n_bufs; i++) buf_free(s, &s->bufs[i]);
        if (s->meta.buf) buf_free(s, &s->meta);
        if (s->fence) a->DestroyFence(s->dev, s->fence, NULL);
        if (s->cpool) a->DestroyCommandPool(s->dev, s->cpool, NULL);
        if (s->dpool) a->DestroyDescriptorPool(s->dev, s->dpool, NULL);
        for (int i = 0; i < SH_COUNT; i++)
            if (s->pipe[i]) a->DestroyPipeline(s->dev, s->pipe[i], NULL);
        if (s->pl) a->DestroyPipelineLayout(s->dev, s->pl, NULL);
        if (s->dsl) a->DestroyDescriptorSetLayout(s->dev, s->dsl, NULL);
        a->DestroyDevice(s->dev, NULL);
    }
    qeil_free(ctx, s->bufs);
    vk_close(&s->api);
    qeil_free(ctx, s);
}

/* Memory type with all of `want` (and allowed by no mask), or UINT32_MAX. */
static uint32_t find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
        if ((mp->memoryTypes[i].propertyFlags & want) == want) return i;
    return UINT32_MAX;
}

static qeil_status make_pipelines(vk_state *s)
{
    const vk_api *a = &s->api;
    VkDescriptorSetLayoutBinding lb[N_BINDINGS];
    for (uint32_t i = 0; i < N_BINDINGS; i++)
        lb[i] = (VkDescriptorSetLayoutBinding){i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1,
                                               VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = N_BINDINGS,
                                          .pBindings = lb};
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, PC_BYTES};
    VkPipelineLayoutCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &s->dsl,
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &pr};
    VkResult r;
    if ((r = a->CreateDescriptorSetLayout(s->dev, &li, NULL, &s->dsl)) != VK_SUCCESS ||
        (r = a->CreatePipelineLayout(s->dev, &pi, NULL, &s->pl)) != VK_SUCCESS)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED, "vulkan: pipeline layout: %s",
                             vk_result_str(r));
    for (int i = 0; i < SH_COUNT; i++) {
        VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = k_shaders[i].bytes,
                                       .pCode = k_shaders[i].code};
        VkShaderModule m;
        if ((r = a->CreateShaderModule(s->dev, &mi, NULL, &m)) != VK_SUCCESS)
            return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED, "vulkan: shader %d: %s", i,
                                 vk_result_str(r));
        VkComputePipelineCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                      .module = m,
                      .pName = "main"},
            .layout = s->pl};
        r = a->CreateComputePipelines(s->dev, VK_NULL_HANDLE, 1, &ci, NULL, &s->pipe[i]);
        a->DestroyShaderModule(s->dev, m, NULL);
        if (r != VK_SUCCESS) {
            s->pipe[i] = VK_NULL_HANDLE;
            return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED, "vulkan: pipeline %d: %s", i,
                                 vk_result_str(r));
        }
    }
    return QEIL_OK;
}

static qeil_status vk_create(const qeil_backend_config *cfg, void **out)
{
    qeil_ctx *ctx = cfg->ctx;
    *out = NULL;
    if (cfg->max_rows < 1 || cfg->max_ctx < 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                             "vulkan backend: max_rows %u, max_ctx %u (allowed >= 1)", cfg->max_rows,
                             cfg->max_ctx);
    vk_state *s = qeil_calloc(ctx, 1, sizeof *s);
    if (!s) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "vulkan backend: out of memory");
    s->ctx = ctx;
    s->max_rows = cfg->max_rows;
    s->max_ctx = cfg->max_ctx;
    qeil_status st = vk_open(ctx, &s->api);
    if (st != QEIL_OK) {
        qeil_free(ctx, s);
        return st;
    }
    const vk_api *a = &s->api;
    uint32_t n = 1;
    VkResult r = a->EnumeratePhysicalDevices(a->instance, &n, &s->pd);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0) {
        vk_destroy(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: no Vulkan device (no driver installed? Debian's "
                             "mesa-vulkan-drivers has lavapipe, a CPU implementation)");
    }
    a->GetPhysicalDeviceProperties(s->pd, &s->props);
    uint32_t nq = 0;
    a->GetPhysicalDeviceQueueFamilyProperties(s->pd, &nq, NULL);
    VkQueueFamilyProperties qf[16];
    if (nq > 16) nq = 16;
    a->GetPhysicalDeviceQueueFamilyProperties(s->pd, &nq, qf);
    uint32_t fam = UINT32_MAX;
    for (uint32_t i = 0; i < nq && fam == UINT32_MAX; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) fam = i;
    if (fam == UINT32_MAX) {
        vk_destroy(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "vulkan: device '%s' has no compute queue",
                             s->props.deviceName);
    }
    VkPhysicalDeviceMemoryProperties mp;
    a->GetPhysicalDeviceMemoryProperties(s->pd, &mp);
    const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                       VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    s->mem_type[0] = find_mem_type(&mp, host | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    s->mem_type[1] = find_mem_type(&mp, host);
    if (s->mem_type[1] == UINT32_MAX) {
        vk_destroy(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: device '%s' has no host-visible coherent memory type",
                             s->props.deviceName);
    }
    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = fam,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi};
    if ((r = a->CreateDevice(s->pd, &di, NULL, &s->dev)) != VK_SUCCESS) {
        s->dev = VK_NULL_HANDLE;
        vk_destroy(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "vulkan: vkCreateDevice failed: %s",
                             vk_result_str(r));
    }
    a->GetDeviceQueue(s->dev, fam, 0, &s->queue);
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, MAX_SETS * N_BINDINGS};
    VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = MAX_SETS,
                                      .poolSizeCount = 1,
                                      .pPoolSizes = &ps};
    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = fam};
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((st = make_pipelines(s)) != QEIL_OK) {
        vk_destroy(s);
        return st;
    }
    if ((r = a->CreateDescriptorPool(s->dev, &dpi, NULL, &s->dpool)) != VK_SUCCESS ||
        (r = a->CreateCommandPool(s->dev, &cpi, NULL, &s->cpool)) != VK_SUCCESS ||
        (r = a->CreateFence(s->dev, &fi, NULL, &s->fence)) != VK_SUCCESS) {
        vk_destroy(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "vulkan: command resources: %s",
                             vk_result_str(r));
    }
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = s->cpool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    if ((r = a->AllocateCommandBuffers(s->dev, &cai, &s->cb)) != VK_SUCCESS) {
        vk_destroy(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "vulkan: command buffer: %s",
                             vk_result_str(r));
    }
    if ((st = buf_make(s, META_BYTES, &s->meta)) != QEIL_OK) {
        vk_destroy(s);
        return st;
    }
    *out = s;
    return QEIL_OK;
}

static void *vk_alloc(void *p, size_t bytes)
{
    void *b;
    buf_register(p, bytes, &b);
    return b;
}

static void vk_release(void *p, void *buf)
{
    vk_state *s = p;
    if (!buf || s->hung) return; /* a hung device may still use it: vk_destroy frees it after
                                    waiting for the device */
    flush(s); /* recorded work may still read it */
    buf_unregister(s, buf);
}

static void vk_to_backend(void *p, void *dst, const void *host_src, size_t bytes)
{
    flush(p); /* recorded work may still read the old contents */
    if (bytes) memcpy(dst, host_src, bytes);
}

static void vk_to_host(void *p, void *host_dst, const void *src, size_t bytes)
{
    flush(p);
    if (bytes) memcpy(host_dst, src, bytes);
}

static void vk_copy(void *p, void *dst, const void *src, size_t bytes)
{
    flush(p);
    if (bytes) memmove(dst, src, bytes);
}

#define TYPE_BIT(t) (UINT64_C(1) << (t))
#define VK_WEIGHT_TYPES                                                                       \
    (TYPE_BIT(QEIL_GGML_F32) | TYPE_BIT(QEIL_GGML_F16) | TYPE_BIT(QEIL_GGML_BF16) |          \
     TYPE_BIT(QEIL_GGML_Q8_0) | TYPE_BIT(QEIL_GGML_Q4_0) | TYPE_BIT(QEIL_GGML_Q4_1) |         \
     TYPE_BIT(QEIL_GGML_Q5_0) | TYPE_BIT(QEIL_GGML_Q5_1) | TYPE_BIT(QEIL_GGML_IQ4_NL) |       \
     TYPE_BIT(QEIL_GGML_Q4_K) | TYPE_BIT(QEIL_GGML_Q6_K))

static qeil_status vk_weight_prepare(void *p, int type, int64_t n_cols, int64_t n_rows,
                                     const void *host_data, unsigned use, qeil_bweight *out)
{
    vk_state *s = p;
    (void)use;
    const qeil_quant_traits *t = type >= 0 && type < 64 && ((VK_WEIGHT_TYPES >> type) & 1)
                                     ? qeil_quant_traits_of(type)
                                     : NULL;
    if (!t)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: weight type %d is not supported (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, "
                             "iq4_nl, q4_k, q6_k)",
                             type);
    if (n_cols < 1 || n_rows < 1 || n_cols % t->blck_elems != 0 || n_cols > (1 << 24) ||
        n_rows > (1 << 24))
        return qeil_ctx_fail(s->ctx, QEIL_ERR_RANGE,
                             "vulkan: weight of %lld x %lld %s (columns a multiple of %u, each "
                             "dimension 1..%d)",
                             (long long)n_rows, (long long)n_cols, t->name, t->blck_elems, 1 << 24);
    const size_t row_bytes = (size_t)n_cols / t->blck_elems * t->blck_bytes;
    const size_t bytes = row_bytes * (size_t)n_rows;
    void *d;
    qeil_status st = buf_register(s, bytes, &d);
    if (st != QEIL_OK) return st;
    memcpy(d, host_data, bytes);
    out->type = type;
    out->n_cols = n_cols;
    out->n_rows = n_rows;
    out->row_bytes = row_bytes;
    out->data = d;
    out->owned = d;
    out->layout = 0;
    return QEIL_OK;
}

static void vk_weight_release(void *p, qeil_bweight *w)
{
    if (!w) return;
    vk_release(p, w->owned);
    memset(w, 0, sizeof *w);
}

static size_t vk_scratch_bytes(const void *p)
{
    const vk_state *s = p;
    return s->meta.bytes;
}

/* ---- ops ---------------------------------------------------------------- */

static qeil_status vk_matmul(void *p, const qeil_bweight *w, const float *x, uint32_t n, float *y)
{
    vk_state *s = p;
    uint32_t wo, xo, yo;
    const vk_buf *bw = buf_find(s, w->data, &wo), *bx = buf_find(s, x, &xo), *by = buf_find(s, y, &yo);
    if (s->err != QEIL_OK) return s->err;
    if (!bw || !bx || !by) return QEIL_ERR_INVALID;
    struct {
        uint32_t type, n_cols, n_rows, n_vec, row_bytes, x_off, y_off, w_off;
    } pc = {(uint32_t)w->type, (uint32_t)w->n_cols, (uint32_t)w->n_rows, n,
            (uint32_t)w->row_bytes, xo / 4, yo / 4, wo};
    const VkBuffer b[3] = {bw->buf, bx->buf, by->buf};
    const uint32_t groups = (uint32_t)((w->n_rows + MATMUL_ROWS - 1) / MATMUL_ROWS);
    const uint32_t gx = groups < MAX_GROUPS ? groups : MAX_GROUPS;
    reserve(s, 0);
    dispatch(s, SH_MATMUL, b, 3, &pc, sizeof pc, gx, (groups + gx - 1) / gx,
             (n + MATMUL_NV - 1) / MATMUL_NV);
    return s->err;
}

static void vk_get_rows(void *p, const qeil_bweight *w, const uint32_t *ids, uint32_t n,
                        float *y, int accumulate)
{
    vk_state *s = p;
    uint32_t wo, yo;
    const vk_buf *bw = buf_find(s, w->data, &wo), *by = buf_find(s, y, &yo);
    if (!bw || !by || n == 0) return;
    reserve(s, (size_t)n * 4);
    struct {
        uint32_t type, n_cols, row_bytes, n, y_off, ids_off, accumulate, w_off;
    } pc = {(uint32_t)w->type, (uint32_t)w->n_cols, (uint32_t)w->row_bytes, n, yo / 4,
            meta_put(s, ids, (size_t)n * 4), accumulate ? 1u : 0u, wo};
    const VkBuffer b[3] = {bw->buf, by->buf, s->meta.buf};
    dispatch(s, SH_GET_ROWS, b, 3, &pc, sizeof pc, (uint32_t)((w->n_cols + WG - 1) / WG), n, 1);
}

static void eltwise(vk_state *s, uint32_t op, float *a, const float *b, size_t n, uint32_t d,
                    size_t stride)
{
    uint32_t ao, bo = 0;
    const vk_buf *ba = buf_find(s, a, &ao), *bb = b ? buf_find(s, b, &bo) : ba;
    if (!ba || !bb || n == 0) return;
    struct {
        uint32_t op, n, a_off, b_off, d, stride;
    } pc = {op, (uint32_t)n, ao / 4, bo / 4, d, (uint32_t)stride};
    const VkBuffer bufs[2] = {ba->buf, bb->buf};
    uint32_t gx, gy;
    grid1(n, &gx, &gy);
    reserve(s, 0);
    dispatch(s, SH_ELTWISE, bufs, 2, &pc, sizeof pc, gx, gy, 1);
}

static void vk_add(void *p, float *y, const float *x, size_t n)
{
    eltwise(p, ELTWISE_ADD, y, x, n, 1, 0);
}

static void vk_add_bias(void *p, float *y, size_t stride, const float *b, uint32_t n_rows,
                        uint32_t d)
{
    eltwise(p, ELTWISE_ADD_BIAS, y, b, (size_t)n_rows * d, d, stride);
}

static void vk_silu_mul(void *p, float *g, const float *u, size_t n)
{
    eltwise(p, ELTWISE_SILU_MUL, g, u, n, 1, 0);
}

static void vk_gelu(void *p, float *x, size_t n) { eltwise(p, ELTWISE_GELU, x, NULL, n, 1, 0); }

/* x *= sc; the factor travels as its bits in the push constant's d */
static void vk_scale(void *p, float *x, size_t n, float sc)
{
    uint32_t bits;
    memcpy(&bits, &sc, sizeof bits);
    eltwise(p, ELTWISE_SCALE, x, NULL, n, bits, 0);
}

static void norm(vk_state *s, uint32_t layer, const float *x, const float *w, const float *b,
                 float *y, uint32_t n_rows, uint32_t d, float eps)
{
    uint32_t xo, wo, bo = 0, yo;
    const vk_buf *bx = buf_find(s, x, &xo), *bw = buf_find(s, w, &wo),
                 *bb = b ? buf_find(s, b, &bo) : bw, *by = buf_find(s, y, &yo);
    if (!bx || !bw || !bb || !by || n_rows == 0) return;
    struct {
        uint32_t layer, has_b, d, x_off, w_off, b_off, y_off;
        float eps;
    } pc = {layer, b ? 1u : 0u, d, xo / 4, wo / 4, bo / 4, yo / 4, eps};
    const VkBuffer bufs[4] = {bx->buf, bw->buf, bb->buf, by->buf};
    reserve(s, 0);
    dispatch(s, SH_NORM, bufs, 4, &pc, sizeof pc, n_rows, 1, 1);
}

static void vk_rmsnorm(void *p, const float *x, const float *w, float *y, uint32_t n_rows,
                       uint32_t d, float eps)
{
    norm(p, 0, x, w, NULL, y, n_rows, d, eps);
}

static void vk_layernorm(void *p, const float *x, const float *w, const float *b, float *y,
                         uint32_t n_rows, uint32_t d, float eps)
{
    norm(p, 1, x, w, b, y, n_rows, d, eps);
}

_Static_assert(sizeof(qeil_brow) == 8, "qeil_brow is two uint32 (the shaders read it so)");

static void vk_rope(void *p, float *x, size_t stride, uint32_t n_rows, const qeil_brow *rows,
                    uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *cs,
                    const float *sn, int neox)
{
    vk_state *s = p;
    uint32_t xo, co, so;
    const vk_buf *bx = buf_find(s, x, &xo), *bc = buf_find(s, cs, &co), *bs = buf_find(s, sn, &so);
    if (!bx || !bc || !bs || n_rows == 0 || n_rot < 2) return;
    reserve(s, (size_t)n_rows * sizeof *rows);
    struct {
        uint32_t x_off, stride, n_rows, n_heads, head_dim, n_rot, cs_off, sn_off, rows_off, neox;
    } pc = {xo / 4, (uint32_t)stride, n_rows, n_heads, head_dim, n_rot, co / 4, so / 4,
            meta_put(s, rows, (size_t)n_rows * sizeof *rows), neox ? 1u : 0u};
    const VkBuffer bufs[4] = {bx->buf, bc->buf, bs->buf, s->meta.buf};
    uint32_t gx, gy;
    grid1((uint64_t)n_rows * n_heads * (n_rot / 2), &gx, &gy);
    dispatch(s, SH_ROPE, bufs, 4, &pc, sizeof pc, gx, gy, 1);
}

static void vk_kv_store(void *p, const qeil_bkv *kv, const float *k, const float *v,
                        size_t stride, uint32_t n_rows, const qeil_brow *rows)
{
    vk_state *s = p;
    uint32_t kco, vco, ko, vo;
    const vk_buf *bkc = buf_find(s, kv->k, &kco), *bvc = buf_find(s, kv->v, &vco),
                 *bk = buf_find(s, k, &ko), *bv = buf_find(s, v, &vo);
    if (!bkc || !bvc || !bk || !bv || n_rows == 0) return;
    reserve(s, (size_t)n_rows * sizeof *rows);
    struct {
        uint32_t kc_off, vc_off, k_off, v_off, stride, n_rows, n_kv_heads, head_dim, n_ctx,
            rows_off;
    } pc = {kco / 4, vco / 4, ko / 4, vo / 4, (uint32_t)stride, n_rows, kv->n_kv_heads,
            kv->head_dim, kv->n_ctx, meta_put(s, rows, (size_t)n_rows * sizeof *rows)};
    const VkBuffer bufs[5] = {bkc->buf, bvc->buf, bk->buf, bv->buf, s->meta.buf};
    uint32_t gx, gy;
    grid1((uint64_t)n_rows * kv->n_kv_heads * kv->head_dim, &gx, &gy);
    dispatch(s, SH_KV_STORE, bufs, 5, &pc, sizeof pc, gx, gy, 1);
}

static void vk_attention(void *p, const qeil_bkv *kv, const float *q, size_t q_stride,
                         uint32_t n_rows, const qeil_brow *rows, uint32_t n_heads, float scale,
                         float *out)
{
    vk_state *s = p;
    if (kv->head_dim > 256 || kv->n_kv_heads == 0 || n_heads % kv->n_kv_heads != 0) {
        if (s->err == QEIL_OK)
            s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED,
                                   "vulkan: attention with head_dim %u (allowed 1..256), %u heads "
                                   "over %u KV heads",
                                   kv->head_dim, n_heads, kv->n_kv_heads);
        return;
    }
    uint32_t kco, vco, qo, oo;
    const vk_buf *bkc = buf_find(s, kv->k, &kco), *bvc = buf_find(s, kv->v, &vco),
                 *bq = buf_find(s, q, &qo), *bo = buf_find(s, out, &oo);
    if (!bkc || !bvc || !bq || !bo || n_rows == 0) return;
    reserve(s, (size_t)n_rows * sizeof *rows);
    struct {
        uint32_t kc_off, vc_off, q_off, o_off, q_stride, n_heads, n_kv_heads, head_dim, n_ctx,
            rows_off;
        float scale;
    } pc = {kco / 4, vco / 4, qo / 4, oo / 4, (uint32_t)q_stride, n_heads, kv->n_kv_heads,
            kv->head_dim, kv->n_ctx, meta_put(s, rows, (size_t)n_rows * sizeof *rows), scale};
    const VkBuffer bufs[5] = {bkc->buf, bvc->buf, bq->buf, bo->buf, s->meta.buf};
    dispatch(s, SH_ATTENTION, bufs, 5, &pc, sizeof pc, n_heads, n_rows, 1);
}

/* lfm2 gated short convolution (shaders/shortconv.comp): the outputs, then
 * the state update, as two dispatches; each carries the rows and, per row,
 * the first row of its run of one sequence (computed here). */
static void vk_shortconv(void *p, const qeil_bkv *kv, float *bcx, uint32_t n_rows,
                         const qeil_brow *rows, const float *w, float *y)
{
    vk_state *s = p;
    uint32_t so, xo, wo, yo;
    const vk_buf *bs = buf_find(s, kv->conv, &so), *bx = buf_find(s, bcx, &xo),
                 *bw = buf_find(s, w, &wo), *by = buf_find(s, y, &yo);
    if (!bs || !bx || !bw || !by || n_rows == 0) return;
    const size_t rows_B = (size_t)n_rows * sizeof *rows, r0_B = (size_t)n_rows * sizeof(uint32_t);
    for (uint32_t phase = 0; phase < 2; phase++) {
        reserve(s, rows_B + 16 + r0_B);
        const uint32_t rows_off = meta_put(s, rows, rows_B);
        uint32_t *r0 = (uint32_t *)(void *)(s->meta.host + s->meta_used);
        const uint32_t r0_off = (uint32_t)(s->meta_used / 4);
        for (uint32_t r = 0; r < n_rows; r++)
            r0[r] = r > 0 && rows[r].seq == rows[r - 1].seq && rows[r].pos == rows[r - 1].pos + 1
                        ? r0[r - 1]
                        : r;
        s->meta_used += (r0_B + 15) & ~(size_t)15;
        struct {
            uint32_t st_off, bcx_off, w_off, y_off, n_rows, d, ns, rows_off, r0_off, phase;
        } pc = {so / 4, xo / 4, wo / 4, yo / 4, n_rows, kv->conv_d, kv->conv_n_state, rows_off, r0_off,
                phase};
        const VkBuffer bufs[5] = {bs->buf, bx->buf, bw->buf, by->buf, s->meta.buf};
        uint32_t gx, gy;
        grid1((uint64_t)n_rows * kv->conv_d, &gx, &gy);
        dispatch(s, SH_SHORTCONV, bufs, 5, &pc, sizeof pc, gx, gy, 1);
    }
}

static qeil_status vk_sync(void *p, double timeout_s)
{
    vk_state *s = p;
    const double ns = timeout_s * 1e9;
    flush_wait(s, ns > 0 && ns < 1.8e19 ? (uint64_t)ns : UINT64_MAX);
    return s->err;
}

const qeil_backend qeil_backend_vulkan = {
    .props = {.name = "vulkan",
              .caps = QEIL_BACKEND_CAP_BATCHED_MATMUL,
              .weight_types = VK_WEIGHT_TYPES,
              .param_types = TYPE_BIT(QEIL_GGML_F32)},
    .create = vk_create,
    .destroy = vk_destroy,
    .alloc = vk_alloc,
    .release = vk_release,
    .to_backend = vk_to_backend,
    .to_host = vk_to_host,
    .copy = vk_copy,
    .weight_prepare = vk_weight_prepare,
    .weight_release = vk_weight_release,
    .scratch_bytes = vk_scratch_bytes,
    .matmul = vk_matmul,
    .matmul_multi = NULL,
    .get_rows = vk_get_rows,
    .add = vk_add,
    .add_bias = vk_add_bias,
    .rmsnorm = vk_rmsnorm,
    .layernorm = vk_layernorm,
    .rope = vk_rope,
    .kv_store = vk_kv_store,
    .attention = vk_attention,
    .silu_mul = vk_silu_mul,
    .gelu = vk_gelu,
    .sync = vk_sync,
    .scale = vk_scale,
    .shortconv = vk_shortconv,
};
