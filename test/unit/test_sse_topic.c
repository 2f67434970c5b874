/* test_sse_topic.c: Mercure topics and topic selectors (sse_topic.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit.h"
#include "sse_topic.h"

/* 1 if selector s compiles and matches topic t, 0 if it compiles and does not match,
 * -1 if it does not compile. */
static int m(const char *s, const char *t)
{
    const char *err = NULL;
    sse_selector_t *sel = sse_selector_new(s, strlen(s), &err);
    int r;

    if (!sel) {
        fprintf(stderr, "    selector '%s' refused: %s\n", s, err ? err : "?");
        return -1;
    }
    r = sse_selector_match(sel, t, strlen(t));
    sse_selector_free(sel);
    return r;
}

#define YES(s, t) unit_check(m((s), (t)) == 1, "'" s "' matches '" t "'", __FILE__, __LINE__)
#define NO(s, t) unit_check(m((s), (t)) == 0, "'" s "' does not match '" t "'", __FILE__, __LINE__)

/* The reason sse_selector_new gives for s[0..len), NULL if it compiles. */
static const char *why(const char *s, size_t len)
{
    const char *err = NULL;
    sse_selector_t *sel = sse_selector_new(s, len, &err);

    if (sel) {
        sse_selector_free(sel);
        return NULL;
    }
    return err;
}

#define WHY(s) why((s), strlen(s))

