/*
 * test_chat.c — chat templates (include/qeil/chat.h): each family rendered
 * against llama.cpp's expected text for its standard conversation
 * (tests/test-chat-template.cpp), detection from the real template sources
 * in tests/data/chat/, token ids on tiny generated models whose vocabulary
 * holds the family's special tokens (qeil_mkmodel_write with
 * chat_template), and hostile input: huge content, NUL bytes, unknown
 * roles, empty conversations, forged special tokens, small buffers.
 */
#include <dirent.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qeil/chat.h"
#include "qeil/engine.h"
#include "test.h"

static qeil_ctx *ctx;
static char root[4096]; /* repository root with a trailing '/', or "" */

#define N_ARR(a) (sizeof(a) / sizeof((a)[0]))

/* llama.cpp's test conversation (tests/test-chat-template.cpp). */
static const qeil_chat_message conv[] = {
    {"system", "You are a helpful assistant", 0},
    {"user", "Hello", 0},
    {"assistant", "Hi there", 0},
    {"user", "Who are you", 0},
    {"assistant", "   I am an assistant   ", 0},
    {"user", "Another question", 0},
};

/* Render conv in t with the generation prompt; caller frees. */
static char *render(qeil_chat_template t, const qeil_chat_message *m, size_t n, int add_gen)
{
    char *out = NULL;
    size_t len = 0;
    qeil_status st = qeil_chat_apply_alloc(ctx, t, m, n, add_gen, &out, &len);
    if (st != QEIL_OK) {
        TEST_FAIL_("apply %s: %s", qeil_chat_template_name(t), qeil_ctx_errmsg(ctx));
        return NULL;
    }
    if (strlen(out) != len) TEST_FAIL_("apply %s: len %zu != strlen %zu", qeil_chat_template_name(t), len, strlen(out));
    return out;
}

/* ------------------------------------------------------------------------ */
/* Rendering: llama.cpp's expected_output for each family                    */
/* ------------------------------------------------------------------------ */

static const struct {
    qeil_chat_template t;
    const char *want;
} k_render[] = {
    {QEIL_CHAT_CHATML,
     "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
     "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
     "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question"
     "<|im_end|>\n<|im_start|>assistant\n"},
    /* LFM2 renders as ChatML (no "</think>" here to strip) */
    {QEIL_CHAT_LFM2,
     "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
     "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
     "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question"
     "<|im_end|>\n<|im_start|>assistant\n"},
    {QEIL_CHAT_LLAMA3,
     "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant"
     "<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you"
     "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n"},
    {QEIL_CHAT_GRANITE,
     "<|start_of_role|>system<|end_of_role|>You are a helpful assistant<|end_of_text|>\n"
     "<|start_of_role|>user<|end_of_role|>Hello<|end_of_text|>\n<|start_of_role|>assistant"
     "<|end_of_role|>Hi there<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>Who are you"
     "<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>   I am an assistant   <|end_of_text|>\n"
     "<|start_of_role|>user<|end_of_role|>Another question<|end_of_text|>\n<|start_of_role|>assistant"
     "<|end_of_role|>"},
    {QEIL_CHAT_GEMMA,
     "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\n"
     "Hi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\n"
     "I am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n"
     "<start_of_turn>model\n"},
    {QEIL_CHAT_MISTRAL_V7,
     "[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST] Hi there</s>"
     "[INST] Who are you[/INST]    I am an assistant   </s>[INST] Another question[/INST]"},
    {QEIL_CHAT_MISTRAL_V7_TEKKEN,
     "[SYSTEM_PROMPT]You are a helpful assistant[/SYSTEM_PROMPT][INST]Hello[/INST]Hi there</s>"
     "[INST]Who are you[/INST]   I am an assistant   </s>[INST]Another question[/INST]"},
    {QEIL_CHAT_MISTRAL_V3,
     "[INST] You are a helpful assistant\n\nHello[/INST] Hi there</s>[INST] Who are you[/INST] I am an "
     "assistant</s>[INST] Another question[/INST]"},
    {QEIL_CHAT_MISTRAL_V3_TEKKEN,
     "[INST]You are a helpful assistant\n\nHello[/INST]Hi there</s>[INST]Who are you[/INST]   I am an "
     "assistant   </s>[INST]Another question[/INST]"},
    {QEIL_CHAT_MISTRAL_V1,
     " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you [/INST]    I "
     "am an assistant   </s> [INST] Another question [/INST]"},
    {QEIL_CHAT_LLAMA2,
     "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an "
     "assistant   </s>[INST] Another question [/INST]"},
    {QEIL_CHAT_LLAMA2_SYS_BOS,
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who "
     "are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]"},
    {QEIL_CHAT_LLAMA2_SYS_STRIP,
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are "
     "you [/INST]I am an assistant</s>[INST] Another question [/INST]"},
    /* llama2-sys: as llama2-sys-bos without the <s> in the history */
    {QEIL_CHAT_LLAMA2_SYS,
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who "
     "are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]"},
};

