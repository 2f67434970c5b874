/*
 * sse_store.c: the relay's event history on disk, over LMDB (see
 * sse_store.h).
 *
 * One LMDB environment in dir, three named databases:
 *
 *   "meta"  "format"   -> u32: SSE_STORE_FORMAT, refused when it differs
 *           "last_seq" -> u64: the highest seq ever stored, u32 its CRC-32
 *   "seq"   seq        -> t (i64), u16 channel length, u32 id length,
 *                         u32 CRC-32 of the rest of the record,
 *                         channel, id, bytes: the events, in seq order
 *   "chan"  chan       -> u64: how many events chan holds, u64: the
 *                         highest seq it dropped (a resume from before it
 *                         is told the history was lost)
 *           chan \0 seq -> t (i64): chan's events, oldest first
 *
 * Numbers are big-endian, so LMDB's byte order is numeric order.  A
 * channel's count record sorts just before its events ("a" < "a\0..." <
 * "aX"), so one cursor finds the count and then the oldest events:
 * trimming costs what it drops, not what is held.  Loading walks "seq"
 * in key order and gives each record as it reads it.
 *
 * Before LMDB opens an existing data file it is checked: the two meta
 * pages (magic, version, page size, that the file is as long as they
 * say); then a child process reads every event (seq order, CRCs) and
 * writes them into a new data file, which replaces the old one.  LMDB
 * trusts its pages and may crash on a damaged one, when reading or later
 * when writing: the child's crash is a refusal, not the relay's, and the
 * relay only ever writes to pages LMDB itself made from records that
 * read back whole.  The "chan" database and the free list are not read:
 * the copy makes them anew.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>
#include <zlib.h>

#include "sse_store.h"

#define SSE_STORE_FORMAT 2u
#define REC_HEAD 18             /* t (8), channel length (2), id length (4), crc (4) */
#define REC_CRC 14

struct sse_store_t {
    MDB_env *env;
    MDB_dbi meta, seqs, chans;
    int sync;
    uint64_t last_seq;
    size_t maxkey;
    char *path;                 /* dir/data.mdb, for messages */
    int lock;                   /* dir/owner.lock, flock()ed while open */
    char *buf;                  /* scratch: keys, records, load's strings */
    size_t bufcap;
    char err[512];
};

static char open_err[2 * 4096 + 256];

/* --- big-endian numbers -------------------------------------------------- */

static void be64_put(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--, v >>= 8) {
        p[i] = (unsigned char)v;
    }
}

static uint64_t be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t be32_get(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16
         | (uint32_t)p[2] << 8 | p[3];
}

static int buf_need(sse_store_t *st, size_t n)
{
    char *b;

    if (n <= st->bufcap) {
        return 0;
    }
    b = realloc(st->buf, n);
    if (!b) {
        return -1;
    }
    st->buf = b;
    st->bufcap = n;
    return 0;
}

/* A "seq" record's parts; 0, or -1 when its lengths do not fit. */
typedef struct {
    apr_time_t t;
    const char *chan, *id, *bytes;
    size_t clen, idlen, len;
} rec_t;

/* CRC-32 (zlib's) of a record but its own crc field. */
static uint32_t rec_crc(const unsigned char *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);

    c = crc32(c, p, REC_CRC);
    return (uint32_t)crc32_z(c, p + REC_HEAD, n - REC_HEAD);
}

/* "last_seq": the number, then its CRC-32. */
static void last_seq_put(unsigned char *p, uint64_t seq)
{
    be64_put(p, seq);
    be32_put(p + 8, (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, 8));
}

static int last_seq_get(const MDB_val *v, uint64_t *seq)
{
    const unsigned char *p = v->mv_data;

    if (v->mv_size != 12
        || be32_get(p + 8) != (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, 8)) {
        return -1;
    }
    *seq = be64_get(p);
    return 0;
}

static int rec_parse(const MDB_val *v, rec_t *r)
{
    const unsigned char *p = v->mv_data;

    if (v->mv_size < REC_HEAD || be32_get(p + REC_CRC) != rec_crc(p, v->mv_size)) {
        return -1;
    }
    r->t = (apr_time_t)be64_get(p);
    r->clen = (size_t)p[8] << 8 | p[9];
    r->idlen = be32_get(p + 10);
    if (r->clen == 0 || r->idlen > v->mv_size - REC_HEAD - r->clen
        || r->clen > v->mv_size - REC_HEAD) {
        return -1;
    }
    r->chan = (const char *)p + REC_HEAD;
    r->id = r->chan + r->clen;
    r->bytes = r->id + r->idlen;
    r->len = v->mv_size - REC_HEAD - r->clen - r->idlen;
    if (memchr(r->chan, '\0', r->clen) || memchr(r->id, '\0', r->idlen)) {
        return -1;
    }
    return 0;
}

/* --- checks before LMDB opens a file ------------------------------------- */

/* LMDB's meta page (mdb.c, 0.9 data format, 64-bit): a 16-byte page
 * header (page number, pad, flags at 10), then magic, version, address,
 * map size, two 48-byte database records (the free list's md_pad holds
 * the page size; the root page is their last field), the last page used
 * and the transaction id. */
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define P_META 0x08
#define META_SIZE 152

typedef struct {
    uint32_t psize;
    uint64_t last_pg, txnid, roots[2];
} meta_t;

