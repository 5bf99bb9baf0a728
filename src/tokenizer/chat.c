/*
 * chat.c — chat templates (include/qeil/chat.h, docs/chat.md): family
 * detection from the Jinja source, rendering of {role, content} messages,
 * and tokenization with special tokens parsed only in the template's own
 * text. Detection heuristics and renderings follow llama.cpp's
 * src/llama-chat.cpp (llm_chat_detect_template, llm_chat_apply_template)
 * and its tests/test-chat-template.cpp expectations; LFM2's markers follow
 * llama.cpp's common/chat.cpp (is_lfm2_template). Written anew here.
 */
#include <string.h>

#include "qeil/chat.h"
#include "tok_internal.h"

/* ------------------------------------------------------------------------ */
/* Names, end-of-turn tokens, special tokens                                 */
/* ------------------------------------------------------------------------ */

static const char *const k_names[QEIL_CHAT_COUNT] = {
    "unknown",    "llama3",     "chatml",           "granite",    "lfm2",
    "gemma",      "mistral-v7", "mistral-v7-tekken", "mistral-v3", "mistral-v3-tekken",
    "mistral-v1", "llama2",     "llama2-sys",       "llama2-sys-bos", "llama2-sys-strip",
};

const char *qeil_chat_template_name(qeil_chat_template t)
{
    return (unsigned)t < QEIL_CHAT_COUNT ? k_names[t] : NULL;
}

qeil_chat_template qeil_chat_template_from_name(const char *name)
{
    if (!name) return QEIL_CHAT_UNKNOWN;
    for (int t = 1; t < QEIL_CHAT_COUNT; t++)
        if (strcmp(name, k_names[t]) == 0) return (qeil_chat_template)t;
    return QEIL_CHAT_UNKNOWN;
}

const char *qeil_chat_template_names(void)
{
    return "llama3, chatml, granite, lfm2, gemma, mistral-v7, mistral-v7-tekken, mistral-v3, "
           "mistral-v3-tekken, mistral-v1, llama2, llama2-sys, llama2-sys-bos, llama2-sys-strip";
}

static int is_mistral_v7(qeil_chat_template t)
{
    return t == QEIL_CHAT_MISTRAL_V7 || t == QEIL_CHAT_MISTRAL_V7_TEKKEN;
}
static int is_mistral_v13(qeil_chat_template t)
{
    return t == QEIL_CHAT_MISTRAL_V1 || t == QEIL_CHAT_MISTRAL_V3 || t == QEIL_CHAT_MISTRAL_V3_TEKKEN;
}
static int is_llama2(qeil_chat_template t)
{
    return t >= QEIL_CHAT_LLAMA2 && t <= QEIL_CHAT_LLAMA2_SYS_STRIP;
}

const char *qeil_chat_end_of_turn(qeil_chat_template t)
{
    switch (t) {
    case QEIL_CHAT_LLAMA3: return "<|eot_id|>";
    case QEIL_CHAT_CHATML:
    case QEIL_CHAT_LFM2: return "<|im_end|>";
    case QEIL_CHAT_GRANITE: return "<|end_of_text|>";
    case QEIL_CHAT_GEMMA: return "<end_of_turn>";
    default: return is_mistral_v7(t) || is_mistral_v13(t) || is_llama2(t) ? "</s>" : NULL;
    }
}

static const char *const k_sp_none[] = {NULL};
static const char *const k_sp_llama3[] = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", NULL};
static const char *const k_sp_chatml[] = {"<|im_start|>", "<|im_end|>", NULL};
static const char *const k_sp_granite[] = {"<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>",
                                           "<|tool_call|>", NULL};
