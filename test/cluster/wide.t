# Cluster-wide answers: GET and DELETE with a channel on one server's
# publish location answer for every live server (test/cluster/run.sh
# starts the three: event, worker, prefork, one Redis).  Streams on all
# three; a GET on server 1 counts and lists all of them, server by server;
# with server 3's relay stopped, the GET still answers within about a
# second, says server 3's list is missing and why, and counts its streams
# from Redis; a DELETE on server 2 closes the streams of all three (each
# sees its connection end) and says how many each closed; a new stream
# afterwards works.
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
my $work = $ENV{CLUSTER_WORK};
plan skip_all => 'run by test/cluster/run.sh'
    unless @ports == 3 && $ENV{REDIS_PORT} && $ENV{CLUSTER_PREFIX};
$SIG{PIPE} = 'IGNORE';
my $json = JSON::PP->new->utf8->canonical;
my $http = HTTP::Tiny->new(timeout => 10);



sub pump { pump_with(\&stream_read, @_) }

sub admin {
    my($method, $port, $chan) = @_;
    my $t0 = time;
    my $res = $http->request($method, "http://127.0.0.1:$port/pub?channel=$chan");
    my $j = $res->{status} == 200 ? eval { $json->decode($res->{content}) } : undef;
    return ($j, time - $t0, $res);
}

sub publish {
    my($port, $chan, $data) = @_;
    my $res = $http->post_form("http://127.0.0.1:$port/pub?channel=$chan", { data => $data });
    return $res->{status} == 200 ? eval { $json->decode($res->{content}) } : undef;
}

# the relay of server $i (1..3): the last one its log says started
sub relay_pid {
    my $i = shift;
    open my $fh, '<', "$work/s$i/error.log" or return;
    my @p = map { /SSE00207: relay (\d+) listening/ ? $1 : () } <$fh>;
    @p = grep { kill 0, $_ } @p;
    return $p[-1];
}

