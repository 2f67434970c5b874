/* test_sse_relayd.c: the relay's logic (sse_relayd_ops.c, _gather.c, _flow.c,
 * _hist.c, _cluster.c) through its handle, without sockets.
 *
 * Peers are connections with fd -1: frames are put in their input and
 * handled as the loop would (sse_relayd_frames), and what the relay would
 * send them stays in their output buffer (writing it is the loop's job),
 * where the tests read it frame by frame.  The loop's three functions
 * (conn_queue_out, conn_close, conn_readable) are stood in for below; the
 * cluster is off, so the Redis client's functions are stand-ins that fail
 * the run if called. */
#define _GNU_SOURCE             /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "unit.h"
#include "sse_store.h"
#include "sse_relayd_int.h"
#include "sse_cluster.h"
#include "sse_wire.h"

#define FIRST_ID 1000

/* --- the loop, stood in for ------------------------------------------------ */

static int queued;                  /* conn_queue_out calls */
static sse_buf_t logged;            /* the relay's log lines, NUL-ended */

/* Bytes a broker has "sent" that the relay has not read yet: what
 * conn_readable (census_sync) reads. */
static relay_conn_t *unread_conn;
static sse_buf_t unread;

void conn_queue_out(relay_conn_t *c)
{
    (void)c;
    queued++;
}

void conn_close(relay_conn_t *c)
{
    if (c->closed) {
        return;
    }
    c->closed = 1;
    c->peer.io.fd = -1;
    sse_relayd_conn_gone(c);
    c->next = c->d->closed;         /* freed by relayd_done */
    c->d->closed = c;
}

int conn_readable(relay_conn_t *c)
{
    if (c->closed || c->busy) {
        return c->closed ? -1 : 0;
    }
    if (c != unread_conn || !unread.len) {
        return 0;
    }
    sse_buf_put(&c->peer.in, unread.data, unread.len);
    unread.len = 0;
    return sse_relayd_frames(c);
}

static void test_log(sse_relayd_t *d, int level, const char *msg)
{
    (void)d;
    (void)level;
    if (logged.len) {
        logged.len--;                   /* over the NUL */
    }
    sse_buf_put(&logged, msg, strlen(msg));
    sse_buf_put(&logged, "\n", 2);
}

/* Did the relay log a line with s since relayd_start? */
static int was_logged(const char *s)
{
    return logged.len && strstr(logged.data, s) != NULL;
}

/* --- Redis: the cluster is off, none of it may run ------------------------- */

static void no_redis(const char *fn)
{
    fprintf(stderr, "FAIL: %s called with the cluster off\n", fn);
    abort();
}

int sse_cluster_fd(const sse_cluster_t *c) { (void)c; no_redis(__func__); return -1; }
int sse_cluster_tick(sse_cluster_t *c, uint64_t s) { (void)c; (void)s; no_redis(__func__); return 0; }
int sse_cluster_up(const sse_cluster_t *c) { (void)c; no_redis(__func__); return 0; }
const char *sse_cluster_why(const sse_cluster_t *c) { (void)c; no_redis(__func__); return ""; }
int sse_cluster_publish(sse_cluster_t *c, const char *ch, const char *id,
                        const char *b, size_t l, unsigned k, unsigned a,
                        uint64_t *s, long *o)
{
    (void)c; (void)ch; (void)id; (void)b; (void)l; (void)k; (void)a; (void)s; (void)o;
    no_redis(__func__);
    return -1;
}
void sse_cluster_readable(sse_cluster_t *c, sse_cluster_event_fn *fn,
                          sse_cluster_ctl_fn *ctl, void *ctx, int r)
{
    (void)c; (void)fn; (void)ctl; (void)ctx; (void)r;
    no_redis(__func__);
}
const char *sse_cluster_sid(const sse_cluster_t *c) { (void)c; no_redis(__func__); return ""; }
int sse_cluster_ctl_send(sse_cluster_t *c, const char *to, const char *op,
                         uint64_t req, const char *b, size_t l, long *h)
{
    (void)c; (void)to; (void)op; (void)req; (void)b; (void)l; (void)h;
    no_redis(__func__);
    return -1;
}
int sse_cluster_servers(sse_cluster_t *c, const char *ch, sse_buf_t *o)
{
    (void)c; (void)ch; (void)o;
    no_redis(__func__);
    return -1;
}
int sse_cluster_lookup(sse_cluster_t *c, const char *id,
                       const char *const *ch, int n, uint64_t *s)
{
    (void)c; (void)id; (void)ch; (void)n; (void)s;
    no_redis(__func__);
    return -1;
}
int sse_cluster_replay(sse_cluster_t *c, const char *const *ch, int n,
                       uint64_t a, sse_buf_t *o, int *l, uint64_t *m)
{
    (void)c; (void)ch; (void)n; (void)a; (void)o; (void)l; (void)m;
    no_redis(__func__);
    return -1;
}
int sse_cluster_fill(sse_cluster_t *c, const char *const *ch, int n,
                     uint64_t a, sse_cluster_event_fn *fn, void *ctx)
{
    (void)c; (void)ch; (void)n; (void)a; (void)fn; (void)ctx;
    no_redis(__func__);
    return -1;
}
int sse_cluster_put_counts(sse_cluster_t *c, const char *l, size_t n)
{
    (void)c; (void)l; (void)n;
    no_redis(__func__);
    return -1;
}
int sse_cluster_get_counts(sse_cluster_t *c, sse_buf_t *o)
{
    (void)c; (void)o;
    no_redis(__func__);
    return -1;
}

