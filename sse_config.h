/*
 * sse_config.h: mod_sse's configuration: the defaults, the per-directory
 * and per-server records.  Filled by sse_conf.c (parent); read by
 * mod_sse.c's post_config and, in the worker threads, by the request-side
 * files (sse_request.c, sse_stream.c, sse_publish.c).  The other files log
 * through sse_log.h.
 */
#ifndef SSE_CONFIG_H
#define SSE_CONFIG_H

#include "ap_expr.h"
#include "sse_log.h"

#define SSE_DEFAULT_MAX_EVENT_SIZE (64 * 1024)
#define SSE_DEFAULT_MAX_BACKLOG    (256 * 1024)
#define SSE_DEFAULT_KEEPALIVE      15
#define SSE_STREAM_SNDBUF          (64 * 1024)
#define SSE_DEFAULT_HISTORY        100
#define SSE_DEFAULT_HISTORY_AGE    3600
#define SSE_DEFAULT_MAX_CHANNELS   32
#define SSE_DEFAULT_MAX_STREAMS    50000
#define SSE_DEFAULT_MAX_PER_CLIENT 0
#define SSE_DEFAULT_V6_PREFIX      64
#define SSE_DEFAULT_HISTORY_MAX    (256 * 1024 * 1024)  /* SSEHistoryMaxSize */
/* SSERestartSpread: a graceful restart closes streams over this window */
#define SSE_DEFAULT_RESTART_SPREAD 0
#define SSE_MAX_RESTART_SPREAD     apr_time_from_sec(300)
#define SSE_PRIVATE_WORD           "*private*"
#define SSE_HANDOVER_HEADER        "X-SSE-Channel"

/* The value of an int setting, or its default when unset. */
#define SSE_OR(v, dflt) ((v) >= 0 ? (v) : (dflt))

/* Every field is -1 (or NULL) when unset, so merge can tell. */
typedef struct {
    apr_array_header_t *channel; /* SSEChannel's items, one ap_expr_info_t *
                                   each; NULL: the channel argument      */
    ap_expr_info_t *event;      /* SSEEvent: default event name          */
    ap_expr_info_t *data;       /* SSEData: default data                 */
    apr_off_t max_event_size;   /* SSEMaxEventSize                       */
    apr_off_t max_backlog;      /* SSEMaxBacklog                         */
    int keepalive;              /* SSEKeepalive seconds, 0 off           */
    int retry;                  /* SSERetry ms                           */
    int history;                /* SSEHistory count                      */
    int history_age;            /* SSEHistory max age, seconds           */
    int max_channels;           /* SSEMaxChannels per request            */
    int handover;               /* SSEHandover on|off                    */
    int lost_event;             /* SSEHistoryLostEvent on|off, -1 unset  */
    const char *ns;             /* SSENamespace, NULL: the ServerName    */
    int protected_ok;           /* SSEProtectedChannels on|off           */
    apr_array_header_t *origins; /* SSEPublishOrigins (const char *)     */
    apr_array_header_t *stream_cors; /* SSECORSOrigins (const char *, "*" too) */
    int max_per_client;         /* SSEMaxStreamsPerClient, 0: no cap     */
    /* a Mercure hub (SetHandler mercure, sse_hub.c) */
    const struct sse_token_key_t *hub_pub_key;  /* MercurePublisherJWT  */
    const struct sse_token_key_t *hub_sub_key;  /* MercureSubscriberJWT */
    int hub_anonymous;          /* MercureAnonymous on|off               */
    apr_array_header_t *hub_cors; /* MercureCORSOrigins (const char *)  */
    const char *hub_link;       /* MercureHubLink: discovery URL         */
    const struct sse_token_key_t *stream_key;   /* SSESubscriberJWT  */
} sse_dir_conf_t;

typedef struct {
    int max_streams;            /* SSEMaxSubscribers, -1 unset           */
    int max_held;               /* SSEMaxHeldStreams (whole server), -1 unset */
    int suspend;                /* SSESuspend on|off, -1 unset (on)      */
    const char *cluster_url;    /* SSECluster, NULL: this server alone   */
    const char *cluster_prefix; /* SSEClusterPrefix                      */
    const char *cluster_password; /* read from SSEClusterPasswordFile    */
    const char *cluster_sent_password; /* SSEClusterSentinelPasswordFile */
    int cluster_wait;           /* SSEClusterWait replicas (0: none)     */
    int cluster_wait_ms;        /* ... and how long a publish waits      */
    const char *stats_channel;  /* SSEStatsChannel, NULL: none           */
    int v6prefix;               /* SSEClientIPv6Prefix, -1 unset (64)    */
    const char *hist_path;      /* SSEHistoryPath, NULL: in memory       */
    int hist_sync;              /* SSEHistorySync, -1 unset (everysec)   */
    apr_off_t hist_max;         /* SSEHistoryMaxSize bytes, -1 unset     */
    int hist_strict;            /* SSEHistoryStrict: 1 on, 0 off, -1 unset */
    apr_interval_time_t restart_spread; /* SSERestartSpread, -1 unset    */
} sse_srv_conf_t;

#endif
