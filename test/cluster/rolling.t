# A rolling upgrade of the three servers (test/cluster/run.sh starts them:
# event, worker, prefork, one Redis): while events are published round
# robin through all three, each server in turn gets a new build of the
# module (a copy whose build id differs: test/t/lib/SSEBuild.pm) and a
# graceful restart, so for a while old and new builds share Redis.  Every
# event answered 200 must reach every subscriber once and in order (a
# subscriber whose stream a restart closes comes back with Last-Event-ID,
# as EventSource does), and each server must end on a relay of the new
# build.  Then the formats: keys in Redis of a format this build does not
# know are not written to (503, one log line), and a message of an unknown
# format is not delivered (one log line per server).
# By hand, from a real older build: CLUSTER_MODULE=old/mod_sse.so
# ROLLING_NEW=$PWD/mod_sse.so CLUSTER_TESTS=rolling.t test/cluster/run.sh
use strict;
use warnings FATAL => 'all';
use Test::More;
use IO::Socket::INET ();
use IO::Select ();
use HTTP::Tiny ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use File::Copy ();
use FindBin;
use lib "$FindBin::Bin/lib";
use ClusterPump;
use SSEBuild;

my @ports = split ' ', $ENV{CLUSTER_PORTS} || '';
my $redis_port = $ENV{REDIS_PORT};
my $work = $ENV{CLUSTER_WORK};
my $prefix = $ENV{CLUSTER_PREFIX};
plan skip_all => 'run by test/cluster/run.sh' unless @ports == 3 && $redis_port && $prefix;
$SIG{PIPE} = 'IGNORE';
my $json = JSON::PP->new->utf8;
my $http = HTTP::Tiny->new(timeout => 10);
my $root = $> == 0 ? '-DRUN_AS_ROOT' : '';
my $httpd = $ENV{CLUSTER_HTTPD} || '/usr/sbin/apache2';
my $chan = "roll$$";
my $per_server = 10;

sub log_lines {
    my($i, $re) = @_;
    open my $fh, '<', "$work/s$i/error.log" or return ();
    return grep { /$re/ } <$fh>;
}

sub publish {
    my($port, $ch, $data) = @_;
    my $res = $http->post_form("http://127.0.0.1:$port/pub?channel=$ch", { data => $data });
    my $j = $res->{status} == 200 ? eval { $json->decode($res->{content}) } : undef;
    return ($res->{status}, $j);
}

# --- streams that come back with Last-Event-ID when a restart ends them ---
sub open_stream {
    my $st = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $st->{port},
                                  Proto => 'tcp', Timeout => 5) or return 0;
    binmode $s;
    my $req = "GET /stream?channel=$chan HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    $req .= "Last-Event-ID: $st->{last}\r\n" if defined $st->{last};
    syswrite $s, "$req\r\n";
    @$st{qw(sock buf head eof)} = ($s, '', undef, 0);
    return 1;
}

sub read_stream {
    my $st = shift;
    my $n = sysread $st->{sock}, $st->{buf}, 65536, length $st->{buf};
    if (!$n) {
        close $st->{sock};
        $st->{reconnects}++;
        $st->{eof} = 1;
        return;
    }
    if (!defined $st->{head} && (my $i = index $st->{buf}, "\r\n\r\n") >= 0) {
        $st->{head} = substr $st->{buf}, 0, $i + 4, '';
        $st->{lost}++ if $st->{head} =~ /SSE-History-Lost/i;
    }
    return unless defined $st->{head};
    while ((my $i = index $st->{buf}, "\n\n") >= 0) {
        my $blk = substr $st->{buf}, 0, $i + 2, '';
        $st->{lost}++ if $blk =~ /^: history lost/;
        next unless $blk =~ /^id: (.*)$/m;
        push @{ $st->{ids} }, $1;
        $st->{last} = $1;
    }
}

# Read every stream for $secs, or until $done->(); reopen the ended ones.
sub run_streams {
    my($streams, $secs, $done) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        return 1 if $done && $done->();
        for my $st (grep { $_->{eof} } @$streams) {
            open_stream($st) or sleep 0.05;
        }
        my $sel = IO::Select->new(map { $_->{sock} } grep { !$_->{eof} } @$streams);
        my %by = map { fileno($_->{sock}) => $_ } grep { !$_->{eof} } @$streams;
        read_stream($by{ fileno $_ }) for $sel->can_read(0.1);
    }
    return $done ? $done->() : 1;
}

# --- 1. subscribers on every server, a publisher through all three --------
my @streams = map { my $p = $_; map { { port => $p, ids => [], reconnects => 0 } } 1 .. $per_server } @ports;
open_stream($_) or BAIL_OUT("cannot connect to $_->{port}") for @streams;
ok run_streams(\@streams, 10, sub { !grep { !defined $_->{head} } @streams }),
   scalar(@streams) . " streams open on the three servers";
ok wait_until(10, sub {
        my $r = $http->get("http://127.0.0.1:$ports[0]/pub");
        my $j = $r->{status} == 200 ? eval { $json->decode($r->{content}) } : undef;
        my($c) = $j ? grep { $_->{channel} eq $chan } @{ $j->{channels} } : ();
        $c && $c->{subscribers} == @streams }),
   'all of them counted across the cluster';

my $answers = "$work/rolling-answers.txt";
my $stop = "$work/rolling-stop";
my $pid = fork // die "fork: $!";
if (!$pid) {
    open my $out, '>', $answers or POSIX::_exit(2);
    $out->autoflush(1);
    my $k = 0;
    until (-e $stop) {
        my $port = $ports[$k % 3];
        my($status, $j) = publish($port, $chan, "e$k");
        print $out "$status " . ($j ? $j->{id} : '-') . " $port\n";
        $k++;
        sleep 0.01;
    }
    POSIX::_exit(0);
}
END { kill 'TERM', $pid if $pid }      # the publisher ends with the test, a die too
sub answered { open my $fh, '<', $answers or return (); return map { [split ' '] } <$fh> }