static int meta_read(int fd, off_t off, meta_t *m, const char **why)
{
    unsigned char b[META_SIZE];
    uint16_t flags;
    uint32_t magic, version;

    if (pread(fd, b, sizeof(b), off) != (ssize_t)sizeof(b)) {
        *why = "is truncated (shorter than its header)";
        return -1;
    }
    memcpy(&flags, b + 10, 2);
    memcpy(&magic, b + 16, 4);
    memcpy(&version, b + 20, 4);
    if (!(flags & P_META) || magic != LMDB_MAGIC) {
        *why = "is not an LMDB data file (bad header)";
        return -1;
    }
    if (version != LMDB_DATA_VERSION) {
        *why = "was written by another LMDB data format";
        return -1;
    }
    memcpy(&m->psize, b + 40, 4);
    memcpy(&m->roots[0], b + 80, 8);
    memcpy(&m->roots[1], b + 128, 8);
    memcpy(&m->last_pg, b + 136, 8);
    memcpy(&m->txnid, b + 144, 8);
    if (m->psize < 512 || m->psize > 65536 || (m->psize & (m->psize - 1))) {
        *why = "has a damaged header (page size)";
        return -1;
    }
    return 0;
}

/* 0 when the file is absent, empty (LMDB starts it afresh) or its
 * headers hold; else -1 and *why. */
static int header_check(const char *path, int *exists, const char **why)
{
    static char errbuf[128];
    struct stat sb;
    meta_t m0, m1, *m;
    int fd = open(path, O_RDONLY), i, rc = -1;

    *exists = 0;
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        snprintf(errbuf, sizeof(errbuf), "cannot be opened: %s",
                 strerror(errno));
        *why = errbuf;
        return -1;
    }
    if (fstat(fd, &sb) < 0) {
        snprintf(errbuf, sizeof(errbuf), "cannot be opened: %s",
                 strerror(errno));
        *why = errbuf;
        goto done;
    }
    if (sb.st_size == 0) {
        rc = 0;
        goto done;
    }
    *exists = 1;
    if (meta_read(fd, 0, &m0, why) < 0
        || meta_read(fd, (off_t)m0.psize, &m1, why) < 0) {
        goto done;
    }
    m = m1.txnid > m0.txnid ? &m1 : &m0;
    if (m0.psize != m1.psize || m->last_pg < 1) {
        *why = "has a damaged header";
        goto done;
    }
    if (m->last_pg >= (uint64_t)sb.st_size / m->psize) {
        *why = "is truncated (shorter than its header says)";
        goto done;
    }
    for (i = 0; i < 2; i++) {
        if (m->roots[i] != (uint64_t)-1 && (m->roots[i] < 2
                                            || m->roots[i] > m->last_pg)) {
            *why = "has a damaged header (root page)";
            goto done;
        }
    }
    rc = 0;
done:
    close(fd);
    return rc;
}

/* --- the copy made at every open ------------------------------------------ */

/* A channel entry of the copy ("chan" database: chan \0 seq -> t), kept
 * until all are known: sorted, they go in with MDB_APPEND, so the copy's
 * pages are full and it is never bigger than the store it copies. */
typedef struct {
    unsigned char *key;         /* chan \0 seq (8, big-endian) */
    size_t klen;
    apr_time_t t;
} entry_t;

typedef struct {
    entry_t *e;
    size_t n, cap;
    entry_t *g;                 /* the old store's channels: key chan, */
    size_t gn, gcap;            /* t the highest seq each dropped */
} entries_t;

/* One more entry at the end of a growing array, with a key of klen bytes
 * allocated for the caller to fill; NULL when out of memory. */
static entry_t *entry_push(entry_t **arr, size_t *n, size_t *cap, size_t klen)
{
    entry_t *t;

    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 256;
        if (!(t = realloc(*arr, c * sizeof(*t)))) {
            return NULL;
        }
        *arr = t;
        *cap = c;
    }
    t = &(*arr)[*n];
    if (!(t->key = malloc(klen ? klen : 1))) {
        return NULL;
    }
    t->klen = klen;
    ++*n;
    return t;
}

/* A channel's count record of the old store: what it dropped. */
static int gone_add(entries_t *es, const MDB_val *k, const MDB_val *v)
{
    entry_t *t = entry_push(&es->g, &es->gn, &es->gcap, k->mv_size);

    if (!t) {
        return ENOMEM;
    }
    memcpy(t->key, k->mv_data, k->mv_size);
    t->t = (apr_time_t)be64_get((unsigned char *)v->mv_data + 8);
    return 0;
}

/* An event of the old store: its channel entry, chan \0 seq. */
static int entry_add(entries_t *es, const rec_t *r, const void *seq)
{
    entry_t *t = entry_push(&es->e, &es->n, &es->cap, r->clen + 9);

    if (!t) {
        return ENOMEM;
    }
    memcpy(t->key, r->chan, r->clen);
    t->key[r->clen] = '\0';
    memcpy(t->key + r->clen + 1, seq, 8);
    t->t = r->t;
    return 0;
}

/* LMDB's order of keys: bytes, then the shorter first. */
static int entry_cmp(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);

    return c ? c : x->klen < y->klen ? -1 : x->klen > y->klen;
}

static void entries_free(entries_t *es)
{
    size_t i;

    for (i = 0; i < es->n; i++) {
        free(es->e[i].key);
    }
    for (i = 0; i < es->gn; i++) {
        free(es->g[i].key);
    }
    free(es->e);
    free(es->g);
}

/* Write the "chan" database of the copy: for each channel its count, then
 * its entries, oldest first (the order LMDB keeps them in). */
