/* sse_token.h: the Mercure hub's JWT verifier, with no httpd in it.
 *
 * A Mercure token is a compact JWS whose "mercure" claim may list the topic selectors
 * its bearer may publish to and subscribe to. The config reader builds one key per
 * configured algorithm with sse_token_key_make (at configuration time, so a wrong alg
 * or an unreadable or wrong-type PEM file is caught at configtest); the hub handler
 * calls sse_token_verify from worker threads, any number at once, with a key it only
 * reads. The algorithm is pinned by the key: a token whose header names another one
 * (alg "none", or HS256 against an RS256 key: the key-confusion attack) is refused
 * before its signature is looked at. Decoding and signature checks are libjwt's
 * (OpenSSL underneath); link with -ljwt -ljansson -lcrypto.
 *
 * Everything returned lives in the caller's pool; libjwt's and jansson's allocations
 * are freed before each call returns. Reasons are one line of printable ASCII (bytes
 * from the token outside it appear as \xNN), fit for a log; they never quote the key.
 * The selectors are only returned here: compiling and matching them is another room's.
 */
#ifndef SSE_TOKEN_H
#define SSE_TOKEN_H

#include <apr_pools.h>
#include <apr_tables.h>

/* Longest token accepted, and longest single topic selector in a token, in bytes. */
#define SSE_TOKEN_MAX 8192
#define SSE_TOKEN_SELECTOR_MAX 2048

/* An algorithm pinned by configuration and its key. Read-only once made. */
typedef struct sse_token_key_t sse_token_key_t;

/* Builds a key at configuration time. alg is "HS256", "HS384" or "HS512" (key = the
 * shared secret text, at least 1 byte), or "RS256", "RS384", "RS512", "ES256", "ES384",
 * "ES512" (key = the path of a PEM public key file, "-----BEGIN PUBLIC KEY-----", read
 * now: RS wants an RSA key of 2048 bits or more, ES256/384/512 an EC key on P-256/384/521).
 * "none" and anything else are refused. Returns NULL with *out set, or a one-line reason
 * naming the problem. Everything in p. Not for worker threads (it reads a file). */
const char *sse_token_key_make(apr_pool_t *p, const char *alg, const char *key,
                               sse_token_key_t **out);

/* The algorithm of k ("HS256" ...), for log lines. */
const char *sse_token_key_alg(const sse_token_key_t *k);

typedef struct {
    apr_array_header_t *publish;    /* const char * selectors; NULL when the claim is absent */
    apr_array_header_t *subscribe;  /* same */
    long long exp;                  /* 0 when absent */
} sse_token_claims_t;

/* Verifies token (the compact JWS text, at most SSE_TOKEN_MAX bytes) with k at time now
 * (seconds since the epoch): the header's alg must be exactly k's; the signature must
 * verify with k's key; exp, if present, must be > now and nbf, if present, <= now (both
 * numbers); "mercure", if present, must be an object whose "publish" and "subscribe", if
 * present, are arrays of strings, each 1..SSE_TOKEN_SELECTOR_MAX bytes with no NUL
 * ("payload" and any other member are ignored). Returns NULL and fills *c (in p), or a
 * one-line reason ("token expired", "token signed with HS256, expected RS256", "bad
 * signature", "malformed token: ..."), leaving *c zeroed. */
const char *sse_token_verify(apr_pool_t *p, const sse_token_key_t *k, const char *token,
                             long long now, sse_token_claims_t *c);

#endif /* SSE_TOKEN_H */
