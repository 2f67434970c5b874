/* test_sse_wire.c: the relay's PUBLISH frame, put by the publish handler and
 * tools/sse-publish, got by the relay: what one writes the other reads
 * back, field by field, and what the relay must refuse it refuses.  The
 * RESULT get (the relay's answer, as sse_relayd.c builds it) and the cutter
 * of the text answers inside it (sse_wire_line). */
#include <apr_general.h>
#include <apr_pools.h>

#include "unit.h"
#include "sse_wire.h"

static apr_pool_t *pool;

/* Put pub, check the frame header, get it back into *out (its strings
 * point into *frame).  0, or -1 when get refused it. */
static int round_trip(const sse_wire_publish_t *pub, sse_buf_t *frame,
                      sse_wire_publish_t *out)
{
    sse_frame_hdr_t h;
    const char *payload;
    sse_rd_t rd;

    frame->len = 0;
    CHECK(sse_wire_publish_put(frame, pub) == 0);
    CHECK(sse_frame_peek(frame->data, frame->len, &h, &payload) == 1);
    CHECK(h.type == SSE_OP_PUBLISH);
    CHECK(h.seq == 0);
    CHECK(sizeof(h) + h.len == frame->len);
    rd.p = payload;
    rd.left = h.len;
    return sse_wire_publish_get(pool, &rd, out);
}

static void test_publish(void)
{
    sse_buf_t f = { 0 };
    sse_wire_publish_t in, out;
    static const char data[] = "line 1\nline 2\r\nno NUL here";

    memset(&in, 0, sizeof(in));
    in.key = "www.example.com/news";
    in.ev.id = "42";
    in.ev.event = "ping";
    in.ev.retry = "1500";
    in.ev.data = data;
    in.ev.data_len = sizeof(data) - 1;
    in.keep = 100;
    in.age = 3600;
    CHECK(round_trip(&in, &f, &out) == 0);
    CHECK_STR(out.key, "www.example.com/news");
    CHECK_STR(out.ev.id, "42");
    CHECK_STR(out.ev.event, "ping");
    CHECK_STR(out.ev.retry, "1500");
    CHECK(out.ev.data_len == sizeof(data) - 1);
    CHECK(!memcmp(out.ev.data, data, sizeof(data) - 1));
    CHECK(out.keep == 100 && out.age == 3600);

    /* unset fields travel as "" and come back unset; no data is "" */
    memset(&in, 0, sizeof(in));
    in.key = "a/b/c";
    CHECK(round_trip(&in, &f, &out) == 0);
    CHECK(!out.ev.id && !out.ev.event && !out.ev.retry);
    CHECK(out.ev.data_len == 0 && out.ev.data && !*out.ev.data);
    CHECK_STR(out.key, "a/b/c");

    /* what the relay refuses: a bare name (no namespace), a bad key, a
     * field injection, a short frame */
    memset(&in, 0, sizeof(in));
    in.key = "news";
    CHECK(round_trip(&in, &f, &out) == -1);
    in.key = "/news";
    CHECK(round_trip(&in, &f, &out) == -1);
    in.key = "ns/ne ws";
    CHECK(round_trip(&in, &f, &out) == -1);
    in.key = "ns/news";
    in.ev.event = "a\nid: 6";
    CHECK(round_trip(&in, &f, &out) == -1);
    in.ev.event = NULL;
    CHECK(round_trip(&in, &f, &out) == 0);
    {
        sse_frame_hdr_t h;
        const char *payload;
        sse_rd_t rd;
        CHECK(sse_frame_peek(f.data, f.len, &h, &payload) == 1);
        rd.p = payload;
        rd.left = h.len - 4;        /* the history age cut off */
        CHECK(sse_wire_publish_get(pool, &rd, &out) == -1);
    }

    /* the stamp is the only header change, and it is the clock's */
    {
        sse_frame_hdr_t h;
        uint32_t before = sse_clock_ms();
        sse_frame_stamp(&f);
        memcpy(&h, f.data, sizeof(h));
        CHECK(h.type == (SSE_OP_PUBLISH | SSE_FRAME_FORMAT << 16));
        CHECK((uint32_t)(h.seq - before) < 1000);
    }
    sse_buf_free(&f);
}

