/* test_sse_token.c: the Mercure JWT verifier (sse_token.c).
 *
 * Tokens are signed here with libjwt's own encoder, or put together by hand (header and
 * claims as written, HMAC from OpenSSL) when libjwt would not write them. The RSA and
 * EC key pairs are made at run time with OpenSSL and written to a temporary directory,
 * removed at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "unit.h"
#include "sse_token.h"

#define NOW 1700000000LL
#define SECRET "correct horse battery staple"

static apr_pool_t *pool;
static char tmpdir[] = "/tmp/test_sse_token.XXXXXX";

/* One key pair: its files and PEM texts. */
typedef struct {
    const char *pub_path, *priv_path;
    char *pub_pem, *priv_pem;
    int pub_len, priv_len;
} pair_t;

static pair_t rsa, rsa_small, ec256, ec384;

static char *bio_text(BIO *b, int *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = apr_pstrmemdup(pool, data, (apr_size_t)n);

    *len = (int)n;
    return s;
}

static void write_file(const char *path, const char *s, size_t n)
{
    FILE *f = fopen(path, "wb");

    if (!f || fwrite(s, 1, n, f) != n || fclose(f)) {
        perror(path);
        exit(2);
    }
}

/* Makes a key pair ("RSA", bits) or ("EC", curve) and writes both halves as PEM. */
static void make_pair(pair_t *kp, const char *name, const char *type, const char *curve,
                      size_t bits)
{
    EVP_PKEY *pk = curve ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve)
                         : EVP_PKEY_Q_keygen(NULL, NULL, type, bits);
    BIO *pub = BIO_new(BIO_s_mem()), *priv = BIO_new(BIO_s_mem());

    if (!pk || !pub || !priv || !PEM_write_bio_PUBKEY(pub, pk)
        || !PEM_write_bio_PrivateKey(priv, pk, NULL, NULL, 0, NULL, NULL)) {
        fprintf(stderr, "cannot make the %s key\n", name);
        exit(2);
    }
    kp->pub_pem = bio_text(pub, &kp->pub_len);
    kp->priv_pem = bio_text(priv, &kp->priv_len);
    kp->pub_path = apr_psprintf(pool, "%s/%s.pub.pem", tmpdir, name);
    kp->priv_path = apr_psprintf(pool, "%s/%s.key.pem", tmpdir, name);
    write_file(kp->pub_path, kp->pub_pem, (size_t)kp->pub_len);
    write_file(kp->priv_path, kp->priv_pem, (size_t)kp->priv_len);
    BIO_free(pub);
    BIO_free(priv);
    EVP_PKEY_free(pk);
}

/* A token signed by libjwt: alg with key[0..len), claims as JSON. In pool. */
static const char *sign(jwt_alg_t alg, const void *key, int len, const char *claims)
{
    jwt_t *j = NULL;
    char *t;
    const char *out;

    if (jwt_new(&j) || jwt_set_alg(j, alg, key, len)
        || (claims && jwt_add_grants_json(j, claims)) || !(t = jwt_encode_str(j))) {
        fprintf(stderr, "cannot sign a %s token with %s\n", jwt_alg_str(alg), claims);
        exit(2);
    }
    out = apr_pstrdup(pool, t);
    free(t);
    jwt_free(j);
    return out;
}

static const char *hs(const char *claims)
{
    return sign(JWT_ALG_HS256, SECRET, (int)strlen(SECRET), claims);
}

static const char *b64url(const void *data, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = data;
    char *out = apr_palloc(pool, n / 3 * 4 + 5), *w = out;
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        *w++ = a[s[i] >> 2];
        *w++ = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        *w++ = a[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        *w++ = a[s[i + 2] & 63];
    }
    if (n - i == 1) {
        *w++ = a[s[i] >> 2];
        *w++ = a[(s[i] & 3) << 4];
    }
    else if (n - i == 2) {
        *w++ = a[s[i] >> 2];
        *w++ = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        *w++ = a[(s[i + 1] & 15) << 2];
    }
    *w = '\0';
    return out;
}

