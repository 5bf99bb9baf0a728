/* cmd_models.c — `qeil models`: list the built-in model configs, or show one
 * (or a GGUF file's own description) with the weight bytes of every unit.
 * Shapes and sources: docs/models.md. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "opt.h"
#include "qeil/model.h"

#define CMD "models"

typedef struct {
    cli_output out;
    const char *which; /* NAME|FILE.gguf, or NULL: the catalog */
} models_opts;

static int one_model(const char *cmd, const char *arg, void *vo)
{
    models_opts *o = vo;
    if (o->which) return cli_usage_error(cmd, "one model at a time ('%s' and '%s')", o->which, arg);
    o->which = arg;
    return 0;
}

static const cli_optdef models_table[] = {
    {CLI_OUTPUT("table|json (default table)", models_opts, out, "table|json")},
};

static const cli_command models_cmd = {
    CMD,
    "usage: qeil models [NAME|FILE.gguf] [--output table|json]\n\n"
    "Without NAME, list the built-in model configs (published shapes; weight bytes\n"
    "follow the GGUF block layouts). With NAME or a GGUF file (a path containing '/'\n"
    "or ending in .gguf), show that model in full with the weight bytes and compute\n"
    "type of every unit: emb (token embedding), b0..bN-1 (blocks), head (final norm +\n"
    "LM head). A tied head reads the embedding table: its bytes appear in both units\n"
    "and once in the total.\n",
    models_table,
    CLI_NOPTS(models_table),
    "examples:\n"
    "  qeil models\n"
    "  qeil models llama-3.1-8b-q4\n"
    "  qeil models ./model.gguf --output json\n",
    one_model,
};

static const char *type_name(int t)
{
    const char *n = qeil_ggml_type_name(t);
    return n ? n : "?";
}

/* "124.4M" / "1.24B", as model cards write them. */
static void fmt_count(char *buf, size_t cap, double n)
{
    if (n >= 1e9) snprintf(buf, cap, "%.2fB", n / 1e9);
    else if (n >= 1e6) snprintf(buf, cap, "%.1fM", n / 1e6);
    else snprintf(buf, cap, "%.0f", n);
}

static void unit_label(char *buf, size_t cap, const qeil_model_desc *md, uint32_t u)
{
    if (u == 0) snprintf(buf, cap, "emb");
    else if (u == md->n_layers + 1) snprintf(buf, cap, "head");
    else snprintf(buf, cap, "b%u", u - 1);
}

/* ---- table ------------------------------------------------------------ */

static void table_header(void)
{
    printf("%-18s %-7s %6s %7s %8s %6s %7s %7s %8s %-6s %9s\n", "NAME", "ARCH", "LAYERS", "D_MODEL",
           "HEADS/KV", "D_FF", "VOCAB", "CTX", "PARAMS", "WTYPE", "WEIGHT_GB");
}

static void table_row(const qeil_model_desc *md)
{
    char heads[32], params[32];
    snprintf(heads, sizeof heads, "%u/%u", md->n_heads, md->n_kv_heads);
    fmt_count(params, sizeof params, qeil_model_params(md));
    printf("%-18s %-7s %6u %7u %8s %6u %7u %7u %8s %-6s %9.3f\n", cli_term(md->name), qeil_arch_name(md->arch),
           md->n_layers, md->d_model, heads, md->d_ff, md->vocab, md->ctx_max, params,
           type_name(md->weight_type), qeil_model_weight_bytes(md) / 1e9);
}

static void show_table(const qeil_model_desc *md)
{
    char params[32];
    fmt_count(params, sizeof params, qeil_model_params(md));
    printf("name            %s\n", cli_term(md->name));
    printf("description     %s\n", cli_term(md->description));
    printf("arch            %s\n", qeil_arch_name(md->arch));
    printf("layers          %u\n", md->n_layers);
    printf("d_model         %u\n", md->d_model);
    printf("heads           %u (kv %u, head_dim %u)\n", md->n_heads, md->n_kv_heads, md->head_dim);
    printf("d_ff            %u\n", md->d_ff);
    printf("vocab           %u\n", md->vocab);
    printf("context         %u tokens\n", md->ctx_max);
    printf("tied embeddings %s\n", md->tied_embeddings ? "yes" : "no");
    printf("params          %s (%.0f)\n", params, qeil_model_params(md));
    printf("weight type     %s (dominant)\n", type_name(md->weight_type));
    printf("weights         %.0f B (%.3f GB)\n", qeil_model_weight_bytes(md),
           qeil_model_weight_bytes(md) / 1e9);
    printf("kv cache type   %s\n", type_name(md->kv_type));
    printf("\n%-6s %16s %10s %s\n", "UNIT", "WEIGHT_B", "MiB", "DTYPE");
    for (uint32_t u = 0; u < qeil_model_n_units(md); u++) {
        char lab[16];
        unit_label(lab, sizeof lab, md, u);
        const int conv = u >= 1 && u <= md->n_layers && md->layer_kind[u - 1] == QEIL_LAYER_CONV;
        printf("%-6s %16.0f %10.2f %s%s\n", lab, md->unit_weight_B[u],
               md->unit_weight_B[u] / (1024.0 * 1024.0), qeil_dtype_name(md->unit_dtype[u]),
               u == md->n_layers + 1 && md->tied_embeddings ? "   (includes the tied embedding table)"
               : conv ? "   (short convolution: no KV cache)"
                      : "");
    }
}

