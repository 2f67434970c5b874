/* fuzz_frame.c: libFuzzer target for the relay frame codec (sse_proto.c), fed the way
 * the relay and each broker feed it: bytes arrive in recv-sized chunks, are appended
 * with sse_buf_put, every whole frame is peeked and decoded, then consumed.
 *
 * Input: the first byte is the chunk size (0 = everything at once), the rest is the
 * byte stream. The slack of the sse_buf_t past its length is poisoned for ASan, so a
 * decoder reading past the bytes received is caught even inside the buffer's capacity.
 * Each whole frame's payload goes through every reader the module has (HELLO; the
 * requester's PUBLISH with the relay's checks and serialization; the broker's EVENT,
 * alone and in runs (sse_run_read);
 * CONNS, CLOSE, REPLY; RESULT; REPLAY and CHECK; REPLAYED; the broker's COUNT applied to a
 * census, whose counts must then match a plain sum; SYNC/SYNCED) and a generic one, asserting
 * that every string lies inside the payload with its NUL, that sse_rd_t's pointer and
 * count stay in step, and that re-encoding what was decoded with sse_buf_put_str gives
 * the same frame bytes. (A failed sse_rd_str may leave the reader past the length it
 * read: every caller drops the frame then, so that is allowed.)
 */
#include "fuzz_common.h"

#include <sanitizer/asan_interface.h>

#include "sse_event.h"
#include "sse_proto.h"
#include "sse_census.h"

/* Channels counted and the sum of their counts, seen through
 * sse_census_each (the census keeps neither: the relay does not need them). */
static void census_sum_one(void *ctx, const char *name, size_t len, long n)
{
    long *acc = ctx;

    (void)name;
    (void)len;
    acc[0]++;
    acc[1] += n;
}

static long census_channels(sse_census_t *c)
{
    long acc[2] = { 0, 0 };

    sse_census_each(c, census_sum_one, acc);
    return acc[0];
}

static long census_total(sse_census_t *c)
{
    long acc[2] = { 0, 0 };

    sse_census_each(c, census_sum_one, acc);
    return acc[1];
}

#include "apr_hash.h"

typedef struct {
    const char *payload;
    size_t len;
} frame_t;

/* The buffer's bytes past len are not data: make touching them an ASan error. */
static void guard(sse_buf_t *b)
{
    if (b->data)
        ASAN_POISON_MEMORY_REGION(b->data + b->len, b->cap - b->len);
}

static void unguard(sse_buf_t *b)
{
    if (b->data)
        ASAN_UNPOISON_MEMORY_REGION(b->data, b->cap);
}

/* Reads s[0..n], so ASan checks the whole string. */
static void touch(const char *s, size_t n)
{
    volatile unsigned char sum = 0;
    size_t i;

    for (i = 0; i <= n; i++)
        sum = (unsigned char)(sum + (unsigned char)s[i]);
    (void)sum;
}

/* rd still describes the tail of f. */
static void rd_in_step(const frame_t *f, const sse_rd_t *rd)
{
    FZ_ASSERT(rd->p >= f->payload && rd->left <= f->len);
    FZ_ASSERT(rd->p + rd->left == f->payload + f->len);
}

/* Reads one string and asserts it lies in f, NUL-terminated; reads every byte. */
static int rd_str(const frame_t *f, sse_rd_t *rd, const char **s, size_t *n)
{
    const char *before = rd->p;
    size_t left = rd->left;
    int rc = sse_rd_str(rd, s, n);

    rd_in_step(f, rd);
    if (rc) {
        FZ_ASSERT(rc == -1);
        return -1;
    }
    FZ_ASSERT(*s == before + 4);
    FZ_ASSERT(*n + 5 <= left);
    FZ_ASSERT(*s >= f->payload && *s + *n < f->payload + f->len);
    FZ_ASSERT((*s)[*n] == '\0');
    FZ_ASSERT(rd->p == *s + *n + 1);
    touch(*s, *n);
    return 0;
}