static int copy_chans(MDB_env *env, MDB_dbi chans, entries_t *es)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    unsigned char num[16];
    size_t i, j, n = 0, g = 0;
    int rc = 0;

    if (es->n) {
        qsort(es->e, es->n, sizeof(*es->e), entry_cmp);
    }
    for (i = 0; i < es->n && rc == 0; i = j) {
        size_t clen = es->e[i].klen - 9;
        for (j = i + 1; j < es->n && es->e[j].klen == clen + 9
             && !memcmp(es->e[j].key, es->e[i].key, clen); j++) {
        }
        if (!txn && (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
            txn = NULL;
            break;
        }
        k.mv_data = es->e[i].key;
        k.mv_size = clen;
        be64_put(num, (uint64_t)(j - i));
        be64_put(num + 8, 0);
        {   /* what the old store said it dropped (both lists in key order) */
            entry_t c = { es->e[i].key, clen, 0 };
            while (g < es->gn && entry_cmp(&es->g[g], &c) < 0) {
                g++;
            }
            if (g < es->gn && entry_cmp(&es->g[g], &c) == 0) {
                be64_put(num + 8, (uint64_t)es->g[g].t);
            }
        }
        v.mv_data = num;
        v.mv_size = 16;
        rc = mdb_put(txn, chans, &k, &v, MDB_APPEND);
        v.mv_size = 8;
        for (; rc == 0 && i < j; i++) {
            k.mv_data = es->e[i].key;
            k.mv_size = es->e[i].klen;
            be64_put(num, (uint64_t)es->e[i].t);
            rc = mdb_put(txn, chans, &k, &v, MDB_APPEND);
            if (rc == 0 && ++n % 4096 == 0) {
                rc = mdb_txn_commit(txn);
                txn = NULL;
                if (rc == 0 && (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
                    txn = NULL;
                }
            }
        }
    }
    if (txn) {
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
        }
        else {
            mdb_txn_abort(txn);
        }
    }
    return rc;
}

/* What a pass over a store found wrong (both NULL: nothing). */
typedef struct {
    const char *damage;         /* the old file cannot be trusted */
    const char *write;          /* the copy could not be written */
    char buf[160];
} pass_t;

/* Read every event of the store in dir, in seq order, each checked
 * (keys rising, lengths, CRC; last_seq's CRC); with to, write them into
 * a new store there (its "chan" database made from the events).  Runs
 * in a child (see check_child): a damaged page may crash LMDB. */
static void store_pass(const char *dir, size_t cap, const char *to, pass_t *ps)
{
    MDB_env *env = NULL, *out = NULL;
    MDB_txn *txn = NULL, *wtxn = NULL;
    MDB_cursor *c = NULL;
    MDB_dbi meta, seqs, chans, ometa = 0, oseqs = 0, ochans = 0;
    MDB_envinfo info;
    MDB_val k, v;
    unsigned char prev[8], num[12];
    uint64_t last = 0, seq;
    size_t n = 0;
    entries_t es = { NULL, 0, 0, NULL, 0, 0 };
    rec_t r;
    int rc, have_prev = 0;

#define DAMAGE(why) do { ps->damage = (why); goto done; } while (0)
#define LMDB_DAMAGE(rc) do { snprintf(ps->buf, sizeof(ps->buf), "is damaged (%s)", \
                                      mdb_strerror(rc)); DAMAGE(ps->buf); } while (0)
