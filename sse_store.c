/*
 * sse_store.c: the relay's event history on disk, over LMDB (see
 * sse_store.h).
 *
 * One LMDB environment in dir, three named databases:
 *
 *   "meta"  "format"   -> u32: SSE_STORE_FORMAT, refused when it differs
 *           "last_seq" -> u64: the highest seq ever stored
 *   "seq"   seq        -> t (i64), u16 channel length, u32 id length,
 *                         channel, id, bytes: the events, in seq order
 *   "chan"  chan       -> u64: how many events chan holds
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
 * say), then every page reachable from the newest meta is read in a
 * child process, since LMDB trusts its pages and may crash on damage;
 * the relay itself only opens a file that read back whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "sse_store.h"

#define SSE_STORE_FORMAT 1u
#define REC_HEAD 14             /* t (8), channel length (2), id length (4) */

struct sse_store_t {
    MDB_env *env;
    MDB_dbi meta, seqs, chans;
    int sync;
    uint64_t last_seq;
    size_t maxkey;
    char *path;                 /* dir/data.mdb, for messages */
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

static int rec_parse(const MDB_val *v, rec_t *r)
{
    const unsigned char *p = v->mv_data;

    if (v->mv_size < REC_HEAD) {
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

/* Every byte of every record of db, read; our own records parsed.  0, or
 * an LMDB error, or -1 for a record of the wrong shape. */
static int walk_db(MDB_txn *txn, MDB_dbi dbi, int kind, size_t last_pg,
                   unsigned *sum)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc;
    size_t i;

    if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0) {
        return rc;
    }
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        for (i = 0; i < k.mv_size; i++) {
            *sum += ((unsigned char *)k.mv_data)[i];
        }
        for (i = 0; i < v.mv_size; i++) {
            *sum += ((unsigned char *)v.mv_data)[i];
        }
        if (kind == 0) {        /* free list: a count, then page numbers */
            size_t n, *pg = v.mv_data;
            if (v.mv_size % sizeof(size_t) || v.mv_size < sizeof(size_t)) {
                rc = -1;
                break;
            }
            memcpy(&n, pg, sizeof(n));
            if (n != v.mv_size / sizeof(size_t) - 1) {
                rc = -1;
                break;
            }
            for (i = 1; i <= n; i++) {
                size_t p;
                memcpy(&p, pg + i, sizeof(p));
                if (p < 2 || p > last_pg) {
                    rc = -1;
                    break;
                }
            }
            if (rc) {
                break;
            }
        }
        else if (kind == 2) {   /* "seq" */
            rec_t r;
            if (k.mv_size != 8 || rec_parse(&v, &r) < 0) {
                rc = -1;
                break;
            }
        }
        else if (kind == 3) {   /* "chan" */
            if (v.mv_size != 8) {
                rc = -1;
                break;
            }
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static volatile unsigned check_sink;

static const char *walk_all(const char *dir, size_t cap)
{
    static const char *const names[] = { "meta", "seq", "chan" };
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_envinfo info;
    unsigned sum = 0;
    int rc, i;

    if ((rc = mdb_env_create(&env)) != 0
        || (rc = mdb_env_set_maxdbs(env, 4)) != 0
        || (rc = mdb_env_set_mapsize(env, cap)) != 0
        || (rc = mdb_env_open(env, dir, MDB_RDONLY, 0600)) != 0
        || (rc = mdb_env_info(env, &info)) != 0
        || (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0
        || (rc = walk_db(txn, 0, 0, info.me_last_pgno, &sum)) != 0
        || (rc = walk_db(txn, 1, 1, info.me_last_pgno, &sum)) != 0) {
        goto done;
    }
    for (i = 0; i < 3; i++) {
        rc = mdb_dbi_open(txn, names[i], 0, &dbi);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc || (rc = walk_db(txn, dbi, i + 1, info.me_last_pgno, &sum))) {
            goto done;
        }
    }
done:
    if (txn) {
        mdb_txn_abort(txn);
    }
    if (env) {
        mdb_env_close(env);
    }
    check_sink = sum;
    if (rc == -1) {
        return "has a damaged record";
    }
    return rc ? mdb_strerror(rc) : NULL;
}

/* Read the whole store in a child: LMDB follows page numbers it trusts,
 * and a damaged page can make it read outside its map.  0 when it read
 * back whole; else -1 and a reason in why (why_len bytes). */
static int deep_check(const char *dir, size_t cap, char *why, size_t why_len)
{
    int fds[2], status;
    char msg[201];
    pid_t pid, w;
    ssize_t n;

    if (pipe(fds) < 0) {
        snprintf(why, why_len, "cannot be opened: cannot check it: %s",
                 strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        snprintf(why, why_len, "cannot be opened: cannot check it: %s",
                 strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* No core file, and LMDB's assertion messages kept off the
         * relay's log: the reason goes through the pipe. */
        struct rlimit nocore = { 0, 0 };
        const char *r;
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
        r = walk_all(dir, cap);
        if (r) {
            (void)!write(fds[1], r, strlen(r));
        }
        _exit(r ? 1 : 0);
    }
    close(fds[1]);
    n = 0;
    for (;;) {
        ssize_t got = read(fds[0], msg + n, sizeof(msg) - 1 - (size_t)n);
        if (got > 0 && (size_t)(n + got) < sizeof(msg) - 1) {
            n += got;
            continue;
        }
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got > 0) {
            n += got;
        }
        break;
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
    if (WIFSIGNALED(status)) {
        snprintf(why, why_len, "is damaged (reading it crashed with signal %d)",
                 WTERMSIG(status));
    }
    else if (!n) {
        snprintf(why, why_len, "is damaged");
    }
    else {
        snprintf(why, why_len, "%s%.200s",
                 strncmp(msg, "has ", 4) ? "is damaged: " : "", msg);
    }
    return -1;
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

sse_store_t *sse_store_open(const char *dir, size_t cap, int sync,
                            const char **err)
{
    sse_store_t *st;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    MDB_stat ms;
    unsigned char num[8];
    char why[256], path[4096];
    const char *r;
    int rc, exists, dead;
    unsigned flags = MDB_NOTLS;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (sync != SSE_STORE_SYNC_NO && sync != SSE_STORE_SYNC_EVERYSEC
        && sync != SSE_STORE_SYNC_ALWAYS) {
        return open_fail(NULL, path, "cannot be opened: unknown sync mode", err);
    }
    if (header_check(path, &exists, &r) < 0) {
        return open_fail(NULL, path, r, err);
    }
    if (exists && deep_check(dir, cap, why, sizeof(why)) < 0) {
        return open_fail(NULL, path, why, err);
    }
    st = calloc(1, sizeof(*st));
    if (!st || !(st->path = strdup(path))) {
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
    if (rc == 0 && v.mv_size == 8) {
        st->last_seq = be64_get(v.mv_data);
    }
    else if (rc == 0) {
        mdb_txn_abort(txn);
        return open_fail(st, path, "has a damaged record", err);
    }
    else if (rc != MDB_NOTFOUND) {
        goto lmdb_fail;
    }
    if ((rc = mdb_dbi_open(txn, "seq", MDB_CREATE, &st->seqs)) != 0
        || (rc = mdb_dbi_open(txn, "chan", MDB_CREATE, &st->chans)) != 0
        || (rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;             /* a failed commit frees it */
        goto lmdb_fail;
    }
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
                uint64_t *count, int *dropped)
{
    MDB_cursor *c;
    MDB_val k, v, sk;
    unsigned char sq[8];
    int rc;

    *count = 0;
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
    if (v.mv_size != 8) {
        return MDB_CORRUPTED;
    }
    *count = be64_get(v.mv_data);
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
                     size_t clen, uint64_t count)
{
    MDB_val k, v;
    unsigned char num[8];
    int rc;

    k.mv_data = (void *)chan;
    k.mv_size = clen;
    if (!count) {
        rc = mdb_del(txn, st->chans, &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    be64_put(num, count);
    v.mv_data = num;
    v.mv_size = 8;
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
    unsigned char num[8], *p;
    uint64_t count;
    int rc;

    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
        return rc;
    }
    rc = trim(st, txn, chan, clen, max_count ? max_count - 1u : 0, t,
              max_age, &count, dropped);
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
        rc = count_put(st, txn, chan, clen, count);
    }
    if (rc == 0 && keep_event) {
        be64_put(num, seq);
        k.mv_data = "last_seq";
        k.mv_size = 8;
        v.mv_data = num;
        v.mv_size = 8;
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

int sse_store_load(sse_store_t *st, sse_store_fn *fn, void *ctx,
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