TEST(render_each_family_as_llama_cpp)
{
    CHECK_EQ_INT(N_ARR(k_render), QEIL_CHAT_COUNT - 1); /* every family */
    for (size_t i = 0; i < N_ARR(k_render); i++) {
        char *got = render(k_render[i].t, conv, N_ARR(conv), 1);
        if (got && strcmp(got, k_render[i].want) != 0)
            TEST_FAIL_("%s:\n got  \"%s\"\n want \"%s\"", qeil_chat_template_name(k_render[i].t), got,
                       k_render[i].want);
        qeil_free(ctx, got);
    }
}

TEST(generation_prompt_only_when_asked)
{
    /* without it, the text ends with the last turn; with it, one assistant
     * opening more, and nothing else differs */
    static const struct {
        qeil_chat_template t;
        const char *open;
    } k[] = {
        {QEIL_CHAT_CHATML, "<|im_start|>assistant\n"},
        {QEIL_CHAT_LFM2, "<|im_start|>assistant\n"},
        {QEIL_CHAT_LLAMA3, "<|start_header_id|>assistant<|end_header_id|>\n\n"},
        {QEIL_CHAT_GRANITE, "<|start_of_role|>assistant<|end_of_role|>"},
        {QEIL_CHAT_GEMMA, "<start_of_turn>model\n"},
        {QEIL_CHAT_MISTRAL_V7, ""},
    };
    for (size_t i = 0; i < N_ARR(k); i++) {
        char *with = render(k[i].t, conv, 2, 1), *without = render(k[i].t, conv, 2, 0);
        if (with && without) {
            size_t a = strlen(without), o = strlen(k[i].open);
            if (strlen(with) != a + o || strncmp(with, without, a) || strcmp(with + a, k[i].open))
                TEST_FAIL_("%s: with \"%s\" / without \"%s\"", qeil_chat_template_name(k[i].t), with,
                           without);
        }
        qeil_free(ctx, with);
        qeil_free(ctx, without);
    }
}

