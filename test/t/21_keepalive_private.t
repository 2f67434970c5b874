# SSEKeepalive comments, SSERetry at connect, SSEChannel "*private*" and
# SSEMaxChannels.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 9;

# retry and keepalive: /kstream has SSERetry 2500 and SSEKeepalive 1
my($s, $err) = SSETest::Stream->start('/kstream?channel=' . uniq_chan('ka'));
ok $s && $s->read_head(5) && $s->status == 200, 'stream opens';
my $want = ": ok\n\nretry: 2500\n\n";
$s->wait_for(sub { length $s->{buf} >= length $want }, 3);
is show(substr $s->{buf}, 0, length $want, ''), show($want),
   'preamble then "retry: 2500" (SSERetry)';
$s->wait_for(sub { length $s->{buf} >= 13 }, 3.5);
is show($s->{buf}), show(": keepalive\n\n"), 'a quiet stream gets ": keepalive" (SSEKeepalive 1)';
$s->disconnect;

# the default keepalive (15 s) does not fire within 2 s on /stream
my $q = open_stream('/stream?channel=' . uniq_chan('nk'));
is show($q->pending(2)), show(''), 'no keepalive before SSEKeepalive seconds';
$q->disconnect;

# private channel: its name comes as the first event
my $p = open_stream('/private');
my $blk = $p->next_event(3) // '';
my($name) = $blk =~ /^event: sse-channel\ndata: (private-[0-9a-f]{32})\n\n\z/;
ok $name, 'first event names a private channel' or diag show($blk);
my $p2 = open_stream('/private');
my($name2) = ($p2->next_event(3) // '') =~ /data: (\S+)/;
isnt $name2, $name, 'each connection gets its own';
my(undef, $j) = publish($name // 'x', data => 'just you');
is $j->{subscribers}, 1, 'publishing to it reaches exactly that one stream';
is show($p->next_event(3)), show(ev(id => $j->{id}, data => 'just you')),
   'and it receives the event';
close_all($p, $p2);

# SSEMaxChannels 2
my $r = raw_http(GET => '/fewchan?channel=a,b,c');
is $r->code, 400, 'three channels where SSEMaxChannels is 2: 400';
