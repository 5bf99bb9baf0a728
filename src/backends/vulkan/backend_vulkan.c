/*
 * backend_vulkan.c — the "vulkan" backend: the forward pass's ops as GLSL
 * compute shaders (shaders/, compiled to SPIR-V by glslc at build time and
 * embedded here) on Vulkan physical device 0 ("vk0"), loaded at run time
 * (vk_loader.h). docs/vulkan.md describes the design; in short:
 *
 * - Buffers: every allocation is its own VkBuffer, or, for a weight larger
 *   than the largest storage buffer, several (row chunks). The "backend
 *   pointer" the engine passes around is an address range of its own, so
 *   its arithmetic (s->q + q_dim, kv->k + offset) is ordinary C; each op
 *   finds the allocation holding an address (buf_find) and passes the
 *   element offset to the shader in push constants. Whole buffers are
 *   bound, so no offset alignment rule applies.
 * - Memory: where the device-local heap is host-visible (integrated GPUs,
 *   lavapipe, resizable-BAR discrete GPUs) buffers are mapped and the
 *   address is the mapped one ("direct"); otherwise they are device-local
 *   only, the address a reserved PROT_NONE range, and transfers go through
 *   a staging buffer with vkCmdCopyBuffer ("staged"). Device memory is
 *   counted against the heap: a buffer that does not fit is refused with
 *   the bytes needed and available.
 * - Recording: ops append dispatches (and staged copies) to one command
 *   buffer, with a global barrier before each command; sync, to_host and
 *   release submit it and wait (a fence). Per-call host metadata (token
 *   ids, row positions) goes to a mapped "meta" buffer; descriptor sets
 *   come from a pool reset after each submit.
 * - Test knobs (QEIL_VK_MAX_BUFFER, QEIL_VK_FORCE_STAGING,
 *   QEIL_VK_HEAP_BYTES) take the split, staged and out-of-memory paths on
 *   lavapipe.
 * - Matmul and get_rows take f32, f16, bf16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
 *   IQ4_NL, Q4_K and Q6_K; a type outside props.weight_types (Q5_K,
 *   IQ4_XS) makes the engine refuse the placement (the unit stays where it
 *   was).
 * - Ops that return void record failures (an address that is not this
 *   backend's, head_dim > 256) in s->err; the next matmul returns it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backends/vulkan/vk_loader.h"
#include "backends/vulkan/vk_util.h"
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
#define MAX_SETS 4096       /* dispatches per submit (a llama block's decode is ~15: a
                               step of up to ~270 blocks is one submit) */
#define META_BYTES (1u << 20)
#define STAGE_BYTES (8u << 20) /* staging buffer (device-local-only memory) */
#define WG 64u              /* local_size_x of every shader */
#define MAX_GROUPS 65535u   /* maxComputeWorkGroupCount minimum per dimension */
#define MATMUL_ROWS 8u    /* rows per matmul workgroup (shaders/matmul.comp ROWS) */
#define MATMUL_NV 4u      /* vectors per matmul workgroup (NV) */
#define ELTWISE_ADD 0u
#define ELTWISE_ADD_BIAS 1u
#define ELTWISE_SILU_MUL 2u
#define ELTWISE_GELU 3u
#define ELTWISE_SCALE 4u

/* One VkBuffer and its memory. */
typedef struct {
    VkBuffer buf;
    VkDeviceMemory mem;
    uint8_t *map;   /* mapped address; NULL where the memory is device-local only (staging) */
    size_t bytes;   /* the VkBuffer's size, a multiple of 16 */
    size_t mem_B;   /* bytes of device memory it holds (counted against the heap) */
} vk_chunk;

/* An allocation as the engine sees it: the backend addresses
 * [addr, addr + bytes), held by n_chunks buffers, chunk k holding bytes
 * [k chunk_B, (k + 1) chunk_B) (a weight larger than the device's largest
 * storage buffer: whole rows per chunk; everything else: one chunk). addr
 * is chunk 0's mapped address for a mapped single-chunk buffer, otherwise
 * an address range reserved with no access (mmap PROT_NONE): unique, never
 * host memory, never dereferenced. */
typedef struct {
    uint8_t *addr;
    size_t bytes;
    size_t chunk_B;
    size_t rows_per_chunk; /* a split weight's rows per chunk (0: not a split weight) */
    uint32_t n_chunks;
    int reserved;          /* addr is a reservation to munmap */
    vk_chunk *chunk;       /* n_chunks */
} vk_buf;

typedef struct {
    qeil_ctx *ctx;
    vk_api api;
    VkPhysicalDevice pd;
    VkPhysicalDeviceProperties props;
    VkDevice dev;
    VkQueue queue;
    uint32_t mem_dev;     /* memory type of the engine's buffers */
    uint32_t mem_host;    /* host-visible coherent type (metadata, staging) */
    int staging;          /* buffers are device-local only: reached through the staging buffer */
    size_t heap_B;        /* bytes of mem_dev's heap (QEIL_VK_HEAP_BYTES may lower it) */
    size_t used_B;        /* device memory this instance holds in mem_dev's heap */
    size_t max_buf_B;     /* largest storage buffer a shader binds (a multiple of 16) */
    size_t max_chunk_B;   /* largest chunk of a split weight (QEIL_VK_MAX_BUFFER may lower it) */
    vk_buf *bufs;         /* live allocations, any order */
    size_t n_bufs, cap_bufs;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout pl;
    VkPipeline pipe[SH_COUNT];
    vk_commands cmd;      /* descriptor pool, command pool, cb, fence (vk_util.h) */
    vk_chunk meta;
    size_t meta_used;
    vk_chunk stage;       /* staging buffer (staging mode only) */
    size_t stage_used;    /* bytes of it that recorded copies still read */
    uint32_t n_sets, n_cmds;
    int recording;
    int no_barrier;       /* the next command needs no barrier before it (a split op's chunks) */
    int multi_next;       /* matmul_multi's second and later weights: no barrier before them */
    int hung;        /* a wait timed out: work may still run, nothing is freed until destroy */
    qeil_status err;
    uint32_t max_rows, max_ctx;
    uint32_t caps;        /* this instance's QEIL_BACKEND_CAP_* (vk_inst_caps) */
    uint64_t n_submits;   /* queue submits since create */
    /* timer marks (vk_timer_mark): query i of qpool is mark i since the
     * last sync; NULL pool: the queue has no timestamps */
    VkQueryPool qpool;
    uint64_t ts_mask;     /* timestampValidBits of the queue family, as a mask */
    double ts_period_ns;  /* nanoseconds per timestamp tick */
    uint32_t n_marks;     /* marks recorded since the last sync */
    uint32_t n_ticks;     /* marks read back at the last successful sync */
    uint64_t ticks[QEIL_BACKEND_MAX_MARKS];
} vk_state;

