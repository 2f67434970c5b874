/*
 * sse_private.h: what every file of mod_sse shares: the module record (so
 * "LogLevel sse:debug" works in every file), the per-directory config and
 * the few process-wide values set by the parent in post_config.
 */
#ifndef SSE_PRIVATE_H
#define SSE_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_expr.h"

#if defined(APLOG_USE_MODULE) && !defined(SSE_MODULE_FILE)
APLOG_USE_MODULE(sse);
#endif

extern module AP_MODULE_DECLARE_DATA sse_module;

#define SSE_DEFAULT_MAX_EVENT_SIZE (64 * 1024)
#define SSE_DEFAULT_MAX_BACKLOG    (256 * 1024)
#define SSE_DEFAULT_KEEPALIVE      15
#define SSE_STREAM_SNDBUF          (64 * 1024)
#define SSE_DEFAULT_HISTORY        100
#define SSE_DEFAULT_HISTORY_AGE    3600
#define SSE_DEFAULT_MAX_CHANNELS   32
#define SSE_DEFAULT_MAX_STREAMS    50000
#define SSE_PRIVATE_WORD           "*private*"
#define SSE_HANDOVER_HEADER        "X-SSE-Channel"

/* Every field is -1 (or NULL) when unset, so merge can tell. */
typedef struct {
    ap_expr_info_t *channel;    /* SSEChannel, NULL: the channel argument */
    apr_array_header_t *channel_items; /* SSEChannel's items, one
                                   ap_expr_info_t * each (protected use) */
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
    const char *ns;             /* SSENamespace, NULL: the ServerName    */
    int protected_ok;           /* SSEProtectedChannels on|off           */
    apr_array_header_t *origins; /* SSEPublishOrigins (const char *)     */
} sse_dir_conf_t;

typedef struct {
    int max_streams;            /* SSEMaxSubscribers, -1 unset           */
    int max_held;               /* SSEMaxHeldStreams per child, -1 unset */
    const char *cluster_url;    /* SSECluster, NULL: this server alone   */
    const char *cluster_prefix; /* SSEClusterPrefix                      */
    const char *cluster_password; /* read from SSEClusterPasswordFile    */
    const char *stats_channel;  /* SSEStatsChannel, NULL: none           */
} sse_srv_conf_t;

#endif
