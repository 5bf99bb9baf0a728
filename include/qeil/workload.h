/*
 * workload.h — per-unit FLOPs, bytes moved and resident bytes of one request
 * (prefill of P prompt tokens, then k samples of N generated tokens each).
 *
 * Usage:
 *
 *     qeil_workload_params wp = qeil_workload_default_params();
 *     wp.prompt_tokens = 512; wp.gen_tokens = 128; wp.samples = 8;
 *     qeil_workload wl;
 *     if (qeil_workload_build(ctx, &md, &wp, &wl) != QEIL_OK) { ...errmsg... }
 *     double f = wl.u[1].pf_flops;   // FLOPs of block 0 during prefill
 *
 * Decode figures are per decode step and per sequence at the mean context
 * c̄ = P + (N-1)/2. FLOPs and bytes are affine in the context length, so
 * N × (value at c̄) equals the exact sum over the N steps. Weight bytes are
 * listed separately because a decode batch of b sequences reads them once
 * per step for all b (that is what batching buys). Derivations, per
 * architecture: docs/workload.md. Thread-safety: reentrant.
 */
#ifndef QEIL_WORKLOAD_H
#define QEIL_WORKLOAD_H

#include "qeil/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_MAX_SAMPLES 256

typedef struct {
    uint32_t prompt_tokens; /* P, 1..ctx_max-1; default 512 */
    uint32_t gen_tokens;    /* N, 1..ctx_max-P; default 128 */
    uint32_t samples;       /* k repeated samples, 1..QEIL_MAX_SAMPLES; default 1 */
} qeil_workload_params;

QEIL_API qeil_workload_params qeil_workload_default_params(void);

typedef struct {
    /* Prefill of the P-token prompt (once; its KV is shared by the k samples). */
    double pf_flops;      /* FLOPs (an FMA = 2) */
    double pf_weight_B;   /* weight bytes read (once) */
    double pf_kv_write_B; /* K and V written for P tokens */
    double pf_kv_read_B;  /* K and V read by attention */
    double pf_act_B;      /* activation traffic inside the unit (read + write) */
    double pf_out_B;      /* activations handed to the next unit (P × d_model × 4) */

    /* One decode step of one sequence at context c̄. */
    double dc_flops;      /* per sequence */
    double dc_weight_B;   /* per step, shared by the whole batch */
    double dc_kv_read_B;  /* per sequence */
    double dc_kv_write_B; /* per sequence */
    double dc_act_B;      /* per sequence */
    double dc_out_B;      /* per sequence, handed to the next unit */

    /* Resident bytes where the unit runs. */
    double weight_res_B;  /* its weights */
    double kv_res_B;      /* KV cache of one sequence at context P + N */
    double scratch_B;     /* activation scratch for a P-token prefill */

    /* Backend calls (kernel dispatches) of one forward step of the unit on
     * the CPU engine (src/engine/forward.c, fused Q|K|V and gate|up
     * matmuls): what the per-dispatch overhead op_s multiplies
     * (docs/energy-model.md §1.8, docs/workload.md "Dispatches"). */
    double ops;
    /* The context-dependent attention FLOPs (QKᵀ, the weighted sum of V,
     * the softmax), already inside pf_flops / dc_flops: the P² part of a
     * prefill and the c̄ part of one decode step of one sequence. What the
     * attention costs attn_pf_flop_s / attn_dc_flop_s multiply
     * (docs/energy-model.md §1.9). */
    double pf_attn_flops, dc_attn_flops;
} qeil_unit_work;

typedef struct {
    char model_name[QEIL_NAME_MAX];
    uint32_t prompt_tokens, gen_tokens, samples;
    double mean_ctx;            /* c̄ */
    uint32_t n_units;           /* n_layers + 2 */
    qeil_dtype dtype[QEIL_MAX_WUNITS]; /* compute type per unit (from the model) */
    qeil_unit_work u[QEIL_MAX_WUNITS];
    /* Bytes of the matrix unit 0 and the head share when the embeddings are
     * tied (0 when untied). Both units' weight_res_B include it (a head on
     * another pool holds its own copy, as llama.cpp does); a pool that holds
     * both units needs it once, so subtract tied_B there. */
    double tied_B;
} qeil_workload;

/* Validates wp against the model (names the field, value and range). */
QEIL_API qeil_status qeil_workload_build(qeil_ctx *ctx, const qeil_model_desc *md,
                                         const qeil_workload_params *wp, qeil_workload *out);

/* Totals over all units, handy for reports and tests. */
QEIL_API double qeil_workload_prefill_flops(const qeil_workload *wl);
QEIL_API double qeil_workload_decode_flops_per_token(const qeil_workload *wl); /* one sequence */

#ifdef __cplusplus
}
#endif

#endif /* QEIL_WORKLOAD_H */