static const char *const k_sp_gemma[] = {"<start_of_turn>", "<end_of_turn>", NULL};
static const char *const k_sp_mistral_v7[] = {"[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                                              "</s>", NULL};
static const char *const k_sp_mistral_v3[] = {"[INST]", "[/INST]", "</s>", NULL};
/* Mistral v1 and Llama 2 spell [INST] as text (SentencePiece pieces), not
 * as control tokens; only the end of a turn is one. */
static const char *const k_sp_eos[] = {"</s>", NULL};
static const char *const k_sp_eos_bos[] = {"<s>", "</s>", NULL};

const char *const *qeil_chat_special_tokens(qeil_chat_template t)
{
    switch (t) {
    case QEIL_CHAT_LLAMA3: return k_sp_llama3;
    case QEIL_CHAT_CHATML:
    case QEIL_CHAT_LFM2: return k_sp_chatml;
    case QEIL_CHAT_GRANITE: return k_sp_granite;
    case QEIL_CHAT_GEMMA: return k_sp_gemma;
    case QEIL_CHAT_MISTRAL_V7:
    case QEIL_CHAT_MISTRAL_V7_TEKKEN: return k_sp_mistral_v7;
    case QEIL_CHAT_MISTRAL_V3:
    case QEIL_CHAT_MISTRAL_V3_TEKKEN: return k_sp_mistral_v3;
    case QEIL_CHAT_LLAMA2_SYS_BOS: return k_sp_eos_bos;
    default: return is_mistral_v13(t) || is_llama2(t) ? k_sp_eos : k_sp_none;
    }
}

/* ------------------------------------------------------------------------ */
/* Template sources (docs/chat.md names where each comes from)               */
/* ------------------------------------------------------------------------ */

/* Meta-Llama-3-8B-Instruct tokenizer_config.json (the form llama.cpp's
 * tests quote, with its add_generation_prompt test). */
static const char k_src_llama3[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
    "<|end_header_id|>\\n\\n' }}{% endif %}";

/* Qwen2-0.5B-Instruct / Qwen2-1.5B-Instruct tokenizer_config.json. */
static const char k_src_chatml[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
    "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/* ibm-granite 3.x, as llama.cpp's tests/test-chat-template.cpp quotes it
 * ("ibm-granite/granite-3.x (tool call)"): the available_tools block of the
 * full template is left out. */
static const char k_src_granite[] =
    "{%- for message in messages %}\n"
    "    {%- if message['role'] == 'assistant_tool_call' %}\n"
    "    {{- '<|start_of_role|>assistant<|end_of_role|><|tool_call|>' + message['content'] + "
    "'<|end_of_text|>\\n' }}\n"
    "    {%- else %}\n"
    "    {{- '<|start_of_role|>' + message['role'] + '<|end_of_role|>' + message['content'] + "
    "'<|end_of_text|>\\n' }}\n"
    "    {%- endif %}\n"
    "    {%- if loop.last and add_generation_prompt %}\n"
    "    {{- '<|start_of_role|>assistant<|end_of_role|>' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}";

/* LiquidAI LFM2.5-1.2B-Instruct GGUF (tokenizer.chat_template), whole. */
static const char k_src_lfm2[] =
    "{{- bos_token -}}\n"
    "{%- set keep_past_thinking = keep_past_thinking | default(false) -%}\n"
    "{%- set ns = namespace(system_prompt=\"\") -%}\n"
    "{%- if messages[0][\"role\"] == \"system\" -%}\n"
    "    {%- set ns.system_prompt = messages[0][\"content\"] -%}\n"
    "    {%- set messages = messages[1:] -%}\n"
    "{%- endif -%}\n"
    "{%- if tools -%}\n"
    "    {%- set ns.system_prompt = ns.system_prompt + (\"\\n\" if ns.system_prompt else \"\") + "
    "\"List of tools: [\" -%}\n"
    "    {%- for tool in tools -%}\n"
    "        {%- if tool is not string -%}\n"
    "            {%- set tool = tool | tojson -%}\n"
    "        {%- endif -%}\n"
    "        {%- set ns.system_prompt = ns.system_prompt + tool -%}\n"
    "        {%- if not loop.last -%}\n"
    "            {%- set ns.system_prompt = ns.system_prompt + \", \" -%}\n"
    "        {%- endif -%}\n"
    "    {%- endfor -%}\n"
    "    {%- set ns.system_prompt = ns.system_prompt + \"]\" -%}\n"
    "{%- endif -%}\n"
    "{%- if ns.system_prompt -%}\n"
    "    {{- \"<|im_start|>system\\n\" + ns.system_prompt + \"<|im_end|>\\n\" -}}\n"
    "{%- endif -%}\n"
    "{%- set ns.last_assistant_index = -1 -%}\n"
    "{%- for message in messages -%}\n"
    "    {%- if message[\"role\"] == \"assistant\" -%}\n"
    "        {%- set ns.last_assistant_index = loop.index0 -%}\n"
    "    {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- for message in messages -%}\n"
    "    {{- \"<|im_start|>\" + message[\"role\"] + \"\\n\" -}}\n"
    "    {%- set content = message[\"content\"] -%}\n"
    "    {%- if content is not string -%}\n"
    "        {%- set content = content | tojson -%}\n"
    "    {%- endif -%}\n"
    "    {%- if message[\"role\"] == \"assistant\" and not keep_past_thinking and loop.index0 != "
    "ns.last_assistant_index -%}\n"
    "        {%- if \"</think>\" in content -%}\n"
    "            {%- set content = content.split(\"</think>\")[-1] | trim -%}\n"
    "        {%- endif -%}\n"
    "    {%- endif -%}\n"
    "    {{- content + \"<|im_end|>\\n\" -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{- \"<|im_start|>assistant\\n\" -}}\n"
    "{%- endif -%}";

/* google/gemma-7b-it tokenizer_config.json, as llama.cpp's tests quote it. */
static const char k_src_gemma[] =
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif "
    "%}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif "
    "%}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = "
    "message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
    "'<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";

/* mistralai/Mistral-Large-Instruct-2411, as llama.cpp's tests quote it. */
static const char k_src_mistral_v7[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + '[/INST]' }}{% elif message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + "
    "message['content'] + '[/SYSTEM_PROMPT]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + "
    "message['content'] + eos_token }}{% else %}{{ raise_exception('Only user, system and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}";

const char *qeil_chat_template_source(qeil_chat_template t)
{
    switch (t) {
    case QEIL_CHAT_LLAMA3: return k_src_llama3;
    case QEIL_CHAT_CHATML: return k_src_chatml;
    case QEIL_CHAT_GRANITE: return k_src_granite;
    case QEIL_CHAT_LFM2: return k_src_lfm2;
    case QEIL_CHAT_GEMMA: return k_src_gemma;
    case QEIL_CHAT_MISTRAL_V7: return k_src_mistral_v7;
    default: return NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* Detection                                                                 */
/* ------------------------------------------------------------------------ */

/* memmem on a bounded source (no NUL needed). */
static int has(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m == 0 || m > n) return m == 0;
    for (size_t i = 0; i + m <= n; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, m) == 0) return 1;
    return 0;
}

qeil_chat_template qeil_chat_detect(const char *src, size_t len)
{
    if (!src) return QEIL_CHAT_UNKNOWN;
    if (len == 0) len = strlen(src);
    /* a source that is a name (llama.cpp: llm_chat_template_from_str) */
    for (int t = 1; t < QEIL_CHAT_COUNT; t++) {
        size_t m = strlen(k_names[t]);
        if (m == len && memcmp(src, k_names[t], m) == 0) return (qeil_chat_template)t;
    }
    if (has(src, len, "<|im_start|>")) {
        /* LFM2: tool list between <|tool_list_start|> and <|tool_list_end|>;
         * LFM2.5: a plain "List of tools: [" and keep_past_thinking
         * (llama.cpp common/chat.cpp) */
        if ((has(src, len, "<|tool_list_start|>") && has(src, len, "<|tool_list_end|>")) ||
            has(src, len, "List of tools: [") || has(src, len, "keep_past_thinking"))
            return QEIL_CHAT_LFM2;
        /* phi-4 (<|im_sep|>) and SmolVLM (<end_of_utterance>) share the
         * token but not the layout: not rendered here, so not ChatML */
        if (has(src, len, "<|im_sep|>") || has(src, len, "<end_of_utterance>")) return QEIL_CHAT_UNKNOWN;
        return QEIL_CHAT_CHATML;
    }
    if ((len >= 7 && memcmp(src, "mistral", 7) == 0) || has(src, len, "[INST]")) {
        if (has(src, len, "[SYSTEM_PROMPT]")) return QEIL_CHAT_MISTRAL_V7;
        if (has(src, len, "' [INST] ' + system_message") || has(src, len, "[AVAILABLE_TOOLS]")) {
            if (has(src, len, " [INST]")) return QEIL_CHAT_MISTRAL_V1;
            if (has(src, len, "\"[INST]\"")) return QEIL_CHAT_MISTRAL_V3_TEKKEN;
            return QEIL_CHAT_MISTRAL_V3;
        }
        if (has(src, len, "content.strip()")) return QEIL_CHAT_LLAMA2_SYS_STRIP;
        if (has(src, len, "bos_token + '[INST]")) return QEIL_CHAT_LLAMA2_SYS_BOS;
        if (has(src, len, "<<SYS>>")) return QEIL_CHAT_LLAMA2_SYS;
        return QEIL_CHAT_LLAMA2;
    }
    if (has(src, len, "<start_of_turn>")) return QEIL_CHAT_GEMMA;
    if (has(src, len, "<|start_header_id|>") && has(src, len, "<|end_header_id|>")) return QEIL_CHAT_LLAMA3;
    if (has(src, len, "<|start_of_role|>")) return QEIL_CHAT_GRANITE;
    return QEIL_CHAT_UNKNOWN;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */
/* ------------------------------------------------------------------------ */

static int role_ok(qeil_chat_template t, const char *role, const char **allowed)
{
    static const char *const base = "system, user, assistant";
    *allowed = base;
    if (!strcmp(role, "system") || !strcmp(role, "user") || !strcmp(role, "assistant")) return 1;
    switch (t) {
    case QEIL_CHAT_CHATML:
    case QEIL_CHAT_LFM2:
        *allowed = "system, user, assistant, tool";
        return !strcmp(role, "tool");
    case QEIL_CHAT_LLAMA3:
        *allowed = "system, user, assistant, tool, ipython";
        return !strcmp(role, "tool") || !strcmp(role, "ipython");
    case QEIL_CHAT_GRANITE:
        *allowed = "system, user, assistant, tool_response, assistant_tool_call";
        return !strcmp(role, "tool_response") || !strcmp(role, "assistant_tool_call");
    default: return 0;
    }
}

static size_t content_len(const qeil_chat_message *m)
{
    return m->content_len ? m->content_len : strlen(m->content);
}

static qeil_status check(qeil_ctx *ctx, qeil_chat_template t, const qeil_chat_message *msgs, size_t n)
{
    if ((unsigned)t >= QEIL_CHAT_COUNT || t == QEIL_CHAT_UNKNOWN)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "chat template: %d is not a known template (known: %s)",
                             (int)t, qeil_chat_template_names());
    if (n > QEIL_CHAT_MAX_MESSAGES)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "messages: %zu (allowed 0..%u)", n, QEIL_CHAT_MAX_MESSAGES);
    if (n && !msgs) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "messages: NULL with %zu messages", n);
    for (size_t i = 0; i < n; i++) {
        const qeil_chat_message *m = &msgs[i];
        const char *allowed;
        if (!m->role || !m->content)
            return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "messages[%zu]: %s is NULL", i,
                                 m->role ? "content" : "role");
        if (!role_ok(t, m->role, &allowed))
            return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                                 "messages[%zu]: role '%.64s' is not one of %s (template %s)", i, m->role,
                                 allowed, k_names[t]);
        if (m->content_len) {
            const char *z = memchr(m->content, '\0', m->content_len);
            if (z)
                return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                     "messages[%zu] (%s): content holds a NUL byte at offset %zu", i,
                                     m->role, (size_t)(z - m->content));
        }
    }
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Rendering                                                                 */
/* ------------------------------------------------------------------------ */