#define WRITE_FAIL(rc) do { snprintf(ps->buf, sizeof(ps->buf), "%s", \
                                     mdb_strerror(rc)); ps->write = ps->buf; goto done; } while (0)
    if ((rc = mdb_env_create(&env)) != 0
        || (rc = mdb_env_set_maxdbs(env, 4)) != 0
        || (rc = mdb_env_set_mapsize(env, cap)) != 0
        || (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS,
                              0600)) != 0
        || (rc = mdb_env_info(env, &info)) != 0
        || (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
        LMDB_DAMAGE(rc);
    }
    if ((rc = mdb_dbi_open(txn, "meta", 0, &meta)) != 0) {
        if (rc == MDB_NOTFOUND) {
            DAMAGE("is not a mod_sse history (no format record)");
        }
        LMDB_DAMAGE(rc);
    }
    k.mv_data = "format";
    k.mv_size = 6;
    if ((rc = mdb_get(txn, meta, &k, &v)) != 0 || v.mv_size != 4) {
        DAMAGE("is not a mod_sse history (no format record)");
    }
    if (be32_get(v.mv_data) != SSE_STORE_FORMAT) {
        snprintf(ps->buf, sizeof(ps->buf), "is of format version %u, this "
                 "mod_sse reads version %u", be32_get(v.mv_data),
                 SSE_STORE_FORMAT);
        DAMAGE(ps->buf);
    }
    k.mv_data = "last_seq";
    k.mv_size = 8;
    rc = mdb_get(txn, meta, &k, &v);
    if (rc == 0 && last_seq_get(&v, &last) < 0) {
        DAMAGE("has a damaged record (last_seq)");
    }
    else if (rc && rc != MDB_NOTFOUND) {
        LMDB_DAMAGE(rc);
    }
    if (to) {
        MDB_stat ms;
        size_t size;
        if ((rc = mdb_env_stat(env, &ms)) != 0) {
            LMDB_DAMAGE(rc);
        }
        size = (info.me_last_pgno + 1) * (size_t)ms.ms_psize;
        if ((rc = mdb_env_create(&out)) != 0
            || (rc = mdb_env_set_maxdbs(out, 4)) != 0
            || (rc = mdb_env_set_mapsize(out, size > cap ? size : cap)) != 0
            || (rc = mdb_env_open(out, to, MDB_NOSYNC | MDB_NOTLS, 0600)) != 0
            || (rc = mdb_txn_begin(out, NULL, 0, &wtxn)) != 0
            || (rc = mdb_dbi_open(wtxn, "meta", MDB_CREATE, &ometa)) != 0
            || (rc = mdb_dbi_open(wtxn, "seq", MDB_CREATE, &oseqs)) != 0
            || (rc = mdb_dbi_open(wtxn, "chan", MDB_CREATE, &ochans)) != 0) {
            WRITE_FAIL(rc);
        }
        be32_put(num, SSE_STORE_FORMAT);
        k.mv_data = "format";
        k.mv_size = 6;
        v.mv_data = num;
        v.mv_size = 4;
        if ((rc = mdb_put(wtxn, ometa, &k, &v, 0)) != 0) {
            WRITE_FAIL(rc);
        }
    }
    rc = mdb_dbi_open(txn, "seq", 0, &seqs);
    if (rc == 0 && (rc = mdb_cursor_open(txn, seqs, &c)) == 0) {
        while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
            if (k.mv_size != 8 || rec_parse(&v, &r) < 0
                || (have_prev && memcmp(prev, k.mv_data, 8) >= 0)) {
                DAMAGE("has a damaged record");
            }
            memcpy(prev, k.mv_data, 8);
            have_prev = 1;
            if (!to) {
                continue;
            }
            if ((rc = mdb_put(wtxn, oseqs, &k, &v, MDB_APPEND)) != 0
                || (rc = entry_add(&es, &r, k.mv_data)) != 0) {
                WRITE_FAIL(rc);
            }
            /* Commit now and then: LMDB holds a transaction's pages in
             * memory until it commits. */
            if (++n % 1024 == 0 && ((rc = mdb_txn_commit(wtxn)) != 0
                                    || (rc = mdb_txn_begin(out, NULL, 0, &wtxn)) != 0)) {
                wtxn = NULL;
                WRITE_FAIL(rc);
            }
        }
    }
    if (rc != MDB_NOTFOUND) {
        LMDB_DAMAGE(rc);
    }
    if (c) {
        mdb_cursor_close(c);
        c = NULL;
    }
    /* what each channel dropped: its count record (16 bytes) */
    rc = mdb_dbi_open(txn, "chan", 0, &chans);
    if (rc == 0 && to && (rc = mdb_cursor_open(txn, chans, &c)) == 0) {
        while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
            if (v.mv_size == 16 && (rc = gone_add(&es, &k, &v)) != 0) {
                WRITE_FAIL(rc);
            }
        }
    }
    if (rc && rc != MDB_NOTFOUND) {
        LMDB_DAMAGE(rc);
    }
    if (have_prev && (seq = be64_get(prev)) > last) {
        last = seq;             /* last_seq never fell behind the events */
    }
    if (to) {
        if (last) {
            last_seq_put(num, last);
            k.mv_data = "last_seq";
            k.mv_size = 8;
            v.mv_data = num;
            v.mv_size = 12;
            if ((rc = mdb_put(wtxn, ometa, &k, &v, 0)) != 0) {
                WRITE_FAIL(rc);
            }
        }
        rc = mdb_txn_commit(wtxn);
        wtxn = NULL;
        if (rc || (rc = copy_chans(out, ochans, &es)) != 0
            || (rc = mdb_env_sync(out, 1)) != 0) {
            WRITE_FAIL(rc);
        }
    }
done:
    entries_free(&es);
    if (c) {
        mdb_cursor_close(c);
    }
    if (txn) {
        mdb_txn_abort(txn);
    }
    if (wtxn) {
        mdb_txn_abort(wtxn);
    }
    if (out) {
        mdb_env_close(out);
    }
    if (env) {
        mdb_env_close(env);
    }
#undef DAMAGE
#undef LMDB_DAMAGE
#undef WRITE_FAIL
}

/* Remove what a copy left in its directory, and the directory. */
static void copy_dir_remove(const char *to)
{
    char p[4096];

    snprintf(p, sizeof(p), "%s/data.mdb", to);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", to);
    unlink(p);
    rmdir(to);
}