static void flush(vk_state *s);
static int record_begin(vk_state *s);

/* ---- buffers ------------------------------------------------------------ */

static void chunk_free(vk_state *s, vk_chunk *c, uint32_t type)
{
    const vk_api *a = &s->api;
    if (c->map) a->UnmapMemory(s->dev, c->mem);
    if (c->buf) a->DestroyBuffer(s->dev, c->buf, NULL);
    if (c->mem) {
        a->FreeMemory(s->dev, c->mem, NULL);
        if (type == s->mem_dev) s->used_B -= c->mem_B;
    }
    memset(c, 0, sizeof *c);
}

/* A buffer of at least `bytes` (<= max_buf_B) in memory type `type`,
 * mapped if `map`. Device memory is counted against heap_B: a buffer that
 * does not fit is refused before anything is allocated, naming the bytes
 * needed and available. */
static qeil_status chunk_make(vk_state *s, size_t bytes, uint32_t type, int map, vk_chunk *out)
{
    const vk_api *a = &s->api;
    memset(out, 0, sizeof *out);
    const size_t size = bytes < 16 ? 16 : (bytes + 15) & ~(size_t)15;
    VkMemoryRequirements req;
    VkResult r = vk_buffer_create(a, s->dev, size,
                                  VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                  &out->buf, &req);
    if (r != VK_SUCCESS)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM, "vulkan: vkCreateBuffer of %zu bytes: %s",
                             size, vk_result_str(r));
    if (!((req.memoryTypeBits >> type) & 1)) {
        chunk_free(s, out, type);
        return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: memory type %u cannot hold a storage buffer", type);
    }
    if (type == s->mem_dev && (req.size > s->heap_B || s->used_B > s->heap_B - req.size)) {
        chunk_free(s, out, type);
        return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM,
                             "vulkan: out of device memory on '%s': %llu bytes needed, %zu "
                             "available (heap of %zu bytes, %zu of them held by this backend)",
                             s->props.deviceName, (unsigned long long)req.size,
                             s->heap_B - s->used_B, s->heap_B, s->used_B);
    }
    r = vk_buffer_back(a, s->dev, out->buf, req.size, type, &out->mem);
    if (out->mem == VK_NULL_HANDLE) {
        chunk_free(s, out, type);
        return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM,
                             "vulkan: out of device memory on '%s': %llu bytes needed, the "
                             "driver refused (%s; this backend holds %zu of the heap's %zu bytes)",
                             s->props.deviceName, (unsigned long long)req.size, vk_result_str(r),
                             s->used_B, s->heap_B);
    }
    out->mem_B = (size_t)req.size;
    if (type == s->mem_dev) s->used_B += out->mem_B;
    void *p = NULL;
    if (r != VK_SUCCESS ||
        (map && (r = a->MapMemory(s->dev, out->mem, 0, VK_WHOLE_SIZE, 0, &p)) != VK_SUCCESS)) {
        chunk_free(s, out, type);
        return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM, "vulkan: binding or mapping %zu bytes: %s",
                             size, vk_result_str(r));
    }
    out->map = p;
    out->bytes = size;
    return QEIL_OK;
}

static void buf_free(vk_state *s, vk_buf *b)
{
    for (uint32_t k = 0; b->chunk && k < b->n_chunks; k++) chunk_free(s, &b->chunk[k], s->mem_dev);
    if (b->reserved) munmap(b->addr, b->bytes);
    qeil_free(s->ctx, b->chunk);
    memset(b, 0, sizeof *b);
}

/* Zero chunk c (recorded in staging mode, before any later command). */
static void chunk_zero(vk_state *s, const vk_chunk *c)
{
    if (c->map) {
        memset(c->map, 0, c->bytes);
        return;
    }
    if (!record_begin(s)) return;
    s->api.CmdFillBuffer(s->cmd.cb, c->buf, 0, VK_WHOLE_SIZE, 0);
}

/* A new allocation of `bytes` (zero-filled if `zero`), in chunks of rows_per_chunk
 * rows of row_B bytes (rows_per_chunk 0: one chunk, at most max_buf_B);
 * *out: its backend address. */
