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

typedef struct {
    ap_expr_info_t *channel;    /* SSEChannel, NULL: the channel argument */
    ap_expr_info_t *event;      /* SSEEvent: default event name          */
    ap_expr_info_t *data;       /* SSEData: default data                 */
    apr_off_t max_event_size;   /* SSEMaxEventSize, -1 unset             */
    apr_off_t max_backlog;      /* SSEMaxBacklog, -1 unset               */
} sse_dir_conf_t;

/* Path of the relay's unix socket.  Set by the parent in post_config and
 * inherited by every child; read-only afterwards. */
extern const char *sse_relay_path;

#endif
