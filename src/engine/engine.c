/*
 * engine.c — open a GGUF model for inference: hyperparameters, tensor
 * binding with full shape/type checks, backend instances and placement,
 * KV cache and scratch (all allocated here, never during evaluation),
 * evaluation in chunks of n_batch tokens, sequence management, memory and
 * per-unit time accounting. The per-unit math is in forward.c; the ops in
 * the backend (backend.h). Design and conventions: docs/engine.md.
 */
#include "qeil/engine.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/fault/fault.h"
#include "engine/cpu_devices.h"
#include "engine/backend.h"
#include "engine/forward.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "core/util.h"

/* ------------------------------------------------------------------------ */
/* Limits and backend registry                                               */
/* ------------------------------------------------------------------------ */

#define ENGINE_MAX_CTX (1u << 20)              /* KV positions per sequence */
#define ENGINE_MAX_BATCH QEIL_MATMUL_MAX_VEC   /* rows per matmul call */
#define ENGINE_LOGIT_SCRATCH_B (16u << 20)     /* logits buffer: ~16 MiB of rows */
#define UNIT_MAX_TENSORS 24
#define ENGINE_MAX_BACKENDS QEIL_ENGINE_MAX_DEVICES
#define ALT_NONE 0xFFu

static const qeil_backend *const k_backends[] = {&qeil_backend_cpu, &qeil_backend_vulkan,
                                                  &qeil_backend_cpu1};
/* what placements and faults call them (placement.c parses these) */
static const char *const k_device_names[] = {"cpu", "vk0", "cpu1"};
_Static_assert(sizeof k_device_names / sizeof k_device_names[0] ==
                   sizeof k_backends / sizeof k_backends[0],
               "one device name per backend");
#define N_FIXED (sizeof k_backends / sizeof k_backends[0])
/* then the CPU devices bound to core clusters, "cpu-NAME" (cpu_devices.h):
 * ids N_FIXED.., as many as the machine (or QEIL_CPU_CLUSTERS) has now;
 * N_BACKENDS counts every slot */
#define N_BACKENDS (N_FIXED + QEIL_CPU_DEVS_MAX)
_Static_assert(N_FIXED == QEIL_CPU_DEVS_FIRST, "cluster devices follow the fixed ones");
_Static_assert(N_BACKENDS <= ENGINE_MAX_BACKENDS, "backend table fits the engine's instance slots");

static size_t n_devices(void) { return N_FIXED + (size_t)qeil_cpu_devs_count(); }

size_t qeil_backend_count(void) { return n_devices(); }

const qeil_backend *qeil_backend_get(size_t id)
{
    return id < N_FIXED ? k_backends[id] : id < n_devices() ? &qeil_backend_cpu : NULL;
}

size_t qeil_engine_n_backends(void) { return n_devices(); }

const char *qeil_engine_backend_name(size_t id)
{
    const qeil_backend *be = qeil_backend_get(id);
    return be ? be->props.name : NULL;
}

const char *qeil_engine_device_name(size_t id)
{
    return id < N_FIXED ? k_device_names[id] : qeil_cpu_devs_name((int)(id - N_FIXED));
}

/* For messages: the name of a device id, "?" where none (a cluster device
 * that the override no longer has). */
static const char *dev_name(size_t id)
{
    const char *n = qeil_engine_device_name(id);
    return n ? n : "?";
}

/* ------------------------------------------------------------------------ */
/* Engine state                                                              */
/* ------------------------------------------------------------------------ */

/* One instance per backend that runs at least one unit. */
typedef struct {
    const qeil_backend *be;   /* NULL: not created */
    void *st;
    qeil_fwd_scratch s;
    void *bufs[12];           /* backend allocations behind s */
    size_t n_bufs, buf_B;
    fault_wrap *fw;           /* non-NULL: be/st are the fault wrapper over inner_be */
    const qeil_backend *inner_be;
    int failed;               /* a device failure was detected: runs no unit any more */
    uint64_t n_syncs;         /* honest waits so far, and the slowest per unit (s): */
    double slow_s;            /* the watchdog's bound follows a slow device (check_inst) */
    uint64_t submit_base;     /* be->submits at the last transfer_stats reset */
} bk_inst;

/* The units recorded on one device since its last sync (run_units): the
 * engine syncs a device that times its units with timestamps
 * (be->timer_mark) only where it reads results, so a run of consecutive
 * units on it is one submit. At most one run is open: a device boundary
 * closes it. */
typedef struct {
    uint8_t id;                      /* its device */
    uint32_t n;                      /* units ended in it */
    uint32_t u0;                     /* the first; the others follow it */
    uint32_t n_marks;                /* timer marks recorded: n + 1 (0: no run open) */
    double t0;                       /* host clock at the first unit's start */
    double t_unit[QEIL_MAX_WUNITS];  /* host clock at each unit's start */
    uint64_t op0[QEIL_MAX_WUNITS];   /* fault wrapper's op count at each unit's start */
} unit_run;

/* The tensors of one unit and where their backend view goes. */
typedef struct {
    uint32_t n;
    const qeil_gguf_tensor *src[UNIT_MAX_TENSORS];
    qeil_bweight *dst[UNIT_MAX_TENSORS];
    uint8_t param[UNIT_MAX_TENSORS]; /* read in place as f32 (norms, biases, conv kernels) */
} unit_bind;

struct qeil_engine {
    qeil_ctx *ctx;
    qeil_gguf *g;
    qeil_tokenizer *tok;
    qeil_model_desc desc;
    qeil_fwd_hparams hp;
    uint32_t n_units;
    int n_threads;

    qeil_fwd_embd embd;
    qeil_fwd_layer *layers; /* [n_layers] */
    qeil_fwd_head head;
    unit_bind *bind;        /* [n_units] */
    qeil_bkv *kv;           /* [n_layers], each on its layer's backend */
    uint8_t place[QEIL_MAX_WUNITS];
    bk_inst inst[ENGINE_MAX_BACKENDS];

    /* RoPE: inverse frequency per rotated pair, and the host tables
     * cos/sin[pos][n_rot/2] copied into every instance */
    double *inv_freq;
    float *rope_cos, *rope_sin;
    double rope_base;       /* <arch>.rope.freq_base */
    double rope_pos_scale;  /* linear scaling: positions * 1/factor */

    uint32_t *seq_len;      /* [n_seq] */
    qeil_brow *rows;        /* host scratch [n_batch] */
    uint32_t *tok_ids, *pos_ids;
    float *stage;           /* [n_batch * d_model]: x between backends, KV moves */
    size_t host_scratch_B, weights_B;
    int tied; /* the head multiplies by token_embd.weight (no output.weight) */

    double unit_t[QEIL_MAX_WUNITS];
    unit_run run;           /* the open run of units (run_units) */
    double run_dt[QEIL_BACKEND_MAX_MARKS]; /* its timer intervals */

    /* prefill and decode maps (qeil_engine_set_placements); `place` is
     * the map of `phase`. A unit whose maps differ (alt_dev[u] != ALT_NONE)
     * has the other phase's weights and KV ready on alt_dev[u]; a phase
     * switch swaps them with the active ones after moving the KV rows
     * written since the last switch (rows 0..sync_len[seq] are equal in
     * both copies; the active copy always holds them all). */
    uint8_t place_pf[QEIL_MAX_WUNITS], place_dc[QEIL_MAX_WUNITS];
    int phase;
    uint8_t alt_dev[QEIL_MAX_WUNITS];
    qeil_bweight (*alt_w)[UNIT_MAX_TENSORS]; /* [n_units] */
    qeil_bkv *alt_kv;                        /* [n_layers] */
    uint32_t *sync_len;                      /* [n_seq] */
    qeil_engine_transfers xs;

    /* reliability */
    double watchdog_s;      /* sync bound per row of a step */
    float *kv_host;         /* NULL, or the host copy of every block's KV:
                               [n_layers][k, v][kv_layer_floats], committed rows */
    float *conv_stage;      /* with kv_host and conv blocks: [n_layers][conv_layer_floats],
                               the step's conv states, committed to kv_host only once
                               the step's final check passed (a state rolls forward:
                               committing a failed step's would advance it twice) */
    int has_fail;
    qeil_engine_failure last_fail;
};

/* a * b * c with overflow check; 0 on overflow */
static size_t mul3(size_t a, size_t b, size_t c)
{
    if (a && b > SIZE_MAX / a) return 0;
    size_t ab = a * b;
    if (ab && c > SIZE_MAX / ab) return 0;
    return ab * c;
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                                */
/* ------------------------------------------------------------------------ */

qeil_engine_params qeil_engine_default_params(void)
{
    qeil_engine_params p;
    memset(&p, 0, sizeof p);
    p.n_threads = 0;
    p.n_ctx = 0;
    p.n_seq = 1;
    p.n_batch = 512;
    p.watchdog_s = 0.25;
    p.kv_host_copy = 0;
    return p;
}

static qeil_status check_params(qeil_ctx *ctx, const qeil_engine_params *p)
{
    if (p->n_threads < 0 || p->n_threads > QEIL_ENGINE_MAX_THREADS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "n_threads: %d (allowed 0 = online CPUs, 1..%d)",
                             p->n_threads, QEIL_ENGINE_MAX_THREADS);
    if (p->n_seq < 1 || p->n_seq > QEIL_ENGINE_MAX_SEQ)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "n_seq: %u (allowed 1..%d)", p->n_seq,
                             QEIL_ENGINE_MAX_SEQ);
    if (p->n_batch < 1 || p->n_batch > ENGINE_MAX_BATCH)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "n_batch: %u (allowed 1..%d)", p->n_batch,
                             ENGINE_MAX_BATCH);
    if (!(p->watchdog_s > 0 && p->watchdog_s <= 3600))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "watchdog_s: %g (allowed (0, 3600] s)",
                             p->watchdog_s);
    if (p->kv_host_copy != 0 && p->kv_host_copy != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "kv_host_copy: %d (allowed 0, 1)", p->kv_host_copy);
    if (p->n_ctx > ENGINE_MAX_CTX)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "n_ctx: %u (allowed 0 = model default, 1..%u)",
                             p->n_ctx, ENGINE_MAX_CTX);
    return QEIL_OK;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > QEIL_ENGINE_MAX_THREADS ? QEIL_ENGINE_MAX_THREADS : (int)n;
}

/* ------------------------------------------------------------------------ */
/* Hyperparameters from metadata                                             */
/* ------------------------------------------------------------------------ */

static int has_key(const qeil_gguf *g, const char *key) { return qeil_gguf_find_key(g, key) >= 0; }

/* lfm2: block l is a short convolution (no K/V) */
static int layer_is_conv(const qeil_engine *e, uint32_t l)
{
    return e->desc.layer_kind[l] == QEIL_LAYER_CONV;
}

/* Optional float key in [lo, hi] (finite); *out keeps dflt when absent. */
static qeil_status get_f64(qeil_ctx *ctx, const qeil_gguf *g, const char *key, int required,
                           double lo, double hi, double dflt, double *out)
{
    *out = dflt;
    if (!has_key(g, key)) {
        if (required) return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: required key '%s' is missing", key);
        return QEIL_OK;
    }
    double v;
    qeil_status st = qeil_gguf_get_f64(ctx, g, key, &v);
    if (st != QEIL_OK) return st;
    if (!(v >= lo && v <= hi))
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: %s = %g (allowed %g..%g)", key, v, lo, hi);
    *out = v;
    return QEIL_OK;
}

static qeil_status get_u32(qeil_ctx *ctx, const qeil_gguf *g, const char *key, uint32_t lo,
                           uint32_t hi, uint32_t dflt, uint32_t *out)
{
    *out = dflt;
    if (!has_key(g, key)) return QEIL_OK;
    uint64_t v;
    qeil_status st = qeil_gguf_get_u64(ctx, g, key, &v);
    if (st != QEIL_OK) return st;
    if (v < lo || v > hi)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: %s = %llu (allowed %u..%u)", key,
                             (unsigned long long)v, lo, hi);
    *out = (uint32_t)v;
    return QEIL_OK;
}

