/*
 * sse_client.h: SSEMaxStreamsPerClient, the open streams of each client
 * address counted over every child process (sse_client.c).
 *
 * The parent makes, in post_config, one table in shared memory per server
 * generation (like sse_count.h): fixed-size, open addressing, no lock.  An
 * entry is (address key, child pid, count); a key's entries lie within a
 * window of entries from its hash, and the address's total is the sum of
 * that window's entries with its key.  A worker thread admits a stream
 * (sse_client_admit) by counting it in its child's entry, then adding up:
 * over the cap it takes the count back and the client gets 429.  The
 * place admitted is an index (sse_client_slot_t) that travels with the
 * stream (sse_sub_spec_t.client, sse_sub_t.client) and is given back, by
 * whichever thread ends the stream, with one atomic decrement
 * (sse_client_release), at the same points as sse_count_release().  When
 * a child exits, even by kill -9, the parent's child_status hook clears its
 * entries.
 *
 * The key is the address Apache gives the request (r->useragent_ip, so
 * mod_remoteip's), an IPv6 address counted by its first
 * SSEClientIPv6Prefix bits (64 by default).
 */
#ifndef SSE_CLIENT_H
#define SSE_CLIENT_H

#include "httpd.h"
#include "apr_pools.h"

/* A counted place: entry index + 1; 0 for none (not counted). */
typedef unsigned sse_client_slot_t;

/* Retry-After of a 429, in seconds. */
#define SSE_CLIENT_RETRY_AFTER 10

/* Parent, post_config: a table sized for max_streams open streams
 * (SSEMaxSubscribers, 0: none), IPv6 addresses keyed by their first
 * v6prefix (1-64) bits; APR status. */
apr_status_t sse_client_init(apr_pool_t *pconf, int max_streams,
                             int v6prefix);

/* Child, child_init. */
void sse_client_claim(void);

/* Parent, child_status hook: the child pid is gone, and its streams. */
void sse_client_child_exited(pid_t pid);

/* Worker thread: count one more stream of r's client address, unless that
 * passes max (0: no cap; counted all the same).  0 with *slot set (0 when
 * the stream is not counted: no table, not an IP address, no room), or -1
 * over the cap: then nothing is counted, the refusal is counted for the
 * status page and logged (at most once a minute per address, server-wide),
 * and the caller answers with sse_client_refuse(). */
int sse_client_admit(request_rec *r, int max, sse_client_slot_t *slot);

/* Any thread: a stream counted at slot has ended (0: nothing to do). */
void sse_client_release(sse_client_slot_t slot);

/* Worker thread: answer r 429 Too Many Requests, Retry-After and the
 * one-line reason why; nothing logged (sse_client_admit did).  Returns
 * OK, for the handler to return. */
int sse_client_refuse(request_rec *r, const char *why);

/* Any process of this generation: 429s answered since the server
 * (re)started, and the client addresses refused a stream in the last
 * minute. */
void sse_client_stats(apr_uint64_t *refused, unsigned *at_cap);

#endif
