# mod_status: /server-status shows an SSE section (HTML, ?notable) and
# ?auto gives the same numbers as "SSE...: value" lines.  After N streams
# open and M events are published the counts move by exactly what was
# done: streams, channels, subscriptions, per-child streams (the children
# that GET /pub says hold them), events delivered N*M, published once per
# child holding a stream per event, bytes, history, opened/closed, and one
# stream dropped as slow.  The per-second rates are the totals over the
# server's uptime.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 34;

# GET /server-status?auto: every "Key: value" line as a hash.
sub status_auto {
    my $res = Apache::TestRequest::GET('/server-status?auto');
    my %h;
    for (split /\n/, $res->content) {
        $h{$1} = $2 if /^([A-Za-z]+): ?(.*)$/;
    }
    return wantarray ? ($res, \%h) : \%h;
}

# The per-child line $key of ?auto as pid => value.
sub per_child {
    my($h, $key) = @_;
    my @pids = split ' ', $h->{SSEChildPids} // '';
    my @v = split ' ', $h->{"SSEChild$key"} // '';
    return { map { $pids[$_] => $v[$_] } 0 .. $#pids };
}

my($res, $base) = status_auto();
is $res->code, 200, '/server-status?auto: 200';
is $base->{SSERelay}, 'up', 'SSERelay: up';
# The version: the VERSION file's, in ?auto, the HTML section and the
# start-up log line (SSE00016).
my $version = do {
    open my $fh, '<', "$FindBin::Bin/../../VERSION" or die "VERSION: $!";
    my $v = <$fh>;
    chomp $v;
    $v;
};
is $base->{SSEVersion}, $version, "SSEVersion: $version (the VERSION file)";
like Apache::TestRequest::GET('/server-status')->content,
     qr{<dt>Version: mod_sse/\Q$version\E</dt>}, 'HTML: the version';
{
    open my $fh, '<', Apache::Test::vars('t_logs') . '/error_log' or die $!;
    my $log = do { local $/; <$fh> };
    like $log, qr{SSE00016: mod_sse/\Q$version\E configured},
         "error_log: mod_sse/$version configured";
}
is $base->{SSECluster}, 'off', 'SSECluster: off';
my @pids = split ' ', $base->{SSEChildPids} // '';
ok @pids && $base->{SSEChildren} == @pids,
   "SSEChildren ($base->{SSEChildren}) is the number of SSEChildPids (@pids)";
my @keys = qw(Streams Channels EventsPublished EventsDelivered BytesSent
              DroppedSlow StreamsOpened StreamsClosed EventsJoined
              TLSWritesDirect);
my @short = grep { scalar(split ' ', $base->{"SSEChild$_"} // '') != @pids } @keys;
ok !@short, 'every SSEChild... line has one value per child' or diag "@short";
ok !(grep { ($base->{"SSE$_"} // '') !~ /^\d+\z/ }
     @keys, qw(HistoryEvents HistoryBytes Subscriptions RelayPid)),
   'every total is a number';

# N streams on a fresh channel
my($n, $m) = (4, 5);
my $chan = uniq_chan('st');
my @s = map { open_stream("/stream?channel=$chan") } 1 .. $n;
ok !(grep { !$_ || ($_->{preamble} // '') ne PREAMBLE } @s), "$n streams open";
my $open;
wait_until(5, sub {
    $open = status_auto();
    ($open->{SSEStreams} // -1) == $base->{SSEStreams} + $n;
});
is $open->{SSEStreams} - $base->{SSEStreams}, $n, "SSEStreams grew by $n";
is $open->{SSEChannels} - $base->{SSEChannels}, 1, 'SSEChannels grew by 1';
is $open->{SSESubscriptions} - $base->{SSESubscriptions}, $n,
   "SSESubscriptions grew by $n";
is $open->{SSEStreamsOpened} - $base->{SSEStreamsOpened}, $n,
   "SSEStreamsOpened grew by $n";

# which children hold them, by the publish URL's own account
my(undef, $who) = admin_get($chan);
my %held;
$held{$_->{pid}}++ for @{ ref $who eq 'HASH' ? $who->{connections} : [] };
my($b0, $o0) = (per_child($base, 'Streams'), per_child($open, 'Streams'));
my @wrong = grep { ($o0->{$_} // 0) - ($b0->{$_} // 0) != ($held{$_} // 0) }
            keys %$o0;
ok !@wrong && keys %held,
   'per child, SSEChildStreams grew by the streams GET /pub lists in it ('
   . join(', ', map { "$_: $held{$_}" } sort keys %held) . ')'
    or diag "base @{[ %$b0 ]} now @{[ %$o0 ]}";

# M events
my $bytes = 0;
my $pub_ok = 1;
for my $i (1 .. $m) {
    my($r, $j) = publish($chan, data => "status event $i", event => 'st');
    my @bad = check_pub($j, $chan, $n);
    $pub_ok = 0 if @bad || $r->code != 200;
    $bytes += length ev(id => $j->{id} // '', event => 'st', data => "status event $i");
}
ok $pub_ok, "$m publishes each reached $n streams";
my @got = map { my $st = $_; [ map { $st->next_event(5) } 1 .. $m ] } @s;
ok !(grep { grep { !defined } @$_ } @got), 'every stream received every event';

my $after = status_auto();
is $after->{SSEEventsDelivered} - $open->{SSEEventsDelivered}, $n * $m,
   "SSEEventsDelivered grew by N*M = " . $n * $m;
is $after->{SSEEventsPublished} - $open->{SSEEventsPublished},
   scalar(keys %held) * $m,
   "SSEEventsPublished grew by M per child holding a stream ("
   . scalar(keys %held) . " children)";
my $db = $after->{SSEBytesSent} - $open->{SSEBytesSent};
ok $db >= $n * $bytes && $db <= $n * ($bytes + 14),
   "SSEBytesSent grew by the events' bytes times N ($db, want " . $n * $bytes . ')';
is $after->{SSEHistoryEvents} - $open->{SSEHistoryEvents}, $m,
   "SSEHistoryEvents grew by $m";
ok $after->{SSEHistoryBytes} - $open->{SSEHistoryBytes} >= $bytes - 14 * $m,
   'SSEHistoryBytes grew by about the events\' size';

# rates: the totals over the uptime mod_status itself reports
{
    my $up = $after->{ServerUptimeSeconds} // 0;
    my($rate, $tot) = ($after->{SSEEventsDeliveredPerSec}, $after->{SSEEventsDelivered});
    my $secs = $rate > 0 ? $tot / $rate : -1;
    ok $secs >= $up - 1 && $secs <= $up + 2,
       "SSEEventsDeliveredPerSec ($rate) is SSEEventsDelivered ($tot) over the uptime ($up s)";
    my($prate, $ptot) = ($after->{SSEEventsPublishedPerSec}, $after->{SSEEventsPublished});
    $secs = $prate > 0 ? $ptot / $prate : -1;
    ok $secs >= $up - 1 && $secs <= $up + 2,
       "SSEEventsPublishedPerSec ($prate) is SSEEventsPublished ($ptot) over the uptime";
}

# the HTML page shows the same numbers (read between two ?auto pictures
# that agree: prefork may start or stop a child at any moment)
{
    my($html, $now);
    my $picture = sub {
        my $x = shift;
        join ' ', map { $x->{$_} // '' } qw(SSEChildPids SSEChildStreams
                                            SSEChildEventsDelivered SSEStreams);
    };
    wait_until(10, sub {
        my $before = status_auto();
        $html = Apache::TestRequest::GET('/server-status')->content;
        $now = status_auto();
        $picture->($before) eq $picture->($now);
    });
    my($sec) = $html =~ m{(<h1>Server-Sent Events \(mod_sse\)</h1>.*?</table>)}s;
    ok defined $sec, 'the HTML page has the SSE section with its table';
    $sec //= '';
    like $sec, qr{Relay: up, pid $now->{SSERelayPid}; $now->{SSEChildren} child processes},
         'HTML: relay state, pid and children';
    like $sec, qr{Streams: $now->{SSEStreams} open on $now->{SSEChannels} channels},
         'HTML: streams and channels';
    my $st = per_child($now, 'Streams');
    my $de = per_child($now, 'EventsDelivered');
    # pid, streams, held, channels, published, delivered, ...
    my @rows = grep { $sec !~ m{<tr><td>$_</td><td>$st->{$_}</td><td>\d+</td><td>\d+</td><td>\d+</td><td>$de->{$_}</td>} }
               keys %$st;
    ok !@rows && keys %$st, 'HTML: one table row per child with its streams and deliveries'
        or diag "no right row for pid(s) @rows";
    my $nt = Apache::TestRequest::GET('/server-status?notable')->content;
    my($ns) = $nt =~ m{(<h1>Server-Sent Events \(mod_sse\)</h1>.*?)(?:<hr|</body>)}s;
    ok defined $ns && $ns !~ /<table/ && $ns =~ /<p>Child \d+: Streams \d+,/,
       '?notable: one line per child, no table';
}

# closing them
close_all(@s);
my $closed;
wait_until(5, sub {
    $closed = status_auto();
    ($closed->{SSEStreams} // -1) == $base->{SSEStreams};
});
is $closed->{SSEStreams}, $base->{SSEStreams}, 'SSEStreams is back where it was';
is $closed->{SSEStreamsClosed} - $open->{SSEStreamsClosed}, $n,
   "SSEStreamsClosed grew by $n";
is $closed->{SSEChannels}, $base->{SSEChannels}, 'SSEChannels too';

# one subscriber that does not read is dropped as slow
{
    my $c2 = uniq_chan('stslow');
    my $slow = open_stream("/slowstream?channel=$c2", rcvbuf => 4096);
    my $before = status_auto();
    my $gone;
    for my $i (1 .. 300) {
        my(undef, $j) = publish($c2, data => 'x' x 32768);
        if (ref $j eq 'HASH' && ($j->{subscribers} // 1) == 0) { $gone = $i; last }
    }
    ok $gone, 'the slow stream was dropped' . ($gone ? " after $gone events" : '');
    my $now = status_auto();
    is $now->{SSEDroppedSlow} - $before->{SSEDroppedSlow}, 1,
       'SSEDroppedSlow grew by 1';
    $slow->disconnect if $slow;
}