static qeil_status buf_register(vk_state *s, size_t bytes, size_t row_B, size_t rows_per_chunk,
                                int zero, void **out)
{
    *out = NULL;
    const size_t chunk_B = rows_per_chunk ? rows_per_chunk * row_B : bytes;
    const size_t n_chunks = rows_per_chunk && bytes ? (bytes + chunk_B - 1) / chunk_B : 1;
    if (!rows_per_chunk && bytes > s->max_buf_B)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: a buffer of %zu bytes exceeds the device's largest storage "
                             "buffer (%zu bytes: maxStorageBufferRange; only weights are split)",
                             bytes, s->max_buf_B);
    if (s->n_bufs == s->cap_bufs) {
        size_t cap = s->cap_bufs ? 2 * s->cap_bufs : 64;
        vk_buf *nb = qeil_realloc(s->ctx, s->bufs, cap * sizeof *nb);
        if (!nb) return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM, "vulkan: out of memory");
        s->bufs = nb;
        s->cap_bufs = cap;
    }
    vk_buf b = {.bytes = bytes ? bytes : 16, .chunk_B = chunk_B, .n_chunks = (uint32_t)n_chunks,
                .rows_per_chunk = rows_per_chunk};
    b.chunk = qeil_calloc(s->ctx, n_chunks, sizeof *b.chunk);
    if (!b.chunk) return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM, "vulkan: out of memory");
    for (size_t k = 0; k < n_chunks; k++) {
        const size_t cb = k + 1 < n_chunks ? chunk_B : bytes - k * chunk_B;
        qeil_status st = chunk_make(s, cb, s->mem_dev, !s->staging, &b.chunk[k]);
        if (st != QEIL_OK) {
            buf_free(s, &b);
            return st;
        }
        if (zero) chunk_zero(s, &b.chunk[k]);
    }
    if (n_chunks == 1 && b.chunk[0].map) {
        b.addr = b.chunk[0].map;
    } else {
        void *r = mmap(NULL, b.bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r == MAP_FAILED) {
            buf_free(s, &b);
            return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM,
                                 "vulkan: reserving %zu bytes of address space failed", b.bytes);
        }
        b.addr = r;
        b.reserved = 1;
    }
    s->bufs[s->n_bufs++] = b;
    *out = b.addr;
    return QEIL_OK;
}

/* The allocation holding backend address p, and p's byte offset in it. */
static const vk_buf *buf_find_any(vk_state *s, const void *p, size_t *off)
{
    const uint8_t *q = p;
    for (size_t i = 0; i < s->n_bufs; i++) {
        const vk_buf *b = &s->bufs[i];
        /* compared as integers: p may belong to no buffer at all */
        if ((uintptr_t)q >= (uintptr_t)b->addr && (uintptr_t)q < (uintptr_t)b->addr + b->bytes) {
            *off = (size_t)((uintptr_t)q - (uintptr_t)b->addr);
            return b;
        }
    }
    if (s->err == QEIL_OK)
        s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_INVALID,
                               "vulkan: address %p is not a buffer of this backend", p);
    return NULL;
}

/* The buffer holding backend address p (an allocation of one chunk: every
 * operand but a matmul's or get_rows' weight), its offset in *off. */
static VkBuffer buf_find(vk_state *s, const void *p, uint32_t *off)
{
    size_t o = 0;
    const vk_buf *b = buf_find_any(s, p, &o);
    if (!b) return VK_NULL_HANDLE;
    if (b->n_chunks != 1) {
        if (s->err == QEIL_OK)
            s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_INVALID,
                                   "vulkan: address %p is a split weight, which only matmul and "
                                   "get_rows read", p);
        return VK_NULL_HANDLE;
    }
    *off = (uint32_t)o;
    return b->chunk[0].buf;
}

static void buf_unregister(vk_state *s, void *p)
{
    for (size_t i = 0; i < s->n_bufs; i++)
        if (s->bufs[i].addr == p) {
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
    /* shader and copy writes visible to the host's reads after the fence */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    a->CmdPipelineBarrier(s->cmd.cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                          VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkResult r = a->EndCommandBuffer(s->cmd.cb);
    if (r == VK_SUCCESS) {
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                           .commandBufferCount = 1,
                           .pCommandBuffers = &s->cmd.cb};
        r = a->QueueSubmit(s->queue, 1, &si, s->cmd.fence);
        s->n_submits++;
        if (r == VK_SUCCESS) r = a->WaitForFences(s->dev, 1, &s->cmd.fence, VK_TRUE, timeout_ns);
        /* a timed-out fence stays unsignalled: the instance is failed from here */
        if (r != VK_TIMEOUT) a->ResetFences(s->dev, 1, &s->cmd.fence);
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
        a->ResetCommandBuffer(s->cmd.cb, 0);
        a->ResetDescriptorPool(s->dev, s->cmd.dpool, 0);
    }
    s->recording = 0;
    s->n_sets = s->n_cmds = 0;
    s->meta_used = s->stage_used = 0;
    s->no_barrier = 0;
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
    memcpy(s->meta.map + off, src, bytes);
    s->meta_used += (bytes + 15) & ~(size_t)15;
    return off / 4;
}

/* Start recording if needed, and order the next command after every
 * command recorded before it (shader and copy writes visible to later
 * shaders and copies) unless s->no_barrier says it only reads what they
 * read and writes what they do not touch (the chunks of one split op).
 * 0 on failure (in s->err). */
static int record_begin(vk_state *s)
{
    const vk_api *a = &s->api;
    if (s->err != QEIL_OK) return 0;
    if (!s->recording) {
        VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                       .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
        if (a->BeginCommandBuffer(s->cmd.cb, &bi) != VK_SUCCESS) {
            s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_IO, "vulkan: vkBeginCommandBuffer failed");
            return 0;
        }
        s->recording = 1;
    }
    if (s->n_cmds > 0 && !s->no_barrier) {
        const VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                               VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
        a->CmdPipelineBarrier(s->cmd.cb, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
    }
    s->n_cmds++;
    return 1;
}

/* Record shader sh over groups gx x gy x gz with buffers b[0..nb) at
 * bindings 0..nb-1 (the rest bound to the meta buffer) and push constants
 * pc. reserve() must have been called. */
static void dispatch(vk_state *s, int sh, const VkBuffer *b, int nb, const void *pc,
                     size_t pc_bytes, uint32_t gx, uint32_t gy, uint32_t gz)
{
    const vk_api *a = &s->api;
    if (s->err != QEIL_OK || gx == 0 || gy == 0 || gz == 0) return;
    if (!record_begin(s)) return;
    VkDescriptorSet set;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = s->cmd.dpool,
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
    a->CmdBindPipeline(s->cmd.cb, VK_PIPELINE_BIND_POINT_COMPUTE, s->pipe[sh]);
    a->CmdBindDescriptorSets(s->cmd.cb, VK_PIPELINE_BIND_POINT_COMPUTE, s->pl, 0, 1, &set, 0, NULL);
    a->CmdPushConstants(s->cmd.cb, s->pl, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)pc_bytes, pc);
    a->CmdDispatch(s->cmd.cb, gx, gy, gz);
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
        chunk_free(s, &s->meta, s->mem_host);
        chunk_free(s, &s->stage, s->mem_host);
        if (s->qpool) a->DestroyQueryPool(s->dev, s->qpool, NULL);
        vk_free_commands(a, s->dev, &s->cmd);
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

/* Memory type with all of `want`, on heap `heap` (UINT32_MAX: any), or UINT32_MAX. */
static uint32_t find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, VkMemoryPropertyFlags want,
                              uint32_t heap)
{
    return vk_find_mem_type(mp, UINT32_MAX, want, 0, heap);
}

