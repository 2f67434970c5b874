/* test_sse_hist.c: the relay's history (sse_hist.c) and frame codec (sse_proto.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "unit.h"
#include "sse_hist.h"
#include "sse_proto.h"

#define SEC APR_USEC_PER_SEC

static void add(sse_hist_t *h, const char *chan, uint64_t seq, const char *id,
                apr_time_t now, unsigned count)
{
    char bytes[64];
    int len = snprintf(bytes, sizeof(bytes), "id: %s\n%s\n\n", id, chan);
    CHECK(sse_hist_add(h, chan, seq, id, bytes, (size_t)len, now, count, 3600 * SEC) == 0);
}

/* Replay as a string of the events' ids, e.g. "11,12,". */
static char *replay(sse_hist_t *h, const char *chans, uint64_t after, int *lost)
{
    const char *list[8];
    char *copy = strdup(chans), *save = NULL, *tok;
    int n = 0;
    sse_buf_t out = { 0 };
    static char ids[1024];
    size_t i;

    for (tok = strtok_r(copy, ",", &save); tok && n < 8; tok = strtok_r(NULL, ",", &save)) {
        list[n++] = tok;
    }
    CHECK(sse_hist_replay(h, list, n, after, &out, lost) == 0);
    ids[0] = '\0';
    for (i = 0; i < out.len;) {
        char *nl = memchr(out.data + i, '\n', out.len - i);
        strncat(ids, out.data + i + 4, (size_t)(nl - out.data - i - 4));
        strcat(ids, ",");
        i = (size_t)(strstr(nl, "\n\n") - out.data) + 2;
    }
    sse_buf_free(&out);
    free(copy);
    return ids;
}

static const char *const AB[] = { "a", "b" };

static void test_replay_order(void)
{
    sse_hist_t *h = sse_hist_create(10);
    uint64_t seq;
    int lost;

    add(h, "a", 10, "10", 0, 100);
    add(h, "b", 11, "11", 0, 100);
    add(h, "a", 12, "mine", 0, 100);
    add(h, "c", 13, "13", 0, 100);
    add(h, "b", 14, "14", 0, 100);
    CHECK_STR(replay(h, "a,b", 10, &lost), "11,mine,14,");
    CHECK(lost == 0);
    CHECK_STR(replay(h, "b,a", 9, &lost), "10,11,mine,14,");
    CHECK(lost == 0);
    CHECK_STR(replay(h, "c", 14, &lost), "");
    CHECK(lost == 0);
    CHECK(sse_hist_lookup(h, "mine", AB, 2, &seq) && seq == 12);
    CHECK(sse_hist_lookup(h, "11", AB, 2, &seq) && seq == 11);
    CHECK(sse_hist_lookup(h, "999", AB, 2, &seq) && seq == 999);   /* a gone server id */
    CHECK(!sse_hist_lookup(h, "mine", AB + 1, 1, &seq));  /* "mine" is a's, not b's */
    CHECK(!sse_hist_lookup(h, "nope", AB, 2, &seq));
    CHECK(!sse_hist_lookup(h, "", AB, 2, &seq));
    CHECK(!sse_hist_lookup(h, "99999999999999999999999", AB, 2, &seq));
    /* Older than the history's start: a loss, and everything held. */
    CHECK_STR(replay(h, "a", 5, &lost), "10,mine,");
    CHECK(lost == 1);
    /* A channel never seen, resumed from within this history: no loss. */
    CHECK_STR(replay(h, "zzz", 12, &lost), "");
    CHECK(lost == 0);
    sse_hist_destroy(h);
}