/* A token put together by hand: header and claims as given, HS256 over them with
 * secret (none: an empty signature). */
static const char *craft(const char *head, const char *claims, const char *secret)
{
    const char *signing = apr_pstrcat(pool, b64url(head, strlen(head)), ".",
                                      b64url(claims, strlen(claims)), NULL);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    if (!secret)
        return apr_pstrcat(pool, signing, ".", NULL);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signing,
         strlen(signing), mac, &maclen);
    return apr_pstrcat(pool, signing, ".", b64url(mac, maclen), NULL);
}

static const char *part(const char *token, int which)
{
    const char *s = token, *e;

    while (which--)
        s = strchr(s, '.') + 1;
    e = strchr(s, '.');
    return e ? apr_pstrmemdup(pool, s, (apr_size_t)(e - s)) : s;
}

static sse_token_key_t *key(const char *alg, const char *k)
{
    sse_token_key_t *out = NULL;
    const char *err = sse_token_key_make(pool, alg, k, &out);

    if (err) {
        fprintf(stderr, "key %s: %s\n", alg, err);
        exit(2);
    }
    return out;
}

static const char *verify(const sse_token_key_t *k, const char *token,
                          sse_token_claims_t *c)
{
    return sse_token_verify(pool, k, token, NOW, c);
}

#define SEL(arr, i) APR_ARRAY_IDX((arr), (i), const char *)

static void test_good(void)
{
    sse_token_key_t *k = key("HS256", SECRET);
    sse_token_claims_t c;
    const char *t;
    static const struct { const char *name; jwt_alg_t alg; } hss[] = {
        { "HS256", JWT_ALG_HS256 }, { "HS384", JWT_ALG_HS384 }, { "HS512", JWT_ALG_HS512 }
    };
    size_t i;

    t = hs("{\"mercure\":{\"publish\":[\"*\"],\"subscribe\":[\"https://example.com/books/{id}\","
           "\"urn:x\"],\"payload\":{\"user\":1}},\"exp\":1700003600}");
    CHECK_ERR(verify(k, t, &c), NULL);
    CHECK(c.publish && c.publish->nelts == 1);
    if (c.publish && c.publish->nelts == 1)
        CHECK_STR(SEL(c.publish, 0), "*");
    CHECK(c.subscribe && c.subscribe->nelts == 2);
    if (c.subscribe && c.subscribe->nelts == 2) {
        CHECK_STR(SEL(c.subscribe, 0), "https://example.com/books/{id}");
        CHECK_STR(SEL(c.subscribe, 1), "urn:x");
    }
    CHECK(c.exp == 1700003600LL);
    CHECK_STR(sse_token_key_alg(k), "HS256");

    for (i = 0; i < sizeof(hss) / sizeof(hss[0]); i++) {
        sse_token_key_t *kk = key(hss[i].name, SECRET);
        t = sign(hss[i].alg, SECRET, (int)strlen(SECRET),
                 "{\"mercure\":{\"subscribe\":[\"*\"]}}");
        CHECK_ERR(verify(kk, t, &c), NULL);
        CHECK(c.subscribe && c.subscribe->nelts == 1 && !c.publish && c.exp == 0);
    }

    /* a one-byte secret is a secret */
    t = sign(JWT_ALG_HS256, "x", 1, "{}");
    CHECK_ERR(verify(key("HS256", "x"), t, &c), NULL);
}