/* The Llama 3 frequency adjustment (Meta's reference, llama-models
 * `apply_scaling`): wavelengths shorter than L/high keep their frequency,
 * longer than L/low are divided by `factor`, in between blend linearly in
 * L/wavelength. L = original_context_length. */
static double llama3_scale(double freq, double factor, double low, double high, double L)
{
    const double two_pi = 6.283185307179586476925;
    const double wavelen = two_pi / freq;
    if (wavelen < L / high) return freq;
    if (wavelen > L / low) return freq / factor;
    const double smooth = (L / wavelen - low) / (high - low);
    return (1.0 - smooth) * freq / factor + smooth * freq;
}

/* Granite's multipliers and lfm2's conv kernel (defaults for the others).
 * Granite (llama.cpp src/models/granite.cpp load_arch_hparams): logit_scale
 * required; residual_scale, embedding_scale, attention.scale optional (0
 * or absent: no multiplier, 1/sqrt(head_dim) for the scores);
 * rope.scaling.finetuned false turns RoPE off (Granite 4.0 hybrids). */
static qeil_status read_arch_extras(qeil_engine *e)
{
    qeil_ctx *ctx = e->ctx;
    const qeil_gguf *g = e->g;
    qeil_fwd_hparams *hp = &e->hp;
    hp->emb_scale = hp->res_scale = hp->logit_scale = 1.0f;
    hp->attn_scale = (float)(1.0 / sqrt((double)hp->head_dim));
    hp->conv_L = 0;
    if (hp->arch == QEIL_ARCH_LFM2) {
        hp->conv_L = e->desc.conv_L; /* checked by qeil_model_from_gguf */
        return QEIL_OK;
    }
    if (hp->arch != QEIL_ARCH_GRANITE) return QEIL_OK;
    /* a multiplier of 0 is "not set" to llama.cpp; the ranges keep every
     * product finite in f32 */
    double v;
    qeil_status st;
    if ((st = get_f64(ctx, g, "granite.logit_scale", 1, 1e-6, 1e6, 1.0, &v)) != QEIL_OK) return st;
    hp->logit_scale = (float)v;
    if ((st = get_f64(ctx, g, "granite.residual_scale", 0, 0.0, 1e6, 0.0, &v)) != QEIL_OK) return st;
    if (v != 0.0) hp->res_scale = (float)v;
    if ((st = get_f64(ctx, g, "granite.embedding_scale", 0, 0.0, 1e6, 0.0, &v)) != QEIL_OK) return st;
    if (v != 0.0) hp->emb_scale = (float)v;
    if ((st = get_f64(ctx, g, "granite.attention.scale", 0, 0.0, 1e6, 0.0, &v)) != QEIL_OK) return st;
    if (v != 0.0) hp->attn_scale = (float)v;
    const char *fk = "granite.rope.scaling.finetuned";
    if (has_key(g, fk)) {
        int b = 1;
        if ((st = qeil_gguf_get_bool(ctx, g, fk, &b)) != QEIL_OK) return st;
        if (!b) hp->rope = QEIL_ROPE_NONE;
    }
    return QEIL_OK;
}

static qeil_status read_hparams(qeil_engine *e, const qeil_engine_params *p)
{
    qeil_ctx *ctx = e->ctx;
    const qeil_gguf *g = e->g;
    const qeil_model_desc *md = &e->desc;
    qeil_fwd_hparams *hp = &e->hp;
    const char *arch = qeil_arch_name(md->arch);
    char key[160];

    hp->arch = md->arch;
    hp->n_layers = md->n_layers;
    hp->d_model = md->d_model;
    hp->n_heads = md->n_heads;
    hp->n_kv_heads = md->n_kv_heads;
    hp->head_dim = md->head_dim;
    hp->d_ff = md->d_ff;
    hp->vocab = md->vocab;
    if (hp->n_kv_heads < 1 || hp->n_heads % hp->n_kv_heads != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "gguf: %s.attention.head_count_kv %u does not divide head_count %u",
                             arch, hp->n_kv_heads, hp->n_heads);
    hp->q_dim = hp->n_heads * hp->head_dim;
    hp->kv_dim = hp->n_kv_heads * hp->head_dim;
    hp->n_seq = p->n_seq;
    hp->n_batch = p->n_batch;
    hp->n_ctx = p->n_ctx ? p->n_ctx : (md->ctx_max < 4096 ? md->ctx_max : 4096);

    double eps;
    qeil_status st;
    switch (md->arch) {
    case QEIL_ARCH_GPT2:
        hp->norm = QEIL_NORM_LAYER;
        hp->ffn = QEIL_FFN_GELU;
        hp->rope = QEIL_ROPE_NONE;
        snprintf(key, sizeof key, "%s.attention.layer_norm_epsilon", arch);
        break;
    case QEIL_ARCH_QWEN2:
    case QEIL_ARCH_LLAMA:
    case QEIL_ARCH_GRANITE:
    case QEIL_ARCH_LFM2:
    default:
        hp->norm = QEIL_NORM_RMS;
        hp->ffn = QEIL_FFN_SWIGLU;
        /* llama.cpp llama_model_rope_type: qwen2 and lfm2 NEOX (their
         * converters keep HF's q/k layout), llama and granite NORM (LlamaModel
         * permutes q/k) */
        hp->rope = md->arch == QEIL_ARCH_QWEN2 || md->arch == QEIL_ARCH_LFM2 ? QEIL_ROPE_NEOX
                                                                             : QEIL_ROPE_NORMAL;
        snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
        break;
    }
    if ((st = get_f64(ctx, g, key, 1, 1e-12, 1.0, 0.0, &eps)) != QEIL_OK) return st;
    hp->norm_eps = (float)eps;
    if ((st = read_arch_extras(e)) != QEIL_OK) return st;
    if (hp->rope == QEIL_ROPE_NONE) return QEIL_OK;

    /* RoPE: rotated dims, base, scaling */
    snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
    if ((st = get_u32(ctx, g, key, 2, hp->head_dim, hp->head_dim, &hp->n_rot)) != QEIL_OK) return st;
    if (hp->n_rot % 2 != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: %s = %u is odd (RoPE rotates pairs)", key,
                             hp->n_rot);
    double base;
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if ((st = get_f64(ctx, g, key, 0, 1.0, 1e12, 10000.0, &base)) != QEIL_OK) return st;

    const uint32_t half = hp->n_rot / 2;
    e->inv_freq = qeil_calloc(ctx, half, sizeof *e->inv_freq);
    if (!e->inv_freq) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "engine: out of memory");
    for (uint32_t i = 0; i < half; i++)
        e->inv_freq[i] = pow(base, -(2.0 * (double)i) / (double)hp->n_rot);
    e->rope_pos_scale = 1.0;
    e->rope_base = base;

    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *stype = qeil_gguf_get_str(g, key);
    if (has_key(g, key) && !stype)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: %s is not a string", key);
    if (!stype || strcmp(stype, "none") == 0) return QEIL_OK;
    /* the type first: an unknown type is unsupported whatever keys follow */
    if (strcmp(stype, "linear") != 0 && strcmp(stype, "llama3") != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "gguf: %s.rope.scaling.type '%.40s' is not supported (supported: none, "
                             "linear, llama3)",
                             arch, stype);
    double factor;
    snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
    if ((st = get_f64(ctx, g, key, 1, 1e-6, 1e6, 1.0, &factor)) != QEIL_OK) return st;
    if (strcmp(stype, "linear") == 0) {
        e->rope_pos_scale = 1.0 / factor;
    } else { /* llama3 */
        double low, high, L;
        snprintf(key, sizeof key, "%s.rope.scaling.low_freq_factor", arch);
        if ((st = get_f64(ctx, g, key, 1, 1e-6, 1e6, 1.0, &low)) != QEIL_OK) return st;
        snprintf(key, sizeof key, "%s.rope.scaling.high_freq_factor", arch);
        if ((st = get_f64(ctx, g, key, 1, 1e-6, 1e6, 4.0, &high)) != QEIL_OK) return st;
        if (!(high > low))
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                 "gguf: %s = %g must exceed low_freq_factor %g", key, high, low);
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", arch);
        if ((st = get_f64(ctx, g, key, 1, 1.0, 1e9, 8192.0, &L)) != QEIL_OK) return st;
        for (uint32_t i = 0; i < half; i++)
            e->inv_freq[i] = llama3_scale(e->inv_freq[i], factor, low, high, L);
    }
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Tensor binding: every shape and type checked, errors name the tensor      */
/* ------------------------------------------------------------------------ */

static const char *type_name(int type, char buf[24])
{
    const char *n = qeil_ggml_type_name(type);
    if (n) return n;
    snprintf(buf, 24, "type %d", type);
    return buf;
}

static void shape_str(const qeil_gguf_tensor *t, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < t->n_dims && k < cap; i++) {
        int w = snprintf(buf + k, cap - k, "%s%llu", i ? ", " : "[", (unsigned long long)t->ne[i]);
        if (w < 0) break;
        k += (size_t)w;
    }
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* Find `name`, check it has n_dims dims equal to ne (ne[1] == 0: any rows
 * >= 1, checked by the caller), and a type usable as a matrix (vector == 0)
 * or a 1-D parameter (vector == 1), or an f32 matrix read in place like a
 * parameter (vector == 2: lfm2's conv kernels, which every converter and
 * quantizer leaves f32). Absent and optional: *out = NULL. */
static qeil_status find_checked(qeil_engine *e, const char *name, int required, int vector,
                                uint64_t ne0, uint64_t ne1, const qeil_gguf_tensor **out)
{
    qeil_ctx *ctx = e->ctx;
    *out = NULL;
    int64_t i = qeil_gguf_find_tensor(e->g, name);
    if (i < 0) {
        if (!required) return QEIL_OK;
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "tensor '%s' is missing (required by %s)", name,
                             qeil_arch_name(e->hp.arch));
    }
    const qeil_gguf_tensor *t = qeil_gguf_tensor_at(e->g, (size_t)i);
    char found[96], tb[24];
    shape_str(t, found, sizeof found);
    int shape_ok = vector == 1 ? (t->n_dims == 1 && t->ne[0] == ne0)
                               : (t->n_dims == 2 && t->ne[0] == ne0 && (ne1 == 0 || t->ne[1] == ne1));
    if (!shape_ok) {
        if (vector == 1)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "tensor '%s': shape %s, expected [%llu]", name,
                                 found, (unsigned long long)ne0);
        if (ne1)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "tensor '%s': shape %s, expected [%llu, %llu]",
                                 name, found, (unsigned long long)ne0, (unsigned long long)ne1);
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "tensor '%s': shape %s, expected [%llu, rows]",
                             name, found, (unsigned long long)ne0);
    }
    if (vector) {
        if (t->type != QEIL_GGML_F32)
            return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                                 "tensor '%s': type %s is not supported for %s (supported: f32)",
                                 name, type_name(t->type, tb),
                                 vector == 2 ? "convolution kernels" : "norms and biases");
        /* read in place as float: the file's alignment must allow it */
        if (((uintptr_t)qeil_gguf_tensor_data(e->g, t)) % sizeof(float) != 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                                 "tensor '%s': data is not 4-byte aligned (general.alignment %u)",
                                 name, qeil_gguf_alignment(e->g));
    } else {
        const qeil_quant_traits *q = qeil_quant_traits_of(t->type);
        if (!q || !q->vec_dot)
            return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                                 "tensor '%s': type %s is not supported (supported: f32, f16, bf16, "
                                 "q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, iq4_xs, q4_k, q5_k, q6_k)",
                                 name, type_name(t->type, tb));
        if (t->ne[0] % q->blck_elems != 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                 "tensor '%s': rows of %llu elements are not a multiple of the %s "
                                 "block (%u)",
                                 name, (unsigned long long)t->ne[0], q->name, q->blck_elems);
    }
    *out = t;
    return QEIL_OK;
}

/* Bind `name` to *dst as part of unit u. */
static qeil_status bind(qeil_engine *e, uint32_t u, const char *name, int required, int vector,
                        uint64_t ne0, uint64_t ne1, qeil_bweight *dst)
{
    const qeil_gguf_tensor *t;
    qeil_status st = find_checked(e, name, required, vector, ne0, ne1, &t);
    if (st != QEIL_OK || !t) return st;
    unit_bind *b = &e->bind[u];
    if (b->n >= UNIT_MAX_TENSORS)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_INTERNAL, "engine: unit %u binds too many tensors", u);
    b->src[b->n] = t;
    b->dst[b->n] = dst;
    b->param[b->n] = vector != 0;
    b->n++;
    e->weights_B += (size_t)t->nbytes;
    return QEIL_OK;
}