/* ---- json ------------------------------------------------------------- */

static cJSON *model_json(const qeil_model_desc *md, int with_units)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", md->name);
    cJSON_AddStringToObject(m, "description", md->description);
    cJSON_AddStringToObject(m, "arch", qeil_arch_name(md->arch));
    cJSON_AddNumberToObject(m, "layers", md->n_layers);
    cJSON_AddNumberToObject(m, "d_model", md->d_model);
    cJSON_AddNumberToObject(m, "n_heads", md->n_heads);
    cJSON_AddNumberToObject(m, "n_kv_heads", md->n_kv_heads);
    cJSON_AddNumberToObject(m, "head_dim", md->head_dim);
    cJSON_AddNumberToObject(m, "d_ff", md->d_ff);
    cJSON_AddNumberToObject(m, "vocab", md->vocab);
    cJSON_AddNumberToObject(m, "ctx_max", md->ctx_max);
    cJSON_AddBoolToObject(m, "tied_embeddings", md->tied_embeddings);
    cJSON_AddNumberToObject(m, "params", qeil_model_params(md));
    cJSON_AddStringToObject(m, "weight_type", type_name(md->weight_type));
    cJSON_AddNumberToObject(m, "weight_B", qeil_model_weight_bytes(md));
    cJSON_AddStringToObject(m, "kv_type", type_name(md->kv_type));
    if (md->conv_L) cJSON_AddNumberToObject(m, "conv_L", md->conv_L);
    if (with_units) {
        cJSON_AddNumberToObject(m, "token_embd_B", md->token_embd_B);
        cJSON *units = cJSON_AddArrayToObject(m, "units");
        for (uint32_t u = 0; u < qeil_model_n_units(md); u++) {
            char lab[16];
            unit_label(lab, sizeof lab, md, u);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", u);
            cJSON_AddStringToObject(o, "unit", lab);
            cJSON_AddNumberToObject(o, "weight_B", md->unit_weight_B[u]);
            cJSON_AddStringToObject(o, "dtype", qeil_dtype_name(md->unit_dtype[u]));
            if (u >= 1 && u <= md->n_layers) /* lfm2 conv blocks keep no KV cache */
                cJSON_AddStringToObject(o, "kind",
                                        md->layer_kind[u - 1] == QEIL_LAYER_CONV ? "conv" : "attention");
            cJSON_AddItemToArray(units, o);
        }
    }
    return m;
}

static int print_json(cJSON *root)
{
    int bad = cli_json_print(root);
    cJSON_Delete(root);
    return bad ? cli_fail(CMD, "out of memory") : CLI_OK;
}

static cJSON *json_root(void)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", qeil_version());
    cJSON *units = cJSON_AddObjectToObject(root, "units");
    cJSON_AddStringToObject(units, "weight_B", "bytes");
    cJSON_AddStringToObject(units, "params", "count");
    cJSON_AddStringToObject(units, "ctx_max", "tokens");
    return root;
}

/* ---- entry ------------------------------------------------------------ */

int cmd_models(int argc, char **argv)
{
    models_opts o = {.out = CLI_OUT_TABLE};
    int rc = cli_opt_parse(&models_cmd, argc, argv, &o);
    if (rc != CLI_OK) return rc == CLI_OPT_HELP ? CLI_OK : rc;
    const cli_output out = o.out;
    const char *which = o.which;

    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    if (which) {
        qeil_model_desc md;
        if (qeil_model_load(ctx, which, &md) != QEIL_OK) {
            rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        } else if (out == CLI_OUT_JSON) {
            cJSON *root = json_root();
            cJSON_AddItemToObject(root, "model", model_json(&md, 1));
            rc = print_json(root);
        } else {
            show_table(&md);
        }
    } else {
        cJSON *root = out == CLI_OUT_JSON ? json_root() : NULL;
        cJSON *arr = root ? cJSON_AddArrayToObject(root, "models") : NULL;
        if (!root) table_header();
        for (size_t i = 0; i < qeil_model_catalog_count() && rc == CLI_OK; i++) {
            qeil_model_desc md;
            if (qeil_model_catalog_get(ctx, i, &md) != QEIL_OK) {
                rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
                break;
            }
            if (arr) cJSON_AddItemToArray(arr, model_json(&md, 0));
            else table_row(&md);
        }
        if (root) {
            if (rc == CLI_OK) rc = print_json(root);
            else cJSON_Delete(root);
        }
    }
    qeil_ctx_free(ctx);
    return rc;
}
