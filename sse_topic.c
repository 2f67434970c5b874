/* sse_topic.c: Mercure topic checks, and topic selectors compiled and matched without
 * backtracking (see sse_topic.h for who calls what).
 *
 * A template compiles to at most 2 * SSE_TEMPLATE_MAX_EXPR + 1 parts, literals and
 * expressions in their order. Matching carries the SET of topic offsets at which the
 * parts so far can end (a bitset over 0..len) from one part to the next; each part maps
 * a set to the next set in one pass over the topic, so the cost is O(len * parts) and
 * nothing depends on how the template could be tried out in turn.
 *
 * What a part matches is the regexp that github.com/yosida95/uritemplate (v3) builds,
 * which the Go Mercure hub uses (its Template.Regexp, expression.go):
 *   literal          the bytes themselves (a %XX in it is three bytes like any other)
 *   expression       optional: FIRST C0 (SEP C1){0,nvars-1}, where
 *                    (SEP C1) repeats without bound if any varspec has an explode '*',
 *                    and is absent for one varspec without '*';
 *                    C0, C1 are runs of units: one byte of the operator's class, or a
 *                    %XX triplet (hex digits of either case);
 *                    for the operators without reserved expansion the class is the
 *                    unreserved bytes plus ',' (the library adds ',' so that a simple
 *                    list like "a,b" matches), plus '=' for named operators (; ? &),
 *                    plus '=' in C0 when the first varspec explodes and in C1 when any
 *                    does (an exploded map "k=v");
 *                    + and # take unreserved and reserved bytes (',' and '=' are among
 *                    the reserved ones).
 *   op   FIRST SEP  class
 *   none  -    ,    unreserved ,
 *   +     -    ,    unreserved reserved
 *   #     #    ,    unreserved reserved
 *   .     .    .    unreserved ,
 *   /     /    /    unreserved ,
 *   ;     ;    ;    unreserved , =
 *   ?     ?    &    unreserved , =
 *   &     &    &    unreserved , =
 * Prefix modifiers (:N) do not bound the length: the library ignores them in its regexp,
 * and so do we. The library reads runes and we read bytes; the two agree because every
 * class is ASCII and a literal is whole UTF-8 sequences.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse_topic.h"

/* ---- bytes ---------------------------------------------------------------------- */

/* Class bits of an ASCII byte. ',' and '=' are reserved and have their own bit each,
 * since the unreserved classes take them one by one. */
#define CL_U     0x01   /* ALPHA DIGIT - . _ ~ */
#define CL_COMMA 0x02
#define CL_EQ    0x04
#define CL_R     0x08   /* gen-delims and sub-delims, ',' and '=' included */

/* What each class of the table above accepts. */
#define CLASS_U   (CL_U | CL_COMMA)
#define CLASS_UEQ (CL_U | CL_COMMA | CL_EQ)
#define CLASS_UR  (CL_U | CL_R)

static unsigned byte_class(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '-' || c == '.' || c == '_' || c == '~')
        return CL_U;
    if (c == ',')
        return CL_COMMA | CL_R;
    if (c == '=')
        return CL_EQ | CL_R;
    if (c && strchr("!#$&'()*+/:;?@[]", c))
        return CL_R;
    return 0;
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Decodes the UTF-8 sequence at s[0..len): its length (1..4) with the code point in
 * *cp, or 0 if it is not well-formed (overlong, surrogate, above U+10FFFF, cut short). */
static size_t utf8_one(const unsigned char *s, size_t len, uint32_t *cp)
{
    uint32_t c = s[0], min;
    size_t n, i;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        c &= 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        c &= 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        c &= 0x07;
        min = 0x10000;
    } else
        return 0;
    if (len < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

int sse_topic_valid(const char *t, size_t len)
{
    const unsigned char *s = (const unsigned char *)t;
    size_t i = 0, n;
    uint32_t cp;

    if (!t || len == 0 || len > SSE_TOPIC_MAX)
        return 0;
    while (i < len) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 0;
        if (!(n = utf8_one(s + i, len - i, &cp)))
            return 0;
        i += n;
    }
    return 1;
}

/* RFC 6570's literals outside '%': the ASCII it allows (with the erratum 6937 quote,
 * as the library has it), ucschar and iprivate. */
static int literal_cp(uint32_t c)
{
    if (c < 0x80)
        return c == '!' || c == '#' || c == '$' || (c >= '&' && c <= ';') || c == '='
            || (c >= '?' && c <= '[') || c == ']' || c == '_' || (c >= 'a' && c <= 'z')
            || c == '~';
    if (c < 0x10000)
        return (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfdcf)
            || (c >= 0xfdf0 && c <= 0xffef);
    return (c & 0xffff) <= 0xfffd && !(c >= 0xe0000 && c <= 0xe0fff);
}