/* --- a relay and its peers -------------------------------------------------- */

static void relayd_start(sse_relayd_t *d, apr_pool_t *p)
{
    memset(d, 0, sizeof(*d));
    d->log = test_log;
    d->log_level = RELAYD_LOG_DEBUG;
    CHECK(sse_relayd_init(d, p, FIRST_ID) == 0);
    queued = 0;
    logged.len = 0;
}

/* Close every peer, free them and the relay (ASan checks nothing leaks). */
static void relayd_done(sse_relayd_t *d)
{
    relay_conn_t *c;

    while (d->conns) {
        conn_close(d->conns);
    }
    while ((c = d->closed)) {
        d->closed = c->next;
        free(c);
    }
    CHECK(d->waiting == NULL);
    sse_relayd_destroy(d);
    sse_buf_free(&unread);
    sse_buf_free(&logged);
    unread_conn = NULL;
}

/* The peer reads b (as the loop would after a recv); returns frames' rc. */
static int feed(relay_conn_t *c, sse_buf_t *b)
{
    int rc;

    sse_buf_put(&c->peer.in, b->data, b->len);
    rc = sse_relayd_frames(c);
    sse_buf_free(b);
    return rc;
}

static int hello(relay_conn_t *c, uint32_t pid)
{
    sse_buf_t b = { 0 };
    long off = sse_frame_begin(&b, SSE_OP_HELLO, 0);

    sse_buf_put_u32(&b, pid);
    sse_frame_end(&b, off);
    return feed(c, &b);
}

static void count_put(sse_buf_t *b, const char *chan, int32_t delta)
{
    long off = sse_frame_begin(b, SSE_OP_COUNT, 0);

    sse_buf_put_u32(b, 1);
    sse_buf_put_str(b, chan, strlen(chan));
    sse_buf_put_u32(b, (uint32_t)delta);
    sse_frame_end(b, off);
}

static int count(relay_conn_t *c, const char *chan, int32_t delta)
{
    sse_buf_t b = { 0 };

    count_put(&b, chan, delta);
    return feed(c, &b);
}

/* A broker that counts delta streams on chan (none when chan is NULL). */
static relay_conn_t *broker(sse_relayd_t *d, uint32_t pid, const char *chan,
                            int32_t delta)
{
    relay_conn_t *b = sse_relayd_conn_new(d, -1);

    CHECK(b != NULL);
    CHECK(hello(b, pid) == 1);
    CHECK(b->broker == 1 && b->pid == (int)pid);
    if (chan) {
        CHECK(count(b, chan, delta) == 1);
    }
    return b;
}

/* A request sent age_ms ago (its header's seq is the time it was sent). */
static int publish(relay_conn_t *c, const char *chan, const char *data,
                   uint32_t age_ms)
{
    sse_buf_t b = { 0 };
    sse_wire_publish_t pub = { 0 };
    sse_frame_hdr_t h;

    pub.key = chan;
    pub.ev.data = data;
    pub.ev.data_len = strlen(data);
    pub.keep = 10;
    CHECK(sse_wire_publish_put(&b, &pub) == 0);
    memcpy(&h, b.data, sizeof(h));      /* stamped as sse_relay_call does */
    h.seq = sse_clock_ms() - age_ms;
    memcpy(b.data, &h, sizeof(h));
    return feed(c, &b);
}

static int request(relay_conn_t *c, uint32_t op, const char *chan)
{
    sse_buf_t b = { 0 };
    long off = sse_frame_begin(&b, op, sse_clock_ms());

    if (chan) {
        sse_buf_put_str(&b, chan, strlen(chan));
    }
    sse_frame_end(&b, off);
    return feed(c, &b);
}