static void test_pem_good(void)
{
    sse_token_claims_t c;
    const char *t;
    const char *claims = "{\"mercure\":{\"publish\":[\"urn:a\"]},\"exp\":1700000001}";

    t = sign(JWT_ALG_RS256, rsa.priv_pem, rsa.priv_len, claims);
    CHECK_ERR(verify(key("RS256", rsa.pub_path), t, &c), NULL);
    CHECK(c.publish && c.publish->nelts == 1 && !c.subscribe && c.exp == 1700000001LL);
    t = sign(JWT_ALG_RS512, rsa.priv_pem, rsa.priv_len, claims);
    CHECK_ERR(verify(key("RS512", rsa.pub_path), t, &c), NULL);
    t = sign(JWT_ALG_ES256, ec256.priv_pem, ec256.priv_len, claims);
    CHECK_ERR(verify(key("ES256", ec256.pub_path), t, &c), NULL);
    CHECK(c.publish && c.publish->nelts == 1);
    if (c.publish && c.publish->nelts == 1)
        CHECK_STR(SEL(c.publish, 0), "urn:a");
    t = sign(JWT_ALG_ES384, ec384.priv_pem, ec384.priv_len, claims);
    CHECK_ERR(verify(key("ES384", ec384.pub_path), t, &c), NULL);
}

static void test_bad_signature(void)
{
    sse_token_key_t *k = key("HS256", SECRET), *kr = key("RS256", rsa.pub_path),
                    *ke = key("ES256", ec256.pub_path);
    sse_token_claims_t c;
    const char *t, *other, *forged;
    char *flip;

    /* wrong secret */
    t = sign(JWT_ALG_HS256, "another secret", 14, "{\"mercure\":{\"publish\":[\"*\"]}}");
    CHECK_ERR(verify(k, t, &c), "bad signature");
    CHECK(!c.publish && !c.subscribe && c.exp == 0);

    /* tampered claims: another token's claims under this one's signature */
    t = hs("{\"mercure\":{\"subscribe\":[\"urn:a\"]}}");
    other = "{\"mercure\":{\"subscribe\":[\"*\"]}}";
    forged = apr_pstrcat(pool, part(t, 0), ".", b64url(other, strlen(other)), ".",
                         part(t, 2), NULL);
    CHECK_ERR(verify(k, forged, &c), "bad signature");
    t = sign(JWT_ALG_RS256, rsa.priv_pem, rsa.priv_len, "{\"mercure\":{\"subscribe\":[\"urn:a\"]}}");
    forged = apr_pstrcat(pool, part(t, 0), ".", b64url(other, strlen(other)), ".",
                         part(t, 2), NULL);
    CHECK_ERR(verify(kr, forged, &c), "bad signature");
    t = sign(JWT_ALG_ES256, ec256.priv_pem, ec256.priv_len, "{\"mercure\":{\"subscribe\":[\"urn:a\"]}}");
    forged = apr_pstrcat(pool, part(t, 0), ".", b64url(other, strlen(other)), ".",
                         part(t, 2), NULL);
    CHECK_ERR(verify(ke, forged, &c), "bad signature");

    /* a signature character changed (the first: every value is canonical there) */
    flip = apr_pstrdup(pool, hs("{}"));
    {
        char *s = strrchr(flip, '.') + 1;
        *s = *s == 'A' ? 'B' : 'A';
    }
    CHECK_ERR(verify(k, flip, &c), "bad signature");
    /* an ES signature of the wrong length */
    t = sign(JWT_ALG_ES256, ec256.priv_pem, ec256.priv_len, "{}");
    forged = apr_pstrcat(pool, part(t, 0), ".", part(t, 1), ".", "AAAA", NULL);
    CHECK_ERR(verify(ke, forged, &c), "bad signature");
    /* an RS token signed by another RSA key */
    t = sign(JWT_ALG_RS256, rsa_small.priv_pem, rsa_small.priv_len, "{}");
    CHECK_ERR(verify(kr, t, &c), "bad signature");
}