static int varchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '_';
}

/* ---- compiled form -------------------------------------------------------------- */

enum { P_LIT, P_EXPR };

#define MAX_PARTS (2 * SSE_TEMPLATE_MAX_EXPR + 1)
#define UNBOUNDED 0xffff        /* more separators than a topic can hold */

typedef struct {
    unsigned char kind;         /* P_LIT or P_EXPR */
    unsigned char first;        /* expression: the byte before it, 0 = none */
    unsigned char sep;          /* expression: between values */
    unsigned char cls0, cls1;   /* expression: classes of the first and later values */
    uint16_t max;               /* expression: separators allowed, UNBOUNDED or n */
    uint32_t off, n;            /* literal: text[off..off+n) */
} part_t;

struct sse_selector_t {
    int kind;
    unsigned nparts;
    size_t len;
    uint16_t *fail;             /* KMP failure function, parallel to text (literals) */
    char *text;                 /* the source, NUL-terminated */
    part_t parts[];
};

/* Parses template s[0..len) into parts[]; returns their count, or -1 with *err. */
static int parse_template(const char *s, size_t len, part_t *parts, const char **err)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, lit = 0;
    int np = 0, nexpr = 0;
    uint32_t cp;
    size_t n;

    while (i <= len) {
        if (i == len || u[i] == '{') {
            if (i > lit) {
                parts[np].kind = P_LIT;
                parts[np].off = (uint32_t)lit;
                parts[np].n = (uint32_t)(i - lit);
                np++;
            }
            if (i == len)
                break;
            if (++nexpr > SSE_TEMPLATE_MAX_EXPR) {
                *err = "more than 16 expressions in topic selector";
                return -1;
            }
            /* the expression */
            {
                part_t *p = &parts[np++];
                unsigned nvars = 0;
                int explode0 = 0, explode = 0, named = 0;
                unsigned char op = 0;

                memset(p, 0, sizeof(*p));
                p->kind = P_EXPR;
                i++;
                if (i < len && u[i] && strchr("+#./;?&", u[i]))
                    op = u[i++];
                else if (i < len && u[i] && strchr("=,!@|", u[i])) {
                    *err = "reserved operator in topic selector expression";
                    return -1;
                }
                for (;;) {
                    size_t start = i;

                    /* varname: varchars and %XX, single dots between */
                    while (i < len) {
                        if (varchar(u[i]))
                            i++;
                        else if (u[i] == '%') {
                            if (i + 2 >= len || !is_hex(u[i + 1]) || !is_hex(u[i + 2])) {
                                *err = "bad percent-encoding in topic selector";
                                return -1;
                            }
                            i += 3;
                        } else if (u[i] == '.') {
                            if (i == start || u[i - 1] == '.') {
                                *err = "bad variable name in topic selector";
                                return -1;
                            }
                            i++;
                        } else
                            break;
                    }
                    if (i == start) {
                        if (i == len || u[i] == '{')
                            *err = "unbalanced '{' in topic selector";
                        else if (u[i] == '}' || u[i] == ',')
                            *err = "empty variable name in topic selector";
                        else
                            *err = "bad variable name in topic selector";
                        return -1;
                    }
                    if (u[i - 1] == '.') {
                        *err = "bad variable name in topic selector";
                        return -1;
                    }
                    nvars++;
                    if (i < len && u[i] == ':') {
                        size_t d = ++i;

                        while (i < len && u[i] >= '0' && u[i] <= '9' && i - d < 5)
                            i++;
                        if (i == d || u[d] == '0' || i - d > 4) {
                            *err = "bad prefix modifier in topic selector (:1 to :9999)";
                            return -1;
                        }
                    } else if (i < len && u[i] == '*') {
                        i++;
                        explode = 1;
                        if (nvars == 1)
                            explode0 = 1;
                    }
                    if (i == len || u[i] == '{') {
                        *err = "unbalanced '{' in topic selector";
                        return -1;
                    }
                    if (u[i] == '}')
                        break;
                    if (u[i] != ',') {
                        *err = "bad character in topic selector expression";
                        return -1;
                    }
                    i++;
                }
                i++;            /* the '}' */
                lit = i;
                switch (op) {
                case 0:   p->sep = ','; p->cls0 = CLASS_U; break;
                case '+': p->sep = ','; p->cls0 = CLASS_UR; break;
                case '#': p->sep = ','; p->cls0 = CLASS_UR; p->first = '#'; break;
                case '.': p->sep = '.'; p->cls0 = CLASS_U; p->first = '.'; break;
                case '/': p->sep = '/'; p->cls0 = CLASS_U; p->first = '/'; break;
                case ';': p->sep = ';'; p->cls0 = CLASS_U; p->first = ';'; named = 1; break;
                case '?': p->sep = '&'; p->cls0 = CLASS_U; p->first = '?'; named = 1; break;
                default:  p->sep = '&'; p->cls0 = CLASS_U; p->first = '&'; named = 1; break;
                }
                p->cls1 = p->cls0;
                if (p->cls0 == CLASS_U) {
                    if (named || explode0)
                        p->cls0 = CLASS_UEQ;
                    if (named || explode)
                        p->cls1 = CLASS_UEQ;
                }
                if (explode)
                    p->max = UNBOUNDED;
                else
                    p->max = (uint16_t)(nvars - 1 < UNBOUNDED ? nvars - 1 : UNBOUNDED);
            }
            continue;
        }
        /* a literal character */
        if (u[i] == '}') {
            *err = "unbalanced '}' in topic selector";
            return -1;
        }
        if (u[i] == '%') {
            if (i + 2 >= len || !is_hex(u[i + 1]) || !is_hex(u[i + 2])) {
                *err = "bad percent-encoding in topic selector";
                return -1;
            }
            i += 3;
            continue;
        }
        n = utf8_one(u + i, len - i, &cp);
        if (!n || !literal_cp(cp)) {
            *err = "character not allowed in a URI template topic selector";
            return -1;
        }
        i += n;
    }
    return np;
}

