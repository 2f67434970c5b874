/*
 * sse_version.h: mod_sse's version, SSE_VERSION ("1.2.3").
 *
 * The number lives in one place, the VERSION file at the top of the tree:
 * the Makefile (and through it debian/rules, the ASan build) passes it as
 * -DSSE_VERSION=1.2.3, and debian/changelog must say the same (make deb
 * checks).  It is shown by sse-publish --version, /server-status and the
 * start-up log line "mod_sse/1.2.3 configured".
 */
#ifndef SSE_VERSION_H
#define SSE_VERSION_H

#ifndef SSE_VERSION
#error "SSE_VERSION is not set: build with make (it passes -DSSE_VERSION=$(cat VERSION))"
#endif

#define SSE_VERSION_STR2(x) #x
#define SSE_VERSION_STR1(x) SSE_VERSION_STR2(x)
/* "1.2.3" */
#define SSE_VERSION_STRING SSE_VERSION_STR1(SSE_VERSION)

#endif
