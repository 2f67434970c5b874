/* test_sse_broker.c: a child's broker driven through its handle, pass by
 * pass, with the test as its relay: the census it reports, the fan-out of
 * runs of events (SYNCs answered), a resuming stream's replay, the relay's
 * requests (CONNS, CLOSE), a slow client's end and the loss of the relay.
 *
 * The relay link and each stream are socketpairs: what the broker writes
 * is read back here.  The broker's files log through httpd's
 * ap_log_error; linked alone, their lines come to log_sink below, and a
 * test reads the last one. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "unit.h"
#include "sse_log.h"
#include "sse_broker_int.h"
#include "sse_update.h"
#include "sse_relay.h"
#include "sse_sock.h"
#include "sse_wire.h"
#include "sse_client.h"
#include "sse_tls.h"

module AP_MODULE_DECLARE_DATA sse_module;

/* No per-client table here (sse_client.c needs httpd): nothing counted. */
void sse_client_release(sse_client_slot_t slot)
{
    (void)slot;
}

void sse_client_stats(apr_uint64_t *refused, unsigned *at_cap)
{
    *refused = 0;
    *at_cap = 0;
}

/* No TLS here (sse_tls.c needs OpenSSL and mod_ssl): no stream is adopted,
 * so these are never reached. */
ssize_t sse_tls_send(void *ssl, const char *data, size_t len)
{
    (void)ssl;
    (void)data;
    (void)len;
    errno = EPIPE;
    return -1;
}

void sse_tls_close(void *ssl)
{
    (void)ssl;
}

static char last_log[1024];

AP_DECLARE(void) ap_log_error_(const char *file, int line, int module_index,
                               int level, apr_status_t status,
                               const server_rec *s, const char *fmt, ...)
{
    va_list ap;

    (void)file; (void)line; (void)module_index; (void)level; (void)status;
    (void)s;
    va_start(ap, fmt);
    vsnprintf(last_log, sizeof(last_log), fmt, ap);
    va_end(ap);
}

static apr_pool_t *pool;
static sse_broker_t b;
static int relay_end = -1;      /* the test's end of the relay link */

/* --- the relay's side -------------------------------------------------- */

/* The next frame the broker sent: 0, or -1 when none came within 1 s. */
static int frame_read(sse_frame_hdr_t *h, char *payload, size_t cap)
{
    char raw[sizeof(*h)];

    if (sse_sock_read_all(relay_end, raw, sizeof(raw), 1000)
        || sse_frame_hdr_read(raw, h) || h->len > cap
        || sse_sock_read_all(relay_end, payload, h->len, 1000)) {
        return -1;
    }
    return 0;
}

/* Nothing more from the broker within 100 ms. */
static int relay_quiet(void)
{
    char c;

    return sse_sock_recv_wait(relay_end, &c, 1, 100) < 0 && errno == ETIMEDOUT;
}

static void relay_send(const sse_buf_t *f)
{
    CHECK(sse_sock_write_all(relay_end, f->data, f->len) == 0);
}

static void event_put(sse_buf_t *f, const char *chan, uint64_t seq,
                      const char *bytes)
{
    CHECK(sse_event_frame_put(f, 0, chan, strlen(chan), bytes, strlen(bytes),
                              seq) == 0);
}

static void sync_put(sse_buf_t *f, uint64_t mark)
{
    CHECK(sse_wire_mark_put(f, SSE_OP_SYNC, mark) == 0);
}

static void request_put(sse_buf_t *f, uint32_t op, uint32_t seq,
                        const char *chan)
{
    CHECK(sse_wire_request_put(f, op, seq, chan) == 0);
}

/* Read a COUNT frame; want is "name:delta name:delta ...". */
static void expect_count(const char *want)
{
    sse_frame_hdr_t h;
    char payload[4096], got[1024] = "";
    sse_rd_t rd = { payload, 0 };
    uint32_t n, i;
    int32_t delta;

    CHECK(frame_read(&h, payload, sizeof(payload)) == 0);
    CHECK(h.type == SSE_OP_COUNT);
    rd.left = h.len;
    CHECK(sse_wire_count_get(&rd, &n) == 0);
    for (i = 0; i < n; i++) {
        const char *name;
        size_t len, used = strlen(got);
        if (sse_wire_delta_get(&rd, &name, &len, &delta)) {
            CHECK(!"COUNT entry");
            return;
        }
        snprintf(got + used, sizeof(got) - used, "%s%s:%d", i ? " " : "",
                 name, (int)delta);
    }
    CHECK_STR(got, want);
}