/* The copy replaces the store's data file; LMDB makes a new lock file. */
static int copy_install(const char *dir, const char *to)
{
    char from[4096], dst[4096];
    int fd;

    snprintf(from, sizeof(from), "%s/data.mdb", to);
    snprintf(dst, sizeof(dst), "%s/data.mdb", dir);
    if (rename(from, dst) < 0) {
        return -1;
    }
    snprintf(dst, sizeof(dst), "%s/lock.mdb", dir);
    unlink(dst);
    copy_dir_remove(to);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

/* The check child's exit status: its verdicts (0: read back whole). */
#define CHECK_DAMAGED 10
#define CHECK_NOT_COPIED 11

/* Run store_pass in a child and wait for it.  0: read back whole (and,
 * with to, the copy installed); 1: damaged, why set; 2: the copy could
 * not be made (why set; the old file is untouched and read back whole);
 * -1: no child (why set). */
static int check_child(const char *dir, size_t cap, const char *to,
                       char *why, size_t why_len)
{
    int fds[2], status;
    char msg[201];
    pid_t pid, w;
    ssize_t n;

    if (pipe(fds) < 0 || (pid = fork()) < 0) {
        snprintf(why, why_len, "cannot be opened: cannot check it: %s",
                 strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* No core file, and LMDB's assertion messages kept off the
         * relay's log: the reason goes through the pipe. */
        struct rlimit nocore = { 0, 0 };
        pass_t ps = { NULL, NULL, "" };
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 2);
        }
        setrlimit(RLIMIT_CORE, &nocore);
        close(fds[0]);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGFPE, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        store_pass(dir, cap, to, &ps);
        if (!ps.damage && !ps.write && to && copy_install(dir, to) < 0) {
            snprintf(ps.buf, sizeof(ps.buf), "cannot install the copy: %s",
                     strerror(errno));
            ps.write = ps.buf;
        }
        if (ps.damage || ps.write) {
            const char *m = ps.damage ? ps.damage : ps.write;
            (void)!write(fds[1], m, strlen(m));
        }
        _exit(ps.damage ? CHECK_DAMAGED : ps.write ? CHECK_NOT_COPIED : 0);
    }
    close(fds[1]);
    n = 0;
    for (;;) {
        ssize_t got = read(fds[0], msg + n, sizeof(msg) - 1 - (size_t)n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        n += got;
        if ((size_t)n >= sizeof(msg) - 1) {
            break;
        }
    }
    msg[n] = '\0';
    close(fds[0]);
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (w < 0) {
        snprintf(why, why_len, "cannot be opened: cannot check it: %s",
                 strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHECK_NOT_COPIED) {
        snprintf(why, why_len, "%s", msg);
        return 2;
    }
    if ((WIFEXITED(status) && WEXITSTATUS(status) != CHECK_DAMAGED)
        || (WIFSIGNALED(status) && WTERMSIG(status) != SIGSEGV
            && WTERMSIG(status) != SIGBUS && WTERMSIG(status) != SIGABRT
            && WTERMSIG(status) != SIGFPE && WTERMSIG(status) != SIGILL)) {
        /* not a verdict on the file (a sanitizer's exit, the OOM
         * killer's SIGKILL): used as is */
        snprintf(why, why_len, "the check ended with %s %d",
                 WIFEXITED(status) ? "status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return 2;
    }
    if (WIFSIGNALED(status)) {
        snprintf(why, why_len, "is damaged (reading it crashed with signal %d)",
                 WTERMSIG(status));
    }
    else {
        snprintf(why, why_len, "%s", n ? msg : "is damaged");
    }
    return 1;
}

/* --- open, close ---------------------------------------------------------- */

/* A message naming the file; the fix (removing it) when it is damaged or
 * not ours, not when the reason is elsewhere (rights, memory). */
static sse_store_t *open_fail(sse_store_t *st, const char *path,
                              const char *why, const char **err)
{
    if (!strncmp(why, "cannot be opened", 16)) {
        snprintf(open_err, sizeof(open_err), "history store %s %s",
                 path, why);
    }
    else {
        snprintf(open_err, sizeof(open_err), "history store %s %s: remove %s"
                 " to start with an empty history", path, why, path);
    }
    *err = open_err;
    if (st) {
        if (st->env) {
            mdb_env_close(st->env);
        }
        close(st->lock);
        free(st->path);
        free(st->buf);
        free(st);
    }
    return NULL;
}

static const char *lmdb_why(int rc, char *b, size_t n)
{
    switch (rc) {
    case MDB_INVALID:
        return "is not an LMDB data file";
    case MDB_VERSION_MISMATCH:
        return "was written by another LMDB version";
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return "is damaged";
    case MDB_INCOMPATIBLE:
        return "is not a mod_sse history (other databases in it)";
    case MDB_MAP_FULL:
        return "is fuller than its size limit allows";
    }
    snprintf(b, n, "cannot be opened: %s", mdb_strerror(rc));
    return b;
}

/* Hold dir/owner.lock for as long as the store is open: a second relay
 * (another httpd with the same SSEHistoryPath) must not write to it, nor
 * replace its file with a copy.  The descriptor, or -1 and why. */
static int owner_lock(const char *dir, char *why, size_t why_len)
{
    char p[4096];
    int fd;

    snprintf(p, sizeof(p), "%s/owner.lock", dir);
    fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, why_len, "cannot be opened: its lock file owner.lock: "
                 "%s", strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(why, why_len, "cannot be opened: %s", errno == EWOULDBLOCK
                 ? "another process has it open (another httpd with the same"
                   " SSEHistoryPath?)" : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The reason a data file cannot be used: 0 when it is absent or read
 * back whole (and, with to, was replaced by a fresh copy made there);
 * 1 damaged or not ours (why); 2 read back whole but not copied (why: the
 * copy's problem); -1 not checked (why). */
static int file_check(const char *dir, const char *path, size_t cap,
                      const char *to, char *why, size_t why_len)
{
    const char *r;
    int exists, rc;

    if (header_check(path, &exists, &r) < 0) {
        snprintf(why, why_len, "%s", r);
        return strncmp(r, "cannot be opened", 16) ? 1 : -1;
    }
    if (!exists) {
        return 0;
    }
    if (to) {
        copy_dir_remove(to);    /* what a copy cut short left */
        if (mkdir(to, 0700) < 0) {
            snprintf(why, why_len, "cannot make %s: %s", to, strerror(errno));
            return check_child(dir, cap, NULL, why, why_len) == 0 ? 2
                   : check_child(dir, cap, NULL, why, why_len);
        }
    }
    rc = check_child(dir, cap, to, why, why_len);
    if (to) {
        copy_dir_remove(to);
    }
    return rc;
}

int sse_store_check(const char *dir, size_t cap, const char **err)
{
    char why[256], path[4096];

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (file_check(dir, path, cap, NULL, why, sizeof(why)) != 0) {
        open_fail(NULL, path, why, err);
        return -1;
    }
    return 0;
}

sse_store_t *sse_store_open(const char *dir, size_t cap, int sync,
                            int strict, const char **err)
{
    sse_store_t *st;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    MDB_stat ms;
    unsigned char num[8];
    char why[256], path[4096], to[4096], aside[4096 + 32];
    static char note[2 * 4096 + 512];
    int rc, dead, lock;
    unsigned flags = MDB_NOTLS;

    *err = NULL;
    note[0] = '\0';
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (sync != SSE_STORE_SYNC_NO && sync != SSE_STORE_SYNC_EVERYSEC
        && sync != SSE_STORE_SYNC_ALWAYS) {
        return open_fail(NULL, path, "cannot be opened: unknown sync mode", err);
    }
    if ((lock = owner_lock(dir, why, sizeof(why))) < 0) {
        return open_fail(NULL, path, why, err);
    }
    snprintf(to, sizeof(to), "%s/copy.tmp", dir);
    rc = file_check(dir, path, cap, to, why, sizeof(why));
    if (rc == -1 || (rc == 1 && strict)) {
        close(lock);
        return open_fail(NULL, path, why, err);
    }
    if (rc == 1) {
        /* Kept for the admin to look at; the store starts afresh. */
        long now = (long)apr_time_sec(apr_time_now()), n = 0;
        struct stat sb;
        do {            /* (the owner lock keeps other relays out) */
            snprintf(aside, sizeof(aside), n ? "%s.damaged-%ld.%ld"
                     : "%s.damaged-%ld", path, now, n);
        } while (stat(aside, &sb) == 0 && ++n < 1000);
        if (rename(path, aside) < 0) {
            close(lock);
            return open_fail(NULL, path, why, err);
        }
        snprintf(to, sizeof(to), "%s/lock.mdb", dir);
        unlink(to);
        snprintf(note, sizeof(note), "history store %s %s: moved to %s; the "
                 "history starts empty", path, why, aside);
    }
    else if (rc == 2) {
        snprintf(note, sizeof(note), "history store %s was not rewritten at "
                 "start (%s): opened as it is", path, why);
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        close(lock);
        return open_fail(NULL, path, "cannot be opened: out of memory", err);
    }
    st->lock = lock;
    if (!(st->path = strdup(path))) {
        return open_fail(st, path, "cannot be opened: out of memory", err);
    }
    st->sync = sync;
    if (sync != SSE_STORE_SYNC_ALWAYS) {
        flags |= MDB_NOSYNC;
    }
    if ((rc = mdb_env_create(&st->env)) != 0) {
        st->env = NULL;
        return open_fail(st, path, lmdb_why(rc, why, sizeof(why)), err);
    }
    if ((rc = mdb_env_set_maxdbs(st->env, 4)) != 0
        || (rc = mdb_env_set_mapsize(st->env, cap)) != 0
        || (rc = mdb_env_open(st->env, dir, flags, 0600)) != 0) {
        return open_fail(st, path, lmdb_why(rc, why, sizeof(why)), err);
    }
    /* A relay that crashed during a read left its reader slot behind,
     * which would keep freed pages from being reused. */
    mdb_reader_check(st->env, &dead);
    st->maxkey = (size_t)mdb_env_get_maxkeysize(st->env);

    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0
        || (rc = mdb_stat(txn, 1, &ms)) != 0) {
        goto lmdb_fail;
    }
    rc = mdb_dbi_open(txn, "meta", 0, &st->meta);
    if (rc == MDB_NOTFOUND && ms.ms_entries == 0) {
        /* A new store. */
        if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) != 0) {
            goto lmdb_fail;
        }
        be32_put(num, SSE_STORE_FORMAT);
        k.mv_data = "format";
        k.mv_size = 6;
        v.mv_data = num;
        v.mv_size = 4;
        if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0) {
            goto lmdb_fail;
        }
    }
    else if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return open_fail(st, path, "is not a mod_sse history (no format record)",
                         err);
    }
    else if (rc) {
        goto lmdb_fail;
    }
    k.mv_data = "format";
    k.mv_size = 6;
    rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 4)) {
        mdb_txn_abort(txn);
        return open_fail(st, path, "is not a mod_sse history (no format record)",
                         err);
    }
    if (rc) {
        goto lmdb_fail;
    }
    if (be32_get(v.mv_data) != SSE_STORE_FORMAT) {
        snprintf(why, sizeof(why), "is of format version %u, this mod_sse"
                 " reads version %u", be32_get(v.mv_data), SSE_STORE_FORMAT);
        mdb_txn_abort(txn);
        return open_fail(st, path, why, err);
    }
    k.mv_data = "last_seq";
    k.mv_size = 8;
    rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == 0 && last_seq_get(&v, &st->last_seq) < 0) {
        mdb_txn_abort(txn);
        return open_fail(st, path, "has a damaged record", err);
    }
    if (rc && rc != MDB_NOTFOUND) {
        goto lmdb_fail;
    }
    if ((rc = mdb_dbi_open(txn, "seq", MDB_CREATE, &st->seqs)) != 0
        || (rc = mdb_dbi_open(txn, "chan", MDB_CREATE, &st->chans)) != 0
        || (rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;             /* a failed commit frees it */
        goto lmdb_fail;
    }
    *err = note[0] ? note : NULL;
    return st;

lmdb_fail:
    if (txn) {
        mdb_txn_abort(txn);
    }
    return open_fail(st, path, lmdb_why(rc, why, sizeof(why)), err);
}

