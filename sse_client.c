/*
 * sse_client.c: the open streams of each client address, over every child,
 * for SSEMaxStreamsPerClient (see sse_client.h).
 *
 * An entry is two 64-bit words, each read and written atomically: the key
 * and a word holding the count (bits 0-19), the pid of the child that
 * counts there (bits 20-42) and a generation (bits 43-63).  Only a count of
 * 0 lets an entry change hands: a thread takes it by compare-and-swap to a
 * new generation with the count "busy", writes the key, then sets the
 * count to 1.  A reader reads the word, the key, the word again: the same
 * generation both times means the key belonged to that count.  So a stream
 * counted in an entry pins its key and owner until it is released, and
 * the release is a plain decrement.
 *
 * A second, small table notes the addresses refused in the last minute
 * (the log line is written once a minute per address; the status page
 * counts them); a stale entry is taken over by compare-and-swap on its
 * time.
 */
#include <arpa/inet.h>
#include <unistd.h>

#include "httpd.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_atomic.h"
#include "apr_shm.h"
#include "apr_strings.h"

#include "sse_log.h"
#include "sse_client.h"

#define W_COUNT_BITS 20
#define W_PID_BITS   23
#define W_GEN_BITS   (64 - W_COUNT_BITS - W_PID_BITS)
#define W_COUNT(w)   ((w) & ((APR_UINT64_C(1) << W_COUNT_BITS) - 1))
#define W_PID(w)     (((w) >> W_COUNT_BITS) & ((APR_UINT64_C(1) << W_PID_BITS) - 1))
#define W_GEN(w)     ((w) >> (W_COUNT_BITS + W_PID_BITS))
#define W_MAKE(gen, pid, n) ((((gen) & ((APR_UINT64_C(1) << W_GEN_BITS) - 1)) \
                              << (W_COUNT_BITS + W_PID_BITS)) \
                             | ((apr_uint64_t)(pid) << W_COUNT_BITS) | (n))
/* a count that means "being given a key" */
#define W_BUSY       ((APR_UINT64_C(1) << W_COUNT_BITS) - 1)

/* The entries one key may use, from its hash on. */
#define WINDOW 64
/* The refused addresses of the last minute: how many, and the window. */
#define RECENT_SIZE   1024
#define RECENT_WINDOW 16
#define MINUTE 60
/* IPv4 keys: 0:ffff:a.b:c.d::/64, in ::/8, which no client has. */
#define KEY_V4 APR_UINT64_C(0x0000ffff00000000)

typedef struct {
    volatile apr_uint64_t key;
    volatile apr_uint64_t word;
} client_entry_t;

typedef struct {
    volatile apr_uint64_t key;
    volatile apr_uint32_t last;     /* seconds (epoch) of the last refusal, 0: free */
    apr_uint32_t pad;
} client_recent_t;

typedef struct {
    volatile apr_uint64_t refused;  /* 429s answered */
    volatile apr_uint64_t untracked; /* streams the table had no room for */
    volatile apr_uint32_t told_proxy; /* the proxy notice is logged */
    volatile apr_uint32_t told_full;  /* seconds of the last "no room" line */
    apr_uint32_t mask;              /* entries - 1, a power of two - 1 */
    int v6prefix;
    client_recent_t recent[RECENT_SIZE];
    client_entry_t entries[1];      /* mask + 1 of them */
} client_table_t;

/* Set in the parent, inherited by the children. */
static client_table_t *table;
/* This child's pid (0 in the parent). */
static apr_uint32_t me;

static apr_uint32_t client_hash(apr_uint64_t k)
{
    k ^= k >> 33;
    k *= APR_UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k *= APR_UINT64_C(0xc4ceb9fe1a85ec53);
    k ^= k >> 33;
    return (apr_uint32_t)k;
}

apr_status_t sse_client_init(apr_pool_t *pconf, int max_streams,
                             int v6prefix)
{
    apr_size_t n = 1024, want = max_streams > 0 ? (apr_size_t)max_streams
                                                : 65536;
    apr_shm_t *shm;
    apr_status_t rv;

    /* twice the streams there may be, so that free entries are near */
    while (n < 2 * want && n < ((apr_size_t)1 << 22)) {
        n <<= 1;
    }
    rv = apr_shm_create(&shm, sizeof(client_table_t)
                        + (n - 1) * sizeof(client_entry_t), NULL, pconf);
    if (rv != APR_SUCCESS) {
        table = NULL;
        return rv;
    }
    table = apr_shm_baseaddr_get(shm);
    memset(table, 0, sizeof(client_table_t) + (n - 1) * sizeof(client_entry_t));
    table->mask = (apr_uint32_t)(n - 1);
    table->v6prefix = v6prefix >= 1 && v6prefix <= 64 ? v6prefix : 64;
    return APR_SUCCESS;
}

