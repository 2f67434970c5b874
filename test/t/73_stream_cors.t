# SSECORSOrigins (t/conf/cors.conf.in): a stream location answers the page
# of a listed origin with Access-Control-Allow-Origin (that origin, with
# credentials), a preflight with 204 and what it may send, and its refusals
# (400, 401, 403, 405, 429) with the same headers so the page can read the
# status; an origin not listed gets no CORS header and the stream as
# before; "*" lets any origin read without credentials.  A stream location
# without the directive is unchanged.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use SSETest;

plan tests => 67;

my $APP = 'http://app.example.com';
my $EVIL = 'http://evil.example';
my $SECRET = '!ChangeThisMercureHubJWTSecretKey!';
my @CORS = qw(Access-Control-Allow-Origin Access-Control-Allow-Credentials
              Access-Control-Expose-Headers Access-Control-Allow-Methods
              Access-Control-Allow-Headers Access-Control-Max-Age);

# The CORS headers an answer carries, as "name: value; ..." (for messages).
sub cors_of {
    my $r = shift;
    return join '; ', map { "$_: " . $r->header($_) } grep { defined $r->header($_) } @CORS;
}
sub no_cors {
    my($r, $what) = @_;
    ok !grep({ defined $r->header($_) } @CORS), "$what: no CORS header"
        or diag cors_of($r);
}
# Allowed for $origin with credentials.
sub cors_cred {
    my($r, $origin, $what) = @_;
    ok +($r->header('Access-Control-Allow-Origin') // '') eq $origin
        && ($r->header('Access-Control-Allow-Credentials') // '') eq 'true',
        "$what: Access-Control-Allow-Origin $origin, with credentials"
        or diag cors_of($r);
}
sub preflight {
    my($path, $origin, @more) = @_;
    return raw_http('OPTIONS', $path, headers => [Origin => $origin,
        'Access-Control-Request-Method' => 'GET',
        'Access-Control-Request-Headers' => 'last-event-id', @more]);
}

# --- a listed origin -----------------------------------------------------------
{
    my $chan = uniq_chan('cors');
    my $s = open_stream("/cors/list?channel=$chan", headers => [Origin => $APP]);
    is $s->status, 200, 'a listed origin: the stream';
    cors_cred($s, $APP, '... its answer');
    like $s->header('Vary') // '', qr/\bOrigin\b/, '... Vary: Origin';
    like $s->header('Access-Control-Expose-Headers') // '',
         qr/^(?=.*\bLast-Event-ID\b)(?=.*\bSSE-History-Lost\b)(?=.*\bRetry-After\b)/,
         '... exposing Last-Event-ID, SSE-History-Lost and Retry-After';
    is $s->header_count('Access-Control-Allow-Origin'), 1, '... one Access-Control-Allow-Origin';
    my($res, $o) = publish($chan, data => 'cross');
    is $s->next_event(5), ev(id => $o->{id}, data => 'cross'), '... and its events';
    $s->disconnect;
}
for my $o (['https://www.example.com:8443', 'written HTTPS://WWW.Example.COM:8443'],
           ['https://secure.example.com', 'written with its default port :443'],
           ['HTTP://APP.EXAMPLE.COM', 'sent in capitals']) {
    my $s = open_stream('/cors/list?channel=' . uniq_chan('cors'), headers => [Origin => $o->[0]]);
    is $s->status, 200, "an origin $o->[1]: the stream";
    cors_cred($s, $o->[0], '... echoed');
    $s->disconnect;
}

# --- an origin not listed, no origin: the stream as before, no CORS ------------
{
    my $chan = uniq_chan('cors');
    my $s = open_stream("/cors/list?channel=$chan", headers => [Origin => $EVIL]);
    is $s->status, 200, 'an origin not listed: the stream all the same (CORS is not access control)';
    no_cors($s, '... its answer');
    like $s->header('Vary') // '', qr/\bOrigin\b/, '... Vary: Origin';
    my $t = open_stream("/cors/list?channel=$chan");
    is $t->status, 200, 'no Origin (not a cross-origin request): the stream';
    no_cors($t, '... its answer');
    my($res, $o) = publish($chan, data => 'both');
    is $s->next_event(5), ev(id => $o->{id}, data => 'both'), 'both get the events';
    is $t->next_event(5), ev(id => $o->{id}, data => 'both'), '... both';
    $_->disconnect for $s, $t;
    my $u = open_stream("/cors/list?channel=$chan", headers => [Origin => 'null']);
    is $u->status, 200, 'Origin: null (a sandboxed page): the stream';
    no_cors($u, '...');
    $u->disconnect;
}

# --- preflight -------------------------------------------------------------------
{
    my $r = preflight('/cors/list?channel=x', $APP);
    is $r->code, 204, 'a preflight from a listed origin: 204';
    cors_cred($r, $APP, '... its answer');
    is $r->header('Access-Control-Allow-Methods'), 'GET', '... Access-Control-Allow-Methods: GET';
    like $r->header('Access-Control-Allow-Headers') // '',
         qr/^(?=.*\bLast-Event-ID\b)(?=.*\bCache-Control\b)(?=.*\bAuthorization\b)/,
         '... allowing Last-Event-ID, Cache-Control and Authorization';
    is $r->header('Access-Control-Max-Age'), '3600', '... for an hour';
    is $r->header('Allow'), 'GET, HEAD, OPTIONS', '... Allow: GET, HEAD, OPTIONS';
    $r = preflight('/cors/list?channel=x', $EVIL);
    is $r->code, 204, 'a preflight from an origin not listed: 204';
    no_cors($r, '... but');
    $r = raw_http('OPTIONS', '/cors/list');
    is $r->code, 204, 'a bare OPTIONS: 204';
    is $r->header('Allow'), 'GET, HEAD, OPTIONS', '... with Allow';
}

# --- "*": any origin, without credentials --------------------------------------
{
    my $chan = uniq_chan('cors');
    my $s = open_stream("/cors/any?channel=$chan", headers => [Origin => $EVIL]);
    is $s->status, 200, '*: a stream for any origin';
    is $s->header('Access-Control-Allow-Origin'), '*', '... Access-Control-Allow-Origin: *';
    ok !defined $s->header('Access-Control-Allow-Credentials'), '... never with credentials';
    my $t = open_stream("/cors/any?channel=$chan", headers => [Origin => $APP]);
    cors_cred($t, $APP, '*, and a listed origin: that one');
    my $u = open_stream("/cors/any?channel=$chan");
    no_cors($u, '*, and no Origin');
    $_->disconnect for $s, $t, $u;
    my $r = preflight("/cors/any?channel=$chan", $EVIL);
    is $r->code, 204, '*: a preflight from any origin: 204';
    ok +($r->header('Access-Control-Allow-Origin') // '') eq '*'
        && !defined $r->header('Access-Control-Allow-Credentials')
        && ($r->header('Access-Control-Allow-Methods') // '') eq 'GET',
        '... Access-Control-Allow-Origin: *, methods, no credentials' or diag cors_of($r);
    $s = open_stream("/cors/any?channel=$chan", headers => [Origin => '*']);
    ok +($s->header('Access-Control-Allow-Origin') // '') eq '*'
        && !defined $s->header('Access-Control-Allow-Credentials'),
        'an Origin of * itself: * without credentials' or diag cors_of($s);
    $s->disconnect;
}

# --- refusals carry the headers: the page can read their status -----------------
{
    my $r = raw_http('GET', '/cors/list', headers => [Origin => $APP]);
    is $r->code, 400, 'no channel: 400';
    cors_cred($r, $APP, '... readable');
    $r = raw_http('GET', '/cors/list?channel=' . esc('@secret'), headers => [Origin => $APP]);
    is $r->code, 403, 'a protected channel: 403';
    cors_cred($r, $APP, '... readable');
    $r = raw_http('POST', '/cors/list?channel=x', headers => [Origin => $APP], body => 'x');
    is $r->code, 405, 'POST: 405';
    cors_cred($r, $APP, '... readable');
    is $r->header('Allow'), 'GET, HEAD, OPTIONS', '... Allow: GET, HEAD, OPTIONS';
    $r = raw_http('GET', '/cors/list', headers => [Origin => $EVIL]);
    is $r->code, 400, 'no channel, from an origin not listed: 400';
    no_cors($r, '... not readable');

    # inherited from <Location /cors>
    $r = raw_http('GET', '/cors/token?channel=x', headers => [Origin => $APP]);
    is $r->code, 401, 'no token: 401';
    cors_cred($r, $APP, '... readable (the list inherited from <Location /cors>)');
    my $tok = hs256_jwt({ mercure => { subscribe => ['y'] } }, $SECRET);
    $r = raw_http('GET', '/cors/token?channel=x', headers => [Origin => $APP,
        Authorization => "Bearer $tok"]);
    is $r->code, 403, 'a token that does not allow the channel: 403';
    cors_cred($r, $APP, '... readable');

    my $chan = uniq_chan('cors');
    my $one = open_stream("/cors/capped?channel=$chan", local => '127.0.0.23',
                          headers => [Origin => $APP]);
    is $one->status, 200, 'SSEMaxStreamsPerClient 1: the first stream';
    $r = raw_http('GET', "/cors/capped?channel=$chan", local => '127.0.0.23',
                  headers => [Origin => $APP]);
    is $r->code, 429, '... a second from the same address: 429';
    cors_cred($r, $APP, '... readable');
    ok defined $r->header('Retry-After')
        && ($r->header('Access-Control-Expose-Headers') // '') =~ /\bRetry-After\b/,
        '... its Retry-After too';
    $one->disconnect;

    # Require answers before the stream handler: no CORS header on its 403;
    # a preflight let through by <If> is answered
    $r = raw_http('GET', '/cors/closed?channel=x', headers => [Origin => $APP]);
    is $r->code, 403, 'Require all denied: 403, before the stream handler';
    no_cors($r, '... so');
    $r = preflight('/cors/closed?channel=x', $APP);
    is $r->code, 204, '... the preflight, let through by <If>: 204';
    cors_cred($r, $APP, '... answered');
}

# --- HEAD, and a stream location without SSECORSOrigins --------------------------
{
    my $r = raw_http('HEAD', '/cors/list?channel=' . uniq_chan('cors'), headers => [Origin => $APP]);
    is $r->code, 200, 'HEAD: 200';
    cors_cred($r, $APP, '... with the headers');
    my $s = open_stream('/stream?channel=' . uniq_chan('cors'), headers => [Origin => $APP]);
    is $s->status, 200, 'without SSECORSOrigins: the stream';
    no_cors($s, '...');
    ok +($s->header('Vary') // '') !~ /\bOrigin\b/, '... no Vary: Origin';
    $s->disconnect;
    $r = preflight('/stream?channel=x', $APP);
    is $r->code, 405, '... OPTIONS: 405 as before';
    is $r->header('Allow'), 'GET, HEAD', '... Allow: GET, HEAD';
}