/* Test knob `name` (docs/vulkan.md, "Test knobs"): unset leaves *v; else a
 * whole decimal number in [lo, hi], or an error naming it. */
static qeil_status env_knob(qeil_ctx *ctx, const char *name, uint64_t lo, uint64_t hi, uint64_t *v)
{
    const char *e = getenv(name);
    if (!e) return QEIL_OK;
    char *end = NULL;
    errno = 0;
    const unsigned long long x = strtoull(e, &end, 10);
    if (!*e || *end || errno || e[0] == '-' || x < lo || x > hi)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "vulkan: %s='%s' (allowed %llu..%llu)", name, e,
                             (unsigned long long)lo, (unsigned long long)hi);
    *v = x;
    return QEIL_OK;
}

/* Where the engine's buffers live. The device's largest device-local heap
 * holds them; if a host-visible coherent type lives there too (integrated
 * GPUs, lavapipe, discrete GPUs with a resizable BAR), they are mapped and
 * the host reads and writes them in place; otherwise (a discrete GPU whose
 * BAR window is small) they are device-local only and every transfer goes
 * through the staging buffer. QEIL_VK_FORCE_STAGING=1 takes the staging
 * path anyway (a test knob), QEIL_VK_HEAP_BYTES lowers the heap size the
 * backend counts against. */
static qeil_status choose_memory(vk_state *s, const VkPhysicalDeviceMemoryProperties *mp)
{
    const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                       VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint64_t force = 0, heap_B = 0;
    qeil_status st = env_knob(s->ctx, "QEIL_VK_FORCE_STAGING", 0, 1, &force);
    if (st != QEIL_OK) return st;
    uint32_t heap = UINT32_MAX;
    for (uint32_t i = 0; i < mp->memoryHeapCount; i++)
        if ((mp->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            (heap == UINT32_MAX || mp->memoryHeaps[i].size > mp->memoryHeaps[heap].size))
            heap = i;
    s->mem_host = find_mem_type(mp, host, UINT32_MAX);
    if (s->mem_host == UINT32_MAX)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED,
                             "vulkan: device '%s' has no host-visible coherent memory type",
                             s->props.deviceName);
    const uint32_t direct = heap == UINT32_MAX ? s->mem_host
                                               : find_mem_type(mp, host | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, heap);
    if (direct != UINT32_MAX && !force) {
        s->mem_dev = direct;
    } else {
        s->mem_dev = find_mem_type(mp, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, heap);
        s->staging = 1;
    }
    if (s->mem_dev == UINT32_MAX) /* forced staging on a device without device-local memory */
        s->mem_dev = s->mem_host;
    const VkDeviceSize hs = mp->memoryHeaps[mp->memoryTypes[s->mem_dev].heapIndex].size;
    heap_B = hs > SIZE_MAX ? SIZE_MAX : (size_t)hs;
    if ((st = env_knob(s->ctx, "QEIL_VK_HEAP_BYTES", 1, heap_B, &heap_B)) != QEIL_OK) return st;
    s->heap_B = (size_t)heap_B;
    return QEIL_OK;
}

/* The largest storage buffer (maxStorageBufferRange, and Vulkan 1.1's
 * maxMemoryAllocationSize) and the largest chunk of a split weight
 * (QEIL_VK_MAX_BUFFER may lower it: the test knob that splits small
 * tensors). */
static qeil_status choose_limits(vk_state *s)
{
    uint64_t max = s->props.limits.maxStorageBufferRange;
    if (s->props.apiVersion >= VK_API_VERSION_1_1 && s->api.GetPhysicalDeviceProperties2) {
        VkPhysicalDeviceMaintenance3Properties m3 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                          .pNext = &m3};
        s->api.GetPhysicalDeviceProperties2(s->pd, &p2);
        if (m3.maxMemoryAllocationSize && m3.maxMemoryAllocationSize < max)
            max = m3.maxMemoryAllocationSize;
    }
    max &= ~(uint64_t)15;
    if (max > SIZE_MAX) max = SIZE_MAX & ~(size_t)15;
    s->max_buf_B = s->max_chunk_B = (size_t)max;
    uint64_t chunk = max;
    qeil_status st = env_knob(s->ctx, "QEIL_VK_MAX_BUFFER", 16, max, &chunk);
    if (st != QEIL_OK) return st;
    s->max_chunk_B = (size_t)chunk & ~(size_t)15;
    return QEIL_OK;
}