static void expect_synced(uint64_t mark)
{
    sse_frame_hdr_t h;
    char payload[64];
    sse_rd_t rd = { payload, 0 };
    uint64_t got = 0;

    CHECK(frame_read(&h, payload, sizeof(payload)) == 0);
    CHECK(h.type == SSE_OP_SYNCED);
    rd.left = h.len;
    CHECK(sse_wire_mark_get(&rd, &got) == 0 && got == mark);
}

/* --- the broker's side --------------------------------------------------- */

/* One pass of the broker's loop, woken at once (the way a park wakes it). */
static void pass(void)
{
    uint64_t one = 1;

    CHECK(write(b.wake.fd, &one, sizeof(one)) == sizeof(one));
    sse_loop_once(b.loop);
}

/* Queue a stream on chans (space-separated) the way a worker parks one;
 * *client is the client's end of its socket. */
static sse_sub_t *park(const char *chans, const char *last_id,
                       size_t max_backlog, int *client)
{
    char copy[256], *names[4], *last;
    int n = 0, sv[2];
    sse_sub_spec_t spec;
    sse_sub_t *sub;

    snprintf(copy, sizeof(copy), "%s", chans);
    for (names[n] = strtok_r(copy, " ", &last); names[n] && n < 3;
         names[++n] = strtok_r(NULL, " ", &last)) {
    }
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    memset(&spec, 0, sizeof(spec));
    spec.channels = (const char *const *)names;
    spec.nchannels = n;
    spec.remote = "192.0.2.7";
    spec.max_backlog = max_backlog;
    spec.preamble = ": ok\n\n";
    spec.last_id = last_id;
    spec.held = 1;              /* a socketpair, as a held stream's is */
    sub = sse_sub_create(sv[0], &spec);
    CHECK(sub != NULL);
    sub->next = b.queue;
    b.queue = sub;
    *client = sv[1];
    return sub;
}