static int reply(relay_conn_t *c, const char *text)
{
    sse_buf_t b = { 0 };
    long off = sse_frame_begin(&b, SSE_OP_REPLY, 0);

    sse_buf_put_str(&b, text, strlen(text));
    sse_frame_end(&b, off);
    return feed(c, &b);
}

static int synced(relay_conn_t *c, uint64_t mark)
{
    sse_buf_t b = { 0 };
    long off = sse_frame_begin(&b, SSE_OP_SYNCED, 0);

    sse_buf_put_u64(&b, mark);
    sse_frame_end(&b, off);
    return feed(c, &b);
}

/* --- what the relay sent ---------------------------------------------------- */

/* The number of frames of type op in c's output; the k-th (from 0) in *h
 * and *rd when found. */
static int frames(relay_conn_t *c, uint32_t op, int k, sse_frame_hdr_t *h,
                  sse_rd_t *rd)
{
    sse_frame_hdr_t fh;
    const char *payload;
    size_t pos = 0;
    int n = 0;

    while (sse_frame_peek(c->peer.out.data + pos, c->peer.out.len - pos, &fh,
                          &payload) == 1) {
        if (fh.type == op) {
            if (n == k && h) {
                *h = fh;
                rd->p = payload;
                rd->left = fh.len;
            }
            n++;
        }
        pos += sizeof(fh) + fh.len;
    }
    CHECK(pos == c->peer.out.len);       /* whole frames only */
    return n;
}

/* c's RESULT: its id in id (NUL-terminated), its replies joined by '|'. */
static int result(relay_conn_t *c, char *id, size_t idsz, char *all,
                  size_t allsz, uint32_t *n)
{
    sse_frame_hdr_t h;
    sse_rd_t rd;
    const char *s;
    size_t len, used = 0;
    uint32_t i;

    if (frames(c, SSE_OP_RESULT, 0, &h, &rd) != 1
        || sse_rd_str(&rd, &s, &len) || len >= idsz || sse_rd_u32(&rd, n)) {
        return -1;
    }
    memcpy(id, s, len);
    id[len] = '\0';
    all[0] = '\0';
    for (i = 0; i < *n; i++) {
        if (sse_rd_str(&rd, &s, &len) || used + len + 2 > allsz) {
            return -1;
        }
        if (i) {
            all[used++] = '|';
        }
        memcpy(all + used, s, len);
        used += len;
        all[used] = '\0';
    }
    return rd.left == 0 ? 0 : -1;
}

/* The k-th EVENT to b: its channel and seq, and whether its bytes hold
 * data. */
static int event_is(relay_conn_t *b, int k, const char *chan, uint64_t seq,
                    const char *data)
{
    sse_frame_hdr_t h;
    sse_rd_t rd;
    const char *s, *bytes;
    size_t len, blen;
    uint64_t got;

    if (frames(b, SSE_OP_EVENT, k, &h, &rd) <= k || sse_rd_str(&rd, &s, &len)
        || sse_rd_str(&rd, &bytes, &blen) || sse_rd_u64(&rd, &got)) {
        return 0;
    }
    return len == strlen(chan) && !memcmp(s, chan, len) && got == seq
           && memmem(bytes, blen, data, strlen(data)) != NULL;
}

/* --- the tests ---------------------------------------------------------------- */

/* A PUBLISH goes as an EVENT only to the brokers whose census counts its
 * channel; the RESULT is its id and the census's sum. */
static void test_publish_census(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b1, *b2, *b3, *r;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    b1 = broker(&d, 11, "ns/news", 2);
    b2 = broker(&d, 12, "ns/sport", 1);
    b3 = broker(&d, 13, "ns/news", 3);
    CHECK(relay_brokers(&d) == 3);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(publish(r, "ns/news", "hello", 0) == 1);
    CHECK(frames(b1, SSE_OP_EVENT, 0, NULL, NULL) == 1);
    CHECK(frames(b3, SSE_OP_EVENT, 0, NULL, NULL) == 1);
    CHECK(b2->peer.out.len == 0);
    CHECK(event_is(b1, 0, "ns/news", FIRST_ID, "data: hello\n"));
    CHECK(event_is(b3, 0, "ns/news", FIRST_ID, "id: 1000\n"));
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(id, "1000");
    CHECK(n == 1);
    CHECK_STR(all, "5");
    CHECK(r->waiting == NULL && d.waiting == NULL);
    CHECK(d.next_id == FIRST_ID + 1);
    /* a stream gone from b3's count: the next publish counts 2 */
    CHECK(count(b3, "ns/news", -3) == 1);
    sse_buf_free(&r->peer.out);
    CHECK(publish(r, "ns/news", "again", 0) == 1);
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(all, "2");
    CHECK(frames(b1, SSE_OP_EVENT, 0, NULL, NULL) == 2);
    CHECK(frames(b3, SSE_OP_EVENT, 0, NULL, NULL) == 1);
    relayd_done(&d);
}

