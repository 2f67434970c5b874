/* sse_event.c: event framing for mod_sse, with no httpd in it.
 *
 * Everything a publisher hands us is checked here before it can reach a stream, because
 * a CR or LF smuggled into an id or event name would let one publisher forge events for
 * every subscriber. Valid events are serialized once, LF-only (some client parsers miss
 * an event when a lone CR ends a read), and that one buffer is what subscribers get.
 * Serializing and parsing are linear in the input; see sse_event.h for the contracts.
 */
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>

#include "sse_event.h"

/* Bytes that separate items of a channel list. */
#define CHAN_SEPS ", \t\n\v\f\r"

/* How much of a bad item a reason shows before cutting it with "...". */
#define SHOW_MAX SSE_CHANNEL_MAX

/* s[0..len) made printable for a one-line reason: bytes outside 0x20..0x7e, the
 * backslash and the quote become \xNN, and at most max bytes are shown, then "...". */
static const char *show_bytes(apr_pool_t *p, const char *s, apr_size_t len,
                              apr_size_t max)
{
    static const char hex[] = "0123456789ABCDEF";
    apr_size_t shown = len < max ? len : max, i;
    char *buf = apr_palloc(p, shown * 4 + 4), *w = buf;

    for (i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '\\' || c == '\'') {
            *w++ = '\\';
            *w++ = 'x';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
        else {
            *w++ = (char)c;
        }
    }
    if (shown < len) {
        memcpy(w, "...", 3);
        w += 3;
    }
    *w = '\0';
    return buf;
}

/* ---- channels ---- */

static int channel_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '.' || c == '_' || c == '~' || c == ':' || c == '@' || c == '/'
        || c == '-';
}