/* Where the text goes: buf[0..cap-1) plus a NUL, or nowhere (cap 0, to
 * measure); mask[i] = 1 for bytes the template wrote (special tokens may be
 * parsed there), 0 for message content. n counts every byte, written or
 * not; over is set when it would pass QEIL_CHAT_MAX_TEXT_BYTES. */
typedef struct {
    char *buf;
    uint8_t *mask;
    size_t cap, n;
    int over;
} sink;

static void put(sink *s, const char *p, size_t l, int tmpl)
{
    if (s->over || l > (size_t)QEIL_CHAT_MAX_TEXT_BYTES - s->n) {
        s->over = 1;
        return;
    }
    if (s->cap && s->n < s->cap - 1) {
        size_t k = s->cap - 1 - s->n < l ? s->cap - 1 - s->n : l;
        memcpy(s->buf + s->n, p, k);
        if (s->mask) memset(s->mask + s->n, tmpl, k);
    }
    s->n += l;
}

static void T(sink *s, const char *lit) { put(s, lit, strlen(lit), 1); }
static void C(sink *s, const char *p, size_t l) { put(s, p, l, 0); }

/* llama.cpp's trim(): isspace in the C locale at both ends. */
static int sp(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
static void trim(const char **p, size_t *l)
{
    while (*l && sp(**p)) (*p)++, (*l)--;
    while (*l && sp((*p)[*l - 1])) (*l)--;
}

/* LFM2.5: an assistant turn before the last one keeps only what follows its
 * last "</think>", trimmed (the template's keep_past_thinking = false). */
static void lfm2_strip_thinking(const char **p, size_t *l)
{
    static const char tag[] = "</think>";
    const size_t m = sizeof tag - 1;
    size_t at = SIZE_MAX;
    for (size_t i = 0; i + m <= *l; i++)
        if (memcmp(*p + i, tag, m) == 0) at = i;
    if (at == SIZE_MAX) return;
    *p += at + m;
    *l -= at + m;
    trim(p, l);
}

static void render(sink *s, qeil_chat_template t, const qeil_chat_message *msgs, size_t n, int add_gen)
{
    if (t == QEIL_CHAT_CHATML || t == QEIL_CHAT_LFM2) {
        size_t last_asst = SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(msgs[i].role, "assistant")) last_asst = i;
        for (size_t i = 0; i < n; i++) {
            const char *c = msgs[i].content;
            size_t l = content_len(&msgs[i]);
            if (t == QEIL_CHAT_LFM2 && i != last_asst && !strcmp(msgs[i].role, "assistant"))
                lfm2_strip_thinking(&c, &l);
            T(s, "<|im_start|>");
            T(s, msgs[i].role);
            T(s, "\n");
            C(s, c, l);
            T(s, "<|im_end|>\n");
        }
        if (add_gen) T(s, "<|im_start|>assistant\n");
    } else if (t == QEIL_CHAT_LLAMA3) {
        for (size_t i = 0; i < n; i++) {
            const char *r = msgs[i].role, *c = msgs[i].content;
            size_t l = content_len(&msgs[i]);
            trim(&c, &l);
            /* Llama 3.1's template writes tool results under "ipython" */
            if (!strcmp(r, "tool")) r = "ipython";
            T(s, "<|start_header_id|>");
            T(s, r);
            T(s, "<|end_header_id|>\n\n");
            C(s, c, l);
            T(s, "<|eot_id|>");
        }
        if (add_gen) T(s, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    } else if (t == QEIL_CHAT_GRANITE) {
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(msgs[i].role, "assistant_tool_call")) {
                /* as the Granite template writes it (llama.cpp's
                 * non-Jinja path writes the role name verbatim instead) */
                T(s, "<|start_of_role|>assistant<|end_of_role|><|tool_call|>");
            } else {
                T(s, "<|start_of_role|>");
                T(s, msgs[i].role);
                T(s, "<|end_of_role|>");
            }
            C(s, msgs[i].content, content_len(&msgs[i]));
            T(s, "<|end_of_text|>\n");
        }
        if (add_gen) T(s, "<|start_of_role|>assistant<|end_of_role|>");
    } else if (t == QEIL_CHAT_GEMMA) {
        /* no system role: system texts (trimmed, concatenated) open the
         * next non-model turn, followed by a blank line */
        size_t pend = SIZE_MAX, pend_len = 0;
        for (size_t i = 0; i < n; i++) {
            const char *c = msgs[i].content;
            size_t l = content_len(&msgs[i]);
            trim(&c, &l);
            if (!strcmp(msgs[i].role, "system")) {
                if (pend == SIZE_MAX) pend = i;
                pend_len += l;
                continue;
            }
            int model = !strcmp(msgs[i].role, "assistant");
            T(s, "<start_of_turn>");
            T(s, model ? "model" : msgs[i].role);
            T(s, "\n");
            if (pend_len && !model) {
                for (size_t j = pend; j < i; j++) {
                    if (strcmp(msgs[j].role, "system")) continue;
                    const char *sc = msgs[j].content;
                    size_t sl = content_len(&msgs[j]);
                    trim(&sc, &sl);
                    C(s, sc, sl);
                }
                T(s, "\n\n");
                pend = SIZE_MAX;
                pend_len = 0;
            }
            C(s, c, l);
            T(s, "<end_of_turn>\n");
        }
        if (add_gen) T(s, "<start_of_turn>model\n");
    } else if (is_mistral_v7(t)) {
        const char *spc = t == QEIL_CHAT_MISTRAL_V7 ? " " : "";
        for (size_t i = 0; i < n; i++) {
            const char *r = msgs[i].role;
            if (!strcmp(r, "system")) {
                T(s, "[SYSTEM_PROMPT]");
                T(s, spc);
            } else if (!strcmp(r, "user")) {
                T(s, "[INST]");
                T(s, spc);
            } else {
                T(s, spc);
            }
            C(s, msgs[i].content, content_len(&msgs[i]));
            T(s, !strcmp(r, "system") ? "[/SYSTEM_PROMPT]" : !strcmp(r, "user") ? "[/INST]" : "</s>");
        }
    } else if (is_mistral_v13(t)) {
        const char *lead = t == QEIL_CHAT_MISTRAL_V1 ? " " : "";
        const char *trail = t == QEIL_CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
        int inside = 0;
        for (size_t i = 0; i < n; i++) {
            const char *r = msgs[i].role, *c = msgs[i].content;
            size_t l = content_len(&msgs[i]);
            if (!inside) {
                T(s, lead);
                T(s, "[INST]");
                T(s, trail);
                inside = 1;
            }
            if (!strcmp(r, "system")) {
                C(s, c, l);
                T(s, "\n\n");
            } else if (!strcmp(r, "user")) {
                C(s, c, l);
                T(s, lead);
                T(s, "[/INST]");
            } else {
                if (t == QEIL_CHAT_MISTRAL_V3) trim(&c, &l);
                T(s, trail);
                C(s, c, l);
                T(s, "</s>");
                inside = 0;
            }
        }
    } else if (is_llama2(t)) {
        int sys_ok = t != QEIL_CHAT_LLAMA2, bos_hist = t == QEIL_CHAT_LLAMA2_SYS_BOS,
            strip = t == QEIL_CHAT_LLAMA2_SYS_STRIP, inside = 1;
        T(s, "[INST] ");
        for (size_t i = 0; i < n; i++) {
            const char *r = msgs[i].role, *c = msgs[i].content;
            size_t l = content_len(&msgs[i]);
            if (strip) trim(&c, &l);
            if (!inside) {
                T(s, bos_hist ? "<s>[INST] " : "[INST] ");
                inside = 1;
            }
            if (!strcmp(r, "system")) {
                if (sys_ok) T(s, "<<SYS>>\n");
                C(s, c, l);
                T(s, sys_ok ? "\n<</SYS>>\n\n" : "\n");
            } else if (!strcmp(r, "user")) {
                C(s, c, l);
                T(s, " [/INST]");
            } else {
                C(s, c, l);
                T(s, "</s>");
                inside = 0;
            }
        }
    }
}

