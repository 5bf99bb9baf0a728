/*
 * engine.h — run GGUF transformer models (llama, qwen2, gpt2) unit by unit:
 * token embedding, each block, LM head — the same units the workload model
 * and the planner use, so a plan's device map can drive placement.
 *
 * Usage:
 *
 *     qeil_engine_params ep = qeil_engine_default_params();
 *     ep.n_ctx = 512;
 *     qeil_engine *e = NULL;
 *     if (qeil_engine_open(ctx, "model.gguf", &ep, &e) != QEIL_OK) { ...errmsg... }
 *     int32_t ids[64]; size_t n;
 *     qeil_tokenizer_encode(ctx, qeil_engine_tokenizer(e), "Hello", -1, 0, ids, 64, &n);
 *     float *logits = malloc(sizeof(float) * qeil_engine_n_vocab(e));
 *     qeil_engine_eval(e, 0, ids, (uint32_t)n, logits, 0);   // prefill seq 0
 *     ...sample a token t...
 *     qeil_engine_eval(e, 0, &t, 1, logits, 0);              // one decode step
 *     qeil_engine_free(e);
 *
 * The engine knows nothing about energy. It allocates everything at open
 * (KV cache for n_ctx × n_seq, scratch for n_batch tokens); evaluation does
 * not allocate. Determinism: the same inputs give bit-identical logits
 * whatever n_threads. Thread-safety: one engine per thread of control (it
 * runs its own worker pool).
 */
#ifndef QEIL_ENGINE_H
#define QEIL_ENGINE_H

#include "qeil/model.h"
#include "qeil/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_ENGINE_MAX_SEQ 256
#define QEIL_ENGINE_MAX_THREADS 256

typedef struct {
    int n_threads;    /* worker threads, 0 = online CPUs; 1..QEIL_ENGINE_MAX_THREADS */
    uint32_t n_ctx;   /* KV capacity per sequence; 0 = min(model context, 4096) */
    uint32_t n_seq;   /* sequences with their own KV (repeated samples); default 1 */
    uint32_t n_batch; /* max tokens per eval call (prefill chunk); default 512 */
    /* reliability (docs/runtime.md "Recovery from a failed unit") */
    double watchdog_s; /* bound on each wait for a device (sync) per row of the
                          step and unit the wait covers: a wait for k units
                          longer than k x (watchdog_s x rows + 8 x the device's
                          slowest honest wait per unit) (its first wait: 8 x
                          watchdog_s x rows x k) means a hung device; (0, 3600];
                          default 0.25 */
    int kv_host_copy;  /* 1: keep a host copy of every block's KV (updated after
                          each step), so a failed device's KV is restored from
                          it; 0: none (the caller recomputes); default 0 */
} qeil_engine_params;

QEIL_API qeil_engine_params qeil_engine_default_params(void);

typedef struct qeil_engine qeil_engine;

/* Open a GGUF file (mmapped), check architecture, shapes and tensor types
 * (unsupported ones are refused naming the tensor and type), build the
 * tokenizer, allocate KV cache and scratch. */
QEIL_API qeil_status qeil_engine_open(qeil_ctx *ctx, const char *path, const qeil_engine_params *p,
                                      qeil_engine **out);
QEIL_API void qeil_engine_free(qeil_engine *e);

QEIL_API const qeil_tokenizer *qeil_engine_tokenizer(const qeil_engine *e);
/* The model's tokenizer.chat_template (Jinja source, qeil/chat.h detects its
 * family), or NULL when the file has none; owned by e. */
QEIL_API const char *qeil_engine_chat_template(const qeil_engine *e);
QEIL_API const qeil_model_desc *qeil_engine_desc(const qeil_engine *e);
QEIL_API uint32_t qeil_engine_n_vocab(const qeil_engine *e);
QEIL_API uint32_t qeil_engine_n_ctx(const qeil_engine *e);

/* Append n tokens to sequence seq (positions seq_len..seq_len+n-1) and run
 * the forward pass. logits: n_vocab floats for the last token, or n × n_vocab
 * when all_logits (perplexity); may be NULL. QEIL_ERR_RANGE when the context
 * would overflow (message names n_ctx) or a token id is out of range.
 * n >= 2 runs the prefill placement, n = 1 the decode placement
 * (qeil_engine_set_placements). */
