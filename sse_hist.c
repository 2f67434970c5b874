/*
 * sse_hist.c: the relay's event history (see sse_hist.h).
 *
 * Each channel holds a ring of entries in seq order; one entry is one
 * malloc'ed block (header, id, bytes).  The id index points at entries and
 * is updated as they come and go.  "gone" remembers the highest seq a
 * channel has dropped, which is how a replay knows it cannot be complete.
 */
#include <stdlib.h>
#include <string.h>

#include "apr_hash.h"
#include "sse_hist.h"

typedef struct {
    uint64_t seq;
    apr_time_t t;
    char *key;              /* "chan\0id": the index key */
    size_t klen;
    char *id;               /* inside key */
    char *bytes;
    size_t len;
} hent_t;

typedef struct {
    char *name;
    hent_t **ring;
    unsigned cap, head, n;
    uint64_t gone;          /* highest seq dropped from this channel */
} hchan_t;

struct sse_hist_t {
    apr_pool_t *pool;
    apr_hash_t *chans;      /* name -> hchan_t */
    apr_hash_t *ids;        /* "chan\0id" -> hent_t, the newest such */
    uint64_t gone;          /* highest seq of channels no longer held */
    size_t events, bytes;
};

sse_hist_t *sse_hist_create(uint64_t first_seq)
{
    sse_hist_t *h = calloc(1, sizeof(*h));

    if (!h || apr_pool_create(&h->pool, NULL) != APR_SUCCESS) {
        free(h);
        return NULL;
    }
    h->chans = apr_hash_make(h->pool);
    h->ids = apr_hash_make(h->pool);
    h->gone = first_seq ? first_seq - 1 : 0;
    return h;
}

static hent_t *ring_at(const hchan_t *ch, unsigned i)
{
    return ch->ring[(ch->head + i) % ch->cap];
}

static void ent_drop(sse_hist_t *h, hchan_t *ch)
{
    hent_t *e = ch->ring[ch->head];

    ch->head = (ch->head + 1) % ch->cap;
    ch->n--;
    if (e->seq > ch->gone) {
        ch->gone = e->seq;
    }
    /* Within a channel entries go oldest first, so no older entry with
     * this key can still be held. */
    if (apr_hash_get(h->ids, e->key, (apr_ssize_t)e->klen) == e) {
        apr_hash_set(h->ids, e->key, (apr_ssize_t)e->klen, NULL);
    }
    h->events--;
    h->bytes -= e->len;
    free(e);
}

static void chan_free(sse_hist_t *h, hchan_t *ch)
{
    while (ch->n) {
        ent_drop(h, ch);
    }
    if (ch->gone > h->gone) {
        h->gone = ch->gone;
    }
    apr_hash_set(h->chans, ch->name, APR_HASH_KEY_STRING, NULL);
    free(ch->ring);
    free(ch->name);
    free(ch);
}

void sse_hist_destroy(sse_hist_t *h)
{
    apr_hash_index_t *hi;

    if (!h) {
        return;
    }
    while ((hi = apr_hash_first(NULL, h->chans)) != NULL) {
        chan_free(h, apr_hash_this_val(hi));
    }
    apr_pool_destroy(h->pool);
    free(h);
}

static hchan_t *chan_get(sse_hist_t *h, const char *name)
{
    hchan_t *ch = apr_hash_get(h->chans, name, APR_HASH_KEY_STRING);

    if (ch) {
        return ch;
    }
    ch = calloc(1, sizeof(*ch));
    if (!ch || !(ch->name = strdup(name))) {
        free(ch);
        return NULL;
    }
    ch->gone = h->gone;
    apr_hash_set(h->chans, ch->name, APR_HASH_KEY_STRING, ch);
    return ch;
}

