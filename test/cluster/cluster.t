# Several servers, one set of channels (SSECluster): three httpd (event,
# worker, prefork) and one redis-server, started by test/cluster/run.sh.
use strict;
use warnings FATAL => 'all';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use FindBin;
use lib "$FindBin::Bin/lib";
use ClusterPump;

my @ports = split ' ', $ENV{CLUSTER_PORTS} || '';
my $redis_port = $ENV{REDIS_PORT};
my $work = $ENV{CLUSTER_WORK};
my $prefix = $ENV{CLUSTER_PREFIX};
plan skip_all => 'run by test/cluster/run.sh' unless @ports == 3 && $redis_port && $prefix;
$SIG{PIPE} = 'IGNORE';
my $json = JSON::PP->new->utf8;
my $http = HTTP::Tiny->new(timeout => 10);



# read every stream until $done->() or timeout
sub pump { pump_with(\&stream_read, @_) }

sub publish {
    my($port, $chan, $data, %o) = @_;
    my $path = delete $o{_path} // '/pub';
    my $res = $http->post_form("http://127.0.0.1:$port$path?channel=$chan",
                               { data => $data, %o });
    my $j = $res->{status} == 200 ? eval { $json->decode($res->{content}) } : undef;
    return wantarray ? ($res, $j) : $j;
}

