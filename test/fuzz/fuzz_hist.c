/* fuzz_hist.c: libFuzzer target for the relay's event history (sse_hist.c), which turns
 * a client's Last-Event-ID into a resume point and replays what the client missed.
 *
 * The input is a program: each op byte (and the bytes after it) adds an event, looks an
 * id up, or replays or checks a set of channels, against a plain model kept here (every
 * event ever added, whether it is still held). Checked after every op, from sse_hist.h:
 * - add keeps the event, then trims its channel to max_count events no older than
 *   max_age; held events and bytes (sse_hist_stats) match the model;
 * - lookup of an id held gives the seq of the newest held event with that id; of any
 *   other id, its value when it is a decimal number, else "unknown";
 * - replay gives exactly the held events of the channels with a later seq, in seq
 *   order; "lost" is set whenever some event of those channels after that seq is not
 *   held (never missed; it may be set conservatively), and is clear when nothing was
 *   ever dropped and the resume point is inside the history.
 * Seqs only grow and time never goes back, as in the relay.
 */
#include "fuzz_common.h"

#include <inttypes.h>

#include <apr_strings.h>

#include "sse_hist.h"

#define MAX_EVENTS 512
#define NCHANS 4

static const char *const chans[NCHANS] = { "a", "b", "news/1", "c" };

typedef struct {
    uint64_t seq;
    int chan;
    apr_time_t t;
    char id[24];
    char bytes[32];
    size_t len;
    int held;
} mev_t;

static mev_t ev[MAX_EVENTS];
static int nev;
static int dropped_any;     /* some event was dropped or never kept */

static void fail(const char *what)
{
    fprintf(stderr, "history: %s (after %d adds)\n", what, nev);
    abort();
}

/* The model's trim of one channel, as sse_hist.h states it. */
static void model_trim(int chan, apr_time_t now, unsigned max_count,
                       apr_interval_time_t max_age)
{
    unsigned n = 0;
    int i;

    for (i = 0; i < nev; i++)
        if (ev[i].held && ev[i].chan == chan)
            n++;
    for (i = 0; i < nev; i++) {
        if (!ev[i].held || ev[i].chan != chan)
            continue;
        if (n > max_count || (max_age > 0 && now - ev[i].t > max_age)) {
            ev[i].held = 0;
            dropped_any = 1;
            n--;
        }
        else {
            break;          /* held events are in seq and time order: the rest stay */
        }
    }
}

static void check_stats(const sse_hist_t *h)
{
    size_t events, bytes, me = 0, mb = 0;
    int i;

    sse_hist_stats(h, &events, &bytes);
    for (i = 0; i < nev; i++)
        if (ev[i].held) {
            me++;
            mb += ev[i].len;
        }
    if (events != me || bytes != mb)
        fail(apr_psprintf(fz_pool(), "stats say %zu events %zu bytes, model %zu %zu",
                          events, bytes, me, mb));
}

/* The id to look up: one of the events' ids, a number, or bytes of the input. */
static const char *pick_id(apr_pool_t *p, const uint8_t **data, size_t *size)
{
    uint8_t b = fz_take(data, size);
    size_t n, i;
    char *s;

    switch (b % 4) {
    case 0:
        return nev ? ev[fz_take(data, size) % nev].id : "1";
    case 1:
        return apr_psprintf(p, "%u", (unsigned)fz_take(data, size));
    case 2:
        return (b & 4) ? "18446744073709551609" : "18446744073709551616";
    default:
        n = (size_t)(b >> 2) % 12;
        s = apr_palloc(p, n + 1);
        for (i = 0; i < n; i++) {
            s[i] = (char)fz_take(data, size);
            if (!s[i])
                s[i] = '0';
        }
        s[n] = '\0';
        return s;
    }
}

/* What a Last-Event-ID that is not held stands for: its decimal value, if it has
 * one below 18446744073709551610 (sse_hist.c refuses the last few uint64 values). */
static int ref_decimal(const char *id, uint64_t *v)
{
    const char *p;

    *v = 0;
    for (p = id; *p >= '0' && *p <= '9'; p++) {
        if (*v > (UINT64_MAX - 9) / 10)
            return 0;
        *v = *v * 10 + (uint64_t)(*p - '0');
    }
    return p != id && !*p;
}

static void op_lookup(apr_pool_t *p, sse_hist_t *h, const uint8_t **data, size_t *size)
{
    const char *id = pick_id(p, data, size);
    uint8_t mask = fz_take(data, size);
    const char *names[NCHANS];
    int in[NCHANS] = { 0 };
    uint64_t seq = 0, want = 0, num = 0;
    int found = 0, is_num, rc, i, n = 0;

    for (i = 0; i < NCHANS; i++)
        if (mask & (1u << i)) {
            names[n++] = chans[i];
            in[i] = 1;
        }
    /* the model: ids are per channel; the newest held one on the stream's
     * channels wins, else a decimal id is a server seq */
    for (i = 0; i < nev; i++) {
        if (strcmp(ev[i].id, id) || !ev[i].held || !in[ev[i].chan])
            continue;
        if (!found || ev[i].seq > want)
            want = ev[i].seq;
        found = 1;
    }
    is_num = ref_decimal(id, &num);
    if (!found) {
        found = is_num;
        want = num;
    }
    rc = sse_hist_lookup(h, id, names, n, &seq);
    if (rc != found || (rc && seq != want)) {
        fz_dump("id", id, strlen(id));
        fail(apr_psprintf(p, "lookup gives %d/%" PRIu64 ", model %d/%" PRIu64,
                          rc, seq, found, want));
    }
}

