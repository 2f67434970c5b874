/* sse_token.c: the Mercure hub's JWT verifier (see sse_token.h).
 *
 * libjwt 1.10.2 does the decoding and the signature check, but it trusts the token's
 * header to choose the algorithm (jwt_decode accepts alg "none" when given no key, and
 * verifies an HS256 token with whatever key bytes it is given, a PEM public key
 * included), and it compares alg names without regard to case. So the header is read
 * here first, strictly, and its alg must be the key's to the byte before jwt_decode is
 * called; jwt_get_alg is checked again after it. The three parts must be canonical
 * base64url (what every encoder writes), so one signed token has one spelling.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "sse_token.h"

/* Longest HS secret and PEM file read, in bytes. */
#define TOKEN_SECRET_MAX 65536
#define TOKEN_PEM_MAX 65536

enum { KIND_HMAC, KIND_RSA, KIND_EC };

static const struct {
    const char *name;
    jwt_alg_t alg;
    int kind;
    int nid;                    /* the curve of an EC alg */
} token_algs[] = {
    { "HS256", JWT_ALG_HS256, KIND_HMAC, 0 },
    { "HS384", JWT_ALG_HS384, KIND_HMAC, 0 },
    { "HS512", JWT_ALG_HS512, KIND_HMAC, 0 },
    { "RS256", JWT_ALG_RS256, KIND_RSA, 0 },
    { "RS384", JWT_ALG_RS384, KIND_RSA, 0 },
    { "RS512", JWT_ALG_RS512, KIND_RSA, 0 },
    { "ES256", JWT_ALG_ES256, KIND_EC, NID_X9_62_prime256v1 },
    { "ES384", JWT_ALG_ES384, KIND_EC, NID_secp384r1 },
    { "ES512", JWT_ALG_ES512, KIND_EC, NID_secp521r1 },
};

struct sse_token_key_t {
    const char *alg;            /* token_algs[].name */
    jwt_alg_t jalg;
    const unsigned char *key;   /* the secret, or the public key as canonical PEM */
    int key_len;                /* >= 1 */
};

/* s[0..n) for a reason: at most max bytes, those outside printable ASCII as \xNN. */
static const char *token_esc(apr_pool_t *p, const char *s, size_t n, size_t max)
{
    char *out = apr_palloc(p, (n < max ? n : max) * 4 + 4), *w = out;
    size_t i;

    for (i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            *w++ = (char)ch;
        }
        else {
            static const char hex[] = "0123456789ABCDEF";
            *w++ = '\\';
            *w++ = 'x';
            *w++ = hex[ch >> 4];
            *w++ = hex[ch & 15];
        }
    }
    if (i < n) {
        memcpy(w, "...", 3);
        w += 3;
    }
    *w = '\0';
    return out;
}

/* ---- key ---------------------------------------------------------------------- */

static const char *token_read_file(apr_pool_t *p, const char *alg, const char *path,
                                   char **buf, apr_size_t *len)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv;
    apr_size_t got;

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS)
        return apr_psprintf(p, "%s key file %s: cannot open: %pm", alg, path, &rv);
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE | APR_FINFO_TYPE, f);
    if (rv != APR_SUCCESS || fi.filetype != APR_REG || fi.size <= 0
        || fi.size > TOKEN_PEM_MAX) {
        apr_file_close(f);
        if (rv != APR_SUCCESS)
            return apr_psprintf(p, "%s key file %s: cannot stat: %pm", alg, path, &rv);
        return apr_psprintf(p, "%s key file %s: %s", alg, path,
                            fi.filetype != APR_REG ? "not a regular file"
                            : fi.size <= 0 ? "empty" : "larger than 64 KiB");
    }
    *buf = apr_palloc(p, (apr_size_t)fi.size);
    rv = apr_file_read_full(f, *buf, (apr_size_t)fi.size, &got);
    apr_file_close(f);
    if (rv != APR_SUCCESS)
        return apr_psprintf(p, "%s key file %s: cannot read: %pm", alg, path, &rv);
    *len = got;
    return NULL;
}

/* Reads the PEM public key in path, checks it suits alg (RSA of 2048 bits or more, or
 * EC on alg's curve) and keeps it as OpenSSL writes it back, which is what libjwt will
 * parse on each verify. */