static int rd_u32(const frame_t *f, sse_rd_t *rd, uint32_t *v)
{
    size_t left = rd->left;
    int rc = sse_rd_u32(rd, v);

    rd_in_step(f, rd);
    FZ_ASSERT(rc == 0 ? rd->left == left - 4 : (rc == -1 && left < 4 && rd->left == left));
    return rc;
}

/* The relay's publish_prepare: channel, id, event, retry, data, history count and
 * age -> serialized event. */
static void as_publish_request(apr_pool_t *p, const frame_t *f)
{
    sse_rd_t rd = { f->payload, f->len };
    const char *s[5];
    size_t n[5];
    uint32_t keep, age;
    sse_event_t ev;
    apr_array_header_t *evs;
    apr_size_t len;
    const char *bytes;
    int i;

    for (i = 0; i < 5; i++)
        if (rd_str(f, &rd, &s[i], &n[i]))
            return;
    if (rd_u32(f, &rd, &keep) || rd_u32(f, &rd, &age))
        return;
    memset(&ev, 0, sizeof(ev));
    ev.id = n[1] ? s[1] : "1";
    ev.event = n[2] ? s[2] : NULL;
    ev.retry = n[3] ? s[3] : NULL;
    ev.data = s[4];
    ev.data_len = n[4];
    if (!sse_channel_valid(s[0], n[0]) || sse_event_check(p, &ev))
        return;
    bytes = sse_event_serialize(p, &ev, &len);
    /* what the brokers receive must parse to one event */
    FZ_ASSERT(sse_event_parse_stream(p, bytes, len, &evs) == NULL && evs->nelts == 1);
}

/* sse_relay_call's reading of a RESULT: id, count, count answers. */
static void as_result(const frame_t *f)
{
    sse_rd_t rd = { f->payload, f->len };
    const char *s;
    size_t n;
    uint32_t i, count;

    if (rd_str(f, &rd, &s, &n) || rd_u32(f, &rd, &count))
        return;
    for (i = 0; i < count; i++)
        if (rd_str(f, &rd, &s, &n))
            return;
}

/* The relay's resume_point (REPLAY, CHECK): last id, u32 n (at most 4096), n channels. */
static void as_resume(const frame_t *f)
{
    sse_rd_t rd = { f->payload, f->len };
    const char *s;
    size_t len;
    uint32_t i, n;

    if (rd_str(f, &rd, &s, &len) || rd_u32(f, &rd, &n) || n > 4096)
        return;
    for (i = 0; i < n; i++)
        if (rd_str(f, &rd, &s, &len))
            return;
}

/* The broker's replay_done (REPLAYED): u32 lost, the events as one string. */
static void as_replayed(const frame_t *f)
{
    sse_rd_t rd = { f->payload, f->len };
    const char *s;
    size_t len;
    uint32_t lost;

    if (rd_u32(f, &rd, &lost) == 0)
        rd_str(f, &rd, &s, &len);
}

/* Strings until one fails, then re-encode them and the rest: the same bytes. */
static void as_strings(const frame_t *f, const sse_frame_hdr_t *h)
{
    sse_rd_t rd = { f->payload, f->len };
    sse_buf_t enc = { 0 };
    sse_frame_hdr_t h2;
    const char *s, *payload2;
    size_t n;
    long off = sse_frame_begin(&enc, h->type, h->seq);

    FZ_ASSERT(off == 0);
    /* a failed sse_rd_str may have taken the length already: go on from before it */
    for (;;) {
        sse_rd_t at = rd;
        if (rd_str(f, &rd, &s, &n)) {
            rd = at;
            break;
        }
        FZ_ASSERT(sse_buf_put_str(&enc, s, n) == 0);
    }
    FZ_ASSERT(sse_buf_put(&enc, rd.p, rd.left) == 0);
    sse_frame_end(&enc, off);
    FZ_ASSERT(enc.len == sizeof(h2) + f->len);
    FZ_ASSERT(sse_frame_peek(enc.data, enc.len, &h2, &payload2) == 1);
    FZ_ASSERT(h2.type == h->type && h2.seq == h->seq && h2.len == h->len);
    FZ_ASSERT(f->len == 0 || !memcmp(payload2, f->payload, f->len));
    sse_buf_free(&enc);
}