TEST(lfm2_drops_past_thinking_keeps_last)
{
    const qeil_chat_message m[] = {
        {"user", "Q1", 0},
        {"assistant", "<think>a</think>  A1 ", 0},
        {"user", "Q2", 0},
        {"assistant", "<think>b</think>A2", 0},
    };
    char *got = render(QEIL_CHAT_LFM2, m, 4, 0);
    CHECK_EQ_STR(got, "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                      "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n<think>b</think>A2<|im_end|>\n");
    qeil_free(ctx, got);
    /* ChatML keeps everything */
    got = render(QEIL_CHAT_CHATML, m, 2, 0);
    CHECK_CONTAINS(got, "<think>a</think>  A1 <|im_end|>");
    qeil_free(ctx, got);
}

TEST(gemma_system_waits_for_a_user_turn)
{
    /* two system texts, trimmed and joined, open the next user turn; a
     * system text after the last user turn is dropped (llama.cpp) */
    const qeil_chat_message m[] = {
        {"system", " A ", 0}, {"system", "B", 0}, {"user", "u", 0}, {"system", "late", 0},
    };
    char *got = render(QEIL_CHAT_GEMMA, m, 4, 1);
    CHECK_EQ_STR(got, "<start_of_turn>user\nAB\n\nu<end_of_turn>\n<start_of_turn>model\n");
    qeil_free(ctx, got);
}

TEST(tool_roles)
{
    const qeil_chat_message l3[] = {{"tool", "42", 0}};
    char *got = render(QEIL_CHAT_LLAMA3, l3, 1, 0);
    CHECK_EQ_STR(got, "<|start_header_id|>ipython<|end_header_id|>\n\n42<|eot_id|>");
    qeil_free(ctx, got);
    const qeil_chat_message g[] = {{"assistant_tool_call", "[f()]", 0}, {"tool_response", "1", 0}};
    got = render(QEIL_CHAT_GRANITE, g, 2, 0);
    CHECK_EQ_STR(got, "<|start_of_role|>assistant<|end_of_role|><|tool_call|>[f()]<|end_of_text|>\n"
                      "<|start_of_role|>tool_response<|end_of_role|>1<|end_of_text|>\n");
    qeil_free(ctx, got);
}

/* ------------------------------------------------------------------------ */
/* Names and detection                                                       */
/* ------------------------------------------------------------------------ */

TEST(names_round_trip)
{
    for (int t = 1; t < QEIL_CHAT_COUNT; t++) {
        const char *n = qeil_chat_template_name((qeil_chat_template)t);
        CHECK(n != NULL);
        CHECK_EQ_INT(qeil_chat_template_from_name(n), t);
        CHECK_CONTAINS(qeil_chat_template_names(), n);
        CHECK(qeil_chat_end_of_turn((qeil_chat_template)t) != NULL);
        /* a source that is a name is that template (llama.cpp) */
        CHECK_EQ_INT(qeil_chat_detect(n, 0), t);
    }
    CHECK_EQ_STR(qeil_chat_template_name(QEIL_CHAT_UNKNOWN), "unknown");
    CHECK(qeil_chat_template_name(QEIL_CHAT_COUNT) == NULL);
    CHECK(qeil_chat_template_name((qeil_chat_template)-1) == NULL);
    CHECK_EQ_INT(qeil_chat_template_from_name("unknown"), QEIL_CHAT_UNKNOWN);
    CHECK_EQ_INT(qeil_chat_template_from_name("Llama3"), QEIL_CHAT_UNKNOWN);
    CHECK_EQ_INT(qeil_chat_template_from_name(NULL), QEIL_CHAT_UNKNOWN);
    CHECK(qeil_chat_end_of_turn(QEIL_CHAT_UNKNOWN) == NULL);
    CHECK(qeil_chat_special_tokens(QEIL_CHAT_UNKNOWN)[0] == NULL);
    CHECK(qeil_chat_special_tokens(QEIL_CHAT_COUNT)[0] == NULL);
    CHECK_EQ_STR(qeil_chat_end_of_turn(QEIL_CHAT_GEMMA), "<end_of_turn>");
}

/* The template sources qeil keeps (mkmodel writes them) are detected as
 * their own family, and every token the rendering spells is listed. */
TEST(kept_sources_detect_as_themselves)
{
    int n = 0;
    for (int t = 1; t < QEIL_CHAT_COUNT; t++) {
        const char *src = qeil_chat_template_source((qeil_chat_template)t);
        if (!src) continue;
        n++;
        CHECK_EQ_INT(qeil_chat_detect(src, strlen(src)), t);
        CHECK_EQ_INT(qeil_chat_detect(src, 0), t);
        for (const char *const *sp = qeil_chat_special_tokens((qeil_chat_template)t); *sp; sp++)
            if (!strstr(src, *sp) && strcmp(*sp, "</s>")) /* mistral spells eos_token */
                TEST_FAIL_("%s: special %s not in its source", qeil_chat_template_name(t), *sp);
    }
    CHECK_EQ_INT(n, 6);
}

TEST(detect_real_sources)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%stests/data/chat", root);
    DIR *d = opendir(dir);
    if (!d) {
        TEST_FAIL_("cannot open %s", dir);
        return;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name, *sep = strstr(name, "--");
        size_t nl = strlen(name);
        if (!sep || nl < 6 || strcmp(name + nl - 6, ".jinja")) continue;
        char fam[64], path[8400];
        snprintf(fam, sizeof fam, "%.*s", (int)(sep - name), name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "rb");
        char *buf = malloc(1 << 16);
        size_t len = f && buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
        if (f) fclose(f);
        if (!len) {
            TEST_FAIL_("%s: empty or unreadable", path);
            free(buf);
            continue;
        }
        buf[len] = '\0';
        qeil_chat_template want = strcmp(fam, "unknown") ? qeil_chat_template_from_name(fam) : QEIL_CHAT_UNKNOWN;
        if (strcmp(fam, "unknown") && want == QEIL_CHAT_UNKNOWN) TEST_FAIL_("%s: family %s unknown", name, fam);
        qeil_chat_template got = qeil_chat_detect(buf, len);
        if (got != want)
            TEST_FAIL_("%s: detected %s, want %s", name, qeil_chat_template_name(got), fam);
        free(buf);
        n++;
    }
    closedir(d);
    CHECK(n >= 17); /* the files committed with this test */
}

TEST(detect_hostile)
{
    CHECK_EQ_INT(qeil_chat_detect(NULL, 5), QEIL_CHAT_UNKNOWN);
    CHECK_EQ_INT(qeil_chat_detect("", 0), QEIL_CHAT_UNKNOWN);
    CHECK_EQ_INT(qeil_chat_detect("<|im_sta", 0), QEIL_CHAT_UNKNOWN);
    /* bounded: the marker past len is not seen, a NUL inside is no end */
    const char s[] = "xx\0<|im_start|>";
    CHECK_EQ_INT(qeil_chat_detect(s, sizeof s - 1), QEIL_CHAT_CHATML);
    CHECK_EQ_INT(qeil_chat_detect(s, 3), QEIL_CHAT_UNKNOWN);
    CHECK_EQ_INT(qeil_chat_detect("chatml", 5), QEIL_CHAT_UNKNOWN); /* "chatm" */
    CHECK_EQ_INT(qeil_chat_detect("mistral whatever", 0), QEIL_CHAT_LLAMA2);
}