sse_selector_t *sse_selector_new(const char *s, size_t len, const char **err)
{
    part_t parts[MAX_PARTS];
    const char *dummy;
    sse_selector_t *sel;
    int np = 0, kind;
    size_t i, size, pos;

    if (!err)
        err = &dummy;
    *err = NULL;
    if (!s || len == 0) {
        *err = "empty topic selector";
        return NULL;
    }
    if (len > SSE_TOPIC_MAX) {
        *err = "topic selector longer than 2048 bytes";
        return NULL;
    }
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            *err = "control character in topic selector";
            return NULL;
        }
    if (!sse_topic_valid(s, len)) {
        *err = "topic selector is not UTF-8";
        return NULL;
    }
    if (len == 1 && s[0] == '*')
        kind = SSE_SEL_ANY;
    else if (!memchr(s, '{', len))
        kind = SSE_SEL_EXACT;
    else {
        kind = SSE_SEL_TEMPLATE;
        if ((np = parse_template(s, len, parts, err)) < 0)
            return NULL;
    }

    /* header and parts, then the failure table (2 bytes a text byte, templates only),
     * then the text */
    size = sizeof(*sel) + (size_t)np * sizeof(part_t);
    size = (size + 1) & ~(size_t)1;
    pos = size;
    if (kind == SSE_SEL_TEMPLATE)
        size += len * sizeof(uint16_t);
    sel = malloc(size + len + 1);
    if (!sel) {
        *err = "out of memory";
        return NULL;
    }
    sel->kind = kind;
    sel->nparts = (unsigned)np;
    sel->len = len;
    sel->fail = kind == SSE_SEL_TEMPLATE ? (uint16_t *)((char *)sel + pos) : NULL;
    sel->text = (char *)sel + size;
    memcpy(sel->text, s, len);
    sel->text[len] = '\0';
    for (i = 0; i < (size_t)np; i++) {
        sel->parts[i] = parts[i];
        if (parts[i].kind == P_LIT) {
            /* fail[k]: the longest proper border of lit[0..k] */
            const char *lit = sel->text + parts[i].off;
            uint16_t *f = sel->fail + parts[i].off;
            uint32_t k, j = 0;

            f[0] = 0;
            for (k = 1; k < parts[i].n; k++) {
                while (j > 0 && lit[k] != lit[j])
                    j = f[j - 1];
                if (lit[k] == lit[j])
                    j++;
                f[k] = (uint16_t)j;
            }
        }
    }
    return sel;
}

void sse_selector_free(sse_selector_t *sel)
{
    free(sel);
}

int sse_selector_kind(const sse_selector_t *sel)
{
    return sel->kind;
}

const char *sse_selector_text(const sse_selector_t *sel, size_t *len)
{
    if (len)
        *len = sel->len;
    return sel->text;
}

/* ---- matching ------------------------------------------------------------------- */

#define NWORDS ((SSE_TOPIC_MAX + 1 + 63) / 64)

#define BIT_GET(b, i) (((b)[(i) >> 6] >> ((i) & 63)) & 1)
#define BIT_SET(b, i) ((b)[(i) >> 6] |= (uint64_t)1 << ((i) & 63))

/* The lowest set offset of b[0..nw) (as words), or (size_t)-1 if none. */
static size_t bits_low(const uint64_t *b, size_t nw)
{
    size_t w;

    for (w = 0; w < nw; w++)
        if (b[w])
            return w * 64 + (size_t)__builtin_ctzll(b[w]);
    return (size_t)-1;
}