static void test_trim_count(void)
{
    sse_hist_t *h = sse_hist_create(1);
    size_t events, bytes;
    uint64_t seq;
    int lost, i;
    char id[16];

    for (i = 1; i <= 50; i++) {
        snprintf(id, sizeof(id), "%d", i);
        add(h, "a", (uint64_t)i, id, 0, 5);
    }
    sse_hist_stats(h, &events, &bytes);
    CHECK(events == 5);
    CHECK_STR(replay(h, "a", 45, &lost), "46,47,48,49,50,");
    CHECK(lost == 0);
    CHECK_STR(replay(h, "a", 44, &lost), "46,47,48,49,50,");
    CHECK(lost == 1);
    CHECK(sse_hist_lookup(h, "30", AB, 1, &seq) && seq == 30);
    CHECK_STR(replay(h, "a", seq, &lost), "46,47,48,49,50,");
    CHECK(lost == 1);
    sse_hist_destroy(h);
}

/* A history rebuilt from a store (events 46-50 of "a", 20-22 of "b"; "a"
 * had dropped up to 45 before the stop, which the store says): a resume
 * from before 45 on "a" is lost; a multi-channel resume older than "a"'s
 * oldest is not lost where nothing was dropped. */
static void test_note_gone(void)
{
    sse_hist_t *h = sse_hist_create(20);
    int lost, i;
    char id[16];

    for (i = 20; i <= 22; i++) {
        snprintf(id, sizeof(id), "%d", i);
        add(h, "b", (uint64_t)i, id, 0, 5);
    }
    for (i = 46; i <= 50; i++) {
        snprintf(id, sizeof(id), "%d", i);
        add(h, "a", (uint64_t)i, id, 0, 5);
    }
    CHECK_STR(replay(h, "a", 30, &lost), "46,47,48,49,50,");
    CHECK(lost == 0);           /* not told: 31-45 of "a" silently missing */
    sse_hist_note_gone(h, "a", 45);
    sse_hist_note_gone(h, "zz", 99);            /* not held: nothing */
    CHECK_STR(replay(h, "a", 30, &lost), "46,47,48,49,50,");
    CHECK(lost == 1);
    CHECK(sse_hist_lost(h, AB, 1, 44));
    CHECK(!sse_hist_lost(h, AB, 1, 45));
    CHECK_STR(replay(h, "b,a", 20, &lost), "21,22,46,47,48,49,50,");
    CHECK(lost == 1);
    CHECK(!sse_hist_lost(h, AB + 1, 1, 20));
    CHECK_STR(replay(h, "a", 47, &lost), "48,49,50,");
    CHECK(lost == 0);
    CHECK_STR(replay(h, "b", 19, &lost), "20,21,22,");
    CHECK(lost == 0);
    sse_hist_destroy(h);
}

static void test_trim_age_and_zero(void)
{
    sse_hist_t *h = sse_hist_create(1);
    size_t events, bytes;
    int lost;
    char bytes1[] = "id: 1\n\n";

    CHECK(sse_hist_add(h, "a", 1, "1", bytes1, 7, 0, 100, 10 * SEC) == 0);
    CHECK(sse_hist_add(h, "a", 2, "2", bytes1, 7, 5 * SEC, 100, 10 * SEC) == 0);
    CHECK(sse_hist_add(h, "a", 3, "3", bytes1, 7, 12 * SEC, 100, 10 * SEC) == 0);
    sse_hist_stats(h, &events, &bytes);
    CHECK(events == 2);
    CHECK(bytes == 14);
    replay(h, "a", 1, &lost);
    CHECK(lost == 0);
    replay(h, "a", 0, &lost);
    CHECK(lost == 1);
    /* History off for a channel: nothing kept, a resume over it is lossy. */
    CHECK(sse_hist_add(h, "b", 4, "4", bytes1, 7, 12 * SEC, 0, 0) == 0);
    CHECK_STR(replay(h, "b", 3, &lost), "");
    CHECK(lost == 1);
    CHECK_STR(replay(h, "b", 4, &lost), "");
    CHECK(lost == 0);
    /* Duplicate publisher ids: the newest wins, dropping the old keeps it. */
    add(h, "c", 5, "dup", 12 * SEC, 1);
    add(h, "c", 6, "dup", 12 * SEC, 1);
    {
        static const char *const c[] = { "c" }, *const dc[] = { "d", "c" };
        uint64_t seq;
        CHECK(sse_hist_lookup(h, "dup", c, 1, &seq) && seq == 6);
        /* the same id reused on another channel: dropping one there must
         * not forget the one still held here (found by the hist fuzzer) */
        add(h, "d", 7, "dup", 12 * SEC, 1);
        add(h, "d", 8, "other", 12 * SEC, 1);
        CHECK(sse_hist_lookup(h, "dup", c, 1, &seq) && seq == 6);
        CHECK(sse_hist_lookup(h, "dup", dc, 2, &seq) && seq == 6);
    }
    sse_hist_destroy(h);
}