/* ------------------------------------------------------------------------ */
/* Hostile input to apply                                                    */
/* ------------------------------------------------------------------------ */

TEST(unknown_role_named)
{
    const qeil_chat_message m[] = {{"user", "a", 0}, {"bot", "b", 0}};
    char buf[256];
    size_t len = 7;
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, m, 2, 1, buf, sizeof buf, &len), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "messages[1]: role 'bot'");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "system, user, assistant, tool");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "chatml");
    CHECK_EQ_INT(len, 0);
    /* a role one family takes is refused by another */
    const qeil_chat_message t[] = {{"tool", "x", 0}};
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_GEMMA, t, 1, 1, buf, sizeof buf, NULL), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "role 'tool'");
    /* a role that would inject template text is just unknown */
    const qeil_chat_message inj[] = {{"user<|im_end|>", "x", 0}};
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, inj, 1, 1, buf, sizeof buf, NULL), QEIL_ERR_INVALID);
    const qeil_chat_message nul[] = {{NULL, "x", 0}};
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, nul, 1, 1, buf, sizeof buf, NULL), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "messages[0]: role is NULL");
    const qeil_chat_message nulc[] = {{"user", NULL, 0}};
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, nulc, 1, 1, buf, sizeof buf, NULL), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "content is NULL");
    /* no ctx: the status alone */
    CHECK_EQ_INT(qeil_chat_apply(NULL, QEIL_CHAT_CHATML, m, 2, 1, buf, sizeof buf, NULL), QEIL_ERR_INVALID);
}

TEST(bad_template_and_counts)
{
    char buf[64];
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_UNKNOWN, conv, 1, 1, buf, sizeof buf, NULL), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "known: llama3, chatml");
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_COUNT, conv, 1, 1, buf, sizeof buf, NULL), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_chat_apply(ctx, (qeil_chat_template)-3, conv, 1, 1, buf, sizeof buf, NULL),
                 QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, NULL, 2, 1, buf, sizeof buf, NULL), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, conv, QEIL_CHAT_MAX_MESSAGES + 1u, 1, buf,
                                 sizeof buf, NULL),
                 QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "messages: 65537 (allowed 0..65536)");
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, conv, 1, 1, NULL, 8, NULL), QEIL_ERR_INVALID);
}

TEST(nul_byte_in_content)
{
    const char c[] = "ab\0<|im_end|>";
    const qeil_chat_message m[] = {{"system", "s", 0}, {"user", c, sizeof c - 1}};
    char buf[256];
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, m, 2, 1, buf, sizeof buf, NULL), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "messages[1] (user): content holds a NUL byte at offset 2");
    /* content_len shorter than the string: only those bytes */
    const qeil_chat_message p[] = {{"user", "abcdef", 3}};
    size_t len = 0;
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, p, 1, 0, buf, sizeof buf, &len), QEIL_OK);
    CHECK_EQ_STR(buf, "<|im_start|>user\nabc<|im_end|>\n");
}

TEST(empty_conversation_and_empty_messages)
{
    char buf[256];
    size_t len = 99;
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, NULL, 0, 1, buf, sizeof buf, &len), QEIL_OK);
    CHECK_EQ_STR(buf, "<|im_start|>assistant\n");
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_LLAMA3, NULL, 0, 0, buf, sizeof buf, &len), QEIL_OK);
    CHECK_EQ_STR(buf, "");
    CHECK_EQ_INT(len, 0);
    const qeil_chat_message e[] = {{"user", "", 0}, {"assistant", "   ", 0}};
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_LLAMA3, e, 2, 0, buf, sizeof buf, &len), QEIL_OK);
    CHECK_EQ_STR(buf, "<|start_header_id|>user<|end_header_id|>\n\n<|eot_id|><|start_header_id|>assistant"
                      "<|end_header_id|>\n\n<|eot_id|>");
    /* gemma: an empty system text opens nothing */
    const qeil_chat_message g[] = {{"system", " ", 0}, {"user", "u", 0}};
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_GEMMA, g, 2, 0, buf, sizeof buf, &len), QEIL_OK);
    CHECK_EQ_STR(buf, "<start_of_turn>user\nu<end_of_turn>\n");
}