QEIL_API qeil_status qeil_engine_eval(qeil_engine *e, uint32_t seq, const int32_t *tokens, uint32_t n,
                                      float *logits, int all_logits);

/* One decode step for m sequences at once (one token each): weights are
 * read once for the whole batch. logits: m × n_vocab. Runs the decode
 * placement. */
QEIL_API qeil_status qeil_engine_eval_batch(qeil_engine *e, const uint32_t *seqs, const int32_t *tokens,
                                            uint32_t m, float *logits);

/* Sequence management: copy src's KV into dst (fork a prompt into samples),
 * clear a sequence, its current length. */
QEIL_API qeil_status qeil_engine_seq_copy(qeil_engine *e, uint32_t src, uint32_t dst);
QEIL_API void qeil_engine_seq_reset(qeil_engine *e, uint32_t seq);
QEIL_API uint32_t qeil_engine_seq_len(const qeil_engine *e, uint32_t seq);

/* Bytes the engine holds: mapped weights, KV cache, scratch, tokenizer
 * (a few MB for a 128K-token vocabulary: 5.4 MB for qeil mkmodel's
 * Llama-3.2-1B). */
typedef struct {
    size_t weights_B, kv_B, scratch_B, tokenizer_B;
} qeil_engine_memory;
QEIL_API qeil_engine_memory qeil_engine_memory_use(const qeil_engine *e);

/* ---- Backends and placement ---- */

/* Names of the compiled-in backends ("cpu", later "cuda"); index = id. */
QEIL_API size_t qeil_engine_n_backends(void);
QEIL_API const char *qeil_engine_backend_name(size_t id);

/* Run work unit u (0 = embedding, 1..n_layers = blocks, n_layers+1 = head)
 * on backend id backend[u], in both phases (qeil_engine_set_placements
 * with the same map twice). Default: all on "cpu". */
QEIL_API qeil_status qeil_engine_set_placement(qeil_engine *e, const uint8_t *backend, uint32_t n_units);

/* Separate prefill and decode placements (docs/engine.md "Prefill and
 * decode placements"). A call of qeil_engine_eval with n >= 2 tokens runs
 * the prefill map; one with n = 1 and qeil_engine_eval_batch run the
 * decode map. A unit whose two maps differ has its weights prepared on
 * both devices, and its block's KV (or LFM2 conv state) on both: the
 * copy of the phase that runs is complete; at a phase switch the rows
 * written since the last switch move to the other copy (counted in
 * qeil_engine_transfer_stats: kv_B, kv_s), so the KV a decode reads lives
 * where the decode runs. Activations are copied between devices at unit
 * boundaries. Checks and errors: set_placement's, for each map (nothing
 * changes when a map is refused before anything moves; when a device
 * cannot take a unit of the other phase, the engine keeps running the
 * current phase's map for both phases and returns the error). Recovery
 * (qeil_engine_recover) leaves one map for both phases. */
QEIL_API qeil_status qeil_engine_set_placements(qeil_engine *e, const uint8_t *prefill,
                                                const uint8_t *decode, uint32_t n_units);
/* Both maps (either may be NULL); n_units must be the model's. */
QEIL_API qeil_status qeil_engine_get_placements(const qeil_engine *e, uint8_t *prefill,
                                                uint8_t *decode, uint32_t n_units);

#define QEIL_ENGINE_MAX_DEVICES 8
/* Transfers between devices and time per device, per phase ([0] prefill,
 * [1] decode), since open or the last reset. */
typedef struct {
    uint64_t rows[2];       /* token rows evaluated */
    uint64_t act_B[2];      /* activation bytes copied at unit boundaries (each
                               boundary where the next unit runs on another device:
                               n_rows x d_model floats) */
    uint64_t act_n[2];      /* such boundary copies */
    double act_s[2];        /* wall-clock seconds of those copies */
    uint64_t kv_B;          /* KV / conv-state bytes moved at phase switches */
    double kv_s;            /* their seconds (copies and the devices' syncs) */
    uint64_t n_switch;      /* phase switches while the two maps differ */
    double dev_s[2][QEIL_ENGINE_MAX_DEVICES]; /* seconds of the units on each
                               device (qeil_engine_device_name's ids) */
    uint64_t submits[QEIL_ENGINE_MAX_DEVICES]; /* command submissions to each
                               device (vulkan: queue submits; 0 on the cpu, which
                               runs ops as they are called), both phases: an
                               instance's count since the reset or its creation */
} qeil_engine_transfers;
QEIL_API void qeil_engine_transfer_stats(const qeil_engine *e, qeil_engine_transfers *out);
QEIL_API void qeil_engine_transfer_stats_reset(qeil_engine *e);