static qeil_status bind_tensors(qeil_engine *e)
{
    const qeil_fwd_hparams *hp = &e->hp;
    const uint64_t d = hp->d_model, qd = hp->q_dim, kvd = hp->kv_dim, ff = hp->d_ff, V = hp->vocab;
    const int gpt2 = hp->arch == QEIL_ARCH_GPT2, qwen2 = hp->arch == QEIL_ARCH_QWEN2,
              lfm2 = hp->arch == QEIL_ARCH_LFM2;
    const uint32_t head = e->n_units - 1;
    qeil_status st;
    char nm[96];

    /* ---- unit 0: embeddings ---- */
    if ((st = bind(e, 0, "token_embd.weight", 1, 0, d, V, &e->embd.tok_embd)) != QEIL_OK) return st;
    if (gpt2) {
        const qeil_gguf_tensor *pt;
        if ((st = find_checked(e, "position_embd.weight", 1, 0, d, 0, &pt)) != QEIL_OK) return st;
        if (pt->ne[1] < hp->n_ctx)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE,
                                 "n_ctx: %u exceeds the %llu learned positions of "
                                 "'position_embd.weight' (gpt2 cannot go beyond them)",
                                 hp->n_ctx, (unsigned long long)pt->ne[1]);
        if ((st = bind(e, 0, "position_embd.weight", 1, 0, d, pt->ne[1], &e->embd.pos_embd)) != QEIL_OK)
            return st;
    }

    /* ---- blocks ---- */
    for (uint32_t l = 0; l < hp->n_layers; l++) {
        qeil_fwd_layer *L = &e->layers[l];
        const uint32_t u = l + 1;
#define B(suffix, req, vecp, n0, n1, field)                                         \
    do {                                                                            \
        snprintf(nm, sizeof nm, "blk.%u." suffix, l);                              \
        if ((st = bind(e, u, nm, (req), (vecp), (n0), (n1), &L->field)) != QEIL_OK) \
            return st;                                                              \
    } while (0)
        B("attn_norm.weight", 1, 1, d, 1, attn_norm);
        B("attn_norm.bias", gpt2, 1, d, 1, attn_norm_b);
        if (layer_is_conv(e, l)) {
            /* lfm2 short convolution (llama-model.cpp LLM_ARCH_LFM2) */
            B("shortconv.conv.weight", 1, 2, hp->conv_L, d, conv_w);
            B("shortconv.in_proj.weight", 1, 0, d, 3 * d, conv_in);
            B("shortconv.out_proj.weight", 1, 0, d, d, conv_out);
        } else if (gpt2) {
            B("attn_qkv.weight", 1, 0, d, qd + 2 * kvd, wqkv);
            B("attn_qkv.bias", 1, 1, qd + 2 * kvd, 1, bqkv);
        } else {
            B("attn_q.weight", 1, 0, d, qd, wq);
            B("attn_k.weight", 1, 0, d, kvd, wk);
            B("attn_v.weight", 1, 0, d, kvd, wv);
            B("attn_q.bias", qwen2, 1, qd, 1, bq);
            B("attn_k.bias", qwen2, 1, kvd, 1, bk);
            B("attn_v.bias", qwen2, 1, kvd, 1, bv);
            if (lfm2) {
                B("attn_q_norm.weight", 1, 1, hp->head_dim, 1, q_norm);
                B("attn_k_norm.weight", 1, 1, hp->head_dim, 1, k_norm);
            }
        }
        if (!layer_is_conv(e, l)) {
            B("attn_output.weight", 1, 0, qd, d, wo);
            B("attn_output.bias", gpt2, 1, d, 1, bo);
        }
        B("ffn_norm.weight", 1, 1, d, 1, ffn_norm);
        B("ffn_norm.bias", gpt2, 1, d, 1, ffn_norm_b);
        if (!gpt2) B("ffn_gate.weight", 1, 0, d, ff, gate);
        B("ffn_up.weight", 1, 0, d, ff, up);
        B("ffn_down.weight", 1, 0, ff, d, down);
        if (gpt2) {
            B("ffn_up.bias", 1, 1, ff, 1, bup);
            B("ffn_down.bias", 1, 1, d, 1, bdown);
        }
#undef B
    }

    /* ---- head ---- */
    /* lfm2's final norm is token_embd_norm (llama-arch.cpp LLM_TENSOR_OUTPUT_NORM_LFM2) */
    if ((st = bind(e, head, lfm2 ? "token_embd_norm.weight" : "output_norm.weight", 1, 1, d, 1,
                   &e->head.norm)) != QEIL_OK)
        return st;
    if ((st = bind(e, head, "output_norm.bias", gpt2, 1, d, 1, &e->head.norm_b)) != QEIL_OK) return st;
    if (qeil_gguf_find_tensor(e->g, "output.weight") >= 0) {
        if ((st = bind(e, head, "output.weight", 1, 0, d, V, &e->head.out)) != QEIL_OK) return st;
    } else {
        /* tied: the head multiplies by the embedding table (counted once) */
        size_t before = e->weights_B;
        if ((st = bind(e, head, "token_embd.weight", 1, 0, d, V, &e->head.out)) != QEIL_OK) return st;
        e->weights_B = before;
        e->tied = 1;
    }

    /* ---- RoPE frequency factors (llama.cpp's rope_freqs.weight) ---- */
    if (hp->rope != QEIL_ROPE_NONE) {
        const qeil_gguf_tensor *rf;
        if ((st = find_checked(e, "rope_freqs.weight", 0, 1, hp->n_rot / 2, 1, &rf)) != QEIL_OK)
            return st;
        if (rf) {
            /* theta_i = pos * base^(-2i/n_rot) / factor_i: the file's factors
             * replace any scaling computed from metadata */
            const uint8_t *p = qeil_gguf_tensor_data(e->g, rf);
            for (uint32_t i = 0; i < hp->n_rot / 2; i++) {
                float f;
                memcpy(&f, p + 4 * (size_t)i, sizeof f);
                if (!(f > 0.0f) || !isfinite(f))
                    return qeil_ctx_fail(e->ctx, QEIL_ERR_FORMAT,
                                         "tensor 'rope_freqs.weight': element %u = %g (allowed > 0)",
                                         i, (double)f);
                e->inv_freq[i] = pow(e->rope_base, -(2.0 * (double)i) / (double)hp->n_rot) /
                                 (double)f;
            }
            e->weights_B += (size_t)rf->nbytes;
        }
    }
    return QEIL_OK;
}

/* cos/sin tables [pos][n_rot/2] on the host, from inv_freq */
static qeil_status build_rope_tables(qeil_engine *e)
{
    const qeil_fwd_hparams *hp = &e->hp;
    if (hp->rope == QEIL_ROPE_NONE) return QEIL_OK;
    const size_t half = hp->n_rot / 2, n = mul3(hp->n_ctx, half, sizeof(float));
    e->rope_cos = n ? qeil_malloc(e->ctx, n) : NULL;
    e->rope_sin = n ? qeil_malloc(e->ctx, n) : NULL;
    if (!e->rope_cos || !e->rope_sin)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_NOMEM, "engine: out of memory for RoPE tables (n_ctx %u)",
                             hp->n_ctx);
    for (uint32_t p = 0; p < hp->n_ctx; p++) {
        const double pos = (double)p * e->rope_pos_scale;
        for (size_t i = 0; i < half; i++) {
            const double a = pos * e->inv_freq[i];
            e->rope_cos[p * half + i] = (float)cos(a);
            e->rope_sin[p * half + i] = (float)sin(a);
        }
    }
    e->host_scratch_B += 2 * n;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Backend instances, weights and KV on them                                 */
/* ------------------------------------------------------------------------ */

static void *inst_buf(qeil_engine *e, bk_inst *I, size_t n_floats, int *ok)
{
    if (!*ok) return NULL;
    size_t bytes = mul3(n_floats, sizeof(float), 1);
    if (n_floats && !bytes) {
        *ok = 0;
        qeil_ctx_fail(e->ctx, QEIL_ERR_NOMEM, "engine: scratch size overflows");
        return NULL;
    }
    void *b = I->be->alloc(I->st, bytes);
    if (!b) {
        *ok = 0;
        return NULL;
    }
    I->bufs[I->n_bufs++] = b;
    I->buf_B += bytes;
    return b;
}

static void inst_destroy(bk_inst *I)
{
    if (!I->be) return;
    for (size_t i = 0; i < I->n_bufs; i++) I->be->release(I->st, I->bufs[i]);
    I->be->destroy(I->st);
    memset(I, 0, sizeof *I);
}

static qeil_status inst_create(qeil_engine *e, uint8_t id)
{
    bk_inst *I = &e->inst[id];
    if (I->be) return QEIL_OK;
    const qeil_fwd_hparams *hp = &e->hp;
    const qeil_backend *be = qeil_backend_get(id);
    qeil_backend_config cfg = {.ctx = e->ctx, .n_threads = e->n_threads, .max_rows = hp->n_batch,
                               .max_ctx = hp->n_ctx};
    int cpus[QEIL_PROBE_MAX_THREADS];
    if (id >= N_FIXED) { /* a core cluster: its CPUs, at most one thread each */
        const int n = qeil_cpu_devs_cpus((int)(id - N_FIXED), cpus, QEIL_PROBE_MAX_THREADS);
        if (!be || n < 1)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_NOTFOUND,
                                 "device id %u: no such CPU cluster now (QEIL_CPU_CLUSTERS changed?)",
                                 (unsigned)id);
        cfg.cpus = cpus;
        cfg.n_cpus = n < QEIL_PROBE_MAX_THREADS ? n : QEIL_PROBE_MAX_THREADS;
        if (cfg.n_threads > cfg.n_cpus) cfg.n_threads = cfg.n_cpus;
    }
    qeil_status st = be->create(&cfg, &I->st);
    if (st != QEIL_OK) return st;
    I->be = be;
    const size_t B = hp->n_batch;
    uint32_t lr = (uint32_t)(ENGINE_LOGIT_SCRATCH_B / ((size_t)hp->vocab * sizeof(float)));
    if (lr < 1) lr = 1;
    if (lr > hp->n_batch) lr = hp->n_batch;
    int ok = 1;
    qeil_fwd_scratch *s = &I->s;
    s->x = inst_buf(e, I, B * hp->d_model, &ok);
    s->xn = inst_buf(e, I, B * hp->d_model, &ok);
    /* q | k | v rows, or lfm2's B | C | x rows of 3 d_model */
    size_t qw = (size_t)hp->q_dim + 2 * (size_t)hp->kv_dim;
    if (hp->conv_L && qw < 3 * (size_t)hp->d_model) qw = 3 * (size_t)hp->d_model;
    s->q = inst_buf(e, I, B * qw, &ok);
    s->k = inst_buf(e, I, B * hp->kv_dim, &ok);
    s->v = inst_buf(e, I, B * hp->kv_dim, &ok);
    s->att = inst_buf(e, I, B * (hp->q_dim > hp->d_model ? hp->q_dim : hp->d_model), &ok);
    s->ffa = inst_buf(e, I, B * hp->d_ff, &ok);
    s->ffb = hp->ffn == QEIL_FFN_SWIGLU ? inst_buf(e, I, B * hp->d_ff, &ok) : NULL;
    s->logits = inst_buf(e, I, (size_t)lr * hp->vocab, &ok);
    s->logit_rows = lr;
    if (ok && hp->rope != QEIL_ROPE_NONE) {
        const size_t n = (size_t)hp->n_ctx * (hp->n_rot / 2);
        float *c = inst_buf(e, I, n, &ok), *sn = inst_buf(e, I, n, &ok);
        if (ok) {
            be->to_backend(I->st, c, e->rope_cos, n * sizeof(float));
            be->to_backend(I->st, sn, e->rope_sin, n * sizeof(float));
            s->rope_cos = c;
            s->rope_sin = sn;
        }
    }
    if (!ok) {
        inst_destroy(I);
        return QEIL_ERR_NOMEM; /* message recorded by alloc */
    }
    return QEIL_OK;
}