static qeil_status make_pipelines(vk_state *s)
{
    const vk_api *a = &s->api;
    VkResult r = vk_make_layout(a, s->dev, N_BINDINGS, PC_BYTES, &s->dsl, &s->pl);
    if (r != VK_SUCCESS)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED, "vulkan: pipeline layout: %s",
                             vk_result_str(r));
    for (int i = 0; i < SH_COUNT; i++)
        if ((r = vk_make_pipeline(a, s->dev, s->pl, k_shaders[i].code, k_shaders[i].bytes,
                                  &s->pipe[i])) != VK_SUCCESS)
            return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED, "vulkan: pipeline %d: %s", i,
                                 vk_result_str(r));
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
    VkQueueFamilyProperties qfp;
    const uint32_t fam = vk_compute_family(a, s->pd, &qfp);
    if (fam == UINT32_MAX) {
        vk_destroy(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "vulkan: device '%s' has no compute queue",
                             s->props.deviceName);
    }
    VkPhysicalDeviceMemoryProperties mp;
    a->GetPhysicalDeviceMemoryProperties(s->pd, &mp);
    if ((st = choose_memory(s, &mp)) != QEIL_OK || (st = choose_limits(s)) != QEIL_OK) {
        vk_destroy(s);
        return st;
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
    if ((st = make_pipelines(s)) != QEIL_OK) {
        vk_destroy(s);
        return st;
    }
    r = vk_make_commands(a, s->dev, fam, MAX_SETS, N_BINDINGS, &s->cmd);
    if (r != VK_SUCCESS) {
        vk_destroy(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "vulkan: command resources: %s",
                             vk_result_str(r));
    }
    /* timestamps for the engine's per-unit times, where the queue has them */
    if (qfp.timestampValidBits > 0 && s->props.limits.timestampPeriod > 0) {
        VkQueryPoolCreateInfo qpi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                     .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                     .queryCount = QEIL_BACKEND_MAX_MARKS};
        if (a->CreateQueryPool(s->dev, &qpi, NULL, &s->qpool) != VK_SUCCESS)
            s->qpool = VK_NULL_HANDLE; /* no timer: the engine syncs per unit */
        const uint32_t bits = qfp.timestampValidBits;
        s->ts_mask = bits >= 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
        s->ts_period_ns = s->props.limits.timestampPeriod;
    }
    s->caps = QEIL_BACKEND_CAP_BATCHED_MATMUL;
    /* weights written in place into memory the GPU reads where it shares
     * the host's (an integrated GPU, a CPU device such as lavapipe); a
     * discrete GPU whose BAR maps its memory is written in place too, but
     * over the bus: not unified */
    if (!s->staging && (s->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
                        s->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU))
        s->caps |= QEIL_BACKEND_CAP_UNIFIED_MEMORY;
    if ((st = chunk_make(s, META_BYTES, s->mem_host, 1, &s->meta)) != QEIL_OK ||
        (s->staging && (st = chunk_make(s, STAGE_BYTES, s->mem_host, 1, &s->stage)) != QEIL_OK)) {
        vk_destroy(s);
        return st;
    }
    *out = s;
    return QEIL_OK;
}

static void *vk_alloc(void *p, size_t bytes)
{
    void *b;
    buf_register(p, bytes, 0, 0, 1, &b);
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

/* The one-chunk buffer holding [p, p + bytes), p's offset in *off; NULL
 * (and s->err) if there is none. */
static const vk_chunk *xfer_find(vk_state *s, const void *p, size_t bytes, size_t *off)
{
    const vk_buf *b = buf_find_any(s, p, off);
    if (!b) return NULL;
    if (b->n_chunks != 1 || bytes > b->bytes - *off) {
        if (s->err == QEIL_OK)
            s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_INVALID,
                                   "vulkan: a copy of %zu bytes at %p runs past its buffer", bytes, p);
        return NULL;
    }
    return &b->chunk[0];
}

/* Staging mode: host bytes to buffer dst at dst_off. Each piece is copied
 * into the staging buffer and a vkCmdCopyBuffer recorded after the work
 * already recorded; nothing waits until the staging buffer is full. */
static void stage_in(vk_state *s, VkBuffer dst, size_t dst_off, const uint8_t *src, size_t bytes)
{
    while (bytes && s->err == QEIL_OK) {
        if (s->stage_used >= s->stage.bytes) flush(s);
        const size_t at = s->stage_used, room = s->stage.bytes - at, n = bytes < room ? bytes : room;
        memcpy(s->stage.map + at, src, n);
        if (!record_begin(s)) return;
        VkBufferCopy c = {at, dst_off, n};
        s->api.CmdCopyBuffer(s->cmd.cb, s->stage.buf, dst, 1, &c);
        s->stage_used = (at + n + 15) & ~(size_t)15;
        src += n;
        dst_off += n;
        bytes -= n;
    }
}

/* Staging mode: buffer src at src_off to host bytes: a copy into the
 * staging buffer recorded after the work already recorded, one submit and
 * wait per piece (the only place results come back). */
static void stage_out(vk_state *s, uint8_t *dst, VkBuffer src, size_t src_off, size_t bytes)
{
    while (bytes && s->err == QEIL_OK) {
        if (s->stage_used >= s->stage.bytes) flush(s);
        const size_t at = s->stage_used, room = s->stage.bytes - at, n = bytes < room ? bytes : room;
        if (!record_begin(s)) return;
        VkBufferCopy c = {src_off, at, n};
        s->api.CmdCopyBuffer(s->cmd.cb, src, s->stage.buf, 1, &c);
        flush(s);
        if (s->err != QEIL_OK) return;
        memcpy(dst, s->stage.map + at, n);
        dst += n;
        src_off += n;
        bytes -= n;
    }
}

static void vk_to_backend(void *p, void *dst, const void *host_src, size_t bytes)
{
    vk_state *s = p;
    if (!s->staging) {
        flush(s); /* recorded work may still read the old contents */
        if (bytes) memcpy(dst, host_src, bytes);
        return;
    }
    size_t off;
    const vk_chunk *c = bytes ? xfer_find(s, dst, bytes, &off) : NULL;
    if (c) stage_in(s, c->buf, off, host_src, bytes);
}

