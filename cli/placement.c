/* placement.c — --placement SPEC for the commands that run a model
 * (qeil_placement_parse_phases: a plain SPEC or prefill=SPEC;decode=SPEC;
 * docs/cli.md). */
#include "cli.h"
#include "qeil/engine.h"
#include "qeil/model.h"

int cli_placement(const char *cmd, qeil_ctx *ctx, qeil_engine *e, const char *spec)
{
    if (!spec) return CLI_OK;
    const qeil_model_desc *md = qeil_engine_desc(e);
    const uint32_t nu = qeil_model_n_units(md);
    uint8_t place[QEIL_MAX_WUNITS], dc[QEIL_MAX_WUNITS];
    if (nu > QEIL_MAX_WUNITS) return cli_fail(cmd, "--placement: %u units is too many", nu);
    if (qeil_placement_parse_phases(ctx, spec, md->n_layers, place, dc, nu) != QEIL_OK)
        return cli_usage_error(cmd, "--placement '%s': %s", spec, qeil_ctx_errmsg(ctx));
    if (qeil_engine_set_placements(e, place, dc, nu) != QEIL_OK)
        return cli_fail(cmd, "--placement '%s': %s", spec, qeil_ctx_errmsg(ctx));
    return CLI_OK;
}

int cli_placement_check(const char *cmd, qeil_ctx *ctx, const char *model, const char *spec)
{
    if (!spec || !model) return CLI_OK;
    qeil_model_desc md;
    /* the model's metadata only: an unreadable file is the runtime's to report */
    if (qeil_model_load(ctx, model, &md) != QEIL_OK) return CLI_OK;
    const uint32_t nu = qeil_model_n_units(&md);
    uint8_t place[QEIL_MAX_WUNITS], dc[QEIL_MAX_WUNITS];
    if (nu > QEIL_MAX_WUNITS) return cli_fail(cmd, "--placement: %u units is too many", nu);
    if (qeil_placement_parse_phases(ctx, spec, md.n_layers, place, dc, nu) != QEIL_OK)
        return cli_usage_error(cmd, "--placement '%s': %s", spec, qeil_ctx_errmsg(ctx));
    return CLI_OK;
}
