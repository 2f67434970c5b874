/*
 * sse_trim.c: a suspended stream's memory (see sse_trim.h).
 *
 * A suspended stream keeps its connection (its pool, its bucket
 * allocator, its SSL object) and its request for as long as it is open,
 * which is most of the server's memory with many of them.  Most of that
 * is in use (the filters' contexts, the request, OpenSSL's state); what
 * follows keeps back what is not: one trim before the stream starts (its
 * request's insert_filter hook), others at the one moment nothing else runs
 * on the connection: on the watcher thread, before it watches the stream
 * (the handler's thread is gone, the MPM has finished suspending it, and
 * no round is queued).
 *
 * The connection allocator's free list.  The event MPM gives every
 * connection a pool with its own allocator, and that allocator keeps the
 * blocks its pools and its bucket allocator gave back (up to MaxMemFree)
 * for the next request.  A stream has no next request: what is on the
 * list then (the block of the request's socket reads, at least) is
 * resident memory held for nothing.  The allocator is capped at one
 * boundary's worth (apr_allocator_max_free_set: every block freed from
 * then on goes back to malloc), and its list is emptied by taking a few
 * blocks from it and freeing them, which the cap sends to malloc (an
 * allocator has no call that empties its list).  Safe: the allocator is
 * this connection's alone (its pool owns it; it dies with the pool when
 * the stream ends), and a later round that needs a block (a read from
 * the client, a write the socket did not take) gets one from malloc.
 * Only the event MPM suspends streams, and it is the one that gives each
 * connection its own allocator: a pool whose allocator is shared (a
 * parent's, or one with a mutex) is left alone.
 *
 * mod_ssl's coalescing filter ("SSL/TLS Coalescing Filter", the first
 * connection output filter of a TLS connection) merges small buckets
 * into bigger TLS records.  The first time it merges (a stream's
 * headers and first bytes, passed together), it allocates an 8 KB
 * buffer in the connection's pool, which stays until the connection
 * ends.  A stream passes every write alone and flushed, so after that
 * first pass the buffer is never used again.  So for a GET on the "sse"
 * handler over TLS (HTTP/1.1) the request's output chain skips it: the
 * insert_filter hook, before the handler writes anything, links the
 * request's last filter to the one after it.  Only that request's chain
 * changes; the connection's (what a later request on the connection or
 * the connection's own buckets, EOR and EOC, pass through) still has it.
 * It holds nothing when the request starts (it keeps bytes only between
 * passes, and the EOR bucket that ends every earlier request on the
 * connection takes them along), so skipping it loses no bytes.  (Once
 * allocated, the buffer could not be given back: unlinking the filter at
 * suspension would save nothing.)  The one cost: the response headers
 * and the stream's first bytes go in two TLS records instead of one.  It
 * relies on mod_ssl's filter name and on the request chain's last filter
 * pointing at the connection's first (httpd's filter chains are public
 * structures, but that layout is not a documented API): the hook does
 * nothing unless the first connection filter in the request's chain has
 * that name and follows a filter of this request.  Once suspended, the
 * stream's request is over (sse_suspend.c ends it) and its events go
 * through the connection's filters: there the filter is removed
 * (ap_remove_output_filter) when the watcher takes the stream, after
 * flushed passes, so it holds nothing; the stream's connection has no
 * later request.
 *
 * Not trimmed, and why.  OpenSSL's record buffers (some 17 KB each for
 * reading and writing): mod_ssl already sets SSL_MODE_RELEASE_BUFFERS,
 * with which OpenSSL frees each as soon as it is empty, whenever
 * MaxMemFree is not unlimited (its default is 2048 KB); a suspended
 * stream's SSL object was seen to have that mode, and freeing its
 * buffers at suspension (SSL_free_buffers) saved nothing.  (The
 * request's pool is freed too, but by sse_suspend.c, which ends the
 * request when the watcher takes the stream.)  The core output filter's
 * deferred-write pool and the bucket allocator's block: in use, and the
 * former is core's private state.
 *
 * Memory: nothing is allocated here.
 */
#include <string.h>
#include <strings.h>

#include "httpd.h"
#include "http_config.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_filter.h"
#include "apr_pools.h"
#include "apr_allocator.h"

#include "sse_trim.h"

/* Blocks taken from the free list at most: a stream's connection has one
 * or two on it (measured: one, the block of its socket reads). */
#define TRIM_FREE_BLOCKS 4

/* Empty c's allocator's free list and keep it empty. */
static void trim_free_list(conn_rec *c)
{
    apr_allocator_t *a = apr_pool_allocator_get(c->pool);
    apr_memnode_t *taken = NULL, *node;
    int i;

    /* only an allocator that this connection's pool owns and no other
     * thread locks: the event MPM's, one per connection */
    if (!a || apr_allocator_owner_get(a) != c->pool
        || apr_allocator_mutex_get(a)) {
        return;
    }
    apr_allocator_max_free_set(a, 1);   /* keep nothing from now on */
    for (i = 0; i < TRIM_FREE_BLOCKS; i++) {
        /* the smallest block: the list's first, else a fresh one */
        if (!(node = apr_allocator_alloc(a, 1))) {
            break;
        }
        node->next = taken;
        taken = node;
    }
    if (taken) {
        apr_allocator_free(a, taken);   /* past the cap: all to malloc */
    }
}

/* mod_ssl's coalescing filter, by name (ssl_engine_io.c). */
#define TRIM_COALESCE "SSL/TLS Coalescing Filter"

/* The suspended stream writes through the connection's filters (its
 * request is over): take mod_ssl's coalescing filter out of them, so its
 * 8 KB buffer is not made at the stream's first event (each write is
 * flushed anyway, so it would only copy).  Nothing waits in it: every
 * write before was flushed. */
static void trim_coalesce(conn_rec *c)
{
    ap_filter_t *f;

    for (f = c->output_filters; f; f = f->next) {
        if (f->frec && f->frec->name
            && !strcasecmp(f->frec->name, TRIM_COALESCE)) {
            ap_remove_output_filter(f);
            return;
        }
    }
}

void sse_trim_suspended(conn_rec *c)
{
    trim_free_list(c);
    trim_coalesce(c);
}

/* insert_filter: a stream's request skips mod_ssl's coalescing filter. */
static void trim_insert_filter(request_rec *r)
{
    conn_rec *c = r->connection;
    ap_filter_t *f;

    if (!r->handler || strcmp(r->handler, "sse") || r->main
        || r->method_number != M_GET || r->header_only || c->master
        || !ap_ssl_conn_is_ssl(c)) {
        return;
    }
    /* find the request's last filter: the one before the first
     * connection filter (r NULL) */
    for (f = r->output_filters; f && f->next && f->next->r; f = f->next) {
    }
    if (f && f->r == r && f->next && f->next->frec && f->next->frec->name
        && !strcasecmp(f->next->frec->name, TRIM_COALESCE)) {
        f->next = f->next->next;
    }
}

void sse_trim_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_insert_filter(trim_insert_filter, NULL, NULL, APR_HOOK_LAST);
}