static void test_proto(void)
{
    sse_buf_t b = { 0 };
    sse_frame_hdr_t h;
    const char *payload, *s;
    size_t n;
    uint32_t v;
    sse_rd_t rd;
    long off = sse_frame_begin(&b, SSE_OP_PUBLISH, 7);

    CHECK(off == 0);
    CHECK(sse_buf_put_str(&b, "chan", 4) == 0);
    CHECK(sse_buf_put_u32(&b, 42) == 0);
    CHECK(sse_buf_put_str(&b, "", 0) == 0);
    sse_frame_end(&b, off);
    CHECK(sse_frame_peek(b.data, b.len - 1, &h, &payload) == 0);
    CHECK(sse_frame_peek(b.data, b.len, &h, &payload) == 1);
    CHECK(h.type == SSE_OP_PUBLISH && h.seq == 7 && h.len == b.len - sizeof(h));
    rd.p = payload;
    rd.left = h.len;
    CHECK(sse_rd_str(&rd, &s, &n) == 0 && n == 4 && !strcmp(s, "chan"));
    CHECK(sse_rd_u32(&rd, &v) == 0 && v == 42);
    CHECK(sse_rd_str(&rd, &s, &n) == 0 && n == 0 && *s == '\0');
    CHECK(sse_rd_u32(&rd, &v) == -1);
    /* A string whose length runs past the payload, or lacks its NUL. */
    rd.p = payload;
    rd.left = 6;
    CHECK(sse_rd_str(&rd, &s, &n) == -1);
    b.data[sizeof(h) + 4 + 4] = 'x';
    rd.p = payload;
    rd.left = h.len;
    CHECK(sse_rd_str(&rd, &s, &n) == -1);
    /* A frame of another format (the op alone: before formats were
     * numbered; a newer one) is refused from its header on, before any
     * of its payload is awaited or read; its format is told. */
    h.type = SSE_OP_PUBLISH;
    memcpy(b.data, &h, sizeof(h));
    CHECK(sse_frame_peek(b.data, sizeof(h), &h, &payload) == -2);
    CHECK(sse_frame_format(&h) == 0);
    h.type = SSE_OP_PUBLISH | (SSE_FRAME_FORMAT + 1) << 16;
    memcpy(b.data, &h, sizeof(h));
    CHECK(sse_frame_peek(b.data, b.len, &h, &payload) == -2);
    CHECK(sse_frame_format(&h) == SSE_FRAME_FORMAT + 1);
    /* An impossible length is refused before any byte is awaited. */
    h.type = SSE_OP_PUBLISH | SSE_FRAME_FORMAT << 16;
    h.len = SSE_PROTO_MAX_FRAME + 1;
    memcpy(b.data, &h, sizeof(h));
    CHECK(sse_frame_peek(b.data, sizeof(h), &h, &payload) == -1);
    sse_buf_consume(&b, 4);
    CHECK(b.len == sizeof(h) + 9 + 4 + 5 - 4);
    sse_buf_free(&b);
}

int main(void)
{
    apr_initialize();
    test_replay_order();
    test_trim_count();
    test_note_gone();
    test_trim_age_and_zero();
    test_proto();
    apr_terminate();
    return unit_report();
}