/* What the client can read now (waiting up to 200 ms for a first byte). */
static size_t client_read(int fd, char *buf, size_t cap)
{
    ssize_t n = sse_sock_recv_wait(fd, buf, cap - 1, 200);
    size_t got = n > 0 ? (size_t)n : 0;

    while (n > 0 && got < cap - 1
           && (n = sse_sock_recv_wait(fd, buf + got, cap - 1 - got, 20)) > 0) {
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

/* The broker closed the client's stream (what it sent before is read). */
static int client_closed(int fd)
{
    char buf[4096];
    ssize_t n;

    while ((n = sse_sock_recv_wait(fd, buf, sizeof(buf), 200)) > 0) {
    }
    return n == 0;
}

/* --- the tests --------------------------------------------------------- */

static int c1, c2, c3;          /* clients: 1 on a, 2 on a and b, 3 resumes */

static void test_hello_census(void)
{
    sse_frame_hdr_t h;
    char payload[64], buf[256];
    sse_rd_t rd = { payload, 0 };
    uint32_t pid = 0;
    int sv[2];

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    relay_end = sv[1];
    CHECK(sse_link_attach(&b, sv[0]) == 0);
    CHECK(frame_read(&h, payload, sizeof(payload)) == 0);
    CHECK(h.type == SSE_OP_HELLO);
    rd.left = h.len;
    CHECK(sse_wire_hello_get(&rd, &pid) == 0 && pid == (uint32_t)getpid());
    CHECK(relay_quiet());       /* no streams: no census yet */

    park("ns/a", NULL, 1 << 20, &c1);
    park("ns/a ns/b", NULL, 1 << 20, &c2);
    pass();
    /* one COUNT for the batch, before any stream's first byte */
    expect_count("ns/a:1 ns/a:1 ns/b:1");
    CHECK(client_read(c1, buf, sizeof(buf)) == 6);
    CHECK_STR(buf, ": ok\n\n");
    CHECK(client_read(c2, buf, sizeof(buf)) == 6);
    CHECK(b.st.opened == 2);
}

static void test_fan_out(void)
{
    sse_buf_t f = { 0 };
    char buf[512];

    event_put(&f, "ns/a", 10, "id: 10\ndata: x\n\n");
    event_put(&f, "ns/b", 11, "id: 11\ndata: y\n\n");
    relay_send(&f);
    pass();
    CHECK(client_read(c1, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: 10\ndata: x\n\n");
    CHECK(client_read(c2, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: 10\ndata: x\n\nid: 11\ndata: y\n\n");
    CHECK(b.st.published == 2);
    CHECK(b.st.delivered == 3);
    CHECK(relay_quiet());       /* events owe no answer */

    /* a run with a SYNC inside and one after it: both answered, in order,
     * once the events before them are written */
    f.len = 0;
    event_put(&f, "ns/a", 12, "id: 12\n\n");
    sync_put(&f, 77);
    event_put(&f, "ns/a", 13, "id: 13\n\n");
    sync_put(&f, 78);
    relay_send(&f);
    pass();
    expect_synced(77);
    expect_synced(78);
    CHECK(client_read(c1, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: 12\n\nid: 13\n\n");
    CHECK(client_read(c2, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: 12\n\nid: 13\n\n");
    sse_buf_free(&f);
}

static void test_replay(void)
{
    sse_buf_t f = { 0 };
    sse_frame_hdr_t h;
    char payload[256], buf[512];
    sse_rd_t rd = { payload, 0 };
    const char *last_id, **keys;
    uint32_t n;

    park("ns/a", "12", 1 << 20, &c3);
    pass();
    expect_count("ns/a:1");
    CHECK(frame_read(&h, payload, sizeof(payload)) == 0);
    CHECK(h.type == SSE_OP_REPLAY);
    rd.left = h.len;
    CHECK(sse_wire_resume_get(pool, &rd, &last_id, &keys, &n) == 0);
    CHECK_STR(last_id, "12");
    CHECK(n == 1 && !strcmp(keys[0], "ns/a"));
    CHECK(client_read(c3, buf, sizeof(buf)) == 6);

    /* a live event before the answer: the answer has it, not the stream */
    event_put(&f, "ns/a", 14, "id: 14\n\n");
    relay_send(&f);
    pass();
    CHECK(client_read(c1, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: 14\n\n");
    CHECK(client_read(c3, buf, sizeof(buf)) == 0);

    f.len = 0;
    CHECK(sse_wire_replayed_put(&f, h.seq, 0, "id: 13\n\nid: 14\n\n", 16, 14) == 0);
    event_put(&f, "ns/a", 15, "id: 15\n\n");
    relay_send(&f);
    pass();
    CHECK(client_read(c3, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: 13\n\nid: 14\n\nid: 15\n\n");
    CHECK(client_read(c1, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: 15\n\n");
    sse_buf_free(&f);
}

static void test_requests(void)
{
    sse_buf_t f = { 0 };
    sse_frame_hdr_t h;
    char payload[1024], buf[64];
    sse_rd_t rd = { payload, 0 };
    const char *s, *p;
    size_t len;
    int lines = 0;

    request_put(&f, SSE_OP_CONNS, 5, "ns/a");
    relay_send(&f);
    pass();
    CHECK(frame_read(&h, payload, sizeof(payload)) == 0);
    CHECK(h.type == SSE_OP_REPLY && h.seq == 5);
    rd.left = h.len;
    CHECK(sse_wire_reply_get(&rd, &s, &len) == 0);
    for (p = s; (p = strstr(p, "192.0.2.7\t")); p++) {
        lines++;
    }
    CHECK(lines == 3);

    f.len = 0;
    request_put(&f, SSE_OP_CLOSE, 6, "ns/b");
    relay_send(&f);
    pass();
    CHECK(frame_read(&h, payload, sizeof(payload)) == 0);
    CHECK(h.type == SSE_OP_REPLY && h.seq == 6);
    rd.p = payload;
    rd.left = h.len;
    CHECK(sse_wire_reply_get(&rd, &s, &len) == 0 && !strcmp(s, "1"));
    CHECK(strstr(last_log, "reason=channel deleted") != NULL);
    pass();                     /* reaped: its channels leave the census */
    expect_count("ns/a:-1 ns/b:-1");
    CHECK(client_closed(c2));
    CHECK(client_read(c1, buf, sizeof(buf)) == 0);  /* c1 stays, quiet */
    sse_buf_free(&f);
}

static void test_slow_client(void)
{
    static char big[32768];
    sse_buf_t f = { 0 };
    int c4, i;

    park("ns/c", NULL, 100000, &c4);
    pass();
    expect_count("ns/c:1");
    memset(big, 'x', sizeof(big) - 3);
    memcpy(big + sizeof(big) - 3, "\n\n", 3);
    /* c4 never reads: its socket fills, then its backlog */
    for (i = 0; i < 40 && b.st.dropped_slow == 0; i++) {
        f.len = 0;
        event_put(&f, "ns/c", (uint64_t)(100 + i), big);
        relay_send(&f);
        pass();
    }
    CHECK(b.st.dropped_slow == 1);
    CHECK(strstr(last_log, "reason=slow client") != NULL);
    pass();
    expect_count("ns/c:-1");
    close(c4);
    sse_buf_free(&f);
}

/* A stream whose resume was asked when the relay went: not told "history
 * lost" (the history may well have it): asked again, by its id, once the
 * broker is on a relay (test_relay_back). */
static int c5 = -1;

static void test_relay_lost(void)
{
    sse_frame_hdr_t h;
    char buf[256];

    park("ns/a", "15", 1 << 20, &c5);
    pass();
    expect_count("ns/a:1");
    CHECK(frame_read(&h, buf, sizeof(buf)) == 0 && h.type == SSE_OP_REPLAY);
    close(relay_end);           /* before the replay is answered */
    relay_end = -1;
    pass();
    CHECK(b.relay.io.fd < 0);
    CHECK(b.retry.armed);       /* it will try again */
    if (!CHECK(strstr(last_log, "SSE00104: lost the relay (closed)") != NULL)) {
        fprintf(stderr, "    last log line: %s\n", last_log);
    }
    CHECK(client_read(c5, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, ": ok\n\n");       /* and nothing else yet */
}

/* Back on the same relay (a socketpair again: its peer is this process,
 * as before the loss): the streams from before are ended (SSE00109); one
 * that began while off it, with no Last-Event-ID, stays, and the relay is
 * asked (CATCHUP) for what went out since it began. */
static void test_relay_back(void)
{
    sse_buf_t f = { 0 };
    sse_frame_hdr_t h;
    char payload[4096], buf[256];
    sse_rd_t rd = { payload, 0 };
    const char **keys;
    uint32_t n;
    uint64_t since = 0, before = sse_clock_us();
    sse_frame_hdr_t r;
    char rp[512];
    int sv[2], c6;
    sse_sub_t *sub;

    sub = park("ns/g", NULL, 1 << 20, &c6);
    pass();
    CHECK(client_read(c6, buf, sizeof(buf)) == 6);  /* ": ok", off the relay */
    CHECK(sub->off_since >= before);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    relay_end = sv[1];
    CHECK(sse_link_attach(&b, sv[0]) == 0);
    CHECK(frame_read(&h, payload, sizeof(payload)) == 0 && h.type == SSE_OP_HELLO);
    CHECK(frame_read(&h, payload, sizeof(payload)) == 0 && h.type == SSE_OP_COUNT);
    CHECK(frame_read(&h, payload, sizeof(payload)) == 0 && h.type == SSE_OP_CATCHUP);
    rd.left = h.len;
    CHECK(sse_wire_catchup_get(pool, &rd, &since, &keys, &n) == 0);
    CHECK(since >= before && since <= sse_clock_us());
    CHECK(n == 1 && !strcmp(keys[0], "ns/g"));
    /* the resume that waited (test_relay_lost): asked by its id */
    CHECK(frame_read(&r, rp, sizeof(rp)) == 0 && r.type == SSE_OP_REPLAY);
    CHECK(memmem(rp, r.len, "15", 2) != NULL && memmem(rp, r.len, "ns/a", 4) != NULL);
    if (!CHECK(strstr(last_log, "SSE00109: back on relay") != NULL
               && strstr(last_log, "; 1 that began meanwhile") != NULL)) {
        fprintf(stderr, "    last log line: %s\n", last_log);
    }
    CHECK(!sub->dead && sub->off_since == 0);

    /* a live event before the answer is in the answer, then live again */
    event_put(&f, "ns/g", 21, "id: 21\n\n");
    CHECK(sse_wire_replayed_put(&f, h.seq, 0, "id: 20\n\nid: 21\n\n", 16, 21) == 0);
    event_put(&f, "ns/g", 22, "id: 22\n\n");
    relay_send(&f);
    pass();
    CHECK(client_read(c6, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: 20\n\nid: 21\n\nid: 22\n\n");
    close(c6);
    /* answers come in the order asked: then the waiting resume's */
    f.len = 0;
    CHECK(sse_wire_replayed_put(&f, r.seq, 0, "id: 16\n\n", 8, 16) == 0);
    relay_send(&f);
    pass();
    CHECK(client_read(c5, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: 16\n\n");
    close(c5);
    sse_buf_free(&f);
}


/* A Mercure hub's streams on its one channel: each gets the updates one
 * of whose topics its selectors match, a private one only when its claim
 * matches too; the tail never reaches a client; a history answer is
 * filtered the same way; a SYNC after a run of updates is answered. */
static sse_sub_t *park_hub(const char *const *topics, int nt,
                           const char *const *claims, int nc, int *client)
{
    sse_sub_t *sub = park("ns/#hub", NULL, 1 << 20, client);
    const char *err;

    sub->hub = sse_hub_sub_new(topics, nt, claims, nc, &err);
    CHECK(sub->hub != NULL);
    return sub;
}

static const char *update(sse_buf_t *tmp, const char *event, int private,
                          const char *topic1, const char *topic2)
{
    const char *t[2] = { topic1, topic2 };

    tmp->len = 0;
    sse_buf_put(tmp, event, strlen(event));
    sse_buf_put(tmp, sse_update_tail(pool, private, t, topic2 ? 2 : 1),
                strlen(sse_update_tail(pool, private, t, topic2 ? 2 : 1)) + 1);
    return tmp->data;
}

static void test_hub(void)
{
    static const char *book[] = { "https://e.x/books/1" };
    static const char *tpl[] = { "https://e.x/books/{id}" };
    static const char *any[] = { "*" };
    static const char *claim1[] = { "https://e.x/books/1" };
    static const char *both[] = { "https://e.x/books/{id}", "https://e.x/books/1" };
    sse_buf_t f = { 0 }, u = { 0 };
    char buf[1024];
    int ha, hb, hc, hd;
    sse_frame_hdr_t h;
    char payload[256];

    park_hub(book, 1, claim1, 1, &ha);      /* may see books/1's private */
    park_hub(tpl, 1, NULL, 0, &hb);         /* anonymous, a template */
    park_hub(any, 1, tpl, 1, &hc);          /* everything, claim: books */
    park_hub(both, 2, NULL, 0, &hd);        /* two selectors for books/1 */
    pass();
    expect_count("ns/#hub:1 ns/#hub:1 ns/#hub:1 ns/#hub:1");
    CHECK(apr_hash_count(b.hub_sels) == 3);  /* one per distinct text */
    CHECK(client_read(ha, buf, sizeof(buf)) == 6);
    CHECK(client_read(hb, buf, sizeof(buf)) == 6);
    CHECK(client_read(hc, buf, sizeof(buf)) == 6);
    CHECK(client_read(hd, buf, sizeof(buf)) == 6);

    event_put(&f, "ns/#hub", 30, update(&u, "id: a\ndata: 1\n\n", 0,
                                        "https://e.x/books/1", NULL));
    event_put(&f, "ns/#hub", 31, update(&u, "id: b\ndata: 2\n\n", 1,
                                        "https://e.x/books/1", NULL));
    event_put(&f, "ns/#hub", 32, update(&u, "id: c\ndata: 3\n\n", 1,
                                        "https://e.x/books/2", NULL));
    event_put(&f, "ns/#hub", 33, update(&u, "id: d\ndata: 4\n\n", 0,
                                        "https://e.x/authors/1",
                                        "https://e.x/books/9"));
    sync_put(&f, 91);
    relay_send(&f);
    pass();
    expect_synced(91);
    CHECK(client_read(ha, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: a\ndata: 1\n\nid: b\ndata: 2\n\n");
    CHECK(client_read(hb, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: a\ndata: 1\n\nid: d\ndata: 4\n\n");
    CHECK(client_read(hc, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "id: a\ndata: 1\n\nid: b\ndata: 2\n\nid: c\ndata: 3\n\n"
                   "id: d\ndata: 4\n\n");
    CHECK(client_read(hd, buf, sizeof(buf)) > 0);  /* each once */
    CHECK_STR(buf, "id: a\ndata: 1\n\nid: d\ndata: 4\n\n");

    /* a resuming hub stream: its history answer, filtered */
    {
        sse_sub_t *r = park("ns/#hub", "a", 1 << 20, &ha);
        sse_buf_t hist = { 0 };
        const char *err;
        r->hub = sse_hub_sub_new(tpl, 1, NULL, 0, &err);
        pass();
        expect_count("ns/#hub:1");
        CHECK(frame_read(&h, payload, sizeof(payload)) == 0);
        CHECK(h.type == SSE_OP_REPLAY);
        CHECK(client_read(ha, buf, sizeof(buf)) == 6);
        update(&u, "id: b\ndata: 2\n\n", 1, "https://e.x/books/1", NULL);
        sse_buf_put(&hist, u.data, strlen(u.data));
        update(&u, "id: d\ndata: 4\n\n", 0, "https://e.x/books/9", NULL);
        sse_buf_put(&hist, u.data, strlen(u.data));
        f.len = 0;
        CHECK(sse_wire_replayed_put(&f, h.seq, 0, hist.data, hist.len, 33) == 0);
        relay_send(&f);
        pass();
        CHECK(client_read(ha, buf, sizeof(buf)) > 0);
        CHECK_STR(buf, "id: d\ndata: 4\n\n");
        sse_buf_free(&hist);
    }
    sse_buf_free(&f);
    sse_buf_free(&u);
}

/* A history answer bigger than SSEMaxBacklog reaches a reader that keeps
 * up (the history bounds it already); only past it does the cap apply. */
static void test_replay_over_backlog(void)
{
    sse_buf_t f = { 0 }, hist = { 0 };
    sse_frame_hdr_t h;
    char payload[256], buf[8192];
    sse_sub_t *sub;
    size_t got = 0, n;
    int c, i;

    int small = 4096;

    sub = park("ns/big", "1", 64, &c);     /* a 64-byte backlog */
    /* a small socket buffer, so most of the answer has to queue */
    setsockopt(sub->io.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    pass();
    expect_count("ns/big:1");
    CHECK(frame_read(&h, payload, sizeof(payload)) == 0);
    CHECK(h.type == SSE_OP_REPLAY);
    CHECK(client_read(c, buf, sizeof(buf)) == 6);
    for (i = 2; i < 600; i++) {
        char ev[64];
        int len = snprintf(ev, sizeof(ev), "id: %d\ndata: some history\n\n", i);
        sse_buf_put(&hist, ev, (size_t)len);
    }
    CHECK(sse_wire_replayed_put(&f, h.seq, 0, hist.data, hist.len, 599) == 0);
    relay_send(&f);
    pass();
    while ((n = client_read(c, buf, sizeof(buf))) > 0) {
        got += n;
        pass();
    }
    CHECK(got == hist.len);
    CHECK(!sub->dead);
    sse_buf_free(&f);
    sse_buf_free(&hist);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    sse_relay_path = "/nonexistent/relay.sock";  /* no reconnect here */
    CHECK(sse_broker_init(&b, pool, NULL) == APR_SUCCESS);
    sse_timer_cancel(b.loop, &b.tick);      /* no keepalives in between */
    test_hello_census();
    test_fan_out();
    test_replay();
    test_hub();
    test_replay_over_backlog();
    test_requests();
    test_slow_client();
    test_relay_lost();
    test_relay_back();
    sse_broker_fini(&b);
    CHECK(apr_hash_count(b.hubs) == 0 && apr_hash_count(b.hub_sels) == 0);
    close(c1);
    close(c2);
    close(c3);
    apr_pool_destroy(pool);
    apr_terminate();
    return unit_report();
}
