# SSEMaxStreamsPerClient (t/conf/perclient.conf.in): one client address
# holds at most its cap of streams in the whole server, over every child;
# past it 429 with Retry-After, while other addresses are served and its
# open streams go on.  A closed stream frees its place at once, a killed
# child its places; the count spans locations; mod_remoteip's address
# is the one counted (IPv6 by its /64); TLS streams (suspended on event,
# held elsewhere) count; one log line per address per minute; the 429s
# and the addresses at the cap in server-status and the metrics;
# hand-overs count.  Each
# part uses its own 127.0.0.x, so the parts do not count each other.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/../fault/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use IO::Socket::INET ();
use IO::Socket::SSL ();
use Time::HiRes qw(time sleep);
use SSETest;
use SSEFault;

plan tests => 36;

my $mark = log_mark();

sub from {
    my($addr, $path, @headers) = @_;
    return open_stream($path, local => $addr, headers => \@headers);
}

# n streams of $addr; returns them (all open) or the failures
sub open_n {
    my($n, $addr, $path, @headers) = @_;
    my($ok, $bad) = open_streams($n, $path, local => $addr,
                                 headers => \@headers, batch => $n);
    return ($ok, $bad);
}

sub status_auto {
    my $name = shift;
    my($v) = Apache::TestRequest::GET('/server-status?auto')->content
        =~ /^\Q$name\E: (\d+)$/m;
    return $v;
}

# --- 1. the cap over several children -------------------------------------
my $chan = uniq_chan('pc');
my $path = "/capped?channel=$chan";
my($six, $bad) = open_n(6, '127.0.0.2', $path);
is scalar(@$six), 6, '127.0.0.2 opens 6 streams (its cap)'
    or diag "failed: @$bad";
my %pids = stream_pids($chan);
my @kids = children_pids();
diag '127.0.0.2\'s streams by child: '
    . join(', ', map { "$_: $pids{$_}" } sort keys %pids);

