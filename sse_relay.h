/*
 * sse_relay.h: the calls that talk to the relay (sse_relay_client.c), for a
 * child's worker threads (tools/sse-publish uses sse_wire.h alone).  A
 * publish or admin request opens (or reuses) a connection, sends one
 * request and reads one result.  The relay itself is in sse_relayd.h: it assigns event ids, sends
 * each event to the brokers that count its channel and gathers the
 * brokers' answers to every other request.
 */
#ifndef SSE_RELAY_H
#define SSE_RELAY_H

#include "apr_tables.h"
#include "apr_hash.h"
#include "sse_proto.h"
#include "sse_wire.h"

/* Path of the relay's unix socket.  Set by the parent in post_config and
 * inherited by every child (tools/sse-publish sets its own); read-only
 * afterwards. */
extern const char *sse_relay_path;

/* How long a worker waits for the relay's answer (and to send to it); then
 * it answers 503 and hangs up.  The relay refuses a request it could not
 * answer well before that (RELAY_TAKE_MS in sse_relayd_int.h), so a 503
 * published nothing. */
#define SSE_RELAY_TIMEOUT_S 5

/* sse_relay_call's answer when the relay refused the request (REFUSED);
 * res->id then says why, in one line (and whether the event was written:
 * with SSECluster it may have been). */
#define SSE_RELAY_REFUSED (APR_OS_START_USERERR + 1)

/* Connect to the relay socket; returns a blocking fd with 5 s send and
 * receive timeouts, or -1 (errno set).  Any thread. */
int sse_relay_connect(void);

/* The relay's answer to one request: its RESULT, as sse_wire_result_get()
 * reads it (id, and one text per broker). */
typedef sse_wire_result_t sse_relay_result_t;

/* Send one request frame (req holds a whole frame; its header's seq is
 * set to the time of sending) and wait for the result; strings of res are
 * allocated in p.  Any thread.  Returns APR_SUCCESS, or an error when the
 * relay cannot be reached, answered badly or refused the request. */
apr_status_t sse_relay_call(apr_pool_t *p, sse_buf_t *req,
                            sse_relay_result_t *res);

/* Child: this process's pid, so that a worker thread knows its kept relay
 * connection is its own without asking the kernel on every call. */
void sse_relay_child_init(void);

/* Send a request about one channel key (CONNS, CLOSE) or none (key NULL:
 * LIST, STATS) and wait for the result. */
apr_status_t sse_relay_request(apr_pool_t *p, int op, const char *key,
                               sse_relay_result_t *res);

/* CHECK: would resuming the n channel keys after last_id miss events?
 * res->id is "1" when history was lost, else "0". */
apr_status_t sse_relay_check(apr_pool_t *p, const char *last_id,
                             const char *const *keys, int n,
                             sse_relay_result_t *res);

/* Publish one event (sse_wire.h) and wait for the result: res->id is its
 * id, res->replies the counts of streams it reached. */
apr_status_t sse_relay_publish(apr_pool_t *p, const sse_wire_publish_t *pub,
                               sse_relay_result_t *res);

/* The brokers' LIST answers of res ("channel\tcount" lines) summed per
 * channel: a hash of name -> long *, in p.  *names (if not NULL) gets the
 * names in the order first seen.  Any thread. */
apr_hash_t *sse_relay_sum_lists(apr_pool_t *p, const sse_relay_result_t *res,
                                apr_array_header_t **names);

#endif