/* The relay's census_frame (COUNT): u32 n, n x (channel, signed delta), applied
 * to a census.  With every delta applied, a channel named once must hold
 * max(0, its delta), and the total must be the sum over the channels. */
static void as_count(apr_pool_t *p, const frame_t *f)
{
    sse_rd_t rd = { f->payload, f->len };
    sse_census_t *c = sse_census_make(p);
    const char *name, *first = NULL;
    size_t len, first_len = 0;
    uint32_t i, n, d;
    long first_delta = 0, sum = 0;
    int ok = 1;

    if (rd_u32(f, &rd, &n))
        return;
    for (i = 0; i < n && ok; i++) {
        if (rd_str(f, &rd, &name, &len) || rd_u32(f, &rd, &d)
            || !sse_channel_valid(name, len)) {
            ok = 0;
            break;
        }
        FZ_ASSERT(sse_census_add(c, name, len, (long)(int32_t)d) == 0);
        if (i == 0) {
            first = name;
            first_len = len;
            first_delta = (int32_t)d;
        }
    }
    if (ok && n == 1) {
        FZ_ASSERT(sse_census_get(c, first, first_len) == (first_delta > 0 ? first_delta : 0));
    }
    FZ_ASSERT(census_total(c) >= 0);
    if (ok && first) {
        apr_hash_t *seen = apr_hash_make(p);
        rd = (sse_rd_t){ f->payload, f->len };
        rd_u32(f, &rd, &n);
        for (i = 0; i < n; i++) {
            rd_str(f, &rd, &name, &len);
            rd_u32(f, &rd, &d);
            if (!apr_hash_get(seen, name, (apr_ssize_t)len)) {
                apr_hash_set(seen, name, (apr_ssize_t)len, name);
                sum += sse_census_get(c, name, len);
            }
        }
        FZ_ASSERT(sum == census_total(c));
    }
    sse_census_clear(c);
    FZ_ASSERT(census_channels(c) == 0 && census_total(c) == 0);
}

static void as_u32s(const frame_t *f)
{
    sse_rd_t rd = { f->payload, f->len };
    uint32_t v;

    while (rd_u32(f, &rd, &v) == 0)
        ;
    FZ_ASSERT(rd.left < 4);
}

static void decode(apr_pool_t *p, const sse_frame_hdr_t *h, const char *payload)
{
    frame_t f = { payload, h->len };
    sse_rd_t rd;
    const char *s, *s2;
    size_t n, n2;
    uint32_t v;

    rd = (sse_rd_t){ payload, h->len };             /* HELLO */
    rd_u32(&f, &rd, &v);
    as_publish_request(p, &f);                      /* PUBLISH, requester -> relay */
    rd = (sse_rd_t){ payload, h->len };             /* EVENT, relay -> broker */
    if (rd_str(&f, &rd, &s, &n) == 0 && rd_str(&f, &rd, &s2, &n2) == 0
        && rd_u32(&f, &rd, &v) == 0)
        rd_u32(&f, &rd, &v);
    as_count(p, &f);                                /* COUNT, broker -> relay */
    rd = (sse_rd_t){ payload, h->len };             /* CONNS, CLOSE, REPLY */
    rd_str(&f, &rd, &s, &n);
    as_result(&f);
    as_resume(&f);
    as_replayed(&f);
    as_strings(&f, h);
    as_u32s(&f);
}

/* conn_readable / relay_readable: handle every whole frame, keep the rest.
 * Returns -1 when the stream is to be dropped. */
