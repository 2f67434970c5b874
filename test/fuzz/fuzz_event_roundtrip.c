/* fuzz_event_roundtrip.c: libFuzzer target for the round trip event -> bytes -> event.
 *
 * What a subscriber's browser sees must be exactly what the publisher sent. For every
 * event that sse_event_check lets through, sse_event_serialize's bytes must (1) hold no
 * CR and no NUL and end with a blank line, (2) parse back with sse_event_parse_stream to
 * the same event with data line ends made LF, (3) serialize again to the same bytes, and
 * (4) make a WHATWG-conformant parser (fuzz_ref.c) dispatch that one event with the
 * same type, data, last event ID and retry. Events come from two places, chosen by bit 0
 * of the first input byte:
 *   0: the rest is a text/event-stream body; every event it yields is checked, and so
 *      is the concatenation of them all (a browser sees them one after the other);
 *   1: the event is built from the rest split at 0xFF bytes (never in valid UTF-8) into
 *      id, event, retry and data; bits 1..3 say which of id, event, retry are set, bit 4
 *      passes empty data as NULL. sse_event_check must then agree with an independent
 *      statement of its rules before the round trip is tried.
 */
#include "fuzz_common.h"
#include "fuzz_event.h"
#include "fuzz_ref.h"

#include <apr_strings.h>

/* d[0..len) with CRLF and CR turned into LF, in p. */
static char *lf_only(apr_pool_t *p, const char *d, apr_size_t len, apr_size_t *out_len)
{
    char *s = apr_palloc(p, len + 1);
    apr_size_t i, w = 0;

    for (i = 0; i < len; i++) {
        if (d[i] == '\r') {
            s[w++] = '\n';
            if (i + 1 < len && d[i + 1] == '\n')
                i++;
        }
        else {
            s[w++] = d[i];
        }
    }
    s[w] = '\0';
    *out_len = w;
    return s;
}

static void fail(const char *why, const sse_event_t *ev, const char *bytes, apr_size_t len)
{
    fprintf(stderr, "round trip: %s\n", why);
    fz_event_dump("event", ev);
    fz_dump("serialized", bytes, len);
    abort();
}

/* Asserts the round trip of ev (which passed sse_event_check); returns its bytes. */
static const char *round_trip(apr_pool_t *p, const sse_event_t *ev, apr_size_t *blen)
{
    sse_event_t want = *ev;
    apr_array_header_t *evs, *ref;
    const ref_event_t *r;
    const char *err, *again;
    apr_size_t len, len2;
    char *bytes, *exact;

    want.data = lf_only(p, ev->data ? ev->data : "", ev->data ? ev->data_len : 0,
                        &want.data_len);
    bytes = sse_event_serialize(p, ev, &len);
    if (bytes[len] != '\0' || strlen(bytes) != len)
        fail("NUL inside, or no NUL after, the bytes", ev, bytes, len);
    if (memchr(bytes, '\r', len))
        fail("CR in the bytes", ev, bytes, len);
    if (len < 2 || memcmp(bytes + len - 2, "\n\n", 2))
        fail("the bytes do not end with a blank line", ev, bytes, len);

    /* Parse an exact-size copy, so ASan sees a read past the end. */
    exact = malloc(len);
    if (!exact)
        abort();
    memcpy(exact, bytes, len);
    err = sse_event_parse_stream(p, exact, len, &evs);
    if (err)
        fail(apr_psprintf(p, "the bytes do not parse: %s", err), ev, bytes, len);
    if (evs->nelts != 1)
        fail(apr_psprintf(p, "%d events parsed back", evs->nelts), ev, bytes, len);
    if (!fz_event_eq(&APR_ARRAY_IDX(evs, 0, sse_event_t), &want)) {
        fz_event_dump("parsed back", &APR_ARRAY_IDX(evs, 0, sse_event_t));
        fail("parsed back to another event", ev, bytes, len);
    }
    again = sse_event_serialize(p, &APR_ARRAY_IDX(evs, 0, sse_event_t), &len2);
    if (len2 != len || memcmp(again, bytes, len))
        fail("serializing the parsed event gives other bytes", ev, bytes, len);

    ref = ref_whatwg_parse(p, exact, len);
    free(exact);
    if (ref->nelts != 1)
        fail(apr_psprintf(p, "a browser dispatches %d events", ref->nelts), ev, bytes, len);
    r = &APR_ARRAY_IDX(ref, 0, ref_event_t);
    if (strcmp(r->type, ev->event ? ev->event : "message"))
        fail("a browser sees another event type", ev, bytes, len);
    if (r->data_len != want.data_len || memcmp(r->data, want.data, want.data_len))
        fail("a browser sees other data", ev, bytes, len);
    if (strcmp(r->last_id, ev->id ? ev->id : ""))
        fail("a browser sees another last event ID", ev, bytes, len);
    if (!fz_str_eq(r->retry, ev->retry))
        fail("a browser sees another retry", ev, bytes, len);
    *blen = len;
    return bytes;
}

