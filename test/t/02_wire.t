# Wire format, byte for byte: what each kind of publish puts on a stream.
#   "id: <id>\n" ["event: <name>\n"] ["retry: <ms>\n"] ("data: <line>\n")+ "\n"
# Form, raw-body and text/event-stream publishing; every kind of line end
# in data; empty data; SSEEvent/SSEData defaults; server ids increasing.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

my $chan = uniq_chan('wire');
my $s = open_stream("/stream?channel=$chan");
my $other = uniq_chan('wire2');
my $s2 = open_stream("/stream?channel=$other");

my @server_ids;    # in publish order, across both channels

# Check a publish answer and what the stream(s) then receive.
#   expect($name, $res, $stream, $chan, [ {event=>, retry=>, data=>[], id=>}, ... ])
# id given: the publisher's id, sent as is; no id: a server id.
sub expect {
    my($name, $res, $st, $ch, $events) = @_;
    subtest $name => sub {
        Test::More::plan tests => 3 + 2 * @$events;
        is $res->code, 200, 'publish answers 200'
            or diag 'body: ' . show($res->content);
        like $res->header('Content-Type') // '', qr{^application/json\b},
             'answer is application/json';
        my $j = decode_json_res($res);
        my @objs = @$events == 1 ? ($j) : ref $j eq 'ARRAY' ? @$j : ();
        is scalar(@objs), scalar(@$events),
           @$events == 1 ? 'one JSON object' : scalar(@$events) . ' objects in a JSON array'
            or diag 'body: ' . show($res->content);
        for my $i (0 .. $#$events) {
            my $e = $events->[$i];
            my $o = $objs[$i];
            my @bad = check_pub($o, $ch, 1, $e->{id});
            ok !@bad, "answer $i: channel, id, subscribers" or diag join "\n", @bad;
            my $id = ref $o eq 'HASH' && defined $o->{id} ? $o->{id} : '<no id>';
            push @server_ids, $id unless defined $e->{id};
            is show($st->next_event(5)), show(ev(%$e, id => $id)),
               "event $i on the wire";
        }
    };
}

ok $s && $s->{preamble} eq PREAMBLE && $s2 && $s2->{preamble} eq PREAMBLE,
   'two streams open';

# --- form publishing ------------------------------------------------------
expect('form: data only', scalar publish($chan, data => 'hello'),
       $s, $chan, [{ data => ['hello'] }]);
expect('form: event, id, retry, two data lines',
       scalar publish($chan, event => 'update', id => 'abc-1', retry => 5000,
                      data => "line1\nline2"),
       $s, $chan, [{ id => 'abc-1', event => 'update', retry => 5000,
                     data => ['line1', 'line2'] }]);
expect('form: event name only', scalar publish($chan, event => 'tick', data => 'x'),
       $s, $chan, [{ event => 'tick', data => ['x'] }]);
expect('form: other channel (ids increase across channels)',
       scalar publish($other, data => 'elsewhere'),
       $s2, $other, [{ data => ['elsewhere'] }]);
expect('form: CRLF splits data', scalar publish($chan, data => "a\r\nb"),
       $s, $chan, [{ data => ['a', 'b'] }]);
expect('form: CR splits data', scalar publish($chan, data => "a\rb"),
       $s, $chan, [{ data => ['a', 'b'] }]);
expect('form: mixed CRLF, CR, LF', scalar publish($chan, data => "a\r\nb\rc\nd"),
       $s, $chan, [{ data => ['a', 'b', 'c', 'd'] }]);
expect('form: CR CR is two line ends', scalar publish($chan, data => "a\r\rb"),
       $s, $chan, [{ data => ['a', '', 'b'] }]);
expect('form: LF CR is two line ends', scalar publish($chan, data => "a\n\rb"),
       $s, $chan, [{ data => ['a', '', 'b'] }]);
expect('form: trailing CRLF gives a last empty line',
       scalar publish($chan, data => "x\r\n"),
       $s, $chan, [{ data => ['x', ''] }]);
expect('form: empty data', scalar publish($chan, data => ''),
       $s, $chan, [{ data => [''] }]);
expect('form: blank lines and field look-alikes stay data',
       scalar publish($chan, data => "data: x\n\nevent: evil\nid: 666"),
       $s, $chan, [{ data => ['data: x', '', 'event: evil', 'id: 666'] }]);
expect('form: leading spaces kept', scalar publish($chan, data => '  two spaces'),
       $s, $chan, [{ data => ['  two spaces'] }]);
expect('form: UTF-8 passes through',
       scalar publish($chan, event => "caf\xc3\xa9", data => "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x89"),
       $s, $chan, [{ event => "caf\xc3\xa9", data => ["h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x89"] }]);