static void vk_to_host(void *p, void *host_dst, const void *src, size_t bytes)
{
    vk_state *s = p;
    if (!s->staging) {
        flush(s);
        if (bytes) memcpy(host_dst, src, bytes);
        return;
    }
    size_t off;
    const vk_chunk *c = bytes ? xfer_find(s, src, bytes, &off) : NULL;
    if (c) stage_out(s, host_dst, c->buf, off, bytes);
    else if (bytes) memset(host_dst, 0, bytes); /* the error is in s->err */
}

static void vk_copy(void *p, void *dst, const void *src, size_t bytes)
{
    vk_state *s = p;
    if (!s->staging) {
        flush(s);
        if (bytes) memmove(dst, src, bytes);
        return;
    }
    size_t so, dof;
    const vk_chunk *cs = bytes ? xfer_find(s, src, bytes, &so) : NULL;
    const vk_chunk *cd = cs ? xfer_find(s, dst, bytes, &dof) : NULL;
    if (!cd) return;
    if (cs != cd || so + bytes <= dof || dof + bytes <= so) { /* disjoint: one recorded copy */
        if (!record_begin(s)) return;
        VkBufferCopy c = {so, dof, bytes};
        s->api.CmdCopyBuffer(s->cmd.cb, cs->buf, cd->buf, 1, &c);
        return;
    }
    /* overlapping ranges of one buffer (memmove): through the staging
     * buffer a piece at a time, from the end that is read before written */
    flush(s);
    const size_t piece = s->stage.bytes;
    for (size_t done = 0; done < bytes && s->err == QEIL_OK;) {
        const size_t n = bytes - done < piece ? bytes - done : piece;
        const size_t at = dof < so ? done : bytes - done - n;
        if (!record_begin(s)) return;
        VkBufferCopy c1 = {so + at, 0, n}, c2 = {0, dof + at, n};
        s->api.CmdCopyBuffer(s->cmd.cb, cs->buf, s->stage.buf, 1, &c1);
        if (!record_begin(s)) return;
        s->api.CmdCopyBuffer(s->cmd.cb, s->stage.buf, cd->buf, 1, &c2);
        flush(s);
        done += n;
    }
}

#define TYPE_BIT(t) (UINT64_C(1) << (t))
#define VK_WEIGHT_TYPES                                                                       \
    (TYPE_BIT(QEIL_GGML_F32) | TYPE_BIT(QEIL_GGML_F16) | TYPE_BIT(QEIL_GGML_BF16) |          \
     TYPE_BIT(QEIL_GGML_Q8_0) | TYPE_BIT(QEIL_GGML_Q4_0) | TYPE_BIT(QEIL_GGML_Q4_1) |         \
     TYPE_BIT(QEIL_GGML_Q5_0) | TYPE_BIT(QEIL_GGML_Q5_1) | TYPE_BIT(QEIL_GGML_IQ4_NL) |       \
     TYPE_BIT(QEIL_GGML_Q4_K) | TYPE_BIT(QEIL_GGML_Q6_K))

/* A weight goes to device memory once, in the file's row layout. One
 * larger than max_chunk_B is split into chunks of whole rows (rows are
 * whole blocks of its type, so a chunk boundary is a block boundary), each
 * its own buffer; matmul and get_rows run once per chunk. */
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
    /* rows per chunk; 0: one buffer. A one-row tensor (a norm's weight, a
     * bias: other ops read it whole) is split only past the device's limit,
     * where it cannot run anyway; the test knob's smaller chunks apply to
     * matrices. */
    size_t rpc = 0;
    if (bytes > (n_rows > 1 ? s->max_chunk_B : s->max_buf_B)) {
        rpc = s->max_chunk_B / row_bytes;
        if (rpc == 0)
            return qeil_ctx_fail(s->ctx, QEIL_ERR_UNSUPPORTED,
                                 "vulkan: a row of %zu bytes (%lld x %lld %s) exceeds the largest "
                                 "buffer chunk (%zu bytes)",
                                 row_bytes, (long long)n_rows, (long long)n_cols, t->name,
                                 n_rows > 1 ? s->max_chunk_B : s->max_buf_B);
    }
    void *d;
    qeil_status st = buf_register(s, bytes, row_bytes, rpc, 0, &d);
    if (st != QEIL_OK) return st;
    size_t off;
    const vk_buf *b = buf_find_any(s, d, &off);
    for (uint32_t k = 0; k < b->n_chunks; k++) {
        const uint8_t *src = (const uint8_t *)host_data + (size_t)k * b->chunk_B;
        const size_t n = k + 1 < b->n_chunks ? b->chunk_B : bytes - (size_t)k * b->chunk_B;
        if (b->chunk[k].map) memcpy(b->chunk[k].map, src, n);
        else stage_in(s, b->chunk[k].buf, 0, src, n);
    }
    if (s->err != QEIL_OK) {
        vk_release(s, d);
        return s->err;
    }
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
    return s->meta.bytes + s->stage.bytes;
}

/* ---- ops ---------------------------------------------------------------- */

/* The allocation holding weight w: chunk k holds rows [k rpc, (k + 1) rpc),
 * starting at byte *wo of chunk 0 (a weight that is not split may start
 * inside a buffer); NULL (and s->err) if w is not this backend's. */
static const vk_buf *weight_find(vk_state *s, const qeil_bweight *w, size_t *wo, size_t *rpc)
{
    const vk_buf *b = buf_find_any(s, w->data, wo);
    if (!b) return NULL;
    *rpc = b->n_chunks == 1 ? (size_t)w->n_rows : b->rows_per_chunk;
    if (b->n_chunks > 1 && (*wo != 0 || b->chunk_B != b->rows_per_chunk * w->row_bytes)) {
        if (s->err == QEIL_OK)
            s->err = qeil_ctx_fail(s->ctx, QEIL_ERR_INVALID,
                                   "vulkan: weight at %p does not match its split buffer", w->data);
        return NULL;
    }
    return b;
}

/* y rows [r0, r0 + rows) come from chunk k: one dispatch each, no barrier
 * between them (they read the same x and write disjoint parts of y). */
