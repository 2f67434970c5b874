# Several channels on one stream (query args, comma and space lists, an
# SSEChannel list), and publishing to several channels at once (answered
# with a JSON array, one object per channel).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

my $ca = uniq_chan('ma');
my $cb = uniq_chan('mb');

my %st = (
    'two args'    => open_stream("/stream?channel=$ca&channel=$cb"),
    'comma list'  => open_stream("/stream?channel=$ca,$cb"),
    'space list'  => open_stream("/stream?channel=$ca%20$cb"),
    'comma+space' => open_stream("/stream?channel=$ca,%20$cb"),
);
my $only_a = open_stream("/events/$ca");
my @names = sort keys %st;

ok !(grep { !$_ || $_->{preamble} ne PREAMBLE } values(%st), $only_a),
   'five streams open';

# 1. an event on a reaches every stream on a
{
    my($res, $j) = publish($ca, data => 'to a');
    my @bad = check_pub($j, $ca, 5);
    ok !@bad, "publish to $ca: 5 subscribers" or diag join "\n", @bad;
    my $want = ev(id => ref $j eq 'HASH' ? $j->{id} // '?' : '?', data => 'to a');
    for my $n (@names) {
        is show($st{$n}->next_event(5)), show($want), "$n: got the event on $ca";
    }
    is show($only_a->next_event(5)), show($want), '/events/<a>: got the event on a';
}

# 2. an event on b reaches the multiplexed streams only
{
    my($res, $j) = publish($cb, event => 'bee', data => 'to b');
    my @bad = check_pub($j, $cb, 4);
    ok !@bad, "publish to $cb: 4 subscribers" or diag join "\n", @bad;
    my $want = ev(id => ref $j eq 'HASH' ? $j->{id} // '?' : '?',
                  event => 'bee', data => 'to b');
    for my $n (@names) {
        is show($st{$n}->next_event(5)), show($want), "$n: got the event on $cb";
    }
    # the next thing /events/<a> reads is the next event on a, not the one on b
    my(undef, $j2) = publish($ca, data => 'a again');
    my $want2 = ev(id => ref $j2 eq 'HASH' ? $j2->{id} // '?' : '?', data => 'a again');
    is show($only_a->next_event(5)), show($want2), '/events/<a> did not get the event on b';
    $_->next_event(5) for values %st;
}

# 3. SSEChannel "m1, m2 m3": one stream on three configured channels
{
    my $m = open_stream('/multi');
    ok $m && $m->{preamble} eq PREAMBLE, '/multi stream open';
    for my $c (qw(m1 m2 m3)) {
        my($res, $j) = publish($c, data => "on $c");
        my @bad = check_pub($j, $c, 1);
        ok !@bad, "publish to $c: 1 subscriber" or diag join "\n", @bad;
        is show($m->next_event(5)),
           show(ev(id => ref $j eq 'HASH' ? $j->{id} // '?' : '?', data => "on $c")),
           "/multi got the event on $c";
    }
}

# 4. one publish to two channels: a JSON array, one object per channel
sub multi_publish_ok {
    my($name, $res, $c1, $c2, $t1, $t2, $data) = @_;
    subtest $name => sub {
        Test::More::plan tests => 6;
        is $res->code, 200, 'status 200' or diag show($res->content);
        like $res->header('Content-Type') // '', qr{^application/json\b}, 'JSON';
        my $j = decode_json_res($res);
        ok ref $j eq 'ARRAY' && @$j == 2, 'a JSON array of two objects'
            or return diag 'body: ' . show($res->content);
        my %by = map { ref $_ eq 'HASH' ? ($_->{channel} // '' => $_) : () } @$j;
        my @bad = (check_pub($by{$c1}, $c1, 1), check_pub($by{$c2}, $c2, 1));
        ok !@bad, 'one object per channel, 1 subscriber each' or diag join "\n", @bad;
        my $id1 = ref $by{$c1} eq 'HASH' ? $by{$c1}{id} // '?' : '?';
        my $id2 = ref $by{$c2} eq 'HASH' ? $by{$c2}{id} // '?' : '?';
        is show($t1->next_event(5)), show(ev(id => $id1, data => $data)), "stream on $c1 got it";
        is show($t2->next_event(5)), show(ev(id => $id2, data => $data)), "stream on $c2 got it";
    };
}
{
    my $c = uniq_chan('mc');
    my $d = uniq_chan('md');
    my $tc = open_stream("/stream?channel=$c");
    my $td = open_stream("/stream?channel=$d");
    multi_publish_ok('query channel=c,d',
        publish_raw("/pub?channel=$c,$d", 'both 1', 'text/plain'),
        $c, $d, $tc, $td, 'both 1');
    multi_publish_ok('query channel=c&channel=d',
        publish_raw("/pub?channel=$c&channel=$d", 'both 2', 'text/plain'),
        $c, $d, $tc, $td, 'both 2');
    multi_publish_ok('two form channel fields',
        publish_form('/pub', [channel => $c, channel => $d, data => 'both 3']),
        $c, $d, $tc, $td, 'both 3');
    multi_publish_ok('form channel "c d"',
        publish_form('/pub', [channel => "$c $d", data => 'both 4']),
        $c, $d, $tc, $td, 'both 4');
}

# 5. two channels and two event blocks: one object per channel per event
{
    my $c = uniq_chan('me');
    my $d = uniq_chan('mf');
    my $tc = open_stream("/stream?channel=$c");
    my $td = open_stream("/stream?channel=$d");
    my $res = publish_raw("/pub?channel=$c,$d", "data: one\n\ndata: two\n\n",
                          'text/event-stream');
    my $j = decode_json_res($res);
    ok ref $j eq 'ARRAY' && @$j == 4
       && !(grep { ref $_ ne 'HASH' || check_pub($_, $_->{channel} // '', 1) } @$j)
       && (grep { ($_->{channel} // '') eq $c } @$j) == 2,
       '2 channels x 2 events: an array of 4 objects'
        or diag 'body: ' . show($res->content);
    for my $t ([$tc, $c], [$td, $d]) {
        my @got = map { $t->[0]->next_event(5) // '' } 1, 2;
        like join('', @got), qr/\Aid: \d+\ndata: one\n\nid: \d+\ndata: two\n\n\z/,
             "stream on $t->[1] got both events in order"
            or diag show(join '', @got);
    }
}

# 6. the channel list of GET /pub shows both multiplexed channels
{
    my($res, $j) = admin_get();
    my %by = map { $_->{channel} => $_->{subscribers} }
             grep { ref $_ eq 'HASH' } @{ ref $j eq 'HASH' && $j->{channels} || [] };
    is $by{$ca}, 5, "GET /pub lists $ca with 5 subscribers";
    is $by{$cb}, 4, "GET /pub lists $cb with 4 subscribers";
}

# 7. where the channel comes from: SSEChannel, else the query, else the form
{
    my $q = uniq_chan('srcq');
    my $f = uniq_chan('srcf');
    my $tq = open_stream("/stream?channel=$q");
    my $tf = open_stream("/stream?channel=$f");
    my $demo = open_stream('/stream?channel=demo');

    my $res = publish_form("/pub?channel=$q", [channel => $f, data => 'query wins']);
    my $j = decode_json_res($res);
    ok ref $j eq 'HASH' && ($j->{channel} // '') eq $q,
       'query channel and form channel: the query one is used'
        or diag show($res->content);
    is show($tq->next_event(5)),
       show(ev(id => ref $j eq 'HASH' ? $j->{id} // '?' : '?', data => 'query wins')),
       '... its stream receives the event';

    my $res2 = Apache::TestRequest::POST("/ping?channel=$q", content => '');
    my $j2 = decode_json_res($res2);
    ok ref $j2 eq 'HASH' && ($j2->{channel} // '') eq 'demo',
       'SSEChannel wins over a query channel' or diag show($res2->content);
    like $demo->next_event(5) // '', qr/\Aid: \d+\nevent: ping\ndata: Server time: /,
         '... the configured channel receives the event';

    # neither the form channel nor the query channel got anything else
    for my $t ([$tq, $q], [$tf, $f]) {
        my(undef, $k) = publish($t->[1], data => 'next');
        is show($t->[0]->next_event(5)),
           show(ev(id => ref $k eq 'HASH' ? $k->{id} // '?' : '?', data => 'next')),
           "$t->[1] received nothing else";
    }
}

done_testing;
