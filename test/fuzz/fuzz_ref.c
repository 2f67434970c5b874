/* fuzz_ref.c: reference UTF-8 validation and WHATWG event-stream parsing (fuzz_ref.h).
 *
 * Kept as close to the wording of the specifications as C allows; speed does not
 * matter here. The WHATWG parser follows "Interpreting an event stream" step by step:
 * the names in comments are the spec's buffers.
 */
#include <string.h>

#include <apr_strings.h>

#include "fuzz_ref.h"

int ref_utf8_valid(const char *s, apr_size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t i = 0, k, n;
    unsigned long cp;

    while (i < len) {
        unsigned char c = u[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        }
        else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        }
        else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        }
        else {
            return 0;
        }
        if (len - i < n)
            return 0;
        for (k = 1; k < n; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
            return 0;                           /* overlong */
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return 0;                           /* surrogate */
        if (cp > 0x10FFFF)
            return 0;
        i += n;
    }
    return 1;
}

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *out;
    char *data;                 /* data buffer */
    apr_size_t data_len, data_cap;
    const char *type;           /* event type buffer */
    const char *last_id;        /* last event ID buffer */
    const char *retry;          /* set by a valid retry field since the last blank line */
} ref_state_t;

static void data_append(ref_state_t *st, const char *v, apr_size_t n)
{
    if (st->data_len + n + 1 > st->data_cap) {
        apr_size_t cap = (st->data_len + n + 1) * 2;
        char *d = apr_palloc(st->p, cap);
        if (st->data_len)
            memcpy(d, st->data, st->data_len);
        st->data = d;
        st->data_cap = cap;
    }
    memcpy(st->data + st->data_len, v, n);
    st->data_len += n;
    st->data[st->data_len] = '\0';
}

static int all_digits(const char *v, apr_size_t n)
{
    apr_size_t i;

    for (i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return 1;
}

/* "Process the field" */
static void process_field(ref_state_t *st, const char *f, apr_size_t fn,
                          const char *v, apr_size_t vn)
{
    if (fn == 5 && !memcmp(f, "event", 5)) {
        st->type = apr_pstrmemdup(st->p, v, vn);
    }
    else if (fn == 4 && !memcmp(f, "data", 4)) {
        data_append(st, v, vn);
        data_append(st, "\n", 1);
    }
    else if (fn == 2 && !memcmp(f, "id", 2)) {
        if (!memchr(v, '\0', vn))
            st->last_id = apr_pstrmemdup(st->p, v, vn);
    }
    else if (fn == 5 && !memcmp(f, "retry", 5)) {
        if (all_digits(v, vn))
            st->retry = apr_pstrmemdup(st->p, v, vn);
    }
    /* any other field is ignored */
}

/* "Dispatch the event" */
static void dispatch(ref_state_t *st)
{
    ref_event_t *ev;

    if (st->data_len == 0) {
        st->type = "";
        st->retry = NULL;
        return;
    }
    if (st->data[st->data_len - 1] == '\n')
        st->data[--st->data_len] = '\0';
    ev = apr_array_push(st->out);
    ev->type = *st->type ? st->type : "message";
    ev->data = apr_pstrmemdup(st->p, st->data, st->data_len);
    ev->data_len = st->data_len;
    ev->last_id = st->last_id;
    ev->retry = st->retry;
    st->data_len = 0;
    st->type = "";
    st->retry = NULL;
}

static void process_line(ref_state_t *st, const char *line, apr_size_t n)
{
    const char *colon;

    if (n == 0) {
        dispatch(st);
        return;
    }
    if (line[0] == ':')
        return;
    colon = memchr(line, ':', n);
    if (colon) {
        apr_size_t fn = (apr_size_t)(colon - line);
        const char *v = colon + 1;
        apr_size_t vn = n - fn - 1;
        if (vn && *v == ' ') {
            v++;
            vn--;
        }
        process_field(st, line, fn, v, vn);
    }
    else {
        process_field(st, line, n, "", 0);
    }
}

apr_array_header_t *ref_whatwg_parse(apr_pool_t *p, const char *body, apr_size_t len)
{
    ref_state_t st;
    apr_size_t pos = 0, start;

    memset(&st, 0, sizeof(st));
    st.p = p;
    st.out = apr_array_make(p, 4, sizeof(ref_event_t));
    st.type = "";
    st.last_id = "";
    if (len >= 3 && !memcmp(body, "\xEF\xBB\xBF", 3))
        pos = 3;
    /* Only lines ended by CRLF, LF or CR are processed: at the end of the stream an
     * unterminated line, and any event not yet dispatched, are dropped. */
    for (start = pos; pos < len; pos++) {
        if (body[pos] == '\n' || body[pos] == '\r') {
            process_line(&st, body + start, pos - start);
            if (body[pos] == '\r' && pos + 1 < len && body[pos + 1] == '\n')
                pos++;
            start = pos + 1;
        }
    }
    return st.out;
}
