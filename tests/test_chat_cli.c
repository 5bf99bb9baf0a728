/* test_chat_cli.c — chat templates end to end: `qeil mkmodel
 * --chat-template` writes instruct-style models, `qeil generate` formats
 * the prompt with the model's template (or --chat-template / --no-chat),
 * and `qeil generate -i` chats over a pipe, reusing the KV cache from the
 * second turn on. Runs the qeil binary of the same build directory
 * (argv[0]/../qeil), capturing stdout and stderr in a temp directory. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/chat.h"
#include "test.h"

#define CLI_HARNESS_TMPDIR "/tmp/qeil-chatcli-XXXXXX"
#include "cli_harness.h"

static int models_ok;

static const char *const k_fams[] = {"llama3", "chatml", "granite", "lfm2", "gemma", "mistral-v7"};

static const char *model(const char *fam)
{
    static char b[4400];
    snprintf(b, sizeof b, "%s/%s.gguf", tmpdir, fam);
    return b;
}

TEST(mkmodel_writes_instruct_models)
{
    for (size_t i = 0; i < sizeof k_fams / sizeof k_fams[0]; i++)
        CHECK_RUN(qeil_in(NULL, "mkmodel --arch qwen2 --layers 1 --dim 32 --heads 2 --kv-heads 1 --ff 64 "
                            "--vocab 320 --ctx 256 --type f32 --chat-template %s -o %s",
                      k_fams[i], model(k_fams[i])),
                  0);
    CHECK_RUN(qeil_in(NULL, "mkmodel --arch qwen2 --layers 1 --dim 32 --heads 2 --kv-heads 1 --ff 64 --vocab 320 "
                        "--ctx 256 --type f32 -o %s",
                  model("plain")),
              0);
    models_ok = !test_failed_;
    /* a name without a kept source, and a vocabulary without room */
    CHECK_RUN(qeil_in(NULL, "mkmodel --arch qwen2 --type f32 --chat-template vicuna -o %s/x.gguf", tmpdir), 2);
    CHECK_CONTAINS(err_text, "--chat-template: 'vicuna' is not one of llama3|chatml");
    CHECK_RUN(qeil_in(NULL, "mkmodel --arch qwen2 --layers 1 --dim 32 --heads 2 --kv-heads 1 --ff 64 --vocab 302 "
                        "--ctx 256 --type f32 --chat-template llama3 -o %s/x.gguf",
                  tmpdir),
              2);
    CHECK_CONTAINS(err_text, "special tokens need room");
}

/* The prompt of each family's model goes through its template: the JSON
 * names it, and the prompt is longer than the raw one by the template's
 * tokens; --no-chat gives the raw prompt back. */
TEST(generate_uses_the_models_template)
{
    if (!models_ok) SKIP("no models");
    for (size_t i = 0; i < sizeof k_fams / sizeof k_fams[0]; i++) {
        CHECK_RUN(qeil_in(NULL, "generate -m %s -p hello -n 2 --temp 0 --output json", model(k_fams[i])), 0);
        cJSON *j = out_text ? cJSON_Parse(out_text) : NULL;
        cJSON *ct = j ? cJSON_GetObjectItem(j, "chat_template") : NULL;
        CHECK(cJSON_IsString(ct) && strcmp(ct->valuestring, k_fams[i]) == 0);
        int chat_n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "prompt_tokens"));
        cJSON_Delete(j);
        CHECK_CONTAINS(err_text, "chat template: ");
        CHECK_CONTAINS(err_text, "(the model's tokenizer.chat_template)");
        CHECK_RUN(qeil_in(NULL, "generate -m %s -p hello -n 2 --temp 0 --output json --no-chat", model(k_fams[i])), 0);
        j = out_text ? cJSON_Parse(out_text) : NULL;
        CHECK(j && cJSON_IsNull(cJSON_GetObjectItem(j, "chat_template")));
        int raw_n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "prompt_tokens"));
        cJSON_Delete(j);
        if (!(chat_n > raw_n + 2)) TEST_FAIL_("%s: chat prompt %d tokens, raw %d", k_fams[i], chat_n, raw_n);
    }
    /* a model without a template: the raw prompt, as before */
    CHECK_RUN(qeil_in(NULL, "generate -m %s -p hello -n 2 --temp 0 --output json", model("plain")), 0);
    cJSON *j = out_text ? cJSON_Parse(out_text) : NULL;
    CHECK(j && cJSON_IsNull(cJSON_GetObjectItem(j, "chat_template")));
    cJSON_Delete(j);
}