/* Prepare unit u's tensors on instance I into out[] (parallel to bind). */
static qeil_status prepare_unit(qeil_engine *e, uint32_t u, bk_inst *I, qeil_bweight *out)
{
    const unit_bind *b = &e->bind[u];
    const uint64_t supported = I->be->props.weight_types, params = I->be->props.param_types;
    for (uint32_t i = 0; i < b->n; i++) {
        const qeil_gguf_tensor *t = b->src[i];
        const int vector = b->param[i];
        if (t->type < 0 || t->type >= 64 || !(((vector ? params : supported) >> t->type) & 1)) {
            char tb[24];
            for (uint32_t j = 0; j < i; j++) I->be->weight_release(I->st, &out[j]);
            return qeil_ctx_fail(e->ctx, QEIL_ERR_UNSUPPORTED,
                                 "tensor '%s': type %s is not supported by backend '%s'", t->name,
                                 type_name(t->type, tb), I->be->props.name);
        }
        /* unit 0 (embeddings) only gathers rows; the others multiply — the
         * head's tied table also serves the lookups when both units share
         * an instance (run_units) */
        const int tied_table = e->tied && b->dst[i] == &e->head.out;
        qeil_status st = I->be->weight_prepare(
            I->st, t->type, (int64_t)t->ne[0], t->n_dims == 1 ? 1 : (int64_t)t->ne[1], qeil_gguf_tensor_data(e->g, t),
            u == 0 ? QEIL_BWEIGHT_ROWS : tied_table ? QEIL_BWEIGHT_MATMUL | QEIL_BWEIGHT_ROWS : QEIL_BWEIGHT_MATMUL,
            &out[i]);
        /* the backend keeps its own copy: the file's pages can go (a unit
         * that still borrows them faults them back in from the file) */
        if (st == QEIL_OK && out[i].owned) qeil_gguf_tensor_drop_pages(e->g, t);
        if (st != QEIL_OK) {
            for (uint32_t j = 0; j < i; j++) I->be->weight_release(I->st, &out[j]);
            return st;
        }
    }
    return QEIL_OK;
}

static size_t kv_layer_floats(const qeil_fwd_hparams *hp)
{
    return mul3(hp->n_seq, hp->n_ctx, hp->kv_dim);
}

/* floats of a conv block's state: n_seq x (L - 1) x d_model */
static size_t conv_layer_floats(const qeil_fwd_hparams *hp)
{
    return mul3(hp->n_seq, hp->conv_L - 1, hp->d_model);
}

/* Bytes of block l's sequence memory: K and V, or the conv state. */
static size_t seqmem_layer_B(const qeil_engine *e, uint32_t l)
{
    return layer_is_conv(e, l) ? conv_layer_floats(&e->hp) * sizeof(float)
                               : 2 * kv_layer_floats(&e->hp) * sizeof(float);
}

static void kv_release(bk_inst *I, qeil_bkv *kv)
{
    if (kv->k) I->be->release(I->st, kv->k);
    if (kv->v) I->be->release(I->st, kv->v);
    if (kv->conv) I->be->release(I->st, kv->conv);
    kv->k = kv->v = kv->conv = NULL;
}

/* Block l's sequence memory on instance I: a conv block's state (zeroed:
 * alloc zero-fills, and positions before a sequence's start read as zero
 * anyway) or K and V. */
static qeil_status kv_alloc(qeil_engine *e, bk_inst *I, uint32_t l, qeil_bkv *kv)
{
    const qeil_fwd_hparams *hp = &e->hp;
    memset(kv, 0, sizeof *kv);
    if (layer_is_conv(e, l)) {
        size_t n = conv_layer_floats(hp), bytes = mul3(n, sizeof(float), 1);
        kv->conv = n && bytes ? I->be->alloc(I->st, bytes) : NULL;
        if (!kv->conv)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_NOMEM,
                                 "engine: out of memory for the conv state of block %u (%zu bytes)", l, bytes);
        kv->n_seq = hp->n_seq;
        kv->conv_n_state = hp->conv_L - 1;
        kv->conv_d = hp->d_model;
        return QEIL_OK;
    }
    size_t n = kv_layer_floats(hp), bytes = mul3(n, sizeof(float), 1);
    if (!n || !bytes)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_NOMEM, "engine: KV cache size overflows (n_seq %u x n_ctx %u)",
                             hp->n_seq, hp->n_ctx);
    kv->k = I->be->alloc(I->st, bytes);
    kv->v = kv->k ? I->be->alloc(I->st, bytes) : NULL;
    if (!kv->k || !kv->v) {
        if (kv->k) I->be->release(I->st, kv->k);
        kv->k = NULL;
        return qeil_ctx_fail(e->ctx, QEIL_ERR_NOMEM,
                             "engine: out of memory for the KV cache (%zu bytes per layer; lower n_ctx "
                             "%u or n_seq %u)",
                             2 * bytes, hp->n_ctx, hp->n_seq);
    }
    kv->n_seq = hp->n_seq;
    kv->n_ctx = hp->n_ctx;
    kv->n_kv_heads = hp->n_kv_heads;
    kv->head_dim = hp->head_dim;
    return QEIL_OK;
}

/* Copy a buffer between two instances through the host stage. */
static void move_buf(qeil_engine *e, bk_inst *from, const float *src, bk_inst *to, float *dst,
                     size_t n_floats)
{
    const size_t chunk = (size_t)e->hp.n_batch * e->hp.d_model;
    for (size_t o = 0; o < n_floats; o += chunk) {
        size_t c = n_floats - o < chunk ? n_floats - o : chunk;
        from->be->to_host(from->st, e->stage, src + o, c * sizeof(float));
        to->be->to_backend(to->st, dst + o, e->stage, c * sizeof(float));
    }
}

/* 1 when instance id runs a unit in either phase. */
static int inst_used(const qeil_engine *e, uint32_t id)
{
    for (uint32_t u = 0; u < e->n_units; u++)
        if (e->place[u] == id || e->alt_dev[u] == id) return 1;
    return 0;
}

/* Drop instances no unit uses any more in either phase (a failed one
 * stays, unused, for qeil_engine_readmit). */
static void drop_unused(qeil_engine *e)
{
    for (uint32_t id = 0; id < N_BACKENDS; id++)
        if (!e->inst[id].failed && !inst_used(e, id)) inst_destroy(&e->inst[id]);
}

/* Move units to new backends (ids already validated). All new resources are
 * made first; on failure nothing changes (and nothing of it stays on a
 * device). */
static qeil_status apply_placement(qeil_engine *e, const uint8_t *want)
{
    const uint32_t nu = e->n_units;
    qeil_status st = QEIL_OK;
    for (uint32_t u = 0; u < nu && st == QEIL_OK; u++)
        if (want[u] != e->place[u]) st = inst_create(e, want[u]);
    if (st != QEIL_OK) {
        drop_unused(e); /* nothing of a placement that failed stays on a device */
        return st;
    }

    /* phase 1: new weights and KV */
    qeil_bweight(*nw)[UNIT_MAX_TENSORS] = qeil_calloc(e->ctx, nu, sizeof *nw);
    qeil_bkv *nkv = qeil_calloc(e->ctx, e->hp.n_layers ? e->hp.n_layers : 1, sizeof *nkv);
    if (!nw || !nkv) {
        qeil_free(e->ctx, nw);
        qeil_free(e->ctx, nkv);
        return qeil_ctx_fail(e->ctx, QEIL_ERR_NOMEM, "placement: out of memory");
    }
    uint32_t done = 0;
    for (; done < nu && st == QEIL_OK; done++) {
        if (want[done] == e->place[done]) continue;
        bk_inst *I = &e->inst[want[done]];
        st = prepare_unit(e, done, I, nw[done]);
        if (st == QEIL_OK && done >= 1 && done <= e->hp.n_layers) {
            st = kv_alloc(e, I, done - 1, &nkv[done - 1]);
            if (st != QEIL_OK)
                for (uint32_t j = 0; j < e->bind[done].n; j++) I->be->weight_release(I->st, &nw[done][j]);
        }
    }
    if (st != QEIL_OK) {
        /* undo the units completed before the failing one */
        for (uint32_t u = 0; u + 1 < done; u++) {
            if (want[u] == e->place[u]) continue;
            bk_inst *I = &e->inst[want[u]];
            for (uint32_t j = 0; j < e->bind[u].n; j++) I->be->weight_release(I->st, &nw[u][j]);
            if (u >= 1 && u <= e->hp.n_layers) kv_release(I, &nkv[u - 1]);
        }
        qeil_free(e->ctx, nw);
        qeil_free(e->ctx, nkv);
        drop_unused(e);
        return st;
    }

    /* phase 2: move KV contents, release the old, commit */
    for (uint32_t u = 0; u < nu; u++) {
        if (want[u] == e->place[u]) continue;
        bk_inst *O = &e->inst[e->place[u]], *N = &e->inst[want[u]];
        for (uint32_t j = 0; j < e->bind[u].n; j++) {
            O->be->weight_release(O->st, e->bind[u].dst[j]);
            *e->bind[u].dst[j] = nw[u][j];
        }
        if (u >= 1 && u <= e->hp.n_layers) {
            qeil_bkv *kv = &e->kv[u - 1];
            if (!O->failed) { /* a failed device's KV is lost: recovery restores it */
                if (kv->conv) {
                    move_buf(e, O, kv->conv, N, nkv[u - 1].conv, conv_layer_floats(&e->hp));
                } else {
                    size_t n = kv_layer_floats(&e->hp);
                    move_buf(e, O, kv->k, N, nkv[u - 1].k, n);
                    move_buf(e, O, kv->v, N, nkv[u - 1].v, n);
                }
            }
            kv_release(O, kv);
            *kv = nkv[u - 1];
        }
        e->place[u] = want[u];
    }
    qeil_free(e->ctx, nw);
    qeil_free(e->ctx, nkv);
    drop_unused(e);
    return QEIL_OK;
}

/* Release the other phase's weights and KV (the active copy holds every
 * committed row): one map, the current one, for both phases. */
static void release_alt(qeil_engine *e)
{
    if (!e->alt_w || !e->alt_kv) return;
    for (uint32_t u = 0; u < e->n_units; u++) {
        if (e->alt_dev[u] == ALT_NONE) continue;
        bk_inst *I = &e->inst[e->alt_dev[u]];
        if (I->be) {
            for (uint32_t j = 0; j < e->bind[u].n; j++)
                if (e->alt_w[u][j].data) I->be->weight_release(I->st, &e->alt_w[u][j]);
            if (u >= 1 && u <= e->hp.n_layers) kv_release(I, &e->alt_kv[u - 1]);
        }
        memset(e->alt_w[u], 0, sizeof e->alt_w[u]);
        e->alt_dev[u] = ALT_NONE;
    }
    memcpy(e->place_pf, e->place, e->n_units);
    memcpy(e->place_dc, e->place, e->n_units);
    drop_unused(e);
}