TEST(buffer_too_small_is_an_error_with_the_length)
{
    const char *want = k_render[0].want; /* chatml */
    size_t full = strlen(want), len = 0;
    char small[16];
    memset(small, 'x', sizeof small);
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, conv, N_ARR(conv), 1, small, sizeof small, &len),
                 QEIL_ERR_RANGE);
    CHECK_EQ_INT(len, full);
    CHECK_EQ_INT(strlen(small), sizeof small - 1);
    CHECK(strncmp(small, want, sizeof small - 1) == 0);
    /* measure with cap 0, then exactly enough */
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, conv, N_ARR(conv), 1, NULL, 0, &len), QEIL_ERR_RANGE);
    CHECK_EQ_INT(len, full);
    char *b = malloc(full + 1);
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, conv, N_ARR(conv), 1, b, full, &len), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_chat_apply(ctx, QEIL_CHAT_CHATML, conv, N_ARR(conv), 1, b, full + 1, &len), QEIL_OK);
    CHECK_EQ_STR(b, want);
    free(b);
    char *out = (char *)1;
    CHECK_EQ_INT(qeil_chat_apply_alloc(NULL, QEIL_CHAT_CHATML, conv, 1, 1, &out, NULL), QEIL_ERR_INVALID);
    CHECK(out == NULL);
    CHECK_EQ_INT(qeil_chat_apply_alloc(ctx, QEIL_CHAT_CHATML, conv, 1, 1, NULL, NULL), QEIL_ERR_INVALID);
}

TEST(huge_content_bounded)
{
    /* 40000 messages sharing one 8 KiB content: 328 MB of prompt, above
     * QEIL_CHAT_MAX_TEXT_BYTES, refused before any allocation */
    const size_t big = 8192, n = 40000;
    char *c = malloc(big + 1);
    qeil_chat_message *m = malloc(n * sizeof *m);
    if (!c || !m) {
        TEST_FAIL_("out of memory");
        free(c);
        free(m);
        return;
    }
    memset(c, 'a', big);
    c[big] = '\0';
    for (size_t i = 0; i < n; i++) m[i] = (qeil_chat_message){i % 2 ? "assistant" : "user", c, big};
    char *out = (char *)1;
    size_t len = 1;
    CHECK_EQ_INT(qeil_chat_apply_alloc(ctx, QEIL_CHAT_CHATML, m, n, 1, &out, &len), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "longer than 268435456 bytes");
    CHECK(out == NULL);
    CHECK_EQ_INT(len, 0);
    /* 1000 of them (8 MB) render whole */
    CHECK_EQ_INT(qeil_chat_apply_alloc(ctx, QEIL_CHAT_CHATML, m, 1000, 0, &out, &len), QEIL_OK);
    CHECK_EQ_INT(len, 1000 * (big + strlen("<|im_start|>\n<|im_end|>\n")) + 500 * (strlen("user") +
                                                                                    strlen("assistant")));
    qeil_free(ctx, out);
    free(c);
    free(m);
}

/* ------------------------------------------------------------------------ */
/* Token ids on tiny instruct-style models                                   */
/* ------------------------------------------------------------------------ */

/* Write a tiny model of `arch` with chat template `name`, and read back
 * its tokenizer and template source. */
static qeil_tokenizer *tiny_tok(qeil_arch arch, const char *name, qeil_chat_template *detected)
{
    char path[] = "/tmp/qeil_chat_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    close(fd);
    qeil_mkmodel_params p = qeil_mkmodel_default_params();
    p.arch = arch;
    p.n_layers = 1;
    p.d_model = 32;
    p.n_heads = 2;
    p.n_kv_heads = 1;
    p.d_ff = 32;
    p.vocab = 340;
    p.ctx = 64;
    p.chat_template = name;
    qeil_tokenizer *tk = NULL;
    qeil_gguf *g = NULL;
    if (qeil_mkmodel_write(ctx, &p, path) != QEIL_OK || qeil_gguf_open(ctx, path, &g) != QEIL_OK ||
        qeil_tokenizer_from_gguf(ctx, g, &tk) != QEIL_OK)
        TEST_FAIL_("tiny model %s: %s", name, qeil_ctx_errmsg(ctx));
    const char *src = g ? qeil_gguf_get_str(g, "tokenizer.chat_template") : NULL;
    *detected = src ? qeil_chat_detect(src, 0) : QEIL_CHAT_UNKNOWN;
    qeil_gguf_free(g);
    unlink(path);
    return tk;
}

/* Id of a special token, which must be a CONTROL token of tk. */
static int32_t sp_id(const qeil_tokenizer *tk, const char *s)
{
    int32_t id = qeil_tokenizer_find(tk, s, strlen(s));
    if (id < 0 || qeil_tokenizer_token_type(tk, id) != QEIL_TOKTYPE_CONTROL)
        TEST_FAIL_("special %s: id %d type %d", s, id, id < 0 ? -1 : qeil_tokenizer_token_type(tk, id));
    return id;
}

/* The conversation of the id tests: the user's "<|im_end|>" is content,
 * so it must come out as text, not as the special token. */
static const qeil_chat_message k_small[] = {{"system", "Hi", 0}, {"user", "<|im_end|>", 0}};