void sse_client_claim(void)
{
    me = (apr_uint32_t)getpid();
    if (me >= (APR_UINT64_C(1) << W_PID_BITS)) {
        me = 0;                 /* cannot be told apart: not counted */
    }
}

void sse_client_child_exited(pid_t pid)
{
    apr_uint32_t i;

    for (i = 0; table && i <= table->mask; i++) {
        client_entry_t *e = &table->entries[i];
        apr_uint64_t w = apr_atomic_read64(&e->word);
        /* the child is gone: only others may change its entries now (take
         * one over at count 0), so retry until it is not its */
        while (W_PID(w) == (apr_uint64_t)pid && W_COUNT(w)) {
            apr_uint64_t was = apr_atomic_cas64(&e->word,
                                                W_MAKE(W_GEN(w) + 1, 0, 0), w);
            if (was == w) {
                break;
            }
            w = was;
        }
    }
}

/* The key of the address ip in *key; 0, or -1 when ip is not one. */
static int client_key(const char *ip, apr_uint64_t *key)
{
    unsigned char a[16];
    int i;

    if (!ip) {
        return -1;
    }
    if (inet_pton(AF_INET, ip, a) == 1) {
        *key = KEY_V4 | ((apr_uint64_t)a[0] << 24) | ((apr_uint64_t)a[1] << 16)
               | ((apr_uint64_t)a[2] << 8) | a[3];
        return 0;
    }
    if (inet_pton(AF_INET6, ip, a) != 1) {
        return -1;
    }
    if (!memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12)) {   /* v4-mapped */
        *key = KEY_V4 | ((apr_uint64_t)a[12] << 24)
               | ((apr_uint64_t)a[13] << 16) | ((apr_uint64_t)a[14] << 8)
               | a[15];
        return 0;
    }
    *key = 0;
    for (i = 0; i < 8; i++) {
        *key = (*key << 8) | a[i];
    }
    if (table->v6prefix < 64) {
        *key &= ~((APR_UINT64_C(1) << (64 - table->v6prefix)) - 1);
    }
    return 0;
}

/* Count one stream of key in this child's entry for it, or in a free
 * one; its index, or -1 when the window has none. */
static long client_take(apr_uint64_t key)
{
    apr_uint32_t h = client_hash(key), i;

    for (i = 0; i < WINDOW; i++) {      /* this child's entry for key */
        apr_uint32_t at = (h + i) & table->mask;
        client_entry_t *e = &table->entries[at];
        apr_uint64_t w = apr_atomic_read64(&e->word);
        while (W_PID(w) == me && W_COUNT(w) < W_BUSY - 1
               && apr_atomic_read64(&e->key) == key) {
            apr_uint64_t was = apr_atomic_cas64(&e->word, w + 1, w);
            if (was == w) {
                return (long)at;
            }
            w = was;            /* a release, or taken over: look again */
        }
    }
    for (i = 0; i < WINDOW; i++) {      /* a free one */
        apr_uint32_t at = (h + i) & table->mask;
        client_entry_t *e = &table->entries[at];
        apr_uint64_t w = apr_atomic_read64(&e->word);
        if (W_COUNT(w) == 0
            && apr_atomic_cas64(&e->word, W_MAKE(W_GEN(w) + 1, me, W_BUSY), w)
               == w) {
            apr_atomic_set64(&e->key, key);
            apr_atomic_set64(&e->word, W_MAKE(W_GEN(w) + 1, me, 1));
            return (long)at;
        }
    }
    return -1;
}

/* The streams of key counted in every child. */
static unsigned client_total(apr_uint64_t key)
{
    apr_uint32_t h = client_hash(key), i;
    unsigned total = 0;

    for (i = 0; i < WINDOW; i++) {
        client_entry_t *e = &table->entries[(h + i) & table->mask];
        apr_uint64_t w1 = apr_atomic_read64(&e->word), w2, k;
        if (!W_COUNT(w1) || W_COUNT(w1) == W_BUSY) {
            continue;
        }
        k = apr_atomic_read64(&e->key);
        w2 = apr_atomic_read64(&e->word);
        if (k == key && W_GEN(w1) == W_GEN(w2) && W_COUNT(w2) != W_BUSY) {
            total += (unsigned)W_COUNT(w2);
        }
    }
    return total;
}

void sse_client_release(sse_client_slot_t slot)
{
    if (slot && table && slot - 1 <= table->mask) {
        apr_atomic_dec64(&table->entries[slot - 1].word);
    }
}

/* A refusal of key at now: 1 when its log line is due (none in the last
 * minute), 0 when not, or when the table of refused addresses has no
 * room near key (then the address is not logged). */