qeil_status qeil_chat_apply(qeil_ctx *ctx, qeil_chat_template t, const qeil_chat_message *msgs, size_t n,
                            int add_generation_prompt, char *buf, size_t cap, size_t *len)
{
    if (len) *len = 0;
    if (!buf && cap) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "chat apply: buf is NULL with cap %zu", cap);
    qeil_status st = check(ctx, t, msgs, n);
    if (st != QEIL_OK) return st;
    sink s = {buf, NULL, cap, 0, 0};
    render(&s, t, msgs, n, add_generation_prompt != 0);
    if (s.over)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "chat prompt: longer than %u bytes",
                             QEIL_CHAT_MAX_TEXT_BYTES);
    if (cap) buf[s.n < cap ? s.n : cap - 1] = '\0';
    if (len) *len = s.n;
    if (s.n >= cap)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "chat prompt: %zu bytes (with the NUL) do not fit in cap %zu",
                             s.n + 1, cap);
    return QEIL_OK;
}

/* Render into a buffer allocated to size (and a mask when want_mask). */
static qeil_status render_alloc(qeil_ctx *ctx, qeil_chat_template t, const qeil_chat_message *msgs, size_t n,
                                int add_gen, char **out, uint8_t **mask, size_t *len)
{
    *out = NULL;
    if (mask) *mask = NULL;
    qeil_status st = check(ctx, t, msgs, n);
    if (st != QEIL_OK) return st;
    sink s = {NULL, NULL, 0, 0, 0};
    render(&s, t, msgs, n, add_gen);
    if (s.over)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "chat prompt: longer than %u bytes",
                             QEIL_CHAT_MAX_TEXT_BYTES);
    size_t need = s.n + 1;
    char *b = qeil_malloc(ctx, need);
    uint8_t *m = mask ? qeil_malloc(ctx, need) : NULL;
    if (!b || (mask && !m)) {
        qeil_free(ctx, b);
        qeil_free(ctx, m);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "chat prompt: out of memory for %zu bytes", need);
    }
    sink w = {b, m, need, 0, 0};
    render(&w, t, msgs, n, add_gen);
    b[w.n] = '\0';
    *out = b;
    if (mask) *mask = m;
    if (len) *len = w.n;
    return QEIL_OK;
}

