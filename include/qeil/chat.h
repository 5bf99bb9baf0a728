/*
 * chat.h — chat templates: turn a conversation (a list of {role, content}
 * messages) into the prompt an instruct model was trained on, as text or as
 * token ids. The families are recognised from the Jinja source a GGUF
 * carries in `tokenizer.chat_template` by substring heuristics, as
 * llama.cpp's llm_chat_detect_template does; there is no Jinja engine. Each
 * family is rendered as llama.cpp's llm_chat_apply_template renders it
 * (system message, trimming, BOS and generation prompt per family:
 * docs/chat.md), except where docs/chat.md says why not.
 *
 * Usage:
 *
 *     qeil_chat_template t = qeil_chat_detect(src, strlen(src)); // QEIL_CHAT_UNKNOWN: none known
 *     qeil_chat_message msgs[] = {{"system", "Be brief.", 0}, {"user", "Hi!", 0}};
 *     qeil_chat_params cp = qeil_chat_default_params();  // generation prompt, model's BOS
 *     int32_t ids[512];
 *     size_t n = 0;
 *     if (qeil_chat_tokenize(ctx, tk, t, msgs, 2, &cp, ids, 512, &n) != QEIL_OK) { ...errmsg... }
 *     char *text = NULL;                                 // or as text, allocated by ctx
 *     if (qeil_chat_apply_alloc(ctx, t, msgs, 2, 1, &text, NULL) == QEIL_OK) qeil_free(ctx, text);
 *
 * Thread-safety: every function is pure on its arguments (no global
 * state); errors go to ctx, which may be NULL where noted.
 */
#ifndef QEIL_CHAT_H
#define QEIL_CHAT_H

#include "qeil/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_CHAT_MAX_MESSAGES 65536u                       /* messages per conversation */
#define QEIL_CHAT_MAX_TEXT_BYTES QEIL_TOKENIZER_MAX_TEXT_BYTES /* rendered prompt */

typedef enum {
    QEIL_CHAT_UNKNOWN = 0,        /* no template known: the caller uses the raw prompt */
    QEIL_CHAT_LLAMA3,             /* "llama3": Llama 3.x Instruct */
    QEIL_CHAT_CHATML,             /* "chatml": Qwen2/2.5 Instruct, OpenHermes, ... */
    QEIL_CHAT_GRANITE,            /* "granite": IBM Granite 3.x/4.0 */
    QEIL_CHAT_LFM2,               /* "lfm2": Liquid LFM2 / LFM2.5 (ChatML tokens) */
    QEIL_CHAT_GEMMA,              /* "gemma": Gemma 1/2/3 instruct */
    QEIL_CHAT_MISTRAL_V7,         /* "mistral-v7": Mistral Large 2411 */
    QEIL_CHAT_MISTRAL_V7_TEKKEN,  /* "mistral-v7-tekken": Mistral Small 3.1 */
    QEIL_CHAT_MISTRAL_V3,         /* "mistral-v3": Mistral Large 2407 */
    QEIL_CHAT_MISTRAL_V3_TEKKEN,  /* "mistral-v3-tekken": Mistral Nemo */
    QEIL_CHAT_MISTRAL_V1,         /* "mistral-v1": Mistral 7B Instruct v0.2 with system */
    QEIL_CHAT_LLAMA2,             /* "llama2": [INST] without <<SYS>> */
    QEIL_CHAT_LLAMA2_SYS,         /* "llama2-sys": Llama 2 chat with <<SYS>> */
    QEIL_CHAT_LLAMA2_SYS_BOS,     /* "llama2-sys-bos": <s> before each later [INST] */
    QEIL_CHAT_LLAMA2_SYS_STRIP,   /* "llama2-sys-strip": content trimmed */
    QEIL_CHAT_COUNT               /* number of values, UNKNOWN included */
} qeil_chat_template;

/* One message. role: "system", "user", "assistant" (every family), plus
 * "tool" (chatml, lfm2, llama3, where "ipython" is also taken), and
 * "tool_response" and "assistant_tool_call" (granite); any other role is
 * an error naming it. content: UTF-8 text, content_len bytes of it, or up
 * to its NUL when content_len is 0. A NUL byte inside content_len bytes is
 * an error (a prompt is text; C-string consumers would cut it silently). */
typedef struct {
    const char *role;
    const char *content;
    size_t content_len;
} qeil_chat_message;

/* "llama3", "chatml", ... as in the enum; "unknown" for QEIL_CHAT_UNKNOWN;
 * NULL for a value out of range. Static strings. */
QEIL_API const char *qeil_chat_template_name(qeil_chat_template t);
/* The template named exactly `name`; QEIL_CHAT_UNKNOWN when no name matches
 * (or name is NULL or "unknown"). */
QEIL_API qeil_chat_template qeil_chat_template_from_name(const char *name);
/* The known names, comma separated ("llama3, chatml, ..."), for messages
 * that list what is allowed. Static string. */
QEIL_API const char *qeil_chat_template_names(void);