/* A RESULT payload as the relay builds it: id, u32 n, the texts. */
static void result_payload(sse_buf_t *b, const char *id, uint32_t n,
                           const char *const *texts)
{
    uint32_t i;

    b->len = 0;
    CHECK(sse_buf_put_str(b, id, strlen(id)) == 0);
    CHECK(sse_buf_put_u32(b, n) == 0);
    for (i = 0; texts && texts[i]; i++) {
        CHECK(sse_buf_put_str(b, texts[i], strlen(texts[i])) == 0);
    }
}

static int result_get(const sse_buf_t *b, size_t len, sse_wire_result_t *res)
{
    sse_rd_t rd;

    rd.p = b->data;
    rd.left = len;
    return sse_wire_result_get(pool, &rd, res);
}

static void test_result(void)
{
    static const char *const two[] = { "news\t3\n", "", NULL };
    sse_buf_t b = { 0 };
    sse_wire_result_t res;

    result_payload(&b, "1795616731389", 2, two);
    CHECK(result_get(&b, b.len, &res) == 0);
    CHECK_STR(res.id, "1795616731389");
    CHECK(res.replies->nelts == 2);
    CHECK_STR(APR_ARRAY_IDX(res.replies, 0, const char *), "news\t3\n");
    CHECK_STR(APR_ARRAY_IDX(res.replies, 1, const char *), "");
    /* the strings are the payload's own, not copies */
    CHECK(res.id > b.data && res.id < b.data + b.len);

    /* no broker answered: an empty list, not NULL */
    result_payload(&b, "", 0, NULL);
    CHECK(result_get(&b, b.len, &res) == 0);
    CHECK_STR(res.id, "");
    CHECK(res.replies && res.replies->nelts == 0);

    /* malformed: a short payload anywhere, fewer texts than counted, a
     * count the payload cannot hold, an id without its NUL */
    result_payload(&b, "7", 2, two);
    CHECK(result_get(&b, b.len - 1, &res) == -1);
    CHECK(result_get(&b, 6, &res) == -1);           /* id, half the count */
    CHECK(result_get(&b, 0, &res) == -1);
    result_payload(&b, "7", 3, two);
    CHECK(result_get(&b, b.len, &res) == -1);
    result_payload(&b, "7", 0xffffffffu, NULL);
    CHECK(result_get(&b, b.len, &res) == -1);
    result_payload(&b, "7", 0, NULL);
    b.data[5] = 'x';                                /* the id's NUL */
    CHECK(result_get(&b, b.len, &res) == -1);
    sse_buf_free(&b);
}

/* Cut every line of text with max fields, as "f1|f2|..;" per line. */
static const char *cut_all(const char *text, char eol, char sep, int max)
{
    static char out[512];
    char buf[256], *cur = buf, *f[4];
    int n, i;

    snprintf(buf, sizeof(buf), "%s", text);
    out[0] = '\0';
    while ((n = sse_wire_line(&cur, eol, sep, f, max)) > 0) {
        CHECK(n <= max);
        for (i = 0; i < n; i++) {
            strcat(out, f[i]);
            strcat(out, i + 1 < n ? "|" : ";");
        }
    }
    CHECK(*cur == '\0');           /* all of it was read */
    return out;
}