qeil_status qeil_chat_apply_alloc(qeil_ctx *ctx, qeil_chat_template t, const qeil_chat_message *msgs,
                                  size_t n, int add_generation_prompt, char **out, size_t *len)
{
    if (len) *len = 0;
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "chat apply: out is NULL");
    if (!ctx) {
        *out = NULL;
        return QEIL_ERR_INVALID;
    }
    return render_alloc(ctx, t, msgs, n, add_generation_prompt != 0, out, NULL, len);
}

/* ------------------------------------------------------------------------ */
/* Tokenization                                                              */
/* ------------------------------------------------------------------------ */

qeil_chat_params qeil_chat_default_params(void)
{
    qeil_chat_params p;
    p.add_generation_prompt = 1;
    p.add_bos = -1;
    p.content_special = 0;
    p.from_byte = 0;
    return p;
}

qeil_status qeil_chat_tokenize(qeil_ctx *ctx, const qeil_tokenizer *tk, qeil_chat_template t,
                               const qeil_chat_message *msgs, size_t n, const qeil_chat_params *p,
                               int32_t *ids, size_t cap, size_t *n_out)
{
    if (n_out) *n_out = 0;
    if (!ctx || !tk || !n_out || (!ids && cap))
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "chat tokenize: NULL argument (ctx, tokenizer, ids or n_out)");
    qeil_chat_params d = qeil_chat_default_params();
    if (!p) p = &d;
    char *text = NULL;
    uint8_t *mask = NULL;
    size_t len = 0;
    qeil_status st = render_alloc(ctx, t, msgs, n, p->add_generation_prompt != 0, &text,
                                  p->content_special ? NULL : &mask, &len);
    if (st != QEIL_OK) return st;
    size_t at = p->from_byte;
    if (at > len)
        st = qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "from_byte: %zu (allowed 0..%zu, the rendered length)", at, len);
    else
        st = qeil_tok_encode_mask(ctx, tk, text + at, len - at, at ? 0 : p->add_bos, 1, mask ? mask + at : NULL,
                                  at > 0, TOK_CHUNK_B, ids, cap, n_out);
    qeil_free(ctx, text);
    qeil_free(ctx, mask);
    return st;
}
