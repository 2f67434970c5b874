# SSERestartSpread: a graceful restart does not close every stream at
# once.  With the suite's 2 s window, each stream (parked, held over TLS,
# and over TLS on the suspend host: suspended on event, held on worker and
# prefork) first gets "retry: R" with R within the window, and is closed
# about R after the restart, so the closes are spread over the window; a
# client that resumes with its Last-Event-ID gets every event published
# meanwhile.  With SSERestartSpread 0 the streams close at once, as before.
# A stop is not slowed: a private server with a 5 s window stops as fast as
# one without, also when the stop comes in the middle of a spread.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/../fault/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Spec ();
use File::Temp qw(tempdir);
use Cwd qw(abs_path);
use IO::Select ();
use IO::Socket::INET ();
use IO::Socket::SSL ();
use POSIX ();
use Time::HiRes qw(time sleep);
use SSETest;
use SSEFault;

plan tests => 20;

my $WINDOW = 2;         # SSERestartSpread in t/conf/extra.conf.in
my $defines = Apache::Test::vars('defines') // '';
my($mpm) = $defines =~ /\bMPM_(EVENT|WORKER|PREFORK)\b/;
$mpm = lc($mpm // 'EVENT');
my $cfg = Apache::Test::config();
my %port = (tls => $cfg->{vhosts}{sse_tls}{port},
            susp => $cfg->{vhosts}{sse_tls_suspend}{port});
my $override = File::Spec->catfile(Apache::Test::vars('t_logs'),
                                   'spread-override.conf');
END { unlink $override if $override }

sub tls_stream {
    my($kind, $path, @headers) = @_;
    my $sock = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $port{$kind}, SSL_verify_mode => 0,
        SSL_alpn_protocols => ['http/1.1'], Timeout => 10)
        or return undef;
    my $req = "GET $path HTTP/1.1\r\nHost: localhost:$port{$kind}\r\n";
    while (my($k, $v) = splice @headers, 0, 2) { $req .= "$k: $v\r\n" }
    print $sock "$req\r\n";
    my $s = bless { sock => $sock, buf => '', eof => 0, path => $path,
                    method => 'GET', kind => $kind }, 'SSETest::Stream';
    return $s->open_ok(10) ? $s : undef;
}