/* Mode 0: every event of an accepted body, then all of them as one stream. */
static void from_body(apr_pool_t *p, const uint8_t *data, size_t size)
{
    apr_array_header_t *evs, *again, *ref;
    const char *last_id = "";
    const char *all, *err;
    apr_size_t all_len = 0, n;
    int i;

    if (sse_event_parse_stream(p, (const char *)data, size, &evs) != NULL)
        return;
    all = "";
    for (i = 0; i < evs->nelts; i++) {
        const char *b = round_trip(p, &APR_ARRAY_IDX(evs, i, sse_event_t), &n);
        all = apr_pstrcat(p, all, b, NULL);
        all_len += n;
    }
    err = sse_event_parse_stream(p, all, all_len, &again);
    if (err || !fz_events_eq(evs, again)) {
        fprintf(stderr, "the concatenated events parse back differently: %s\n",
                err ? err : "other events");
        fz_dump("stream", all, all_len);
        abort();
    }
    ref = ref_whatwg_parse(p, all, all_len);
    FZ_ASSERT(ref->nelts == evs->nelts);
    for (i = 0; i < evs->nelts; i++) {
        const sse_event_t *ev = &APR_ARRAY_IDX(evs, i, sse_event_t);
        const ref_event_t *r = &APR_ARRAY_IDX(ref, i, ref_event_t);
        if (ev->id)
            last_id = ev->id;
        FZ_ASSERT(!strcmp(r->type, ev->event ? ev->event : "message"));
        FZ_ASSERT(r->data_len == ev->data_len && !memcmp(r->data, ev->data, ev->data_len));
        FZ_ASSERT(!strcmp(r->last_id, last_id));
        FZ_ASSERT(fz_str_eq(r->retry, ev->retry));
    }
}

/* sse_event_check's rules for id and event, restated. */
static int name_ok(const char *v)
{
    return !v || (*v && !strpbrk(v, "\r\n") && ref_utf8_valid(v, strlen(v)));
}

/* Mode 1: an event built from the bytes. */
static void from_fields(apr_pool_t *p, uint8_t flags, const uint8_t *data, size_t size)
{
    const char *piece[4] = { "", "", "", "" };
    size_t plen[4] = { 0, 0, 0, 0 };
    sse_event_t ev;
    const char *err;
    char *dcopy;
    int k = 0, want_ok;
    apr_size_t n;

    /* up to three 0xFF bytes cut id | event | retry | data */
    piece[0] = (const char *)data;
    plen[0] = size;
    while (k < 3 && plen[k]) {
        const char *cut = memchr(piece[k], 0xFF, plen[k]);
        if (!cut)
            break;
        piece[k + 1] = cut + 1;
        plen[k + 1] = plen[k] - (size_t)(cut + 1 - piece[k]);
        plen[k] = (size_t)(cut - piece[k]);
        k++;
    }
    memset(&ev, 0, sizeof(ev));
    /* id, event and retry are C strings: they end at a NUL, as the module's do */
    ev.id = (flags & 2) ? apr_pstrmemdup(p, piece[0], plen[0]) : NULL;
    ev.event = (flags & 4) ? apr_pstrmemdup(p, piece[1], plen[1]) : NULL;
    ev.retry = (flags & 8) ? apr_pstrmemdup(p, piece[2], plen[2]) : NULL;
    dcopy = malloc(plen[3] ? plen[3] : 1);
    if (!dcopy)
        abort();
    if (plen[3])
        memcpy(dcopy, piece[3], plen[3]);
    ev.data = (flags & 16) && !plen[3] ? NULL : dcopy;
    ev.data_len = plen[3];

    want_ok = name_ok(ev.id) && name_ok(ev.event)
        && (!ev.retry || (*ev.retry && strlen(ev.retry) <= 10
                          && strspn(ev.retry, "0123456789") == strlen(ev.retry)))
        && !memchr(dcopy, '\0', plen[3]) && ref_utf8_valid(dcopy, plen[3]);
    err = sse_event_check(p, &ev);
    if ((err == NULL) != want_ok) {
        fprintf(stderr, "sse_event_check says %s, its rules say %s\n",
                err ? err : "ok", want_ok ? "ok" : "refuse");
        fz_event_dump("event", &ev);
        abort();
    }
    if (err)
        FZ_ASSERT(fz_reason_ok(err));
    else
        round_trip(p, &ev, &n);
    free(dcopy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    uint8_t mode = fz_take(&data, &size);

    if (mode & 1)
        from_fields(p, mode, data, size);
    else
        from_body(p, data, size);
    fz_done();
    return 0;
}