/* A COUNT a broker sent before the publish came, not read yet, is read
 * before the publish is answered (census_sync): the new stream counts. */
static void test_census_sync(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b, *r;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    b = broker(&d, 21, NULL, 0);
    count_put(&unread, "ns/live", 1);
    unread_conn = b;
    r = sse_relayd_conn_new(&d, -1);
    CHECK(publish(r, "ns/live", "x", 0) == 1);
    CHECK(unread.len == 0);
    CHECK(frames(b, SSE_OP_EVENT, 0, NULL, NULL) == 1);
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(all, "1");
    relayd_done(&d);
}

/* A broker more than RELAY_MAX_BEHIND behind gets the publisher's answer
 * held until its SYNCED reaches the mark. */
static void test_flow_held(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *slow, *fast, *r;
    sse_frame_hdr_t h;
    sse_rd_t rd;
    uint64_t mark = 0;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    /* one event is a write per stream: 150 of them, 50 past the limit */
    slow = broker(&d, 31, "ns/big", 150);
    fast = broker(&d, 32, "ns/big", 1);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(publish(r, "ns/big", "x", 0) == 1);
    CHECK(frames(slow, SSE_OP_EVENT, 0, NULL, NULL) == 1);
    CHECK(frames(fast, SSE_OP_EVENT, 0, NULL, NULL) == 1);
    CHECK(frames(slow, SSE_OP_SYNC, 0, &h, &rd) == 1);
    CHECK(sse_rd_u64(&rd, &mark) == 0 && mark == 150);
    CHECK(frames(fast, SSE_OP_SYNC, 0, NULL, NULL) == 0);
    CHECK(r->peer.out.len == 0);             /* held */
    CHECK(r->waiting != NULL);
    /* the fast broker's SYNCED holds nothing: still held */
    CHECK(synced(slow, 49) == 1);
    CHECK(r->peer.out.len == 0);
    CHECK(slow->waiters != NULL);
    CHECK(synced(slow, 50) == 1);       /* 150 - 100: released */
    CHECK(slow->waiters == NULL);
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(all, "151");
    CHECK(r->waiting == NULL);
    relayd_done(&d);
}

/* A held answer whose broker leaves is answered then. */
static void test_flow_broker_gone(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *slow, *r;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    slow = broker(&d, 33, "ns/big", 500);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(publish(r, "ns/big", "x", 0) == 1);
    CHECK(r->peer.out.len == 0);
    conn_close(slow);
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(all, "500");
    CHECK(relay_brokers(&d) == 0);
    relayd_done(&d);
}

/* A CONNS request goes to every broker; the requester is answered once
 * each has replied, with the replies in the order they came. */
static void test_gather_conns(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b1, *b2, *b3, *r;
    sse_frame_hdr_t h;
    sse_rd_t rd;
    const char *s;
    size_t len;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    b1 = broker(&d, 41, NULL, 0);
    b2 = broker(&d, 42, NULL, 0);
    b3 = broker(&d, 43, NULL, 0);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(request(r, SSE_OP_CONNS, "ns/news") == 1);
    CHECK(frames(b1, SSE_OP_CONNS, 0, &h, &rd) == 1);
    CHECK(sse_rd_str(&rd, &s, &len) == 0 && len == 7 && !memcmp(s, "ns/news", 7));
    CHECK(frames(b2, SSE_OP_CONNS, 0, NULL, NULL) == 1);
    CHECK(frames(b3, SSE_OP_CONNS, 0, NULL, NULL) == 1);
    CHECK(reply(b2, "two") == 1);
    CHECK(reply(b1, "one") == 1);
    CHECK(r->peer.out.len == 0);             /* b3 still owes */
    CHECK(reply(b3, "three") == 1);
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(id, "");
    CHECK(n == 3);
    CHECK_STR(all, "two|one|three");
    CHECK(b1->owed == NULL && b2->owed == NULL && b3->owed == NULL);
    /* a REPLY nobody asked for is a bad frame: that broker is dropped */
    CHECK(reply(b1, "extra") == -1);
    CHECK(b1->closed);
    CHECK(was_logged("SSE00203"));
    relayd_done(&d);
}

