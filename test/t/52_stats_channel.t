# SSEStatsChannel (sse-stats in t/conf/status.conf.in): once a second the
# relay publishes "event: stats" with a JSON object of the relay, every
# child and every channel.  The JSON parses, has the documented fields,
# lists a new channel with its subscriber count and drops it when its
# streams close, and its delivery counter moves by exactly the events
# delivered between two stats events (ours, plus the stats events this one
# stream received in between).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use JSON::PP ();
use Time::HiRes qw(time);
use SSETest;

plan tests => 22;

my $json = JSON::PP->new->utf8;
my $stats = open_stream('/stream?channel=sse-stats');
ok $stats && ($stats->{preamble} // '') eq PREAMBLE, 'a stream on sse-stats';

my $count = 0;      # stats events received so far
my @bad_blocks;
# The next stats event: (its index, the decoded object), or () on timeout.
sub next_stats {
    my $block = $stats->next_event(4) // return ();
    $count++;
    my($data) = $block =~ /\Aevent: stats\ndata: ([^\n]*)\n\n\z/;
    unless (defined $data) { push @bad_blocks, $block; return ($count, undef) }
    return ($count, eval { $json->decode($data) });
}
# Read stats events until $cond->($obj) holds (up to $secs seconds).
sub stats_until {
    my($secs, $cond) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        my($i, $o) = next_stats() or return ();
        return ($i, $o) if ref $o eq 'HASH' && $cond->($o);
    }
    return ();
}
sub chan_count {
    my($o, $chan) = @_;
    my($c) = grep { $_->{channel} eq $chan } @{ $o->{channels} };
    return $c ? $c->{subscribers} : undef;
}
sub sum_of {
    my($o, $key) = @_;
    my $t = 0;
    $t += $_->{$key} for @{ $o->{children} };
    return $t;
}

my($i0, $first) = next_stats();
ok ref $first eq 'HASH', 'within 4 s: an "event: stats" block (no id) whose data is JSON'
    or diag show($bad_blocks[0]);
$first = {} unless ref $first eq 'HASH';
ok abs(($first->{time} // 0) / 1000 - time) < 5, 'time: now, in milliseconds';
my $relay = ref $first->{relay} eq 'HASH' ? $first->{relay} : {};
ok(($relay->{pid} // '') =~ /^[1-9]\d*\z/ && ($relay->{cluster} // '') eq 'off'
   && defined $relay->{history_events} && defined $relay->{history_bytes},
   'relay: pid, cluster "off", history_events, history_bytes');
my @losses = qw(history_lost refused_store refused_late dropped_exit
                relay_starts relay_upgrades);
ok !(grep { ($relay->{$_} // '') !~ /^\d+\z/ } @losses) && $relay->{relay_starts} >= 1,
   "relay: the losses as on the status page, numbers (@losses), relay_starts >= 1";
{
    my %auto = Apache::TestRequest::GET('/server-status?auto')->content =~ /^SSE(\w+): (\d+)$/mg;
    my %name = (history_lost => 'ResumesHistoryLost', refused_store => 'PublishRefusedStore',
                refused_late => 'PublishRefusedLate', dropped_exit => 'StreamsDroppedExit',
                relay_starts => 'RelayStarts', relay_upgrades => 'RelayUpgrades');
    my @differ = grep { ($relay->{$_} // -1) != ($auto{$name{$_}} // -2) } @losses;
    ok !@differ, 'and the same numbers as /server-status?auto'
        or diag join ', ', map { "$_ $relay->{$_} vs $auto{$name{$_}}" } @differ;
}
my @kids = ref $first->{children} eq 'ARRAY' ? @{ $first->{children} } : ();
is scalar(@kids), $relay->{brokers} // -1, 'one children entry per broker';
my @keys = sort qw(pid streams held channels published delivered bytes
                   dropped_slow opened closed joined refused_limit tls_direct
                   client_refused clients_at_cap);
ok @kids && !(grep { join(',', sort keys %$_) ne join(',', @keys)
                     || grep { !/^\d+\z/ } values %$_ } @kids),
   "each child: exactly @keys, all numbers";
# the server's SSEMaxStreamsPerClient counts, the same in every child's
ok @kids && !(grep { $_->{client_refused} != $kids[0]{client_refused} } @kids),
   'client_refused is the same number in every child (the server\'s)';
is chan_count($first, 'sse-stats'), 1, 'channels: sse-stats with our 1 subscriber';

# a channel appears with its count
my $n = 3;
my $chan = uniq_chan('stats');
my @s = map { open_stream("/stream?channel=$chan") } 1 .. $n;
ok !(grep { !$_ || ($_->{preamble} // '') ne PREAMBLE } @s), "$n streams on $chan";
my($ia, $sa) = stats_until(5, sub { (chan_count($_[0], $chan) // 0) == $n });
ok $sa, "a stats event lists $chan with $n subscribers";
$sa //= { children => [], channels => [] };
ok sum_of($sa, 'streams') >= $n + 1, 'children streams count them and the stats stream';
my(undef, $all) = admin_get();
is scalar(@{ $sa->{channels} }),
   scalar(@{ ref $all eq 'HASH' ? $all->{channels} : [] }),
   'as many channels as GET /pub lists';

# delivered: exact accounting between two stats events
my $m = 4;
my $ok = 1;
for (1 .. $m) {
    my($r, $j) = publish($chan, data => 'counted');
    $ok = 0 if $r->code != 200 || check_pub($j, $chan, $n);
}
ok $ok, "$m events published to $n streams";
my($ib, $sb) = next_stats();
my $d = ref $sb eq 'HASH' ? sum_of($sb, 'delivered') - sum_of($sa, 'delivered') : -1;
is $d, $n * $m + ($ib // 0) - $ia,
   "delivered grew by N*M plus the stats events received in between ($d)";
my(undef, $who) = admin_get($chan);
my %held = map { $_->{pid} => 1 } @{ ref $who eq 'HASH' ? $who->{connections} : [] };
my $p = ref $sb eq 'HASH' ? sum_of($sb, 'published') - sum_of($sa, 'published') : -1;
is $p, $m * keys(%held) + ($ib // 0) - $ia,
   "published grew by M per child holding a stream, plus the stats events ($p)";

# and goes away with its streams
close_all(@s);
my($ic, $c) = stats_until(5, sub { !defined chan_count($_[0], $chan) });
ok $c, "a later stats event no longer lists $chan";
ok $c && sum_of($c, 'closed') - sum_of($sa, 'closed') >= $n,
   "closed grew by at least $n";
# private channels are counted, never named (the stats channel may be public)
my $priv = open_stream('/private');
my($pname) = ($priv->next_event(3) // '') =~ /data: (private-\S+)/;
my($ip, $ps) = stats_until(5, sub { ($_[0]{private_streams} // 0) >= 1 });
ok $ps, 'a private stream shows in private_streams';
ok $ps && $pname && !grep({ $_->{channel} =~ /^private-/ } @{ $ps->{channels} }),
   'and its channel name is not in the stats';
$priv->disconnect;
ok !@bad_blocks, 'every block on sse-stats was a stats event'
    or diag show($bad_blocks[0]);