/* Initial placement: everything on backend 0. */
static qeil_status place_all_on_first(qeil_engine *e)
{
    qeil_status st = inst_create(e, 0);
    if (st != QEIL_OK) return st;
    bk_inst *I = &e->inst[0];
    qeil_bweight tmp[UNIT_MAX_TENSORS];
    for (uint32_t u = 0; u < e->n_units; u++) {
        if ((st = prepare_unit(e, u, I, tmp)) != QEIL_OK) return st;
        for (uint32_t j = 0; j < e->bind[u].n; j++) *e->bind[u].dst[j] = tmp[j];
        e->place[u] = 0;
    }
    for (uint32_t l = 0; l < e->hp.n_layers; l++)
        if ((st = kv_alloc(e, I, l, &e->kv[l])) != QEIL_OK) return st;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Open / free                                                               */
/* ------------------------------------------------------------------------ */

void qeil_engine_free(qeil_engine *e)
{
    if (!e) return;
    qeil_ctx *ctx = e->ctx;
    if (e->bind) {
        release_alt(e);
        for (uint32_t u = 0; u < e->n_units; u++) {
            bk_inst *I = &e->inst[e->place[u]];
            if (!I->be) continue;
            for (uint32_t j = 0; j < e->bind[u].n; j++)
                if (e->bind[u].dst[j]->data) I->be->weight_release(I->st, e->bind[u].dst[j]);
            if (u >= 1 && u <= e->hp.n_layers && e->kv) kv_release(I, &e->kv[u - 1]);
        }
    }
    for (size_t id = 0; id < ENGINE_MAX_BACKENDS; id++) inst_destroy(&e->inst[id]);
    qeil_tokenizer_free(e->tok);
    qeil_gguf_free(e->g);
    qeil_free(ctx, e->layers);
    qeil_free(ctx, e->bind);
    qeil_free(ctx, e->kv);
    qeil_free(ctx, e->inv_freq);
    qeil_free(ctx, e->rope_cos);
    qeil_free(ctx, e->rope_sin);
    qeil_free(ctx, e->seq_len);
    qeil_free(ctx, e->rows);
    qeil_free(ctx, e->tok_ids);
    qeil_free(ctx, e->pos_ids);
    qeil_free(ctx, e->stage);
    qeil_free(ctx, e->alt_w);
    qeil_free(ctx, e->alt_kv);
    qeil_free(ctx, e->sync_len);
    qeil_free_big(ctx, e->kv_host);
    qeil_free_big(ctx, e->conv_stage);
    qeil_free(ctx, e);
}

qeil_status qeil_engine_open(qeil_ctx *ctx, const char *path, const qeil_engine_params *p,
                             qeil_engine **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_engine_open: out is NULL");
    *out = NULL;
    if (!path) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_engine_open: path is NULL");
    qeil_engine_params params = p ? *p : qeil_engine_default_params();
    qeil_status st = check_params(ctx, &params);
    if (st != QEIL_OK) return st;
    if ((st = qeil_cpu_devs_check(ctx)) != QEIL_OK) return st; /* a bad QEIL_CPU_CLUSTERS */

    qeil_engine *e = qeil_calloc(ctx, 1, sizeof *e);
    if (!e) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "engine: out of memory");
    e->ctx = ctx;
    memset(e->alt_dev, ALT_NONE, sizeof e->alt_dev);
    e->n_threads = params.n_threads ? params.n_threads : online_cpus();
    e->watchdog_s = params.watchdog_s;

    if ((st = qeil_gguf_open(ctx, path, &e->g)) != QEIL_OK) goto fail;
    if ((st = qeil_model_from_gguf(ctx, e->g, &e->desc)) != QEIL_OK) goto fail;
    if ((st = read_hparams(e, &params)) != QEIL_OK) goto fail;
    e->n_units = e->hp.n_layers + 2;
    e->layers = qeil_calloc(ctx, e->hp.n_layers, sizeof *e->layers);
    e->bind = qeil_calloc(ctx, e->n_units, sizeof *e->bind);
    e->kv = qeil_calloc(ctx, e->hp.n_layers, sizeof *e->kv);
    e->seq_len = qeil_calloc(ctx, e->hp.n_seq, sizeof *e->seq_len);
    e->rows = qeil_calloc(ctx, e->hp.n_batch, sizeof *e->rows);
    e->tok_ids = qeil_calloc(ctx, e->hp.n_batch, sizeof *e->tok_ids);
    e->pos_ids = qeil_calloc(ctx, e->hp.n_batch, sizeof *e->pos_ids);
    e->stage = qeil_calloc(ctx, (size_t)e->hp.n_batch * e->hp.d_model, sizeof *e->stage);
    e->alt_w = qeil_calloc(ctx, e->n_units, sizeof *e->alt_w);
    e->alt_kv = qeil_calloc(ctx, e->hp.n_layers, sizeof *e->alt_kv);
    e->sync_len = qeil_calloc(ctx, e->hp.n_seq, sizeof *e->sync_len);
    if (!e->layers || !e->bind || !e->kv || !e->seq_len || !e->rows || !e->tok_ids || !e->pos_ids ||
        !e->stage || !e->alt_w || !e->alt_kv || !e->sync_len) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "engine: out of memory");
        goto fail;
    }
    e->host_scratch_B = (size_t)e->hp.n_batch * (sizeof *e->rows + 2 * sizeof(uint32_t) +
                                                 (size_t)e->hp.d_model * sizeof(float));
    if ((st = bind_tensors(e)) != QEIL_OK) goto fail;
    if ((st = qeil_tokenizer_from_gguf(ctx, e->g, &e->tok)) != QEIL_OK) goto fail;
    if (qeil_tokenizer_n_vocab(e->tok) > e->hp.vocab) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                           "gguf: the tokenizer has %zu tokens but token_embd.weight only %u rows",
                           qeil_tokenizer_n_vocab(e->tok), e->hp.vocab);
        goto fail;
    }
    if ((st = build_rope_tables(e)) != QEIL_OK) goto fail;
    if ((st = place_all_on_first(e)) != QEIL_OK) goto fail;
    memcpy(e->place_pf, e->place, e->n_units);
    memcpy(e->place_dc, e->place, e->n_units);
    if (params.kv_host_copy) {
        /* a conv block's state lives in its layer's slot of the copy: the
         * slot (K and V) must hold it (it does for every real shape: L - 1
         * = 2 inputs of d_model against 2 x n_ctx x kv_dim) */
        if (e->hp.conv_L > 1 && conv_layer_floats(&e->hp) > 2 * kv_layer_floats(&e->hp)) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                               "kv_host_copy: the conv state (%zu floats) exceeds a block's KV slot "
                               "(%zu); use recompute (kv_host_copy 0)",
                               conv_layer_floats(&e->hp), 2 * kv_layer_floats(&e->hp));
            goto fail;
        }
        const size_t n = mul3(2 * (size_t)e->hp.n_layers, kv_layer_floats(&e->hp), sizeof(float));
        e->kv_host = n ? qeil_malloc_big(ctx, n) : NULL;
        if (!e->kv_host) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM,
                               "engine: out of memory for the KV host copy (%zu bytes)", n);
            goto fail;
        }
        memset(e->kv_host, 0, n);
        if (e->hp.conv_L > 1) {
            const size_t nc = mul3(e->hp.n_layers, conv_layer_floats(&e->hp), sizeof(float));
            e->conv_stage = nc ? qeil_malloc_big(ctx, nc) : NULL;
            if (!e->conv_stage) {
                st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM,
                                   "engine: out of memory for the conv state staging (%zu bytes)", nc);
                goto fail;
            }
            memset(e->conv_stage, 0, nc);
        }
    }
    *out = e;
    return QEIL_OK;
fail:
    qeil_engine_free(e);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */
/* ------------------------------------------------------------------------ */

const qeil_tokenizer *qeil_engine_tokenizer(const qeil_engine *e) { return e ? e->tok : NULL; }
const char *qeil_engine_chat_template(const qeil_engine *e)
{
    return e ? qeil_gguf_get_str(e->g, "tokenizer.chat_template") : NULL;
}
const qeil_model_desc *qeil_engine_desc(const qeil_engine *e) { return e ? &e->desc : NULL; }
uint32_t qeil_engine_n_vocab(const qeil_engine *e) { return e ? e->hp.vocab : 0; }
uint32_t qeil_engine_n_ctx(const qeil_engine *e) { return e ? e->hp.n_ctx : 0; }

/* ------------------------------------------------------------------------ */
/* Evaluation                                                                */
/* ------------------------------------------------------------------------ */

/* ---- device failures ---- */

static double since(double t0) { return qeil_clock_s() - t0; }

/* Mark device id failed after status st from the check of unit u (whose
 * work began at t_unit, or the op the fault wrapper fired at; hung: the
 * sync's wait ran out), record what happened, and return QEIL_ERR_DEVICE
 * with the device's message. */
static qeil_status device_fail(qeil_engine *e, uint8_t id, uint32_t u, double t_unit, int hung,
                               qeil_status st)
{
    bk_inst *I = &e->inst[id];
    qeil_engine_failure *f = &e->last_fail;
    const double t_end = qeil_clock_s();
    memset(f, 0, sizeof *f);
    f->device = id;
    f->unit = u;
    f->op_name = "";
    uint64_t op = 0;
    const char *name = NULL;
    double t_fault = t_unit;
    if (st == QEIL_ERR_NOMEM) f->cause = "oom";
    else if (hung) f->cause = "hang"; /* the watchdog's bound ran out */
    else f->cause = "error";
    if (I->fw && qeil_fault_wrap_fired(I->fw, &op, &name, &t_fault)) {
        f->op = op;
        f->op_name = name;
        f->cause = qeil_fault_kind_name(qeil_fault_wrap_kind(I->fw)); /* what was injected */
    }
    f->detect_s = t_end - t_fault;
    e->has_fail = 1;
    I->failed = 1;
    char why[400];
    snprintf(why, sizeof why, "%s", qeil_ctx_errmsg(e->ctx));
    return qeil_ctx_fail(e->ctx, QEIL_ERR_DEVICE, "device %s failed (%s): %s", dev_name(id),
                         f->cause, why);
}

/* The watchdog's bound for a wait on instance I that covers k units (k
 * >= 1) of a step of n_rows rows: watchdog_s per row and unit, plus
 * WATCHDOG_SLOW_X times the slowest honest wait per unit this instance
 * has had, per unit (a device that is merely slow — lavapipe on a loaded
 * machine, where a one-row step's wait passed 0.25 s — is not taken for a
 * hung one; a device that was always fast keeps the tight bound); an
 * instance's first wait (first use of its pipelines, page faults) gets
 * WATCHDOG_SLOW_X times watchdog_s per row and unit. */
#define WATCHDOG_SLOW_X 8.0
static double watchdog_bound(const qeil_engine *e, const bk_inst *I, uint32_t n_rows, uint32_t k)
{
    const double rows = n_rows ? n_rows : 1, units = k ? k : 1;
    return I->n_syncs == 0 ? WATCHDOG_SLOW_X * e->watchdog_s * rows * units
                           : units * (e->watchdog_s * rows + WATCHDOG_SLOW_X * I->slow_s);
}

/* Wait for instance id (bounded: watchdog_bound for one unit) and check
 * it; a failure is unit u's, whose work began at t0. */
static qeil_status check_inst(qeil_engine *e, uint8_t id, uint32_t u, double t0, uint32_t n_rows)
{
    bk_inst *I = &e->inst[id];
    const double timeout = watchdog_bound(e, I, n_rows, 1);
    const double ts = qeil_clock_s();
    qeil_status st = I->be->sync(I->st, timeout);
    if (st == QEIL_OK) {
        const double w = since(ts);
        if (w > I->slow_s) I->slow_s = w;
        I->n_syncs++;
        return QEIL_OK;
    }
    return device_fail(e, id, u, t0, st == QEIL_ERR_DEVICE && since(ts) >= 0.999 * timeout, st);
}

/* ---- runs of units recorded without a sync (docs/engine.md, "Syncs and
 * unit times") ---- */

/* Unit u starts on device id at host time t: join the open run (or open
 * one: the device's first timer mark). 0 when the device does not time
 * its units (no timer_mark, or it cannot now): the caller syncs after the
 * unit, as on the cpu. */
static int run_unit_begin(qeil_engine *e, uint8_t id, uint32_t u, double t)
{
    unit_run *R = &e->run;
    bk_inst *I = &e->inst[id];
    if (!I->be->timer_mark || !I->be->timer_read || !I->be->submits) return 0;
    if (R->n_marks == 0) {
        if (!I->be->timer_mark(I->st)) return 0;
        R->id = id;
        R->u0 = u;
        R->n = 0;
        R->n_marks = 1;
        R->t0 = t;
    }
    R->t_unit[R->n] = t;
    R->op0[R->n] = qeil_fault_wrap_ops(I->fw);
    return 1;
}

/* The unit begun last ended: its closing mark. 0 when the device could
 * not record it (the caller closes the run now). */
static int run_unit_end(qeil_engine *e)
{
    unit_run *R = &e->run;
    if (R->n_marks == 0) return 1;
    bk_inst *I = &e->inst[R->id];
    R->n++;
    if (!I->be->timer_mark(I->st)) return 0;
    R->n_marks++;
    return 1;
}