/* How many bytes the unit at t[q] of class cls takes: 1, 3 for %XX, 0 if none. */
static size_t unit_at(const unsigned char *t, size_t len, size_t q, unsigned cls)
{
    if (t[q] == '%')
        return q + 2 < len && is_hex(t[q + 1]) && is_hex(t[q + 2]) ? 3 : 0;
    return (byte_class(t[q]) & cls) ? 1 : 0;
}

/* out = { p + n : p in in, t[p..p+n) == the literal }, by KMP from the lowest p. */
static void step_literal(const sse_selector_t *sel, const part_t *p,
                         const unsigned char *t, size_t len, size_t lo,
                         const uint64_t *in, uint64_t *out, size_t nw)
{
    const unsigned char *lit = (const unsigned char *)sel->text + p->off;
    const uint16_t *f = sel->fail + p->off;
    size_t i, j = 0, n = p->n;
    size_t w, pop = 0;

    memset(out, 0, nw * sizeof(uint64_t));
    if (lo + n > len)
        return;
    for (w = 0; w < nw && pop < 2; w++)
        pop += (size_t)__builtin_popcountll(in[w]);
    if (pop == 1) {
        if (memcmp(t + lo, lit, n) == 0)
            BIT_SET(out, lo + n);
        return;
    }
    for (i = lo; i < len; i++) {
        while (j > 0 && t[i] != lit[j])
            j = f[j - 1];
        if (t[i] == lit[j])
            j++;
        if (j == n) {
            if (BIT_GET(in, i + 1 - n))
                BIT_SET(out, i + 1);
            j = f[j - 1];
        }
    }
}

/* out = in (the expression may be absent) plus every end of FIRST C0 (SEP C1){0,max}
 * begun at an offset of in. One pass: A holds the offsets reachable inside C0, minb[q]
 * the fewest separators spent to stand at q inside a later value. */
static void step_expr(const part_t *p, const unsigned char *t, size_t len, size_t lo,
                      const uint64_t *in, uint64_t *out, uint64_t *a, uint16_t *minb,
                      size_t nw)
{
    size_t q, u;
    int group = p->max > 0;

    memcpy(out, in, nw * sizeof(uint64_t));
    memset(a, 0, nw * sizeof(uint64_t));
    if (p->first) {
        for (q = lo; q < len; q++)
            if (BIT_GET(in, q) && t[q] == p->first)
                BIT_SET(a, q + 1);
        lo++;
    } else
        memcpy(a, in, nw * sizeof(uint64_t));
    if (lo > len)
        return;
    for (q = lo; q <= len; q++)
        minb[q] = UNBOUNDED;
    for (q = lo; q <= len; q++) {
        int ina = BIT_GET(a, q);
        uint16_t b = minb[q];

        if (!ina && b == UNBOUNDED)
            continue;
        BIT_SET(out, q);
        if (q == len)
            break;
        if (ina) {
            if ((u = unit_at(t, len, q, p->cls0)))
                BIT_SET(a, q + u);
            if (group && t[q] == p->sep && minb[q + 1] > 1)
                minb[q + 1] = 1;
        }
        if (b != UNBOUNDED) {
            if ((u = unit_at(t, len, q, p->cls1)) && minb[q + u] > b)
                minb[q + u] = b;
            if (t[q] == p->sep && (p->max == UNBOUNDED || b < p->max)
                && minb[q + 1] > b + 1)
                minb[q + 1] = (uint16_t)(b + 1);
        }
    }
}

int sse_selector_match(const sse_selector_t *sel, const char *topic, size_t len)
{
    const unsigned char *t = (const unsigned char *)topic;
    uint64_t cur[NWORDS], nxt[NWORDS], a[NWORDS];
    uint16_t minb[SSE_TOPIC_MAX + 1];
    size_t nw, lo, i;

    if (sel->kind == SSE_SEL_ANY)
        return 1;
    if (len == sel->len && memcmp(topic, sel->text, len) == 0)
        return 1;
    if (sel->kind == SSE_SEL_EXACT || len > SSE_TOPIC_MAX)
        return 0;
    nw = (len + 1 + 63) / 64;
    memset(cur, 0, nw * sizeof(uint64_t));
    cur[0] = 1;
    lo = 0;
    for (i = 0; i < sel->nparts; i++) {
        const part_t *p = &sel->parts[i];

        if (p->kind == P_LIT)
            step_literal(sel, p, t, len, lo, cur, nxt, nw);
        else
            step_expr(p, t, len, lo, cur, nxt, a, minb, nw);
        memcpy(cur, nxt, nw * sizeof(uint64_t));
        if ((lo = bits_low(cur, nw)) == (size_t)-1)
            return 0;
    }
    return BIT_GET(cur, len);
}