/* Parse a placement for a model of n_layers blocks into backend[n_units]
 * (n_units = n_layers + 2) for qeil_engine_set_placement, e.g. "all:vk0"
 * or "emb..b7:cpu,b8..head:vk0": comma-separated RANGE:DEVICE items;
 * RANGE is "all", a unit or UNIT..UNIT (inclusive, in order), a unit is
 * emb, b0..b<n_layers-1> or head; DEVICE is cpu, vk0 (the "vulkan"
 * backend, Vulkan device 0), cpu1 (the cpu backend as a second unit) or
 * cpu-NAME (a core cluster, below; qeil_engine_device_name). Every unit exactly once. Errors name the item:
 * QEIL_ERR_FORMAT (syntax, unknown unit), QEIL_ERR_RANGE (a block past the
 * last, a backwards range), QEIL_ERR_NOTFOUND (unknown device),
 * QEIL_ERR_INVALID (a unit placed twice or not at all). Whether the device
 * exists and takes the model's types is set_placement's to say. */
QEIL_API qeil_status qeil_placement_parse(qeil_ctx *ctx, const char *spec, uint32_t n_layers,
                                 uint8_t *backend, uint32_t n_units);

/* A placement with separate phases: "prefill=SPEC;decode=SPEC" (either
 * order, each once; SPEC as qeil_placement_parse) into prefill[] and
 * decode[]; a plain SPEC sets both. Errors: qeil_placement_parse's, each
 * message naming the phase, and QEIL_ERR_FORMAT for a malformed phase
 * form (an unknown or repeated phase name, a missing one, an empty SPEC). */
QEIL_API qeil_status qeil_placement_parse_phases(qeil_ctx *ctx, const char *spec, uint32_t n_layers,
                                                 uint8_t *prefill, uint8_t *decode, uint32_t n_units);
/* The spec of a placement, the inverse of the parsers: ranges of equal
 * device ("emb..b3:cpu,b4..head:vk0", or "all:vk0"), or
 * "prefill=SPEC;decode=SPEC" when decode is non-NULL and differs from
 * prefill. n_layers = n_units - 2. QEIL_ERR_RANGE when cap is too small
 * (buf then holds ""), QEIL_ERR_INVALID for an unknown backend id. */
QEIL_API qeil_status qeil_placement_format(const uint8_t *prefill, const uint8_t *decode,
                                           uint32_t n_units, char *buf, size_t cap);

/* The local device names a placement uses: "cpu", "vk0" (the vulkan
 * backend), "cpu1" (the cpu backend as a second CPU unit), then one
 * "cpu-NAME" per core cluster (ids 3.., below); index = backend id. NULL
 * for an id past the last. */
QEIL_API const char *qeil_engine_device_name(size_t id);

/* ---- CPU devices bound to core clusters (docs/engine.md "CPU clusters") ----
 *
 * Where the CPU has several core clusters (big.LITTLE, x86 P- and E-cores:
 * read from sysfs as `qeil probe` does), or $QEIL_CPU_CLUSTERS names core
 * sets ("NAME=LIST[,NAME=LIST...]", e.g. "p=0-3,e=4-7" or "a=0,b=1"), each
 * cluster is a device "cpu-NAME" after "cpu", "vk0" and "cpu1": the cpu
 * backend with min(n_threads, the cluster's CPUs) worker threads bound to
 * the cluster's CPUs (the calling thread's affinity is not changed). "cpu"
 * stays unbound, on every usable CPU. The table is read again when
 * $QEIL_CPU_CLUSTERS or the calling thread's affinity changes, so the
 * device count and names may change between calls; qeil_engine_open
 * refuses a bad override with its error. */