TEST(forced_template_and_usage_errors)
{
    if (!models_ok) SKIP("no models");
    /* forced on a model whose vocabulary lacks its tokens: said so */
    CHECK_RUN(qeil_in(NULL, "generate -m %s -p hi -n 2 --temp 0 --chat-template gemma", model("chatml")), 0);
    CHECK_CONTAINS(err_text, "chat template: gemma (--chat-template)");
    CHECK_CONTAINS(err_text, "the vocabulary has no token <start_of_turn>");
    CHECK_RUN(qeil_in(NULL, "generate -m %s -p hi --chat-template vicuna", model("chatml")), 2);
    CHECK_CONTAINS(err_text, "--chat-template: 'vicuna' is not one of llama3, chatml, granite, lfm2, gemma");
    CHECK_RUN(qeil_in(NULL, "generate -m %s -p hi --chat-template chatml --no-chat", model("chatml")), 2);
    CHECK_CONTAINS(err_text, "exclude each other");
    CHECK_RUN(qeil_in(NULL, "generate -m %s -p hi --system S --no-chat", model("chatml")), 2);
    CHECK_RUN(qeil_in(NULL, "generate -m %s -i --output json", model("chatml")), 2);
    CHECK_CONTAINS(err_text, "--output json is not for -i");
    CHECK_RUN(qeil_in(NULL, "generate -m %s", model("chatml")), 2);
    CHECK_CONTAINS(err_text, "-p TEXT is required (or -i)");
    /* no template known: --system and -i cannot be honoured */
    CHECK_RUN(qeil_in(NULL, "generate -m %s -p hi --system S", model("plain")), 2);
    CHECK_CONTAINS(err_text, "--system needs a chat template");
    CHECK_RUN(qeil_in("hi\n", "generate -m %s -i", model("plain")), 2);
    CHECK_CONTAINS(err_text, "-i needs a chat template");
    /* ... unless one is forced */
    CHECK_RUN(qeil_in(NULL, "generate -m %s -p hi -n 2 --system S --chat-template llama3", model("plain")), 0);
    CHECK_CONTAINS(err_text, "the vocabulary has no token <|start_header_id|>");
}

/* generate's --help (an option table, written out) names every template
 * the library knows: a template added to the library and not to the help
 * fails here. */
TEST(help_lists_every_template)
{
    CHECK_RUN(qeil_in(NULL, "generate --help"), 0);
    char names[512];
    snprintf(names, sizeof names, "%s", qeil_chat_template_names());
    char *save = NULL;
    int n = 0;
    for (char *t = strtok_r(names, ", ", &save); t; t = strtok_r(NULL, ", ", &save), n++) {
        if (!out_text || !strstr(out_text, t)) TEST_FAIL_("generate --help lacks template '%s'", t);
    }
    CHECK(n >= 10);
}

/* -i over a pipe: two messages, /exit ends (the line after it is never
 * read), the second turn reuses the first's KV cache; the same seed gives
 * the same conversation. */