static void op_replay(apr_pool_t *p, sse_hist_t *h, uint64_t first_seq, uint64_t next_seq,
                      const uint8_t **data, size_t *size)
{
    uint8_t mask = fz_take(data, size), how = fz_take(data, size);
    const char *names[NCHANS + 1];
    int in[NCHANS + 1] = { 0 };
    int n = 0, i, lost = -1, want_lost = 0, rc;
    uint64_t after;
    sse_buf_t out = { 0 };
    char *want;
    size_t wlen = 0;

    for (i = 0; i < NCHANS; i++)
        if (mask & (1u << i)) {
            names[n++] = chans[i];
            in[i] = 1;
        }
    if (mask & 0x10)
        names[n++] = "never-used";
    switch (how % 4) {
    case 0: after = 0; break;
    case 1: after = next_seq > 0 ? next_seq - 1 : 0; break;
    case 2: after = nev ? ev[fz_take(data, size) % nev].seq : 0; break;
    default: after = first_seq + fz_take(data, size) % 64; break;
    }

    /* the model: held events in seq order; lost if one after `after` is not held,
     * or the resume point is before the history began */
    want = apr_palloc(p, (size_t)nev * sizeof(ev[0].bytes) + 1);
    for (i = 0; i < nev; i++) {
        if (!in[ev[i].chan] || ev[i].seq <= after)
            continue;
        if (ev[i].held) {
            memcpy(want + wlen, ev[i].bytes, ev[i].len);
            wlen += ev[i].len;
        }
        else {
            want_lost = 1;
        }
    }
    if (n && first_seq > 0 && after < first_seq - 1)
        want_lost = 1;

    if (how & 0x80) {
        rc = sse_hist_lost(h, names, n, after);
        if (want_lost && !rc)
            fail("sse_hist_lost misses a lost event");
        if (rc && !dropped_any && !(first_seq > 0 && after < first_seq - 1))
            fail("sse_hist_lost reports a loss though nothing was dropped");
        return;
    }
    rc = sse_hist_replay(h, names, n, after, &out, &lost);
    FZ_ASSERT(rc == 0);
    if (out.len != wlen || (wlen && memcmp(out.data, want, wlen))) {
        fz_dump("replayed", out.data, out.len);
        fz_dump("model", want, wlen);
        fail(apr_psprintf(p, "replay after %" PRIu64 " is wrong", after));
    }
    if (want_lost && !lost)
        fail("replay misses a lost event");
    if (lost && !dropped_any && !(first_seq > 0 && after < first_seq - 1))
        fail("replay reports a loss though nothing was dropped");
    sse_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    uint8_t b0 = fz_take(&data, &size);
    /* the relay starts its sequence from the clock: large numbers too */
    uint64_t first_seq = (b0 & 0x80) ? UINT64_C(1795617508084) + b0 : b0 & 7;
    uint64_t next_seq = first_seq ? first_seq : 1;
    apr_time_t now = apr_time_from_sec(1000);
    sse_hist_t *h = sse_hist_create(first_seq);

    FZ_ASSERT(h != NULL);
    nev = 0;
    dropped_any = 0;
    while (size) {
        uint8_t op = fz_take(&data, &size);
        if (op % 3 == 0 && nev < MAX_EVENTS) {
            uint8_t a = fz_take(&data, &size), c = fz_take(&data, &size);
            mev_t *e = &ev[nev];
            unsigned max_count = c % 13;    /* past 8, so the ring grows */
            apr_interval_time_t max_age = apr_time_from_sec((c >> 4) % 4);
            now += apr_time_from_sec(a >> 6);
            e->seq = next_seq++;
            e->chan = a % NCHANS;
            e->t = now;
            switch ((a >> 2) % 4) {
            case 0:  snprintf(e->id, sizeof(e->id), "%" PRIu64, e->seq); break;
            case 1:  snprintf(e->id, sizeof(e->id), "x"); break;
            case 2:  snprintf(e->id, sizeof(e->id), "%u", (unsigned)(c % 7)); break;
            default: snprintf(e->id, sizeof(e->id), "p%u", (unsigned)(a >> 4)); break;
            }
            e->len = (size_t)snprintf(e->bytes, sizeof(e->bytes), "[%" PRIu64 "%.*s]",
                                      e->seq, (int)(c % 7), "......");
            e->held = max_count > 0;
            if (!max_count)
                dropped_any = 1;
            nev++;
            FZ_ASSERT(sse_hist_add(h, chans[e->chan], e->seq, e->id, e->bytes, e->len,
                                   now, max_count, max_age) == 0);
            model_trim(e->chan, now, max_count, max_age);
            check_stats(h);
        }
        else if (op % 3 == 1) {
            op_lookup(p, h, &data, &size);
        }
        else {
            op_replay(p, h, first_seq, next_seq, &data, &size);
        }
    }
    sse_hist_destroy(h);
    fz_done();
    return 0;
}