/* The CPUs device id is bound to, as a CPU list ("4-7") in buf[n] (may be
 * NULL); returns how many (0: a device bound to no core set, "cpu",
 * "cpu1", "vk0", or an id past the last). */
QEIL_API int qeil_engine_device_cpus(size_t id, char *buf, size_t n);
/* Whether the clusters could be read: QEIL_OK, with how they were found
 * in source[n] ("override", "cpu_type", "cpu_capacity",
 * "cpuinfo_max_freq", "uniform": one cluster, so no cluster device); or a
 * bad $QEIL_CPU_CLUSTERS's error, naming the cluster and item
 * (QEIL_ERR_FORMAT, QEIL_ERR_RANGE: a CPU that does not exist or that this
 * thread may not run on, QEIL_ERR_INVALID: a name or CPU given twice). */
QEIL_API qeil_status qeil_engine_cpu_clusters(qeil_ctx *ctx, char *source, size_t n);

/* The placement of the phase that ran last (prefill until the first
 * decode call): backend[u] for u < n_units (n_units must be the model's). */
QEIL_API qeil_status qeil_engine_get_placement(const qeil_engine *e, uint8_t *backend,
                                               uint32_t n_units);

/* ---- Faults and recovery (docs/runtime.md "Recovery from a failed unit") ----
 *
 * Evaluation syncs each device with a bounded wait (watchdog_s per row
 * and unit waited for: a GPU once per run of its units, the cpu after
 * each unit; docs/engine.md "Syncs and unit times") and checks every
 * device before a step's results count. A device
 * whose op or sync fails (device lost, out of memory) or whose wait times
 * out (hung) is marked failed: the call returns QEIL_ERR_DEVICE ("device
 * vk0 failed: ..."), nothing of the step is committed (sequence lengths
 * and logits are as before), and qeil_engine_last_failure says what
 * happened. qeil_engine_recover then moves the failed device's units. */

typedef enum {
    QEIL_FAULT_NONE = 0, /* count the device's ops only (a sweep's reference run) */
    QEIL_FAULT_ERROR,    /* op #n fails: device lost */
    QEIL_FAULT_HANG,     /* op #n never completes: the watchdog fires at the next sync */
    QEIL_FAULT_OOM       /* op #n fails: out of device memory */
} qeil_fault_kind;

QEIL_API const char *qeil_fault_kind_name(qeil_fault_kind k); /* "none", "error", "hang", "oom" */

typedef struct {
    uint8_t device;       /* backend id (qeil_engine_device_name) */
    qeil_fault_kind kind;
    uint64_t op;          /* fail the op-th op (1-based) counted on the device from
                             arming: every forward op, transfer and sync
                             (src/backends/fault/fault.h lists them) */
} qeil_fault;

/* Parse "DEVICE:KIND:N" (QEIL_FAULT; e.g. "vk0:error:120"): DEVICE a
 * placement device name, KIND error|hang|oom, N 1..2^63. QEIL_ERR_FORMAT /
 * QEIL_ERR_NOTFOUND / QEIL_ERR_RANGE naming the part, its value and what is
 * allowed. */
QEIL_API qeil_status qeil_fault_parse(qeil_ctx *ctx, const char *spec, qeil_fault *out);

/* Arm fault f (NULL: disarm every fault) on a device that runs at least one
 * unit (QEIL_ERR_RANGE otherwise): its instance is wrapped by the fault
 * backend, whose op counter starts at 0. One fault at a time (arming
 * replaces the previous one). */
QEIL_API qeil_status qeil_engine_set_fault(qeil_engine *e, const qeil_fault *f);
/* Ops counted on `device` since its fault was armed (0 when none is). */
QEIL_API uint64_t qeil_engine_fault_ops(const qeil_engine *e, uint8_t device);

typedef struct {
    uint8_t device;         /* backend id */
    uint32_t unit;          /* the work unit that failed: the one whose op failed
                               (an op's error, an injected fault), else the
                               first of the run of units the failed wait
                               covered */
    uint64_t op;            /* the failing op's index on the device (injected
                               faults; 0 = unknown) */
    const char *op_name;    /* its name ("matmul", "sync", ...; "" = unknown); static */
    const char *cause;      /* "error", "hang", "oom" or "sensor"; static */
    double detect_s;        /* from the failing op (injected) or the start of the
                               failing unit's work to the failure's detection */
} qeil_engine_failure;

