/*
 * sse_trim.c: a suspended stream's memory (see sse_trim.h).
 *
 * A suspended stream keeps its connection (its pool, its bucket
 * allocator, its SSL object) and its request for as long as it is open,
 * which is most of the server's memory with many of them.  Most of that
 * is in use (the filters' contexts, the request, OpenSSL's state); what
 * follows gives back what is not, at the one moment nothing else runs on
 * the connection: the watcher thread, before it watches the stream (the
 * handler's thread is gone, the MPM has finished suspending it, and no
 * round is queued).
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
 * Memory: nothing is allocated here.
 */
#include "httpd.h"
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

void sse_trim_suspended(conn_rec *c)
{
    trim_free_list(c);
}
