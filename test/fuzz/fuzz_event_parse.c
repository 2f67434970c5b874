/* fuzz_event_parse.c: libFuzzer target for sse_event_parse_stream, the parser of a
 * publisher's text/event-stream body (POST with that Content-Type).
 *
 * The input is the body. Besides ASan/UBSan, every run checks: an accepted body gives
 * at least one event and each passes the sse_event.h contract (data NUL-terminated
 * with data_len bytes and no CR, id/event without CR/LF, retry digits, check passes);
 * a refused body gives a one-line printable reason; and the WHATWG line rules hold:
 * one leading BOM, LF, CRLF and CR all give the same events.
 */
#include "fuzz_common.h"
#include "fuzz_event.h"

/* The body with every LF written as sep (1 or 2 bytes), in an exact-size malloc. */
static char *relined(const uint8_t *data, size_t n, const char *sep, size_t *out_len)
{
    size_t seplen = strlen(sep), i, w = 0;
    char *s = malloc(n * seplen + 1);

    if (!s)
        abort();
    for (i = 0; i < n; i++) {
        if (data[i] == '\n') {
            memcpy(s + w, sep, seplen);
            w += seplen;
        }
        else {
            s[w++] = (char)data[i];
        }
    }
    *out_len = w;
    return s;
}

/* Parses body[0..len) and asserts it is accepted or refused as want says, with the
 * same events as want_evs. */
static void same_as(apr_pool_t *p, const char *body, size_t len, const char *want_err,
                    const apr_array_header_t *want_evs, const char *what)
{
    apr_array_header_t *evs;
    const char *err = sse_event_parse_stream(p, body, len, &evs);

    if ((err == NULL) != (want_err == NULL) || (!err && !fz_events_eq(evs, want_evs))) {
        fprintf(stderr, "%s changed the outcome: %s vs %s\n", what,
                want_err ? want_err : "accepted", err ? err : "accepted");
        fz_dump("body", body, len);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    apr_array_header_t *evs = NULL;
    const char *err;
    char *alt;
    size_t alt_len;
    int i;

    /* libFuzzer's buffer is an exact-size malloc: a read past the body is caught. */
    err = sse_event_parse_stream(p, (const char *)data, size, &evs);
    FZ_ASSERT(evs != NULL);
    if (err) {
        if (!fz_reason_ok(err)) {
            fz_dump("reason", err, strlen(err));
            abort();
        }
    }
    else {
        FZ_ASSERT(evs->nelts > 0);
        for (i = 0; i < evs->nelts; i++)
            fz_event_sane(p, &APR_ARRAY_IDX(evs, i, sse_event_t));
    }

    /* One leading BOM is dropped: adding one changes nothing (unless there is one). */
    if (!(size >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))) {
        alt = malloc(size + 3);
        if (!alt)
            abort();
        memcpy(alt, "\xEF\xBB\xBF", 3);
        if (size)
            memcpy(alt + 3, data, size);
        same_as(p, alt, size + 3, err, evs, "a leading BOM");
        free(alt);
    }

    /* LF, CRLF and CR end lines alike. Only for bodies without CR: with one, turning
     * "\r" "\n" into "\r" "\r\n" would add a line. */
    if (size && !memchr(data, '\r', size)) {
        alt = relined(data, size, "\r\n", &alt_len);
        same_as(p, alt, alt_len, err, evs, "CRLF for LF");
        free(alt);
        alt = relined(data, size, "\r", &alt_len);
        same_as(p, alt, alt_len, err, evs, "CR for LF");
        free(alt);
    }

    fz_done();
    return 0;
}