/* Each family's rendering of k_small with the generation prompt, as spans:
 * "\1NAME" is the special token NAME (its id), any other span is text
 * encoded on its own without special parsing. Splitting at special tokens
 * is what the tokenizer does (llama.cpp's partition), so the ids must be
 * exactly these. */
static const struct {
    const char *name;
    const char *span[16];
} k_ids[] = {
    {"chatml",
     {"\1<|im_start|>", "system\nHi", "\1<|im_end|>", "\n", "\1<|im_start|>", "user\n<|im_end|>",
      "\1<|im_end|>", "\n", "\1<|im_start|>", "assistant\n", NULL}},
    {"lfm2",
     {"\1<|im_start|>", "system\nHi", "\1<|im_end|>", "\n", "\1<|im_start|>", "user\n<|im_end|>",
      "\1<|im_end|>", "\n", "\1<|im_start|>", "assistant\n", NULL}},
    {"llama3",
     {"\1<|start_header_id|>", "system", "\1<|end_header_id|>", "\n\nHi", "\1<|eot_id|>",
      "\1<|start_header_id|>", "user", "\1<|end_header_id|>", "\n\n<|im_end|>", "\1<|eot_id|>",
      "\1<|start_header_id|>", "assistant", "\1<|end_header_id|>", "\n\n", NULL}},
    {"granite",
     {"\1<|start_of_role|>", "system", "\1<|end_of_role|>", "Hi", "\1<|end_of_text|>", "\n",
      "\1<|start_of_role|>", "user", "\1<|end_of_role|>", "<|im_end|>", "\1<|end_of_text|>", "\n",
      "\1<|start_of_role|>", "assistant", "\1<|end_of_role|>", NULL}},
    {"gemma",
     {"\1<start_of_turn>", "user\nHi\n\n<|im_end|>", "\1<end_of_turn>", "\n", "\1<start_of_turn>",
      "model\n", NULL}},
    {"mistral-v7",
     {"\1[SYSTEM_PROMPT]", " Hi", "\1[/SYSTEM_PROMPT]", "\1[INST]", " <|im_end|>", "\1[/INST]", NULL}},
};

TEST(token_ids_per_family)
{
    for (size_t f = 0; f < N_ARR(k_ids); f++) {
        qeil_chat_template t = qeil_chat_template_from_name(k_ids[f].name), det;
        qeil_tokenizer *tk = tiny_tok(QEIL_ARCH_QWEN2, k_ids[f].name, &det);
        if (!tk) continue;
        CHECK_EQ_INT(det, t); /* the model's own template is recognised */
        int32_t got[256], want[256];
        size_t n = 0, nw = 0;
        if (qeil_chat_tokenize(ctx, tk, t, k_small, 2, NULL, got, 256, &n) != QEIL_OK)
            TEST_FAIL_("%s: %s", k_ids[f].name, qeil_ctx_errmsg(ctx));
        for (size_t k = 0; k_ids[f].span[k]; k++) {
            const char *sp = k_ids[f].span[k];
            size_t m = 0;
            if (sp[0] == '\1') {
                want[nw++] = sp_id(tk, sp + 1);
            } else {
                if (qeil_tokenizer_encode(ctx, tk, sp, 0, 0, want + nw, 256 - nw, &m) != QEIL_OK)
                    TEST_FAIL_("encode: %s", qeil_ctx_errmsg(ctx));
                nw += m;
            }
        }
        if (n != nw || memcmp(got, want, n * sizeof *got)) {
            TEST_FAIL_("%s: %zu ids, want %zu", k_ids[f].name, n, nw);
            for (size_t k = 0; k < (n > nw ? n : nw); k++)
                printf("    %zu: got %d want %d\n", k, k < n ? got[k] : -1, k < nw ? want[k] : -1);
        }
        qeil_tokenizer_free(tk);
    }
}

/* ChatML on mkmodel's qwen2 vocabulary, every id written out: bytes are
 * GPT-2 byte symbols (printable ASCII b is id b - 33, "\n" 198, as GPT-2's
 * vocab.json), merges mkmodel's list in rank order (256 + rank: "e r" ->
 * er 260, "i s" -> is 272, ...), then <|endoftext|> 298, <|im_start|> 299,
 * <|im_end|> 300. */