/* Which of the open run's first k units a failure belongs to: the one
 * whose ops hold the op an injected fault fired at (unit j issued ops
 * op0[j] + 1 .. op0[j + 1]), else the first (a real device's failure at
 * a sync does not say which command failed). */
static uint32_t run_fault_unit(const qeil_engine *e, uint32_t k)
{
    const unit_run *R = &e->run;
    const bk_inst *I = &e->inst[R->id];
    uint32_t j = 0;
    uint64_t op = 0;
    const char *name = NULL;
    double tf = 0;
    if (I->fw && qeil_fault_wrap_fired(I->fw, &op, &name, &tf))
        while (j + 1 < k && op > R->op0[j + 1]) j++;
    return j;
}

/* Sync the open run's device (bounded by watchdog_bound for its k units)
 * and charge its units: the host span from the first unit's start to the
 * sync's return, split by the device's timestamps between the units'
 * marks (evenly where they are missing). A failure is the unit whose ops
 * hold the op an injected fault fired at, else the run's first. */
static qeil_status run_close(qeil_engine *e, uint32_t n_rows)
{
    unit_run *R = &e->run;
    if (R->n_marks == 0) return QEIL_OK;
    const uint32_t k = R->n, n_marks = R->n_marks;
    R->n_marks = 0;
    R->n = 0;
    bk_inst *I = &e->inst[R->id];
    if (k == 0) return QEIL_OK; /* cannot happen: a run opens with a unit */
    const double bound = watchdog_bound(e, I, n_rows, k);
    const double ts = qeil_clock_s();
    const qeil_status st = I->be->sync(I->st, bound);
    if (st != QEIL_OK) {
        const uint32_t j = run_fault_unit(e, k);
        return device_fail(e, R->id, R->u0 + j, R->t_unit[j],
                           st == QEIL_ERR_DEVICE && since(ts) >= 0.999 * bound, st);
    }
    const double w = since(ts), span = since(R->t0);
    if (w / k > I->slow_s) I->slow_s = w / k;
    I->n_syncs++;
    double sum = 0;
    int timed = n_marks == k + 1 && I->be->timer_read(I->st, e->run_dt, n_marks);
    for (uint32_t j = 0; timed && j < k; j++) {
        if (!(e->run_dt[j] >= 0)) timed = 0;
        else sum += e->run_dt[j];
    }
    if (!(sum > 0)) timed = 0;
    for (uint32_t j = 0; j < k; j++) {
        const double dt = span * (timed ? e->run_dt[j] / sum : 1.0 / k);
        e->unit_t[R->u0 + j] += dt;
        e->xs.dev_s[e->phase][R->id] += dt;
    }
    return QEIL_OK;
}

/* The head's wait before its logits are read (qeil_fwd_run_head): the
 * first ends the head's part of the open run (its mark) and closes the
 * run; a later one (the next chunk of logits) waits
 * for the work since the previous one, charged to the head like the time
 * after the last (the copy of the logits, run_units). */
typedef struct {
    qeil_engine *e;
    uint8_t id;
    uint32_t u, n_rows;
    double t_last; /* the last wait's return; 0 before the first */
} head_wait_arg;

static qeil_status head_wait(void *arg)
{
    head_wait_arg *a = arg;
    qeil_engine *e = a->e;
    qeil_status st;
    if (a->t_last == 0) {
        run_unit_end(e); /* where it cannot mark, run_close splits evenly */
        st = run_close(e, a->n_rows);
    } else {
        st = check_inst(e, a->id, a->u, a->t_last, a->n_rows);
        const double dt = since(a->t_last);
        e->unit_t[a->u] += dt;
        e->xs.dev_s[e->phase][a->id] += dt;
    }
    a->t_last = qeil_clock_s();
    return st;
}

/* The host copy of rows[0..n)'s KV: runs of consecutive positions of one
 * sequence are contiguous per KV head (head-major), one copy each. */
static void kv_mirror_rows(qeil_engine *e, const qeil_brow *rows, uint32_t n)
{
    const size_t hd = e->hp.head_dim, per = kv_layer_floats(&e->hp);
    for (uint32_t l = 0; l < e->hp.n_layers; l++) {
        bk_inst *I = &e->inst[e->place[l + 1]];
        const qeil_bkv *kv = &e->kv[l];
        float *hk = e->kv_host + 2 * per * l, *hv = hk + per;
        if (kv->conv) { /* a conv block: its whole state (L - 1 inputs per sequence), staged */
            const size_t cf = conv_layer_floats(&e->hp);
            I->be->to_host(I->st, e->conv_stage + cf * l, kv->conv, cf * sizeof(float));
            (void)hk;
            continue;
        }
        for (uint32_t r = 0; r < n;) {
            uint32_t r1 = r + 1;
            while (r1 < n && rows[r1].seq == rows[r].seq && rows[r1].pos == rows[r1 - 1].pos + 1) r1++;
            for (uint32_t h = 0; h < kv->n_kv_heads; h++) {
                const size_t o = (((size_t)rows[r].seq * kv->n_kv_heads + h) * kv->n_ctx + rows[r].pos) * hd;
                const size_t bytes = (size_t)(r1 - r) * hd * sizeof(float);
                I->be->to_host(I->st, hk + o, kv->k + o, bytes);
                I->be->to_host(I->st, hv + o, kv->v + o, bytes);
            }
            r = r1;
        }
    }
}

/* Make `phase`'s map the active one (qeil_engine_set_placements): the KV
 * rows written since the last switch (and every conv state) go from the
 * active copy to the other phase's, the devices are checked, then the
 * weights, KV and devices of each split unit swap. Nothing swaps on an
 * error. */
static qeil_status switch_phase(qeil_engine *e, int phase)
{
    if (phase == e->phase) return QEIL_OK;
    int split = 0;
    for (uint32_t u = 0; u < e->n_units; u++) {
        if (e->alt_dev[u] == ALT_NONE) continue;
        split = 1;
        if (e->inst[e->alt_dev[u]].failed)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_DEVICE,
                                 "device %s has failed and still runs unit %u (recover first)",
                                 k_device_names[e->alt_dev[u]], u);
    }
    if (!split) {
        e->phase = phase;
        return QEIL_OK;
    }
    const double t0 = qeil_clock_s();
    const size_t hd = e->hp.head_dim;
    uint64_t bytes = 0;
    for (uint32_t l = 0; l < e->hp.n_layers; l++) {
        if (e->alt_dev[l + 1] == ALT_NONE) continue;
        bk_inst *O = &e->inst[e->place[l + 1]], *N = &e->inst[e->alt_dev[l + 1]];
        const qeil_bkv *kv = &e->kv[l];
        const qeil_bkv *ak = &e->alt_kv[l];
        if (kv->conv) { /* the whole state: it rolls, every row may have changed */
            const size_t n = conv_layer_floats(&e->hp);
            move_buf(e, O, kv->conv, N, ak->conv, n);
            bytes += (uint64_t)n * sizeof(float);
            continue;
        }
        for (uint32_t sq = 0; sq < e->hp.n_seq; sq++) {
            const size_t len = e->seq_len[sq], from = e->sync_len[sq] < len ? e->sync_len[sq] : len;
            if (from == len) continue;
            for (uint32_t h = 0; h < kv->n_kv_heads; h++) { /* head-major */
                const size_t o = (((size_t)sq * kv->n_kv_heads + h) * kv->n_ctx + from) * hd;
                const size_t c = (len - from) * hd;
                move_buf(e, O, kv->k + o, N, ak->k + o, c);
                move_buf(e, O, kv->v + o, N, ak->v + o, c);
                bytes += 2 * (uint64_t)c * sizeof(float);
            }
        }
    }
    for (uint8_t id = 0; id < N_BACKENDS; id++) {
        qeil_status st;
        if (e->inst[id].be && !e->inst[id].failed && (st = check_inst(e, id, 0, t0, 1)) != QEIL_OK)
            return st;
    }
    for (uint32_t u = 0; u < e->n_units; u++) {
        if (e->alt_dev[u] == ALT_NONE) continue;
        for (uint32_t j = 0; j < e->bind[u].n; j++) {
            const qeil_bweight w = *e->bind[u].dst[j];
            *e->bind[u].dst[j] = e->alt_w[u][j];
            e->alt_w[u][j] = w;
        }
        if (u >= 1 && u <= e->hp.n_layers) {
            const qeil_bkv kv = e->kv[u - 1];
            e->kv[u - 1] = e->alt_kv[u - 1];
            e->alt_kv[u - 1] = kv;
        }
        const uint8_t d = e->place[u];
        e->place[u] = e->alt_dev[u];
        e->alt_dev[u] = d;
    }
    memcpy(e->sync_len, e->seq_len, e->hp.n_seq * sizeof *e->sync_len);
    e->phase = phase;
    e->xs.kv_B += bytes;
    e->xs.kv_s += since(t0);
    e->xs.n_switch++;
    return QEIL_OK;
}

/* A device already marked failed (qeil_engine_mark_failed, or a failure
 * not yet recovered from) that runs a unit: QEIL_ERR_DEVICE. */
static qeil_status check_no_failed(qeil_engine *e)
{
    for (uint32_t u = 0; u < e->n_units; u++)
        if (e->inst[e->place[u]].failed)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_DEVICE,
                                 "device %s has failed and still runs unit %u (recover first)",
                                 dev_name(e->place[u]), u);
    return QEIL_OK;
}

/* Run all units over the n rows already in e->rows / tok_ids / pos_ids;
 * logits of rows first..first+n_logits-1 go to `logits` (n_logits may be 0:
 * the head is skipped). A device that times its units (be->timer_mark:
 * vulkan) records consecutive units into one run and is synced, with the
 * watchdog, only where results are read: at a device boundary (before the
 * activations are copied off it), before the logits and at the end of
 * the step; any other device (the cpu) is synced after each unit. Then
 * the host copy of the KV is updated and every device checked once more
 * (a failure in a transfer after a unit's own check), so a step whose
 * results are used ran wholly on healthy devices. */