/* Make room for one more entry; 0 or -1. */
static int ring_grow(hchan_t *ch)
{
    unsigned cap = ch->cap ? ch->cap * 2 : 8, i;
    hent_t **ring;

    if (ch->n < ch->cap) {
        return 0;
    }
    ring = malloc(cap * sizeof(*ring));
    if (!ring) {
        return -1;
    }
    for (i = 0; i < ch->n; i++) {
        ring[i] = ring_at(ch, i);
    }
    free(ch->ring);
    ch->ring = ring;
    ch->cap = cap;
    ch->head = 0;
    return 0;
}

int sse_hist_add(sse_hist_t *h, const char *chan, uint64_t seq,
                 const char *id, const char *bytes, size_t len,
                 apr_time_t now, unsigned max_count, apr_interval_time_t max_age)
{
    size_t idlen = strlen(id), clen = strlen(chan);
    hchan_t *ch = chan_get(h, chan);
    hent_t *e;
    int rc = 0;

    if (!ch) {
        return -1;
    }
    if (max_count && ring_grow(ch) == 0
        && (e = malloc(sizeof(*e) + clen + 1 + idlen + 1 + len)) != NULL) {
        e->seq = seq;
        e->t = now;
        e->key = (char *)(e + 1);
        memcpy(e->key, chan, clen + 1);
        e->id = e->key + clen + 1;
        memcpy(e->id, id, idlen + 1);
        e->klen = clen + 1 + idlen;
        e->bytes = e->id + idlen + 1;
        memcpy(e->bytes, bytes, len);
        e->len = len;
        ch->ring[(ch->head + ch->n) % ch->cap] = e;
        ch->n++;
        /* apr_hash keeps the first key pointer it was given: drop an older
         * entry's mapping so the key is the live entry's own id. */
        apr_hash_set(h->ids, e->key, (apr_ssize_t)e->klen, NULL);
        apr_hash_set(h->ids, e->key, (apr_ssize_t)e->klen, e);
        h->events++;
        h->bytes += len;
    }
    else if (max_count) {
        rc = -1;
    }
    else if (seq > ch->gone) {
        ch->gone = seq;         /* kept nowhere: a resume over it is lossy */
    }
    while (ch->n && (ch->n > max_count
                     || (max_age > 0 && now - ring_at(ch, 0)->t > max_age))) {
        ent_drop(h, ch);
    }
    if (!ch->n) {
        chan_free(h, ch);
    }
    return rc;
}

int sse_hist_lookup(const sse_hist_t *h, const char *id,
                    const char *const *chans, int n, uint64_t *seq)
{
    size_t idlen = strlen(id);
    const char *p;
    uint64_t v = 0;
    int i, found = 0;

    for (i = 0; i < n; i++) {
        size_t clen = strlen(chans[i]);
        char *key = malloc(clen + 1 + idlen + 1);
        hent_t *e;
        if (!key) {
            continue;
        }
        memcpy(key, chans[i], clen + 1);
        memcpy(key + clen + 1, id, idlen + 1);
        e = apr_hash_get(h->ids, key, (apr_ssize_t)(clen + 1 + idlen));
        free(key);
        if (e && (!found || e->seq > *seq)) {
            *seq = e->seq;
            found = 1;
        }
    }
    if (found) {
        return 1;
    }
    for (p = id; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) {
            return 0;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == id || *p) {
        return 0;
    }
    *seq = v;
    return 1;
}

