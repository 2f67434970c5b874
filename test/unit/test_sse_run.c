/* test_sse_run.c: EVENT frames and the runs a broker reads them in
 * (sse_event_frame_put, sse_run_* in sse_proto.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "sse_proto.h"

static void put(sse_buf_t *b, const char *chan, const char *ev, uint64_t seq)
{
    static uint32_t fseq;

    CHECK(sse_event_frame_put(b, ++fseq, chan, strlen(chan), ev, strlen(ev),
                              seq) == 0);
}

/* the run's events from the k-th on, copied out (static buffer) */
static const char *bytes_from(const sse_run_t *run, unsigned k, size_t *len)
{
    static char out[SSE_RUN_MAX_BYTES + 1];

    *len = sse_run_len(run, k);
    sse_run_copy(run, k, out);
    return out;
}

static void test_one_channel(void)
{
    sse_buf_t b = { 0 };
    sse_run_t run;
    size_t len;
    const char *got;
    long used;

    put(&b, "news", "data: a\n\n", 7);
    put(&b, "news", "data: b\n\n", 8);
    put(&b, "news", "data: c\n\n", 1ull << 33);     /* seq above 32 bits */
    used = sse_run_read(b.data, b.len, &run);
    CHECK(used == (long)b.len);
    CHECK(run.n == 3);
    CHECK_MEM(run.name, run.nlen, "news", 4);
    CHECK(run.ev[2].seq == 1ull << 33);
    got = bytes_from(&run, 0, &len);
    CHECK_LIT(got, len, "data: a\n\ndata: b\n\ndata: c\n\n");
    /* a stream whose replay had seq 7 gets the rest */
    CHECK(sse_run_first_after(&run, 0) == 0);
    CHECK(sse_run_first_after(&run, 7) == 1);
    got = bytes_from(&run, 1, &len);
    CHECK_LIT(got, len, "data: b\n\ndata: c\n\n");
    CHECK(sse_run_first_after(&run, 1ull << 33) == 3);
    CHECK(sse_run_len(&run, 3) == 0);
    sse_buf_free(&b);
}

/* another channel, another frame type, a half frame: the run stops there */
static void test_stops(void)
{
    sse_buf_t b = { 0 };
    sse_run_t run;
    size_t first, len;
    long used, off;
    const char *got;

    put(&b, "a", "data: 1\n\n", 1);
    put(&b, "a", "data: 2\n\n", 2);
    first = b.len;
    put(&b, "ab", "data: 3\n\n", 3);        /* "a" is a prefix: not the same */
    used = sse_run_read(b.data, b.len, &run);
    CHECK(used == (long)first);
    CHECK(run.n == 2);
    used = sse_run_read(b.data + first, b.len - first, &run);
    CHECK(used == (long)(b.len - first));
    CHECK(run.n == 1);
    CHECK_MEM(run.name, run.nlen, "ab", 2);
    got = bytes_from(&run, 0, &len);
    CHECK_LIT(got, len, "data: 3\n\n");

    /* another request between them ends the run */
    b.len = first;
    off = sse_frame_begin(&b, SSE_OP_STATS, 9);
    sse_frame_end(&b, off);
    put(&b, "a", "data: 4\n\n", 4);
    CHECK(sse_run_read(b.data, b.len, &run) == (long)first);
    CHECK(run.n == 2);
    CHECK(!run.has_sync);

    /* the second frame not all read yet: the run is the first alone */
    b.len = 0;
    put(&b, "a", "data: 1\n\n", 1);
    first = b.len;
    put(&b, "a", "data: 2\n\n", 2);
    CHECK(sse_run_read(b.data, b.len - 1, &run) == (long)first);
    CHECK(run.n == 1);
    sse_buf_free(&b);
}

static void sync_put(sse_buf_t *b, uint64_t mark)
{
    long off = sse_frame_begin(b, SSE_OP_SYNC, 9);

    CHECK(sse_buf_put_u64(b, mark) == 0);
    sse_frame_end(b, off);
}

/* SYNCs between a run's events are part of it (the last one's mark is
 * kept); one after its last event, or before another channel's, is not */