static qeil_status run_units(qeil_engine *e, uint32_t n, uint32_t first, uint32_t n_logits,
                             float *logits)
{
    const qeil_fwd_hparams *hp = &e->hp;
    bk_inst *prev = NULL;
    qeil_status cst = check_no_failed(e);
    if (cst != QEIL_OK) return cst;
    const double t_step = qeil_clock_s();
    e->run.n = e->run.n_marks = 0;
    for (uint32_t u = 0; u < e->n_units; u++) {
        const int is_head = u == e->n_units - 1;
        if (is_head && n_logits == 0) break;
        const uint8_t id = e->place[u];
        bk_inst *I = &e->inst[id];
        if (prev && prev != I) {
            /* the activations are read off prev: its run ends here */
            if ((cst = run_close(e, n)) != QEIL_OK) return cst;
            const double tm = qeil_clock_s();
            move_buf(e, prev, prev->s.x, I, I->s.x, (size_t)n * hp->d_model);
            e->xs.act_s[e->phase] += since(tm);
            e->xs.act_B[e->phase] += (uint64_t)n * hp->d_model * sizeof(float);
            e->xs.act_n[e->phase]++;
        }
        const double t0 = qeil_clock_s();
        const int in_run = run_unit_begin(e, id, u, t0);
        qeil_status st;
        if (u == 0) {
            /* a tied table that the head's backend copied (the cpu backend
             * interleaves it): when the head shares this instance, look the
             * rows up in that copy (prepared for get_rows too, the same
             * values), so the file's pages of the table, dropped at load,
             * stay unmapped — lookups through the map pulled in up to the
             * whole table (docs/engine.md, "Memory accounting") */
            qeil_fwd_embd emb = e->embd;
            if (e->tied && e->place[e->n_units - 1] == e->place[0] && e->head.out.owned)
                emb.tok_embd = e->head.out;
            st = qeil_fwd_run_embed(I->be, I->st, hp, &emb, e->tok_ids, e->pos_ids, n, &I->s);
        } else if (!is_head) {
            st = qeil_fwd_run_block(I->be, I->st, hp, &e->layers[u - 1], &e->kv[u - 1], e->rows, n,
                                    &I->s);
        } else {
            head_wait_arg wa = {e, id, u, n, 0};
            st = qeil_fwd_run_head(I->be, I->st, hp, &e->head, &I->s, first, n_logits, logits,
                                   in_run ? head_wait : NULL, &wa);
            if (in_run && wa.t_last > 0 && !I->failed) { /* the copy after the last wait */
                const double dt = since(wa.t_last);
                e->unit_t[u] += dt;
                e->xs.dev_s[e->phase][id] += dt;
            }
        }
        if (in_run) {
            if (I->failed) return st; /* the head's wait failed: already reported */
            if (st != QEIL_OK) { /* an op of this unit, or an earlier one's that failed silently */
                const uint32_t j = run_fault_unit(e, e->run.n + 1);
                return device_fail(e, id, e->run.u0 + j, e->run.t_unit[j], 0, st);
            }
            if (!run_unit_end(e) && (cst = run_close(e, n)) != QEIL_OK) return cst;
            prev = I;
            continue;
        }
        /* an op's own error is the device's too: sync reports it (sticky) */
        qeil_status sst = check_inst(e, id, u, t0, n);
        const double dt = since(t0);
        e->unit_t[u] += dt;
        e->xs.dev_s[e->phase][id] += dt;
        if (sst != QEIL_OK) return sst;
        if (st != QEIL_OK) return device_fail(e, id, u, t0, 0, st);
        prev = I;
    }
    if ((cst = run_close(e, n)) != QEIL_OK) return cst;
    e->xs.rows[e->phase] += n;
    if (e->kv_host) kv_mirror_rows(e, e->rows, n);
    for (uint8_t id = 0; id < N_BACKENDS; id++)
        if (e->inst[id].be && !e->inst[id].failed &&
            (cst = check_inst(e, id, e->n_units - 1, t_step, n)) != QEIL_OK)
            return cst;
    if (e->conv_stage) /* the step is complete: its conv states are the committed ones */
        for (uint32_t l = 0; l < hp->n_layers; l++)
            if (e->kv[l].conv) {
                const size_t cf = conv_layer_floats(hp);
                memcpy(e->kv_host + 2 * kv_layer_floats(hp) * l, e->conv_stage + cf * l,
                       cf * sizeof(float));
            }
    return QEIL_OK;
}

static qeil_status check_tokens(qeil_engine *e, const int32_t *tokens, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= e->hp.vocab)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE, "token %u: id %d (allowed 0..%u)", i,
                                 tokens[i], e->hp.vocab - 1);
    return QEIL_OK;
}

static qeil_status check_seq(qeil_engine *e, const char *what, uint32_t seq)
{
    if (seq >= e->hp.n_seq)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE, "%s: %u (allowed 0..%u; n_seq %u)", what, seq,
                             e->hp.n_seq - 1, e->hp.n_seq);
    return QEIL_OK;
}

qeil_status qeil_engine_eval(qeil_engine *e, uint32_t seq, const int32_t *tokens, uint32_t n,
                             float *logits, int all_logits)
{
    if (!e) return QEIL_ERR_INVALID;
    qeil_ctx *ctx = e->ctx;
    if (!tokens) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "eval: tokens is NULL");
    if (n == 0) return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "eval: n = 0 tokens (allowed 1..n_ctx)");
    qeil_status st;
    if ((st = check_seq(e, "seq", seq)) != QEIL_OK) return st;
    if ((st = check_tokens(e, tokens, n)) != QEIL_OK) return st;
    const uint32_t len = e->seq_len[seq];
    if ((uint64_t)len + n > e->hp.n_ctx)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "context: sequence %u holds %u tokens; %u more exceed n_ctx %u", seq,
                             len, n, e->hp.n_ctx);
    /* two tokens or more: prefill; one: a decode step */
    if ((st = switch_phase(e, n >= 2 ? 0 : 1)) != QEIL_OK) return st;
    const size_t V = e->hp.vocab;
    for (uint32_t done = 0; done < n;) {
        const uint32_t c = n - done < e->hp.n_batch ? n - done : e->hp.n_batch;
        const int last = done + c == n;
        for (uint32_t i = 0; i < c; i++) {
            e->rows[i].seq = seq;
            e->rows[i].pos = e->seq_len[seq] + i;
            e->tok_ids[i] = (uint32_t)tokens[done + i];
            e->pos_ids[i] = e->rows[i].pos;
        }
        uint32_t first = 0, nl = 0;
        float *dst = NULL;
        if (logits && all_logits) {
            nl = c;
            dst = logits + (size_t)done * V;
        } else if (logits && last) {
            first = c - 1;
            nl = 1;
            dst = logits;
        }
        if ((st = run_units(e, c, first, nl, dst)) != QEIL_OK) return st;
        e->seq_len[seq] += c;
        done += c;
    }
    return QEIL_OK;
}

qeil_status qeil_engine_eval_batch(qeil_engine *e, const uint32_t *seqs, const int32_t *tokens,
                                   uint32_t m, float *logits)
{
    if (!e) return QEIL_ERR_INVALID;
    qeil_ctx *ctx = e->ctx;
    if (!seqs || !tokens)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "eval_batch: seqs or tokens is NULL");
    if (m == 0 || m > e->hp.n_seq)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "eval_batch: m = %u sequences (allowed 1..n_seq %u)",
                             m, e->hp.n_seq);
    qeil_status st;
    uint8_t seen[QEIL_ENGINE_MAX_SEQ];
    memset(seen, 0, sizeof seen);
    for (uint32_t i = 0; i < m; i++) {
        if ((st = check_seq(e, "eval_batch seq", seqs[i])) != QEIL_OK) return st;
        if (seen[seqs[i]])
            return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                                 "eval_batch: sequence %u appears twice (one token per sequence)",
                                 seqs[i]);
        seen[seqs[i]] = 1;
        if ((uint64_t)e->seq_len[seqs[i]] + 1 > e->hp.n_ctx)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "context: sequence %u holds %u tokens; 1 more exceeds n_ctx %u",
                                 seqs[i], e->seq_len[seqs[i]], e->hp.n_ctx);
    }
    if ((st = check_tokens(e, tokens, m)) != QEIL_OK) return st;
    if ((st = switch_phase(e, 1)) != QEIL_OK) return st;
    const size_t V = e->hp.vocab;
    for (uint32_t done = 0; done < m;) {
        const uint32_t c = m - done < e->hp.n_batch ? m - done : e->hp.n_batch;
        for (uint32_t i = 0; i < c; i++) {
            const uint32_t s = seqs[done + i];
            e->rows[i].seq = s;
            e->rows[i].pos = e->seq_len[s];
            e->tok_ids[i] = (uint32_t)tokens[done + i];
            e->pos_ids[i] = e->rows[i].pos;
        }
        if ((st = run_units(e, c, 0, logits ? c : 0, logits ? logits + (size_t)done * V : NULL)) !=
            QEIL_OK)
            return st;
        for (uint32_t i = 0; i < c; i++) e->seq_len[seqs[done + i]]++;
        done += c;
    }
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Sequences                                                                 */
/* ------------------------------------------------------------------------ */

qeil_status qeil_engine_seq_copy(qeil_engine *e, uint32_t src, uint32_t dst)
{
    if (!e) return QEIL_ERR_INVALID;
    qeil_status st;
    if ((st = check_seq(e, "seq_copy src", src)) != QEIL_OK) return st;
    if ((st = check_seq(e, "seq_copy dst", dst)) != QEIL_OK) return st;
    if (src == dst) return QEIL_OK;
    const size_t hd = e->hp.head_dim, len = e->seq_len[src];
    for (uint32_t l = 0; l < e->hp.n_layers; l++) {
        bk_inst *I = &e->inst[e->place[l + 1]];
        const qeil_bkv *kv = &e->kv[l];
        if (kv->conv) { /* the whole state: it holds the last L - 1 positions */
            const size_t sb = (size_t)kv->conv_n_state * kv->conv_d;
            I->be->copy(I->st, kv->conv + (size_t)dst * sb, kv->conv + (size_t)src * sb, sb * sizeof(float));
            if (e->kv_host) {
                float *hc = e->kv_host + 2 * kv_layer_floats(&e->hp) * l;
                memmove(hc + (size_t)dst * sb, hc + (size_t)src * sb, sb * sizeof(float));
            }
            continue;
        }
        for (uint32_t h = 0; h < kv->n_kv_heads; h++) { /* head-major: one run per KV head */
            const size_t so = ((size_t)src * kv->n_kv_heads + h) * kv->n_ctx * hd,
                         d_o = ((size_t)dst * kv->n_kv_heads + h) * kv->n_ctx * hd;
            I->be->copy(I->st, kv->k + d_o, kv->k + so, len * hd * sizeof(float));
            I->be->copy(I->st, kv->v + d_o, kv->v + so, len * hd * sizeof(float));
            if (e->kv_host) {
                float *hk = e->kv_host + 2 * kv_layer_floats(&e->hp) * l,
                      *hv = hk + kv_layer_floats(&e->hp);
                memmove(hk + d_o, hk + so, len * hd * sizeof(float));
                memmove(hv + d_o, hv + so, len * hd * sizeof(float));
            }
        }
    }
    e->seq_len[dst] = (uint32_t)len;
    e->sync_len[dst] = 0; /* the other phase's copy of dst is stale */
    return QEIL_OK;
}

void qeil_engine_seq_reset(qeil_engine *e, uint32_t seq)
{
    /* stale KV rows beyond the length are never read: attention stops at
     * pos; a conv state is read only for positions >= 0 before the batch,
     * which a sequence restarting at 0 has none of (backend.h) */
    if (e && seq < e->hp.n_seq) e->seq_len[seq] = e->sync_len[seq] = 0;
}

uint32_t qeil_engine_seq_len(const qeil_engine *e, uint32_t seq)
{
    return e && seq < e->hp.n_seq ? e->seq_len[seq] : 0;
}

/* ------------------------------------------------------------------------ */
/* Memory, placement, unit times                                             */
/* ------------------------------------------------------------------------ */

qeil_engine_memory qeil_engine_memory_use(const qeil_engine *e)
{
    qeil_engine_memory m = {0, 0, 0, 0};
    if (!e) return m;
    m.weights_B = e->weights_B;
    m.tokenizer_B = qeil_tokenizer_memory_use(e->tok);
    m.kv_B = 0; /* KV of attention blocks and the state of conv blocks */
    for (uint32_t l = 0; l < e->hp.n_layers; l++) m.kv_B += seqmem_layer_B(e, l);
    if (e->kv_host) m.kv_B *= 2; /* the host copy */
    for (uint32_t l = 0; l < e->hp.n_layers; l++) /* the other phase's copies */
        if (e->alt_dev[l + 1] != ALT_NONE) m.kv_B += seqmem_layer_B(e, l);
    m.scratch_B = e->host_scratch_B;
    for (size_t id = 0; id < ENGINE_MAX_BACKENDS; id++) {
        const bk_inst *I = &e->inst[id];
        if (I->be) m.scratch_B += I->buf_B + I->be->scratch_bytes(I->st);
    }
    return m;
}

/* set_placement's checks of one map, before anything moves. */
static qeil_status check_map(qeil_engine *e, const uint8_t *backend, uint32_t n_units)
{
    if (!backend) return qeil_ctx_fail(e->ctx, QEIL_ERR_INVALID, "placement: backend array is NULL");
    if (n_units != e->n_units)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE,
                             "placement: %u units given; the model has %u (embedding, %u blocks, head)",
                             n_units, e->n_units, e->hp.n_layers);
    for (uint32_t u = 0; u < n_units; u++) {
        if (backend[u] >= n_devices())
            return qeil_ctx_fail(e->ctx, QEIL_ERR_UNSUPPORTED,
                                 "placement: unit %u asks for backend %u, but this build has %zu "
                                 "backend(s) (0 = %s)",
                                 u, backend[u], n_devices(), k_backends[0]->props.name);
        if (e->inst[backend[u]].failed)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_INVALID,
                                 "placement: device %s has failed (qeil_engine_readmit first)",
                                 dev_name(backend[u]));
    }
    if (check_no_failed(e) != QEIL_OK)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_INVALID,
                             "placement: a failed device still runs units (qeil_engine_recover)");
    /* an op the architecture needs and the backend lacks (granite's scale,
     * lfm2's short convolution): refused before anything moves */
    for (uint32_t u = 0; u < n_units; u++) {
        const qeil_fwd_layer *w = u >= 1 && u <= e->hp.n_layers ? &e->layers[u - 1] : NULL;
        const char *op = qeil_fwd_missing_op(qeil_backend_get(backend[u]), &e->hp, u, w);
        if (op && backend[u] != e->place[u])
            return qeil_ctx_fail(e->ctx, QEIL_ERR_UNSUPPORTED,
                                 "placement: unit %u (%s) cannot run on backend '%s': it needs op '%s', "
                                 "which that backend does not implement (%s)",
                                 u, u == 0 ? "embedding" : w ? (w->conv_in.data ? "conv block" : "block") : "head",
                                 qeil_engine_backend_name(backend[u]), op, qeil_arch_name(e->hp.arch));
    }
    return QEIL_OK;
}