/* Index of the first entry of ch with seq > after (ch->n if none). */
static unsigned first_after(const hchan_t *ch, uint64_t after)
{
    unsigned lo = 0, hi = ch->n;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (ring_at(ch, mid)->seq <= after) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

int sse_hist_lost(const sse_hist_t *h, const char *const *chans, int n,
                  uint64_t after)
{
    int i;

    for (i = 0; i < n; i++) {
        const hchan_t *ch = apr_hash_get(h->chans, chans[i],
                                         APR_HASH_KEY_STRING);
        if ((ch ? ch->gone : h->gone) > after) {
            return 1;
        }
    }
    return 0;
}

int sse_hist_replay(sse_hist_t *h, const char *const *chans, int n,
                    uint64_t after, sse_buf_t *out, int *lost)
{
    hchan_t **ch = calloc(n ? (size_t)n : 1, sizeof(*ch));
    unsigned *pos = calloc(n ? (size_t)n : 1, sizeof(*pos));
    int i, rc = 0;

    if (!ch || !pos) {
        free(ch);
        free(pos);
        return -1;
    }
    *lost = sse_hist_lost(h, chans, n, after);
    for (i = 0; i < n; i++) {
        ch[i] = apr_hash_get(h->chans, chans[i], APR_HASH_KEY_STRING);
        pos[i] = ch[i] ? first_after(ch[i], after) : 0;
    }
    for (;;) {
        int best = -1;
        for (i = 0; i < n; i++) {
            if (ch[i] && pos[i] < ch[i]->n
                && (best < 0 || ring_at(ch[i], pos[i])->seq
                                < ring_at(ch[best], pos[best])->seq)) {
                best = i;
            }
        }
        if (best < 0) {
            break;
        }
        if (sse_buf_put(out, ring_at(ch[best], pos[best])->bytes,
                        ring_at(ch[best], pos[best])->len)) {
            rc = -1;
            break;
        }
        pos[best]++;
    }
    free(ch);
    free(pos);
    return rc;
}

static int ent_seq_cmp(const void *a, const void *b)
{
    const hent_t *x = *(hent_t *const *)a, *y = *(hent_t *const *)b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int sse_hist_each(const sse_hist_t *h, sse_hist_fn *fn, void *ctx)
{
    hent_t **all = malloc((h->events ? h->events : 1) * sizeof(*all));
    apr_hash_index_t *hi;
    size_t n = 0, i;
    int rc = 0;

    if (!all) {
        return -1;
    }
    for (hi = apr_hash_first(NULL, h->chans); hi; hi = apr_hash_next(hi)) {
        const hchan_t *ch = apr_hash_this_val(hi);
        unsigned j;
        for (j = 0; j < ch->n && n < h->events; j++) {
            all[n++] = ring_at(ch, j);
        }
    }
    qsort(all, n, sizeof(*all), ent_seq_cmp);
    for (i = 0; i < n && rc == 0; i++) {
        rc = fn(ctx, all[i]->key, all[i]->seq, all[i]->id, all[i]->t,
                all[i]->bytes, all[i]->len);
    }
    free(all);
    return rc;
}

void sse_hist_note_gone(sse_hist_t *h, const char *chan, uint64_t gone)
{
    hchan_t *ch = apr_hash_get(h->chans, chan, APR_HASH_KEY_STRING);

    if (ch && gone > ch->gone) {
        ch->gone = gone;
    }
}

void sse_hist_each_gone(const sse_hist_t *h,
                        void (*fn)(void *ctx, const char *chan, uint64_t gone),
                        void *ctx)
{
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, h->chans); hi; hi = apr_hash_next(hi)) {
        const hchan_t *ch = apr_hash_this_val(hi);
        if (ch->gone) {
            fn(ctx, ch->name, ch->gone);
        }
    }
}

void sse_hist_stats(const sse_hist_t *h, size_t *events, size_t *bytes)
{
    *events = h->events;
    *bytes = h->bytes;
}

const char *sse_hist_last_id(const sse_hist_t *h, const char *const *chans,
                             int n)
{
    const hent_t *best = NULL;
    int i;

    for (i = 0; i < n; i++) {
        const hchan_t *ch = apr_hash_get(h->chans, chans[i],
                                         APR_HASH_KEY_STRING);
        const hent_t *e = ch && ch->n ? ring_at(ch, ch->n - 1) : NULL;
        if (e && (!best || e->seq > best->seq)) {
            best = e;
        }
    }
    return best ? best->id : NULL;
}