# the streams on $chan across the cluster, as server $port's publish
# location $path (default /pub, namespace localhost) counts them
sub total {
    my($port, $chan, $path) = @_;
    my $res = $http->get("http://127.0.0.1:$port" . ($path // '/pub'));
    return -1 unless $res->{status} == 200;
    my $j = eval { $json->decode($res->{content}) } or return -1;
    my($c) = grep { $_->{channel} eq $chan } @{ $j->{channels} };
    return $c ? $c->{subscribers} : 0;
}


# --- 1. all three up and connected to Redis ---------------------------------
ok wait_until(15, sub { !grep { my $j = publish($_, 'warmup', 'x'); !$j } @ports }),
   'the three servers publish through Redis';

# --- 2. cross-server delivery and counts -------------------------------------
my $c = "x$$";
my @s = map { stream_open($_, "/stream?channel=$c") } @ports;
ok pump(\@s, 5, sub { !grep { !$_->{ok} } @s }),
   'a stream open on each server';
ok wait_until(5, sub { !grep { total($_, $c) != 3 } @ports }),
   'every server counts 3 streams on the channel (its own and the others\')';
my $j = publish($ports[1], $c, 'hello');
is $j && $j->{subscribers}, 3, 'a publish on server 2 reports 3 subscribers';
pump(\@s, 5, sub { !grep { @{ $_->{events} } < 1 } @s });
is join(',', map { join '/', map { "@$_" } @{ $_->{events} } } @s),
   join(',', ("$j->{id} hello") x 3), 'each server\'s stream gets it once, same id';
close $_->{sock} for @s;

# --- 3. two namespaces on the same servers: /stream and /pub are in
#        localhost (the ServerName), /other/stream and /other/pub in other;
#        channel X of one is not channel X of the other, in the brokers,
#        in the census, in Redis' history and in its pub/sub ---------------
my $nc = "ns$$";
my $os = stream_open($ports[0], "/other/stream?channel=$nc");
my $ls = stream_open($ports[1], "/stream?channel=$nc");
ok pump([$os, $ls], 5, sub { $os->{ok} && $ls->{ok} }),
   "a stream on other/$nc (server 1) and one on localhost/$nc (server 2)";
ok wait_until(5, sub { !grep { total($_, $nc) != 1 || total($_, $nc, '/other/pub') != 1 }
                            @ports }),
   'every server counts 1 stream on each of the two channels, not 2 on one';
my $l1 = publish($ports[2], $nc, 'l1');
is $l1 && $l1->{subscribers}, 1, 'a publish on server 3\'s /pub reports 1 subscriber';
pump([$os, $ls], 5, sub { @{ $ls->{events} } >= 1 });
pump([$os, $ls], 0.5, sub { 0 });
is join('/', map { "@$_" } @{ $ls->{events} }), "$l1->{id} l1",
   'the /stream stream gets it once';
is scalar @{ $os->{events} }, 0, 'the /other/stream stream gets nothing within 0.5 s';
my $o1 = publish($ports[1], $nc, 'o1', _path => '/other/pub');
is $o1 && $o1->{subscribers}, 1, 'a publish on server 2\'s /other/pub reports 1 subscriber';
pump([$os, $ls], 5, sub { @{ $os->{events} } >= 1 });
pump([$os, $ls], 0.5, sub { 0 });
is join('/', map { "@$_" } @{ $os->{events} }), "$o1->{id} o1",
   'the /other/stream stream gets it once';
is join('/', map { $_->[1] } @{ $ls->{events} }), 'l1',
   'the /stream stream gets nothing more within 0.5 s';
# interleaved events on both, for the history checks below
my @more = map { scalar publish($ports[$_->[0]], $nc, $_->[1], @$_[2 .. $#$_]) }
    [0, 'l2'], [2, 'o2', _path => '/other/pub'], [1, 'l3'], [0, 'o3', _path => '/other/pub'];
ok @more == 4 && !grep({ !$_ } @more),
   'four more events published, alternating between the namespaces';
close $_->{sock} for $os, $ls;

# the publish script goes by its SHA1 (EVALSHA); a Redis that lacks it
# (SCRIPT FLUSH, as after a restart) gets it whole, with nothing said
like `redis-cli -p $redis_port info commandstats`, qr/^cmdstat_evalsha:calls=[1-9]/m,
   'publishes send the script by its SHA1 (EVALSHA)';
is `redis-cli -p $redis_port script flush`, "OK\n", 'SCRIPT FLUSH';
my @flushed = map { scalar publish($ports[$_], "flush$nc", "f$_") } 0 .. 2;
ok !grep({ !$_ } @flushed), 'each server publishes after it (the whole script sent again)';
my $said = grep { /SSE00402|NOSCRIPT/ } map { open my $fh, '<', "$ENV{CLUSTER_WORK}/s$_/error.log" or die $!; <$fh> } 1 .. 3;
is $said, 0, 'no server logged an error for it';

# Redis: the history streams are P:h:KEY, KEY = namespace/name (sse_cluster.c)
my @hkeys = sort split /\n/, `redis-cli -p $redis_port --scan --pattern '$prefix:h:*'`;
my %hk = map { $_ => 1 } @hkeys;
ok $hk{"$prefix:h:localhost/$nc"} && $hk{"$prefix:h:other/$nc"},
   "Redis holds $prefix:h:localhost/$nc and $prefix:h:other/$nc"
    or diag "history keys: @hkeys";
my @bare = grep { substr($_, length "$prefix:h:") !~ m{^[^/]+/.} } @hkeys;
ok @hkeys && !@bare, 'no history key is a bare channel name (' . scalar(@hkeys) . ' keys)'
    or diag "bare: @bare";
my $hist = sub {
    my $key = shift;
    my @f = split /\n/, `redis-cli -p $redis_port --no-raw XRANGE '$key' - +`;
    return join '/', map { /data: (\w+)/ ? $1 : () } @f;
};
is $hist->("$prefix:h:localhost/$nc") . ' | ' . $hist->("$prefix:h:other/$nc"),
   'l1/l2/l3 | o1/o2/o3', 'each history stream holds its own namespace\'s events only';

# a resume on yet another server replays the channel of its own namespace
my $ro = stream_open($ports[2], "/other/stream?channel=$nc", 'Last-Event-ID' => $o1->{id});
my $rl = stream_open($ports[0], "/stream?channel=$nc", 'Last-Event-ID' => $l1->{id});
pump([$ro, $rl], 5, sub { @{ $ro->{events} } >= 2 && @{ $rl->{events} } >= 2 });
pump([$ro, $rl], 0.5, sub { 0 });
is join('/', map { "@$_" } @{ $ro->{events} }), "$more[1]{id} o2/$more[3]{id} o3",
   'a resume on server 3\'s /other/stream from o1 gets o2 and o3 only';
unlike $ro->{head} // '', qr/SSE-History-Lost/i, 'and is not told history was lost';
is join('/', map { "@$_" } @{ $rl->{events} }), "$more[0]{id} l2/$more[2]{id} l3",
   'a resume on server 1\'s /stream from l1 gets l2 and l3 only';
close $_->{sock} for $ro, $rl;

# the longest key (a 255-byte namespace, a 128-byte name): its history is
# kept and resumed whole on another server, apart from a channel whose key
# is the same but for its last byte
{
    my $long = 'L' . ('x' x 126) . 'a';
    my $near = 'L' . ('x' x 126) . 'b';
    my $p1 = publish($ports[0], $long, 'long1', _path => '/long/pub');
    my $p2 = publish($ports[1], $long, 'long2', _path => '/long/pub');
    my $p3 = publish($ports[2], $near, 'near1', _path => '/long/pub');
    ok $p1 && $p2 && $p3, 'three publishes on 128-byte names in a 255-byte namespace';
    my $rs = stream_open($ports[2], "/long/stream?channel=$long",
                         'Last-Event-ID' => $p1 ? $p1->{id} : 0);
    pump([$rs], 5, sub { @{ $rs->{events} } >= 1 });
    pump([$rs], 0.5, sub { 0 });
    is join('/', map { "@$_" } @{ $rs->{events} }), ($p2 ? $p2->{id} : '?') . ' long2',
       'a resume on another server gets exactly the next event of that long key';
    unlike $rs->{head} // '', qr/SSE-History-Lost/i, 'and no history lost';
    close $rs->{sock};
}

# --- 4. 300 subscribers over 3 servers, 5,000 events round-robin, one
#        subscriber moved to another server mid-run with Last-Event-ID ----
my $r = "rr$$";
my @subs;
for my $i (0 .. 299) {
    push @subs, stream_open($ports[$i % 3], "/stream?channel=$r");
}
ok pump(\@subs, 15, sub { !grep { !defined $_->{head} } @subs }), '300 streams open';
ok wait_until(5, sub { total($ports[0], $r) == 300 }), 'counted 300 across the servers';
my $N = 5000;
my $pid = fork // die "fork: $!";
if (!$pid) {
    $http = HTTP::Tiny->new(timeout => 10);   # not the parent's connection
    my $bad = 0;
    for my $n (1 .. $N) {
        my $res;
        for (1 .. 50) {     # a 503 (Redis gap) is retried, never lost
            $res = publish($ports[$n % 3], $r, "e$n");
            last if $res;
            sleep 0.1;
        }
        $bad++ unless $res;
    }
    POSIX::_exit($bad ? 1 : 0);
}
my $moved = $subs[0];
my $moved_done = 0;
my $need_move = sub { !$moved_done && @{ $moved->{events} } >= $N / 2 };
my $all_done = sub { !grep { @{ $_->{events} } < $N } @subs };
my $deadline = time + 180;
while (!$all_done->() && time < $deadline) {
    pump(\@subs, $deadline - time, sub { $need_move->() || $all_done->() });
    if ($need_move->()) {
        my $last = $moved->{events}[-1][0];
        close $moved->{sock};
        my $again = stream_open($ports[2], "/stream?channel=$r", 'Last-Event-ID' => $last);
        $again->{events} = $moved->{events};   # one subscriber, two connections
        $subs[0] = $moved = $again;
        $moved_done = 1;
    }
}
waitpid $pid, 0;
is $? >> 8, 0, "the publisher's $N publishes all succeeded";
ok $moved_done, 'one subscriber moved from server 1 to server 3 mid-run';
my @bad;
for my $i (0 .. $#subs) {
    my @d = map { $_->[1] } @{ $subs[$i]{events} };
    my $want = join ',', map { "e$_" } 1 .. $N;
    push @bad, "subscriber $i: " . scalar(@d) . " events" unless join(',', @d) eq $want;
}
ok !@bad, "all 300 subscribers got each of the $N events once, in order"
    or diag join "\n", @bad[0 .. ($#bad < 5 ? $#bad : 4)];
close $_->{sock} for @subs;

# --- 5. Redis restarts in the middle: 503 while it is away, then back ---------
my $q = "rd$$";
my @w = map { stream_open($_, "/stream?channel=$q") } @ports;
pump(\@w, 5, sub { !grep { !defined $_->{head} } @w });
my $j0 = publish($ports[0], $q, 'before');
my($res1, $j1) = publish($ports[0], $q, 'before');
ok $j0 && $j1, 'published before the Redis restart';
system('redis-cli', '-p', $redis_port, 'shutdown', 'nosave') ;
my $down;
ok wait_until(5, sub { ($down) = publish($ports[1], $q, 'during');
                       $down->{status} == 503 && ($down->{headers}{'retry-after'} // '') ne '' }),
   'Redis down: publish answers 503 with Retry-After';
like $down->{content}, qr/^not published: Redis is not reachable \(see the error log\); try again$/m,
   '... saying why (the relay refused it: not "the relay did not answer")';
is scalar(grep { /SSE00005/ } map { open my $fh, '<', "$ENV{CLUSTER_WORK}/s$_/error.log" or die $!; <$fh> } 1 .. 3), 0,
   '... and no server logged SSE00005 (the relay did answer)';
system('redis-server', '--port', $redis_port, '--bind', '127.0.0.1', '--save', '',
       '--appendonly', 'no', '--daemonize', 'yes', '--pidfile', "$work/redis.pid",
       '--logfile', "$work/redis.log", '--dir', $work) == 0 or die 'redis restart';
my $j2;
ok wait_until(15, sub { $j2 = publish($ports[2], $q, 'after') }),
   'Redis back: publishing works again';
pump(\@w, 12, sub { !grep { !grep { $_->[1] eq 'after' } @{ $_->{events} } } @w });
is join(',', map { join '/', map { $_->[1] } @{ $_->{events} } } @w),
   join(',', ('before/before/after') x 3),
   'streams stayed open through the outage and got everything published';
ok $j2 && $j2->{id} > $j1->{id}, 'ids keep rising although Redis lost its data';
my $late = stream_open($ports[0], "/stream?channel=$q", 'Last-Event-ID' => $j0->{id});
pump([$late], 5, sub { defined $late->{head} && @{ $late->{events} } });
like $late->{head} // '', qr/SSE-History-Lost: true/i,
   'a resume from before the data loss is told history was lost';
close $_->{sock} for @w, $late;

# --- 6. SSEHistory's age applies to the shared history ----------------------
my $ga = "age$$";
my $a1 = publish($ports[0], $ga, 'a', _path => '/pubage');
my $a2 = publish($ports[1], $ga, 'b', _path => '/pubage');
sleep 1.3;
my $a3 = publish($ports[2], $ga, 'c', _path => '/pubage');
ok $a1 && $a2 && $a3, 'three events on a channel published with SSEHistory 100 1';
my $back = stream_open($ports[0], "/stream?channel=$ga", 'Last-Event-ID' => $a1->{id});
pump([$back], 5, sub { defined $back->{head} && @{ $back->{events} } });
pump([$back], 0.5, sub { 0 });     # anything replayed after the first
is join('/', map { $_->[1] } @{ $back->{events} }), 'c',
   'a resume after the first event gets only the one younger than 1 s';
like $back->{head} // '', qr/SSE-History-Lost: true/i,
   'and is told that history was lost';
close $back->{sock};

# --- 7. one server killed: its streams leave the counts ---------------------
my $k = "kill$$";
my @ks = map { stream_open($_, "/stream?channel=$k") } @ports;
pump(\@ks, 5, sub { !grep { !defined $_->{head} } @ks });
ok wait_until(5, sub { total($ports[0], $k) == 3 }), '3 streams counted';
open my $fh, '<', "$work/s3/httpd.pid" or die $!;
chomp(my $ppid = <$fh>);
system("pkill -KILL -P $ppid; kill -KILL $ppid");
ok wait_until(8, sub { total($ports[0], $k) == 2 }),
   'server 3 killed: within a few seconds the others count 2';
my $jk = publish($ports[1], $k, 'survivors');
is $jk && $jk->{subscribers}, 2, 'and a publish reaches 2';
close $_->{sock} for @ks;

done_testing;