qeil_status qeil_engine_set_placement(qeil_engine *e, const uint8_t *backend, uint32_t n_units)
{
    return qeil_engine_set_placements(e, backend, backend, n_units);
}

qeil_status qeil_engine_set_placements(qeil_engine *e, const uint8_t *prefill, const uint8_t *decode,
                                       uint32_t n_units)
{
    if (!e) return QEIL_ERR_INVALID;
    qeil_status st;
    if ((st = check_map(e, prefill, n_units)) != QEIL_OK) return st;
    if ((st = check_map(e, decode, n_units)) != QEIL_OK) return st;
    release_alt(e); /* the active copy holds every row */
    const uint8_t *act = e->phase ? decode : prefill, *oth = e->phase ? prefill : decode;
    if ((st = apply_placement(e, act)) != QEIL_OK) return st;
    memcpy(e->place_pf, e->place, n_units);
    memcpy(e->place_dc, e->place, n_units);
    /* the other phase's weights and KV on its devices */
    for (uint32_t u = 0; u < n_units; u++) {
        if (oth[u] == act[u]) continue;
        bk_inst *I = &e->inst[oth[u]];
        if ((st = inst_create(e, oth[u])) == QEIL_OK &&
            (st = prepare_unit(e, u, I, e->alt_w[u])) == QEIL_OK && u >= 1 && u <= e->hp.n_layers &&
            (st = kv_alloc(e, I, u - 1, &e->alt_kv[u - 1])) != QEIL_OK) {
            for (uint32_t j = 0; j < e->bind[u].n; j++) I->be->weight_release(I->st, &e->alt_w[u][j]);
            memset(e->alt_w[u], 0, sizeof e->alt_w[u]);
        }
        if (st != QEIL_OK) {
            release_alt(e); /* one map for both phases: the active one */
            return st;
        }
        e->alt_dev[u] = oth[u];
    }
    memcpy(e->place_pf, prefill, n_units);
    memcpy(e->place_dc, decode, n_units);
    memset(e->sync_len, 0, e->hp.n_seq * sizeof *e->sync_len);
    return QEIL_OK;
}

qeil_status qeil_engine_get_placements(const qeil_engine *e, uint8_t *prefill, uint8_t *decode,
                                       uint32_t n_units)
{
    if (!e) return QEIL_ERR_INVALID;
    if (n_units != e->n_units)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE, "placement: %u units asked; the model has %u",
                             n_units, e->n_units);
    if (prefill) memcpy(prefill, e->place_pf, n_units);
    if (decode) memcpy(decode, e->place_dc, n_units);
    return QEIL_OK;
}

void qeil_engine_transfer_stats(const qeil_engine *e, qeil_engine_transfers *out)
{
    if (!out) return;
    if (!e) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = e->xs;
    for (uint32_t id = 0; id < N_BACKENDS; id++) {
        const bk_inst *I = &e->inst[id];
        out->submits[id] = I->be && I->be->submits ? I->be->submits(I->st) - I->submit_base : 0;
    }
}

void qeil_engine_transfer_stats_reset(qeil_engine *e)
{
    if (!e) return;
    memset(&e->xs, 0, sizeof e->xs);
    for (uint32_t id = 0; id < N_BACKENDS; id++) {
        bk_inst *I = &e->inst[id];
        I->submit_base = I->be && I->be->submits ? I->be->submits(I->st) : 0;
    }
}

qeil_status qeil_engine_get_placement(const qeil_engine *e, uint8_t *backend, uint32_t n_units)
{
    if (!e || !backend) return QEIL_ERR_INVALID;
    if (n_units != e->n_units)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE, "placement: %u units asked; the model has %u",
                             n_units, e->n_units);
    memcpy(backend, e->place, n_units);
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Faults and recovery                                                       */
/* ------------------------------------------------------------------------ */

const char *qeil_fault_kind_name(qeil_fault_kind k)
{
    switch (k) {
    case QEIL_FAULT_NONE: return "none";
    case QEIL_FAULT_ERROR: return "error";
    case QEIL_FAULT_HANG: return "hang";
    case QEIL_FAULT_OOM: return "oom";
    }
    return "unknown";
}

static void inst_unwrap(bk_inst *I)
{
    if (!I->fw) return;
    void *inner = NULL;
    qeil_fault_wrap_unwrap(I->fw, &inner);
    I->be = I->inner_be;
    I->st = inner;
    I->fw = NULL;
    I->inner_be = NULL;
}

qeil_status qeil_engine_set_fault(qeil_engine *e, const qeil_fault *f)
{
    if (!e) return QEIL_ERR_INVALID;
    if (f) {
        if (f->device >= N_BACKENDS)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE, "fault: device %u (allowed 0..%u)",
                                 f->device, (unsigned)N_BACKENDS - 1);
        if ((unsigned)f->kind > QEIL_FAULT_OOM)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE, "fault: kind %d (allowed none, error, hang, oom)",
                                 (int)f->kind);
        if (f->kind != QEIL_FAULT_NONE && f->op == 0)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE, "fault: op 0 (allowed 1.., 1 = the first op)");
        if (!inst_used(e, f->device) || e->inst[f->device].failed)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE,
                                 "fault: device %s runs no unit of the placement", dev_name(f->device));
    }
    for (size_t id = 0; id < N_BACKENDS; id++) inst_unwrap(&e->inst[id]);
    if (!f) return QEIL_OK;
    bk_inst *I = &e->inst[f->device];
    fault_wrap *w = NULL;
    qeil_status st = qeil_fault_wrap_create(e->ctx, I->be, I->st, dev_name(f->device), f->kind,
                                            f->op, &w);
    if (st != QEIL_OK) return st;
    I->inner_be = I->be;
    I->fw = w;
    I->be = qeil_fault_wrap_backend(w);
    I->st = w;
    return QEIL_OK;
}

uint64_t qeil_engine_fault_ops(const qeil_engine *e, uint8_t device)
{
    return e && device < N_BACKENDS ? qeil_fault_wrap_ops(e->inst[device].fw) : 0;
}

int qeil_engine_last_failure(const qeil_engine *e, qeil_engine_failure *out)
{
    if (!e || !e->has_fail) return 0;
    if (out) *out = e->last_fail;
    return 1;
}

int qeil_engine_device_failed(const qeil_engine *e, size_t id)
{
    return e && id < N_BACKENDS && e->inst[id].failed;
}

qeil_status qeil_engine_mark_failed(qeil_engine *e, size_t id, const char *why)
{
    if (!e) return QEIL_ERR_INVALID;
    if (id >= N_BACKENDS || !e->inst[id].be)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE, "mark_failed: device %zu has no instance", id);
    qeil_engine_failure *f = &e->last_fail;
    memset(f, 0, sizeof *f);
    f->device = (uint8_t)id;
    f->op_name = "";
    f->cause = "sensor";
    e->has_fail = 1;
    e->inst[id].failed = 1;
    qeil_ctx_log(e->ctx, QEIL_LOG_WARN, "device %s marked failed: %s", dev_name(id),
                 why ? why : "(no reason given)");
    return QEIL_OK;
}

qeil_status qeil_engine_recover(qeil_engine *e, const uint8_t *backend, uint32_t n_units,
                                qeil_engine_recovery *out)
{
    if (!e || !backend || !out) return QEIL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (n_units != e->n_units)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_RANGE, "recover: %u units given; the model has %u",
                             n_units, e->n_units);
    uint8_t moved[QEIL_MAX_WUNITS];
    for (uint32_t u = 0; u < n_units; u++) {
        if (backend[u] >= N_BACKENDS || e->inst[backend[u]].failed)
            return qeil_ctx_fail(e->ctx, QEIL_ERR_INVALID, "recover: unit %u goes to a failed or unknown device",
                                 u);
        moved[u] = e->inst[e->place[u]].failed;
        if (!moved[u] && backend[u] != e->place[u])
            return qeil_ctx_fail(e->ctx, QEIL_ERR_INVALID,
                                 "recover: unit %u is on a healthy device and must stay there", u);
        out->units_moved += moved[u];
    }
    double t0 = qeil_clock_s();
    release_alt(e); /* one map for both phases from here */
    qeil_status st = apply_placement(e, backend);
    if (st == QEIL_OK) {
        memcpy(e->place_pf, e->place, n_units);
        memcpy(e->place_dc, e->place, n_units);
    }
    out->move_s = since(t0);
    if (st != QEIL_OK) return st;
    if (!e->kv_host) return QEIL_OK;
    /* KV of the moved blocks: the committed rows from the host copy */
    t0 = qeil_clock_s();
    const size_t hd = e->hp.head_dim, per = kv_layer_floats(&e->hp);
    for (uint32_t l = 0; l < e->hp.n_layers; l++) {
        const qeil_bkv *kv = &e->kv[l];
        /* every conv block, moved or not: its state rolls forward with each
         * step (a K/V row is rewritten in place by the step's re-run, a
         * conv state would be advanced twice), so it goes back to the end
         * of the last completed step */
        if (!moved[l + 1] && !kv->conv) continue;
        bk_inst *I = &e->inst[e->place[l + 1]];
        const float *hk = e->kv_host + 2 * per * l, *hv = hk + per;
        if (kv->conv) { /* a conv block's whole state */
            I->be->to_backend(I->st, kv->conv, hk, conv_layer_floats(&e->hp) * sizeof(float));
            continue;
        }
        for (uint32_t sq = 0; sq < e->hp.n_seq; sq++) {
            const size_t len = e->seq_len[sq];
            for (uint32_t h = 0; len && h < kv->n_kv_heads; h++) {
                const size_t o = ((size_t)sq * kv->n_kv_heads + h) * kv->n_ctx * hd;
                I->be->to_backend(I->st, kv->k + o, hk + o, len * hd * sizeof(float));
                I->be->to_backend(I->st, kv->v + o, hv + o, len * hd * sizeof(float));
            }
        }
    }
    for (uint8_t id = 0; id < N_BACKENDS; id++)
        if (e->inst[id].be && !e->inst[id].failed &&
            (st = check_inst(e, id, 0, t0, 1)) != QEIL_OK)
            return st;
    out->kv_s = since(t0);
    out->kv_restored = 1;
    return QEIL_OK;
}

void qeil_engine_readmit(qeil_engine *e)
{
    if (!e) return;
    for (size_t id = 0; id < N_BACKENDS; id++) {
        bk_inst *I = &e->inst[id];
        const int injected = I->fw != NULL;
        inst_unwrap(I);
        if (!I->failed) continue;
        const int used = inst_used(e, (uint32_t)id);
        /* a fault the wrapper injected left the instance sound underneath;
         * a real failure leaves nothing to trust */
        if (!injected && !used) inst_destroy(I);
        else I->failed = 0;
    }
    e->has_fail = 0;
}

void qeil_engine_unit_times(const qeil_engine *e, double *t_s, uint32_t n_units)
{
    if (!t_s) return;
    for (uint32_t u = 0; u < n_units; u++) t_s[u] = e && u < e->n_units ? e->unit_t[u] : 0.0;
}

void qeil_engine_unit_times_reset(qeil_engine *e)
{
    if (e) memset(e->unit_t, 0, sizeof e->unit_t);
}