expect('form: channel in the query, fields in the form',
       publish_form("/pub?channel=$chan", [data => 'q', event => 'e']),
       $s, $chan, [{ event => 'e', data => ['q'] }]);

# --- raw body: the body is the data, the rest from the query ---------------
expect('raw text/plain body with event, id, retry in the query',
       publish_raw("/pub?channel=$chan&event=e1&id=raw-7&retry=10",
                   "hello\r\nworld", 'text/plain'),
       $s, $chan, [{ id => 'raw-7', event => 'e1', retry => 10,
                     data => ['hello', 'world'] }]);
expect('raw application/json body', publish_raw("/pub?channel=$chan",
                                                '{"a": 1}', 'application/json'),
       $s, $chan, [{ data => ['{"a": 1}'] }]);
expect('raw body with mixed line ends and a trailing LF',
       publish_raw("/pub?channel=$chan", "1\r2\n3\r\n4\n", 'text/plain; charset=utf-8'),
       $s, $chan, [{ data => ['1', '2', '3', '4', ''] }]);
{
    # no Content-Type at all (LWP always sends one; use a raw request)
    my $res = raw_http(POST => "/pub?channel=$chan&event=nc", body => 'no type');
    expect('raw body without Content-Type', $res, $s, $chan,
           [{ event => 'nc', data => ['no type'] }]);
}

# --- text/event-stream body: parsed and re-serialized canonically ---------
expect('text/event-stream: comment, two blocks, publisher id',
       publish_raw("/pub?channel=$chan",
                   ": a comment\nevent: a\ndata: x\ndata: y\n\nid: t-9\ndata: z\n\n",
                   'text/event-stream'),
       $s, $chan, [{ event => 'a', data => ['x', 'y'] },
                   { id => 't-9', data => ['z'] }]);
expect('text/event-stream: CRLF line ends',
       publish_raw("/pub?channel=$chan", "event: b\r\ndata: p\r\ndata: q\r\n\r\n",
                   'text/event-stream'),
       $s, $chan, [{ event => 'b', data => ['p', 'q'] }]);
expect('text/event-stream: CR line ends',
       publish_raw("/pub?channel=$chan", "event: c\rdata: r\r\r", 'text/event-stream'),
       $s, $chan, [{ event => 'c', data => ['r'] }]);
expect('text/event-stream: no space after colon, one space stripped, retry',
       publish_raw("/pub?channel=$chan", "data:x\ndata:  y\nretry: 250\n\n",
                   'text/event-stream; charset=utf-8'),
       $s, $chan, [{ retry => 250, data => ['x', ' y'] }]);
expect('text/event-stream: fields in any order come out canonical',
       publish_raw("/pub?channel=$chan", "data: d\nretry: 7\nevent: ev\nid: o-1\n\n",
                   'text/event-stream'),
       $s, $chan, [{ id => 'o-1', event => 'ev', retry => 7, data => ['d'] }]);

# --- SSEEvent / SSEData defaults: a bodyless POST to /ping ----------------
{
    my $demo = open_stream('/stream?channel=demo');
    my $res = Apache::TestRequest::POST('/ping', content => '');
    my $j = decode_json_res($res);
    subtest 'SSEEvent/SSEData defaults (/ping)' => sub {
        Test::More::plan tests => 3;
        is $res->code, 200, 'bodyless POST to /ping: 200'
            or diag show($res->content);
        my @bad = check_pub($j, 'demo', 1);
        ok !@bad, 'answer names channel demo, a server id, 1 subscriber'
            or diag join "\n", @bad;
        my $id = ref $j eq 'HASH' ? $j->{id} // '' : '';
        push @server_ids, $id;
        my $got = $demo->next_event(5);
        like $got // '',
             qr/\Aid: \Q$id\E\nevent: ping\ndata: Server time: \d\d:\d\d:\d\d\n\n\z/,
             'event "ping" with "Server time: HH:MM:SS"'
            or diag 'got ' . show($got);
    };
}

# --- server ids: decimal, strictly increasing in publish order ------------
{
    my @bad = grep { !/^[0-9]+\z/ } @server_ids;
    ok !@bad && @server_ids > 10, scalar(@server_ids) . ' server ids, all decimal'
        or diag 'ids: ' . join ' ', map { show($_) } @server_ids;
    my $inc = 1;
    for my $i (1 .. $#server_ids) {
        next if $server_ids[$i] =~ /\D/ || $server_ids[$i - 1] =~ /\D/;
        $inc = 0 unless $server_ids[$i] > $server_ids[$i - 1];
    }
    ok $inc, 'server ids strictly increase across publishes and channels'
        or diag 'ids: ' . join ' ', @server_ids;
}

# nothing else arrived on the streams
is show($s->pending(0.2)), show(''), 'no stray bytes on the stream';

done_testing;
