/* serve_chat.c — messages → prompt text for /v1/chat/completions: the one
 * place `qeil serve` decides the chat format (docs/serve.md "Chat format").
 *
 * FALLBACK, until the model's own chat template is wired in: each message
 * becomes a line "<role>: <content>\n", and the prompt ends with
 * "assistant:" for the model to continue. Models trained on a template
 * (ChatML, Llama 3, ...) answer better with theirs; this format is plain
 * text any model can continue, and what the responses name as
 * "prompt_format": "fallback". Replacing it means replacing these two
 * functions only. */
#include <stdlib.h>
#include <string.h>

#include "serve.h"

const char *serve_chat_format(void) { return "fallback"; }

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