/* A broker owes its gathers in order: its first REPLY answers the first
 * request, its second the second. */
static void test_gather_fifo(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b, *r1, *r2;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    b = broker(&d, 51, NULL, 0);
    r1 = sse_relayd_conn_new(&d, -1);
    r2 = sse_relayd_conn_new(&d, -1);
    CHECK(request(r1, SSE_OP_CONNS, "ns/a") == 1);
    CHECK(request(r2, SSE_OP_CLOSE, "ns/b") == 1);
    CHECK(frames(b, SSE_OP_CONNS, 0, NULL, NULL) == 1);
    CHECK(frames(b, SSE_OP_CLOSE, 0, NULL, NULL) == 1);
    CHECK(reply(b, "for-a") == 1);
    CHECK(result(r1, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(all, "for-a");
    CHECK(r2->peer.out.len == 0);
    CHECK(reply(b, "for-b") == 1);
    CHECK(result(r2, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(all, "for-b");
    relayd_done(&d);
}

/* A requester that closes mid-gather is detached; the replies still due
 * finish the gather without anyone to answer. */
static void test_gather_requester_gone(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b1, *b2, *r, *r2;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    b1 = broker(&d, 61, NULL, 0);
    b2 = broker(&d, 62, NULL, 0);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(request(r, SSE_OP_CONNS, "ns/x") == 1);
    CHECK(reply(b1, "1") == 1);
    CHECK(d.waiting != NULL);
    conn_close(r);
    CHECK(d.waiting == NULL);
    CHECK(r->waiting == NULL);
    CHECK(b2->owed != NULL);
    CHECK(reply(b2, "2") == 1);         /* the gather ends, no one to tell */
    CHECK(b2->owed == NULL);
    /* and a broker that leaves mid-gather: answered with the others' */
    r2 = sse_relayd_conn_new(&d, -1);
    CHECK(request(r2, SSE_OP_CONNS, "ns/y") == 1);
    CHECK(reply(b2, "only") == 1);
    CHECK(r2->peer.out.len == 0);
    conn_close(b1);
    CHECK(result(r2, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK(n == 1);
    CHECK_STR(all, "only");
    relayd_done(&d);
}

/* A gather past its deadline answers with the replies it has. */
static void test_gather_timeout(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b1, *r;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    b1 = broker(&d, 71, NULL, 0);
    broker(&d, 72, NULL, 0);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(request(r, SSE_OP_CONNS, "ns/x") == 1);
    CHECK(reply(b1, "fast") == 1);
    sse_relayd_after_batch(&d);
    CHECK(r->peer.out.len == 0);             /* not yet */
    CHECK(d.waiting != NULL);
    d.waiting->deadline = 0;
    sse_relayd_after_batch(&d);
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(all, "fast");
    CHECK(was_logged("SSE00214: 1 child(ren)"));
    CHECK(d.waiting == NULL);
    relayd_done(&d);
}

/* A request that waited RELAY_TAKE_MS or more is refused: closed, logged,
 * nothing published. */
static void test_stale_request(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b, *r, *r2;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    b = broker(&d, 81, "ns/news", 1);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(publish(r, "ns/news", "late", RELAY_TAKE_MS + 500) == -1);
    CHECK(r->closed);
    CHECK(b->peer.out.len == 0);
    CHECK(d.next_id == FIRST_ID);
    CHECK(was_logged("SSE00217: a request (type 2) waited"));
    /* one that waited less is taken */
    r2 = sse_relayd_conn_new(&d, -1);
    CHECK(publish(r2, "ns/news", "on time", RELAY_TAKE_MS - 1000) == 1);
    CHECK(frames(b, SSE_OP_EVENT, 0, NULL, NULL) == 1);
    CHECK(result(r2, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(all, "1");
    relayd_done(&d);
}

/* A frame of another format (an old child's HELLO: the op alone, as
 * before formats were numbered; a newer build's PUBLISH) is refused: the
 * connection closed, nothing done, one log line per format. */
static void test_other_format(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b, *old, *old2, *newer;
    sse_buf_t f = { 0 };
    uint32_t h[3] = { SSE_OP_HELLO, 0, 4 }, pid = 91;
    const char *first;

    relayd_start(&d, p);
    b = broker(&d, 90, "ns/news", 1);
    old = sse_relayd_conn_new(&d, -1);
    sse_buf_put(&f, h, sizeof(h));
    sse_buf_put(&f, &pid, sizeof(pid));
    CHECK(feed(old, &f) == -1);
    CHECK(old->closed && relay_brokers(&d) == 1);
    CHECK(was_logged("SSE00230: a peer on the relay socket speaks frame "
                     "format 0, this relay format 8: refused"));
    first = strstr(logged.data, "SSE00230");
    /* the same again: refused, not logged twice */
    old2 = sse_relayd_conn_new(&d, -1);
    sse_buf_put(&f, h, sizeof(h));
    sse_buf_put(&f, &pid, sizeof(pid));
    CHECK(feed(old2, &f) == -1);
    CHECK(old2->closed && !strstr(first + 1, "SSE00230"));
    /* a newer format's publish: refused, nothing published, logged */
    newer = sse_relayd_conn_new(&d, -1);
    h[0] = SSE_OP_PUBLISH | (SSE_FRAME_FORMAT + 1) << 16;
    h[2] = 0;
    sse_buf_put(&f, h, sizeof(h));
    CHECK(feed(newer, &f) == -1);
    CHECK(newer->closed && b->peer.out.len == 0 && d.next_id == FIRST_ID);
    CHECK(was_logged("speaks frame format 9, this relay format 8"));
    relayd_done(&d);
}

/* LIST is answered from the census alone: every child's counts summed. */
static void test_list(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b1, *r;
    char id[64], all[256];
    uint32_t n = 0;

    relayd_start(&d, p);
    b1 = broker(&d, 91, "ns/news", 2);
    broker(&d, 92, "ns/news", 4);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(request(r, SSE_OP_LIST, NULL) == 1);
    CHECK(frames(b1, SSE_OP_LIST, 0, NULL, NULL) == 0);
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK(n == 1);
    CHECK_STR(all, "ns/news\t6\n");
    relayd_done(&d);
}

/* A broker's CATCHUP for a stream that began (at since) while it was off
 * the relay: it gets the events that went out after since, not those
 * before, answered as a REPLAY; nothing when no event went out at all. */
static int catchup(relay_conn_t *b, uint32_t token, uint64_t since,
                   const char *chan)
{
    sse_buf_t f = { 0 };
    const char *keys[1] = { chan };

    CHECK(sse_wire_catchup_put(&f, SSE_OP_CATCHUP, token, since, keys, 1) == 0);
    return feed(b, &f);
}

static int replayed(relay_conn_t *b, uint32_t token, uint32_t *lost,
                    char *events, size_t sz, uint64_t *upto)
{
    sse_frame_hdr_t h;
    sse_rd_t rd;
    const char *ev;
    size_t len;

    if (frames(b, SSE_OP_REPLAYED, 0, &h, &rd) != 1 || h.seq != token
        || sse_wire_replayed_get(&rd, lost, &ev, &len, upto) || len >= sz) {
        return -1;
    }
    memcpy(events, ev, len);
    events[len] = '\0';
    sse_buf_free(&b->peer.out);
    return 0;
}

static void test_catchup(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b, *r;
    char events[512];
    uint32_t lost = 9;
    uint64_t upto = 9, since;

    relayd_start(&d, p);
    b = broker(&d, 31, NULL, 0);
    r = sse_relayd_conn_new(&d, -1);
    /* nothing went out yet */
    CHECK(catchup(b, 1, sse_clock_us(), "ns/gap") == 1);
    CHECK(replayed(b, 1, &lost, events, sizeof(events), &upto) == 0);
    CHECK(lost == 0 && events[0] == '\0' && upto == 0);
    since = sse_clock_us();             /* before the first event */
    CHECK(publish(r, "ns/gap", "before", 0) == 1);
    usleep(3 * RELAY_CLOCK_STEP_US);
    {
        uint64_t began = sse_clock_us();
        usleep(1000);
        CHECK(publish(r, "ns/gap", "after 1", 0) == 1);
        CHECK(publish(r, "ns/other", "elsewhere", 0) == 1);
        CHECK(publish(r, "ns/gap", "after 2", 0) == 1);
        CHECK(catchup(b, 2, began, "ns/gap") == 1);
    }
    CHECK(replayed(b, 2, &lost, events, sizeof(events), &upto) == 0);
    CHECK(lost == 0);
    CHECK_STR(events, "id: 1001\ndata: after 1\n\nid: 1003\ndata: after 2\n\n");
    CHECK(upto == FIRST_ID + 3);
    /* from before the first event on: all of it */
    CHECK(catchup(b, 3, since, "ns/gap") == 1);
    CHECK(replayed(b, 3, &lost, events, sizeof(events), &upto) == 0);
    CHECK(lost == 0 && !strncmp(events, "id: 1000\ndata: before\n\nid: 1001\n", 32));
    /* after the last one: nothing */
    usleep(1000);
    CHECK(catchup(b, 4, sse_clock_us(), "ns/gap") == 1);
    CHECK(replayed(b, 4, &lost, events, sizeof(events), &upto) == 0);
    CHECK(lost == 0 && events[0] == '\0' && upto == FIRST_ID + 3);
    relayd_done(&d);
}


/* A broker that was on another relay asks (AFTER) for the events of its
 * streams' channels after the last seq it had: those after it, on those
 * channels; lost when the history has dropped some of them. */
static void test_after(apr_pool_t *p)
{
    sse_relayd_t d;
    relay_conn_t *b, *r;
    sse_buf_t f = { 0 };
    const char *keys[1] = { "ns/aft" };
    char events[512];
    uint32_t lost = 9;
    uint64_t upto = 9;
    int i;

    relayd_start(&d, p);
    b = broker(&d, 41, NULL, 0);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(publish(r, "ns/aft", "one", 0) == 1);
    CHECK(publish(r, "ns/else", "elsewhere", 0) == 1);
    CHECK(publish(r, "ns/aft", "two", 0) == 1);
    CHECK(sse_wire_catchup_put(&f, SSE_OP_AFTER, 5, FIRST_ID, keys, 1) == 0);
    CHECK(feed(b, &f) == 1);
    CHECK(replayed(b, 5, &lost, events, sizeof(events), &upto) == 0);
    CHECK(lost == 0);
    CHECK_STR(events, "id: 1002\ndata: two\n\n");
    CHECK(upto == FIRST_ID + 2);
    /* after the newest: nothing, nothing lost */
    CHECK(sse_wire_catchup_put(&f, SSE_OP_AFTER, 6, FIRST_ID + 2, keys, 1) == 0);
    CHECK(feed(b, &f) == 1);
    CHECK(replayed(b, 6, &lost, events, sizeof(events), &upto) == 0);
    CHECK(lost == 0 && events[0] == '\0');
    /* the history keeps 10: after 12 more, the first ones are gone */
    for (i = 0; i < 12; i++) {
        CHECK(publish(r, "ns/aft", "more", 0) == 1);
    }
    CHECK(sse_wire_catchup_put(&f, SSE_OP_AFTER, 7, FIRST_ID, keys, 1) == 0);
    CHECK(feed(b, &f) == 1);
    CHECK(replayed(b, 7, &lost, events, sizeof(events), &upto) == 0);
    CHECK(lost == 1);
    relayd_done(&d);
}

/* SSEHistoryPath: what a relay published is in its store; a new relay
 * (whose clock says an earlier id: it was set back) loads it, goes on
 * after the highest id, and resumes a client from an old id; a full store
 * refuses the publish (no answer: the requester says 503) and gives the
 * seq back. */
static void test_store(apr_pool_t *p)
{
    char dir[] = "/tmp/sse-relayd-store.XXXXXX";
    const char *err = NULL, *chans[] = { "ns/s" };
    sse_relayd_t d;
    relay_conn_t *r, *b;
    sse_store_t *st;
    char id[64], all[256];
    uint32_t n = 0;
    uint64_t after = 0;
    int i;

    CHECK(mkdtemp(dir) != NULL);
    relayd_start(&d, p);
    st = sse_store_open(dir, 1 << 20, SSE_STORE_SYNC_NO, 0, &err);
    CHECK(st != NULL && relay_store_attach(&d, st, SSE_STORE_SYNC_NO) == 0);
    b = broker(&d, 21, "ns/s", 1);
    r = sse_relayd_conn_new(&d, -1);
    for (i = 0; i < 3; i++) {
        sse_buf_free(&r->peer.out);
        CHECK(publish(r, "ns/s", "kept", 0) == 1);
        CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    }
    CHECK_STR(id, "1002");
    (void)b;
    relayd_done(&d);            /* closes the store */

    memset(&d, 0, sizeof(d));
    d.log = test_log;
    d.log_level = RELAYD_LOG_DEBUG;
    CHECK(sse_relayd_init(&d, p, 5) == 0);      /* a clock set back */
    st = sse_store_open(dir, 1 << 20, SSE_STORE_SYNC_NO, 0, &err);
    CHECK(st != NULL && relay_store_attach(&d, st, SSE_STORE_SYNC_NO) == 0);
    CHECK(d.next_id == 1003);
    CHECK(sse_hist_lookup(d.hist, "1000", chans, 1, &after) == 1
          && after == 1000);
    CHECK(!sse_hist_lost(d.hist, chans, 1, 1000));
    r = sse_relayd_conn_new(&d, -1);
    CHECK(publish(r, "ns/s", "next", 0) == 1);
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(id, "1003");

    /* full: a 2 MB event in a 1 MB store */
    {
        size_t big = 2 << 20;
        char *data = malloc(big + 1);
        memset(data, 'x', big);
        data[big] = '\0';
        sse_buf_free(&r->peer.out);
        sse_frame_hdr_t h;
        sse_rd_t rd;
        const char *why = "";
        size_t len = 0;
        publish(r, "ns/s", data, 0);
        /* refused, saying why (the publisher answers 503 with it) */
        CHECK(frames(r, SSE_OP_REFUSED, 0, &h, &rd) == 1
              && sse_wire_refused_get(&rd, &why, &len) == 0);
        CHECK(len > 0 && memmem(why, len, "history store", 13) != NULL);
        CHECK(d.next_id == 1004);               /* the seq given back */
        CHECK(!r->closed);                      /* the connection kept */
        free(data);
    }
    relayd_done(&d);
    CHECK(unlink(apr_pstrcat(p, dir, "/data.mdb", NULL)) == 0);
    CHECK(unlink(apr_pstrcat(p, dir, "/lock.mdb", NULL)) == 0);
    CHECK(unlink(apr_pstrcat(p, dir, "/owner.lock", NULL)) == 0);
    CHECK(rmdir(dir) == 0);
}

/* An upgrade: the relay being replaced writes its history (in memory)
 * into a store; the new one (a clock set back) takes it over, goes on
 * after the highest id, resumes an old id without a loss, and removes the
 * files; a second take-over (a respawn) finds nothing and changes nothing. */
static void test_handover(apr_pool_t *p)
{
    char dir[] = "/tmp/sse-relayd-handover.XXXXXX";
    const char *chans[] = { "ns/h" }, *two[] = { "ns/h", "ns/k" };
    sse_relayd_t d;
    relay_conn_t *r;
    char id[64], all[256];
    uint32_t n = 0;
    uint64_t after = 0;
    size_t events, bytes;
    int i;

    CHECK(mkdtemp(dir) != NULL);
    relayd_start(&d, p);
    r = sse_relayd_conn_new(&d, -1);
    for (i = 0; i < 4; i++) {
        sse_buf_free(&r->peer.out);
        CHECK(publish(r, i == 2 ? "ns/k" : "ns/h", "kept", 0) == 1);
        CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    }
    CHECK_STR(id, "1003");
    CHECK(relay_handover_out(&d, dir) == 0);
    relayd_done(&d);

    memset(&d, 0, sizeof(d));
    d.log = test_log;
    d.log_level = RELAYD_LOG_DEBUG;
    CHECK(sse_relayd_init(&d, p, 5) == 0);      /* a clock set back */
    CHECK(relay_handover_in(&d, dir) == 0);
    CHECK(d.next_id == 1004);
    sse_hist_stats(d.hist, &events, &bytes);
    CHECK(events == 4);
    CHECK(sse_hist_lookup(d.hist, "1000", chans, 1, &after) == 1
          && after == 1000);
    CHECK(!sse_hist_lost(d.hist, two, 2, 1000));
    CHECK(sse_hist_lost(d.hist, chans, 1, 998));
    CHECK(access(apr_pstrcat(p, dir, "/data.mdb", NULL), F_OK) < 0);
    CHECK(relay_handover_in(&d, dir) == 0);     /* nothing left: a no-op */
    CHECK(d.next_id == 1004);
    r = sse_relayd_conn_new(&d, -1);
    CHECK(publish(r, "ns/h", "next", 0) == 1);
    CHECK(result(r, id, sizeof(id), all, sizeof(all), &n) == 0);
    CHECK_STR(id, "1004");
    relayd_done(&d);
    CHECK(rmdir(dir) == 0);
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);
    test_publish_census(p);
    test_census_sync(p);
    test_flow_held(p);
    test_flow_broker_gone(p);
    test_gather_conns(p);
    test_gather_fifo(p);
    test_gather_requester_gone(p);
    test_gather_timeout(p);
    test_stale_request(p);
    test_other_format(p);
    test_list(p);
    test_catchup(p);
    test_after(p);
    test_store(p);
    test_handover(p);
    apr_pool_destroy(p);
    apr_terminate();
    return unit_report();
}