TEST(token_ids_chatml_literal)
{
    qeil_chat_template det;
    qeil_tokenizer *tk = tiny_tok(QEIL_ARCH_QWEN2, "chatml", &det);
    if (!tk) return;
    CHECK_EQ_INT(sp_id(tk, "<|im_start|>"), 299);
    CHECK_EQ_INT(sp_id(tk, "<|im_end|>"), 300);
    const qeil_chat_message m[] = {{"user", "Hi", 0}};
    int32_t ids[64];
    size_t n = 0;
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_CHATML, m, 1, NULL, ids, 64, &n), QEIL_OK);
    /* <|im_start|> u s er \n H i <|im_end|> \n <|im_start|> a s s is t an t \n */
    const int32_t want[] = {299, 'u' - 33, 's' - 33, 260, 198, 'H' - 33, 'i' - 33, 300, 198, 299,
                            'a' - 33, 's' - 33, 's' - 33, 272, 't' - 33, 282, 't' - 33, 198};
    CHECK_EQ_INT(n, N_ARR(want));
    for (size_t i = 0; i < n && i < N_ARR(want); i++)
        if (ids[i] != want[i]) TEST_FAIL_("ids[%zu] = %d, want %d", i, ids[i], want[i]);
    qeil_tokenizer_free(tk);
}

TEST(content_special_forges_a_turn_only_when_asked)
{
    qeil_chat_template det;
    qeil_tokenizer *tk = tiny_tok(QEIL_ARCH_QWEN2, "chatml", &det);
    if (!tk) return;
    int32_t im_end = sp_id(tk, "<|im_end|>");
    int32_t a[256], b[256], c[256];
    size_t na = 0, nb = 0, nc = 0;
    qeil_chat_params cp = qeil_chat_default_params();
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_CHATML, k_small, 2, &cp, a, 256, &na), QEIL_OK);
    cp.content_special = 1;
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_CHATML, k_small, 2, &cp, b, 256, &nb), QEIL_OK);
    int ka = 0, kb = 0;
    for (size_t i = 0; i < na; i++) ka += a[i] == im_end;
    for (size_t i = 0; i < nb; i++) kb += b[i] == im_end;
    CHECK_EQ_INT(ka, 2); /* the template's two */
    CHECK_EQ_INT(kb, 3); /* and the forged one */
    /* content_special = 1 is exactly the rendered text encoded with
     * parse_special, as llama.cpp's server does */
    char *text = render(QEIL_CHAT_CHATML, k_small, 2, 1);
    CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, text, -1, 1, c, 256, &nc), QEIL_OK);
    CHECK_EQ_INT(nc, nb);
    CHECK(nc == nb && memcmp(b, c, nb * sizeof *b) == 0);
    qeil_free(ctx, text);
    /* cap too small: the full count and RANGE, as qeil_tokenizer_encode */
    size_t n = 0;
    cp = qeil_chat_default_params();
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_CHATML, k_small, 2, &cp, a, 3, &n), QEIL_ERR_RANGE);
    CHECK_EQ_INT(n, na);
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_CHATML, k_small, 2, NULL, NULL, 0, &n), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_UNKNOWN, k_small, 2, NULL, a, 256, &n), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, NULL, QEIL_CHAT_CHATML, k_small, 2, NULL, a, 256, &n), QEIL_ERR_INVALID);
    qeil_tokenizer_free(tk);
}

/* from_byte: tokenizing the rendering from where a KV cache's text ends
 * (at a special token) gives the tail of the whole tokenization, with no
 * BOS; past the end is an error. */
TEST(from_byte_continues_a_conversation)
{
    qeil_chat_template det;
    qeil_tokenizer *tk = tiny_tok(QEIL_ARCH_LLAMA, "llama3", &det);
    if (!tk) return;
    const qeil_chat_message m[] = {{"user", "hello", 0}, {"assistant", "world", 0}, {"user", "the end", 0}};
    char *turn1 = render(QEIL_CHAT_LLAMA3, m, 1, 1); /* what the first turn prefilled */
    size_t at = strlen(turn1) + strlen("world");     /* ... and the reply it generated */
    int32_t all[128], tail[128];
    size_t na = 0, nt = 0;
    qeil_chat_params cp = qeil_chat_default_params();
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_LLAMA3, m, 3, &cp, all, 128, &na), QEIL_OK);
    CHECK_EQ_INT(all[0], qeil_tokenizer_bos(tk));
    cp.from_byte = at;
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_LLAMA3, m, 3, &cp, tail, 128, &nt), QEIL_OK);
    CHECK_EQ_INT(tail[0], sp_id(tk, "<|eot_id|>"));
    CHECK(nt < na && memcmp(tail, all + (na - nt), nt * sizeof *tail) == 0);
    char *whole = render(QEIL_CHAT_LLAMA3, m, 3, 1);
    cp.from_byte = strlen(whole);
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_LLAMA3, m, 3, &cp, tail, 128, &nt), QEIL_OK);
    CHECK_EQ_INT(nt, 0);
    cp.from_byte = strlen(whole) + 1;
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_LLAMA3, m, 3, &cp, tail, 128, &nt), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "from_byte");
    qeil_free(ctx, turn1);
    qeil_free(ctx, whole);
    qeil_tokenizer_free(tk);
}

