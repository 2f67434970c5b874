/* fuzz_text.c: libFuzzer target for the byte-level helpers behind every check and
 * every JSON answer: sse_utf8_valid and sse_json_str.
 *
 * sse_utf8_valid must agree with fuzz_ref.c's decode-and-range-check validator on every
 * input. sse_json_str, given the input as a C string (up to its first NUL, as the
 * module's strings are), must return a quoted JSON string with no raw control byte in
 * it whose unescaping is the input again; NULL must give the literal null.
 */
#include "fuzz_common.h"
#include "fuzz_ref.h"

#include "sse_event.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Unescapes the JSON string literal j (RFC 8259, the escapes sse_json_str may write)
 * into out; returns its length, or -1 if j is not such a literal. */
static long json_unquote(const char *j, char *out)
{
    size_t len = strlen(j), i, w = 0;

    if (len < 2 || j[0] != '"' || j[len - 1] != '"')
        return -1;
    for (i = 1; i < len - 1; i++) {
        unsigned char c = (unsigned char)j[i];
        if (c < 0x20 || c == '"')
            return -1;
        if (c != '\\') {
            out[w++] = (char)c;
            continue;
        }
        if (++i >= len - 1)
            return -1;
        switch (j[i]) {
        case '"': out[w++] = '"'; break;
        case '\\': out[w++] = '\\'; break;
        case '/': out[w++] = '/'; break;
        case 'b': out[w++] = '\b'; break;
        case 'f': out[w++] = '\f'; break;
        case 'n': out[w++] = '\n'; break;
        case 'r': out[w++] = '\r'; break;
        case 't': out[w++] = '\t'; break;
        case 'u': {
            int a, b, c2, d;
            if (i + 4 >= len - 1 || (a = hexval(j[i + 1])) < 0
                || (b = hexval(j[i + 2])) < 0 || (c2 = hexval(j[i + 3])) < 0
                || (d = hexval(j[i + 4])) < 0)
                return -1;
            if (a || b)
                return -1;      /* only \u00XX is written, for control bytes */
            out[w++] = (char)(c2 * 16 + d);
            i += 4;
            break;
        }
        default:
            return -1;
        }
    }
    return (long)w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    char *s, *back;
    const char *j;
    long n;

    if (sse_utf8_valid((const char *)data, size) != ref_utf8_valid((const char *)data, size)) {
        fprintf(stderr, "sse_utf8_valid says %d\n", sse_utf8_valid((const char *)data, size));
        fz_dump("input", (const char *)data, size);
        abort();
    }

    s = fz_cstr(data, size);
    j = sse_json_str(p, s);
    back = malloc(strlen(j) + 1);
    if (!back)
        abort();
    n = json_unquote(j, back);
    if (n < 0 || (size_t)n != strlen(s) || memcmp(back, s, (size_t)n)) {
        fprintf(stderr, "sse_json_str does not round-trip\n");
        fz_dump("input", s, strlen(s));
        fz_dump("json", j, strlen(j));
        abort();
    }
    FZ_ASSERT(!strcmp(sse_json_str(p, NULL), "null"));
    free(back);
    free(s);
    fz_done();
    return 0;
}