# One stream of a kind: plain (parked), tls (held), susp (suspended on
# event, held elsewhere); $last: resume after it.
sub stream_of {
    my($kind, $path, $last) = @_;
    my @h = defined $last ? ('Last-Event-ID' => $last) : ();
    if ($kind eq 'plain') {
        my $s = open_stream($path, headers => \@h) or return undef;
        $s->{kind} = 'plain';
        return ($s->{status} // 0) == 200 ? $s : undef;
    }
    return tls_stream($kind, $path, @h);
}

sub graceful { kill 'USR1', parent_pid() }

# Wait until the children of before the restart are gone (so that new
# streams land on children with the new configuration).
sub wait_new_generation {
    my($old, $secs) = @_;
    my $gone = wait_until($secs, sub { !grep { alive($_) } @$old });
    wait_until(10, sub { Apache::TestRequest::GET('/index.html')->code == 200 });
    return $gone;
}

# Read every stream until each has ended or $secs passed: per stream the
# retry: it got (value and when), its events' data and last id, when it
# ended (seconds after $t0).
sub watch {
    my($all, $t0, $secs) = @_;
    while (time - $t0 < $secs) {
        my @live = grep { !$_->{eof} } @$all or last;
        my @ready = grep { $_->{sock}->can('pending') && $_->{sock}->pending } @live;
        unless (@ready) {
            my %by = map { fileno($_->{sock}) => $_ } @live;
            @ready = map { $by{fileno $_} }
                     IO::Select->new(map { $_->{sock} } @live)->can_read(0.02);
        }
        for my $s (@ready) {
            $s->fill;
            while (defined(my $b = $s->take_block)) {
                if ($b =~ /^retry: (\d+)$/m && $b !~ /^data:/m) {
                    $s->{retry} //= $1;
                    $s->{retry_at} //= time - $t0;
                }
                elsif (my($id) = $b =~ /^id: (.*)$/m) {
                    my($d) = $b =~ /^data: (.*)$/m;
                    push @{ $s->{got} }, $d;
                    $s->{last} = $id;
                }
            }
            $s->{eof_at} = time - $t0 if $s->{eof} && !defined $s->{eof_at};
        }
    }
}

sub open_set {
    my($path) = @_;
    my @s;
    push @s, stream_of('plain', $path) for 1 .. 10;
    push @s, stream_of('tls', $path) for 1 .. 2;
    push @s, stream_of('susp', $path) for 1 .. 2;
    return grep { defined } @s;
}

wait_until(5, sub { relay_pid() });
my $relay = relay_pid();
my $mark = log_mark();

# 1. The spread: 14 streams of three kinds, events published throughout.
my $chan = uniq_chan('spread');
my $path = "/stream?channel=$chan";
my @s = open_set($path);
is scalar(@s), 14, "14 streams open ($mpm: 10 plain, 2 TLS held, 2 on the suspend host)";
my(undef, $j0) = publish($chan, data => 'start');
watch(\@s, time, 0.5);
is scalar(grep { (($_->{got} // [])->[0] // '') eq 'start' } @s), 14,
   'each got the first event';

# the publisher: one event every 50 ms for 3 windows; "code id data" lines
my $pubfile = File::Spec->catfile(Apache::Test::vars('t_logs'), "spread-pub.$$");
my $pub = fork // die "fork: $!";
if (!$pub) {
    Apache::TestRequest::user_agent(reset => 1, timeout => 10);
    open my $out, '>', $pubfile or POSIX::_exit(1);
    $out->autoflush(1);
    my $end = time + 3 * $WINDOW + 1;
    my $i = 0;
    while (time < $end) {
        my($res, $j) = publish($chan, data => 'seq ' . ++$i);
        printf $out "%d %s seq %d\n", $res->code,
               ref $j eq 'HASH' ? $j->{id} // '-' : '-', $i;
        sleep 0.05;
    }
    POSIX::_exit(0);
}
sleep 0.3;
my @old = children_pids();
my $t0 = time;
graceful();
watch(\@s, $t0, $WINDOW + 3);
my @r = grep { defined $_->{retry} && $_->{retry} >= 0 && $_->{retry} <= 1000 * $WINDOW
               && defined $_->{eof_at} && $_->{retry_at} <= $_->{eof_at} } @s;
is scalar(@r), 14, "every stream got retry: R with R within 0..${WINDOW}000 ms before it was closed"
    or diag join ' ', map { "$_->{kind}:" . ($_->{retry} // '-') } @s;
my @late = grep { !defined $_->{eof_at} || $_->{eof_at} > $WINDOW + 0.6 } @s;
is scalar(@late), 0, "every stream closed within the window (${WINDOW} s) and a slice"
    or diag join ' ', map { "$_->{kind}:" . ($_->{eof_at} // 'open') } @late;
my @at = sort { $a <=> $b } map { $_->{eof_at} // 99 } @s;
cmp_ok $at[-1] - $at[0], '>=', 0.5,
   sprintf('the closes are spread: first %.2f s, last %.2f s after the restart', $at[0], $at[-1]);
my @off = grep { abs(($_->{eof_at} // 99) - ($_->{retry} // 0) / 1000) > 0.5 } @s;
is scalar(@off), 0, 'each stream closed about R after the restart (its retry: R)'
    or diag join ' ', map { sprintf '%s:R=%s,closed=%.2f', $_->{kind}, $_->{retry} // '-', $_->{eof_at} // 99 } @off;
my %kinds = map { $_->{kind} => 1 } @r;
is join(',', sort keys %kinds), 'plain,susp,tls', 'parked, held and suspend-host streams all spread';
ok wait_new_generation(\@old, $WINDOW + 5), 'the old children exited';
is relay_pid() // 0, $relay, 'the relay lives on';

# every client resumes with its last id: nothing lost
my @re = map { stream_of($_->{kind}, $path, $_->{last}) } @s;
is scalar(grep { defined } @re), 14, 'every client reconnects with Last-Event-ID';
waitpid $pub, 0;
open my $pf, '<', $pubfile or die "$pubfile: $!";
my @pubs = map { [split ' ', $_, 3] } <$pf>;
close $pf;
unlink $pubfile;
my @ok = map { $_->[2] =~ s/\s+$//r } grep { $_->[0] == 200 } @pubs;
cmp_ok scalar(@ok), '>=', 20, scalar(@ok) . ' of ' . scalar(@pubs)
       . ' publishes during the reload answered 200';
my @after = grep { defined } @re;
my $want = join ',', 'start', @ok;
my $lastid = (grep { $_->[0] == 200 } @pubs)[-1][1];
my $t1 = time;
while (time - $t1 < 5 && grep { ($_->{last} // '') ne $lastid } @after) {
    watch(\@after, time, 0.2);
}
my @lost;
for my $i (0 .. $#s) {
    my $got = join ',', @{ $s[$i]{got} // [] }, @{ $re[$i] ? $re[$i]{got} // [] : [] };
    push @lost, "$s[$i]{kind}#$i" if $got ne $want;
}
is scalar(@lost), 0, 'each client has every event exactly once, in order (before the close + resumed)'
    or diag "differ: @lost";
close_all(@after);

my @log = split /\n/, log_since($mark);
ok scalar(grep { /SSE00110: graceful restart: \d+ streams/ } @log), 'the old children logged the spread (SSE00110)';
is scalar(grep { /exit signal|Segmentation|AddressSanitizer/ } @log), 0, 'no child crashed';

# 2. SSERestartSpread 0: at once, as before
{
    open my $o, '>', $override or die "$override: $!";
    print $o "SSERestartSpread 0\n";
}
@old = children_pids();
graceful();
ok wait_new_generation(\@old, $WINDOW + 5), 'restarted with SSERestartSpread 0';
# parked streams only: a TLS connection's end may linger up to 2 s
# (httpd's lingering close), and a prefork child exits only after it
my $c0 = uniq_chan('spread0');
my @z = grep { defined } map { stream_of('plain', "/stream?channel=$c0") } 1 .. 14;
@old = children_pids();
$t0 = time;
graceful();
watch(\@z, $t0, 5);
my @z_at = sort { $a <=> $b } map { $_->{eof_at} // 99 } @z;
ok @z == 14 && $z_at[-1] <= 1,
   sprintf('spread 0: the %d streams closed at once (%.2f to %.2f s after the restart)', scalar @z, $z_at[0], $z_at[-1])
    or diag join ' ', map { sprintf '%s:%.2f', $_->{kind}, $_->{eof_at} // 99 } @z;
is scalar(grep { defined $_->{retry} } @z), 0, 'spread 0: no retry: sent';
unlink $override;
wait_new_generation(\@old, 5);
@old = children_pids();
graceful();
wait_new_generation(\@old, $WINDOW + 5);

# 3. A stop is not slowed: a private server of this MPM, with and without
#    a 5 s window; a stop alone, and a stop 0.5 s into a graceful restart.
my $top = abs_path(Apache::Test::vars('serverroot') . '/../..');
my $httpd = Apache::Test::vars('httpd') || '/usr/sbin/apache2';
my $dir = tempdir(CLEANUP => 1);
my $pport = do { my $l = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0') or die; $l->sockport };
my $started;

sub private_server {
    my($spread) = @_;
    open my $c, '>', "$dir/httpd.conf" or die $!;
    print $c <<"EOC";
ServerRoot "$dir"
ServerName localhost
Listen 127.0.0.1:$pport
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir"
ErrorLog "$dir/error_log"
LogLevel warn sse:info
LoadModule mpm_${mpm}_module /usr/lib/apache2/modules/mod_mpm_$mpm.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule sse_module "$top/mod_sse.so"
StartServers 2
MaxConnectionsPerChild 0
SSERestartSpread $spread
<Location /stream>
    SetHandler sse
    Require all granted
</Location>
EOC
    close $c;
    system("$httpd -f $dir/httpd.conf -k start") == 0 or return undef;
    my $pid;
    wait_until(5, sub { open my $f, '<', "$dir/httpd.pid" or return 0; chomp($pid = <$f> // ''); $pid && alive($pid) });
    $started = $pid;
    my @st;
    wait_until(5, sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$pport") });
    for (1 .. 20) {
        my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$pport", Timeout => 5) or next;
        print $sock "GET /stream?channel=x HTTP/1.1\r\nHost: localhost\r\n\r\n";
        push @st, bless { sock => $sock, buf => '', eof => 0 }, 'SSETest::Stream';
    }
    $_->open_ok(5) for @st;
    return ($pid, \@st);
}

# seconds from the stop until the parent is gone, and until the last
# stream ended
sub stop_timed {
    my($pid, $st, $graceful_first) = @_;
    my $t = time;
    if ($graceful_first) {
        kill 'USR1', $pid;
        watch($st, $t, 0.5);
    }
    my $ts = time;
    my @open = grep { !$_->{eof} } @$st;
    kill 'TERM', $pid;
    my $gone;
    while (time - $ts < 15) {
        watch($st, $ts, 0.05 + (time - $ts));
        if (!$gone && !alive($pid)) { $gone = time - $ts }
        last if $gone && !grep { !$_->{eof} } @$st;
    }
    $started = undef;
    my @e = map { defined $_->{eof_at} ? $_->{eof_at} : 99 } @open;
    my $last = (sort { $b <=> $a } @e)[0] // 99;
    return ($gone // 99, @open ? $last : 99, scalar(grep { defined $_->{retry} } @$st));
}

my($p0, $st0) = private_server(0);
my($gone0) = stop_timed($p0, $st0, 0);
my($p5, $st5) = private_server('5s');
my($gone5, $last5) = stop_timed($p5, $st5, 0);
ok $gone5 <= $gone0 + 1 && $last5 <= 0.5,
   sprintf('stop with a 5 s window: streams closed in %.2f s, httpd gone in %.2f s (%.2f s without)', $last5, $gone5, $gone0);
my($pm, $stm) = private_server('5s');
my($gonem, $lastm, $retried) = stop_timed($pm, $stm, 1);
ok $gonem <= $gone0 + 1 && $lastm <= 0.5,
   sprintf('stop 0.5 s into a 5 s spread: the rest closed in %.2f s, httpd gone in %.2f s', $lastm, $gonem);
is $retried, 20, 'there, every stream had its retry: before the stop';
printf "# RELIABILITY restart_spread window_secs=%d streams=%d retry_in_window=%d first_close_secs=%.2f "
     . "last_close_secs=%.2f publishes_200=%d lost_or_dup_clients=%d spread0_last_close_secs=%.2f "
     . "stop_gone_secs=%.2f stop_gone_secs_5s=%.2f stop_mid_spread_close_secs=%.2f\n",
     $WINDOW, scalar @s, scalar @r, $at[0], $at[-1], scalar @ok, scalar @lost, $z_at[-1],
     $gone0, $gone5, $lastm;

END {
    if ($started && alive($started)) { kill 'KILL', $started }
}