static void test_topic_valid(void)
{
    char big[SSE_TOPIC_MAX + 2];

    CHECK(sse_topic_valid("https://example.com/books/1", 27));
    CHECK(sse_topic_valid("a", 1));
    CHECK(sse_topic_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
    CHECK(!sse_topic_valid("", 0));
    CHECK(!sse_topic_valid(NULL, 0));
    CHECK(!sse_topic_valid("a\nb", 3));
    CHECK(!sse_topic_valid("a\tb", 3));
    CHECK(!sse_topic_valid("a\x7f", 2));
    CHECK(!sse_topic_valid("a\0b", 3));
    CHECK(!sse_topic_valid("\xc3", 1));             /* cut short */
    CHECK(!sse_topic_valid("\xc0\xaf", 2));         /* overlong */
    CHECK(!sse_topic_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!sse_topic_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    CHECK(!sse_topic_valid("\xff", 1));
    memset(big, 'a', sizeof(big));
    CHECK(sse_topic_valid(big, SSE_TOPIC_MAX));
    CHECK(!sse_topic_valid(big, SSE_TOPIC_MAX + 1));
}

static void test_kinds(void)
{
    const char *err = "x";
    sse_selector_t *sel;
    size_t len = 0;

    sel = sse_selector_new("*", 1, &err);
    CHECK(sel && err == NULL);
    if (sel) {
        CHECK(sse_selector_kind(sel) == SSE_SEL_ANY);
        CHECK(sse_selector_match(sel, "anything", 8));
        CHECK(sse_selector_match(sel, "https://example.com/{x}", 23));
        CHECK_STR(sse_selector_text(sel, &len), "*");
        CHECK(len == 1);
        sse_selector_free(sel);
    }
    sel = sse_selector_new("https://example.com/books/1xyz", 27, &err);
    CHECK(sel != NULL);
    if (sel) {
        CHECK(sse_selector_kind(sel) == SSE_SEL_EXACT);
        CHECK_STR(sse_selector_text(sel, &len), "https://example.com/books/1");
        CHECK(len == 27);
        CHECK(sse_selector_text(sel, NULL)[27] == '\0');
        sse_selector_free(sel);
    }
    sel = sse_selector_new("/books/{id}", 11, NULL);
    CHECK(sel && sse_selector_kind(sel) == SSE_SEL_TEMPLATE);
    free(sel);                          /* one block: free() will do */
    sse_selector_free(NULL);

    /* exact: bytes, whole, case-sensitive; '*' only alone */
    YES("https://example.com/books/1", "https://example.com/books/1");
    NO("https://example.com/books/1", "https://example.com/books/10");
    NO("https://example.com/books/1", "https://example.com/books/");
    NO("https://example.com/books/1", "https://example.com/Books/1");
    NO("**", "a");
    YES("**", "**");
    NO("a*", "ab");
    YES("caf\xc3\xa9", "caf\xc3\xa9");
    /* an exact selector may hold what a template may not */
    YES("a b|c}", "a b|c}");
}

static void test_simple(void)
{
    YES("https://example.com/books/{id}", "https://example.com/books/1");
    YES("https://example.com/books/{id}", "https://example.com/books/");   /* optional */
    YES("https://example.com/books/{id}", "https://example.com/books/a-b.c_d~e");
    NO("https://example.com/books/{id}", "https://example.com/books/1/reviews");
    NO("https://example.com/authors/{id}", "https://example.com/books/1");
    NO("https://example.com/books/{id}", "https://example.com/authors/1");
    NO("https://example.com/books/{id}", "https://example.com/books/1?x");
    NO("https://example.com/books/{id}", "https://example.com/books/1:2");
    NO("https://example.com/books/{id}", "https://example.com/books/a=b");
    YES("https://example.com/books/{id}", "https://example.com/books/1,2");  /* ',' is in */
    /* the template's own text matches (the hub compares it first) */
    YES("https://example.com/books/{id}", "https://example.com/books/{id}");
    /* literal after, in the middle */
    YES("/users/{id}/books", "/users/42/books");
    NO("/users/{id}/books", "/users/42/book");
    NO("/users/{id}/books", "/users/4/2/books");
    YES("{a}{b}", "xy");
    YES("{a}-{b}", "x-y");
    YES("{a}-{b}", "x-y-z");    /* '-' is unreserved: a or b takes it */
    YES("{a}", "");
    /* lists */
    YES("/x/{a,b}", "/x/1,2");
    YES("/x/{a,b}", "/x/1,2,3");  /* ',' is in the class anyway */
    NO("/x/{a,b}", "/x/1=2");
    /* explode lets '=' in (exploded map k=v) */
    YES("/x/{a*}", "/x/k=v,j=w");
    NO("/x/{a,b}", "/x/k=v");
    YES("/x/{a,b*}", "/x/1,k=v");  /* after the first ',' only */
    NO("/x/{a,b*}", "/x/k=v");
    /* prefix modifiers do not bound the length (as the Go library) */
    YES("/x/{a:3}", "/x/abcdef");
    /* unicode literals */
    YES("/caf\xc3\xa9/{x}", "/caf\xc3\xa9/1");
    NO("/caf\xc3\xa9/{x}", "/cafe/1");
    NO("/x/{a}", "/x/caf\xc3\xa9");
}

static void test_reserved(void)
{
    YES("https://example.com/{+path}", "https://example.com/a/b/c?d=e&f#g");
    YES("https://example.com/{+path}", "https://example.com/");
    YES("https://example.com/{+path}", "https://example.com/!$&'()*+,;=:@[]");
    NO("https://example.com/{+path}", "https://example.com/a b");
    NO("https://example.com/{+path}", "https://example.com/a<b");
    NO("https://example.com/{+path}", "https://example.com/caf\xc3\xa9");
    NO("https://example.com/{+path}", "https://example.org/a");
    YES("{+base}/books/{id}", "https://example.com/books/1");
    NO("{+base}/books/{id}", "https://example.com/books/1/x");
    /* # */
    YES("/page{#frag}", "/page#sec/1");
    YES("/page{#frag}", "/page");
    NO("/page{#frag}", "/page/sec");
    NO("/page{#frag}", "/page#a#b%");
    YES("/page{#frag}", "/page#a#b");    /* '#' is reserved, so in the class */
}

static void test_dot_slash(void)
{
    YES("/file{.ext}", "/file.json");
    YES("/file{.ext}", "/file");
    YES("/file{.ext}", "/file.tar.gz");  /* '.' is unreserved */
    NO("/file{.ext}", "/filejson");
    NO("/file{.ext}", "/file.a/b");
    YES("/file{.a,b}", "/file.x.y.z");
    /* / : at most nvars values, '/' only as their separator */
    YES("/users{/id}", "/users/42");
    YES("/users{/id}", "/users");
    NO("/users{/id}", "/users42");
    NO("/users{/id}", "/users/42/books");
    YES("/users{/id,sub}", "/users/42/books");
    NO("/users{/id,sub}", "/users/42/books/1");
    YES("/users{/id,sub,n}", "/users/42/books/1");
    YES("/users{/id,sub}", "/users/42/");  /* empty values */
    YES("/users{/id,sub}", "/users//");
    NO("/users{/id,sub}", "/users///");
    YES("/users{/path*}", "/users/a/b/c/d/e");
    NO("/users{/path*}", "/users/a/b?c");
    YES("/users{/a,path*}", "/users/a/b/c");
    YES("/books{/id}/reviews", "/books/1/reviews");
    YES("/books{/id}/reviews", "/books/reviews");
    NO("/books{/id}/reviews", "/books/1/2/reviews");
}

static void test_named(void)
{
    /* ; */
    YES("/map{;x,y}", "/map;x=1;y=2");
    YES("/map{;x,y}", "/map;x");
    YES("/map{;x,y}", "/map");
    NO("/map{;x,y}", "/map;x=1;y=2;z=3");
    YES("/map{;list*}", "/map;a=1;b=2;c=3");
    NO("/map{;x}", "/map;x=1;y=2");
    NO("/map{;x}", "/mapx=1");
    /* ? */
    YES("/users/{id}/books{?page}", "/users/1/books?page=2");
    YES("/users/{id}/books{?page}", "/users/1/books");
    YES("/users/{id}/books{?page}", "/users/1/books?");
    NO("/users/{id}/books{?page}", "/users/1/books?page=2&sort=x");
    NO("/users/{id}/books{?page}", "/users/1/books&page=2");
    YES("/search{?q,lang}", "/search?q=cat&lang=fr");
    NO("/search{?q,lang}", "/search?q=cat&lang=fr&x=1");
    YES("/search{?q*}", "/search?q=cat&lang=fr&x=1");
    NO("/search{?q}", "/search?q=a/b");
    NO("/search{?q}", "/search?q=a?b");
    /* & */
    YES("/search?fixed=1{&x,y}", "/search?fixed=1&x=1&y=2");
    YES("/search?fixed=1{&x,y}", "/search?fixed=1");
    NO("/search?fixed=1{&x,y}", "/search?fixed=1&x=1&y=2&z=3");
    NO("/search?fixed=1{&x}", "/search?fixed=1?x=1");
    /* several expressions */
    YES("{+base}{/a,b}{?q}{#f}", "https://h/1/2?q=3#x/y");
    YES("{+base}{/a,b}{?q}{#f}", "");
}

static void test_percent(void)
{
    YES("/tags/{tag}", "/tags/caf%C3%A9");
    YES("/tags/{tag}", "/tags/%2f%2F");
    YES("/tags/{tag}", "/tags/a%20b");
    NO("/tags/{tag}", "/tags/a%2");
    NO("/tags/{tag}", "/tags/a%");
    NO("/tags/{tag}", "/tags/a%zz");
    NO("/tags/{tag}", "/tags/a%%41");
    YES("/tags/{+tag}", "/tags/a/%41");
    NO("/tags/{+tag}", "/tags/a/%4");
    YES("/tags{/a,b}", "/tags/%2F/%2F");
    NO("/tags{/a,b}", "/tags/%2F/%2F/");
    /* a %XX in a literal is bytes like the others */
    YES("/a%20b/{x}", "/a%20b/1");
    NO("/a%20b/{x}", "/a b/1");
    NO("/a%20b/{x}", "/a%2fb/1");
    /* and in a varname */
    YES("/{a%20b}", "/xyz");
}

static void test_errors(void)
{
    char big[SSE_TOPIC_MAX + 2];
    const char *err = "x";
    sse_selector_t *sel;

    CHECK_ERR(why("", 0), "empty topic selector");
    CHECK_ERR(why(NULL, 0), "empty topic selector");
    CHECK_ERR(WHY("a\nb"), "control character in topic selector");
    CHECK_ERR(WHY("a\x7f"), "control character in topic selector");
    CHECK_ERR(why("a\0b", 3), "control character in topic selector");
    CHECK_ERR(WHY("a\xc3"), "topic selector is not UTF-8");
    CHECK_ERR(WHY("/{a"), "unbalanced '{' in topic selector");
    CHECK_ERR(WHY("/{"), "unbalanced '{' in topic selector");
    CHECK_ERR(WHY("/{a,"), "unbalanced '{' in topic selector");
    CHECK_ERR(WHY("/{a:3"), "unbalanced '{' in topic selector");
    CHECK_ERR(WHY("/{a{b}}"), "unbalanced '{' in topic selector");
    CHECK_ERR(WHY("/{{a}"), "unbalanced '{' in topic selector");
    CHECK_ERR(WHY("/{a}}"), "unbalanced '}' in topic selector");
    CHECK_ERR(WHY("/}{a}"), "unbalanced '}' in topic selector");
    CHECK_ERR(WHY("/{}"), "empty variable name in topic selector");
    CHECK_ERR(WHY("/{+}"), "empty variable name in topic selector");
    CHECK_ERR(WHY("/{a,}"), "empty variable name in topic selector");
    CHECK_ERR(WHY("/{,a}"), "reserved operator in topic selector expression");
    CHECK_ERR(WHY("/{=a}"), "reserved operator in topic selector expression");
    CHECK_ERR(WHY("/{!a}"), "reserved operator in topic selector expression");
    CHECK_ERR(WHY("/{@a}"), "reserved operator in topic selector expression");
    CHECK_ERR(WHY("/{|a}"), "reserved operator in topic selector expression");
    CHECK_ERR(WHY("/{$a}"), "bad variable name in topic selector");
    CHECK_ERR(WHY("/{a-b}"), "bad character in topic selector expression");
    CHECK_ERR(WHY("/{a b}"), "bad character in topic selector expression");
    CHECK_ERR(WHY("/{.a.}"), "bad variable name in topic selector");
    CHECK_ERR(WHY("/{..a}"), "bad variable name in topic selector");
    CHECK_ERR(WHY("/{a..b}"), "bad variable name in topic selector");
    CHECK_ERR(WHY("/{caf\xc3\xa9}"), "bad character in topic selector expression");
    CHECK_ERR(WHY("/{a%2}"), "bad percent-encoding in topic selector");
    CHECK_ERR(WHY("/{a%zz}"), "bad percent-encoding in topic selector");
    CHECK_ERR(WHY("/%2{a}"), "bad percent-encoding in topic selector");
    CHECK_ERR(WHY("/{a}%"), "bad percent-encoding in topic selector");
    CHECK_ERR(WHY("/{a:}"), "bad prefix modifier in topic selector (:1 to :9999)");
    CHECK_ERR(WHY("/{a:0}"), "bad prefix modifier");
    CHECK_ERR(WHY("/{a:01}"), "bad prefix modifier");
    CHECK_ERR(WHY("/{a:10000}"), "bad prefix modifier");
    CHECK_ERR(WHY("/{a:x}"), "bad prefix modifier");
    CHECK_ERR(WHY("/{a:3*}"), "bad character in topic selector expression");
    CHECK_ERR(WHY("/{a*:3}"), "bad character in topic selector expression");
    CHECK_ERR(WHY("/{a**}"), "bad character in topic selector expression");
    CHECK_ERR(WHY("/a b/{x}"), "character not allowed in a URI template topic selector");
    CHECK_ERR(WHY("/a|b/{x}"), "character not allowed in a URI template");
    CHECK_ERR(WHY("/a<b>/{x}"), "character not allowed in a URI template");
    CHECK_ERR(WHY("/a\\b/{x}"), "character not allowed in a URI template");
    CHECK_ERR(WHY("/a^b`/{x}"), "character not allowed in a URI template");
    CHECK_ERR(WHY("/a\"/{x}"), "character not allowed in a URI template");
    CHECK_ERR(WHY("/\xef\xbf\xbe/{x}"), "character not allowed in a URI template"); /* U+FFFE */
    CHECK_ERR(WHY("/\xc2\x85/{x}"), "character not allowed in a URI template");     /* U+0085 */
    CHECK_ERR(WHY("{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}{q}"),
              "more than 16 expressions in topic selector");
    CHECK_ERR(WHY("{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}"), NULL);
    /* what does compile */
    CHECK_ERR(WHY("/{a:1}{b:9999}{c*}{d.e_f%41}{+g}{#h}{.i}{/j}{;k}{?l}{&m}"), NULL);
    CHECK_ERR(WHY("/it's{x}/\xc3\xa9\xf0\x9f\x98\x80"), NULL);
    CHECK_ERR(WHY("a b|c}"), NULL);     /* no '{': exact */

    /* the length limit */
    memset(big, 'a', sizeof(big));
    CHECK_ERR(why(big, SSE_TOPIC_MAX), NULL);
    CHECK_ERR(why(big, SSE_TOPIC_MAX + 1), "topic selector longer than 2048 bytes");
    memcpy(big + SSE_TOPIC_MAX - 4, "{id}", 4);
    sel = sse_selector_new(big, SSE_TOPIC_MAX, &err);
    CHECK(sel && err == NULL && sse_selector_kind(sel) == SSE_SEL_TEMPLATE);
    if (sel) {
        memcpy(big + SSE_TOPIC_MAX - 4, "zzzz", 4);
        CHECK(sse_selector_match(sel, big, SSE_TOPIC_MAX));
        CHECK(sse_selector_match(sel, big, SSE_TOPIC_MAX - 4));
        CHECK(!sse_selector_match(sel, big, SSE_TOPIC_MAX - 5));
        CHECK(!sse_selector_match(sel, big, SSE_TOPIC_MAX + 1));  /* too long a topic */
        sse_selector_free(sel);
    }
}

/* Patterns that would make a backtracking matcher take exponential or cubic time. */
static void test_pathological(void)
{
    const char *tpl = "{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}";
    char topic[SSE_TOPIC_MAX + 1], s[SSE_TOPIC_MAX + 1];
    sse_selector_t *sel;
    clock_t t0 = clock();
    double secs;
    int i, r;
    size_t n;

    memset(topic, 'a', SSE_TOPIC_MAX);
    topic[SSE_TOPIC_MAX - 1] = '!';
    sel = sse_selector_new(tpl, strlen(tpl), NULL);
    CHECK(sel != NULL);
    if (!sel)
        return;
    for (i = 0; i < 100; i++) {
        r = sse_selector_match(sel, topic, SSE_TOPIC_MAX);
        CHECK(r == 0);
    }
    CHECK(sse_selector_match(sel, topic, SSE_TOPIC_MAX - 1));
    sse_selector_free(sel);

    /* {/a,b,...} lists with a long literal run after: KMP, not retries */
    n = 0;
    n += (size_t)sprintf(s + n, "{+a}");
    for (i = 0; i < 15; i++)
        n += (size_t)sprintf(s + n, "{/x%d,y,z,w}", i);
    memset(s + n, 'a', 1500);
    n += 1500;
    s[n++] = 'b';
    sel = sse_selector_new(s, n, NULL);
    CHECK(sel != NULL);
    if (sel) {
        memset(topic, '/', SSE_TOPIC_MAX);
        memset(topic + 100, 'a', SSE_TOPIC_MAX - 100);
        for (i = 0; i < 100; i++)
            CHECK(sse_selector_match(sel, topic, SSE_TOPIC_MAX) == 0);
        topic[SSE_TOPIC_MAX - 1] = 'b';
        CHECK(sse_selector_match(sel, topic, SSE_TOPIC_MAX) == 1);
        sse_selector_free(sel);
    }
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("pathological: 201 matches of 2048 bytes in %.3f s\n", secs);
    CHECK(secs < 2.0);     /* ~ms unoptimized; seconds would mean backtracking */
}

int main(void)
{
    test_topic_valid();
    test_kinds();
    test_simple();
    test_reserved();
    test_dot_slash();
    test_named();
    test_percent();
    test_errors();
    test_pathological();
    return unit_report();
}