void sse_store_close(sse_store_t *st)
{
    if (!st) {
        return;
    }
    if (st->sync == SSE_STORE_SYNC_EVERYSEC) {
        mdb_env_sync(st->env, 1);
    }
    mdb_env_close(st->env);
    close(st->lock);
    free(st->path);
    free(st->buf);
    free(st);
}

int sse_store_sync(sse_store_t *st)
{
    return mdb_env_sync(st->env, 1) ? -1 : 0;
}

/* --- put ------------------------------------------------------------------ */

static int lmdb_err(sse_store_t *st, int rc, const char *what, const char **err)
{
    if (rc == MDB_MAP_FULL) {
        return -1;
    }
    snprintf(st->err, sizeof(st->err), "history store %s: %s: %s",
             st->path, what, mdb_strerror(rc));
    *err = st->err;
    return -2;
}

/* Drop chan's oldest events while it holds more than keep or they are
 * older than max_age at now; *count is left at what it holds. */
static int trim(sse_store_t *st, MDB_txn *txn, const char *chan, size_t clen,
                uint64_t keep, apr_time_t now, apr_interval_time_t max_age,
                uint64_t *count, uint64_t *gone, int *dropped)
{
    MDB_cursor *c;
    MDB_val k, v, sk;
    unsigned char sq[8];
    int rc;

    *count = 0;
    *gone = 0;
    *dropped = 0;
    k.mv_data = (void *)chan;
    k.mv_size = clen;
    rc = mdb_get(txn, st->chans, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc) {
        return rc;
    }
    if (v.mv_size != 16) {
        return MDB_CORRUPTED;
    }
    *count = be64_get(v.mv_data);
    *gone = be64_get((unsigned char *)v.mv_data + 8);
    if ((rc = mdb_cursor_open(txn, st->chans, &c)) != 0) {
        return rc;
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
    while (rc == 0 && *count) {
        if ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) != 0) {
            break;
        }
        if (k.mv_size != clen + 9 || memcmp(k.mv_data, chan, clen)
            || ((char *)k.mv_data)[clen] != '\0' || v.mv_size != 8) {
            rc = MDB_CORRUPTED; /* the count said there were more */
            break;
        }
        if (*count <= keep
            && !(max_age > 0 && now - (apr_time_t)be64_get(v.mv_data) > max_age)) {
            break;
        }
        memcpy(sq, (char *)k.mv_data + clen + 1, 8);
        *gone = be64_get(sq);   /* oldest first: the highest yet */
        sk.mv_data = sq;
        sk.mv_size = 8;
        if ((rc = mdb_cursor_del(c, 0)) != 0
            || (rc = mdb_del(txn, st->seqs, &sk, NULL)) != 0) {
            break;
        }
        /* LMDB leaves the cursor so that MDB_NEXT gives the record
         * after the deleted one. */
        --*count;
        ++*dropped;
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    return rc;
}