static void test_line(void)
{
    char buf[64], *cur, *f[3];

    /* CONNS lines; a last line without '\n' */
    CHECK_STR(cut_all("10.0.0.1\t1700000000\t42\n::1\t1700000001\t43",
                      '\n', '\t', 3),
              "10.0.0.1|1700000000|42;::1|1700000001|43;");
    /* empty lines, leading and trailing, are skipped */
    CHECK_STR(cut_all("\n\na\tb\n\n\nc\td\n\n", '\n', '\t', 2), "a|b;c|d;");
    CHECK_STR(cut_all("", '\n', '\t', 2), "");
    CHECK_STR(cut_all("\n\n\n", '\n', '\t', 2), "");
    /* missing fields: fewer than max, the caller sees n */
    CHECK_STR(cut_all("remote\tsince\nlone\n", '\n', '\t', 3),
              "remote|since;lone;");
    /* the last field takes the rest: a value with spaces, a 4th field */
    CHECK_STR(cut_all("cluster up and away\npid 7\n", '\n', ' ', 2),
              "cluster|up and away;pid|7;");
    CHECK_STR(cut_all("a\tb\tc\td", '\n', '\t', 3), "a|b|c\td;");
    /* empty fields stay empty (not merged away) */
    CHECK_STR(cut_all("a\t\tc\n\tx\ny\t\n", '\n', '\t', 3), "a||c;|x;y|;");
    /* max 1: whole lines; records of lines (the relay's STATS gather) */
    CHECK_STR(cut_all("k v\nk2 v2", '\n', ' ', 1), "k v;k2 v2;");
    CHECK_STR(cut_all("pid 1\nheld 0\x1e\x1epid 2\n", '\x1e', '\n', 3),
              "pid 1|held 0;pid 2|;");

    /* in place: fields point into the caller's buffer, which is cut */
    snprintf(buf, sizeof(buf), "news\t5\nrest");
    cur = buf;
    CHECK(sse_wire_line(&cur, '\n', '\t', f, 3) == 2);
    CHECK(f[0] == buf && f[1] == buf + 5);
    CHECK_STR(f[0], "news");
    CHECK_STR(f[1], "5");
    CHECK(cur == buf + 7);
    CHECK(sse_wire_line(&cur, '\n', '\t', f, 3) == 1);
    CHECK_STR(f[0], "rest");
    /* at the end it stays at the end */
    CHECK(sse_wire_line(&cur, '\n', '\t', f, 3) == 0);
    CHECK(sse_wire_line(&cur, '\n', '\t', f, 3) == 0);
    CHECK(cur == buf + strlen("news\t5\nrest"));
}

/* The payload of the one frame in f (type checked), as a reader. */
static sse_rd_t frame_payload(const sse_buf_t *f, uint32_t type, uint32_t seq)
{
    sse_frame_hdr_t h;
    const char *payload = NULL;
    sse_rd_t rd = { NULL, 0 };

    if (CHECK(sse_frame_peek(f->data, f->len, &h, &payload) == 1)) {
        CHECK(h.type == type);
        CHECK(h.seq == seq);
        CHECK(sizeof(h) + h.len == f->len);
        rd.p = payload;
        rd.left = h.len;
    }
    return rd;
}

/* Between a broker and the relay: what each put writes its get reads
 * back, and a payload cut short is refused by the get. */