static void test_dates(void)
{
    sse_token_key_t *k = key("HS256", SECRET);
    sse_token_claims_t c;

    CHECK_ERR(verify(k, hs("{\"exp\":1699999999}"), &c), "token expired");
    CHECK_ERR(verify(k, hs("{\"exp\":1700000000}"), &c), "token expired");
    CHECK_ERR(verify(k, hs("{\"exp\":0}"), &c), "token expired");
    CHECK_ERR(verify(k, hs("{\"exp\":1700000000.5}"), &c), NULL);
    CHECK(c.exp == 1700000000LL);
    CHECK_ERR(verify(k, hs("{\"exp\":1699999999.5}"), &c), "token expired");
    CHECK_ERR(verify(k, hs("{\"exp\":1e300}"), &c), NULL);
    CHECK(c.exp > 1700000000LL);
    CHECK_ERR(verify(k, hs("{\"exp\":\"tomorrow\"}"), &c), "malformed token: exp");
    CHECK_ERR(verify(k, hs("{\"exp\":null}"), &c), "malformed token: exp");
    CHECK_ERR(verify(k, hs("{\"nbf\":1700000001}"), &c), "not valid yet");
    CHECK_ERR(verify(k, hs("{\"nbf\":1700000000.25}"), &c), "not valid yet");
    CHECK_ERR(verify(k, hs("{\"nbf\":1700000000}"), &c), NULL);
    CHECK_ERR(verify(k, hs("{\"nbf\":1600000000,\"exp\":1800000000}"), &c), NULL);
    CHECK(c.exp == 1800000000LL);
    CHECK_ERR(verify(k, hs("{\"nbf\":true}"), &c), "malformed token: nbf");
    /* the same token, later */
    CHECK_ERR(sse_token_verify(pool, k, hs("{\"exp\":1700000010}"), NOW + 10, &c),
              "token expired");
}

static void test_alg_none(void)
{
    const char *claims = "{\"mercure\":{\"publish\":[\"*\"],\"subscribe\":[\"*\"]}}";
    const char *none = craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, NULL);
    sse_token_key_t *keys[3];
    sse_token_claims_t c;
    jwt_t *j = NULL;
    int i;

    /* what libjwt does by itself: given no key, it takes the unsigned token */
    CHECK(jwt_decode(&j, none, NULL, 0) == 0);
    jwt_free(j);

    keys[0] = key("HS256", SECRET);
    keys[1] = key("RS256", rsa.pub_path);
    keys[2] = key("ES256", ec256.pub_path);
    for (i = 0; i < 3; i++) {
        CHECK_ERR(verify(keys[i], none, &c), "token signed with none, expected");
        CHECK(!c.publish && !c.subscribe);
        CHECK_ERR(verify(keys[i], craft("{\"alg\":\"None\"}", claims, NULL), &c),
                  "token signed with None, expected");
        /* with a signature part anyway */
        CHECK_ERR(verify(keys[i], craft("{\"alg\":\"none\"}", claims, SECRET), &c),
                  "token signed with none, expected");
    }
}

static void test_key_confusion(void)
{
    sse_token_key_t *kr = key("RS256", rsa.pub_path);
    sse_token_claims_t c;
    const char *t = sign(JWT_ALG_HS256, rsa.pub_pem, rsa.pub_len,
                         "{\"mercure\":{\"publish\":[\"*\"]}}");
    jwt_t *j = NULL;

    /* libjwt given the PEM as the key checks the HMAC with it, and it holds */
    CHECK(jwt_decode(&j, t, (const unsigned char *)rsa.pub_pem, rsa.pub_len) == 0);
    jwt_free(j);
    CHECK_ERR(verify(kr, t, &c), "token signed with HS256, expected RS256");
    CHECK(!c.publish);
    t = sign(JWT_ALG_HS256, ec256.pub_pem, ec256.pub_len, "{}");
    CHECK_ERR(verify(key("ES256", ec256.pub_path), t, &c),
              "token signed with HS256, expected ES256");
}