static void test_sync_inside(void)
{
    sse_buf_t b = { 0 };
    sse_run_t run;
    size_t len, end;
    const char *got;

    put(&b, "a", "data: 1\n\n", 1);
    sync_put(&b, 5);
    put(&b, "a", "data: 2\n\n", 2);
    sync_put(&b, 6);
    sync_put(&b, (7ull << 32) | 1);
    put(&b, "a", "data: 3\n\n", 3);
    end = b.len;
    sync_put(&b, 8);                        /* after the last: not in it */
    put(&b, "b", "data: 4\n\n", 4);
    CHECK(sse_run_read(b.data, b.len, &run) == (long)end);
    CHECK(run.n == 3);
    CHECK(run.has_sync && run.sync_mark == ((7ull << 32) | 1));
    got = bytes_from(&run, 0, &len);
    CHECK_LIT(got, len, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    /* the trailing SYNC is read on its own, then "b" */
    CHECK(sse_run_read(b.data + end, b.len - end, &run) == 0);

    /* a run with no SYNC inside says so; a SYNC first is no run at all */
    b.len = 0;
    put(&b, "a", "data: 1\n\n", 1);
    end = b.len;
    sync_put(&b, 9);
    CHECK(sse_run_read(b.data, b.len, &run) == (long)end);
    CHECK(run.n == 1 && !run.has_sync);
    CHECK(sse_run_read(b.data + end, b.len - end, &run) == 0 && run.n == 0);

    /* a SYNC cut short inside a run is malformed */
    b.len = 0;
    put(&b, "a", "data: 1\n\n", 1);
    {
        long off = sse_frame_begin(&b, SSE_OP_SYNC, 9);
        CHECK(sse_buf_put_u32(&b, 7) == 0);
        sse_frame_end(&b, off);
    }
    put(&b, "a", "data: 2\n\n", 2);
    CHECK(sse_run_read(b.data, b.len, &run) == -1);
    sse_buf_free(&b);
}

/* u64s go as two u32s, high first; a short one is refused */
static void test_u64(void)
{
    sse_buf_t b = { 0 };
    uint32_t hi, lo;
    uint64_t v;
    sse_rd_t rd;

    CHECK(sse_buf_put_u64(&b, (5ull << 32) | 9) == 0);
    CHECK(sse_buf_put_u64(&b, UINT64_MAX) == 0);
    rd.p = b.data;
    rd.left = b.len;
    CHECK(sse_rd_u32(&rd, &hi) == 0 && sse_rd_u32(&rd, &lo) == 0);
    CHECK(hi == 5 && lo == 9);
    CHECK(sse_rd_u64(&rd, &v) == 0 && v == UINT64_MAX && rd.left == 0);
    rd.p = b.data;
    rd.left = 7;
    CHECK(sse_rd_u64(&rd, &v) == -1 && rd.left == 7);
    sse_buf_free(&b);
}

static void test_limits(void)
{
    sse_buf_t b = { 0 };
    sse_run_t run;
    size_t one, i;
    char *big = malloc(SSE_RUN_MAX_BYTES);
    long used;

    for (i = 0; i < SSE_RUN_MAX_EVENTS + 5; i++) {
        put(&b, "many", "data: x\n\n", i + 1);
    }
    used = sse_run_read(b.data, b.len, &run);
    CHECK(run.n == SSE_RUN_MAX_EVENTS);
    CHECK(run.ev[SSE_RUN_MAX_EVENTS - 1].seq == SSE_RUN_MAX_EVENTS);
    CHECK(sse_run_read(b.data + used, b.len - (size_t)used, &run)
          == (long)(b.len - (size_t)used));
    CHECK(run.n == 5);
    CHECK(run.ev[0].seq == SSE_RUN_MAX_EVENTS + 1);

    /* bytes: an event that would pass the limit starts the next run, but
     * one larger than the limit is a run of its own */
    b.len = 0;
    memset(big, 'x', SSE_RUN_MAX_BYTES);
    CHECK(sse_event_frame_put(&b, 1, "big", 3, big, SSE_RUN_MAX_BYTES / 2, 1) == 0);
    one = b.len;
    CHECK(sse_event_frame_put(&b, 2, "big", 3, big, SSE_RUN_MAX_BYTES / 2, 2) == 0);
    CHECK(sse_event_frame_put(&b, 3, "big", 3, big, 1, 3) == 0);
    used = sse_run_read(b.data, b.len, &run);
    CHECK(run.n == 2);
    CHECK(sse_run_len(&run, 0) == SSE_RUN_MAX_BYTES);
    CHECK(sse_run_read(b.data + used, b.len - (size_t)used, &run) > 0);
    CHECK(run.n == 1 && run.ev[0].seq == 3);
    b.len = 0;
    CHECK(sse_event_frame_put(&b, 1, "big", 3, big, SSE_RUN_MAX_BYTES, 1) == 0);
    CHECK(sse_event_frame_put(&b, 2, "big", 3, big, SSE_RUN_MAX_BYTES, 2) == 0);
    used = sse_run_read(b.data, b.len, &run);
    CHECK(run.n == 1);
    CHECK(used > 0 && (size_t)used == one + SSE_RUN_MAX_BYTES / 2);
    free(big);
    sse_buf_free(&b);
}

/* a malformed EVENT (payload cut short) is an error, even after good ones */
static void test_malformed(void)
{
    sse_buf_t b = { 0 };
    sse_run_t run;
    long off;

    put(&b, "a", "data: 1\n\n", 1);
    off = sse_frame_begin(&b, SSE_OP_EVENT, 7);
    CHECK(sse_buf_put_str(&b, "a", 1) == 0);
    sse_frame_end(&b, off);
    CHECK(sse_run_read(b.data, b.len, &run) == -1);
    sse_buf_free(&b);
}

int main(void)
{
    test_one_channel();
    test_stops();
    test_sync_inside();
    test_u64();
    test_limits();
    test_malformed();
    return unit_report();
}