static int count_put(sse_store_t *st, MDB_txn *txn, const char *chan,
                     size_t clen, uint64_t count, uint64_t gone)
{
    MDB_val k, v;
    unsigned char num[16];
    int rc;

    k.mv_data = (void *)chan;
    k.mv_size = clen;
    if (!count) {
        rc = mdb_del(txn, st->chans, &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    be64_put(num, count);
    be64_put(num + 8, gone);
    v.mv_data = num;
    v.mv_size = 16;
    return mdb_put(txn, st->chans, &k, &v, 0);
}

/* One attempt: trim, keep the event (unless keep_event is 0), count,
 * last_seq; committed, or aborted with the error. */
static int put_txn(sse_store_t *st, const char *chan, size_t clen,
                   uint64_t seq, const char *id, size_t idlen, apr_time_t t,
                   const char *bytes, size_t len, unsigned max_count,
                   apr_interval_time_t max_age, int keep_event, int *dropped)
{
    MDB_txn *txn;
    MDB_val k, v;
    unsigned char num[8], num12[12], *p;
    uint64_t count, gone;
    int rc;

    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
        return rc;
    }
    rc = trim(st, txn, chan, clen, max_count ? max_count - 1u : 0, t,
              max_age, &count, &gone, dropped);
    if (rc == 0 && keep_event && max_count) {
        /* The record, then the channel's entry. */
        be64_put(num, seq);
        k.mv_data = num;
        k.mv_size = 8;
        v.mv_data = NULL;
        v.mv_size = REC_HEAD + clen + idlen + len;
        rc = mdb_put(txn, st->seqs, &k, &v, MDB_RESERVE | MDB_APPEND);
        if (rc == 0) {
            p = v.mv_data;
            be64_put(p, (uint64_t)t);
            p[8] = (unsigned char)(clen >> 8);
            p[9] = (unsigned char)clen;
            be32_put(p + 10, (uint32_t)idlen);
            memcpy(p + REC_HEAD, chan, clen);
            memcpy(p + REC_HEAD + clen, id, idlen);
            if (len) {
                memcpy(p + REC_HEAD + clen + idlen, bytes, len);
            }
            be32_put(p + REC_CRC, rec_crc(p, v.mv_size));
            memcpy(st->buf, chan, clen);
            st->buf[clen] = '\0';
            be64_put((unsigned char *)st->buf + clen + 1, seq);
            k.mv_data = st->buf;
            k.mv_size = clen + 9;
            be64_put(num, (uint64_t)t);
            v.mv_data = num;
            v.mv_size = 8;
            rc = mdb_put(txn, st->chans, &k, &v, MDB_NOOVERWRITE);
            count++;
        }
    }
    if (rc == 0 && !keep_event && !*dropped) {
        rc = MDB_MAP_FULL;      /* nothing to free: write nothing */
    }
    if (rc == 0) {
        rc = count_put(st, txn, chan, clen, count, gone);
    }
    if (rc == 0 && keep_event) {
        last_seq_put(num12, seq);
        k.mv_data = "last_seq";
        k.mv_size = 8;
        v.mv_data = num12;
        v.mv_size = 12;
        rc = mdb_put(txn, st->meta, &k, &v, 0);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

int sse_store_put(sse_store_t *st, const char *chan, uint64_t seq,
                  const char *id, apr_time_t t, const char *bytes, size_t len,
                  unsigned max_count, apr_interval_time_t max_age,
                  const char **err)
{
    size_t clen = strlen(chan), idlen = strlen(id);
    int rc, dropped;

    if (clen == 0 || clen > 0xFFFF || clen + 9 > st->maxkey) {
        snprintf(st->err, sizeof(st->err), "history store %s: channel key of"
                 " %zu bytes not storable (1 to %zu)", st->path, clen,
                 st->maxkey - 9);
        *err = st->err;
        return -2;
    }
    if (idlen > 0xFFFFFFFFu) {
        snprintf(st->err, sizeof(st->err), "history store %s: id too long",
                 st->path);
        *err = st->err;
        return -2;
    }
    if (seq <= st->last_seq) {
        snprintf(st->err, sizeof(st->err), "history store %s: seq %llu is not"
                 " after the last stored, %llu", st->path,
                 (unsigned long long)seq, (unsigned long long)st->last_seq);
        *err = st->err;
        return -2;
    }
    if (buf_need(st, clen + 9) < 0) {
        snprintf(st->err, sizeof(st->err), "history store %s: out of memory",
                 st->path);
        *err = st->err;
        return -2;
    }
    rc = put_txn(st, chan, clen, seq, id, idlen, t, bytes, len, max_count,
                 max_age, 1, &dropped);
    if (rc == MDB_MAP_FULL) {
        /* Free what chan's own limits let go in a transaction of its own,
         * then try once more (LMDB reuses freed pages only in later
         * transactions). */
        rc = put_txn(st, chan, clen, seq, id, idlen, t, bytes, len, max_count,
                     max_age, 0, &dropped);
        if (rc == 0) {
            rc = put_txn(st, chan, clen, seq, id, idlen, t, bytes, len,
                         max_count, max_age, 1, &dropped);
        }
    }
    if (rc) {
        return lmdb_err(st, rc, "cannot keep an event", err);
    }
    st->last_seq = seq;
    return 0;
}

/* --- load, stats ---------------------------------------------------------- */

int sse_store_set_gone(sse_store_t *st, const char *chan, uint64_t gone,
                       const char **err)
{
    MDB_txn *txn;
    MDB_val k, v;
    unsigned char num[16];
    int rc;

    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
        return lmdb_err(st, rc, "cannot note what a channel dropped", err);
    }
    k.mv_data = (void *)chan;
    k.mv_size = strlen(chan);
    if ((rc = mdb_get(txn, st->chans, &k, &v)) != 0 || v.mv_size != 16) {
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? -1
               : lmdb_err(st, rc ? rc : MDB_CORRUPTED, "cannot note what a"
                          " channel dropped", err);
    }
    memcpy(num, v.mv_data, 8);
    be64_put(num + 8, gone);
    v.mv_data = num;
    v.mv_size = 16;
    if ((rc = mdb_put(txn, st->chans, &k, &v, 0)) != 0) {
        mdb_txn_abort(txn);
        return lmdb_err(st, rc, "cannot note what a channel dropped", err);
    }
    rc = mdb_txn_commit(txn);
    return rc ? lmdb_err(st, rc, "cannot note what a channel dropped", err) : 0;
}

int sse_store_load(sse_store_t *st, sse_store_fn *fn,
                   sse_store_gone_fn *gone_fn, void *ctx,
                   uint64_t *last_seq, const char **err)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    rec_t r;
    int rc, ret = 0;

    *last_seq = st->last_seq;
    if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0) {
        lmdb_err(st, rc, "cannot read", err);
        return -1;
    }
    if ((rc = mdb_cursor_open(txn, st->seqs, &c)) != 0) {
        mdb_txn_abort(txn);
        lmdb_err(st, rc, "cannot read", err);
        return -1;
    }
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        if (k.mv_size != 8 || rec_parse(&v, &r) < 0) {
            snprintf(st->err, sizeof(st->err), "history store %s has a damaged"
                     " record: remove %s to start with an empty history",
                     st->path, st->path);
            *err = st->err;
            ret = -1;
            break;
        }
        if (buf_need(st, r.clen + 1 + r.idlen + 1) < 0) {
            snprintf(st->err, sizeof(st->err), "history store %s: out of"
                     " memory", st->path);
            *err = st->err;
            ret = -1;
            break;
        }
        memcpy(st->buf, r.chan, r.clen);
        st->buf[r.clen] = '\0';
        memcpy(st->buf + r.clen + 1, r.id, r.idlen);
        st->buf[r.clen + 1 + r.idlen] = '\0';
        ret = fn(ctx, st->buf, be64_get(k.mv_data), st->buf + r.clen + 1,
                 r.t, r.bytes, r.len);
        if (ret) {
            break;
        }
    }
    if (!ret && rc != MDB_NOTFOUND) {
        lmdb_err(st, rc, "cannot read", err);
        ret = -1;
    }
    mdb_cursor_close(c);
    if (!ret && gone_fn && (rc = mdb_cursor_open(txn, st->chans, &c)) == 0) {
        while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
            uint64_t gone;
            if (v.mv_size != 16 || !(gone = be64_get((unsigned char *)v.mv_data + 8))) {
                continue;
            }
            if (buf_need(st, k.mv_size + 1) < 0) {
                break;
            }
            memcpy(st->buf, k.mv_data, k.mv_size);
            st->buf[k.mv_size] = '\0';
            gone_fn(ctx, st->buf, gone);
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return ret;
}

void sse_store_stats(sse_store_t *st, size_t *bytes, size_t *events)
{
    MDB_envinfo info;
    MDB_stat ms;
    MDB_txn *txn;

    *bytes = 0;
    *events = 0;
    if (mdb_env_info(st->env, &info) == 0 && mdb_env_stat(st->env, &ms) == 0) {
        *bytes = (info.me_last_pgno + 1) * (size_t)ms.ms_psize;
    }
    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_stat(txn, st->seqs, &ms) == 0) {
            *events = ms.ms_entries;
        }
        mdb_txn_abort(txn);
    }
}