static void test_alg_mismatch(void)
{
    sse_token_claims_t c;
    const char *t;
    jwt_t *j = NULL;

    t = sign(JWT_ALG_HS384, SECRET, (int)strlen(SECRET), "{}");
    CHECK_ERR(verify(key("HS256", SECRET), t, &c), "token signed with HS384, expected HS256");
    t = sign(JWT_ALG_RS256, rsa.priv_pem, rsa.priv_len, "{}");
    CHECK_ERR(verify(key("RS384", rsa.pub_path), t, &c), "token signed with RS256, expected RS384");
    CHECK_ERR(verify(key("ES256", ec256.pub_path), t, &c), "token signed with RS256, expected ES256");
    t = sign(JWT_ALG_ES384, ec384.priv_pem, ec384.priv_len, "{}");
    CHECK_ERR(verify(key("ES256", ec256.pub_path), t, &c), "token signed with ES384, expected ES256");

    /* libjwt reads "hs256" as HS256; the pin is to the byte */
    t = craft("{\"alg\":\"hs256\",\"typ\":\"JWT\"}", "{}", SECRET);
    CHECK(jwt_decode(&j, t, (const unsigned char *)SECRET, (int)strlen(SECRET)) == 0);
    jwt_free(j);
    CHECK_ERR(verify(key("HS256", SECRET), t, &c), "token signed with hs256, expected HS256");
    /* the hand-made token is right when its alg is */
    CHECK_ERR(verify(key("HS256", SECRET), craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{}", SECRET), &c), NULL);
    CHECK_ERR(verify(key("HS256", SECRET), craft("{\"alg\":\"HS256\"}", "{}", SECRET), &c), NULL);
    /* the alg as the reason quotes it: escaped, cut */
    t = craft("{\"alg\":\"HS256\\n\\u00ff0123456789012345678901234567890123456789\"}", "{}", SECRET);
    CHECK_ERR(verify(key("HS256", SECRET), t, &c), "token signed with HS256\\x0A\\xC3\\xBF");
    CHECK_ERR(verify(key("HS256", SECRET), t, &c), "..., expected HS256");
}

static void test_malformed(void)
{
    sse_token_key_t *k = key("HS256", SECRET);
    sse_token_claims_t c;
    const char *good = hs("{}");
    char *big, *nc;

    CHECK_ERR(verify(k, NULL, &c), "no token");
    CHECK_ERR(verify(k, "", &c), "malformed token");
    CHECK_ERR(verify(k, "abc", &c), "malformed token: not three parts");
    CHECK_ERR(verify(k, apr_pstrcat(pool, part(good, 0), ".", part(good, 1), NULL), &c),
              "malformed token: not three parts");
    CHECK_ERR(verify(k, apr_pstrcat(pool, good, ".x", NULL), &c),
              "malformed token: not three parts");
    CHECK_ERR(verify(k, apr_pstrcat(pool, good, ".", NULL), &c),
              "malformed token: not three parts");
    CHECK_ERR(verify(k, "..", &c), "malformed token");
    CHECK_ERR(verify(k, apr_pstrcat(pool, "e!J.", part(good, 1), ".", part(good, 2), NULL), &c),
              "malformed token: header");
    /* padding is not base64url */
    CHECK_ERR(verify(k, apr_pstrcat(pool, part(good, 0), "=.", part(good, 1), ".", part(good, 2), NULL), &c),
              "malformed token: header");
    CHECK_ERR(verify(k, craft("hello", "{}", SECRET), &c), "malformed token: header");
    CHECK_ERR(verify(k, craft("[\"alg\",\"HS256\"]", "{}", SECRET), &c), "malformed token: header");
    CHECK_ERR(verify(k, craft("{\"typ\":\"JWT\"}", "{}", SECRET), &c), "malformed token: no alg");
    CHECK_ERR(verify(k, craft("{\"alg\":256}", "{}", SECRET), &c), "malformed token: no alg");
    CHECK_ERR(verify(k, craft("{\"alg\":\"none\",\"alg\":\"HS256\"}", "{}", SECRET), &c),
              "malformed token: header");
    CHECK_ERR(verify(k, craft("{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}", "{}", SECRET), &c),
              "typ is not JWT");
    CHECK_ERR(verify(k, craft("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{}", SECRET), &c),
              "crit");
    /* claims part */
    CHECK_ERR(verify(k, craft("{\"alg\":\"HS256\"}", "not json", SECRET), &c),
              "malformed token: claims are not a JSON object");
    CHECK_ERR(verify(k, craft("{\"alg\":\"HS256\"}", "[1,2]", SECRET), &c),
              "malformed token: claims are not a JSON object");
    CHECK_ERR(verify(k, apr_pstrcat(pool, part(good, 0), ".e30*.", part(good, 2), NULL), &c),
              "malformed token: claims are not base64url");
    CHECK_ERR(verify(k, apr_pstrcat(pool, part(good, 0), "..", part(good, 2), NULL), &c),
              "malformed token: claims are not base64url");
    /* signature part: missing, not base64url, not canonical (unused bits set) */
    CHECK_ERR(verify(k, apr_pstrcat(pool, part(good, 0), ".", part(good, 1), ".", NULL), &c),
              "malformed token: signature");
    CHECK_ERR(verify(k, apr_pstrcat(pool, part(good, 0), ".", part(good, 1), ".a+b/", NULL), &c),
              "malformed token: signature");
    nc = apr_pstrdup(pool, good);
    {
        /* 43 characters for 32 bytes: the last holds 2 unused bits */
        char *last = nc + strlen(nc) - 1;
        CHECK(strlen(part(good, 2)) == 43);
        *last = (char)(*last == 'A' ? 'B' : *last + 1);
    }
    CHECK_ERR(verify(k, nc, &c), "malformed token: signature");
    /* length */
    big = apr_palloc(pool, SSE_TOKEN_MAX + 2);
    memset(big, 'A', SSE_TOKEN_MAX + 1);
    big[SSE_TOKEN_MAX + 1] = '\0';
    CHECK_ERR(verify(k, big, &c), "too long");
    big[SSE_TOKEN_MAX] = '\0';
    CHECK_ERR(verify(k, big, &c), "malformed token: not three parts");
    /* the longest token up to SSE_TOKEN_MAX bytes is read (base64 lengths skip
     * 4k+1, so it is SSE_TOKEN_MAX or one short), the next longer is not */
    {
        const char *base = hs("{\"pad\":\"\"}"), *t, *last = NULL;
        size_t pad = SSE_TOKEN_MAX - strlen(base), n = pad / 4 * 3;
        char *filler = apr_palloc(pool, pad + 1);

        memset(filler, 'x', pad);
        filler[n] = '\0';
        while (strlen(t = hs(apr_psprintf(pool, "{\"pad\":\"%s\"}", filler))) <= SSE_TOKEN_MAX) {
            last = t;
            filler[n++] = 'x';
            filler[n] = '\0';
        }
        CHECK(last && strlen(last) >= SSE_TOKEN_MAX - 1);
        CHECK_ERR(verify(k, last, &c), NULL);
        CHECK(strlen(t) > SSE_TOKEN_MAX);
        CHECK_ERR(verify(k, t, &c), "too long");
    }
    CHECK_ERR(sse_token_verify(pool, NULL, good, NOW, &c), "no key");
}

static void test_mercure_claim(void)
{
    sse_token_key_t *k = key("HS256", SECRET);
    sse_token_claims_t c;
    char *sel;

    CHECK_ERR(verify(k, hs("{}"), &c), NULL);
    CHECK(!c.publish && !c.subscribe && c.exp == 0);
    CHECK_ERR(verify(k, hs("{\"mercure\":{}}"), &c), NULL);
    CHECK(!c.publish && !c.subscribe);
    CHECK_ERR(verify(k, hs("{\"mercure\":{\"publish\":[]}}"), &c), NULL);
    CHECK(c.publish && c.publish->nelts == 0 && !c.subscribe);
    CHECK_ERR(verify(k, hs("{\"mercure\":{\"payload\":[1,{\"a\":null}],\"subscribe\":[\"*\",\"*\"]}}"), &c), NULL);
    CHECK(!c.publish && c.subscribe && c.subscribe->nelts == 2);
    /* other claims are none of ours */
    CHECK_ERR(verify(k, hs("{\"sub\":\"me\",\"aud\":[\"x\"],\"other\":{\"publish\":7}}"), &c), NULL);

    CHECK_ERR(verify(k, hs("{\"mercure\":\"x\"}"), &c), "mercure claim is not an object");
    CHECK_ERR(verify(k, hs("{\"mercure\":[\"*\"]}"), &c), "mercure claim is not an object");
    CHECK_ERR(verify(k, hs("{\"mercure\":null}"), &c), "mercure claim is not an object");
    CHECK_ERR(verify(k, hs("{\"mercure\":{\"publish\":\"*\"}}"), &c), "mercure.publish is not an array");
    CHECK_ERR(verify(k, hs("{\"mercure\":{\"subscribe\":{}}}"), &c), "mercure.subscribe is not an array");
    CHECK_ERR(verify(k, hs("{\"mercure\":{\"publish\":[\"*\",1]}}"), &c), "mercure.publish[1] is not a string");
    CHECK_ERR(verify(k, hs("{\"mercure\":{\"subscribe\":[null]}}"), &c), "mercure.subscribe[0] is not a string");
    CHECK_ERR(verify(k, hs("{\"mercure\":{\"subscribe\":[[\"*\"]]}}"), &c), "is not a string");
    CHECK_ERR(verify(k, hs("{\"mercure\":{\"publish\":[\"urn:a\",\"\"]}}"), &c), "mercure.publish[1] is empty");
    CHECK(!c.publish && !c.subscribe);
    /* a NUL in a string: libjwt's parser refuses the claims */
    CHECK_ERR(verify(k, craft("{\"alg\":\"HS256\"}", "{\"mercure\":{\"subscribe\":[\"a\\u0000b\"]}}", SECRET), &c),
              "malformed token");

    sel = apr_palloc(pool, SSE_TOKEN_SELECTOR_MAX + 2);
    memset(sel, 'a', SSE_TOKEN_SELECTOR_MAX + 1);
    sel[SSE_TOKEN_SELECTOR_MAX] = '\0';
    CHECK_ERR(verify(k, hs(apr_psprintf(pool, "{\"mercure\":{\"subscribe\":[\"%s\"]}}", sel)), &c), NULL);
    CHECK(c.subscribe && c.subscribe->nelts == 1
          && strlen(SEL(c.subscribe, 0)) == SSE_TOKEN_SELECTOR_MAX);
    sel[SSE_TOKEN_SELECTOR_MAX] = 'a';
    sel[SSE_TOKEN_SELECTOR_MAX + 1] = '\0';
    CHECK_ERR(verify(k, hs(apr_psprintf(pool, "{\"mercure\":{\"subscribe\":[\"%s\"]}}", sel)), &c),
              "mercure.subscribe[0] is longer than 2048 bytes");
    /* escapes are decoded: the selector is the string, not its JSON spelling */
    CHECK_ERR(verify(k, hs("{\"mercure\":{\"publish\":[\"https://example.com/\\u00e9\\/x\"]}}"), &c), NULL);
    CHECK(c.publish && c.publish->nelts == 1);
    if (c.publish && c.publish->nelts == 1)
        CHECK_STR(SEL(c.publish, 0), "https://example.com/\xC3\xA9/x");
}

static void test_key_make(void)
{
    sse_token_key_t *k = (sse_token_key_t *)1;
    const char *missing = apr_pstrcat(pool, tmpdir, "/missing.pem", NULL);
    const char *empty = apr_pstrcat(pool, tmpdir, "/empty.pem", NULL);

    write_file(empty, "", 0);
    CHECK_ERR(sse_token_key_make(pool, "HS257", SECRET, &k), "unknown JWT algorithm 'HS257'");
    CHECK(k == NULL);
    CHECK_ERR(sse_token_key_make(pool, "hs256", SECRET, &k), "unknown JWT algorithm 'hs256'");
    CHECK_ERR(sse_token_key_make(pool, "none", SECRET, &k), "none is refused");
    CHECK_ERR(sse_token_key_make(pool, "NONE", NULL, &k), "none is refused");
    CHECK_ERR(sse_token_key_make(pool, NULL, SECRET, &k), "no JWT algorithm");
    CHECK_ERR(sse_token_key_make(pool, "", SECRET, &k), "no JWT algorithm");
    CHECK_ERR(sse_token_key_make(pool, "PS256", rsa.pub_path, &k), "unknown JWT algorithm");
    CHECK_ERR(sse_token_key_make(pool, "HS256", "", &k), "HS256 secret is empty");
    CHECK_ERR(sse_token_key_make(pool, "HS512", NULL, &k), "HS512 secret is empty");
    CHECK(k == NULL);
    CHECK_ERR(sse_token_key_make(pool, "RS256", missing, &k), "cannot open");
    CHECK_ERR(sse_token_key_make(pool, "RS256", missing, &k), missing);
    CHECK_ERR(sse_token_key_make(pool, "RS256", NULL, &k), "needs the path");
    CHECK_ERR(sse_token_key_make(pool, "ES256", empty, &k), "empty");
    CHECK_ERR(sse_token_key_make(pool, "ES256", tmpdir, &k), "not a regular file");
    CHECK_ERR(sse_token_key_make(pool, "RS256", ec256.pub_path, &k), "not an RSA public key");
    CHECK_ERR(sse_token_key_make(pool, "ES256", rsa.pub_path, &k), "not an EC public key");
    CHECK_ERR(sse_token_key_make(pool, "ES256", ec384.pub_path, &k), "EC key on curve secp384r1, ES256 wants prime256v1");
    CHECK_ERR(sse_token_key_make(pool, "ES512", ec256.pub_path, &k), "ES512 wants secp521r1");
    CHECK_ERR(sse_token_key_make(pool, "RS256", rsa_small.pub_path, &k), "RSA key of 1024 bits");
    CHECK_ERR(sse_token_key_make(pool, "RS256", rsa.priv_path, &k), "not a PEM public key");
    CHECK_ERR(sse_token_key_make(pool, "ES256", ec256.priv_path, &k), "not a PEM public key");
    CHECK(k == NULL);
    CHECK_ERR(sse_token_key_make(pool, "RS256", rsa.pub_path, &k), NULL);
    CHECK(k != NULL);
    /* an HS secret is the text as given, even one that names a file */
    CHECK_ERR(sse_token_key_make(pool, "HS256", rsa.pub_path, &k), NULL);
    CHECK_ERR(verify(k, sign(JWT_ALG_HS256, rsa.pub_path, (int)strlen(rsa.pub_path), "{}"), &(sse_token_claims_t){0}), NULL);
}

int main(void)
{
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    make_pair(&rsa, "rsa", "RSA", NULL, 2048);
    make_pair(&rsa_small, "rsa1024", "RSA", NULL, 1024);
    make_pair(&ec256, "ec256", "EC", "P-256", 0);
    make_pair(&ec384, "ec384", "EC", "P-384", 0);

    test_good();
    test_pem_good();
    test_bad_signature();
    test_dates();
    test_alg_none();
    test_key_confusion();
    test_alg_mismatch();
    test_malformed();
    test_mercure_claim();
    test_key_make();

    rc = system(apr_psprintf(pool, "rm -rf '%s'", tmpdir));
    (void)rc;
    apr_pool_destroy(pool);
    apr_terminate();
    return unit_report();
}