my $over = from('127.0.0.2', $path);
is $over->{status}, 429, 'its 7th is refused with 429';
is $over->header('Retry-After'), '10', '... with Retry-After: 10';
like $over->{buf} . ($over->pending(1) // ''), qr/SSEMaxStreamsPerClient 6/,
     '... and says why';
$over->disconnect;

# more streams, over more children: the count is the whole server's
my($more) = open_n(6, '127.0.0.2', "/capped10?channel=$chan");
%pids = stream_pids($chan);
is scalar(@$more), 4,
   'on a location with a cap of 10 it gets 4 more (10 in all), not 6';
cmp_ok scalar(keys %pids), '>=', @kids > 1 ? 2 : 1,
   scalar(keys %pids) . ' children hold the 10 streams of 127.0.0.2 ('
   . scalar(@kids) . ' children running)';
my $over10 = from('127.0.0.2', "/capped10?channel=$chan");
is $over10->{status}, 429, 'the 11th is refused there too';
$over10->disconnect;
close_all(@$more);

# --- 2. others are served; nothing else changed ---------------------------
my $other = from('127.0.0.3', $path);
ok $other && $other->{status} == 200 && $other->{preamble} eq PREAMBLE,
   '127.0.0.3 is served meanwhile';
my(undef, $j) = publish($chan, data => 'still here');
my @got = read_next_events([@$six, $other], 5);
is scalar(grep { defined && /data: still here\n/ } @got), 7,
   'the 6 streams of 127.0.0.2 and the one of 127.0.0.3 all get the event';

# --- 3. closing frees places at once ---------------------------------------
close_all(@$six[0, 1]);
my $t0 = time;
my @back;
while (@back < 2 && time - $t0 < 5) {
    my $s = from('127.0.0.2', $path);
    if ($s->{status} == 200) { push @back, $s } else { $s->disconnect; sleep 0.01 }
}
my $secs = time - $t0;
is scalar(@back), 2, 'after 2 of its streams closed, 127.0.0.2 opens 2 again';
cmp_ok $secs, '<', 1, sprintf('... within %.3f s of the close', $secs);
my $again = from('127.0.0.2', $path);
is $again->{status}, 429, 'and the next is refused again';
$again->disconnect;

# --- 4. one log line per address per minute --------------------------------
my @lines = grep { /SSE00603: 127\.0\.0\.2 has/ } split /\n/, log_since($mark);
is scalar(@lines), 1, 'one log line for 127.0.0.2 after 3 refusals'
    or diag @lines;
like $lines[0] // '', qr/has 6 open event streams, SSEMaxStreamsPerClient 6/,
     '... saying how many it holds and the cap';
ok !grep({ /SSE00001: 429/ } split /\n/, log_since($mark)),
   'no per-request line for the 429s';

# --- 5. server-status and metrics -------------------------------------------
cmp_ok status_auto('SSEClientRefused') // 0, '>=', 3,
       'server-status?auto counts the 429s (SSEClientRefused)';
cmp_ok status_auto('SSEClientsAtCap') // 0, '>=', 1,
       '... and the addresses at the cap (SSEClientsAtCap)';
my $m = Apache::TestRequest::GET('/metrics')->content;
my($mref) = $m =~ /^mod_sse_client_refused_total (\d+)$/m;
my($mcap) = $m =~ /^mod_sse_clients_at_cap (\d+)$/m;
ok defined $mref && $mref >= 3 && defined $mcap && $mcap >= 1,
   'the metrics have mod_sse_client_refused_total and mod_sse_clients_at_cap'
   . ' (' . ($mref // 'none') . ', ' . ($mcap // 'none') . ')';
like Apache::TestRequest::GET('/server-status')->content,
     qr/streams refused with 429 \(SSEMaxStreamsPerClient\)/,
     'the HTML status page says it';
close_all(@$six[2 .. 5], @back, $other);

# --- 6. mod_remoteip: the forwarded address is counted ---------------------
my $rchan = uniq_chan('rip');
my $rpath = "/capped?channel=$rchan";
my($fw) = open_n(6, '127.0.0.5', $rpath, 'X-Forwarded-For' => '198.51.100.7');
is scalar(@$fw), 6, 'the proxy 127.0.0.5 opens 6 streams for 198.51.100.7';
my $fo = from('127.0.0.5', $rpath, 'X-Forwarded-For' => '198.51.100.7');
is $fo->{status}, 429, 'the 7th for 198.51.100.7 is refused';
$fo->disconnect;
my $fb = from('127.0.0.5', $rpath, 'X-Forwarded-For' => '198.51.100.8');
is $fb->{status}, 200, 'one for 198.51.100.8 through the same proxy is served';
my($conns) = (admin_get($rchan))[1];
ok ref $conns eq 'HASH' && ($conns->{subscribers} // 0) == 7,
   'the channel has the 7 streams';
my $untrusted = from('127.0.0.6', $rpath, 'X-Forwarded-For' => '198.51.100.7');
is $untrusted->{status}, 200,
   'X-Forwarded-For: 198.51.100.7 from an untrusted 127.0.0.6 is not believed';
my $untrusted2 = from('127.0.0.6', $rpath, 'X-Forwarded-For' => '198.51.100.9');
my @notice = grep { /SSE00601/ } split /\n/, log_since($mark);
ok @notice == 1 && $notice[0] =~ /through a proxy \(127\.0\.0\.6, which forwards for 198\.51\.100\.7\)/,
   'streams through a proxy mod_remoteip does not trust: logged once (SSE00601)'
    or diag @notice;
close_all(@$fw, $fb, $untrusted, $untrusted2);

# IPv6 by /64
my($v6) = open_n(3, '127.0.0.5', $rpath, 'X-Forwarded-For' => '2001:db8:1:2::1');
my($v6b) = open_n(3, '127.0.0.5', $rpath, 'X-Forwarded-For' => '2001:db8:1:2:ffff::9');
is scalar(@$v6) + scalar(@$v6b), 6,
   '6 streams for two addresses of 2001:db8:1:2::/64';
my $v6o = from('127.0.0.5', $rpath, 'X-Forwarded-For' => '2001:db8:1:2:abcd::1');
is $v6o->{status}, 429, 'a third address of that /64 is refused: one client';
$v6o->disconnect;
my $v6n = from('127.0.0.5', $rpath, 'X-Forwarded-For' => '2001:db8:1:3::1');
is $v6n->{status}, 200, 'the next /64 is another client';
close_all(@$v6, @$v6b, $v6n);

# --- 7. TLS streams count (suspended on event, held elsewhere) --------------
my $tport = Apache::Test::config()->{vhosts}{sse_tls_suspend}{port};
sub tls_stream {
    my($addr, $p) = @_;
    my $raw = IO::Socket::INET->new(Proto => 'tcp', LocalAddr => $addr)
        or return undef;
    $raw->connect(Socket::pack_sockaddr_in($tport, Socket::inet_aton('127.0.0.1')))
        or return undef;
    my $sock = IO::Socket::SSL->start_SSL($raw, SSL_verify_mode => 0,
        SSL_alpn_protocols => ['http/1.1'], Timeout => 10) or return undef;
    print $sock "GET $p HTTP/1.1\r\nHost: localhost:$tport\r\n\r\n";
    my $s = bless { sock => $sock, buf => '', eof => 0, path => $p,
                    method => 'GET' }, 'SSETest::Stream';
    $s->open_ok(10);
    return $s;
}
my $tchan = uniq_chan('tls');
my @t = map { tls_stream('127.0.0.7', "/capped?channel=$tchan") } 1 .. 3;
is scalar(grep { $_ && ($_->{status} // 0) == 200 } @t), 3,
   '127.0.0.7 opens 3 TLS streams (cap 3 on that host)';
my $t4 = tls_stream('127.0.0.7', "/capped?channel=$tchan");
is $t4 && $t4->{status}, 429, 'its 4th TLS stream is refused with 429';
$t4->disconnect if $t4;
$t[0]->disconnect;
my $t5 = wait_until(5, sub {
    my $s = tls_stream('127.0.0.7', "/capped?channel=$tchan");
    return $s if $s && ($s->{status} // 0) == 200;
    $s->disconnect if $s;
    return undef;
});
ok $t5, 'one TLS stream closed: another opens';
close_all(@t[1, 2], $t5 ? $t5 : ());

# --- 8. an application's hand-over counts too -------------------------------
my $hchan = uniq_chan('ho');
my @h = map { from('127.0.0.9', "/capped-app/handover.cgi?channel=$hchan") } 1 .. 2;
is scalar(grep { $_->{status} == 200 } @h), 2,
   '127.0.0.9 gets 2 handed-over streams (cap 2)';
my $h3 = from('127.0.0.9', "/capped-app/handover.cgi?channel=$hchan");
ok $h3->{status} == 429 && ($h3->header('Retry-After') // '') eq '10',
   'its 3rd hand-over is answered 429 with Retry-After instead of the '
   . 'application\'s response';
ok !grep({ /SSE00009/ } split /\n/, log_since($mark)),
   '... logged once a minute, not per request (no SSE00009)';
close_all(@h, $h3);

# --- 9. a killed child gives its places back --------------------------------
my $kchan = uniq_chan('kill');
my($k6) = open_n(6, '127.0.0.8', "/capped?channel=$kchan");
my %kp = stream_pids($kchan);
my($victim) = sort { $kp{$b} <=> $kp{$a} } keys %kp;
my $k = $kp{$victim} // 0;
SKIP: {
    skip 'only one child holds the streams: killing it says nothing', 2
        if keys %kp < 2 && @kids < 2;
    ok kill('KILL', $victim), "kill -9 child $victim, which holds $k of "
                              . "127.0.0.8's 6 streams";
    my @re;
    my $tk = time;
    while (@re < $k && time - $tk < 5) {
        my $s = from('127.0.0.8', "/capped?channel=$kchan");
        if ($s && $s->{status} == 200) { push @re, $s } else { $s->disconnect if $s; sleep 0.05 }
    }
    is scalar(@re), $k, sprintf('%d streams open again within %.2f s, as the '
                               . 'parent reaped it', scalar(@re), time - $tk);
    close_all(@re);
}
close_all(@$k6);
