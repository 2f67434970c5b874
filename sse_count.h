/*
 * sse_count.h: the server-wide counts of open streams, for
 * SSEMaxSubscribers (every stream) and SSEMaxHeldStreams (held ones, TLS
 * and HTTP/2, see sse_held.h).  Shared memory made by the parent in
 * post_config holds one slot per child process (claimed by pid in
 * child_init) with both counters; each total is the sum over the slots.
 * When a child exits, even by kill -9, the parent's child_status hook
 * zeroes its slot, so a dead child's streams never stay counted.  No lock:
 * atomics only.  One table per server generation.
 */
#ifndef SSE_COUNT_H
#define SSE_COUNT_H

#include "apr_pools.h"

/* Parent, post_config: a table for `children` processes; APR status. */
apr_status_t sse_count_init(apr_pool_t *pconf, int children);

/* Child, child_init: take this process's counter. */
void sse_count_claim(void);

/* Worker thread: count one more stream unless max (0: no limit) are open;
 * returns 0, or -1 when full. */
int sse_count_admit(int max);

/* Any thread of a child: one stream of this process has ended. */
void sse_count_release(void);

/* Worker thread: count one more held stream unless max are open in the
 * whole server (0: none may be); returns 0, or -1 when full.  A held
 * stream is counted by sse_count_admit() too. */
int sse_count_held_admit(int max);

/* Worker thread: one held stream of this process has ended. */
void sse_count_held_release(void);

/* Parent, child_status hook: the child pid is gone. */
void sse_count_child_exited(pid_t pid);

#endif