/* The family of a Jinja template source src[0..len) (len 0: up to its NUL),
 * as llama.cpp detects it: a source that is exactly a name first, then
 * substrings ("<|im_start|>" -> chatml, or lfm2 with LFM2's tool-list
 * markers; "[INST]" variants -> mistral / llama2; "<start_of_turn>" ->
 * gemma; "<|start_header_id|>" -> llama3; "<|start_of_role|>" -> granite).
 * QEIL_CHAT_UNKNOWN for NULL or an unrecognised source. */
QEIL_API qeil_chat_template qeil_chat_detect(const char *src, size_t len);

/* The text of the token that ends an assistant turn in family t
 * ("<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "<end_of_turn>", "</s>"):
 * a generator stops there (look it up with qeil_tokenizer_find). NULL for
 * QEIL_CHAT_UNKNOWN or a value out of range. Static string. */
QEIL_API const char *qeil_chat_end_of_turn(qeil_chat_template t);

/* The special tokens a rendering of family t spells (a NULL-terminated
 * list of static strings; an empty list for UNKNOWN or out of range): a
 * vocabulary needs them as CONTROL tokens for the text to tokenize as the
 * model was trained. */
QEIL_API const char *const *qeil_chat_special_tokens(qeil_chat_template t);

/* A real template source of family t, as a model of that family carries it
 * in tokenizer.chat_template (qeil mkmodel --chat-template writes it;
 * sources and abbreviations: docs/chat.md), or NULL when none is kept
 * (mistral-v1/v3 and llama2 variants). Static string. */
QEIL_API const char *qeil_chat_template_source(qeil_chat_template t);

/* Render msgs[0..n) in family t. add_generation_prompt: 1 appends the
 * opening of an assistant turn ("<|im_start|>assistant\n"), 0 does not
 * (families whose prompt ends a user turn with nothing to open, e.g.
 * mistral's "[/INST]", append nothing either way). No BOS is written: the
 * tokenizer adds the model's (qeil_chat_tokenize does). n may be 0.
 * Writes at most cap bytes including a terminating NUL (buf may be NULL
 * when cap is 0); *len (may be NULL) gets the full length without the NUL;
 * QEIL_ERR_RANGE when cap was too small (buf holds a truncated,
 * NUL-terminated prefix), as snprintf but an error.
 * Errors (ctx may be NULL): QEIL_ERR_INVALID for UNKNOWN or an out-of-range
 * t, NULL msgs with n > 0, a NULL role or content ("message 3: ..."), an
 * unknown role ("message 3: role 'bot' is not one of system, user,
 * assistant, tool (template chatml)"); QEIL_ERR_FORMAT for a NUL byte in a
 * content; QEIL_ERR_RANGE for more than QEIL_CHAT_MAX_MESSAGES messages or
 * a text longer than QEIL_CHAT_MAX_TEXT_BYTES. */
QEIL_API qeil_status qeil_chat_apply(qeil_ctx *ctx, qeil_chat_template t, const qeil_chat_message *msgs,
                                     size_t n, int add_generation_prompt, char *buf, size_t cap,
                                     size_t *len);

/* The same into a NUL-terminated buffer allocated with ctx's allocator
 * (ctx not NULL; free it with qeil_free(ctx, *out)); *out is NULL on
 * failure. */
QEIL_API qeil_status qeil_chat_apply_alloc(qeil_ctx *ctx, qeil_chat_template t, const qeil_chat_message *msgs,
                                           size_t n, int add_generation_prompt, char **out, size_t *len);

typedef struct {
    int add_generation_prompt; /* 1: open an assistant turn at the end; default 1 */
    int add_bos;               /* -1: as the model asks (tokenizer.ggml.add_bos_token),
                                  0 never, 1 always; default -1 */
    int content_special;       /* 0: text in message contents that spells a special
                                  token ("<|im_end|>") stays text, so a message cannot
                                  forge a turn; 1: parsed as special tokens, as
                                  llama.cpp does; default 0 */
    size_t from_byte;          /* tokenize the rendering from this byte on: the turns a
                                  KV cache already holds are skipped (a continuation:
                                  no BOS, no SentencePiece dummy prefix at the start);
                                  0..the rendered length; default 0 */
} qeil_chat_params;

QEIL_API qeil_chat_params qeil_chat_default_params(void);

/* Render msgs[0..n) in family t (p NULL: the defaults) and tokenize the
 * text with tk: special tokens the template writes are parsed (as
 * qeil_tokenizer_encode with parse_special = 1); those spelled inside
 * contents only with p->content_special. With content_special = 1 the ids
 * equal qeil_tokenizer_encode(qeil_chat_apply's text, add_bos, 1). ids, cap,
 * *n_out as qeil_tokenizer_encode (QEIL_ERR_RANGE when cap is too small,
 * *n_out the full count). Errors: qeil_chat_apply's, the tokenizer's,
 * QEIL_ERR_NOMEM, QEIL_ERR_RANGE for from_byte past the text. ctx not NULL. */
QEIL_API qeil_status qeil_chat_tokenize(qeil_ctx *ctx, const qeil_tokenizer *tk, qeil_chat_template t,
                                        const qeil_chat_message *msgs, size_t n, const qeil_chat_params *p,
                                        int32_t *ids, size_t cap, size_t *n_out);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_CHAT_H */
