# A Redis failover under three servers (SSECluster redis-sentinel://...),
# run by test/cluster/sentinel.sh: a master, a replica and three
# sentinels.  Subscribers spread over the servers, events published round
# robin, the master killed (SIGKILL) halfway: publishes during the failover
# answer 503 with Retry-After (never hang, never another status), streams
# stay open, publishes answer 200 again within seconds, and every event
# answered 200 after the kill reaches every subscriber exactly once and in
# order.  Then the old master comes back (a replica now) and nothing
# changes.  Prints FAILOVER lines: the time from the kill to the first 200
# and to every server answering 200, and what the subscribers missed of
# the events answered 200 before the kill (asynchronous replication may
# lose the last ones: reported, not failed; see docs/cluster.md).
use strict;
use warnings FATAL => 'all';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(time sleep);
use FindBin;
use lib "$FindBin::Bin/lib";
use ClusterPump;

my @ports = split ' ', $ENV{CLUSTER_PORTS} || '';
my @sentinels = split ' ', $ENV{SENTINEL_PORTS} || '';
my($master, $replica, $name, $work) = @ENV{qw(MASTER_PORT REPLICA_PORT SENTINEL_NAME CLUSTER_WORK)};
plan skip_all => 'run by test/cluster/sentinel.sh' unless @ports == 3 && @sentinels == 3 && $master;
$SIG{PIPE} = 'IGNORE';
my $t0 = time;
my $json = JSON::PP->new->utf8;
my $http = HTTP::Tiny->new(timeout => 10);
my $nsubs = $ENV{SENTINEL_SUBS} || 300;
my $chan = "fo$$";



my @subs;
sub pump { pump_with(\&stream_read, \@subs, @_) }

# One publish: [status, seconds taken, Retry-After]
sub publish {
    my($port, $data) = @_;
    my $t = time;
    my $res = $http->post_form("http://127.0.0.1:$port/pub?channel=$chan", { data => $data });
    return [$res->{status}, time - $t, $res->{headers}{'retry-after'}];
}

