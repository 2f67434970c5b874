/*
 * sse_relay.h: the relay daemon, one per server, and the calls that talk to
 * it.  The parent forks it in post_config (as mod_cgid does its daemon);
 * it outlives graceful restarts, drops root, and listens on a unix socket
 * (sse_relay_path) that only the httpd run user may use.  Every child's
 * broker keeps one connection to it; publish and admin requests open a
 * short connection, send one request and read one result.  The relay
 * assigns event ids, fans each request out to every broker and gathers
 * their answers.
 */
#ifndef SSE_RELAY_H
#define SSE_RELAY_H

#include "httpd.h"
#include "apr_tables.h"
#include "apr_hash.h"
#include "sse_proto.h"

/* SSECluster and friends; url NULL: this server alone.  stats_channel:
 * SSEStatsChannel, where the relay publishes its counters every second. */
typedef struct {
    const char *url;
    const char *prefix;
    const char *password;
    const char *stats_channel;
} sse_cluster_conf_t;

/* Parent, post_config: start the relay unless one of an earlier generation
 * still runs with the same cluster settings; ask the parent to restart it
 * if it dies.  Returns OK or an HTTP-style error for post_config. */
int sse_relay_spawn(apr_pool_t *pconf, server_rec *s,
                    const sse_cluster_conf_t *cc);

/* Connect to the relay socket; returns a blocking fd with 5 s send and
 * receive timeouts, or -1 (errno set).  Any thread. */
int sse_relay_connect(void);

/* The relay's answer to one request. */
typedef struct {
    const char *id;             /* the event id for a publish, else "" */
    apr_array_header_t *replies;/* const char *: one text per broker */
} sse_relay_result_t;

/* Send one request frame (req holds a whole frame; its header's seq is
 * set to the time of sending) and wait for the result; strings of res are
 * allocated in p.  Any thread.  Returns APR_SUCCESS, or an error when the
 * relay cannot be reached, answered badly or refused the request. */
apr_status_t sse_relay_call(apr_pool_t *p, sse_buf_t *req,
                            sse_relay_result_t *res);

/* Child: this process's pid, so that a worker thread knows its kept relay
 * connection is its own without asking the kernel on every call. */
void sse_relay_child_init(void);

/* Build a request of type op from n strings and nnums numbers (either may
 * be 0), send it with sse_relay_call and wait for the result. */
apr_status_t sse_relay_ask(apr_pool_t *p, int op, const char *const *strs,
                           const apr_size_t *lens, int n,
                           const uint32_t *nums, int nnums,
                           sse_relay_result_t *res);

/* The brokers' LIST answers of res ("channel\tcount" lines) summed per
 * channel: a hash of name -> long *, in p.  *names (if not NULL) gets the
 * names in the order first seen.  Any thread. */
apr_hash_t *sse_relay_sum_lists(apr_pool_t *p, const sse_relay_result_t *res,
                                apr_array_header_t **names);

#endif
