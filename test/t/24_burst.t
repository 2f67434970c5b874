# A burst on a channel with many streams.  A child's broker writes an
# event to its streams in passes, and events on the same channel that come
# while it writes join the pass (streams not yet written get them in the
# same write, the others in the next pass).  Whatever joins, every stream
# gets every event once, whole, in publish order; a stream on this channel
# and another gets both channels' events in the order of their ids; and
# streams that resume (Last-Event-ID) during the burst get exactly the
# events after their id, in the order a live stream got them.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

my $N = 800;
my $fds = `sh -c 'ulimit -n'`;
chomp $fds;
if ($fds ne 'unlimited' && $fds < $N + 200) {
    plan skip_all => "ulimit -n is $fds; $N streams need more (run-tests.sh raises it)";
}
plan tests => 9;

sub joined {
    my $res = Apache::TestRequest::GET('/server-status?auto');
    return $res->content =~ /^SSEEventsJoined: (\d+)$/m ? $1 : undef;
}

my($c, $d) = (uniq_chan('burst'), uniq_chan('burst2'));
my($streams, $fail) = open_streams($N, "/stream?channel=$c", batch => 200);
is scalar(@$streams), $N, "$N streams on one channel"
    or diag scalar(@$fail) . " failed: $fail->[0]";
my $both = open_stream("/stream?channel=$c,$d");
ok $both && $both->{preamble} eq PREAMBLE, 'a stream on that channel and another';

my(undef, $j0) = publish($c, data => 'w0-000', url => '/bigpub');
my $id0 = ref $j0 eq 'HASH' ? $j0->{id} : undef;
my $joined0 = joined();

# 4 writers x 50 events on $c, a fifth writes 50 on $d, all at once; the
# streams do not read meanwhile (about 6 KB each waits in their sockets)
my($writers, $each) = (4, 50);
my @kids = start_writers($writers + 1, $each, sub {
    my($w, $i) = @_;
    my $res = $w > $writers
        ? publish($d, data => sprintf('d-%03d', $i), url => '/bigpub')
        : publish($c, data => sprintf('w%d-%03d', $w, $i), url => '/bigpub');
    return $res->code == 200;
});
# meanwhile streams resume from the first event, one every 50 ms
my @resumed;
for (1 .. 4) {
    select undef, undef, undef, 0.05;
    push @resumed, open_stream("/stream?channel=$c", headers => ['Last-Event-ID' => $id0 // '']);
}
is wait_writers(@kids), 0, ($writers + 1) . " writers published $each events each (200 OK)";

# A stream's events: (id, data) pairs, or a complaint.  All the reading
# below shares one deadline (the events are in the sockets already).
my $deadline = time + 30;
sub take {
    my($s, $n) = @_;
    my @got;
    for (1 .. $n) {
        my $left = $deadline - time;
        my $ev = $s->next_event($left > 0 ? $left : 0);
        return "nothing after " . scalar(@got) . " events" unless defined $ev;
        my($id, $data) = $ev =~ /\Aid: (\d+)\ndata: ([wd]\d?-\d{3})\n\n\z/;
        return "event " . (@got + 1) . " garbled: " . show(substr $ev, 0, 60)
            unless defined $data;
        push @got, [ $id, $data ];
    }
    return \@got;
}

# in order: ids increasing, each writer's events 1, 2, 3, ... (w0-000,
# the event before the burst, is its writer's first)
sub in_order {
    my $got = shift;
    return writers_order(map {
        my($id, $data) = @$_;
        my($w, $i) = $data =~ /^(w\d|d)-(\d{3})$/;
        [ $id, $w, $data eq 'w0-000' ? 1 : $i ];
    } @$got);
}

my $total = $writers * $each;
my(@wrong, $ref);
for my $k (0 .. $#$streams) {
    my $got = take($streams->[$k], $total + 1);
    my $why = ref $got ? in_order($got) : $got;
    $why = "first is $got->[0][1]" if !$why && $got->[0][1] ne 'w0-000';
    push @wrong, "stream $k: $why" if $why;
    $ref //= $got if !$why;
}
ok !@wrong, "each of $N streams got all " . ($total + 1) . " events once, in order"
    or diag join "\n", @wrong[0 .. ($#wrong < 4 ? $#wrong : 4)];
select undef, undef, undef, 0.3;
my @pending = grep { $_->pending(0) } @$streams;
ok !@pending, 'and nothing more';

my $got = $both ? take($both, $total + 1 + $each) : 'no stream';
my $why = ref $got ? in_order($got) : $got;
is $why, '', "the stream on both channels got all " . ($total + 1 + $each)
    . " events, ids increasing, each writer's in order";

# the resumed streams: exactly what the first stream got after id0
my @after = $ref ? map { "$_->[0]:$_->[1]" } @{ $ref }[1 .. $total] : ();
my @rw;
for my $k (0 .. $#resumed) {
    my $s = $resumed[$k] or do { push @rw, "resume $k did not open"; next };
    my $g = take($s, $total);
    unless (ref $g) { push @rw, "resume $k: $g"; next }
    my @mine = map { "$_->[0]:$_->[1]" } @$g;
    push @rw, "resume $k differs" if "@mine" ne "@after";
    push @rw, "resume $k got more" if $s->pending(0);
}
ok @after == $total && !@rw, scalar(@resumed) . ' streams that resumed during the burst '
    . "got the $total events after their id, as live streams did"
    or diag join "\n", @rw;

my $joined1 = joined();
ok defined $joined0 && defined $joined1, 'SSEEventsJoined in server-status';
cmp_ok(($joined1 // 0) - ($joined0 // 0), '>', 0,
       'some events joined a fan-out under way (SSEEventsJoined grew)');

close_all(@$streams, grep { $_ } $both, @resumed);