static qeil_status vk_matmul(void *p, const qeil_bweight *w, const float *x, uint32_t n, float *y)
{
    vk_state *s = p;
    uint32_t xo, yo;
    size_t wo, rpc;
    const vk_buf *bw = weight_find(s, w, &wo, &rpc);
    const VkBuffer bx = buf_find(s, x, &xo), by = buf_find(s, y, &yo);
    if (s->err != QEIL_OK) return s->err;
    if (!bw || !bx || !by) return QEIL_ERR_INVALID;
    for (uint32_t k = 0; k < bw->n_chunks; k++) {
        const size_t r0 = (size_t)k * rpc;
        const uint32_t rows = (uint32_t)((size_t)w->n_rows - r0 < rpc ? (size_t)w->n_rows - r0 : rpc);
        struct {
            uint32_t type, n_cols, n_rows, n_vec, row_bytes, x_off, y_off, w_off, y_stride;
        } pc = {(uint32_t)w->type, (uint32_t)w->n_cols, rows, n, (uint32_t)w->row_bytes,
                xo / 4, yo / 4 + (uint32_t)r0, (uint32_t)wo, (uint32_t)w->n_rows};
        const VkBuffer b[3] = {bw->chunk[k].buf, bx, by};
        const uint32_t groups = (rows + MATMUL_ROWS - 1) / MATMUL_ROWS;
        const uint32_t gx = groups < MAX_GROUPS ? groups : MAX_GROUPS;
        reserve(s, 0);
        /* a flush in reserve leaves nothing to wait for */
        s->no_barrier = (k > 0 || s->multi_next) && s->recording;
        dispatch(s, SH_MATMUL, b, 3, &pc, sizeof pc, gx, (groups + gx - 1) / gx,
                 (n + MATMUL_NV - 1) / MATMUL_NV);
        s->no_barrier = 0;
    }
    return s->err;
}

/* y[j] = W[j] x for weights that read the same x (Q/K/V, gate/up): the
 * dispatches of matmul, with no barrier between the weights (they read x,
 * written before the first one's barrier, and write distinct outputs). */
static qeil_status vk_matmul_multi(void *p, const qeil_bweight *const *w, int nw, const float *x,
                                   uint32_t n, float *const *y)
{
    vk_state *s = p;
    qeil_status st = QEIL_OK;
    for (int j = 0; j < nw && st == QEIL_OK; j++) {
        s->multi_next = j > 0;
        st = vk_matmul(p, w[j], x, n, y[j]);
    }
    s->multi_next = 0;
    return st;
}

/* One dispatch per chunk over all n ids; a thread whose row is in another
 * chunk writes nothing, so each y row is written once. */
static void vk_get_rows(void *p, const qeil_bweight *w, const uint32_t *ids, uint32_t n,
                        float *y, int accumulate)
{
    vk_state *s = p;
    uint32_t yo;
    size_t wo, rpc;
    const vk_buf *bw = weight_find(s, w, &wo, &rpc);
    const VkBuffer by = buf_find(s, y, &yo);
    if (!bw || !by || n == 0) return;
    for (uint32_t k = 0; k < bw->n_chunks; k++) {
        reserve(s, (size_t)n * 4);
        const size_t r0 = (size_t)k * rpc;
        struct {
            uint32_t type, n_cols, row_bytes, n, y_off, ids_off, accumulate, w_off, row0, rows;
        } pc = {(uint32_t)w->type, (uint32_t)w->n_cols, (uint32_t)w->row_bytes, n, yo / 4,
                meta_put(s, ids, (size_t)n * 4), accumulate ? 1u : 0u, (uint32_t)wo,
                (uint32_t)r0, (uint32_t)rpc};
        const VkBuffer b[3] = {bw->chunk[k].buf, by, s->meta.buf};
        s->no_barrier = k > 0 && s->recording;
        dispatch(s, SH_GET_ROWS, b, 3, &pc, sizeof pc, (uint32_t)((w->n_cols + WG - 1) / WG), n, 1);
        s->no_barrier = 0;
    }
}

static void eltwise(vk_state *s, uint32_t op, float *a, const float *b, size_t n, uint32_t d,
                    size_t stride)
{
    uint32_t ao, bo = 0;
    const VkBuffer ba = buf_find(s, a, &ao), bb = b ? buf_find(s, b, &bo) : ba;
    if (!ba || !bb || n == 0) return;
    struct {
        uint32_t op, n, a_off, b_off, d, stride;
    } pc = {op, (uint32_t)n, ao / 4, bo / 4, d, (uint32_t)stride};
    const VkBuffer bufs[2] = {ba, bb};
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
    const VkBuffer bx = buf_find(s, x, &xo), bw = buf_find(s, w, &wo),
                  bb = b ? buf_find(s, b, &bo) : bw, by = buf_find(s, y, &yo);
    if (!bx || !bw || !bb || !by || n_rows == 0) return;
    struct {
        uint32_t layer, has_b, d, x_off, w_off, b_off, y_off;
        float eps;
    } pc = {layer, b ? 1u : 0u, d, xo / 4, wo / 4, bo / 4, yo / 4, eps};
    const VkBuffer bufs[4] = {bx, bw, bb, by};
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
    const VkBuffer bx = buf_find(s, x, &xo), bc = buf_find(s, cs, &co), bs = buf_find(s, sn, &so);
    if (!bx || !bc || !bs || n_rows == 0 || n_rot < 2) return;
    reserve(s, (size_t)n_rows * sizeof *rows);
    struct {
        uint32_t x_off, stride, n_rows, n_heads, head_dim, n_rot, cs_off, sn_off, rows_off, neox;
    } pc = {xo / 4, (uint32_t)stride, n_rows, n_heads, head_dim, n_rot, co / 4, so / 4,
            meta_put(s, rows, (size_t)n_rows * sizeof *rows), neox ? 1u : 0u};
    const VkBuffer bufs[4] = {bx, bc, bs, s->meta.buf};
    uint32_t gx, gy;
    grid1((uint64_t)n_rows * n_heads * (n_rot / 2), &gx, &gy);
    dispatch(s, SH_ROPE, bufs, 4, &pc, sizeof pc, gx, gy, 1);
}