# the servers of a cluster-wide answer, by their streams (or closed) count
sub by_count {
    my($j, $field) = @_;
    return join ',', sort map { $_->{$field} // 'null' } @{ $j->{servers} || [] };
}

ok wait_until(15, sub { !grep { !publish($_, 'warmup', 'x') } @ports }),
   'the three servers publish through Redis';

# --- streams: 2 on server 1, 1 on server 2, 3 on server 3 --------------------
my $c = "wide$$";
my @per = (2, 1, 3);
my @s = map { my $i = $_; map { stream_open($ports[$i], "/stream?channel=$c") } 1 .. $per[$i] } 0 .. 2;
ok pump(\@s, 10, sub { !grep { !$_->{ok} } @s }), '6 streams open over the three servers';

# the other servers' counts reach Redis within a second
my($g, $secs);
ok wait_until(8, sub { ($g) = admin('GET', $ports[0], $c);
                       $g && $g->{subscribers} == 6 && $g->{complete} }),
   'GET with the channel on server 1 counts 6 subscribers, every server\'s list in'
    or diag $json->encode($g // {});
is ref $g->{connections} eq 'ARRAY' ? scalar @{ $g->{connections} } : -1, 6,
   'and lists 6 connections';
is scalar @{ $g->{servers} || [] }, 3, 'three servers in "servers"';
is by_count($g, 'subscribers'), '1,2,3', 'their subscribers: 2 (server 1), 1, 3';
my($here) = grep { $_->{here} } @{ $g->{servers} || [] };
is $here && $here->{subscribers}, 2, 'the one marked "here" is server 1 with 2';
my %sid = map { $_->{server} => $_->{subscribers} } @{ $g->{servers} || [] };
my %listed;
$listed{ $_->{server} // '?' }++ for @{ $g->{connections} || [] };
is_deeply \%listed, \%sid, 'each connection names its server; each server lists as many as it counts';
ok !grep({ !defined $_->{remote} || !defined $_->{since} || !$_->{pid} } @{ $g->{connections} }),
   'each connection still has remote, since and pid';
ok !grep({ $_->{listed} != $_->{subscribers} || exists $_->{reason} } @{ $g->{servers} }),
   'no server is missing a list, no reason given';

# the same from the prefork server
my($g3) = admin('GET', $ports[2], $c);
is $g3 && $g3->{subscribers}, 6, 'GET on server 3 (prefork) counts 6 too';
ok $g3 && $g3->{complete}, 'and is complete';

# --- server 3's relay stopped: its part is missing, and the GET says why ----
# what Redis holds (the GET without a channel adds it) has server 3's 3 too
ok wait_until(5, sub { my $r = $http->get("http://127.0.0.1:$ports[0]/pub");
                       my $j = $r->{status} == 200 && eval { $json->decode($r->{content}) };
                       $j && grep { $_->{channel} eq $c && $_->{subscribers} == 6 }
                                  @{ $j->{channels} } }),
   'GET without a channel counts the 6 too (Redis has every server\'s count)';
my $relay3 = relay_pid(3);
ok $relay3, 'server 3\'s relay found (pid ' . ($relay3 // '?') . ')';
SKIP: {
    skip 'no relay pid', 5 unless $relay3;
    kill 'STOP', $relay3;
    my($gs, $t) = admin('GET', $ports[0], $c);
    kill 'CONT', $relay3;
    ok $gs, sprintf('with server 3\'s relay stopped GET still answers 200 (%.2f s)', $t);
    ok $t < 2.5, 'within 2.5 s';
    ok $gs && !$gs->{complete}, 'not complete';
    my($miss) = grep { $_->{reason} } @{ $gs->{servers} || [] };
    ok $miss && $miss->{subscribers} == 3 && $miss->{listed} == 0
       && $miss->{reason} =~ /no answer within 1 s/,
       'server 3 is listed with 3 subscribers from Redis, 0 listed, and the reason'
        or diag $json->encode($gs // {});
    is $gs && scalar @{ $gs->{connections} }, 3, 'the connections of servers 1 and 2 are there';
}
ok wait_until(5, sub { my($x) = admin('GET', $ports[0], $c); $x && $x->{complete} }),
   'once it runs again, GET is complete again';

# --- DELETE on server 2 closes the streams of all three ----------------------
my($d) = admin('DELETE', $ports[1], $c);
is $d && $d->{closed}, 6, 'DELETE on server 2: closed 6'
    or diag $json->encode($d // {});
ok $d && $d->{complete}, 'every server answered';
is by_count($d, 'closed'), '1,2,3', 'closed 1 here, 2 and 3 on the others';
my($dh) = grep { $_->{here} } @{ $d->{servers} || [] };
is $dh && $dh->{closed}, 1, 'the one marked "here" is server 2 with 1';
ok pump(\@s, 5, sub { !grep { !$_->{eof} } @s }), 'each of the 6 streams sees its connection end';
close $_->{sock} for @s;

# --- afterwards a new stream works -------------------------------------------
my @n = map { stream_open($_, "/stream?channel=$c") } @ports;
ok pump(\@n, 5, sub { !grep { !$_->{ok} } @n }), 'a new stream on each server opens';
my $p = publish($ports[1], $c, 'after');
ok $p, 'a publish on the channel';
ok pump(\@n, 5, sub { !grep { !@{ $_->{events} } } @n }), 'reaches the three new streams';
is join(',', map { map { $_->[1] } @{ $_->{events} } } @n), 'after,after,after', 'once each';
ok wait_until(5, sub { my($x) = admin('GET', $ports[0], $c);
                       $x && $x->{subscribers} == 3 && @{ $x->{connections} } == 3 }),
   'GET counts and lists the 3 new streams';
close $_->{sock} for @n;

# --- a question of a format this build does not know is not taken ----------
{
    my $f = "fmt$$";
    my @fs = map { stream_open($_, "/stream?channel=$f") } @ports;
    ok pump(\@fs, 5, sub { !grep { !$_->{ok} } @fs }), 'a stream on each server';
    my $fake = "v9 close 1 00000000000000000000000000000000\nlocalhost/$f";
    for (1, 2) {
        system('redis-cli', '-p', $ENV{REDIS_PORT}, 'PUBLISH', "$ENV{CLUSTER_PREFIX}:ctl", $fake) == 0
            or die 'redis-cli';
    }
    pump(\@fs, 1, sub { 0 });
    ok !grep({ $_->{eof} } @fs), 'two "close" questions of format 9 close nothing';
    my $logged = sub {
        my $i = shift;
        open my $fh, '<', "$work/s$i/error.log" or return -1;
        return scalar grep { /SSE00420: a control message of format 9/ } <$fh>;
    };
    is join(',', map { $logged->($_) } 1 .. 3), '1,1,1', 'each server said so once (SSE00420)';
    my($x) = admin('GET', $ports[2], $f);
    is $x && $x->{subscribers}, 3, 'and still counts the 3 streams';
    close $_->{sock} for @fs;
}

# --- a channel nobody is on: the answers keep their fields -------------------
my($e) = admin('GET', $ports[0], "none$$");
is $e && $e->{subscribers}, 0, 'GET on an unused channel: 0';
is_deeply $e && $e->{connections}, [], 'no connections';
my($de) = admin('DELETE', $ports[0], "none$$");
is $de && $de->{closed}, 0, 'DELETE on an unused channel: closed 0';

done_testing;
