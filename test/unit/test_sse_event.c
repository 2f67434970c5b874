/* test_sse_event.c: unit tests for sse_event.c (channels, UTF-8, checks, framing).
 *
 * Besides hand-written cases this checks three properties: sse_utf8_valid agrees with
 * an independent decode-then-range-check on every 1-, 2- and 3-byte input and on random
 * 4-byte ones; serialize-then-parse gives back every generated event with its data line
 * ends turned into "\n"; and any body the parser accepts survives serialize-then-parse
 * unchanged. Random inputs come from a fixed-seed PRNG so every run is the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "sse_event.h"
#include "unit.h"

static apr_pool_t *pool;

/* ---- deterministic PRNG (splitmix64) ---- */

static uint64_t rng_state = 0x5EE5EE5EE5EE5EEULL;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static unsigned rnd(unsigned n)
{
    return (unsigned)(rng() % n);
}

/* Pool memory is carved from big blocks, where ASan cannot see a read past the end of
 * one buffer; inputs go into exact-size malloc copies instead (free with free()). */
static char *dup_exact(const char *s, size_t n)
{
    char *c = malloc(n ? n : 1);

    if (!c)
        abort();
    if (n)
        memcpy(c, s, n);
    return c;
}

/* ---- channels ---- */

static int allowed_channel_byte(int c)
{
    return (c && strchr("._~:@/-", c))
        || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static const char *chan(const apr_array_header_t *a, int i)
{
    return APR_ARRAY_IDX(a, i, const char *);
}

static void test_channel_valid(void)
{
    char name[SSE_CHANNEL_MAX + 2];
    int c, agree = 1;

    memset(name, 'a', sizeof(name));
    CHECK(sse_channel_valid(name, 1));
    CHECK(sse_channel_valid(name, SSE_CHANNEL_MAX));
    CHECK(!sse_channel_valid(name, SSE_CHANNEL_MAX + 1));
    CHECK(!sse_channel_valid("", 0));
    CHECK(sse_channel_valid("._~:@/-", 7));
    CHECK(sse_channel_valid(".", 1));
    CHECK(sse_channel_valid("-", 1));
    CHECK(sse_channel_valid("news/sport:live@eu~v1.2_x-y", 27));
    CHECK(sse_channel_valid("AZaz09", 6));
    CHECK(!sse_channel_valid("a b", 3));
    CHECK(!sse_channel_valid("a,b", 3));
    CHECK(!sse_channel_valid("a\0b", 3));
    CHECK(!sse_channel_valid("caf\xC3\xA9", 5));
    /* Only len bytes are looked at. */
    CHECK(sse_channel_valid("ab cd", 2));
    for (c = 0; c < 256; c++) {
        char b = (char)c;
        if (sse_channel_valid(&b, 1) != allowed_channel_byte(c)) {
            fprintf(stderr, "    byte 0x%02X misjudged\n", c);
            agree = 0;
        }
    }
    CHECK(agree);
}

/* Namespaces and keys: a key is namespace '/' name, the namespace has no
 * '/', so two (namespace, name) pairs never make the same key. */
static void test_keys(void)
{
    char ns[SSE_NAMESPACE_MAX + 2], key[SSE_KEY_MAX + 2];
    const char *k1, *k2;

    memset(ns, 'n', sizeof(ns));
    CHECK(sse_namespace_valid(ns, 1));
    CHECK(sse_namespace_valid(ns, SSE_NAMESPACE_MAX));
    CHECK(!sse_namespace_valid(ns, SSE_NAMESPACE_MAX + 1));
    CHECK(!sse_namespace_valid("", 0));
    CHECK(!sse_namespace_valid("a/b", 3));
    CHECK(!sse_namespace_valid("a b", 3));
    CHECK(sse_namespace_valid("www.example.com", 15));
    CHECK(sse_namespace_valid("shop_1:eu@x~y-z", 15));

    CHECK(sse_key_valid("localhost/news", 14));
    CHECK(sse_key_valid("a/b/c", 5));           /* channel b/c of a */
    CHECK(!sse_key_valid("news", 4));           /* no namespace */
    CHECK(!sse_key_valid("/news", 5));          /* empty namespace */
    CHECK(!sse_key_valid("a/", 2));             /* empty name */
    CHECK(!sse_key_valid("a b/news", 8));
    CHECK(!sse_key_valid("a/ne ws", 7));
    memset(key, 'n', sizeof(key));
    key[SSE_NAMESPACE_MAX] = '/';
    CHECK(sse_key_valid(key, SSE_KEY_MAX));
    CHECK(!sse_key_valid(key, SSE_KEY_MAX + 1));

    /* the pairs (a, b/c) and (a/b, c) cannot collide: the second has no key */
    k1 = sse_key_make(pool, "a", "b/c");
    CHECK(!strcmp(k1, "a/b/c"));
    CHECK(!strcmp(sse_key_name(k1), "b/c"));
    CHECK(!sse_namespace_valid("a/b", 3));
    k2 = sse_key_make(pool, "b", "news");
    CHECK(strcmp(sse_key_make(pool, "a", "news"), k2) != 0);
    CHECK(!strcmp(sse_key_name("plain"), "plain"));

    CHECK(sse_channel_protected("@user-alice"));
    CHECK(!sse_channel_protected("user-@alice"));
    CHECK(!sse_channel_protected("news"));

    CHECK(!strcmp(sse_namespace_from_host(pool, "WWW.Example.COM"), "www.example.com"));
    CHECK(!strcmp(sse_namespace_from_host(pool, "[::1]"), "_::1_"));
    CHECK(!strcmp(sse_namespace_from_host(pool, "a/b"), "a_b"));
    CHECK(!strcmp(sse_namespace_from_host(pool, ""), "_"));
    CHECK(!strcmp(sse_namespace_from_host(pool, NULL), "_"));
    memset(key, 'h', sizeof(key));
    key[sizeof(key) - 1] = '\0';
    CHECK(strlen(sse_namespace_from_host(pool, key)) == SSE_NAMESPACE_MAX);
    CHECK(sse_namespace_valid(sse_namespace_from_host(pool, key), SSE_NAMESPACE_MAX));
}

static void test_channels_parse(void)
{
    apr_array_header_t *a = apr_array_make(pool, 4, sizeof(const char *));
    char long_list[SSE_CHANNEL_MAX + 16];
    const char *err;

    CHECK_ERR(sse_channels_parse(pool, "a,b c\td\ne\r\nf\v,g\f", a), NULL);
    CHECK(a->nelts == 7);
    if (a->nelts == 7) {
        CHECK_STR(chan(a, 0), "a");
        CHECK_STR(chan(a, 3), "d");
        CHECK_STR(chan(a, 6), "g");
    }

    apr_array_clear(a);
    CHECK_ERR(sse_channels_parse(pool, ",, ,x,,  ", a), NULL);
    CHECK(a->nelts == 1 && strcmp(chan(a, 0), "x") == 0);

    apr_array_clear(a);
    CHECK_ERR(sse_channels_parse(pool, "", a), NULL);
    CHECK_ERR(sse_channels_parse(pool, NULL, a), NULL);
    CHECK_ERR(sse_channels_parse(pool, " , \t", a), NULL);
    CHECK(a->nelts == 0);

    /* Dedupe within the list and against what out already holds. */
    CHECK_ERR(sse_channels_parse(pool, "a a,a b", a), NULL);
    CHECK(a->nelts == 2 && !strcmp(chan(a, 0), "a") && !strcmp(chan(a, 1), "b"));
    CHECK_ERR(sse_channels_parse(pool, "b,c,a", a), NULL);
    CHECK(a->nelts == 3 && !strcmp(chan(a, 2), "c"));

    /* A bad item names itself and leaves out as it was. */
    apr_array_clear(a);
    CHECK_ERR(sse_channels_parse(pool, "ok", a), NULL);
    err = sse_channels_parse(pool, "x,y a;b z", a);
    CHECK_STR(err, "invalid channel name 'a;b'");
    CHECK(a->nelts == 1);
    CHECK_STR(sse_channels_parse(pool, "a\x01z", a), "invalid channel name 'a\\x01z'");
    CHECK_STR(sse_channels_parse(pool, "caf\xC3\xA9", a),
              "invalid channel name 'caf\\xC3\\xA9'");
    CHECK_STR(sse_channels_parse(pool, "it's", a), "invalid channel name 'it\\x27s'");
    CHECK_STR(sse_channels_parse(pool, "a\\b", a), "invalid channel name 'a\\x5Cb'");
    CHECK_STR(sse_channels_parse(pool, "a#", a), "invalid channel name 'a#'");

    memset(long_list, 'q', sizeof(long_list));
    long_list[SSE_CHANNEL_MAX] = '\0';
    CHECK_ERR(sse_channels_parse(pool, long_list, a), NULL);
    CHECK(a->nelts == 2 && strlen(chan(a, 1)) == SSE_CHANNEL_MAX);
    long_list[SSE_CHANNEL_MAX] = 'q';
    long_list[SSE_CHANNEL_MAX + 1] = '\0';
    err = sse_channels_parse(pool, long_list, a);
    CHECK_ERR(err, "longer than 128 bytes");
    CHECK_ERR(err, "qqq...'");
    CHECK(a->nelts == 2);
}

/* ---- UTF-8 ---- */

/* The reference: decode by the bit patterns alone, then reject what the result
 * says is wrong (overlong, surrogate, too big). Returns 1 if s[0..n) is valid. */
static int ref_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0, k, len;
    uint32_t cp, min;

    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (i + len > n)
            return 0;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static size_t utf8_put(char *w, uint32_t cp)
{
    if (cp < 0x80) { w[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        w[0] = (char)(0xC0 | (cp >> 6));
        w[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        w[0] = (char)(0xE0 | (cp >> 12));
        w[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        w[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    w[0] = (char)(0xF0 | (cp >> 18));
    w[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    w[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    w[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int utf8_exact(const char *s, size_t n)
{
    char *c = dup_exact(s, n);
    int ok = sse_utf8_valid(c, n);

    free(c);
    return ok;
}

#define U8(lit) utf8_exact((lit), sizeof(lit) - 1)

static void test_utf8_cases(void)
{
    CHECK(sse_utf8_valid("", 0));
    CHECK(sse_utf8_valid(NULL, 0));
    CHECK(U8("plain ASCII ~"));
    CHECK(U8("\0"));
    CHECK(U8("caf\xC3\xA9"));                /* U+00E9 */
    CHECK(U8("\xC2\x80"));                   /* U+0080, smallest 2-byte */
    CHECK(U8("\xDF\xBF"));                   /* U+07FF */
    CHECK(U8("\xE0\xA0\x80"));               /* U+0800, smallest 3-byte */
    CHECK(U8("\xE2\x82\xAC"));               /* U+20AC euro */
    CHECK(U8("\xED\x9F\xBF"));               /* U+D7FF, just below surrogates */
    CHECK(U8("\xEE\x80\x80"));               /* U+E000, just above */
    CHECK(U8("\xEF\xBB\xBF"));               /* U+FEFF BOM */
    CHECK(U8("\xEF\xBF\xBF"));               /* U+FFFF */
    CHECK(U8("\xF0\x90\x80\x80"));           /* U+10000 */
    CHECK(U8("\xF0\x9F\x98\x80"));           /* U+1F600 */
    CHECK(U8("\xF4\x8F\xBF\xBF"));           /* U+10FFFF */
    /* overlong */
    CHECK(!U8("\xC0\x80"));
    CHECK(!U8("\xC0\xAF"));
    CHECK(!U8("\xC1\xBF"));
    CHECK(!U8("\xE0\x80\x80"));
    CHECK(!U8("\xE0\x9F\xBF"));
    CHECK(!U8("\xF0\x80\x80\x80"));
    CHECK(!U8("\xF0\x8F\xBF\xBF"));
    /* surrogates */
    CHECK(!U8("\xED\xA0\x80"));
    CHECK(!U8("\xED\xAD\xBF"));
    CHECK(!U8("\xED\xBF\xBF"));
    CHECK(!U8("\xED\xA0\xBD\xED\xB8\x80"));  /* CESU-8 pair */
    /* truncated */
    CHECK(!U8("\xC3"));
    CHECK(!U8("\xE2\x82"));
    CHECK(!U8("\xF0\x9F\x98"));
    CHECK(!U8("ok\xE2"));
    CHECK(!U8("\xE2\x82 x"));
    CHECK(!utf8_exact("\xC3\xA9", 1));
    /* above U+10FFFF, and bytes that never appear */
    CHECK(!U8("\xF4\x90\x80\x80"));
    CHECK(!U8("\xF5\x80\x80\x80"));
    CHECK(!U8("\xF7\xBF\xBF\xBF"));
    CHECK(!U8("\xF8\x88\x80\x80\x80"));
    CHECK(!U8("\xFE"));
    CHECK(!U8("\xFF"));
    /* stray continuation bytes */
    CHECK(!U8("\x80"));
    CHECK(!U8("\xBF"));
    CHECK(!U8("a\xC3\xA9\xA9"));
}

static void test_utf8_exhaustive(void)
{
    unsigned char b[4];
    unsigned long n, bad1 = 0, bad2 = 0, bad3 = 0, bad4 = 0;

    for (n = 0; n < 0x100; n++) {
        b[0] = (unsigned char)n;
        bad1 += sse_utf8_valid((char *)b, 1) != ref_utf8_valid(b, 1);
    }
    for (n = 0; n < 0x10000; n++) {
        b[0] = (unsigned char)(n >> 8);
        b[1] = (unsigned char)n;
        bad2 += sse_utf8_valid((char *)b, 2) != ref_utf8_valid(b, 2);
    }
    for (n = 0; n < 0x1000000; n++) {
        b[0] = (unsigned char)(n >> 16);
        b[1] = (unsigned char)(n >> 8);
        b[2] = (unsigned char)n;
        bad3 += sse_utf8_valid((char *)b, 3) != ref_utf8_valid(b, 3);
    }
    /* 4 bytes: random, but mostly with a 4-byte lead so the interesting part is hit. */
    for (n = 0; n < 2000000; n++) {
        uint64_t r = rng();
        b[0] = (unsigned char)(rnd(4) ? 0xF0 + (r & 7) : r);
        b[1] = (unsigned char)(r >> 8);
        b[2] = (unsigned char)(rnd(2) ? 0x80 | ((r >> 16) & 0x3F) : r >> 16);
        b[3] = (unsigned char)(rnd(2) ? 0x80 | ((r >> 24) & 0x3F) : r >> 24);
        bad4 += sse_utf8_valid((char *)b, 4) != ref_utf8_valid(b, 4);
    }
    CHECK(bad1 == 0);
    CHECK(bad2 == 0);
    CHECK(bad3 == 0);
    CHECK(bad4 == 0);
    /* Every scalar value round-trips through the encoder as valid. */
    {
        uint32_t cp;
        unsigned long bad = 0;
        char buf[4];
        for (cp = 0; cp <= 0x10FFFF; cp++) {
            if (cp >= 0xD800 && cp <= 0xDFFF)
                continue;
            bad += !sse_utf8_valid(buf, utf8_put(buf, cp));
        }
        CHECK(bad == 0);
    }
}

/* ---- sse_event_check ---- */

static sse_event_t ev_make(const char *id, const char *event, const char *retry,
                           const char *data, size_t data_len)
{
    sse_event_t ev;

    ev.id = id;
    ev.event = event;
    ev.retry = retry;
    ev.data = data;
    ev.data_len = data_len;
    return ev;
}

#define EV(id, event, retry, lit) ev_make((id), (event), (retry), (lit), sizeof(lit) - 1)

static const char *check(sse_event_t ev)
{
    return sse_event_check(pool, &ev);
}

static void test_check(void)
{
    CHECK_ERR(check(EV(NULL, NULL, NULL, "")), NULL);
    CHECK_ERR(check(ev_make(NULL, NULL, NULL, NULL, 0)), NULL);
    CHECK_ERR(check(ev_make(NULL, NULL, NULL, NULL, 3)), "data is NULL");
    CHECK_ERR(check(EV("42", "tick", "3000", "a\r\nb\rc\nd")), NULL);
    CHECK_ERR(check(EV("caf\xC3\xA9", "\xE2\x82\xAC", "0", "\xF0\x9F\x98\x80")), NULL);
    CHECK_ERR(check(EV("id with: colon and spaces", " ev ", NULL, "")), NULL);

    CHECK_STR(check(EV("a\rb", NULL, NULL, "")), "id contains CR, LF or NUL");
    CHECK_STR(check(EV("a\nb", NULL, NULL, "")), "id contains CR, LF or NUL");
    CHECK_STR(check(EV("\r", NULL, NULL, "")), "id contains CR, LF or NUL");
    CHECK_STR(check(EV(NULL, "x\ny", NULL, "")), "event name contains CR, LF or NUL");
    CHECK_STR(check(EV(NULL, "x\r", NULL, "")), "event name contains CR, LF or NUL");
    CHECK_STR(check(EV(NULL, "x\r\ndata: evil", NULL, "")),
              "event name contains CR, LF or NUL");
    CHECK_STR(check(EV("", NULL, NULL, "")), "empty id");
    CHECK_STR(check(EV(NULL, "", NULL, "")), "empty event name");
    CHECK_STR(check(EV("a\xC0\xAF", NULL, NULL, "")), "id is not valid UTF-8 (at byte 1)");
    CHECK_STR(check(EV(NULL, "\xED\xA0\x80", NULL, "")),
              "event name is not valid UTF-8 (at byte 0)");

    CHECK_ERR(check(EV(NULL, NULL, "0", "")), NULL);
    CHECK_ERR(check(EV(NULL, NULL, "1234567890", "")), NULL);
    CHECK_ERR(check(EV(NULL, NULL, "0000000000", "")), NULL);
    CHECK_ERR(check(EV(NULL, NULL, "12a", "")), "retry must be 1 to 10 ASCII digits");
    CHECK_ERR(check(EV(NULL, NULL, "", "")), "retry must be");
    CHECK_ERR(check(EV(NULL, NULL, "12345678901", "")), "retry must be");
    CHECK_ERR(check(EV(NULL, NULL, "-1", "")), "retry must be");
    CHECK_ERR(check(EV(NULL, NULL, "+1", "")), "retry must be");
    CHECK_ERR(check(EV(NULL, NULL, " 1", "")), "retry must be");
    CHECK_ERR(check(EV(NULL, NULL, "1 ", "")), "retry must be");
    CHECK_ERR(check(EV(NULL, NULL, "1\n", "")), "retry must be");
    CHECK_ERR(check(EV(NULL, NULL, "\xD9\xA1", "")), "retry must be");  /* Arabic 1 */

    CHECK_STR(check(EV(NULL, NULL, NULL, "a\0b")), "data contains NUL (at byte 1)");
    CHECK_STR(check(EV(NULL, NULL, NULL, "\0")), "data contains NUL (at byte 0)");
    CHECK_STR(check(EV(NULL, NULL, NULL, "ab\xE2\x82")),
              "data is not valid UTF-8 (at byte 2)");
    CHECK_STR(check(EV(NULL, NULL, NULL, "\xFF")), "data is not valid UTF-8 (at byte 0)");
    /* data_len counts, not strlen: the NUL past it is not data. */
    CHECK_ERR(check(ev_make(NULL, NULL, NULL, "ab\0c", 2)), NULL);
}

/* ---- serializing ---- */

static void check_ser(sse_event_t ev, const char *want, size_t want_len,
                      const char *file, int line)
{
    apr_size_t len = 0;
    char *data = ev.data ? dup_exact(ev.data, ev.data_len) : NULL;
    char *got;

    ev.data = data;
    got = sse_event_serialize(pool, &ev, &len);
    free(data);
    unit_check_mem(got, len, want, want_len, "serialize", file, line);
    unit_check(got[len] == '\0', "serialize NUL-terminates", file, line);
}

#define SER(ev, lit) check_ser((ev), (lit), sizeof(lit) - 1, __FILE__, __LINE__)

static void test_serialize(void)
{
    SER(EV(NULL, NULL, NULL, "hello"), "data: hello\n\n");
    SER(EV("1", "e", "5", "x"), "id: 1\nevent: e\nretry: 5\ndata: x\n\n");
    SER(EV("1", NULL, NULL, "x"), "id: 1\ndata: x\n\n");
    SER(EV(NULL, "e", NULL, "x"), "event: e\ndata: x\n\n");
    SER(EV(NULL, NULL, "5", "x"), "retry: 5\ndata: x\n\n");
    /* empty data */
    SER(EV(NULL, NULL, NULL, ""), "data: \n\n");
    SER(ev_make(NULL, NULL, NULL, NULL, 0), "data: \n\n");
    SER(EV("7", NULL, NULL, ""), "id: 7\ndata: \n\n");
    /* each line end, alone */
    SER(EV(NULL, NULL, NULL, "a\nb"), "data: a\ndata: b\n\n");
    SER(EV(NULL, NULL, NULL, "a\rb"), "data: a\ndata: b\n\n");
    SER(EV(NULL, NULL, NULL, "a\r\nb"), "data: a\ndata: b\n\n");
    /* trailing break: a last empty line */
    SER(EV(NULL, NULL, NULL, "a\n"), "data: a\ndata: \n\n");
    SER(EV(NULL, NULL, NULL, "a\r"), "data: a\ndata: \n\n");
    SER(EV(NULL, NULL, NULL, "a\r\n"), "data: a\ndata: \n\n");
    SER(EV(NULL, NULL, NULL, "\n"), "data: \ndata: \n\n");
    SER(EV(NULL, NULL, NULL, "\r\n"), "data: \ndata: \n\n");
    SER(EV(NULL, NULL, NULL, "\n\n"), "data: \ndata: \ndata: \n\n");
    /* leading break */
    SER(EV(NULL, NULL, NULL, "\na"), "data: \ndata: a\n\n");
    /* mixes: LF CR is two breaks, CR LF is one */
    SER(EV(NULL, NULL, NULL, "a\n\rb"), "data: a\ndata: \ndata: b\n\n");
    SER(EV(NULL, NULL, NULL, "a\r\r\nb"), "data: a\ndata: \ndata: b\n\n");
    SER(EV(NULL, NULL, NULL, "a\r\n\rb"), "data: a\ndata: \ndata: b\n\n");
    SER(EV(NULL, NULL, NULL, "a\n\nb"), "data: a\ndata: \ndata: b\n\n");
    SER(EV(NULL, NULL, NULL, "a\r\rb"), "data: a\ndata: \ndata: b\n\n");
    SER(EV(NULL, NULL, NULL, "a\r\n\r\nb"), "data: a\ndata: \ndata: b\n\n");
    SER(EV(NULL, NULL, NULL, "1\n2\r3\r\n4\n\r5"),
        "data: 1\ndata: 2\ndata: 3\ndata: 4\ndata: \ndata: 5\n\n");
    SER(EV(NULL, NULL, NULL, "\r\r\n\n\r"), "data: \ndata: \ndata: \ndata: \ndata: \n\n");
    /* leading spaces, colons and field-like text in data stay data */
    SER(EV(NULL, NULL, NULL, " lead"), "data:  lead\n\n");
    SER(EV(NULL, NULL, NULL, "x\nid: 9\n: c"), "data: x\ndata: id: 9\ndata: : c\n\n");
    SER(EV(NULL, NULL, NULL, "caf\xC3\xA9\n\xF0\x9F\x98\x80"),
        "data: caf\xC3\xA9\ndata: \xF0\x9F\x98\x80\n\n");
    /* only data_len bytes are data */
    SER(ev_make(NULL, NULL, NULL, "abc\ndef", 3), "data: abc\n\n");
    SER(ev_make(NULL, NULL, NULL, "abc\r\ndef", 4), "data: abc\ndata: \n\n");
}

static void test_serialize_large(void)
{
    size_t n = 1 << 20, i;
    char *d = apr_palloc(pool, n);
    apr_size_t len;
    sse_event_t ev;
    char *out;

    for (i = 0; i < n; i++)
        d[i] = (i % 3 == 2) ? '\n' : 'z';
    ev = ev_make("1", NULL, NULL, d, n);
    out = sse_event_serialize(pool, &ev, &len);
    /* n/3 lines "zz" (9 bytes each) after a trailing-less tail, plus id and blank. */
    CHECK(len == 6 + (n / 3) * 9 + (n % 3 ? 7 + n % 3 : 7) + 1);
    CHECK(out[len - 1] == '\n' && out[len - 2] == '\n');
}

/* ---- parse_stream ---- */

static apr_array_header_t *parsed;

/* Parses a copy that is freed at once: the events must not point into the body. */
static const char *parse(const char *body, size_t len)
{
    char *copy = body ? dup_exact(body, len) : NULL;
    const char *err = sse_event_parse_stream(pool, copy, len, &parsed);

    free(copy);
    return err;
}

#define PARSE(lit) parse((lit), sizeof(lit) - 1)

static const sse_event_t *pev(int i)
{
    return &APR_ARRAY_IDX(parsed, i, sse_event_t);
}

static void check_pev(int i, const char *id, const char *event, const char *retry,
                      const char *data, size_t data_len, const char *file, int line)
{
    const sse_event_t *e;

    if (!unit_check(parsed && i < parsed->nelts, "event present", file, line))
        return;
    e = pev(i);
    unit_check_str(e->id, id, "id", file, line);
    unit_check_str(e->event, event, "event", file, line);
    unit_check_str(e->retry, retry, "retry", file, line);
    unit_check_mem(e->data, e->data_len, data, data_len, "data", file, line);
    unit_check(e->data && e->data[e->data_len] == '\0', "data NUL-terminated", file, line);
}

#define PEV(i, id, event, retry, lit) \
    check_pev((i), (id), (event), (retry), (lit), sizeof(lit) - 1, __FILE__, __LINE__)

static void test_parse_basic(void)
{
    CHECK_ERR(PARSE("data: x\n\n"), NULL);
    CHECK(parsed->nelts == 1);
    PEV(0, NULL, NULL, NULL, "x");

    CHECK_ERR(PARSE("id: 1\nevent: e\nretry: 300\ndata: a\ndata: b\n\n"), NULL);
    PEV(0, "1", "e", "300", "a\nb");

    /* comments */
    CHECK_ERR(PARSE(": hello\ndata: x\n: between\ndata: y\n\n:bye\n"), NULL);
    CHECK(parsed->nelts == 1);
    PEV(0, NULL, NULL, NULL, "x\ny");
    CHECK_STR(PARSE(": only a comment\n\n:\n\n"), "no event in body");

    /* BOM: one is dropped, a second is part of the field name */
    CHECK_ERR(PARSE("\xEF\xBB\xBF" "data: x\n\n"), NULL);
    PEV(0, NULL, NULL, NULL, "x");
    CHECK_STR(PARSE("\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\n"),
              "unknown field '\\xEF\\xBB\\xBFdata' (line 1)");
    CHECK_STR(PARSE("\xEF\xBB\xBF"), "no event in body");

    /* missing final blank line, and missing final line end */
    CHECK_ERR(PARSE("data: x\n"), NULL);
    PEV(0, NULL, NULL, NULL, "x");
    CHECK_ERR(PARSE("data: x"), NULL);
    PEV(0, NULL, NULL, NULL, "x");
    CHECK_ERR(PARSE("data: x\ndata: y"), NULL);
    PEV(0, NULL, NULL, NULL, "x\ny");
    CHECK_ERR(PARSE("data: x\n\ndata: y"), NULL);
    CHECK(parsed->nelts == 2);
    PEV(1, NULL, NULL, NULL, "y");

    /* CR-only and CRLF line ends */
    CHECK_ERR(PARSE("event: e\rdata: a\rdata: b\r\rdata: c\r"), NULL);
    CHECK(parsed->nelts == 2);
    PEV(0, NULL, "e", NULL, "a\nb");
    PEV(1, NULL, NULL, NULL, "c");
    CHECK_ERR(PARSE("event: e\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"), NULL);
    CHECK(parsed->nelts == 2);
    PEV(0, NULL, "e", NULL, "a\nb");
    PEV(1, NULL, NULL, NULL, "c");
    CHECK_ERR(PARSE("data: a\r\ndata: b\rdata: c\n\r\n"), NULL);
    CHECK(parsed->nelts == 1);
    PEV(0, NULL, NULL, NULL, "a\nb\nc");
    /* LF CR is two line ends, so a blank line */
    CHECK_ERR(PARSE("data: a\n\rdata: b"), NULL);
    CHECK(parsed->nelts == 2);

    /* field without colon, without space, with two spaces */
    CHECK_ERR(PARSE("data\n\n"), NULL);
    PEV(0, NULL, NULL, NULL, "");
    CHECK_ERR(PARSE("data\ndata\n\n"), NULL);
    PEV(0, NULL, NULL, NULL, "\n");
    CHECK_ERR(PARSE("data:x\n\n"), NULL);
    PEV(0, NULL, NULL, NULL, "x");
    CHECK_ERR(PARSE("data:  x \n\n"), NULL);
    PEV(0, NULL, NULL, NULL, " x ");
    CHECK_ERR(PARSE("data: a:b: c\n\n"), NULL);
    PEV(0, NULL, NULL, NULL, "a:b: c");
    CHECK_ERR(PARSE("data:\tx\n\n"), NULL);
    PEV(0, NULL, NULL, NULL, "\tx");

    /* multiple blocks, extra blank lines, blocks without data */
    CHECK_ERR(PARSE("\n\n\ndata: 1\n\n\n\nid: 2\n\nevent: e\ndata: 3\n\nretry: 10\n"), NULL);
    CHECK(parsed->nelts == 4);
    PEV(0, NULL, NULL, NULL, "1");
    PEV(1, "2", NULL, NULL, "");
    PEV(2, NULL, "e", NULL, "3");
    PEV(3, NULL, NULL, "10", "");
    /* fields do not leak from one block into the next */
    CHECK_ERR(PARSE("id: 1\nevent: e\nretry: 5\ndata: a\n\ndata: b\n\n"), NULL);
    PEV(1, NULL, NULL, NULL, "b");
    /* the last duplicate wins */
    CHECK_ERR(PARSE("id: 1\nid: 2\nevent: a\nevent: b\ndata: x\n\n"), NULL);
    PEV(0, "2", "b", NULL, "x");
    /* UTF-8 everywhere */
    CHECK_ERR(PARSE("id: \xC3\xA9\nevent: \xE2\x82\xAC\ndata: \xF0\x9F\x98\x80\n\n"), NULL);
    PEV(0, "\xC3\xA9", "\xE2\x82\xAC", NULL, "\xF0\x9F\x98\x80");
}

static void test_parse_errors(void)
{
    CHECK_STR(PARSE(""), "no event in body");
    CHECK_STR(parse(NULL, 0), "no event in body");
    CHECK(parsed != NULL && parsed->nelts == 0);
    CHECK_STR(PARSE("\n\r\n\r"), "no event in body");

    CHECK_STR(PARSE("data: x\n\nfoo: bar\n\n"), "unknown field 'foo' (line 3)");
    CHECK_STR(PARSE("Data: x\n"), "unknown field 'Data' (line 1)");
    CHECK_STR(PARSE("data : x\n"), "unknown field 'data ' (line 1)");
    CHECK_STR(PARSE(" data: x\n"), "unknown field ' data' (line 1)");
    CHECK_STR(PARSE("x\0y: 1\n"), "unknown field 'x\\x00y' (line 1)");
    CHECK_STR(PARSE("\r\r\rbogus\r"), "unknown field 'bogus' (line 4)");

    CHECK_STR(PARSE("retry: abc\ndata: x\n\n"),
              "retry must be 1 to 10 ASCII digits (event 1 at line 1)");
    CHECK_ERR(PARSE("data: ok\n\nretry:\n\n"), "retry must be 1 to 10 ASCII digits (event 2");
    CHECK_ERR(PARSE("retry: 12345678901\n"), "retry must be");
    CHECK_ERR(PARSE("retry:  5\n"), "retry must be");
    CHECK_ERR(PARSE("retry: 5\n"), NULL);

    CHECK_STR(PARSE("data: ok\n\ndata: x\nid:\n\n"), "empty id (event 2 at line 3)");
    CHECK_STR(PARSE("event\n"), "empty event name (event 1 at line 1)");
    CHECK_STR(PARSE("id: a\0b\ndata: x\n"), "id contains CR, LF or NUL (line 1)");
    CHECK_STR(PARSE("event: a\0\n"), "event name contains CR, LF or NUL (line 1)");
    CHECK_STR(PARSE("retry: 1\0\n"), "retry contains CR, LF or NUL (line 1)");
    CHECK_STR(PARSE("data: a\ndata: b\0c\n"),
              "data contains NUL (at byte 3) (event 1 at line 1)");
    /* a NUL in a comment is harmless */
    CHECK_ERR(PARSE(":\0\ndata: x\n"), NULL);

    CHECK_STR(PARSE("data: caf\xE9\n\n"), "body is not valid UTF-8 (at byte 9)");
    CHECK_STR(PARSE(": \xC0\x80\ndata: x\n"), "body is not valid UTF-8 (at byte 2)");
    CHECK_STR(PARSE("\xEF\xBB"), "body is not valid UTF-8 (at byte 0)");
    /* a multibyte char may not straddle a line end: CR LF inside it makes it invalid */
    CHECK_ERR(PARSE("data: \xE2\x82\n\xAC\n"), "body is not valid UTF-8");
}

/* ---- round trip ---- */

/* Appends random text to w: ASCII (with spaces and colons), 2-, 3- and 4-byte UTF-8,
 * and, if breaks, CR, LF and CRLF. Returns the bytes written (at most 4 * pieces). */
static size_t gen_text(char *w, unsigned pieces, int breaks)
{
    static const char ascii[] = "abcXYZ019 :;-_.,!?\"'\\{}<>#\t";
    size_t n = 0;
    unsigned i;

    for (i = 0; i < pieces; i++) {
        unsigned kind = rnd(breaks ? 10 : 7);
        uint32_t cp;
        if (kind < 3)
            w[n++] = ascii[rnd(sizeof(ascii) - 1)];
        else if (kind == 3)
            n += utf8_put(w + n, 0x80 + rnd(0x800 - 0x80));
        else if (kind == 4) {
            do
                cp = 0x800 + rnd(0x10000 - 0x800);
            while (cp >= 0xD800 && cp <= 0xDFFF);
            n += utf8_put(w + n, cp);
        }
        else if (kind == 5)
            n += utf8_put(w + n, 0x10000 + rnd(0x110000 - 0x10000));
        else if (kind == 6)
            w[n++] = (char)(0x20 + rnd(0x5F));
        else if (kind == 7)
            w[n++] = '\n';
        else if (kind == 8)
            w[n++] = '\r';
        else {
            w[n++] = '\r';
            w[n++] = '\n';
        }
    }
    return n;
}

static const char *gen_name(void)
{
    char buf[4 * 24 + 1];
    size_t n = gen_text(buf, 1 + rnd(24), 0);

    return apr_pstrmemdup(pool, buf, n);
}

static const char *gen_retry(void)
{
    char buf[11];
    unsigned n = 1 + rnd(10), i;

    for (i = 0; i < n; i++)
        buf[i] = (char)('0' + rnd(10));
    return apr_pstrmemdup(pool, buf, n);
}

static sse_event_t gen_event(void)
{
    unsigned pieces = rnd(8) ? rnd(40) : rnd(400);
    char *d = apr_palloc(pool, 4 * (size_t)pieces + 1);
    size_t n = gen_text(d, pieces, 1);

    d[n] = '\0';
    return ev_make(rnd(2) ? gen_name() : NULL, rnd(2) ? gen_name() : NULL,
                   rnd(4) ? NULL : gen_retry(), d, n);
}

/* data with CRLF, CR and LF each made "\n" */
static char *normalize(const char *d, size_t len, size_t *out_len)
{
    char *buf = apr_palloc(pool, len + 1);
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        if (d[i] == '\r') {
            buf[n++] = '\n';
            if (i + 1 < len && d[i + 1] == '\n')
                i++;
        }
        else
            buf[n++] = d[i];
    }
    buf[n] = '\0';
    *out_len = n;
    return buf;
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_event(const sse_event_t *got, const sse_event_t *want)
{
    size_t nlen;
    char *norm = normalize(want->data, want->data_len, &nlen);

    return str_eq(got->id, want->id) && str_eq(got->event, want->event)
        && str_eq(got->retry, want->retry) && got->data_len == nlen
        && memcmp(got->data, norm, nlen) == 0;
}

static void test_round_trip(void)
{
    int i, j, bad_check = 0, bad_one = 0, bad_many = 0, rounds = 3000;

    for (i = 0; i < rounds; i++) {
        sse_event_t ev = gen_event();
        apr_size_t len;
        char *wire;

        if (sse_event_check(pool, &ev)) {
            bad_check++;
            continue;
        }
        wire = sse_event_serialize(pool, &ev, &len);
        if (parse(wire, len) || parsed->nelts != 1 || !same_event(pev(0), &ev)) {
            if (bad_one++ == 0)
                unit_dump("first failing wire", wire, len);
        }
    }
    CHECK(bad_check == 0);
    CHECK(bad_one == 0);

    /* Many events back to back in one body come back in order. */
    for (i = 0; i < 100; i++) {
        sse_event_t evs[20];
        int count = 1 + (int)rnd(20);
        char *body = "";
        apr_size_t blen = 0, len;

        for (j = 0; j < count; j++) {
            char *wire;
            evs[j] = gen_event();
            wire = sse_event_serialize(pool, &evs[j], &len);
            body = apr_pstrcat(pool, body, wire, NULL);
            blen += len;
        }
        if (parse(body, blen) || parsed->nelts != count) {
            bad_many++;
            continue;
        }
        for (j = 0; j < count; j++)
            bad_many += !same_event(pev(j), &evs[j]);
    }
    CHECK(bad_many == 0);
}

/* A random body, line by line: mostly well-formed fields, comments and blank lines
 * with every kind of line end, sprinkled with what a publisher must not send (unknown
 * fields, NUL, bad UTF-8, a second BOM, empty id). Returns its length. */
static size_t gen_body(char *w)
{
    static const char *const name[] = { "data", "data", "data", "id", "event", "retry",
                                        "", ":", "foo", "Data", "\xEF\xBB\xBF" };
    static const char *const val[] = { "x", "12", " ", ":", "\xC3\xA9", "\xE2\x82\xAC",
                                       "\xF0\x9F\x98\x80", "\0", "\xFF", "\xC3" };
    static const char *const eol[] = { "\n", "\r", "\r\n", "" };
    int lines = (int)rnd(12), i, j;
    size_t n = 0;

    if (rnd(8) == 0) {
        memcpy(w, "\xEF\xBB\xBF", 3);
        n = 3;
    }
    for (i = 0; i < lines; i++) {
        const char *nm = name[rnd(rnd(4) ? 6 : 11)];
        int nval = (int)rnd(5);
        memcpy(w + n, nm, strlen(nm));
        n += strlen(nm);
        if (rnd(6))
            w[n++] = ':';
        if (rnd(2))
            w[n++] = ' ';
        for (j = 0; j < nval; j++) {
            /* val[7..9] are the bad ones: only sometimes */
            unsigned v = rnd(rnd(10) ? 7 : 10);
            size_t vl = v == 7 ? 1 : strlen(val[v]);
            memcpy(w + n, val[v], vl);
            n += vl;
        }
        for (j = rnd(3) ? 1 : 2; j > 0; j--) {
            const char *e = eol[rnd(i == lines - 1 ? 4 : 3)];
            memcpy(w + n, e, strlen(e));
            n += strlen(e);
        }
    }
    return n;
}

/* Whatever the parser accepts must be valid and must come back unchanged from
 * serialize-then-parse. Under ASan/UBSan this doubles as a small fuzz run. */
static void test_parse_fuzz(void)
{
    int i, j, accepted = 0, rejected = 0, bad = 0;
    char buf[2048];

    for (i = 0; i < 30000; i++) {
        apr_pool_t *sub;
        apr_array_header_t *first, *again;
        size_t n = gen_body(buf);
        apr_size_t blen = 0, len;
        char *body, *again_body = "";
        const char *err;

        apr_pool_create(&sub, pool);
        body = dup_exact(buf, n);
        err = sse_event_parse_stream(sub, body, n, &first);
        free(body);
        if (err != NULL) {
            rejected++;
            apr_pool_destroy(sub);
            continue;
        }
        accepted++;
        for (j = 0; j < first->nelts; j++) {
            const sse_event_t *e = &APR_ARRAY_IDX(first, j, sse_event_t);
            char *wire;
            bad += sse_event_check(sub, e) != NULL;
            wire = sse_event_serialize(sub, e, &len);
            again_body = apr_pstrcat(sub, again_body, wire, NULL);
            blen += len;
        }
        if (sse_event_parse_stream(sub, again_body, blen, &again) != NULL
            || again->nelts != first->nelts)
            bad++;
        else
            for (j = 0; j < first->nelts; j++)
                bad += !same_event(&APR_ARRAY_IDX(again, j, sse_event_t),
                                   &APR_ARRAY_IDX(first, j, sse_event_t));
        apr_pool_destroy(sub);
    }
    CHECK(bad == 0);
    /* the generator reaches both outcomes often */
    CHECK(accepted > 1000);
    CHECK(rejected > 1000);
    printf("fuzz: %d bodies accepted, %d rejected\n", accepted, rejected);
}

/* ---- JSON ---- */

static void test_json(void)
{
    CHECK_STR(sse_json_str(pool, ""), "\"\"");
    CHECK_STR(sse_json_str(pool, "plain"), "\"plain\"");
    CHECK_STR(sse_json_str(pool, "a\"b\\c"), "\"a\\\"b\\\\c\"");
    CHECK_STR(sse_json_str(pool, "\n\r\t"), "\"\\n\\r\\t\"");
    CHECK_STR(sse_json_str(pool, "\x01\x08\x0c\x1f x"), "\"\\u0001\\u0008\\u000c\\u001f x\"");
    CHECK_STR(sse_json_str(pool, "caf\xC3\xA9 /<>\x7f"), "\"caf\xC3\xA9 /<>\x7f\"");
    CHECK_STR(sse_json_str(pool, "invalid channel name 'a\\x01'"),
              "\"invalid channel name 'a\\\\x01'\"");
    CHECK_STR(sse_json_str(pool, NULL), "null");
}

int main(void)
{
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);

    test_channel_valid();
    test_keys();
    test_channels_parse();
    test_utf8_cases();
    test_utf8_exhaustive();
    test_check();
    test_serialize();
    test_serialize_large();
    test_parse_basic();
    test_parse_errors();
    test_round_trip();
    test_parse_fuzz();
    test_json();

    rc = unit_report();
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
