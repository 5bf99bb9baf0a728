/* serve_chat.c — messages → the prompt for /v1/chat/completions: the one
 * place `qeil serve` decides the chat format (docs/serve.md "Chat format").
 *
 * With a model whose tokenizer.chat_template qeil recognises (qeil/chat.h:
 * Llama 3, ChatML/Qwen2, Granite, LFM2, Gemma, Mistral, Llama 2), the
 * messages are rendered in that template and tokenized with its special
 * tokens parsed, while special-token text inside a message stays text (a
 * client cannot forge a turn). Otherwise the FALLBACK: each message
 * becomes a line "<role>: <content>\n", and the prompt ends with
 * "assistant:" for the model to continue — plain text any model can
 * continue, named "prompt_format": "fallback" in the responses. */
#include <stdlib.h>
#include <string.h>

#include "qeil/chat.h"
#include "serve.h"

const char *serve_chat_format(int chat_tmpl)
{
    return chat_tmpl == QEIL_CHAT_UNKNOWN ? "fallback" : qeil_chat_template_name((qeil_chat_template)chat_tmpl);
}

qeil_status serve_chat_tokenize(qeil_ctx *ctx, const qeil_tokenizer *tk, int chat_tmpl,
                                const serve_msg *msgs, size_t n, int32_t *ids, size_t cap,
                                size_t *n_out)
{
    qeil_chat_message *m = calloc(n ? n : 1, sizeof *m);
    if (!m) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "messages: out of memory");
    for (size_t i = 0; i < n; i++) {
        /* OpenAI's "developer" role is the system prompt of the templates */
        m[i].role = strcmp(msgs[i].role, "developer") == 0 ? "system" : msgs[i].role;
        m[i].content = msgs[i].content;
        m[i].content_len = 0;
    }
    qeil_chat_params p = qeil_chat_default_params(); /* generation prompt on, contents as text */
    qeil_status st = qeil_chat_tokenize(ctx, tk, (qeil_chat_template)chat_tmpl, m, n, &p, ids, cap, n_out);
    free(m);
    return st;
}

char *serve_chat_render(const serve_msg *msgs, size_t n)
{
    static const char tail[] = "assistant:";
    size_t total = sizeof tail;
    for (size_t i = 0; i < n; i++) {
        size_t add = strlen(msgs[i].role) + 2 + strlen(msgs[i].content) + 1;
        if (add > SIZE_MAX - total) return NULL;
        total += add;
    }
    char *out = malloc(total), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t r = strlen(msgs[i].role), c = strlen(msgs[i].content);
        memcpy(p, msgs[i].role, r);
        p += r;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, msgs[i].content, c);
        p += c;
        *p++ = '\n';
    }
    memcpy(p, tail, sizeof tail);
    return out;
}
