/* fuzz_topic.c: libFuzzer target for Mercure topic selectors (sse_topic.c), which the
 * hub compiles from a subscriber's query and matches against every published topic.
 *
 * The input is a selector, a NUL, a topic (no NUL: the input is both). Whatever the
 * bytes, sse_selector_new must not crash and must give a selector or a one-line reason;
 * a selector it gives must keep its text and satisfy sse_topic_valid. Then:
 *   - matching is deterministic (the same answer twice);
 *   - ANY matches everything; EXACT matches exactly the equal topic;
 *   - a template matches its own text, and the topic left when every expression is
 *     left out (each is optional in the regexp);
 *   - for short templates and valid topics, the answer is that of a POSIX extended
 *     regexp (glibc regcomp/regexec) built here from the template text the way
 *     github.com/yosida95/uritemplate builds its Go regexp (Template.Regexp) -- an
 *     independent check of the bitset matcher against a regexp engine.
 */
#include "fuzz_common.h"

#include <regex.h>

#include "sse_topic.h"

/* Appends s to the buffer b (of cap bytes at *n); 0 if it does not fit. */
static int put(char *b, size_t cap, size_t *n, const char *s)
{
    size_t l = strlen(s);

    if (*n + l + 1 > cap)
        return 0;
    memcpy(b + *n, s, l + 1);
    *n += l;
    return 1;
}

/* The library's value class as an ERE (runeClassToRegexp): reserved or not, with or
 * without '='. ']' first and '-' last in the brackets, as POSIX wants. */
static const char *ere_class(int reserved, int eq)
{
    if (reserved)
        return "(([]!#$&'()*+,./0-9:;=?@A-Z[_a-z~-]|%[[:xdigit:]][[:xdigit:]])*)";
    return eq ? "(([,=.0-9A-Z_a-z~-]|%[[:xdigit:]][[:xdigit:]])*)"
              : "(([,.0-9A-Z_a-z~-]|%[[:xdigit:]][[:xdigit:]])*)";
}

/* Builds the ERE of valid template t (sse_selector_new accepted it) into re; also the
 * template with every expression left out into bare. 0 if re does not fit. */
static int build_ere(const char *t, char *re, size_t cap, char *bare)
{
    size_t n = 0, i = 0, nb = 0;
    char one[3];

    re[0] = '\0';
    if (!put(re, cap, &n, "^"))
        return 0;
    while (t[i]) {
        const char *first = "", *sep = ",";
        int reserved = 0, named = 0, nvars = 0, explode = 0, explode0 = 0;
        size_t j;
        char rep[16];

        if (t[i] != '{') {
            /* a literal byte, escaped if special */
            bare[nb++] = t[i];
            if (strchr(".[]()*+?{}|^$\\", t[i])) {
                one[0] = '\\';
                one[1] = t[i];
                one[2] = '\0';
            } else {
                one[0] = t[i];
                one[1] = '\0';
            }
            if (!put(re, cap, &n, one))
                return 0;
            i++;
            continue;
        }
        i++;
        switch (t[i]) {
        case '+': reserved = 1; i++; break;
        case '#': reserved = 1; first = "#"; i++; break;
        case '.': first = "\\."; sep = "\\."; i++; break;
        case '/': first = "/"; sep = "/"; i++; break;
        case ';': first = ";"; sep = ";"; named = 1; i++; break;
        case '?': first = "\\?"; sep = "&"; named = 1; i++; break;
        case '&': first = "&"; sep = "&"; named = 1; i++; break;
        default: break;
        }
        /* varspecs: count them and their explodes ('*' only ends a varspec) */
        for (j = i; t[j] != '}'; j++) {
            if (t[j] == '*') {
                explode = 1;
                if (nvars == 0)
                    explode0 = 1;
            }
            if (t[j] == ',')
                nvars++;
        }
        nvars++;
        i = j + 1;
        if (*first && (!put(re, cap, &n, "(") || !put(re, cap, &n, first)))
            return 0;
        if (!put(re, cap, &n, "(") || !put(re, cap, &n, ere_class(reserved, named || explode0)))
            return 0;
        if (nvars > 1 || explode) {
            if (!put(re, cap, &n, "(") || !put(re, cap, &n, sep)
                || !put(re, cap, &n, ere_class(reserved, named || explode))
                || !put(re, cap, &n, ")"))
                return 0;
            if (explode)
                strcpy(rep, "*");
            else
                snprintf(rep, sizeof(rep), "{0,%d}", nvars - 1);
            if (!put(re, cap, &n, rep))
                return 0;
        }
        if (!put(re, cap, &n, ")"))
            return 0;
        if (*first && !put(re, cap, &n, ")"))
            return 0;
        if (!put(re, cap, &n, "?"))
            return 0;
    }
    bare[nb] = '\0';
    return put(re, cap, &n, "$");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    const char *topic = nul ? (const char *)nul + 1 : (const char *)data;
    size_t tlen = nul ? size - slen - 1 : size;
    char *s = fz_cstr(data, slen);
    char *tp = fz_cstr((const uint8_t *)topic, tlen);
    const char *err = NULL, *text;
    sse_selector_t *sel;
    size_t len;
    int r1, r2;

    sse_topic_valid(tp, tlen);
    sel = sse_selector_new(s, slen, &err);
    if (!sel) {
        FZ_ASSERT(fz_reason_ok(err));
        free(s);
        free(tp);
        return 0;
    }
    FZ_ASSERT(err == NULL);
    FZ_ASSERT(sse_topic_valid(s, slen));
    text = sse_selector_text(sel, &len);
    FZ_ASSERT(len == slen && memcmp(text, s, slen) == 0 && text[len] == '\0');

    r1 = sse_selector_match(sel, tp, tlen);
    r2 = sse_selector_match(sel, tp, tlen);
    FZ_ASSERT(r1 == r2 && (r1 == 0 || r1 == 1));
    FZ_ASSERT(sse_selector_match(sel, s, slen));

    switch (sse_selector_kind(sel)) {
    case SSE_SEL_ANY:
        FZ_ASSERT(r1 == 1);
        break;
    case SSE_SEL_EXACT:
        FZ_ASSERT(r1 == (tlen == slen && memcmp(tp, s, slen) == 0));
        break;
    case SSE_SEL_TEMPLATE: {
        static char re[65536];
        char bare[SSE_TOPIC_MAX + 1];
        regex_t rx;

        FZ_ASSERT(memchr(s, '{', slen) != NULL);
        if (!build_ere(s, re, sizeof(re), bare))
            break;
        FZ_ASSERT(sse_selector_match(sel, bare, strlen(bare)));
        /* regcomp and regexec are slow on long templates: short ones only */
        if (slen > 160 || tlen > 256 || memchr(tp, 0, tlen) || !sse_topic_valid(tp, tlen))
            break;
        if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0) {
            fprintf(stderr, "regcomp refused the reference regexp: %s\n", re);
            FZ_ASSERT(0);
        }
        {
            int want = (tlen == slen && memcmp(tp, s, slen) == 0)
                    || regexec(&rx, tp, 0, NULL, 0) == 0;

            if (r1 != want) {
                fz_dump("selector", s, slen);
                fz_dump("topic", tp, tlen);
                fprintf(stderr, "  regexp: %s\n  got %d, the regexp says %d\n", re, r1, want);
            }
            FZ_ASSERT(r1 == want);
        }
        regfree(&rx);
        break;
    }
    default:
        FZ_ASSERT(0);
    }
    sse_selector_free(sel);
    free(s);
    free(tp);
    return 0;
}