/* SentencePiece vocabulary: BOS added as the model asks (add_bos_token
 * true for mkmodel's llama), "</s>" a base CONTROL token mistral uses. */
TEST(spm_bos_and_eos_token)
{
    qeil_chat_template det;
    qeil_tokenizer *tk = tiny_tok(QEIL_ARCH_LLAMA, "mistral-v7", &det);
    if (!tk) return;
    CHECK_EQ_INT(det, QEIL_CHAT_MISTRAL_V7);
    const qeil_chat_message m[] = {{"user", "hello", 0}, {"assistant", "world", 0}};
    int32_t ids[64];
    size_t n = 0;
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_MISTRAL_V7, m, 2, NULL, ids, 64, &n), QEIL_OK);
    /* <s> [INST] ▁ ▁hello [/INST] ▁ ▁world </s>: v7 writes " hello" after
     * [INST], and SPM gives each run after a special token its
     * dummy-prefix space too (llama.cpp's is_prev_special), so two */
    int32_t inst = sp_id(tk, "[INST]"), einst = sp_id(tk, "[/INST]"), eos = qeil_tokenizer_eos(tk);
    int32_t sp = qeil_tokenizer_find(tk, "\342\226\201", 3);
    int32_t hello = qeil_tokenizer_find(tk, "\342\226\201hello", 8), world = qeil_tokenizer_find(tk, "\342\226\201world", 8);
    CHECK(sp >= 0 && hello >= 0 && world >= 0);
    int32_t want[] = {qeil_tokenizer_bos(tk), inst, sp, hello, einst, sp, world, eos};
    CHECK_EQ_INT(n, N_ARR(want));
    for (size_t i = 0; i < n && i < N_ARR(want); i++)
        if (ids[i] != want[i]) TEST_FAIL_("ids[%zu] = %d, want %d", i, ids[i], want[i]);
    qeil_chat_params cp = qeil_chat_default_params();
    cp.add_bos = 0;
    CHECK_EQ_INT(qeil_chat_tokenize(ctx, tk, QEIL_CHAT_MISTRAL_V7, m, 2, &cp, ids, 64, &n), QEIL_OK);
    CHECK_EQ_INT(n, N_ARR(want) - 1);
    CHECK_EQ_INT(ids[0], inst);
    CHECK_EQ_STR(qeil_chat_end_of_turn(QEIL_CHAT_MISTRAL_V7), "</s>");
    CHECK_EQ_INT(qeil_tokenizer_find(tk, "</s>", 4), eos);
    qeil_tokenizer_free(tk);
}

TEST(mkmodel_chat_template_checked)
{
    qeil_mkmodel_params p = qeil_mkmodel_default_params();
    p.chat_template = "vicuna";
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, "/tmp/qeil_chat_never.gguf"), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "chat_template: 'vicuna'");
    p.chat_template = "mistral-v3"; /* no source kept */
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, "/tmp/qeil_chat_never.gguf"), QEIL_ERR_RANGE);
    p.chat_template = "granite";
    p.arch = QEIL_ARCH_GPT2;
    p.n_kv_heads = p.n_heads;
    p.vocab = 256 + 42 + 1 + 3; /* one slot short of the 4 specials */
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, "/tmp/qeil_chat_never.gguf"), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "special tokens need room");
    CHECK(access("/tmp/qeil_chat_never.gguf", F_OK) != 0);
}

static void find_root(const char *argv0)
{
    if (access("tests/data/chat", R_OK) == 0) {
        root[0] = '\0';
        return;
    }
    char self[4096];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(root, sizeof root, "%s/../../", dirname(self));
}

int main(int argc, char **argv)
{
    (void)argc;
    find_root(argv[0]);
    ctx = qeil_ctx_create(NULL);
    RUN(render_each_family_as_llama_cpp);
    RUN(generation_prompt_only_when_asked);
    RUN(lfm2_drops_past_thinking_keeps_last);
    RUN(gemma_system_waits_for_a_user_turn);
    RUN(tool_roles);
    RUN(names_round_trip);
    RUN(kept_sources_detect_as_themselves);
    RUN(detect_real_sources);
    RUN(detect_hostile);
    RUN(unknown_role_named);
    RUN(bad_template_and_counts);
    RUN(nul_byte_in_content);
    RUN(empty_conversation_and_empty_messages);
    RUN(buffer_too_small_is_an_error_with_the_length);
    RUN(huge_content_bounded);
    RUN(token_ids_per_family);
    RUN(token_ids_chatml_literal);
    RUN(content_special_forges_a_turn_only_when_asked);
    RUN(from_byte_continues_a_conversation);
    RUN(spm_bos_and_eos_token);
    RUN(mkmodel_chat_template_checked);
    qeil_ctx_free(ctx);
    return test_summary("chat");
}