static void vk_kv_store(void *p, const qeil_bkv *kv, const float *k, const float *v,
                        size_t stride, uint32_t n_rows, const qeil_brow *rows)
{
    vk_state *s = p;
    uint32_t kco, vco, ko, vo;
    const VkBuffer bkc = buf_find(s, kv->k, &kco), bvc = buf_find(s, kv->v, &vco),
                  bk = buf_find(s, k, &ko), bv = buf_find(s, v, &vo);
    if (!bkc || !bvc || !bk || !bv || n_rows == 0) return;
    reserve(s, (size_t)n_rows * sizeof *rows);
    struct {
        uint32_t kc_off, vc_off, k_off, v_off, stride, n_rows, n_kv_heads, head_dim, n_ctx,
            rows_off;
    } pc = {kco / 4, vco / 4, ko / 4, vo / 4, (uint32_t)stride, n_rows, kv->n_kv_heads,
            kv->head_dim, kv->n_ctx, meta_put(s, rows, (size_t)n_rows * sizeof *rows)};
    const VkBuffer bufs[5] = {bkc, bvc, bk, bv, s->meta.buf};
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
    const VkBuffer bkc = buf_find(s, kv->k, &kco), bvc = buf_find(s, kv->v, &vco),
                  bq = buf_find(s, q, &qo), bo = buf_find(s, out, &oo);
    if (!bkc || !bvc || !bq || !bo || n_rows == 0) return;
    reserve(s, (size_t)n_rows * sizeof *rows);
    struct {
        uint32_t kc_off, vc_off, q_off, o_off, q_stride, n_heads, n_kv_heads, head_dim, n_ctx,
            rows_off;
        float scale;
    } pc = {kco / 4, vco / 4, qo / 4, oo / 4, (uint32_t)q_stride, n_heads, kv->n_kv_heads,
            kv->head_dim, kv->n_ctx, meta_put(s, rows, (size_t)n_rows * sizeof *rows), scale};
    const VkBuffer bufs[5] = {bkc, bvc, bq, bo, s->meta.buf};
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
    const VkBuffer bs = buf_find(s, kv->conv, &so), bx = buf_find(s, bcx, &xo),
                  bw = buf_find(s, w, &wo), by = buf_find(s, y, &yo);
    if (!bs || !bx || !bw || !by || n_rows == 0) return;
    const size_t rows_B = (size_t)n_rows * sizeof *rows, r0_B = (size_t)n_rows * sizeof(uint32_t);
    for (uint32_t phase = 0; phase < 2; phase++) {
        reserve(s, rows_B + 16 + r0_B);
        const uint32_t rows_off = meta_put(s, rows, rows_B);
        uint32_t *r0 = (uint32_t *)(void *)(s->meta.map + s->meta_used);
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
        const VkBuffer bufs[5] = {bs, bx, bw, by, s->meta.buf};
        uint32_t gx, gy;
        grid1((uint64_t)n_rows * kv->conv_d, &gx, &gy);
        dispatch(s, SH_SHORTCONV, bufs, 5, &pc, sizeof pc, gx, gy, 1);
    }
}

/* Submit, wait, and read back the timer marks recorded since the last
 * sync (every submit of them has completed: each one waited its fence). */
static qeil_status vk_sync(void *p, double timeout_s)
{
    vk_state *s = p;
    const double ns = timeout_s * 1e9;
    flush_wait(s, ns > 0 && ns < 1.8e19 ? (uint64_t)ns : UINT64_MAX);
    const uint32_t n = s->n_marks;
    s->n_marks = 0;
    s->n_ticks = 0;
    if (s->err != QEIL_OK || n == 0) return s->err;
    VkResult r = s->api.GetQueryPoolResults(s->dev, s->qpool, 0, n, sizeof s->ticks, s->ticks,
                                            sizeof s->ticks[0], VK_QUERY_RESULT_64_BIT);
    if (r == VK_SUCCESS) s->n_ticks = n; /* else the times are unknown, the work is done */
    return QEIL_OK;
}

/* A timestamp after every command recorded so far (query n_marks, reset
 * just before it in the same command buffer). */
static int vk_timer_mark(void *p)
{
    vk_state *s = p;
    if (!s->qpool || s->n_marks >= QEIL_BACKEND_MAX_MARKS || s->err != QEIL_OK) return 0;
    if (!record_begin(s)) return 0;
    s->n_cmds--; /* not a command that later ones must wait for */
    s->api.CmdResetQueryPool(s->cmd.cb, s->qpool, s->n_marks, 1);
    s->api.CmdWriteTimestamp(s->cmd.cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->qpool, s->n_marks);
    s->n_marks++;
    return 1;
}

static int vk_timer_read(void *p, double *dt_s, uint32_t n_marks)
{
    const vk_state *s = p;
    if (n_marks == 0 || n_marks != s->n_ticks) return 0;
    for (uint32_t i = 0; i + 1 < n_marks; i++)
        dt_s[i] = (double)((s->ticks[i + 1] - s->ticks[i]) & s->ts_mask) * s->ts_period_ns * 1e-9;
    return 1;
}

static uint64_t vk_submits(const void *p) { return ((const vk_state *)p)->n_submits; }

static uint32_t vk_inst_caps(const void *p) { return ((const vk_state *)p)->caps; }

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
    .matmul_multi = vk_matmul_multi,
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
    .timer_mark = vk_timer_mark,
    .timer_read = vk_timer_read,
    .submits = vk_submits,
    .inst_caps = vk_inst_caps,
    .scale = vk_scale,
    .shortconv = vk_shortconv,
};
