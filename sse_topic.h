/* sse_topic.h: Mercure topics and topic selectors, with no httpd and no APR in it.
 *
 * The hub's subscribe handler compiles each topic selector a subscriber gives
 * (sse_selector_new) and keeps the result for the life of the subscription; the broker
 * asks sse_selector_match for every published update's topics, in its event loop.
 * A compiled selector is ONE malloc'ed block owned by whoever created it (free it with
 * sse_selector_free, or free()); it is read-only after compiling, so any thread may
 * match against it. Matching allocates nothing, uses a few KB of stack and costs
 * O(topic length * template parts) at worst, whatever the input (no backtracking).
 *
 * The rules are those of a deployed Mercure hub (the Go hub's v8 "deprecated" topic
 * matcher and github.com/yosida95/uritemplate, whose regexp it uses):
 *   - "*" matches every topic;
 *   - a selector equal to the topic matches;
 *   - a selector with a '{' is an RFC 6570 URI template and matches a topic that the
 *     whole of the template's regexp, as that library builds it, matches.
 * Reasons returned on error are static one-line strings, fit for a log or a 400.
 */
#ifndef SSE_TOPIC_H
#define SSE_TOPIC_H

#include <stddef.h>

#define SSE_TOPIC_MAX 2048          /* bytes in a topic or a selector */
#define SSE_TEMPLATE_MAX_EXPR 16    /* expressions ({...}) in a template */

typedef struct sse_selector_t sse_selector_t;

enum { SSE_SEL_EXACT, SSE_SEL_ANY, SSE_SEL_TEMPLATE };

/* 1 if t[0..len) may be a topic: 1..SSE_TOPIC_MAX bytes of well-formed UTF-8 (no
 * overlongs, no surrogates, nothing above U+10FFFF) with no control character (no byte
 * below 0x20, no 0x7f), else 0. */
int sse_topic_valid(const char *t, size_t len);

/* Compiles selector s[0..len) into one malloc'ed block. The text must pass
 * sse_topic_valid. "*" is ANY; text without '{' is EXACT; text with a '{' must be a
 * well-formed RFC 6570 level 4 template: literals of the characters RFC 6570 allows
 * (pct-encoded triplets included), balanced braces, operators + # . / ; ? & or none,
 * varnames of ALPHA DIGIT _ and %XX with single dots between, each with an optional
 * prefix :1..:9999 or explode *, at most SSE_TEMPLATE_MAX_EXPR expressions.
 * Returns NULL with *err set to a static one-line reason ("unbalanced '{' in topic
 * selector", "topic selector longer than 2048 bytes", "out of memory", ...) otherwise;
 * err may be NULL. */
sse_selector_t *sse_selector_new(const char *s, size_t len, const char **err);

/* Frees sel (NULL is fine). */
void sse_selector_free(sse_selector_t *sel);

/* SSE_SEL_EXACT, SSE_SEL_ANY or SSE_SEL_TEMPLATE. */
int sse_selector_kind(const sse_selector_t *sel);

/* The selector's source text, NUL-terminated, living in sel; its length in *len
 * (len may be NULL). */
const char *sse_selector_text(const sse_selector_t *sel, size_t *len);

/* 1 if sel matches topic[0..len), else 0. ANY matches anything; EXACT compares bytes;
 * a template matches its own text, and otherwise a topic of at most SSE_TOPIC_MAX
 * bytes that its regexp matches whole. No allocation; bounded cost (see above). */
int sse_selector_match(const sse_selector_t *sel, const char *topic, size_t len);

#endif /* SSE_TOPIC_H */