/* The broker reads EVENT frames in runs (sse_run_read): the run starting at
 * in[0..len) must cover whole frames of in, its events lie in them, on one
 * channel, within the limits, and its bytes copy out as their concatenation;
 * SYNCs may lie between its events, never before the first or after the
 * last. */
static void run_check(const char *in, size_t len)
{
    static sse_run_t run;
    static char out[SSE_RUN_MAX_BYTES + SSE_PROTO_MAX_FRAME];
    long used = sse_run_read(in, len, &run);
    size_t total = 0, k;
    unsigned i;

    if (used < 0)
        return;             /* a malformed EVENT: the broker drops the relay */
    FZ_ASSERT(used > 0 && (size_t)used <= len);
    FZ_ASSERT(run.n >= 1 && run.n <= SSE_RUN_MAX_EVENTS);
    FZ_ASSERT(run.name >= in && run.name + run.nlen < in + used);
    for (i = 0; i < run.n; i++) {
        FZ_ASSERT(run.ev[i].bytes >= in && run.ev[i].bytes + run.ev[i].len < in + used);
        total += run.ev[i].len;
    }
    FZ_ASSERT(run.n == 1 || total <= SSE_RUN_MAX_BYTES);
    FZ_ASSERT(sse_run_len(&run, 0) == total);
    if (total <= sizeof(out)) {
        sse_run_copy(&run, 0, out);
        for (i = 0, k = 0; i < run.n; k += run.ev[i].len, i++)
            FZ_ASSERT(memcmp(out + k, run.ev[i].bytes, run.ev[i].len) == 0);
    }
    FZ_ASSERT(sse_run_first_after(&run, 0) <= run.n);
    FZ_ASSERT(sse_run_first_after(&run, UINT64_MAX) == run.n);
    /* a SYNC in it lies between two of its events */
    FZ_ASSERT(!run.has_sync || run.n >= 2);
}

static int drain(apr_pool_t *p, sse_buf_t *in)
{
    sse_frame_hdr_t h;
    const char *payload = NULL;
    size_t pos = 0;
    int rc;

    while ((rc = sse_frame_peek(in->data + pos, in->len - pos, &h, &payload)) == 1
           || rc == -2) {
        if (rc == -2) {
            /* another format: refused before anything of it is read; read
             * it as ours too, so the fuzzer reaches the decoders */
            uint32_t t;
            memcpy(&t, in->data + pos, sizeof(t));
            FZ_ASSERT((t >> 16) != SSE_FRAME_FORMAT);
            t = (t & SSE_FRAME_OP_MASK) | SSE_FRAME_FORMAT << 16;
            memcpy(in->data + pos, &t, sizeof(t));
            continue;
        }
        FZ_ASSERT(payload == in->data + pos + sizeof(h));
        FZ_ASSERT(h.len <= SSE_PROTO_MAX_FRAME);
        FZ_ASSERT(h.len <= in->len - pos - sizeof(h));
        decode(p, &h, payload);
        if (h.type == SSE_OP_EVENT)
            run_check(in->data + pos, in->len - pos);
        pos += sizeof(h) + h.len;
    }
    if (rc < 0) {
        FZ_ASSERT(in->len - pos >= sizeof(h) && h.len > SSE_PROTO_MAX_FRAME);
        return -1;
    }
    FZ_ASSERT(rc == 0);
    FZ_ASSERT(in->len - pos < sizeof(h) || in->len - pos - sizeof(h) < h.len);
    sse_buf_consume(in, pos);
    guard(in);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    sse_buf_t in = { 0 };
    size_t chunk = fz_take(&data, &size), off = 0, n;

    if (!chunk)
        chunk = size;
    while (off < size) {
        n = size - off < chunk ? size - off : chunk;
        unguard(&in);
        FZ_ASSERT(sse_buf_put(&in, data + off, n) == 0);
        guard(&in);
        off += n;
        if (drain(p, &in))
            break;
    }
    unguard(&in);
    sse_buf_free(&in);
    fz_done();
    return 0;
}
