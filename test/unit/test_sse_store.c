/* test_sse_store.c: the relay's history on disk (sse_store.c, over LMDB). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "apr_general.h"
#include "unit.h"
#include "sse_store.h"

#define SEC APR_USEC_PER_SEC
#define MB (1024 * 1024)

static char dir[64], data[96];

static void dir_make(void)
{
    strcpy(dir, "/tmp/sse_store_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(data, sizeof(data), "%s/data.mdb", dir);
}

static void dir_remove(void)
{
    char p[360];
    DIR *d = opendir(dir);
    struct dirent *e;

    while (d && (e = readdir(d))) {
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    if (d) {
        closedir(d);
    }
    CHECK(rmdir(dir) == 0);
}

/* How many data.mdb.damaged-* files dir holds. */
static int aside_count(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    while (d && (e = readdir(d))) {
        n += !strncmp(e->d_name, "data.mdb.damaged-", 17);
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static sse_store_t *open_ok(size_t cap, int sync)
{
    const char *err = NULL;
    sse_store_t *st = sse_store_open(dir, cap, sync, 0, &err);

    CHECK(st != NULL);
    CHECK_ERR(err, NULL);
    if (!st) {
        fprintf(stderr, "    open: %s\n", err);
        exit(1);
    }
    return st;
}

/* An event whose bytes are "id: <id>\ndata: <chan>\n\n". */
static int put(sse_store_t *st, const char *chan, uint64_t seq, const char *id,
               apr_time_t t, unsigned count, apr_interval_time_t age)
{
    char bytes[1024];
    const char *err = NULL;
    int len = snprintf(bytes, sizeof(bytes), "id: %s\ndata: %s\n\n", id, chan);
    int rc = sse_store_put(st, chan, seq, id, t, bytes, (size_t)len, count,
                           age, &err);

    if (rc == -2) {
        fprintf(stderr, "    put: %s\n", err);
    }
    return rc;
}

/* What a load gives: "chan/seq/id/t," with each event's bytes checked. */
typedef struct {
    char out[8192];
    int stop_at;
    int calls;
} seen_t;

static int on_event(void *ctx, const char *chan, uint64_t seq, const char *id,
                    apr_time_t t, const char *bytes, size_t len)
{
    seen_t *s = ctx;
    char want[1024], one[128];
    int wlen = snprintf(want, sizeof(want), "id: %s\ndata: %s\n\n", id, chan);

    if (len != 4000) {          /* (the big events of the full-store test) */
        CHECK_MEM(bytes, len, want, (size_t)wlen);
    }
    snprintf(one, sizeof(one), "%s/%llu/%s/%lld,", chan,
             (unsigned long long)seq, id, (long long)(t / SEC));
    if (strlen(s->out) + strlen(one) < sizeof(s->out)) {
        strcat(s->out, one);
    }
    s->calls++;
    return s->stop_at && s->calls == s->stop_at ? 7 : 0;
}

static int ignore_event(void *ctx, const char *chan, uint64_t seq,
                        const char *id, apr_time_t t, const char *bytes,
                        size_t len)
{
    (void)ctx; (void)chan; (void)seq; (void)id; (void)t; (void)bytes; (void)len;
    return 0;
}
#define NULL_EVENT ignore_event

static const char *load(sse_store_t *st, uint64_t *last)
{
    static seen_t s;
    const char *err = NULL;

    memset(&s, 0, sizeof(s));
    CHECK(sse_store_load(st, on_event, NULL, &s, last, &err) == 0);
    CHECK_ERR(err, NULL);
    return s.out;
}

static void on_gone(void *ctx, const char *chan, uint64_t gone)
{
    char one[64];

    snprintf(one, sizeof(one), "%s:%llu,", chan, (unsigned long long)gone);
    if (strlen(ctx) + strlen(one) < 512) {
        strcat(ctx, one);
    }
}

/* What a load says each channel dropped: "chan:gone,". */
static const char *gones(sse_store_t *st)
{
    static char out[512];
    uint64_t last;
    const char *err = NULL;

    out[0] = '\0';
    CHECK(sse_store_load(st, NULL_EVENT, on_gone, out, &last, &err) == 0);
    return out;
}

static size_t held(sse_store_t *st)
{
    size_t bytes, events;

    sse_store_stats(st, &bytes, &events);
    return events;
}

static void test_round_trip(void)
{
    sse_store_t *st;
    uint64_t last = 99;
    seen_t s;
    const char *err = NULL;
    size_t bytes, events;

    dir_make();
    st = open_ok(MB, SSE_STORE_SYNC_NO);
    CHECK_STR(load(st, &last), "");
    CHECK(last == 0);
    CHECK(put(st, "a", 10, "10", 1 * SEC, 100, 0) == 0);
    CHECK(put(st, "b", 11, "11", 2 * SEC, 100, 0) == 0);
    CHECK(put(st, "a", 12, "mine", 3 * SEC, 100, 0) == 0);
    /* A channel that sorts between "a" and "a\0...", and one after. */
    CHECK(put(st, "a\x01", 13, "13", 4 * SEC, 100, 0) == 0);
    CHECK(put(st, "ab", 14, "", 5 * SEC, 100, 0) == 0);
    CHECK(put(st, "b", 15, "15", 6 * SEC, 100, 0) == 0);
    CHECK_STR(load(st, &last),
              "a/10/10/1,b/11/11/2,a/12/mine/3,a\x01/13/13/4,ab/14//5,b/15/15/6,");
    CHECK(last == 15);
    sse_store_stats(st, &bytes, &events);
    CHECK(events == 6);
    CHECK(bytes >= 4 * 4096 && bytes <= MB);
    /* fn's non-zero return stops the load and is returned. */
    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    CHECK(sse_store_load(st, on_event, NULL, &s, &last, &err) == 7);
    CHECK_STR(s.out, "a/10/10/1,b/11/11/2,");
    /* Channel keys: empty or beyond LMDB's key size: refused, not kept. */
    {
        char big[600];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        CHECK(sse_store_put(st, big, 16, "16", 0, "x", 1, 10, 0, &err) == -2);
        CHECK_ERR(err, "channel key of 599 bytes");
        err = NULL;
        CHECK(sse_store_put(st, "", 16, "16", 0, "x", 1, 10, 0, &err) == -2);
        CHECK_ERR(err, data);
        /* The longest channel key mod_sse makes (namespace, '/',
         * channel: 383 bytes) fits. */
        big[383] = '\0';
        CHECK(put(st, big, 16, "16", 7 * SEC, 10, 0) == 0);
    }
    /* A seq that does not rise: refused, nothing written. */
    err = NULL;
    CHECK(sse_store_put(st, "a", 16, "x", 0, "x", 1, 10, 0, &err) == -2);
    CHECK_ERR(err, "seq 16 is not after the last stored, 16");
    CHECK(held(st) == 7);
    sse_store_close(st);

    /* Reopened: everything is still there. */
    st = open_ok(MB, SSE_STORE_SYNC_ALWAYS);
    CHECK(held(st) == 7);
    {
        const char *want = "a/10/10/1,b/11/11/2,a/12/mine/3,a\x01/13/13/4,"
                           "ab/14//5,b/15/15/6,xxxx";
        CHECK(strncmp(load(st, &last), want, strlen(want)) == 0);
    }
    CHECK(last == 16);
    CHECK(put(st, "a", 17, "17", 8 * SEC, 100, 0) == 0);
    sse_store_close(st);
    dir_remove();
}

static void test_trim(void)
{
    sse_store_t *st;
    uint64_t last, seq;
    char id[16];

    dir_make();
    st = open_ok(MB, SSE_STORE_SYNC_NO);
    /* By count: a keeps its newest 3, b is left alone. */
    CHECK(put(st, "b", 1, "b1", 0, 3, 0) == 0);
    for (seq = 2; seq <= 11; seq++) {
        snprintf(id, sizeof(id), "%llu", (unsigned long long)seq);
        CHECK(put(st, "a", seq, id, (apr_time_t)seq * SEC, 3, 0) == 0);
    }
    CHECK(put(st, "ab", 12, "ab", 12 * SEC, 3, 0) == 0);
    CHECK_STR(load(st, &last), "b/1/b1/0,a/9/9/9,a/10/10/10,a/11/11/11,ab/12/ab/12,");
    CHECK(held(st) == 5);
    /* A lower count trims at the next event. */
    CHECK(put(st, "a", 13, "13", 13 * SEC, 1, 0) == 0);
    CHECK_STR(load(st, &last), "b/1/b1/0,ab/12/ab/12,a/13/13/13,");
    /* By age, from the new event's time: older than 10 s goes. */
    CHECK(put(st, "c", 20, "20", 100 * SEC, 100, 10 * SEC) == 0);
    CHECK(put(st, "c", 21, "21", 105 * SEC, 100, 10 * SEC) == 0);
    CHECK(put(st, "c", 22, "22", 110 * SEC, 100, 10 * SEC) == 0);
    CHECK(put(st, "c", 23, "23", 112 * SEC, 100, 10 * SEC) == 0);
    CHECK_STR(load(st, &last),
              "b/1/b1/0,ab/12/ab/12,a/13/13/13,c/21/21/105,c/22/22/110,c/23/23/112,");
    CHECK(put(st, "c", 24, "24", 200 * SEC, 100, 10 * SEC) == 0);
    CHECK_STR(load(st, &last), "b/1/b1/0,ab/12/ab/12,a/13/13/13,c/24/24/200,");
    /* Count 0: the event is not kept and the channel is emptied, but its
     * seq is the highest given. */
    CHECK(put(st, "a", 30, "30", 300 * SEC, 0, 0) == 0);
    CHECK(put(st, "zz", 31, "31", 300 * SEC, 0, 0) == 0);
    CHECK_STR(load(st, &last), "b/1/b1/0,ab/12/ab/12,c/24/24/200,");
    CHECK(last == 31);
    CHECK(held(st) == 3);
    /* a starts again from nothing. */
    CHECK(put(st, "a", 32, "32", 301 * SEC, 2, 0) == 0);
    CHECK_STR(load(st, &last), "b/1/b1/0,ab/12/ab/12,c/24/24/200,a/32/32/301,");
    CHECK_STR(gones(st), "c:23,");
    /* What each channel dropped is kept across the copy made at open, and
     * can be set (a handover). */
    sse_store_close(st);
    st = open_ok(MB, SSE_STORE_SYNC_NO);
    CHECK_STR(gones(st), "c:23,");
    {
        const char *err = NULL;
        CHECK(sse_store_set_gone(st, "ab", 11, &err) == 0);
        CHECK(sse_store_set_gone(st, "none", 11, &err) == -1);
    }
    CHECK_STR(gones(st), "ab:11,c:23,");
    CHECK(put(st, "ab", 33, "33", 302 * SEC, 3, 0) == 0);
    CHECK_STR(gones(st), "ab:11,c:23,");
    sse_store_close(st);
    dir_remove();
}

static void test_last_seq(void)
{
    sse_store_t *st;
    const char *err = NULL;
    uint64_t last;

    dir_make();
    st = open_ok(MB, SSE_STORE_SYNC_EVERYSEC);
    CHECK(put(st, "a", 1000, "x", 0, 5, 0) == 0);
    CHECK(put(st, "a", 2000, "y", 0, 5, 0) == 0);
    CHECK(sse_store_sync(st) == 0);
    sse_store_close(st);
    st = open_ok(MB, SSE_STORE_SYNC_EVERYSEC);
    CHECK_STR(load(st, &last), "a/1000/x/0,a/2000/y/0,");
    CHECK(last == 2000);
    /* Every event of the channel trimmed: the seq is still remembered. */
    CHECK(put(st, "a", 2001, "z", 0, 0, 0) == 0);
    sse_store_close(st);
    st = open_ok(MB, SSE_STORE_SYNC_NO);
    CHECK_STR(load(st, &last), "");
    CHECK(last == 2001);
    CHECK(held(st) == 0);
    CHECK(sse_store_put(st, "a", 2001, "z", 0, "z", 1, 5, 0, &err) == -2);
    CHECK_ERR(err, "seq 2001 is not after the last stored, 2001");
    CHECK(put(st, "a", 2002, "z", 0, 5, 0) == 0);
    sse_store_close(st);
    dir_remove();
}

/* A store of 1 MB: filled, refused whole, and room again once another
 * channel lets its events go. */
static void test_full(void)
{
    sse_store_t *st;
    static char big[4000];
    const char *err = NULL;
    uint64_t seq = 1, last, good;
    size_t bytes, before;
    int rc = 0, i;
    seen_t s;

    dir_make();
    memset(big, 'e', sizeof(big));
    st = open_ok(MB, SSE_STORE_SYNC_NO);
    for (i = 0; i < 60; i++, seq++) {
        CHECK(sse_store_put(st, "other", seq, "o", 0, big, sizeof(big), 1000, 0,
                            &err) == 0);
    }
    while (seq < 10000
           && (rc = sse_store_put(st, "a", seq, "a", 0, big, sizeof(big), 100000,
                                  0, &err)) == 0) {
        seq++;
    }
    CHECK(rc == -1);
    good = seq - 1;
    sse_store_stats(st, &bytes, &before);
    CHECK(bytes <= MB);
    CHECK(before > 150 && before < 260);
    /* Refused whole: nothing half-written, last_seq as it was. */
    CHECK(held(st) == before);
    memset(&s, 0, sizeof(s));
    CHECK(sse_store_load(st, on_event, NULL, &s, &last, &err) == 0);
    CHECK(last == good);
    CHECK((size_t)s.calls == before);
    sse_store_close(st);
    st = open_ok(MB, SSE_STORE_SYNC_NO);
    CHECK(held(st) == before);
    memset(&s, 0, sizeof(s));
    CHECK(sse_store_load(st, on_event, NULL, &s, &last, &err) == 0);
    CHECK(last == good);
    /* Another try may or may not find room (LMDB reuses the pages freed by
     * a transaction two transactions later); it is whole either way. */
    rc = sse_store_put(st, "a", seq, "a", 0, big, sizeof(big), 100000, 0, &err);
    CHECK(rc == 0 || rc == -1);
    CHECK(held(st) == before + (rc == 0));
    before += (rc == 0);
    seq++;
    /* "other" now keeps 1, the new one: its 60 older events go, and a has
     * room. */
    seq += 2;
    CHECK(sse_store_put(st, "other", seq++, "o", 0, big, sizeof(big), 1, 0,
                        &err) == 0);
    if (!CHECK(held(st) == before - 60 + 1)) {
        fprintf(stderr, "    held %zu, before %zu\n", held(st), before);
    }
    for (i = 0; i < 40; i++, seq++) {
        CHECK(sse_store_put(st, "a", seq, "a", 0, big, sizeof(big), 100000, 0,
                            &err) == 0);
    }
    /* A channel over its own limit frees its own room. */
    for (i = 0; i < 200; i++, seq++) {
        rc = sse_store_put(st, "a", seq, "a", 0, big, sizeof(big), 150, 0, &err);
        if (rc) {
            break;
        }
    }
    CHECK(rc == 0);
    sse_store_stats(st, &bytes, &before);
    CHECK(bytes <= MB);
    CHECK(before == 151);
    sse_store_close(st);
    dir_remove();
}

/* Trimming frees pages and LMDB reuses them: the file settles. */
static void test_steady_size(void)
{
    sse_store_t *st;
    static char ev[300];
    const char *err = NULL;
    char chan[8];
    size_t bytes, events, mid = 0;
    uint64_t seq;

    dir_make();
    memset(ev, 'v', sizeof(ev));
    st = open_ok(8 * MB, SSE_STORE_SYNC_NO);
    for (seq = 1; seq <= 20000; seq++) {
        snprintf(chan, sizeof(chan), "c%d", (int)(seq % 5));
        if (sse_store_put(st, chan, seq, "i", 0, ev, sizeof(ev), 50, 0, &err)) {
            CHECK(0);
            break;
        }
        if (seq == 2000) {
            sse_store_stats(st, &mid, &events);
        }
    }
    sse_store_stats(st, &bytes, &events);
    CHECK(events == 250);
    CHECK(bytes <= mid + 16 * 4096);
    CHECK(bytes < MB / 2);
    sse_store_close(st);
    dir_remove();
}

/* Writes n bytes of b at off in the data file (or truncates to off). */
static void poke(off_t off, const void *b, size_t n, int truncate_it)
{
    int fd = open(data, O_WRONLY);

    CHECK(fd >= 0);
    if (truncate_it) {
        CHECK(ftruncate(fd, off) == 0);
    }
    else {
        CHECK(pwrite(fd, b, n, off) == (ssize_t)n);
    }
    close(fd);
}

static off_t file_size(void)
{
    struct stat sb;

    return stat(data, &sb) == 0 ? sb.st_size : -1;
}

/* A damaged file: refused by sse_store_check and a strict open (the file
 * left as it is), then moved aside by an open that is not strict, which
 * starts empty. */
static void refused(const char *what)
{
    const char *err = NULL;
    char want[160];
    off_t size = file_size();
    int asides = aside_count();
    sse_store_t *st;

    CHECK(sse_store_check(dir, MB, &err) == -1);
    CHECK_ERR(err, what);
    st = sse_store_open(dir, MB, SSE_STORE_SYNC_NO, 1, &err);
    CHECK(st == NULL);
    CHECK_ERR(err, what);
    snprintf(want, sizeof(want), "remove %s to start with an empty history", data);
    CHECK_ERR(err, want);
    if (st) {
        sse_store_close(st);
    }
    CHECK(file_size() == size);
    st = sse_store_open(dir, MB, SSE_STORE_SYNC_NO, 0, &err);
    CHECK(st != NULL);
    CHECK_ERR(err, what);
    snprintf(want, sizeof(want), "moved to %s.damaged-", data);
    CHECK_ERR(err, want);
    CHECK_ERR(err, "the history starts empty");
    CHECK(aside_count() == asides + 1);
    if (st) {
        CHECK(held(st) == 0);
        sse_store_close(st);
    }
}

static void fill(int n)
{
    sse_store_t *st;
    char chan[16], id[16];
    int i;

    unlink(data);
    st = open_ok(MB, SSE_STORE_SYNC_NO);
    for (i = 1; i <= n; i++) {
        snprintf(chan, sizeof(chan), "c%d", i % 7);
        snprintf(id, sizeof(id), "%d", i);
        CHECK(put(st, chan, (uint64_t)i, id, 0, 1000, 0) == 0);
    }
    sse_store_close(st);
}

static void test_damage(void)
{
    static unsigned char junk[65536];
    sse_store_t *st;
    const char *err = NULL;
    off_t size;
    int i;

    dir_make();
    for (i = 0; i < (int)sizeof(junk); i++) {
        junk[i] = (unsigned char)rand();
    }
    /* Truncated to half, to one page, to a few bytes. */
    fill(3000);
    size = file_size();
    CHECK(size > 40 * 4096);
    poke(size / 2, NULL, 0, 1);
    refused("is truncated");
    fill(3000);
    poke(4096, NULL, 0, 1);
    refused("is truncated");
    fill(3000);
    poke(100, NULL, 0, 1);
    refused("is truncated");
    /* Truncated to nothing: LMDB starts afresh (nothing was left). */
    poke(0, NULL, 0, 1);
    st = open_ok(MB, SSE_STORE_SYNC_NO);
    CHECK(held(st) == 0);
    sse_store_close(st);

    /* Not LMDB at all; random bytes over the header; over everything. */
    fill(10);
    for (i = 0; i < 8192; i += 13) {
        poke(i, "hello, world\n", 13, 0);
    }
    refused("is not an LMDB data file");
    fill(10);
    poke(0, junk, 8192, 0);
    refused("is not an LMDB data file");
    fill(3000);
    size = file_size();
    poke(8192, junk, sizeof(junk), 0);
    poke(8192 + sizeof(junk), junk, sizeof(junk), 0);
    refused(data);

    /* An LMDB file of another format version, and one that is not ours. */
    {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        MDB_val k = { 6, "format" }, v = { 4, "\0\0\0\1" };

        fill(5);
        CHECK(mdb_env_create(&env) == 0);
        mdb_env_set_maxdbs(env, 4);
        CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
        CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
        CHECK(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
        CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
        CHECK(mdb_txn_commit(txn) == 0);
        mdb_env_close(env);
        refused("is of format version 1, this mod_sse reads version 2");

        unlink(data);
        CHECK(mdb_env_create(&env) == 0);
        CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
        CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
        CHECK(mdb_dbi_open(txn, NULL, 0, &dbi) == 0);
        CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
        CHECK(mdb_txn_commit(txn) == 0);
        mdb_env_close(env);
        refused("is not a mod_sse history");
    }
    /* A directory that does not exist: no advice to remove anything. */
    err = NULL;
    CHECK(sse_store_open("/tmp/sse_store_no/such", MB, SSE_STORE_SYNC_NO, 0,
                         &err) == NULL);
    CHECK_ERR(err, "cannot be opened");
    CHECK(err && !strstr(err, "remove"));
    CHECK(sse_store_open(dir, MB, 42, 0, &err) == NULL);
    CHECK_ERR(err, "unknown sync mode");
    dir_remove();
}

/* In a child: open the damaged store as the relay does, read it, write
 * 400 events to 9 channels (trimming to 50 each), read it again.  Exit
 * 0 when every event read is whole (its bytes as put() made them, seqs
 * rising; all there when opened again), 3 when not, 4 when the store
 * was neither opened clean nor moved aside. */
static int damage_child(int *moved)
{
    pid_t pid = fork();
    int status;

    if (pid == 0) {
        const char *err = NULL;
        sse_store_t *st = sse_store_open(dir, MB, SSE_STORE_SYNC_NO, 0, &err);
        uint64_t last = 0, i;
        int n0;
        seen_t s;
        char chan[16], id[24];

        if (!st) {
            _exit(4);
        }
        if (err && !strstr(err, "moved to")) {
            _exit(4);
        }
        memset(&s, 0, sizeof(s));
        if (sse_store_load(st, on_event, NULL, &s, &last, &err) != 0) {
            _exit(3);
        }
        for (i = 1; i <= 400; i++) {
            snprintf(chan, sizeof(chan), "d%d", (int)(i % 9));
            snprintf(id, sizeof(id), "%llu", (unsigned long long)(last + i));
            if (put(st, chan, last + i, id, 0, 50, 0) != 0) {
                _exit(3);
            }
        }
        sse_store_close(st);
        n0 = s.calls;
        st = sse_store_open(dir, MB, SSE_STORE_SYNC_NO, 0, &err);
        memset(&s, 0, sizeof(s));
        if (!st || err || sse_store_load(st, on_event, NULL, &s, &last, &err) != 0
            || s.calls != n0 + 400 || unit_failed > 0) {
            _exit(3);
        }
        sse_store_close(st);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "    damage child: signal %d\n", WTERMSIG(status));
        return -1;
    }
    *moved += aside_count() > 0;
    return WEXITSTATUS(status);
}

/* Random damage to a store of 3000 events, 300 times (a page of random
 * bytes, or a few bytes changed, somewhere after the two meta pages):
 * the relay's side of the store (open, load, put, open again) never
 * crashes and never gives an event that is not whole; each store is
 * either used or moved aside. */
static void test_random_damage(void)
{
    static unsigned char junk[4096];
    static char *pristine;
    off_t size;
    int seed, i, fd, rc, failed = 0, moved = 0;

    dir_make();
    fill(3000);
    size = file_size();
    CHECK(size > 40 * 4096);
    pristine = malloc((size_t)size);
    fd = open(data, O_RDONLY);
    CHECK(fd >= 0 && read(fd, pristine, (size_t)size) == (ssize_t)size);
    close(fd);
    for (seed = 1; seed <= 300; seed++) {
        off_t pages = size / 4096;
        char p[160];
        snprintf(p, sizeof(p), "%s/lock.mdb", dir);
        unlink(p);
        dir_remove();
        CHECK(mkdir(dir, 0700) == 0);
        fd = open(data, O_WRONLY | O_CREAT, 0600);
        CHECK(fd >= 0 && write(fd, pristine, (size_t)size) == (ssize_t)size);
        close(fd);
        srand((unsigned)seed);
        if (seed % 2) {
            for (i = 0; i < 4096; i++) {
                junk[i] = (unsigned char)rand();
            }
            poke((2 + rand() % (pages - 2)) * 4096, junk, 4096, 0);
        }
        else {
            int n = 1 + rand() % 8;
            for (i = 0; i < n; i++) {
                unsigned char b = (unsigned char)rand();
                poke(2 * 4096 + rand() % ((pages - 2) * 4096), &b, 1, 0);
            }
        }
        if ((rc = damage_child(&moved)) != 0) {
            failed++;
            fprintf(stderr, "    random damage, seed %d: failed (%d)\n", seed, rc);
        }
    }
    CHECK(failed == 0);
    CHECK(moved > 0);
    printf("random damage: 300 stores, %d moved aside, %d used, %d failed\n",
           moved, 300 - moved - failed, failed);
    free(pristine);
    dir_remove();
}

/* Two relays (two httpd with one SSEHistoryPath) never share a store. */
static void test_owner(void)
{
    const char *err = NULL;
    sse_store_t *st, *second;

    dir_make();
    st = open_ok(MB, SSE_STORE_SYNC_NO);
    CHECK(put(st, "o", 1, "1", 0, 10, 0) == 0);
    second = sse_store_open(dir, MB, SSE_STORE_SYNC_NO, 0, &err);
    CHECK(second == NULL);
    CHECK_ERR(err, "another process has it open");
    CHECK(err && !strstr(err, "remove"));
    sse_store_close(st);
    st = open_ok(MB, SSE_STORE_SYNC_NO);        /* free again */
    CHECK(held(st) == 1);
    sse_store_close(st);
    dir_remove();
}

static void test_sync_modes(void)
{
    int modes[] = { SSE_STORE_SYNC_NO, SSE_STORE_SYNC_EVERYSEC,
                    SSE_STORE_SYNC_ALWAYS };
    uint64_t last;
    int i;

    dir_make();
    for (i = 0; i < 3; i++) {
        sse_store_t *st = open_ok(MB, modes[i]);
        CHECK(put(st, "s", (uint64_t)i + 1, "x", 0, 10, 0) == 0);
        CHECK(sse_store_sync(st) == 0);
        sse_store_close(st);
    }
    {
        sse_store_t *st = open_ok(MB, SSE_STORE_SYNC_NO);
        CHECK_STR(load(st, &last), "s/1/x/0,s/2/x/0,s/3/x/0,");
        sse_store_close(st);
    }
    dir_remove();
}

int main(void)
{
    apr_initialize();
    test_round_trip();
    test_trim();
    test_last_seq();
    test_full();
    test_steady_size();
    test_damage();
    test_random_damage();
    test_owner();
    test_sync_modes();
    apr_terminate();
    return unit_report();
}
