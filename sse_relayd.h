/*
 * sse_relayd.h: the relay daemon, one process per server.  The parent
 * forks it in post_config (sse_relay_spawn.c, as mod_cgid does its
 * daemon); it outlives graceful restarts, drops root, and listens on a
 * unix socket (sse_relay_path) that only the httpd run user may use.
 * Every child's broker keeps one connection to it (sse_broker.c); worker
 * threads talk to it through sse_relay.h.
 */
#ifndef SSE_RELAYD_H
#define SSE_RELAYD_H

#include "httpd.h"

/* What the relay is started with: SSECluster and friends (url NULL: this
 * server alone), stats_channel: the key of SSEStatsChannel, where the
 * relay publishes its counters every second; the history's store. */
typedef struct {
    const char *url;
    const char *prefix;
    const char *password;
    const char *sent_password;  /* the sentinels' (redis-sentinel://) */
    const char *stats_channel;
    int wait_replicas, wait_ms; /* SSEClusterWait */
    /* the history on disk (SSEHistoryPath; NULL: in memory), its sync
     * mode (sse_store.h) and its largest size */
    const char *store_path;
    int store_sync;
    apr_off_t store_max;
    int store_strict;           /* SSEHistoryStrict */
    /* the directory where the relay this one replaces left its history
     * (a new build after a graceful restart), or NULL */
    const char *handover;
    /* relays httpd has started since it started (this one too), and
     * replaced by a new build: for status and metrics */
    int starts, upgrades;
} sse_cluster_conf_t;

/* The build this module is ("mod_sse-build <number>", fixed when it was
 * compiled): a relay of another build is replaced at a graceful restart. */
extern const char sse_build_id[];

/* Parent, the first post_config of a start (before httpd detaches, so
 * that `apachectl start` fails): with SSEHistoryStrict On, a store that
 * the relay would move aside stops the start (SSE00015).  OK or an
 * HTTP-style error.  The check reads in a child and writes nothing. */
int sse_relay_store_strict(server_rec *s, const char *path, apr_off_t max);

/* Parent, post_config: SSEHistoryPath's directory exists, belongs to the
 * httpd user and has mode 0700 (made so when missing, as root); OK, or
 * logged (SSE00014: the history is then kept in memory) and an HTTP-style
 * error. */
int sse_relay_store_dir(apr_pool_t *p, server_rec *s, const char *path);

/* Parent, post_config: start the relay unless one of an earlier generation
 * still runs with the same protocol and cluster settings; ask the parent
 * to restart it if it dies.  Returns OK or an HTTP-style error for
 * post_config.  (sse_relay_spawn.c) */
int sse_relay_spawn(apr_pool_t *pconf, server_rec *s,
                    const sse_cluster_conf_t *cc);

/* The daemon's body, in the process the parent forked; never returns.
 * (sse_relayd.c) */
void sse_relayd_main(apr_pool_t *pool, server_rec *s, const char *path,
                     const sse_cluster_conf_t *cc);

#endif