static void test_link_ops(void)
{
    sse_buf_t f = { 0 }, deltas = { 0 };
    sse_rd_t rd;
    uint32_t u, n;
    uint64_t mark;
    int32_t d;
    const char *s, **keys;
    size_t len;
    static const char *const two[] = { "h/a", "h/@b" };

    CHECK(sse_wire_hello_put(&f, 4242) == 0);
    rd = frame_payload(&f, SSE_OP_HELLO, 0);
    CHECK(sse_wire_hello_get(&rd, &u) == 0 && u == 4242);

    f.len = 0;
    CHECK(sse_wire_delta_put(&deltas, "h/a", 3, 1) == 0);
    CHECK(sse_wire_delta_put(&deltas, "h/b", 3, -7) == 0);
    CHECK(sse_wire_count_put(&f, 2, &deltas) == 0);
    rd = frame_payload(&f, SSE_OP_COUNT, 0);
    CHECK(sse_wire_count_get(&rd, &n) == 0 && n == 2);
    CHECK(sse_wire_delta_get(&rd, &s, &len, &d) == 0 && len == 3 && d == 1);
    CHECK_STR(s, "h/a");
    CHECK(sse_wire_delta_get(&rd, &s, &len, &d) == 0 && d == -7);
    CHECK_STR(s, "h/b");
    CHECK(rd.left == 0);
    CHECK(sse_wire_delta_get(&rd, &s, &len, &d) == -1);

    f.len = 0;
    CHECK(sse_wire_resume_put(&f, SSE_OP_REPLAY, 9, "1700000000123", two, 2) == 0);
    rd = frame_payload(&f, SSE_OP_REPLAY, 9);
    CHECK(sse_wire_resume_get(pool, &rd, &s, &keys, &n) == 0 && n == 2);
    CHECK_STR(s, "1700000000123");
    CHECK_STR(keys[0], "h/a");
    CHECK_STR(keys[1], "h/@b");
    CHECK(keys[2] == NULL);
    rd = frame_payload(&f, SSE_OP_REPLAY, 9);
    rd.left -= 3;               /* the last key cut short */
    CHECK(sse_wire_resume_get(pool, &rd, &s, &keys, &n) == -1);
    /* more keys than any request may name */
    f.len = 0;
    CHECK(sse_buf_put_str(&f, "1", 1) == 0);
    CHECK(sse_buf_put_u32(&f, SSE_WIRE_MAX_RESUME + 1) == 0);
    rd.p = f.data;
    rd.left = f.len;
    CHECK(sse_wire_resume_get(pool, &rd, &s, &keys, &n) == -1);

    f.len = 0;
    CHECK(sse_wire_replayed_put(&f, 9, 1, "id: 5\n\n", 8, 5) == 0);
    rd = frame_payload(&f, SSE_OP_REPLAYED, 9);
    CHECK(sse_wire_replayed_get(&rd, &u, &s, &len, &mark) == 0);
    CHECK(u == 1 && len == 8 && mark == 5);
    CHECK_STR(s, "id: 5\n\n");
    f.len = 0;
    CHECK(sse_wire_replayed_put(&f, 3, 0, NULL, 0, 0) == 0);
    rd = frame_payload(&f, SSE_OP_REPLAYED, 3);
    CHECK(sse_wire_replayed_get(&rd, &u, &s, &len, &mark) == 0);
    CHECK(u == 0 && len == 0 && *s == '\0');

    f.len = 0;
    CHECK(sse_wire_mark_put(&f, SSE_OP_SYNCED, 0x123456789ull) == 0);
    rd = frame_payload(&f, SSE_OP_SYNCED, 0);
    CHECK(sse_wire_mark_get(&rd, &mark) == 0 && mark == 0x123456789ull);
    rd = frame_payload(&f, SSE_OP_SYNCED, 0);
    rd.left = 4;
    CHECK(sse_wire_mark_get(&rd, &mark) == -1);

    f.len = 0;
    CHECK(sse_wire_request_put(&f, SSE_OP_CONNS, 77, "h/a") == 0);
    rd = frame_payload(&f, SSE_OP_CONNS, 77);
    CHECK(sse_wire_request_get(&rd, &s, &len) == 0 && len == 3);
    CHECK_STR(s, "h/a");
    f.len = 0;
    CHECK(sse_wire_request_put(&f, SSE_OP_STATS, 78, NULL) == 0);
    rd = frame_payload(&f, SSE_OP_STATS, 78);
    CHECK(rd.left == 0);

    f.len = 0;
    CHECK(sse_wire_reply_put(&f, 77, "a\t1\t2\n", 6) == 0);
    rd = frame_payload(&f, SSE_OP_REPLY, 77);
    CHECK(sse_wire_reply_get(&rd, &s, &len) == 0 && len == 6);
    CHECK_MEM(s, len, "a\t1\t2\n", 6);
    sse_buf_free(&f);
    sse_buf_free(&deltas);
}

int main(void)
{
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_publish();
    test_result();
    test_line();
    test_link_ops();
    rc = unit_report();
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
