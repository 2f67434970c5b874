# History and Last-Event-ID resume: a reconnecting client gets exactly what
# it missed, in order, across channels; when the history cannot cover the
# gap it is told so (SSE-History-Lost header and ": history lost").
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 21;

my $LOST = ": history lost\n\n";

# publish n events on chan through $url; returns their ids
sub pub_n {
    my($url, $chan, $n, $tag) = @_;
    my @ids;
    for my $i (1 .. $n) {
        my(undef, $j) = publish($chan, data => "$tag$i", url => $url);
        push @ids, ref $j eq 'HASH' ? $j->{id} : undef;
    }
    return @ids;
}

# the data of every event that arrives within $timeout (until none for 1 s)
sub drain {
    my($s, $max) = @_;
    my @d;
    while (@d < $max) {
        my $b = $s->next_event(1);
        last unless defined $b;
        push @d, $b =~ /^data: (.*)$/m ? $1 : "?$b";
    }
    return @d;
}

# 1. exact resume inside the history
my $c = uniq_chan('res');
my @ids = pub_n('/hpub', $c, 8, 'e');
ok !(grep { !defined } @ids), '8 events published';
my $s = open_stream("/stream?channel=$c", headers => ['Last-Event-ID' => $ids[4]]);
ok $s && $s->{preamble} eq PREAMBLE, 'resumed stream opens';
ok !defined $s->header('SSE-History-Lost'), 'no SSE-History-Lost when nothing is missing';
is show(join '', map { $s->next_event(3) // '' } 1 .. 3),
   show(join '', map { ev(id => $ids[$_], data => 'e' . ($_ + 1)) } 5 .. 7),
   'gets exactly the 3 events after its id, byte for byte';
my(undef, $j) = publish($c, data => 'live', url => '/hpub');
is show($s->next_event(3)), show(ev(id => $j->{id}, data => 'live')),
   'then live events, nothing repeated';
$s->disconnect;

# 2. resume from before the history (SSEHistory 5 kept e4..e8 + live)
$s = open_stream("/stream?channel=$c", headers => ['Last-Event-ID' => $ids[0]]);
is $s->header('SSE-History-Lost'), 'true', 'an expired id: SSE-History-Lost: true';
$s->wait_for(sub { length $s->{buf} >= length $LOST }, 3);
is show(substr $s->{buf}, 0, length $LOST), show($LOST), 'and ": history lost" first';
is join(',', drain($s, 10)), 'e5,e6,e7,e8,live', 'then the 5 events it still has';
$s->disconnect;

# 2b. SSEHistoryLostEvent On: the same, plus an event EventSource sees
$s = open_stream("/lstream?channel=$c", headers => ['Last-Event-ID' => $ids[0]]);
$s->wait_for(sub { $s->{buf} =~ /\n\n.*\n\n/s }, 3);
my $want = $LOST . "event: sse-history-lost\ndata: $ids[0]\n\n";
is show(substr $s->{buf}, 0, length $want), show($want),
   'SSEHistoryLostEvent On: ": history lost", then an sse-history-lost event naming the id';
is join(',', drain($s, 10)), "$ids[0],e5,e6,e7,e8,live", '... then the 5 events it still has';
$s->disconnect;
$s = open_stream("/lstream?channel=$c", headers => ['Last-Event-ID' => $ids[5]]);
is join(',', drain($s, 10)), 'e7,e8,live', 'a resume that loses nothing gets no such event';
$s->disconnect;
$s = open_stream("/stream?channel=$c", headers => ['Last-Event-ID' => $ids[0]]);
$s->wait_for(sub { length $s->{buf} > length $LOST }, 3);
unlike $s->{buf}, qr/sse-history-lost/, 'without it (the default): only the comment';
$s->disconnect;
$s = open_stream("/lstream?lastEventId=no-such-id&channel=$c");
$s->wait_for(sub { $s->{buf} =~ /sse-history-lost\ndata: .*\n\n/ }, 3);
like $s->{buf}, qr/event: sse-history-lost\ndata: no-such-id\n\n/, 'an unknown id: the event names it';
$s->disconnect;

# 3. an id never seen: lost, everything held
$s = open_stream("/stream?lastEventId=no-such-id&channel=$c");
is $s->header('SSE-History-Lost'), 'true', 'unknown id (lastEventId query argument): lost';
is join(',', drain($s, 10)), 'e5,e6,e7,e8,live', 'unknown id gets the whole history';
$s->disconnect;

# 4. one id orders events across the channels of a multi-channel stream;
#    a publisher-given id is found too
my($a, $b) = (uniq_chan('ra'), uniq_chan('rb'));
my @seq;
for my $i (1 .. 6) {
    my $ch = $i % 2 ? $a : $b;
    my(undef, $jj) = publish($ch, data => "m$i", ($i == 2 ? (id => "given-$$") : ()));
    push @seq, $jj->{id};
}
is $seq[1], "given-$$", 'a publisher id is kept as given';
$s = open_stream("/stream?channel=$a,$b", headers => ['Last-Event-ID' => "given-$$"]);
is join(',', drain($s, 10)), 'm3,m4,m5,m6',
   'resume after a publisher id on two channels: the rest of both, in publish order';
$s->disconnect;

# 5. no gap and no duplicate while publishing goes on at full rate:
#    a child process publishes 400 numbered events; the client keeps
#    dropping and resuming with its last id.
my $fc = uniq_chan('flood');
my $first = open_stream("/stream?channel=$fc");
my $pid = fork;
die "fork: $!" unless defined $pid;
if (!$pid) {
    for my $i (1 .. 400) {
        publish($fc, data => "n$i");
    }
    require POSIX;
    POSIX::_exit(0);
}
my(@got, $last);
my $cur = $first;
my $reconnects = 0;
while (@got < 400) {
    my $blk = $cur->next_event(5);
    last unless defined $blk;
    my($id) = $blk =~ /^id: (.*)$/m;
    my($d) = $blk =~ /^data: (.*)$/m;
    push @got, $d;
    $last = $id;
    if (@got % 37 == 0) {          # drop and resume, many times
        $cur->disconnect;
        $cur = open_stream("/stream?channel=$fc", headers => ['Last-Event-ID' => $last]);
        $reconnects++;
    }
}
waitpid $pid, 0;
$cur->disconnect;
is scalar(@got), 400, "400 events received over $reconnects reconnects";
is join(',', @got), join(',', map { "n$_" } 1 .. 400),
   'each exactly once, in order';

# 6. a bad Last-Event-ID is refused
my $r = raw_http(GET => "/stream?channel=$c&lastEventId=a%0Ab");
is $r->code, 400, 'lastEventId with a line break: 400';
$r = raw_http(GET => "/stream?channel=$c&lastEventId=%FF");
is $r->code, 400, 'lastEventId that is not UTF-8: 400';