static const char *token_pem_key(apr_pool_t *p, sse_token_key_t *k, int kind, int nid,
                                 const char *path)
{
    const char *err = NULL;
    char *buf = NULL, *pem;
    apr_size_t len = 0;
    BIO *in = NULL, *out = NULL;
    EVP_PKEY *pkey = NULL;
    long pem_len;

    if ((err = token_read_file(p, k->alg, path, &buf, &len)))
        return err;
    in = BIO_new_mem_buf(buf, (int)len);
    if (!in) {
        err = "out of memory";
        goto done;
    }
    pkey = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
    if (!pkey) {
        err = apr_psprintf(p, "%s key file %s: not a PEM public key"
                           " (want -----BEGIN PUBLIC KEY-----)", k->alg, path);
        goto done;
    }
    if (kind == KIND_RSA) {
        if (EVP_PKEY_get_id(pkey) != EVP_PKEY_RSA) {
            err = apr_psprintf(p, "%s key file %s: not an RSA public key (%s)", k->alg,
                               path, OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
            goto done;
        }
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            err = apr_psprintf(p, "%s key file %s: RSA key of %d bits, at least 2048"
                               " wanted", k->alg, path, EVP_PKEY_get_bits(pkey));
            goto done;
        }
    }
    else {
        char group[80];
        size_t glen = 0;

        if (EVP_PKEY_get_id(pkey) != EVP_PKEY_EC) {
            err = apr_psprintf(p, "%s key file %s: not an EC public key (%s)", k->alg,
                               path, OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
            goto done;
        }
        if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen)
            || OBJ_txt2nid(group) != nid) {
            err = apr_psprintf(p, "%s key file %s: EC key on curve %s, %s wants %s",
                               k->alg, path, glen ? group : "(unknown)", k->alg,
                               OBJ_nid2sn(nid));
            goto done;
        }
    }
    out = BIO_new(BIO_s_mem());
    if (!out || !PEM_write_bio_PUBKEY(out, pkey)
        || (pem_len = BIO_get_mem_data(out, &pem)) <= 0) {
        err = "out of memory";
        goto done;
    }
    k->key = (const unsigned char *)apr_pmemdup(p, pem, (apr_size_t)pem_len);
    k->key_len = (int)pem_len;

done:
    EVP_PKEY_free(pkey);
    BIO_free(in);
    BIO_free(out);
    ERR_clear_error();
    return err;
}

const char *sse_token_key_make(apr_pool_t *p, const char *alg, const char *key,
                               sse_token_key_t **out)
{
    sse_token_key_t *k;
    const char *err;
    size_t i, n;

    *out = NULL;
    if (!alg || !*alg)
        return "no JWT algorithm given";
    if (!strcasecmp(alg, "none"))
        return "JWT algorithm none is refused: tokens must be signed";
    for (i = 0; i < sizeof(token_algs) / sizeof(token_algs[0]); i++)
        if (!strcmp(alg, token_algs[i].name))
            break;
    if (i == sizeof(token_algs) / sizeof(token_algs[0]))
        return apr_psprintf(p, "unknown JWT algorithm '%s' (HS256, HS384, HS512, RS256,"
                            " RS384, RS512, ES256, ES384 or ES512)",
                            token_esc(p, alg, strlen(alg), 32));
    k = apr_pcalloc(p, sizeof(*k));
    k->alg = token_algs[i].name;
    k->jalg = token_algs[i].alg;
    if (token_algs[i].kind == KIND_HMAC) {
        n = key ? strlen(key) : 0;
        if (n == 0)
            return apr_psprintf(p, "%s secret is empty", k->alg);
        if (n > TOKEN_SECRET_MAX)
            return apr_psprintf(p, "%s secret is longer than 64 KiB", k->alg);
        k->key = (const unsigned char *)apr_pmemdup(p, key, n);
        k->key_len = (int)n;
    }
    else {
        if (!key || !*key)
            return apr_psprintf(p, "%s needs the path of a PEM public key file", k->alg);
        if ((err = token_pem_key(p, k, token_algs[i].kind, token_algs[i].nid, key)))
            return err;
    }
    *out = k;
    return NULL;
}

const char *sse_token_key_alg(const sse_token_key_t *k)
{
    return k->alg;
}

/* ---- verify ------------------------------------------------------------------- */

static int b64url_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

