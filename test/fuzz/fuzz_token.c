/* fuzz_token.c: libFuzzer target for the Mercure JWT verifier, sse_token_verify.
 *
 * The first byte picks what the rest is:
 *   0  a token, verified with an HS256 key (secret FZ_SECRET)
 *   1  a token, verified with an RS256 key (a key pair made once at start-up)
 *   2  header JSON, '\n', claims JSON: encoded and signed here with HMAC-SHA256 and
 *      FZ_SECRET, whatever alg the header names, then verified with the HS256 key, so
 *      the claims checks are reached and the header's alg is the fuzzer's
 *   3  the same signed with the RS256 public key's PEM as the HMAC secret (the
 *      key-confusion attack), verified with the RS256 key
 * Properties: no crash or leak; a reason is one line of printable ASCII; an accepted
 * token's header (decoded here, leniently) names exactly the key's alg, so mode 3 is
 * never accepted; its selectors are 1..2048 bytes with no NUL, its exp 0 or after now.
 * Seeds (test/fuzz/corpus/token/) are made by test/fuzz/token_seeds.py.
 */
#include "fuzz_common.h"

#include <unistd.h>

#include <apr_strings.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "sse_token.h"

#define FZ_SECRET "fuzz-secret"
#define FZ_NOW 1700000000LL

static sse_token_key_t *fz_hs, *fz_rs;
static char *fz_rs_pem;
static int fz_rs_pem_len;

static const char b64a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url of s[0..n), unpadded, in p. */
static char *b64url(apr_pool_t *p, const unsigned char *s, size_t n)
{
    char *out = apr_palloc(p, n / 3 * 4 + 5), *w = out;
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        *w++ = b64a[s[i] >> 2];
        *w++ = b64a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        *w++ = b64a[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        *w++ = b64a[s[i + 2] & 63];
    }
    if (n - i == 1) {
        *w++ = b64a[s[i] >> 2];
        *w++ = b64a[(s[i] & 3) << 4];
    }
    else if (n - i == 2) {
        *w++ = b64a[s[i] >> 2];
        *w++ = b64a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        *w++ = b64a[(s[i + 1] & 15) << 2];
    }
    *w = '\0';
    return out;
}

/* Decodes base64url s[0..n) leniently (anything outside the alphabet skipped), in p. */
static char *b64url_loose(apr_pool_t *p, const char *s, size_t n, size_t *len)
{
    char *out = apr_palloc(p, n + 1), *w = out;
    unsigned long acc = 0;
    int bits = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        const char *c = memchr(b64a, s[i], 64);
        if (!c || !s[i])
            continue;
        acc = (acc << 6) | (unsigned long)(c - b64a);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *w++ = (char)((acc >> bits) & 0xFF);
        }
    }
    *len = (size_t)(w - out);
    return out;
}

/* Makes the RS256 key pair once: the public half to a file for sse_token_key_make. */
static void fz_keys(apr_pool_t *p)
{
    char path[] = "/tmp/fuzz_token.XXXXXX";
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long n;
    int fd;
    const char *err;

    if (!pk || !b || !PEM_write_bio_PUBKEY(b, pk))
        abort();
    n = BIO_get_mem_data(b, &data);
    fz_rs_pem = malloc((size_t)n);
    if (!fz_rs_pem)
        abort();
    memcpy(fz_rs_pem, data, (size_t)n);
    fz_rs_pem_len = (int)n;
    BIO_free(b);
    EVP_PKEY_free(pk);
    fd = mkstemp(path);
    if (fd < 0 || write(fd, fz_rs_pem, (size_t)n) != n || close(fd))
        abort();
    err = sse_token_key_make(p, "RS256", path, &fz_rs);
    unlink(path);
    if (err || sse_token_key_make(p, "HS256", FZ_SECRET, &fz_hs)) {
        fprintf(stderr, "fuzz_token: %s\n", err ? err : "HS256 key");
        abort();
    }
}

/* header.claims signed with HMAC-SHA256 under secret, whatever the header says. */
static const char *fz_sign(apr_pool_t *p, const char *in, size_t n, const void *secret,
                           int slen)
{
    const char *nl = memchr(in, '\n', n);
    size_t hlen = nl ? (size_t)(nl - in) : n;
    const char *clm = nl ? nl + 1 : "";
    size_t clen = nl ? n - hlen - 1 : 0;
    const char *signing;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    signing = apr_pstrcat(p, b64url(p, (const unsigned char *)in, hlen), ".",
                          b64url(p, (const unsigned char *)clm, clen), NULL);
    if (!HMAC(EVP_sha256(), secret, slen, (const unsigned char *)signing, strlen(signing),
              mac, &maclen))
        abort();
    return apr_pstrcat(p, signing, ".", b64url(p, mac, maclen), NULL);
}

/* 1 if the header's alg, as this harness reads it (jansson; of duplicates, the last),
 * is want to the byte. */
static int fz_head_alg_is(apr_pool_t *p, const char *token, const char *want)
{
    const char *dot = strchr(token, '.');
    size_t len;
    char *buf;
    json_t *h, *a;
    int ok;

    if (!dot)
        return 0;
    buf = b64url_loose(p, token, (size_t)(dot - token), &len);
    h = json_loadb(buf, len, 0, NULL);
    a = json_object_get(h, "alg");
    ok = json_is_string(a) && json_string_length(a) == strlen(want)
         && !strcmp(json_string_value(a), want);
    json_decref(h);
    return ok;
}

static void fz_check_sel(const apr_array_header_t *a)
{
    int i;

    if (!a)
        return;
    for (i = 0; i < a->nelts; i++) {
        const char *s = APR_ARRAY_IDX(a, i, const char *);
        size_t n = strlen(s);
        FZ_ASSERT(n >= 1 && n <= SSE_TOKEN_SELECTOR_MAX);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    const sse_token_key_t *k;
    sse_token_claims_t c;
    const char *token, *err;
    uint8_t mode;
    char *in;
    size_t n;

    if (!fz_rs) {
        apr_pool_t *keep;
        if (apr_pool_create(&keep, NULL) != APR_SUCCESS)
            abort();
        fz_keys(keep);
        fz_palloc_keep();
    }
    mode = fz_take(&data, &size) & 3;
    in = fz_cstr(data, size);
    n = size;
    switch (mode) {
    case 0:
    case 1:
        token = in;
        break;
    case 2:
        token = fz_sign(p, in, n, FZ_SECRET, (int)strlen(FZ_SECRET));
        break;
    default:
        token = fz_sign(p, in, n, fz_rs_pem, fz_rs_pem_len);
        break;
    }
    k = (mode == 0 || mode == 2) ? fz_hs : fz_rs;

    err = sse_token_verify(p, k, token, FZ_NOW, &c);
    if (err) {
        if (!fz_reason_ok(err)) {
            fz_dump("reason", err, strlen(err));
            FZ_ASSERT(fz_reason_ok(err));
        }
        FZ_ASSERT(!c.publish && !c.subscribe && c.exp == 0);
    }
    else {
        if (!fz_head_alg_is(p, token, sse_token_key_alg(k))) {
            fz_dump("token", token, strlen(token));
            FZ_ASSERT(!"accepted a token whose alg is not the key's");
        }
        FZ_ASSERT(mode != 3);
        FZ_ASSERT(c.exp == 0 || c.exp >= FZ_NOW);
        fz_check_sel(c.publish);
        fz_check_sel(c.subscribe);
    }
    free(in);
    fz_done();
    return 0;
}