/* Returns 1 if name[0..len) is a valid channel name, else 0. */
int sse_channel_valid(const char *name, apr_size_t len)
{
    apr_size_t i;

    if (len == 0 || len > SSE_CHANNEL_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if (!channel_char((unsigned char)name[i]))
            return 0;
    return 1;
}

int sse_namespace_valid(const char *ns, apr_size_t len)
{
    apr_size_t i;

    if (len == 0 || len > SSE_NAMESPACE_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if (ns[i] == '/' || !channel_char((unsigned char)ns[i]))
            return 0;
    return 1;
}

int sse_key_valid(const char *key, apr_size_t len)
{
    const char *slash = memchr(key, '/', len);
    apr_size_t nslen;

    if (!slash)
        return 0;
    nslen = (apr_size_t)(slash - key);
    return sse_namespace_valid(key, nslen)
        && (sse_channel_valid(slash + 1, len - nslen - 1)
            || sse_key_is_hub(key, len));
}

int sse_key_is_hub(const char *key, apr_size_t len)
{
    apr_size_t hl = sizeof(SSE_HUB_CHANNEL) - 1;

    return len > hl + 1 && key[len - hl - 1] == '/'
        && !memcmp(key + len - hl, SSE_HUB_CHANNEL, hl)
        && !memchr(key, '/', len - hl - 1);
}

const char *sse_key_make(apr_pool_t *p, const char *ns, const char *name)
{
    return apr_pstrcat(p, ns, "/", name, NULL);
}

const char *sse_key_name(const char *key)
{
    const char *slash = strchr(key, '/');

    return slash ? slash + 1 : key;
}

int sse_channel_protected(const char *name)
{
    return name[0] == '@';
}

const char *sse_namespace_from_host(apr_pool_t *p, const char *host)
{
    apr_size_t len = host ? strlen(host) : 0, i;
    char *ns;

    if (!len)
        return "_";
    if (len > SSE_NAMESPACE_MAX)
        len = SSE_NAMESPACE_MAX;
    ns = apr_pstrmemdup(p, host, len);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ns[i];
        if (c >= 'A' && c <= 'Z')
            ns[i] = (char)(c - 'A' + 'a');
        else if (c == '/' || !channel_char(c))
            ns[i] = '_';
    }
    return ns;
}

/* Validates name[0..len) and appends it to out unless seen has it already. */
static const char *channel_add(apr_pool_t *p, apr_hash_t *seen, apr_array_header_t *out,
                               const char *name, apr_size_t len)
{
    const char *copy;

    if (len > SSE_CHANNEL_MAX)
        return apr_psprintf(p, "invalid channel name '%s' (longer than %d bytes)",
                            show_bytes(p, name, len, SHOW_MAX), SSE_CHANNEL_MAX);
    if (!sse_channel_valid(name, len))
        return apr_psprintf(p, "invalid channel name '%s'",
                            show_bytes(p, name, len, SHOW_MAX));
    if (apr_hash_get(seen, name, (apr_ssize_t)len))
        return NULL;
    copy = apr_pstrmemdup(p, name, len);
    apr_hash_set(seen, copy, (apr_ssize_t)len, copy);
    APR_ARRAY_PUSH(out, const char *) = copy;
    return NULL;
}

/* Returns NULL, or why the list was refused (out then unchanged). */
const char *sse_channels_parse(apr_pool_t *p, const char *list, apr_array_header_t *out)
{
    apr_hash_t *seen = apr_hash_make(p);
    int before = out->nelts, i;

    /* A hash, not a scan of out, so a long list stays linear. */
    for (i = 0; i < out->nelts; i++) {
        const char *c = APR_ARRAY_IDX(out, i, const char *);
        apr_hash_set(seen, c, APR_HASH_KEY_STRING, c);
    }
    while (list && *list) {
        const char *err;
        apr_size_t n;

        list += strspn(list, CHAN_SEPS);
        n = strcspn(list, CHAN_SEPS);
        if (n == 0)
            break;
        if ((err = channel_add(p, seen, out, list, n)) != NULL) {
            out->nelts = before;
            return err;
        }
        list += n;
    }
    return NULL;
}

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence at s[0..avail), or 0 if there is none.
 * The lead byte narrows the first continuation byte (Unicode table 3-7): that is what
 * rules out overlongs, surrogates and code points above U+10FFFF. */
static apr_size_t utf8_seq_len(const unsigned char *s, apr_size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    apr_size_t n, k;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (k = 2; k < n; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Length of the longest well-formed UTF-8 prefix of s[0..len): the offset of the
 * first bad byte, or len. */
static apr_size_t utf8_prefix(const char *s, apr_size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t i = 0, n;

    while (i < len && (n = utf8_seq_len(u + i, len - i)) != 0)
        i += n;
    return i;
}

/* Returns 1 if s[0..len) is well-formed UTF-8, else 0. */
int sse_utf8_valid(const char *s, apr_size_t len)
{
    return utf8_prefix(s, len) == len;
}

/* ---- checking ---- */

/* Checks an id or event name; what names it in the reason. */
static const char *check_name(apr_pool_t *p, const char *what, const char *v)
{
    apr_size_t len = strlen(v), ok;

    if (len == 0)
        return apr_psprintf(p, "empty %s", what);
    if (strpbrk(v, "\r\n"))
        return apr_psprintf(p, "%s contains CR, LF or NUL", what);
    if ((ok = utf8_prefix(v, len)) < len)
        return apr_psprintf(p, "%s is not valid UTF-8 (at byte %" APR_SIZE_T_FMT ")",
                            what, ok);
    return NULL;
}

static int retry_valid(const char *r)
{
    apr_size_t n = strspn(r, "0123456789");

    return n >= 1 && n <= 10 && r[n] == '\0';
}

static const char *check_data(apr_pool_t *p, const char *d, apr_size_t len)
{
    const char *nul = memchr(d, '\0', len);
    apr_size_t ok;

    if (nul)
        return apr_psprintf(p, "data contains NUL (at byte %" APR_SIZE_T_FMT ")",
                            (apr_size_t)(nul - d));
    if ((ok = utf8_prefix(d, len)) < len)
        return apr_psprintf(p, "data is not valid UTF-8 (at byte %" APR_SIZE_T_FMT ")",
                            ok);
    return NULL;
}

/* Returns NULL if ev may be serialized, else why not. */
const char *sse_event_check(apr_pool_t *p, const sse_event_t *ev)
{
    const char *err;

    if (ev->id && (err = check_name(p, "id", ev->id)) != NULL)
        return err;
    if (ev->event && (err = check_name(p, "event name", ev->event)) != NULL)
        return err;
    if (ev->retry && !retry_valid(ev->retry))
        return "retry must be 1 to 10 ASCII digits";
    if (!ev->data)
        return ev->data_len ? "data is NULL but data_len is not 0" : NULL;
    return check_data(p, ev->data, ev->data_len);
}

/* ---- serializing ---- */

/* Finds the line starting at s[0..len): sets *line_len to its length without the break
 * and returns its length with the break (CRLF, CR or LF; none at the end of s). */
static apr_size_t line_split(const char *s, apr_size_t len, apr_size_t *line_len)
{
    apr_size_t i = 0;

    while (i < len && s[i] != '\r' && s[i] != '\n')
        i++;
    *line_len = i;
    if (i == len)
        return i;
    if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
        return i + 2;
    return i + 1;
}

/* Writes "name: v\n" at w if v is set; with w NULL only counts.
 * Returns the bytes written (or that would be). */
static apr_size_t put_field(char *w, const char *name, const char *v)
{
    apr_size_t nlen, vlen;

    if (!v)
        return 0;
    nlen = strlen(name);
    vlen = strlen(v);
    if (w) {
        memcpy(w, name, nlen);
        memcpy(w + nlen, ": ", 2);
        memcpy(w + nlen + 2, v, vlen);
        w[nlen + 2 + vlen] = '\n';
    }
    return nlen + 3 + vlen;
}

/* Writes one "data: <line>\n" per line of d[0..len) at w; with w NULL only counts.
 * Returns the bytes written (or that would be). */
static apr_size_t put_data(char *w, const char *d, apr_size_t len)
{
    apr_size_t n = 0, adv, ll;

    for (;;) {
        adv = line_split(d, len, &ll);
        if (w) {
            memcpy(w + n, "data: ", 6);
            memcpy(w + n + 6, d, ll);
            w[n + 6 + ll] = '\n';
        }
        n += 7 + ll;
        if (adv == ll)          /* no break after this line: it was the last */
            return n;
        d += adv;
        len -= adv;
    }
}

/* Writes the whole event at w (or counts, with w NULL); returns its length. */
static apr_size_t put_event(char *w, const sse_event_t *ev)
{
    const char *d = ev->data ? ev->data : "";
    apr_size_t dlen = ev->data ? ev->data_len : 0, n = 0;

    n += put_field(w ? w + n : NULL, "id", ev->id);
    n += put_field(w ? w + n : NULL, "event", ev->event);
    n += put_field(w ? w + n : NULL, "retry", ev->retry);
    n += put_data(w ? w + n : NULL, d, dlen);
    if (w)
        w[n] = '\n';
    return n + 1;
}

/* Returns ev's canonical wire bytes, NUL-terminated, length in *len. */
char *sse_event_serialize(apr_pool_t *p, const sse_event_t *ev, apr_size_t *len)
{
    apr_size_t n = put_event(NULL, ev);
    char *buf = apr_palloc(p, n + 1);

    put_event(buf, ev);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- parsing a publisher's stream ---- */

typedef struct {
    const char *s;
    apr_size_t n;
} span_t;

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *out;
    apr_array_header_t *data;   /* span_t: this block's data lines, joined at its end */
    sse_event_t ev;
    int has_field;
    apr_size_t line;            /* current line, from 1 */
    apr_size_t block_line;      /* first field line of this block */
} parse_state_t;

/* Stores a copy of v[0..len) in *field; what names the field in the reason. */
static const char *set_field(parse_state_t *st, const char **field, const char *what,
                             const char *v, apr_size_t len)
{
    /* As a C string the value would silently end at the NUL: refuse it instead. */
    if (memchr(v, '\0', len))
        return apr_psprintf(st->p, "%s contains CR, LF or NUL", what);
    *field = apr_pstrmemdup(st->p, v, len);
    return NULL;
}

static int name_is(const char *name, apr_size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* Handles one non-blank, non-comment line. */
static const char *parse_field(parse_state_t *st, const char *line, apr_size_t len)
{
    const char *colon = memchr(line, ':', len);
    apr_size_t nlen = colon ? (apr_size_t)(colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    apr_size_t vlen = colon ? len - nlen - 1 : 0;
    span_t *span;

    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    if (!st->has_field)
        st->block_line = st->line;
    st->has_field = 1;
    if (name_is(line, nlen, "data")) {
        span = apr_array_push(st->data);
        span->s = v;
        span->n = vlen;
        return NULL;
    }
    if (name_is(line, nlen, "event"))
        return set_field(st, &st->ev.event, "event name", v, vlen);
    if (name_is(line, nlen, "id"))
        return set_field(st, &st->ev.id, "id", v, vlen);
    if (name_is(line, nlen, "retry"))
        return set_field(st, &st->ev.retry, "retry", v, vlen);
    return apr_psprintf(st->p, "unknown field '%s'", show_bytes(st->p, line, nlen, SHOW_MAX));
}

/* Joins this block's data lines with "\n" into one NUL-terminated pool string. */
static void join_data(parse_state_t *st)
{
    apr_size_t total = 0, off = 0;
    char *buf;
    int i;

    for (i = 0; i < st->data->nelts; i++)
        total += APR_ARRAY_IDX(st->data, i, span_t).n + (i ? 1 : 0);
    buf = apr_palloc(st->p, total + 1);
    for (i = 0; i < st->data->nelts; i++) {
        const span_t *sp = &APR_ARRAY_IDX(st->data, i, span_t);
        if (i)
            buf[off++] = '\n';
        memcpy(buf + off, sp->s, sp->n);
        off += sp->n;
    }
    buf[off] = '\0';
    st->ev.data = buf;
    st->ev.data_len = total;
}

/* Ends the current block: checks and appends its event, if it has any field. */
static const char *end_block(parse_state_t *st)
{
    const char *err;

    if (!st->has_field)
        return NULL;
    join_data(st);
    if ((err = sse_event_check(st->p, &st->ev)) != NULL)
        return apr_psprintf(st->p, "%s (event %d at line %" APR_SIZE_T_FMT ")",
                            err, st->out->nelts + 1, st->block_line);
    APR_ARRAY_PUSH(st->out, sse_event_t) = st->ev;
    memset(&st->ev, 0, sizeof(st->ev));
    apr_array_clear(st->data);
    st->has_field = 0;
    return NULL;
}

static const char *parse_line(parse_state_t *st, const char *line, apr_size_t len)
{
    const char *err;

    if (len == 0)
        return end_block(st);
    if (line[0] == ':')
        return NULL;
    if ((err = parse_field(st, line, len)) != NULL)
        return apr_psprintf(st->p, "%s (line %" APR_SIZE_T_FMT ")", err, st->line);
    return NULL;
}

/* Returns NULL with the events in *out, or why the body was refused. */
const char *sse_event_parse_stream(apr_pool_t *p, const char *body, apr_size_t len,
                                   apr_array_header_t **out)
{
    parse_state_t st;
    apr_size_t pos = 0, ok, adv, ll;
    const char *err;

    memset(&st, 0, sizeof(st));
    st.p = p;
    st.out = *out = apr_array_make(p, 4, sizeof(sse_event_t));
    st.data = apr_array_make(p, 4, sizeof(span_t));
    if (!body)
        len = 0;
    if ((ok = utf8_prefix(body, len)) < len)
        return apr_psprintf(p, "body is not valid UTF-8 (at byte %" APR_SIZE_T_FMT ")", ok);
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        adv = line_split(body + pos, len - pos, &ll);
        st.line++;
        if ((err = parse_line(&st, body + pos, ll)) != NULL)
            return err;
        pos += adv;
    }
    if ((err = end_block(&st)) != NULL)
        return err;
    return st.out->nelts ? NULL : "no event in body";
}

/* ---- JSON ---- */

/* Writes s escaped (without quotes) at w; with w NULL only counts.
 * Returns the bytes written (or that would be). */
static apr_size_t put_json(char *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    apr_size_t n = 0;
    char esc[7];
    apr_size_t k;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        esc[0] = '\\';
        k = 2;
        if (c == '"' || c == '\\')
            esc[1] = (char)c;
        else if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        }
        else {
            esc[0] = (char)c;
            k = 1;
        }
        if (w)
            memcpy(w + n, esc, k);
        n += k;
    }
    return n;
}

/* Returns s as a quoted JSON string, or null for NULL. */
char *sse_json_str(apr_pool_t *p, const char *s)
{
    apr_size_t n;
    char *buf;

    if (!s)
        return apr_pstrdup(p, "null");
    n = put_json(NULL, s);
    buf = apr_palloc(p, n + 3);
    buf[0] = '"';
    put_json(buf + 1, s);
    buf[n + 1] = '"';
    buf[n + 2] = '\0';
    return buf;
}