/* 1 if s[0..n) is non-empty canonical unpadded base64url: only its alphabet, no
 * length that leaves a lone character, unused bits of the last character zero. */
static int b64url_ok(const char *s, size_t n)
{
    size_t i;
    int v = 0;

    if (n == 0 || n % 4 == 1)
        return 0;
    for (i = 0; i < n; i++)
        if ((v = b64url_val((unsigned char)s[i])) < 0)
            return 0;
    if (n % 4 == 2)
        return (v & 15) == 0;
    if (n % 4 == 3)
        return (v & 3) == 0;
    return 1;
}

/* Decodes s[0..n), which b64url_ok accepted, into p; sets *len. */
static char *b64url_decode(apr_pool_t *p, const char *s, size_t n, size_t *len)
{
    char *out = apr_palloc(p, n / 4 * 3 + 3), *w = out;
    unsigned long acc = 0;
    int bits = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        acc = (acc << 6) | (unsigned long)b64url_val((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *w++ = (char)((acc >> bits) & 0xFF);
        }
    }
    *len = (size_t)(w - out);
    return out;
}

/* The JSON object that part s[0..n) encodes, or NULL. Free with json_decref. */
static json_t *b64url_json(apr_pool_t *p, const char *s, size_t n, size_t flags)
{
    json_t *js;
    char *buf;
    size_t len;

    if (!b64url_ok(s, n))
        return NULL;
    buf = b64url_decode(p, s, n, &len);
    js = json_loadb(buf, len, flags, NULL);
    if (js && !json_is_object(js)) {
        json_decref(js);
        js = NULL;
    }
    return js;
}

/* Reads the header and checks it names k's algorithm exactly. */
static const char *token_head(apr_pool_t *p, const sse_token_key_t *k, const char *s,
                              size_t n)
{
    const char *err = NULL;
    json_t *head, *v;

    head = b64url_json(p, s, n, JSON_REJECT_DUPLICATES);
    if (!head)
        return "malformed token: header is not base64url JSON object";
    v = json_object_get(head, "alg");
    if (!json_is_string(v)) {
        err = "malformed token: no alg in header";
    }
    else if (json_string_length(v) != strlen(k->alg) || strcmp(json_string_value(v), k->alg)) {
        err = apr_psprintf(p, "token signed with %s, expected %s",
                           token_esc(p, json_string_value(v), json_string_length(v), 32),
                           k->alg);
    }
    else if (json_object_get(head, "crit")) {
        err = "token header has crit: no extension is understood";
    }
    else if ((v = json_object_get(head, "typ"))
             && (!json_is_string(v) || strcasecmp(json_string_value(v), "JWT"))) {
        err = "malformed token: header typ is not JWT";
    }
    json_decref(head);
    return err;
}

/* A registered NumericDate claim: *present 0 when absent; else *val, its value cut to
 * whole seconds (toward -inf), and *cmp -1, 0 or 1 as the exact value is below, equal
 * to or above now. */
static const char *token_date(json_t *claims, const char *name, long long now,
                              int *present, long long *val, int *cmp)
{
    json_t *v = json_object_get(claims, name);

    *present = 0;
    if (!v)
        return NULL;
    *present = 1;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        *val = (long long)i;
        *cmp = i < now ? -1 : i > now;
    }
    else if (json_is_real(v)) {
        double d = json_real_value(v);
        *cmp = d < (double)now ? -1 : d > (double)now;
        if (d >= 9.2e18)
            *val = LLONG_MAX;
        else if (d <= -9.2e18)
            *val = LLONG_MIN;
        else {
            *val = (long long)d;
            if ((double)*val > d)
                (*val)--;
        }
    }
    else {
        return name[0] == 'e' ? "malformed token: exp is not a number"
                              : "malformed token: nbf is not a number";
    }
    return NULL;
}

