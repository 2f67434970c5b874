# Bad input is refused with the right status, and nothing is published: a
# stream on the channel receives nothing (the next thing it reads is the
# next valid event).  Injection attempts (CR, LF, NUL in event and id) by
# form, query and text/event-stream body; bad retry; invalid UTF-8; NUL in
# data; unknown fields; bad and missing channels (publish and stream);
# bodies over SSEMaxEventSize (413), including chunked ones.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

my $chan = uniq_chan('bad');
my $s = open_stream("/stream?channel=$chan");
ok $s && $s->{preamble} eq PREAMBLE, "stream on $chan open";

my $n = 0;

# The next valid publish must be the very next thing the stream reads.
sub nothing_received {
    my $tag = 'after-' . ++$n;
    my(undef, $j) = publish($chan, data => $tag);
    my $id = ref $j eq 'HASH' ? $j->{id} // '?' : '?';
    is show($s->next_event(5)), show(ev(id => $id, data => $tag)),
       'nothing was published (the stream reads the next valid event)';
}

# rejected($name, $response [, $status]): status (400 by default: text/plain,
# one line), then nothing on the stream.
sub rejected {
    my($name, $res, $status) = @_;
    $status //= 400;
    subtest $name => sub {
        Test::More::plan tests => $status == 400 ? 4 : 2;
        is $res->code, $status, "status $status"
            or diag 'body: ' . show($res->content);
        if ($status == 400) {
            like $res->header('Content-Type') // '', qr{^text/plain\b},
                 'text/plain';
            like $res->content, qr/\A[^\r\n]+\r?\n?\z/,
                 'body: one line giving the reason'
                or diag 'body: ' . show($res->content);
        }
        nothing_received();
    };
}

# --- injection and bad fields through a form ------------------------------
for my $f (['event', "a\rb"], ['event', "a\nb"], ['event', "a\r\nb"],
           ['event', "a\0b"], ['event', "x\ndata: injected"], ['event', "\n"],
           ['id', "1\r"], ['id', "1\nevent: evil"], ['id', "1\0"],
           ['id', "\r\n\r\ndata: evil"],
           ['retry', '12a'], ['retry', '-5'], ['retry', '1.5'],
           ['retry', ' 12'], ['retry', '0x10'], ['retry', "12\n"],
           ['data', "a\0b"],
           ['data', "\xff"], ['data', "ok \xc3\x28"], ['data', "\xc0\xaf"],
           ['data', "\xed\xa0\x80"], ['data', "\xf4\x90\x80\x80"],
           ['data', "cut \xe2\x82"],
           ['event', "\xff"], ['event', "caf\xe9"], ['id', "\xfe\xff"]) {
    my($k, $v) = @$f;
    rejected("form: $k " . show($v),
             scalar publish($chan, data => 'evil', $k => $v));
}

# --- injection through the query, raw body --------------------------------
for my $q ('event=%0D', 'event=a%0Ab', 'event=%00', 'event=%FF',
           'id=%0D%0A', 'id=a%0Db', 'id=%00', 'id=%C0%AF', 'retry=12a') {
    rejected("query: $q",
             publish_raw("/pub?channel=$chan&$q", 'evil', 'text/plain'));
}
rejected('raw body: invalid UTF-8',
         publish_raw("/pub?channel=$chan", "ab\xff\xfe", 'text/plain'));
rejected('raw body: NUL',
         publish_raw("/pub?channel=$chan", "a\0b", 'text/plain'));

# --- text/event-stream bodies ---------------------------------------------
for my $b ("event: a\0b\ndata: x\n\n", "id: 1\0\ndata: x\n\n",
           "data: a\0b\n\n", "retry: 12a\ndata: x\n\n",
           "foo: bar\ndata: x\n\n", "data: \xff\n\n",
           "event: \xc3\x28\ndata: x\n\n",
           "event: a\rb\ndata: x\n\n",          # CR ends the line: "b" is unknown
           "data: good\n\nevent: x\0\ndata: y\n\n",  # bad 2nd block: nothing at all
           "data: good\n\nbogus\n\n") {
    rejected('text/event-stream: ' . show($b),
             publish_raw("/pub?channel=$chan", $b, 'text/event-stream'));
}

# --- channels (publish) -----------------------------------------------------
rejected('publish without a channel',
         publish_form('/pub', [data => 'evil']));
rejected('publish with an empty channel',
         publish_raw('/pub?channel=', 'evil', 'text/plain'));