/* The last device failure (1), or 0 when none since open. */
QEIL_API int qeil_engine_last_failure(const qeil_engine *e, qeil_engine_failure *out);
/* 1 when device `id` is marked failed. */
QEIL_API int qeil_engine_device_failed(const qeil_engine *e, size_t id);

typedef struct {
    double move_s;        /* the moved units' weights prepared on their new devices,
                             KV allocated */
    double kv_s;          /* KV of the moved blocks restored from the host copy (0
                             without one) */
    uint32_t units_moved;
    int kv_restored;      /* 1: from the host copy; 0: the moved blocks' KV is empty
                             and the caller must recompute every sequence's prefix */
} qeil_engine_recovery;

/* Mark device `id` failed from outside (a sensor reports it dead: the
 * runtime's health checks); `why` goes to the log. The next evaluation
 * returns QEIL_ERR_DEVICE with cause "sensor" until qeil_engine_recover.
 * QEIL_ERR_RANGE when the device has no instance. */
QEIL_API qeil_status qeil_engine_mark_failed(qeil_engine *e, size_t id, const char *why);

/* Move every unit off failed devices to `backend` (a placement that names
 * no failed device and keeps every healthy unit where it is; QEIL_ERR_INVALID
 * otherwise): weights from the model file, KV from the host copy when the
 * engine keeps one. The failed instances are kept, unused, until the engine
 * is freed or qeil_engine_readmit. Errors: set_placement's. */
QEIL_API qeil_status qeil_engine_recover(qeil_engine *e, const uint8_t *backend, uint32_t n_units,
                                         qeil_engine_recovery *out);
/* Clear every failure mark and disarm faults (an instance that failed by an
 * injected fault is healthy underneath and is reused; one that really
 * failed is destroyed). The placement is unchanged: set it again to use
 * the device. */
QEIL_API void qeil_engine_readmit(qeil_engine *e);

/* Wall-clock seconds spent per work unit since open or the last reset
 * (measured, for the runtime to refine the planner's efficiency factors). */
QEIL_API void qeil_engine_unit_times(const qeil_engine *e, double *t_s, uint32_t n_units);
QEIL_API void qeil_engine_unit_times_reset(qeil_engine *e);

/* ---- Random-weight models for tests and benchmarks (qeil mkmodel) ---- */

typedef struct {
    qeil_arch arch;
    uint32_t n_layers, d_model, n_heads, n_kv_heads, d_ff, vocab, ctx;
    int type;          /* qeil_ggml_type of the 2-D weights */
    uint64_t seed;
    float rope_base;   /* llama/qwen2; default 10000 */
    int rope_scaling_llama3; /* 1: Llama-3 RoPE (rope_freqs.weight, as llama.cpp's converter) */
    int tied;          /* share token embedding and output */
    const char *chat_template; /* NULL, or a chat template name (qeil/chat.h: "llama3",
                                  "chatml", "granite", "lfm2", "gemma", "mistral-v7"):
                                  its real source goes in tokenizer.chat_template and
                                  the special tokens it spells become CONTROL tokens
                                  (in the padding slots; vocab must leave room) */
    /* granite: the four multipliers (defaults: Granite-4.0-350M's, docs/models.md) */
    float embedding_scale, residual_scale, attention_scale, logit_scale;
    /* lfm2: short-convolution kernel length (2..64, default 3) and which
     * blocks are attention (bit l set: block l; the rest are short
     * convolutions; n_layers <= 64). Default: the odd blocks. */
    uint32_t conv_L;
    uint64_t attn_layers;
} qeil_mkmodel_params;

QEIL_API qeil_mkmodel_params qeil_mkmodel_default_params(void);
/* Presets with the shapes of the paper's families ("llama-3.2-1b",
 * "granite-4.0-350m", "lfm2-350m", ...) and tiny-* test models. */
QEIL_API qeil_status qeil_mkmodel_preset(qeil_ctx *ctx, const char *name, qeil_mkmodel_params *out);
/* Write a valid GGUF with random weights and a small vocabulary. */
QEIL_API qeil_status qeil_mkmodel_write(qeil_ctx *ctx, const qeil_mkmodel_params *p, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_ENGINE_H */