# --- 2. one server at a time: a new build and a graceful restart ----------
run_streams(\@streams, 1.5);
my %new_of;
for my $i (1 .. 3) {
    my $so = "$work/s$i/mod_sse.so";
    my $old = build_of($so);
    my $new;
    if ($ENV{ROLLING_NEW}) {
        # a real other build (run.sh started the servers on CLUSTER_MODULE)
        File::Copy::copy($ENV{ROLLING_NEW}, "$so.new") or die "copy: $!";
        rename "$so.new", $so or die "rename: $!";
        $new = build_of($so);
    }
    else {
        $new = new_build($so);
    }
    $new_of{$i} = $new;
    my $before = () = log_lines($i, qr/SSE00404/);
    ok system("$httpd -f $work/s$i/httpd.conf $root -k graceful >/dev/null 2>&1") == 0,
       "server $i: build $new instead of $old, graceful restart";
    my $up = run_streams(\@streams, 20, sub {
        scalar(log_lines($i, qr/SSE00211: .*mod_sse-build $new, was mod_sse-build $old/))
            && scalar(() = log_lines($i, qr/SSE00404/)) > $before });
    ok $up, "server $i: its relay was replaced by the new build's and it is on Redis again";
    # the old and the new builds share Redis for a while
    run_streams(\@streams, 1.5);
}

open my $sf, '>', $stop or die; close $sf;
waitpid $pid, 0;
my @a = answered();
my @ok = map { $_->[1] } grep { $_->[0] == 200 } @a;
my $refused = grep { $_->[0] != 200 } @a;
ok @ok >= 100, scalar(@ok) . " of " . scalar(@a) . " publishes answered 200 during the upgrade ($refused refused)";

# --- 3. every subscriber has every event answered 200, once, in order -----
my %want = map { $_ => 1 } @ok;
run_streams(\@streams, 20, sub {
    for my $st (@streams) {
        my %got = map { $_ => 1 } @{ $st->{ids} };
        return 0 if grep { !$got{$_} } @ok;
    }
    return 1;
});
my($missing, $dup, $disorder, $lost) = (0, 0, 0, 0);
for my $st (@streams) {
    my @mine = grep { $want{$_} } @{ $st->{ids} };
    my %n;
    $n{$_}++ for @mine;
    my @miss = grep { !$n{$_} } @ok;
    diag "stream on $st->{port} (reconnects $st->{reconnects}, lost "
        . ($st->{lost} // 0) . ") misses @miss" if @miss;
    $missing += @miss;
    $dup += grep { $_ > 1 } values %n;
    $disorder++ if join(',', @mine) ne join(',', sort { $a <=> $b } @mine);
    $lost += $st->{lost} // 0;
}
my $reconnects = 0;
$reconnects += $_->{reconnects} for @streams;
is $missing, 0, "every subscriber got every event answered 200 ($reconnects reconnects after the restarts)";
is $dup, 0, '... none twice';
is $disorder, 0, '... in order';
is $lost, 0, '... and no resume was told the history was lost';
for my $i (1 .. 3) {
    my($line) = reverse log_lines($i, qr/SSE00207: relay \d+/);
    like $line // '', qr/mod_sse-build $new_of{$i}/, "server $i runs a relay of the new build";
}
print "# RELIABILITY cluster_rolling servers=3 streams=" . scalar(@streams)
    . " publishes=" . scalar(@a) . " answered_200=" . scalar(@ok) . " refused=$refused"
    . " reconnects=$reconnects missing=$missing duplicated=$dup disorder=$disorder lost=$lost\n";

# --- 4. formats this build does not know are refused, not misread ---------
sub redis { my $r = `redis-cli -p $redis_port @_`; chomp $r; $r }
is redis("GET $prefix:format"), '1', 'the keys carry their format (1)';
redis("SET $prefix:format 9");
my($st1) = publish($ports[0], $chan, 'while format 9');
my($st2) = publish($ports[0], $chan, 'again');
is "$st1 $st2", '503 503', 'keys in format 9: publishing answers 503, nothing written';
my @l = log_lines(1, qr/SSE00410: .* in format 9; this build .* speaks format 1/);
is scalar(@l), 1, 'said once in the log (SSE00410)';
redis("SET $prefix:format 1");
my($st3, $j3) = publish($ports[0], $chan, 'format 1 again');
is $st3, 200, 'the format put back: publishing works again';

my $fake = "9999999 v9\nbogus-v9\nlocalhost/$chan\ndata: from a newer format\n\n";
system('redis-cli', '-p', $redis_port, 'PUBLISH', "$prefix:ev", $fake) == 0 or die;
system('redis-cli', '-p', $redis_port, 'PUBLISH', "$prefix:ev", $fake) == 0 or die;
my(undef, $after) = publish($ports[1], $chan, 'after the fake');
run_streams(\@streams, 10, sub { !grep { ($_->{last} // '') ne $after->{id} } @streams });
ok !grep({ grep { $_ eq 'bogus-v9' } @{ $_->{ids} } } @streams),
   'a message of format 9 reached no subscriber; the next event reached all';
is join(',', map { scalar log_lines($_, qr/SSE00411: a message of format 9/) } 1 .. 3), '1,1,1',
   'each server said so once (SSE00411)';

done_testing();