for my $c ('a' x 129, 'a!b', 'a#b', 'a%b', 'a"b', 'a<b>', 'a\\b', 'a?b',
           "caf\xc3\xa9", "a\x01b", "$chan,bad!", "bad!,$chan") {
    rejected('publish to bad channel ' . show(length $c > 20 ? 'a x ' . length($c) : $c),
             publish_raw('/pub?channel=' . esc($c), 'evil', 'text/plain'));
}
rejected('form: one bad channel field among good ones',
         publish_form('/pub', [channel => $chan, channel => 'bad!', data => 'evil']));

# --- channels (stream) ------------------------------------------------------
sub stream_rejected {
    my($name, $path) = @_;
    my $r = raw_http(GET => $path);
    subtest "stream: $name" => sub {
        Test::More::plan tests => 3;
        is $r->status, 400, 'status 400';
        like $r->header('Content-Type') // '', qr{^text/plain\b}, 'text/plain';
        like $r->{body} // '', qr/\A[^\r\n]+\r?\n?\z/,
             'body: one line giving the reason'
            or diag 'body: ' . show($r->{body});
    };
}
my $good = uniq_chan('okside');
stream_rejected('no channel', '/stream');
stream_rejected('other query args only', '/stream?foo=bar');
stream_rejected('empty channel', '/stream?channel=');
stream_rejected('129 bytes', '/stream?channel=' . ('a' x 129));
stream_rejected('a!b', '/stream?channel=a%21b');
stream_rejected('a b! (space-separated list, one bad)', '/stream?channel=a%20b%21');
stream_rejected('UTF-8 letter', '/stream?channel=caf%C3%A9');
stream_rejected('good and bad in one list', "/stream?channel=$good,bad%21");
stream_rejected('good and bad as two args', "/stream?channel=$good&channel=bad%21");
stream_rejected('/events/<bad> through SSEChannel', '/events/a!b');
{
    my(undef, $j) = admin_get($good);
    is ref $j eq 'HASH' ? $j->{subscribers} : undef, 0,
       'a refused stream request subscribed to none of its channels';
}

# --- valid channel names at the edges -----------------------------------
for my $c ('b' x 128, 'Az09._~:@/-', '-', 'a@') {
    my $name = length $c > 20 ? 'b x 128' : $c;
    my $t = open_stream('/stream?channel=' . esc($c));
    my($res, $j) = publish($c, data => 'edge');
    subtest "valid channel " . show($name) => sub {
        Test::More::plan tests => 3;
        ok $t && $t->{status} == 200 && $t->{preamble} eq PREAMBLE,
           'stream opens';
        my @bad = check_pub($j, $c, 1);
        ok !@bad, 'publish reaches it' or diag join "\n", @bad, show($res->content);
        my $id = ref $j eq 'HASH' ? $j->{id} // '?' : '?';
        is show($t ? $t->next_event(5) : undef), show(ev(id => $id, data => 'edge')),
           'event received';
    };
}

# --- SSEMaxEventSize ------------------------------------------------------
rejected('/small (1024): 1025-byte raw body is 413',
         publish_raw("/small?channel=$chan", 'x' x 1025, 'text/plain'), 413);
rejected('/small (1024): 1100-byte form body is 413',
         publish_form("/small?channel=$chan", [data => 'y' x 1100]), 413);
{
    my $r = raw_http(POST => "/small?channel=$chan", raw_body => 1,
                     headers => ['Content-Type' => 'text/plain',
                                 'Transfer-Encoding' => 'chunked'],
                     body => sprintf("%x\r\n%s\r\n0\r\n\r\n", 2000, 'z' x 2000));
    rejected('/small (1024): 2000-byte chunked body is 413', $r, 413);
}
rejected('/pub (default 65536): 65537-byte body is 413',
         publish_raw("/pub?channel=$chan", 'x' x 65537, 'text/plain'), 413);
for my $c (['/small', 1024], ['/pub', 65536]) {
    my($url, $size) = @$c;
    my $body = 'w' x $size;
    my $res = publish_raw("$url?channel=$chan", $body, 'text/plain');
    my $j = decode_json_res($res);
    my $id = ref $j eq 'HASH' ? $j->{id} // '?' : '?';
    subtest "$url: a body of exactly $size bytes is accepted" => sub {
        Test::More::plan tests => 2;
        is $res->code, 200, 'status 200';
        my $got = $s->next_event(5);
        ok defined $got && $got eq ev(id => $id, data => $body),
           'event delivered whole' or diag 'got ' . show(substr $got // '', 0, 80);
    };
}

nothing_received();

done_testing;