static int client_recent(apr_uint64_t key, apr_uint32_t now)
{
    apr_uint32_t h = client_hash(key), i;

    for (i = 0; i < RECENT_WINDOW; i++) {
        client_recent_t *rc = &table->recent[(h + i) & (RECENT_SIZE - 1)];
        apr_uint32_t last = apr_atomic_read32(&rc->last);
        if (last && apr_atomic_read64(&rc->key) == key) {
            return now - last >= MINUTE
                   && apr_atomic_cas32(&rc->last, now, last) == last;
        }
    }
    for (i = 0; i < RECENT_WINDOW; i++) {
        client_recent_t *rc = &table->recent[(h + i) & (RECENT_SIZE - 1)];
        apr_uint32_t last = apr_atomic_read32(&rc->last);
        if ((!last || now - last >= MINUTE)
            && apr_atomic_cas32(&rc->last, now, last) == last) {
            apr_atomic_set64(&rc->key, key);
            return 1;
        }
    }
    return 0;
}

void sse_client_stats(apr_uint64_t *refused, unsigned *at_cap)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now()), i;

    *refused = 0;
    *at_cap = 0;
    if (!table) {
        return;
    }
    *refused = apr_atomic_read64(&table->refused);
    for (i = 0; i < RECENT_SIZE; i++) {
        apr_uint32_t last = apr_atomic_read32(&table->recent[i].last);
        *at_cap += last && now - last < MINUTE;
    }
}

/* Once per server generation: streams come through a proxy that
 * mod_remoteip does not see through, so every client behind it has the
 * proxy's address. */
static void client_proxy_notice(request_rec *r, int max)
{
    const char *xff = apr_table_get(r->headers_in, "X-Forwarded-For");

    if (!xff) {
        xff = apr_table_get(r->headers_in, "Forwarded");
    }
    if (!xff || strcmp(r->useragent_ip, r->connection->client_ip)
        || apr_atomic_read32(&table->told_proxy)
        || apr_atomic_cas32(&table->told_proxy, 1, 0) != 0) {
        return;
    }
    ap_log_rerror(APLOG_MARK, max > 0 ? APLOG_WARNING : APLOG_NOTICE, 0, r,
                  "SSE00601: event streams come through a proxy (%s, which "
                  "forwards for %s) whose clients Apache does not see: "
                  "SSEMaxStreamsPerClient%s counts all of them as one "
                  "address. Set up mod_remoteip (RemoteIPHeader, "
                  "RemoteIPTrustedProxy) first (logged once)",
                  r->connection->client_ip, xff,
                  max > 0 ? apr_psprintf(r->pool, " %d", max)
                          : ", if you set it,");
}

int sse_client_admit(request_rec *r, int max, sse_client_slot_t *slot)
{
    apr_uint64_t key;
    apr_uint32_t now;
    unsigned total;
    long at;

    *slot = 0;
    if (!table || !me || client_key(r->useragent_ip, &key) < 0) {
        return 0;
    }
    client_proxy_notice(r, max);
    if ((at = client_take(key)) < 0) {
        apr_atomic_inc64(&table->untracked);
        now = (apr_uint32_t)apr_time_sec(apr_time_now());
        {
            apr_uint32_t last = apr_atomic_read32(&table->told_full);
            if (now - last >= MINUTE
                && apr_atomic_cas32(&table->told_full, now, last) == last) {
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              "SSE00602: no room to count the streams of %s "
                              "(SSEMaxStreamsPerClient): admitted without "
                              "being counted; %" APR_UINT64_T_FMT " so far "
                              "(logged once a minute)", r->useragent_ip,
                              apr_atomic_read64(&table->untracked));
            }
        }
        return 0;
    }
    if (max <= 0 || (total = client_total(key)) <= (unsigned)max) {
        *slot = (sse_client_slot_t)at + 1;
        return 0;
    }
    apr_atomic_dec64(&table->entries[at].word);
    apr_atomic_inc64(&table->refused);
    now = (apr_uint32_t)apr_time_sec(apr_time_now());
    if (client_recent(key, now ? now : 1)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "SSE00603: %s%s has %u open event streams, "
                      "SSEMaxStreamsPerClient %d: its new ones are refused "
                      "with 429 (logged once a minute per address)",
                      r->useragent_ip, strchr(r->useragent_ip, ':')
                      && !strchr(r->useragent_ip, '.')
                      ? apr_psprintf(r->pool, " (counted by its /%d)",
                                     table->v6prefix) : "",
                      total - 1, max);
    }
    return -1;
}

int sse_client_refuse(request_rec *r, const char *why)
{
    r->status = HTTP_TOO_MANY_REQUESTS;
    apr_table_setn(r->headers_out, "Retry-After",
                   APR_STRINGIFY(SSE_CLIENT_RETRY_AFTER));
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_rprintf(r, "%s\n", why);
    return OK;
}
