# Stream response headers and preamble, byte for byte: also with DEFLATE
# configured on the location and the client asking for gzip; HEAD; 405 with
# Allow on both handlers; ordinary files still served (and gzipped, which
# proves DEFLATE is really active in this configuration).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

# Everything the spec says about the headers of a stream response.
sub stream_headers_ok {
    my($s, $what) = @_;
    subtest "headers: $what" => sub {
        Test::More::plan tests => 9;
        like $s->{status_line}, qr{^HTTP/1\.1 200\b}, 'status 200';
        like $s->header('Content-Type') // '', qr{^text/event-stream(;|\z)},
             'Content-Type text/event-stream';
        is $s->header('Cache-Control'), 'no-cache', 'Cache-Control: no-cache';
        is $s->header('X-Accel-Buffering'), 'no', 'X-Accel-Buffering: no';
        is lc($s->header('Connection') // ''), 'close', 'Connection: close';
        is $s->header('Content-Length'), undef, 'no Content-Length';
        is $s->header('Transfer-Encoding'), undef, 'no Transfer-Encoding';
        is $s->header('Content-Encoding'), undef, 'no Content-Encoding';
        is $s->header_count('Content-Type'), 1, 'one Content-Type';
    } or diag "response head was:\n$s->{head}";
}

# After the preamble, events must come uncompressed and unchunked too.
sub first_event_plain {
    my($s, $chan, $what) = @_;
    my($res, $j) = publish($chan, data => "plain $what");
    my $id = ref $j eq 'HASH' ? $j->{id} // '?' : '?';
    is show($s->next_event(5)), show(ev(id => $id, data => "plain $what")),
       "$what: first event arrives as plain text";
}

plan tests => 24;

# 1-3: /stream has SetOutputFilter DEFLATE; the client asks for gzip
{
    my $chan = uniq_chan('hdr');
    my $s = open_stream("/stream?channel=$chan",
                        headers => ['Accept-Encoding' => 'gzip, deflate']);
    ok $s && defined $s->{status}, 'stream answered';
    stream_headers_ok($s, 'SetOutputFilter DEFLATE + Accept-Encoding gzip');
    is show($s->{preamble}), show(PREAMBLE), 'body starts with ": ok\n\n"';
    first_event_plain($s, $chan, 'SetOutputFilter DEFLATE');
}

# 5-7: /events/<chan> has AddOutputFilterByType DEFLATE text/event-stream
{
    my $chan = uniq_chan('hdr');
    my $s = open_stream("/events/$chan",
                        headers => ['Accept-Encoding' => 'gzip']);
    stream_headers_ok($s, 'AddOutputFilterByType DEFLATE text/event-stream');
    is show($s->{preamble}), show(PREAMBLE), 'body starts with ": ok\n\n"';
    first_event_plain($s, $chan, 'AddOutputFilterByType');
}

# 8-9: no Accept-Encoding at all, plain location
{
    my $chan = uniq_chan('hdr');
    my $s = open_stream("/stream?channel=$chan");
    stream_headers_ok($s, 'no Accept-Encoding');
    is show($s->{preamble}), show(PREAMBLE), 'preamble without Accept-Encoding';
}

# 10-11: the control: DEFLATE really is active for ordinary content
{
    my $s = raw_http(GET => '/gz/index.html',
                     headers => ['Accept-Encoding' => 'gzip']);
    is $s->status, 200, 'static file through DEFLATE: 200';
    is $s->header('Content-Encoding'), 'gzip',
       'static file through DEFLATE is gzipped (so DEFLATE is active)';
}

# 12-13: an ordinary static file
{
    my $res = Apache::TestRequest::GET('/index.html');
    is $res->code, 200, 'static /index.html: 200';
    like $res->content, qr/static file served next to mod_sse/,
         'static /index.html: content';
}

# 14-17: HEAD: same headers, no body, connection not held, not a subscriber
{
    my $chan = uniq_chan('head');
    my($s) = SSETest::Stream->start("/stream?channel=$chan",
        method => 'HEAD', headers => ['Accept-Encoding' => 'gzip']);
    $s->read_head(5);
    stream_headers_ok($s, 'HEAD');
    ok $s->wait_eof(3), 'HEAD: server closes the connection';
    is show($s->{buf}), show(''), 'HEAD: no body bytes';
    my(undef, $j) = admin_get($chan);
    is ref $j eq 'HASH' ? $j->{subscribers} : undef, 0,
       'HEAD: not counted as a subscriber';
}

# 18-24: other methods
sub allow_set {
    my $a = shift // '';
    return join ',', sort grep { length } split /\s*,\s*/, $a;
}
for my $c (['POST', '/stream?channel=m405'], ['PUT', '/stream?channel=m405'],
           ['DELETE', '/events/m405'], ['POST', '/multi']) {
    my($m, $path) = @{$c};
    my $s = raw_http($m, $path, body => '');
    subtest "$m $path: 405 with Allow: GET, HEAD" => sub {
        Test::More::plan tests => 2;
        is $s->status, 405, 'status 405';
        is allow_set($s->header('Allow')), 'GET,HEAD', 'Allow: GET, HEAD'
            or diag 'Allow: ' . show($s->header('Allow'));
    };
}
for my $c (['PUT', '/pub?channel=m405'], ['PATCH', '/pub?channel=m405'],
           ['PUT', '/ping']) {
    my($m, $path) = @{$c};
    my $s = raw_http($m, $path, body => '');
    subtest "$m $path: 405 with Allow: GET, POST, DELETE" => sub {
        Test::More::plan tests => 2;
        is $s->status, 405, 'status 405';
        is allow_set($s->header('Allow')), 'DELETE,GET,POST',
           'Allow: GET, POST, DELETE'
            or diag 'Allow: ' . show($s->header('Allow'));
    };
}