# One private redis-server on $port, its files $work/$name.*, as
# sentinel.sh starts them (@more: more options); dies when it cannot.
sub redis_start {
    my($port, $name, @more) = @_;
    system('redis-server', '--port', $port, '--bind', '127.0.0.1', '--save', '',
           '--appendonly', 'no', '--daemonize', 'yes', '--pidfile', "$work/$name.pid",
           '--logfile', "$work/$name.log", '--dir', $work, '--dbfilename', "$name.rdb",
           '--repl-diskless-sync-delay', '0', @more) == 0
        or die "cannot start redis-server $name on port $port";
}
sub role { my $r = `redis-cli -p $_[0] role 2>/dev/null`; ($r =~ /^(\w+)/)[0] // '' }
my $scli = "redis-cli --no-auth-warning -a $ENV{SENTINEL_PASSWORD}";     # the sentinels'
sub sentinel_master { (split ' ', `$scli -p $sentinels[$_[0] // 0] sentinel get-master-addr-by-name $name 2>/dev/null`)[1] // '' }
sub log_count {     # lines matching $re in the three servers' error logs
    my $re = shift;
    my $n = 0;
    for my $i (1 .. 3) {
        open my $fh, '<', "$work/s$i/error.log" or next;
        $n += grep { /$re/ } <$fh>;
    }
    return $n;
}

# --- the three servers connected to the master through the sentinels -------
like `redis-cli -p $sentinels[0] sentinel get-master-addr-by-name $name 2>&1`, qr/NOAUTH/,
   'the sentinels ask for a password (the servers have it from SSEClusterSentinelPasswordFile)';
ok wait_until(15, sub { !grep { publish($_, 'warm')->[0] != 200 } @ports }),
   'the three servers publish through the master the sentinels name';
is log_count(qr/SSE00430: the sentinel at 127\.0\.0\.1:\d+ says master '$name' is at 127\.0\.0\.1:$master/), 3,
   'each server logged the master it found through a sentinel (SSE00430)';

# --- subscribers, spread over the servers -------------------------------------
for my $i (0 .. $nsubs - 1) {
    push @subs, stream_open($ports[$i % 3], "/stream?channel=$chan") or last;
}
ok @subs == $nsubs && pump(15, sub { !grep { !$_->{ok} } @subs }),
   "$nsubs streams open, spread over the three servers";

# --- events round robin; the master killed halfway ------------------------------
my(@before, @during, %status);
my $k = 0;
my $rr = 0;
for (1 .. 60) {
    my $d = "e" . ++$k;
    my $r = publish($ports[$rr++ % 3], $d);
    push @before, $d if $r->[0] == 200;
    $status{before}{ $r->[0] }++;
    pump(0.01, sub { 0 });
}
is scalar @before, 60, '60 events answered 200 before the kill';

my $pid = do { open my $f, '<', "$work/master.pid" or die $!; local $/; <$f> + 0 };
my $tkill = time;
kill 'KILL', $pid;
diag "master (pid $pid, port $master) killed at " . sprintf('%.1f', $tkill - $t0) . ' s';

# Publish until every server has reconnected (SSE00404) and answered 200
# three times in a row since: the failover is complete.  Events answered
# 200 before that are the window's: checked apart, not failed on (a relay
# that connects first to a new master that lacks the old one's last events
# may take ids another relay has seen: issue 23's item 2).
my $connects0 = log_count(qr/SSE00404:/);
my(@after, @window, @window_switch, $first200, $all200, $slowest, %refused, %run);
my $bad_retry = 0;
$slowest = 0;
while (time - $tkill < 30) {
    my $port = $ports[$rr++ % 3];
    my $d = "e" . ++$k;
    my $r = publish($port, $d);
    my $at = time - $tkill;
    $slowest = $r->[1] if $r->[1] > $slowest;
    $status{during}{ $r->[0] }++;
    my $all_in = log_count(qr/SSE00404:/) >= $connects0 + 3;
    if ($r->[0] == 200) {
        push @{ $all_in ? \@after : \@window }, $d;
        $first200 //= $at;
        $run{$port}++ if $all_in;
    }
    else {
        $run{$port} = 0;
        $refused{$d} = 1;
        $bad_retry++ if $r->[0] == 503 && ($r->[2] // '') ne '1';
    }
    if (!grep { ($run{$_} // 0) < 3 } @ports) { $all200 = $at; last }
    pump(0.02, sub { 0 });
}
my $codes = join ', ', map { "$_: $status{during}{$_}" } sort keys %{ $status{during} };
ok !grep({ $_ != 200 && $_ != 503 } keys %{ $status{during} }),
   "publishes during the failover answer 200 or 503, nothing else ($codes)";
ok $status{during}{503}, 'some were refused (503) while there was no master';
is $bad_retry, 0, 'each 503 carries Retry-After: 1';
ok $slowest < 3, sprintf 'no publish hung (the slowest took %.2f s)', $slowest;
ok defined $all200, 'every server answers 200 again after the failover'
    . (defined $all200 ? sprintf(' (%.1f s after the kill)', $all200) : '');
my $new = sentinel_master();
isnt $new, $master, "the sentinels promoted the replica (master now on port $new)";
is role($replica), 'master', 'the old replica is the master now';
ok log_count(qr/SSE00430: .* is at 127\.0\.0\.1:$replica/) >= 3,
   'each server found the new master through a sentinel (SSE00430)';

# more events, all answered 200
for (1 .. 60) {
    my $d = "e" . ++$k;
    my $r = publish($ports[$rr++ % 3], $d);
    push @after, $d if $r->[0] == 200;
    $status{settled}{ $r->[0] }++;
    pump(0.01, sub { 0 });
}
is $status{settled}{200} // 0, 60, '60 more events answered 200 after the failover';

# --- the old master comes back: sentinel makes it a replica; nothing changes
my $connects = log_count(qr/SSE00404:/);
redis_start($master, 'master');
my $trestart = time;
ok wait_until(20, sub { role($master) eq 'slave'
                        && `redis-cli -p $master info replication` =~ /^master_link_status:up/m }),
   sprintf 'the old master came back as a replica, synced (%.1f s after its restart)', time - $trestart;
for (1 .. 30) {
    my $d = "e" . ++$k;
    my $r = publish($ports[$rr++ % 3], $d);
    push @after, $d if $r->[0] == 200;
    $status{back}{ $r->[0] }++;
    pump(0.02, sub { 0 });
}
is $status{back}{200} // 0, 30, '30 events answered 200 with the old master back as a replica';
is log_count(qr/SSE00404:/), $connects, 'no server reconnected meanwhile (no SSE00404)';
is log_count(qr/SSE00433:/), 0, 'no server followed a switch it did not need (SSE00433)';

# --- a switch while connected: SENTINEL FAILOVER demotes a live master ---------
# (the relays are connected to it: the sentinels' reconfiguration closes
# their connections, or a sentinel's answer changes, or a READONLY; the
# relay must not stay on the demoted one).  Events answered 200 in the
# switch are not checked (a write the demoted master took after the
# promotion is lost: asynchronous replication); those after it are.
my $old_new = sentinel_master();
ok wait_until(10, sub { `$scli -p $sentinels[0] sentinel failover $name 2>&1` =~ /^OK/ }),
   'SENTINEL FAILOVER accepted';
my $tswitch = time;
my $connects1 = log_count(qr/SSE00404:/);
my(%srun, $switched);
$status{switch} = {};
while (time - $tswitch < 20) {
    my $port = $ports[$rr++ % 3];
    my $d = "e" . ++$k;
    my $r = publish($port, $d);
    $status{switch}{ $r->[0] }++;
    $slowest = $r->[1] if $r->[1] > $slowest;
    my $all_in = log_count(qr/SSE00404:/) >= $connects1 + 3;
    if ($r->[0] == 200) { push @{ $all_in ? \@after : \@window_switch }, $d; $srun{$port}++ if $all_in }
    else { $srun{$port} = 0 }
    $switched = time - $tswitch if !grep { ($srun{$_} // 0) < 3 } @ports;
    last if $switched;
    pump(0.02, sub { 0 });
}
$codes = join ', ', map { "$_: $status{switch}{$_}" } sort keys %{ $status{switch} };
ok $switched, 'every server answers 200 on the new master after SENTINEL FAILOVER'
    . ($switched ? sprintf(' (%.1f s)', $switched) : '');
ok !grep({ $_ != 200 && $_ != 503 } keys %{ $status{switch} }), "only 200 and 503 meanwhile ($codes)";
is role($master), 'master', 'the old master is the master again';
is sentinel_master(), $master, 'the sentinels name it';
ok log_count(qr/SSE00433: .* moved from 127\.0\.0\.1:$replica to 127\.0\.0\.1:$master/)
   + log_count(qr/SSE00401: lost Redis at 127\.0\.0\.1:$replica/) >= 3,
   'each server left the demoted master (SSE00433 or SSE00401)';
for (1 .. 30) {
    my $d = "e" . ++$k;
    my $r = publish($ports[$rr++ % 3], $d);
    push @after, $d if $r->[0] == 200;
    $status{switched}{ $r->[0] }++;
    pump(0.02, sub { 0 });
}
is $status{switched}{200} // 0, 30, '30 events answered 200 after the switch';
ok $slowest < 3, sprintf 'still no publish hung (the slowest took %.2f s)', $slowest;

# --- what the subscribers got ---------------------------------------------------
my %want = map { $_ => 1 } @after;
pump(20, sub { !grep { my $s = $_; !grep { $_->[1] eq $after[-1] } @{ $s->{events} } } @subs });
pump(0.5, sub { 0 });
my($bad, $eof, %miss_before, %got_refused, %win, %win_switch) = (0, 0);
for my $s (@subs) {
    $eof++ if $s->{eof};
    my @got = grep { $want{$_} } map { $_->[1] } @{ $s->{events} };
    if ("@got" ne "@after") {
        $bad++;
        diag "a stream on port $s->{port}: " . scalar(@got) . ' of ' . scalar(@after)
            . ' events answered 200 after the kill, not once each in order' if $bad <= 3;
    }
    my %has = map { $_->[1] => 1 } @{ $s->{events} };
    $miss_before{ scalar grep { !$has{$_} } @before }++;
    $got_refused{ scalar grep { $has{$_} } keys %refused }++;
    my %n;
    $n{ $_->[1] }++ for @{ $s->{events} };
    $win{ sprintf '%d missed, %d twice', scalar(grep { !$n{$_} } @window),
          scalar(grep { ($n{$_} // 0) > 1 } @window) }++;
    $win_switch{ sprintf '%d missed, %d twice', scalar(grep { !$n{$_} } @window_switch),
                 scalar(grep { ($n{$_} // 0) > 1 } @window_switch) }++;
}
is $eof, 0, 'every stream stayed open';
is $bad, 0, sprintf 'all %d events answered 200 after the kill reached each of the %d streams once, in order',
    scalar @after, scalar @subs;
ok kill(0, map { do { open my $f, '<', "$work/s$_/httpd.pid" or die $!; <$f> + 0 } } 1 .. 3) == 3,
   'the three httpd are still running';

diag sprintf 'FAILOVER kill -> first 200: %.1f s; kill -> every server 200: %.1f s; '
    . 'refused (503) meanwhile: %d publishes', $first200 // -1, $all200 // -1, scalar keys %refused;
diag 'FAILOVER events answered 200 before the kill missed per stream (missed => streams): '
    . join(', ', map { "$_ => $miss_before{$_}" } sort { $a <=> $b } keys %miss_before);
diag 'FAILOVER events answered 503 that streams got anyway (count => streams): '
    . join(', ', map { "$_ => $got_refused{$_}" } sort { $a <=> $b } keys %got_refused);
# answered 200 while the servers moved to the new master one by one: no id
# given twice (the sequence jumps at a failover), so each reached every stream
is join(' | ', sort keys %win), '0 missed, 0 twice',
   'every event answered 200 while the servers moved to the new master after the kill ('
   . scalar(@window) . ') reached every stream once';
diag 'FAILOVER SENTINEL FAILOVER: events answered 200 before every server left the old (live) master ('
    . scalar(@window_switch) . '), per stream: ' . join(', ', map { "$_ => $win_switch{$_}" } sort keys %win_switch)
    . ' (without SSEClusterWait, writes the demoted master took after the promotion are lost)';
diag 'FAILOVER events answered 200 during the switches, before every server was on the new master ('
    . scalar(@window) . '), per stream: ' . join(', ', map { "$_ => $win{$_}" } sort keys %win);
diag "FAILOVER a new master lacked events the old one had: $_" for map { /(SSE00405: .*)/ } do {
    map { open my $fh, '<', "$work/s$_/error.log" or (); <$fh> } 1 .. 3 };
diag sprintf 'FAILOVER SENTINEL FAILOVER -> every server 200: %.1f s', $switched // -1;

# --- SSEClusterWait: a publish is answered 200 once a replica has it ----------
# (the old master is the master again, the other Redis its replica)
for my $i (1 .. 3) {
    open my $f, '>', "$work/s$i/extra-wait.conf" or die $!;
    print $f "SSEClusterWait 1 300ms\n";
    close $f;
}
my $c0 = log_count(qr/SSE00404:/);
my $root = $> == 0 ? '-DRUN_AS_ROOT' : '';
my $httpd = $ENV{CLUSTER_HTTPD} || '/usr/sbin/apache2';
system("$httpd -f $work/s$_/httpd.conf $root -k graceful") for 1 .. 3;
ok wait_until(15, sub { log_count(qr/SSE00404:/) >= $c0 + 3 }),
   'SSEClusterWait 1 300ms: the three relays replaced (new settings) and on the master';
# (the replica may still be syncing after the switch back: 503 until then)
ok wait_until(20, sub { publish($ports[0], 'w0')->[0] == 200 }),
   'a publish answered 200: the replica confirmed it (WAIT)';
my($n434, $n435) = (log_count(qr/SSE00434:/), log_count(qr/SSE00435:/));
my $rpid = do { open my $f, '<', "$work/replica.pid" or die $!; local $/; <$f> + 0 };
kill 'STOP', $rpid;
my $w1 = publish($ports[0], 'w1');
my $w2 = publish($ports[0], 'w2');
ok $w1->[0] == 503 && $w1->[1] >= 0.25 && $w1->[1] < 2,
   sprintf('the replica stopped: a publish waits the 300 ms and is answered 503 (%d in %.2f s)', @$w1[0, 1]);
ok $w2->[0] == 503 && $w2->[1] < 0.25,
   sprintf('the next one is refused at once, not written (%d in %.2f s)', @$w2[0, 1]);
is log_count(qr/SSE00434:/) - $n434, 1, 'said once (SSE00434)';
ok log_count(qr/SSE00434: a publish reached 0 of the 1 Redis replica\(s\) SSEClusterWait asks for within 300 ms/),
   '... naming what was asked for';
kill 'CONT', $rpid;
my $tback = time;
ok wait_until(10, sub { publish($ports[0], 'w3')->[0] == 200 }),
   sprintf('the replica back: publishes answered 200 again (%.1f s)', time - $tback);
is log_count(qr/SSE00435:/) - $n435, 1, 'said once (SSE00435)';

# --- the master killed with SSEClusterWait 1: nothing answered 200 is lost ---
# A second replica joins (so that one is left to confirm writes once the
# other is promoted).  Fresh streams (the graceful restart closed the
# others): some stay open throughout, some leave before the kill and come
# back after the failover with Last-Event-ID, to be answered from the new
# master's history.  Every event answered 200, before, during and after
# the failover, must reach every stream once and in order.
close $_->{sock}, $_->{eof} = 1 for @subs;
my $replica2 = $master + 5;
redis_start($replica2, 'replica2', '--replicaof', '127.0.0.1', $master);
ok wait_until(30, sub {
        `redis-cli -p $replica2 info replication` =~ /^master_link_status:up/m
        && (() = `$scli -p $sentinels[0] sentinel replicas $name 2>/dev/null` =~ /^ip$/mg) == 2 }),
   'a second replica synced, and the sentinels know it';
my $wchan = "wait$$";
my(@live, @leave);
for my $i (0 .. $nsubs - 1) {
    push @live, stream_open($ports[$i % 3], "/stream?channel=$wchan") or last;
}
for my $i (0 .. 29) {
    push @leave, stream_open($ports[$i % 3], "/stream?channel=$wchan") or last;
}
ok @live == $nsubs && @leave == 30 && pump_with(\&stream_read, [@live, @leave], 15,
                                                sub { !grep { !$_->{ok} } @live, @leave }),
   "$nsubs streams that stay and 30 that will leave, open on the three servers";
my(@acked, %wstatus, %wsent);
my $wpub = sub {
    my($phase) = @_;
    my $d = "w" . ++$k;
    my $port = $ports[$rr++ % 3];
    my $t = time;
    my $res = $http->post_form("http://127.0.0.1:$port/pub?channel=$wchan", { data => $d });
    $wstatus{$phase}{ $res->{status} }++;
    push @{ $wsent{$phase} }, $d;
    push @acked, $d if $res->{status} == 200;
    $slowest = time - $t if time - $t > $slowest;
    pump_with(\&stream_read, [@live, @leave], 0.01, sub { 0 });
    return [$res->{status}, $port];
};
$wpub->('before') for 1 .. 40;
is $wstatus{before}{200} // 0, 40, '40 events answered 200 (each confirmed by a replica)';
pump_with(\&stream_read, [@leave], 10, sub { !grep { @{ $_->{events} } < 40 } @leave });
my %left_at;            # the last id each leaving stream saw, and its event
for my $s (@leave) {
    $left_at{$s} = $s->{events}[-1];
    close $s->{sock};
    $s->{eof} = 1;
}
ok !grep({ !defined $left_at{$_} || $_->{events}[-1][1] ne $acked[-1] } @leave),
   'the 30 leaving streams had the 40 events when they left';
$wpub->('before') for 1 .. 10;          # events they will have to catch up on

# The replicas fall behind: for half a second (less than the sentinels'
# down-after) they follow a master that is not there (REPLICAOF port 1).
# What the master takes meanwhile reaches no replica, so it must not be
# answered 200; then the master dies and the replicas are pointed back at
# it (as the sentinels knew them).  Without the waiting setting these
# would be answered 200 and be missing from the new master's history: the
# streams that left would never get them (checked by hand: the test then
# fails).
my %pidfile = ($master => 'master', $replica => 'replica', $replica2 => 'replica2');
my $wmaster = sentinel_master();
my @rports = grep { $_ != $wmaster } keys %pidfile;
`redis-cli -p $_ replicaof 127.0.0.1 1` for @rports;
my($n405, $n407) = (log_count(qr/SSE00405:/), log_count(qr/SSE00407:/));
my $tb = time;
$wpub->('behind') for 1 .. 3;
my $tk = time;
kill 'KILL', do { open my $f, '<', "$work/$pidfile{$wmaster}.pid" or die $!; local $/; <$f> + 0 };
`redis-cli -p $_ replicaof 127.0.0.1 $wmaster` for @rports;
is $wstatus{behind}{200} // 0, 0, sprintf 'the replicas behind: none of 3 publishes answered 200 (%.2f s)', $tk - $tb;
my $c1 = log_count(qr/SSE00404:/);
my(%wrun, $wfirst, $wall);
while (time - $tk < 40) {
    my $r = $wpub->('failover');
    my $all_in = log_count(qr/SSE00404:/) >= $c1 + 3;
    if ($r->[0] == 200) { $wfirst //= time - $tk; $wrun{ $r->[1] }++ if $all_in }
    else { $wrun{ $r->[1] } = 0 }
    if (!grep { ($wrun{$_} // 0) < 3 } @ports) { $wall = time - $tk; last }
}
$codes = join ', ', map { "$_: $wstatus{failover}{$_}" } sort keys %{ $wstatus{failover} };
ok defined $wall, 'with SSEClusterWait 1, every server answers 200 again after the master is killed'
    . (defined $wall ? sprintf(' (first 200 after %.1f s, every server after %.1f s)', $wfirst, $wall) : '');
ok !grep({ $_ != 200 && $_ != 503 } keys %{ $wstatus{failover} }), "only 200 and 503 meanwhile ($codes)";
$wpub->('after') for 1 .. 30;
ok log_count(qr/SSE00407: the new Redis master's sequence is at \d+, this server had seen \d+/) > $n407,
   'a server said the new master lacks only events no replica confirmed (SSE00407)';
is log_count(qr/SSE00405:/), $n405, '... and none said Redis lost data (SSE00405)';
is $wstatus{after}{200} // 0, 30, '30 more events answered 200 on the new master';

# the killed master comes back: the sentinels make it a replica; nothing
# changes for the servers (no reconnect), publishes go on being confirmed
my $c2 = log_count(qr/SSE00404:/);
redis_start($wmaster, $pidfile{$wmaster});
ok wait_until(20, sub { role($wmaster) eq 'slave'
                        && `redis-cli -p $wmaster info replication` =~ /^master_link_status:up/m }),
   'the killed master came back as a replica of the new one, synced';
$wpub->('back') for 1 .. 20;
is $wstatus{back}{200} // 0, 20, '20 more events answered 200 (confirmed) with it back';
is log_count(qr/SSE00404:/), $c2, '... and no server reconnected';

# an event answered 503 but seen live (the old master published it before
# WAIT failed): a resume from its id, which the new master never had, is
# told the history is lost, and goes on with what came after
my %behind = map { $_ => 1 } @{ $wsent{behind} };
my($seen) = grep { $behind{ $_->[1] } } @{ $live[0]{events} };
my @after_kill = grep { my $d = $_; grep { $_ eq $d } @{ $wsent{failover} }, @{ $wsent{after} }, @{ $wsent{back} } } @acked;
my $gapped = $seen && stream_open($ports[2], "/stream?channel=$wchan", 'Last-Event-ID' => $seen->[0]);
ok $gapped && pump_with(\&stream_read, [$gapped], 10, sub { @{ $gapped->{events} } >= @after_kill })
   && ($gapped->{head} // '') =~ /^SSE-History-Lost: true/mi
   && join(' ', map { $_->[1] } @{ $gapped->{events} }) eq "@after_kill",
   'a resume from the id of an event answered 503 that the new master never had is told SSE-History-Lost, '
   . 'then gets the ' . scalar(@after_kill) . ' events answered 200 after the kill';
close $gapped->{sock} if $gapped;

# the leaving streams come back, each to another server than it left
my @back;
for my $i (0 .. $#leave) {
    my $s = $leave[$i];
    push @back, stream_open($ports[($i + 1) % 3], "/stream?channel=$wchan",
                            'Last-Event-ID' => $left_at{$s}[0]);
    $back[-1]{after} = $left_at{$s}[1];
}
pump_with(\&stream_read, [@live, @back], 20,
          sub { !grep { my $s = $_; !@{ $s->{events} } || $s->{events}[-1][1] ne $acked[-1] } @live, @back });
pump_with(\&stream_read, [@live, @back], 0.5, sub { 0 });
my %is_acked = map { $_ => 1 } @acked;
my($wbad, $bbad, $lost_hdr) = (0, 0, 0);
for my $s (@live) {
    my @got = grep { $is_acked{$_} } map { $_->[1] } @{ $s->{events} };
    next if "@got" eq "@acked";
    $wbad++;
    diag "a stream on port $s->{port} got " . scalar(@got) . ' of ' . scalar(@acked)
        . ' events answered 200, not once each in order' if $wbad <= 3;
}
for my $s (@back) {
    my($i) = grep { $acked[$_] eq $s->{after} } 0 .. $#acked;
    my @want = @acked[$i + 1 .. $#acked];
    my @got = grep { $is_acked{$_} } map { $_->[1] } @{ $s->{events} };
    $lost_hdr++ if ($s->{head} // '') =~ /^SSE-History-Lost:/mi;
    next if "@got" eq "@want";
    $bbad++;
    diag "a resumed stream on port $s->{port} got " . scalar(@got) . ' of the ' . scalar(@want)
        . ' events answered 200 after its Last-Event-ID' if $bbad <= 3;
}
is $wbad, 0, sprintf 'all %d events answered 200 (%d before the kill) reached each of the %d streams that stayed, once, in order',
    scalar @acked, 50, scalar @live;
is $bbad, 0, sprintf 'the 30 streams that left before the kill resumed on another server with every event answered 200 after their id (%d), once, in order',
    scalar(@acked) - 40;
is $lost_hdr, 0, 'none of them was told SSE-History-Lost';
is scalar(grep { $_->{eof} } @live), 0, 'every stream that stayed is still open';
ok kill(0, map { do { open my $f, '<', "$work/s$_/httpd.pid" or die $!; <$f> + 0 } } 1 .. 3) == 3,
   'the three httpd are still running';
diag sprintf 'FAILOVER with SSEClusterWait 1 (two replicas): kill -> first 200: %.1f s; kill -> every server 200: %.1f s; '
    . 'refused (503) meanwhile: %d', $wfirst // -1, $wall // -1, $wstatus{failover}{503} // 0;
# --- a wrong password for the sentinels: said once, that server refuses ------
{
    open my $f, '>', "$work/wrong.pass" or die $!;
    print $f "not-$ENV{SENTINEL_PASSWORD}\n";
    close $f;
    open $f, '>', "$work/s3/extra-spw.conf" or die $!;
    print $f "SSEClusterSentinelPasswordFile $work/wrong.pass\n";
    close $f;
}
my $n436 = log_count(qr/SSE00436:/);
system("$httpd -f $work/s3/httpd.conf $root -k graceful");
ok wait_until(15, sub { log_count(qr/SSE00436: the sentinel at 127\.0\.0\.1:\d+ refused the password from SSEClusterSentinelPasswordFile: WRONGPASS/) > $n436 }),
   'a wrong SSEClusterSentinelPasswordFile: the sentinel refused it (SSE00436)';
sleep 2.5;
is log_count(qr/SSE00436:/), $n436 + 1, '... said once, though the relay asks every second';
is publish($ports[2], 'x1')->[0], 503, 'that server refuses publishes (it cannot learn where the master is)';
is publish($ports[0], 'x2')->[0], 200, 'the others publish';
unlink "$work/s3/extra-spw.conf";
system("$httpd -f $work/s3/httpd.conf $root -k graceful");
ok wait_until(15, sub { publish($ports[2], 'x3')->[0] == 200 }), 'the right password back: it publishes again';

diag sprintf 'FAILOVER whole test: %.1f s', time - $t0;
done_testing;
