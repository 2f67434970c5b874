/*
 * sse_log.h: the module record, so that a file's log lines carry mod_sse's
 * module index ("LogLevel sse:debug" works in every file).  Every file of
 * the module that logs includes it; the configuration is in sse_config.h,
 * which only the files that read it include.
 */
#ifndef SSE_LOG_H
#define SSE_LOG_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#if defined(APLOG_USE_MODULE) && !defined(SSE_MODULE_FILE)
APLOG_USE_MODULE(sse);
#endif

extern module AP_MODULE_DECLARE_DATA sse_module;

#endif
