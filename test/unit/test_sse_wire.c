/* test_sse_wire.c: the relay's PUBLISH frame, put by the publish handler and
 * tools/sse-publish, got by the relay: what one writes the other reads
 * back, field by field, and what the relay must refuse it refuses. */
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
        CHECK(h.type == SSE_OP_PUBLISH);
        CHECK((uint32_t)(h.seq - before) < 1000);
    }
    sse_buf_free(&f);
}

int main(void)
{
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_publish();
    rc = unit_report();
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