TEST(interactive_over_a_pipe)
{
    if (!models_ok) SKIP("no models");
    for (size_t i = 0; i < sizeof k_fams / sizeof k_fams[0]; i++) {
        CHECK_RUN(qeil_in("hello\n\nhow are you\n/exit\nnever\n",
                      "generate -m %s -i -n 6 --seed 3 --system \"Be brief\"", model(k_fams[i])),
                  0);
        CHECK_CONTAINS(err_text, "[turn 1: ");
        CHECK_CONTAINS(err_text, "prefilled from empty");
        CHECK_CONTAINS(err_text, "[turn 2: ");
        CHECK(err_text && !strstr(err_text, "[turn 3: "));
        CHECK_CONTAINS(err_text, "chat: 2 turns, template ");
        /* whether turn 2 reuses the cache depends on the reply: llama3 and
         * gemma trim it, which a reply with edge spaces breaks, mistral-v7
         * writes a space before it, which a reply without one breaks;
         * chatml, granite and lfm2 keep it verbatim after the opening the
         * generation prompt wrote */
        if (!strcmp(k_fams[i], "chatml") || !strcmp(k_fams[i], "granite") || !strcmp(k_fams[i], "lfm2"))
            CHECK_CONTAINS(err_text, "[turn 2: KV cache reused for ");
        char *first = out_text ? strdup(out_text) : NULL;
        CHECK_RUN(qeil_in("hello\n\nhow are you\n/exit\nnever\n",
                      "generate -m %s -i -n 6 --seed 3 --system \"Be brief\"", model(k_fams[i])),
                  0);
        CHECK(first && out_text && strcmp(first, out_text) == 0);
        free(first);
    }
    /* end of input without a newline or /exit ends it too */
    CHECK_RUN(qeil_in("one\ntwo", "generate -m %s -i -n 3 --seed 1", model("chatml")), 0);
    CHECK_CONTAINS(err_text, "chat: 2 turns");
    /* -p is the first message; empty input then ends */
    CHECK_RUN(qeil_in("", "generate -m %s -i -p first -n 3 --seed 1", model("chatml")), 0);
    CHECK_CONTAINS(err_text, "chat: 1 turns");
    /* a line over 1 MiB is skipped whole (read in bounded memory), the
     * next one is a message; a NUL byte is dropped */
    size_t big = (1u << 20) + 10;
    char *in = malloc(big + 32);
    if (in) {
        memset(in, 'a', big);
        memcpy(in + big, "\nok\0k\n", 6);
        /* qeil_in() writes input with fputs: the NUL would end it; write it here */
        char p[4200];
        snprintf(p, sizeof p, "%s/big", tmpdir);
        FILE *f = fopen(p, "wb");
        if (f) {
            fwrite(in, 1, big + 6, f);
            fclose(f);
        }
        char sh[24000];
        snprintf(sh, sizeof sh, "%s generate -m %s -i -n 2 --seed 1 <%s >%s/out 2>%s/err", qeil_cmd,
                 model("chatml"), p, tmpdir, tmpdir);
        CHECK_EQ_INT(system(sh), 0);
        snprintf(p, sizeof p, "%s/err", tmpdir);
        char *e = slurp(p);
        CHECK_CONTAINS(e, "a line longer than 1048576 bytes skipped");
        CHECK_CONTAINS(e, "NUL bytes dropped from the message");
        CHECK_CONTAINS(e, "chat: 1 turns");
        free(e);
        free(in);
    }
    /* a conversation that outgrows the context fails cleanly */
    CHECK_RUN(qeil_in("a b c d e f g h i j k l m n o p\nq r s t u v w x y z\nmore words here\n",
                  "generate -m %s -i -n 8 -c 48 --seed 1", model("chatml")),
              1);
    CHECK_CONTAINS(err_text, "does not fit the context of 48 tokens");
}

/* Every allocation failing in turn (cli/alloc.c's QEIL_TEST_ALLOC_FAIL=K),
 * a one-shot chat prompt and a two-turn -i chat: each failed run exits 1
 * naming memory, never crashes (and under ASan, never leaks). Under an
 * emulator every cli_harness_stride()-th allocation. */
static void oom_sweep(const char *what, const char *input, const char *args)
{
    int done = 0;
    const int step = cli_harness_stride(); /* every allocation natively */
    for (int k = 0; k < 3000 && !done; k += step) {
        char kv[32];
        snprintf(kv, sizeof kv, "%d", k);
        setenv("QEIL_TEST_ALLOC_FAIL", kv, 1);
        int rc = qeil_in(input, "%s", args);
        unsetenv("QEIL_TEST_ALLOC_FAIL");
        if (rc == 0) {
            done = 1;
            if (k < 10) TEST_FAIL_("%s: succeeded with %d allocations: is the hook used?", what, k);
            if (step == 1) printf("  %s: failed cleanly at each of its first %d allocations\n", what, k);
            else printf("  %s: failed cleanly at every %dth of its first %d allocations (emulated: "
                        "not each)\n", what, step, k);
        } else if (rc != 1 || !err_text || !strstr(err_text, "memory")) {
            TEST_FAIL_("%s: allocation %d failed: exit %d, stderr: %s", what, k, rc, err_text ? err_text : "(none)");
            return;
        }
    }
    if (!done) TEST_FAIL_("%s: never succeeded", what);
}

TEST(chat_fails_cleanly_out_of_memory)
{
    if (!models_ok) SKIP("no models");
    char a[4600];
    snprintf(a, sizeof a, "generate -m %s -p hi -n 2 --seed 1 --system S", model("chatml"));
    oom_sweep("generate (chatml)", NULL, a);
    snprintf(a, sizeof a, "generate -m %s -i -n 2 --seed 1", model("chatml"));
    oom_sweep("generate -i (chatml)", "one\ntwo\n", a);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (cli_harness_init(argv[0]) != 0) return 1;
    RUN(mkmodel_writes_instruct_models);
    RUN(generate_uses_the_models_template);
    RUN(forced_template_and_usage_errors);
    RUN(help_lists_every_template);
    RUN(interactive_over_a_pipe);
    RUN(chat_fails_cleanly_out_of_memory);
    cli_harness_done();
    return test_summary("chat_cli");
}
