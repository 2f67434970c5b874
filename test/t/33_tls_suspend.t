# Suspended TLS streams (SSESuspend on, event MPM): a TLS stream gives its
# worker thread back, so a server with 50 worker threads in all serves more
# TLS streams than that, each receiving every event byte for byte; a
# client that leaves ends its stream; resume works.  Under worker and
# prefork the same host's streams are held (as before).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use IO::Socket::INET ();
use IO::Socket::SSL ();
use Socket qw(SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
use SSETest;
use Time::HiRes qw(time);
use File::Spec ();

plan tests => 34;

my $port = Apache::Test::config()->{vhosts}{sse_tls_suspend}{port};
my $defines = Apache::Test::vars('defines') // '';
my $event = $defines =~ /\bMPM_EVENT\b/ || $defines !~ /\bMPM_(WORKER|PREFORK)\b/;

# A TLS request on the suspend host, nothing read yet; rcvbuf (bytes)
# makes the client advertise a small receive window, as a slow reader.
sub tls_request {
    my($path, @headers) = @_;
    my $rcvbuf = $path =~ s/ rcvbuf=(\d+)$// ? $1 : 0;
    my $raw = IO::Socket::INET->new(Proto => 'tcp') or return undef;
    if ($rcvbuf) {
        setsockopt($raw, SOL_SOCKET, SO_RCVBUF, $rcvbuf) or die "SO_RCVBUF: $!";
    }
    $raw->connect(pack_sockaddr_in($port, inet_aton("127.0.0.1"))) or return undef;
    my $sock = IO::Socket::SSL->start_SSL($raw, SSL_verify_mode => 0,
        SSL_alpn_protocols => ['http/1.1'], Timeout => 10)
        or return undef;
    my $req = "GET $path HTTP/1.1\r\nHost: localhost:$port\r\n";
    while (my($k, $v) = splice @headers, 0, 2) { $req .= "$k: $v\r\n" }
    print $sock "$req\r\n";
    return bless { sock => $sock, buf => '', eof => 0, path => $path,
                   method => 'GET' }, 'SSETest::Stream';
}

# A TLS stream, its head and ": ok" read.
sub tls_stream {
    my $s = tls_request(@_) or return undef;
    $s->open_ok(10);
    return $s;
}

sub status_field {
    my($name) = @_;
    my($v) = Apache::TestRequest::GET('/server-status?auto')->content
        =~ /^\Q$name\E: (\d+)$/m;
    return $v;
}

# 1. One stream: 200, ": ok", an event byte for byte, and not held.
my $c = uniq_chan('susp');
my $s = tls_stream("/stream?channel=$c");
ok $s && $s->{status} == 200 && $s->{preamble} eq PREAMBLE,
   'suspended TLS stream: 200 and ": ok"';
my(undef, $j) = publish($c, data => "line1\nline2", event => 'tick');
is $j->{subscribers}, 1, 'a publish counts it';
is show($s->next_event(5)),
   show(ev(id => $j->{id}, event => 'tick', data => ['line1', 'line2'])),
   'it receives the event byte for byte';
ok $s && !$s->{headers}{'content-length'}
   && ($s->{headers}{'content-type'}[0] // '') eq 'text/event-stream',
   'its head has the event-stream type and no Content-Length';
SKIP: {
skip 'held streams are logged when they end', 1 unless $event;
# a suspended stream's request is over once the MPM has it: logged then,
# as a parked stream's, while the stream goes on
my $log = File::Spec->catfile(Apache::Test::vars('t_logs'), 'access_log');
my $logged;
for (1 .. 20) {
    open my $fh, '<', $log or last;
    $logged = grep { m{"GET /stream\?channel=\Q$c\E HTTP/1\.1" 200 } } <$fh>;
    last if $logged;
    select undef, undef, undef, 0.1;
}
is $logged, 1, 'event MPM: its request is logged (200) while the stream goes on';
}
is status_field('SSEStreamsHeld'), ($event ? 0 : 1),
   $event ? 'event MPM: it holds no worker thread (not counted as held)'
          : 'worker/prefork: it is held, as before';

# 1a. Its small events are written by the broker as TLS records straight
#     to the socket (sse_tls.c), not through mod_ssl's filters: counted in
#     SSETLSWritesDirect (event MPM; held streams have none), and received
#     byte for byte, in order.
my $direct0 = status_field('SSETLSWritesDirect');
my @sent = map { (publish($c, data => "direct $_"))[1] } 1 .. 5;
my @recv = map { $s ? $s->next_event(5) : undef } @sent;
my $direct = status_field('SSETLSWritesDirect') - $direct0;
my $dwant = join '', map { ev(id => $sent[$_]{id}, data => 'direct ' . ($_ + 1)) } 0 .. 4;
my $dgot = join '', map { $_ // '(none)' } @recv;
ok $dgot eq $dwant && ($event ? $direct >= 1 : $direct == 0),
   $event ? 'event MPM: its events go out as TLS records the broker writes itself'
          : 'worker/prefork: no direct TLS writes'
   or diag "direct writes: $direct; got: " . show($dgot);

# 2. More TLS streams than the server has worker threads (50 in all), each
#    receiving: only possible when they hold none.
SKIP: {
skip 'suspension needs the event MPM', 3 unless $event;
my $m = uniq_chan('many');
my @s = grep { defined } map { tls_stream("/stream?channel=$m") } 1 .. 60;
is scalar(@s), 60, '60 TLS streams open (the server has 50 worker threads)';
my(undef, $jm) = publish($m, data => 'to all');
is $jm->{subscribers}, 60, 'a publish counts all 60';
my $got = grep { my $e = $_->next_event(10);
                 defined $e && $e eq ev(id => $jm->{id}, data => 'to all') } @s;
is $got, 60, 'every one of them receives it';
$_->{sock}->close(SSL_no_shutdown => 1) for @s;
}

# 3. A client that leaves ends its stream: the count drops.
$s->{sock}->close(SSL_no_shutdown => 1);
my($n, $last);
for (1 .. 50) {
    (undef, my $jj) = publish($c, data => 'anyone?');
    ($n, $last) = ($jj->{subscribers}, $jj->{id});
    last if !$n;
    select undef, undef, undef, 0.1;
}
is $n, 0, 'a client closing its suspended stream ends it';

# 4. Resume with Last-Event-ID: the event published after it, first.
my(undef, $j1) = publish($c, data => 'missed');
my $r = tls_stream("/stream?channel=$c", 'Last-Event-ID' => $last);
is show($r && $r->next_event(5)), show(ev(id => $j1->{id}, data => 'missed')),
   'a suspended stream resumes after Last-Event-ID';
$r->{sock}->close(SSL_no_shutdown => 1) if $r;

# 4b. Events too big for the broker's direct write (over 4 KB) go through
#     the stream's socketpair; the small ones around them are written by
#     the broker itself when nothing waits there: the stream gets them all
#     in order, byte for byte.
my $o = uniq_chan('order');
my $os = tls_stream("/stream?channel=$o");
my @sizes = (10, 6000, 20, 30, 9000, 40, 5000, 50, 60, 70);
my @want;
for my $i (0 .. $#sizes) {
    my(undef, $oj) = publish($o, data => chr(97 + $i) x $sizes[$i]);
    push @want, ev(id => $oj->{id}, data => chr(97 + $i) x $sizes[$i]);
}
my @got = map { $os ? $os->next_event(5) : undef } @want;
is show(join '', map { $_ // '(none)' } @got), show(join '', @want),
   'small and big events arrive in order, byte for byte';
$os->{sock}->close(SSL_no_shutdown => 1) if $os;

# 5. DELETE on the channel ends a suspended stream.
my $d = uniq_chan('del');
my $ds = tls_stream("/stream?channel=$d");
my(undef, $dj) = admin_delete($d);
is $dj->{closed}, 1, 'DELETE closes the suspended stream';
ok $ds && $ds->wait_eof(5), 'its client sees the end of the stream';

# 6. A client that stops reading: past SSEMaxBacklog the broker ends its
#    stream, and no worker thread waits on it meanwhile (the server goes
#    on answering while the client is stuck).
my $w = uniq_chan('slow');
my $ws = tls_stream("/slowstream?channel=$w rcvbuf=4096");
my $big = 'x' x 32768;
my($slow_n, $ok_meanwhile) = (1, 1);
for (1 .. 1000) {
    (undef, my $sj) = publish($w, data => $big);
    $slow_n = $sj->{subscribers};
    last if !$slow_n;
}
is $slow_n, 0, 'a client that does not read is dropped past SSEMaxBacklog';
my $t0 = time;
$ok_meanwhile = Apache::TestRequest::GET('/server-status?auto')->code == 200;
ok $ok_meanwhile && time - $t0 < 2, 'the server answers at once meanwhile';
$ws->{sock}->close(SSL_no_shutdown => 1) if $ws;

# 6a. The same with small events, which the broker writes to the socket
#     itself while the kernel has room (sse_suspend.c asks once per
#     budget, not per event): it must stop before the socket is full, never
#     wait in a write, so another stream on the channel gets every event at
#     once the whole time, and the stuck one is dropped past SSEMaxBacklog
#     as before.
SKIP: {
skip 'direct writes are for suspended streams (event MPM)', 2 unless $event;
my $w2 = uniq_chan('slowsmall');
my $stuck = tls_stream("/slowstream?channel=$w2 rcvbuf=4096");
my $fast = tls_stream("/slowstream?channel=$w2");
my $small = 'y' x 3900;   # with its id and field name, under 4 KB
my($left, $late, $got, $sent) = (2, 0, 0, 0);
for (1 .. 8000) {
    (undef, my $sj) = publish($w2, data => $small);
    last unless $sj && $sj->{id};
    $sent++;
    my $ev = $fast && $fast->next_event(3);
    if (defined $ev && $ev eq ev(id => $sj->{id}, data => $small)) { $got++ }
    else { $late++; last }
    $left = $sj->{subscribers};
    last if $left < 2;
}
ok $left == 1 && $got == $sent && !$late,
   "small events: the stuck client is dropped, the other got all $sent at once"
   or diag "subscribers left $left, sent $sent, received $got, late $late";
# how the stuck one ended: past its backlog, not by a write that found
# the socket full (a budget too big ends a stream that only lags)
my $elog = File::Spec->catfile(Apache::Test::vars('t_logs'), 'error_log');
my($why) = ('');
for (1 .. 20) {
    open my $fh, '<', $elog or last;
    ($why) = map { /reason=(.*)$/ ? $1 : () }
             grep { /SSE00101: .*channels=\S*\Q$w2\E / } <$fh>;
    last if $why;
    select undef, undef, undef, 0.1;
}
is $why, 'slow client (backlog over SSEMaxBacklog)',
   'the stuck one ended past SSEMaxBacklog, no write found its socket full';
$_ && $_->{sock}->close(SSL_no_shutdown => 1) for $stuck, $fast;
}

# 6b. Hand-over (SSEHandover): an application's response over TLS becomes
#     a suspended stream too, directly (CGI) and through mod_proxy: more of
#     them than the server has worker threads, each receiving its events.
my $app = ": hello from the app\n\n";
sub tls_handover {
    my $h = tls_request(@_) or return undef;
    $h->read_head(10);
    $h->wait_for(sub { length $h->{buf} >= length($app . PREAMBLE) }, 10);
    return $h;
}
SKIP: {
skip 'suspension needs the event MPM (t/30 tests held hand-overs)', 6 unless $event;
my $hc = uniq_chan('susp-ho');
my @h = grep { defined } map { tls_handover("/cgi/handover.cgi?channel=$hc") } 1 .. 55;
my $whole = grep { ($_->status // 0) == 200
                   && substr($_->{buf}, 0, length($app . PREAMBLE), '') eq $app . PREAMBLE } @h;
is $whole, 55, '55 hand-overs over TLS (50 worker threads): the app\'s answer, then ": ok"';
is status_field('SSEStreamsHeld'), 0, 'none of them holds a worker thread';
my(undef, $jh) = publish($hc, data => 'handed over');
is $jh->{subscribers}, 55, 'a publish counts all 55';
my $got = grep { my $e = $_->next_event(10);
                 defined $e && $e eq ev(id => $jh->{id}, data => 'handed over') } @h;
is $got, 55, 'every handed-over stream receives it';
$_->{sock}->close(SSL_no_shutdown => 1) for @h;
my $pc = uniq_chan('susp-proxy');
my $po = tls_handover("/app/handover.cgi?channel=$pc");
my $head = $po ? substr($po->{buf}, 0, length($app . PREAMBLE), '') : '';
my(undef, $jp) = publish($pc, data => 'proxied');
is show(join '|', ($po && $po->status) // '-', $head, ($jp->{subscribers} // '-'),
         status_field('SSEStreamsHeld')),
   show(join '|', 200, $app . PREAMBLE, 1, 0),
   'through mod_proxy: the app\'s answer, ": ok", counted, not held';
is show($po && $po->next_event(5)), show(ev(id => $jp->{id}, data => 'proxied')),
   'and then its events';
$po->{sock}->close(SSL_no_shutdown => 1) if $po;
}

# 7. Nothing suspended is left once every client has gone: the status
#    page's open streams return to what they were.
my $open;
for (1 .. 50) {
    ($open) = Apache::TestRequest::GET('/server-status?auto')->content
        =~ /^SSEStreams: (\d+)$/m;
    last if defined $open && $open == 0;
    select undef, undef, undef, 0.1;
}
is $open, 0, 'no stream is left open';

# 7b. Churn: 300 streams opened and closed (half with a TLS close_notify,
#     half by dropping the socket) leave no descriptor behind in the
#     children and no stream counted.
sub children_fds {
    my $pidfile = File::Spec->catfile(Apache::Test::vars('t_logs'), 'httpd.pid');
    open my $pf, '<', $pidfile or die "$pidfile: $!";
    chomp(my $parent = <$pf>);
    my %fds;
    opendir my $proc, '/proc' or die "/proc: $!";
    for my $pid (grep { /^\d+$/ } readdir $proc) {
        open my $st, '<', "/proc/$pid/stat" or next;
        my($ppid) = (<$st> // '') =~ /^\d+ \(.*\) \S (\d+)/;
        next unless ($ppid // 0) == $parent;
        opendir my $fd, "/proc/$pid/fd" or next;
        $fds{$pid} = grep { /^\d+$/ } readdir $fd;
    }
    return \%fds;
}
sub churn {
    my($chan, $n) = @_;
    for my $i (1 .. $n) {
        my $cs = tls_stream("/stream?channel=$chan") or next;
        if ($i % 2) { $cs->{sock}->close(SSL_fast_shutdown => 1) }
        else        { $cs->{sock}->close(SSL_no_shutdown => 1) }
    }
    wait_until(10, sub {
        my($open) = Apache::TestRequest::GET('/server-status?auto')->content
            =~ /^SSEStreams: (\d+)$/m;
        defined $open && $open == 0;
    });
}
my $ch = uniq_chan('churn');
churn($ch, 50);                 # warm-up: threads' relay links, caches
my $before = children_fds();
churn($ch, 300);
my $after = children_fds();
my $grown = 0;
for my $pid (keys %$before) {
    $grown += $after->{$pid} - $before->{$pid} if exists $after->{$pid};
}
ok keys(%$before) > 0, 'the children\'s descriptors can be counted';
cmp_ok $grown, '<=', 10, "300 streams opened and closed: the children hold $grown more descriptors";

# 8. A graceful restart ends suspended streams (so that the old children
#    can exit: the event MPM waits for their connections), and nothing
#    crashes on the way.
my $g = uniq_chan('grace');
my @g = grep { defined } map { tls_stream("/stream?channel=$g") } 1 .. 3;
my $pidfile = File::Spec->catfile(Apache::Test::vars('t_logs'), 'httpd.pid');
open my $fh, '<', $pidfile or die "$pidfile: $!";
chomp(my $ppid = <$fh>);
kill 'USR1', $ppid;
my $closed = grep { $_->wait_eof(10) } @g;
is $closed, 3, 'a graceful restart closes every suspended stream';
ok wait_until(10, sub { (publish($g, data => 'x'))[0]->code == 200 }),
   'the server publishes again after the restart';
my $log = File::Spec->catfile(Apache::Test::vars('t_logs'), 'error_log');
open my $lf, '<', $log or die "$log: $!";
my @log = <$lf>;
my $crash = grep { /exit signal|Segmentation|AddressSanitizer/ } @log;
is $crash, 0, 'no child crashed';

# 9. The start-up log says which mode TLS streams are in, and (event) what
#    the MPM's settings allow: 50 workers x (1 + AsyncRequestWorkerFactor
#    40) connections, below SSEMaxSubscribers; MaxSpareThreads is 50, as
#    many as MaxRequestWorkers, so no warning of idle children retired.
my($mode) = map { /SSE00306: (.*)/ } @log;
like $mode // '', $event ? qr/over TLS \(HTTP\/1\.1\) are suspended .* in \d+ of \d+ servers; held in [1-9]/
                         : qr/are held, one (worker thread|process) each: the (worker|prefork) MPM cannot suspend them$/,
     'start-up: ' . ($mode // 'no SSE00306 line');
my($room) = map { /SSE00307: (.*)/ } @log;
if ($event) {
    my($max, $to, $for) = ($room // '') =~ /below SSEMaxSubscribers (\d+): .* \(to (\d+) for (\d+) streams\)/;
    ok $room && $room =~ /stop at about 2050, below .*ThreadsPerChild 5 x \(1 \+ AsyncRequestWorkerFactor 40\).* 10 children/
       && defined $max && $max > 2050 && $for == $max && 50 * (1 + $to) >= $max && 50 * $to < $max,
       'start-up warning: where the event MPM stops taking suspended streams, and the factor for more'
       or diag $room;
}
else {
    is $room, undef, 'no warning about the event MPM under ' . ($defines =~ /MPM_(\w+)/ ? lc $1 : '?');
}
is scalar(grep { /SSE00308/ } @log), 0, 'MaxSpareThreads = MaxRequestWorkers: no warning';