/* mercure.<name>: NULL *out when absent, else an array of selector strings. */
static const char *token_selectors(apr_pool_t *p, json_t *mercure, const char *name,
                                   apr_array_header_t **out)
{
    json_t *arr = json_object_get(mercure, name), *v;
    size_t i, len;

    *out = NULL;
    if (!arr)
        return NULL;
    if (!json_is_array(arr))
        return apr_psprintf(p, "malformed token: mercure.%s is not an array", name);
    *out = apr_array_make(p, json_array_size(arr) ? (int)json_array_size(arr) : 1,
                          sizeof(const char *));
    json_array_foreach(arr, i, v) {
        const char *s;

        if (!json_is_string(v))
            return apr_psprintf(p, "malformed token: mercure.%s[%lu] is not a string",
                                name, (unsigned long)i);
        s = json_string_value(v);
        len = json_string_length(v);
        if (len == 0)
            return apr_psprintf(p, "malformed token: mercure.%s[%lu] is empty", name,
                                (unsigned long)i);
        if (len > SSE_TOKEN_SELECTOR_MAX)
            return apr_psprintf(p, "malformed token: mercure.%s[%lu] is longer than %d"
                                " bytes", name, (unsigned long)i, SSE_TOKEN_SELECTOR_MAX);
        if (memchr(s, '\0', len))
            return apr_psprintf(p, "malformed token: mercure.%s[%lu] holds a NUL byte",
                                name, (unsigned long)i);
        APR_ARRAY_PUSH(*out, const char *) = apr_pstrmemdup(p, s, len);
    }
    return NULL;
}

/* The claims of a verified token: dates and the mercure claim. */
static const char *token_claims(apr_pool_t *p, json_t *claims, long long now,
                                sse_token_claims_t *c)
{
    const char *err;
    json_t *mercure;
    long long val;
    int present, cmp;

    if ((err = token_date(claims, "exp", now, &present, &val, &cmp)))
        return err;
    if (present) {
        if (cmp <= 0)
            return "token expired";
        c->exp = val;
    }
    if ((err = token_date(claims, "nbf", now, &present, &val, &cmp)))
        return err;
    if (present && cmp > 0)
        return "token not valid yet (nbf in the future)";
    mercure = json_object_get(claims, "mercure");
    if (!mercure)
        return NULL;
    if (!json_is_object(mercure))
        return "malformed token: mercure claim is not an object";
    if ((err = token_selectors(p, mercure, "publish", &c->publish)))
        return err;
    return token_selectors(p, mercure, "subscribe", &c->subscribe);
}

const char *sse_token_verify(apr_pool_t *p, const sse_token_key_t *k, const char *token,
                             long long now, sse_token_claims_t *c)
{
    sse_token_claims_t got = { NULL, NULL, 0 };
    const char *err, *d1, *d2;
    json_t *claims;
    jwt_t *jwt = NULL;
    char *text;
    size_t n;
    int ret;

    memset(c, 0, sizeof(*c));
    if (!k)
        return "no key";
    if (!token)
        return "no token";
    n = strnlen(token, SSE_TOKEN_MAX + 1);
    if (n > SSE_TOKEN_MAX)
        return "token too long (over 8192 bytes)";
    d1 = memchr(token, '.', n);
    d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)))
        return "malformed token: not three parts";
    if ((err = token_head(p, k, token, (size_t)(d1 - token))))
        return err;
    if (!b64url_ok(d1 + 1, (size_t)(d2 - d1 - 1)))
        return "malformed token: claims are not base64url";
    if (!b64url_ok(d2 + 1, n - (size_t)(d2 + 1 - token)))
        return "malformed token: signature is not base64url";

    ret = jwt_decode(&jwt, token, k->key, k->key_len);
    ERR_clear_error();
    if (ret) {
        if (ret == ENOMEM)
            return "out of memory";
        /* The header was good: the claims, or else the signature. */
        claims = b64url_json(p, d1 + 1, (size_t)(d2 - d1 - 1), 0);
        if (!claims)
            return "malformed token: claims are not a JSON object";
        json_decref(claims);
        return "bad signature";
    }
    if (jwt_get_alg(jwt) != k->jalg) {
        /* cannot happen: token_head saw k's alg */
        const char *alg = jwt_alg_str(jwt_get_alg(jwt));

        jwt_free(jwt);
        return apr_psprintf(p, "token signed with %s, expected %s", alg ? alg : "?",
                            k->alg);
    }
    text = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    if (!text)
        return "malformed token: claims are not a JSON object";
    claims = json_loads(text, JSON_ALLOW_NUL, NULL);
    free(text);
    if (!json_is_object(claims)) {
        json_decref(claims);
        return "malformed token: claims are not a JSON object";
    }
    err = token_claims(p, claims, now, &got);
    json_decref(claims);
    if (err)
        return err;
    *c = got;
    return NULL;
}
