# The caps of held streams (TLS here; HTTP/2 in t/30_tls.t and t/31_h2c.t):
# SSEMaxHeldStreams counts them in the whole server (8 in
# t/conf/tls.conf.in) over every child, and a child keeps a floor of its
# threads from them: event and worker (ThreadsPerChild 5) keep 1, so at most
# 4 held streams per child; prefork (one thread per child) keeps none, so
# one per child process.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use IO::Socket::SSL ();
use Time::HiRes qw(time);
use SSETest;

plan tests => 11;

my $MAX = 8;            # SSEMaxHeldStreams in t/conf/tls.conf.in
my $port = Apache::Test::config()->{vhosts}{sse_tls}{port};
my($mpm) = Apache::TestRequest::GET('/server-status?auto')->content
    =~ /^ServerMPM:\s*(\S+)/m;
$mpm //= '?';
my($threads, $per_child) = $mpm eq 'prefork' ? (1, 1) : (5, 4);

sub held_now {
    my($n) = Apache::TestRequest::GET('/server-status?auto')->content
        =~ /^SSEStreamsHeld: (\d+)$/m;
    return $n // -1;
}

# A TLS connection (HTTP/1.1, kept alive) with a first request sent.
sub tls_start {
    my $path = shift;
    my $sock = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $port, SSL_verify_mode => 0,
        SSL_alpn_protocols => ['http/1.1'], Timeout => 10)
        or return undef;
    my $s = bless { sock => $sock, buf => '', eof => 0, path => $path,
                    method => 'GET' }, 'SSETest::Stream';
    tls_send($s, $path);
    return $s;
}

# Send another request on the connection, forgetting the last answer.
sub tls_send {
    my($s, $path) = @_;
    delete @$s{qw(status status_line head headers preamble body)};
    $s->{buf} = '';
    $s->{path} = $path;
    print { $s->{sock} } "GET $path HTTP/1.1\r\nHost: localhost:$port\r\n\r\n";
}

# A stream request's answer: 'ok' (200 and ": ok"), or "STATUS body".
sub answer {
    my $s = shift;
    return 'no answer' unless $s && $s->read_head(5);
    return 'ok' if $s->{status} == 200 && $s->read_bytes(length PREAMBLE, 5)
                   && 1;
    $s->wait_for(sub { $s->{buf} =~ /\n/ }, 2);
    my($line) = $s->{buf} =~ /^([^\n]*)/;
    return "$s->{status} " . ($line // '');
}

# Read until $cond (the whole of a page larger than one TLS record: what
# OpenSSL has decrypted already is not seen by select()).
sub tls_read_until {
    my($s, $cond, $timeout) = @_;
    my $deadline = time + $timeout;
    while (!$cond->()) {
        return 0 if $s->{eof} || time > $deadline;
        if ($s->{sock}->pending) { $s->fill; next }
        $s->wait_for(sub { $cond->() || $s->{sock}->pending }, 0.1);
    }
    return 1;
}

my $floor_re = qr/keeps a quarter of its threads/;

# Open a held stream on $chan over a new TLS connection; one refused by
# the floor of a full child is tried again (the next connection may land
# in another child).  Returns (stream or undef, last refusal, floor
# refusals seen).
sub open_held {
    my($chan, $tries) = @_;
    my($why, $floored) = ('', 0);
    for (1 .. $tries // 20) {
        my $s = tls_start("/stream?channel=$chan");
        my $a = answer($s);
        return ($s, '', $floored) if $a eq 'ok';
        $s->{sock}->close(SSL_no_shutdown => 1) if $s;
        $why = $a;
        last unless $a =~ $floor_re;
        $floored++;
    }
    return (undef, $why, $floored);
}

sub pids {
    my $chan = shift;
    my(undef, $j) = admin_get($chan);
    my %n;
    $n{ $_->{pid} // '?' }++ for @{ ref $j eq 'HASH' ? $j->{connections} : [] };
    return \%n;
}

ok wait_until(5, sub { held_now() == 0 }), 'no held stream is open';

# 1. the caps logged at start-up
my $line = log_line(qr/SSE00304/) // '';
like $line, qr/at most $MAX in the server \(SSEMaxHeldStreams\); per child at most $per_child over HTTP\/1\.1 \(ThreadsPerChild $threads, ${\($threads - $per_child)} kept free\)/,
   "start-up log: $MAX in the server, $per_child per child over HTTP/1.1 ($mpm)";

# 2. $MAX held streams are admitted, over several children
my $c = uniq_chan('cap');
my(@open, $why, $floored);
for (1 .. $MAX) {
    my($s, $w, $f) = open_held($c);
    $floored += $f;
    push @open, $s if $s;
    $why = $w, last unless $s;
}
is scalar(@open), $MAX, "$MAX held TLS streams are admitted"
    . ($floored ? " ($floored tries refused by a full child's floor)" : '')
    or diag "refused: $why";
my $p = pids($c);
cmp_ok scalar(keys %$p), '>=', 2,
       'they are held by several children (' . join(', ', map { "$_: $p->{$_}" } sort keys %$p) . ')';
my @over = grep { $p->{$_} > $per_child } keys %$p;
ok !@over, "no child holds more than $per_child (ThreadsPerChild $threads less its floor)";

# 3. the next one is refused with 503, whatever child it reaches
my $x = tls_start("/stream?channel=$c");
my $ans = answer($x);
like $ans, qr/^503 .*\(SSEMaxHeldStreams\)/, 'the next one: 503 (SSEMaxHeldStreams)';
is $x->header('Retry-After'), '1', 'with Retry-After: 1';
$x->{sock}->close(SSL_no_shutdown => 1);

# 4. a stream that closes gives its place back
my $gone = shift @open;
$gone->{sock}->close(SSL_no_shutdown => 1);
my $back;
ok wait_until(3, sub { ($back) = open_held($c); $back }),
   'one closes: the next stream is admitted';
push @open, $back if $back;
my($y) = open_held($c, 1);
ok !$y, 'and then the cap holds again';
$y->{sock}->close(SSL_no_shutdown => 1) if $y;
$_->{sock}->close(SSL_no_shutdown => 1) for @open;
@open = ();
ok wait_until(5, sub { held_now() == 0 }), 'all closed: no held stream left';

# 5. the floor: $per_child + 1 kept-alive connections in one child; the
#    first $per_child get their stream, the next is refused by the floor.
#    (prefork: a child has one thread and serves one connection at a time,
#    so it keeps no floor: 2. showed one held stream per child.)
SKIP: {
skip 'prefork: one thread per child, its held stream is all it serves', 1
    if $mpm eq 'prefork';
# where a connection is: its own /server-status row shows its request
my(%conns, $pid);
for my $i (1 .. 45) {
    my $tag = "floor-$$-$i";
    my $s = tls_start("/server-status?m=$tag") or next;
    tls_read_until($s, sub { $s->{buf} =~ /\r\n0\r\n\r\n\z/ }, 5) or next;
    my($who) = $s->{buf} =~ m{<td>(\d+)</td>(?:(?!<tr>).)*?\Q$tag\E}s or next;
    push @{ $conns{$who} }, $s;
    if (@{ $conns{$who} } > $per_child) { $pid = $who; last }
}
my $f = uniq_chan('floor');
my @got;
if ($pid) {
    for my $s (@{ $conns{$pid} }) {
        tls_send($s, "/stream?channel=$f");
        push @got, answer($s);
    }
}
my $want = join ', ', ('ok') x $per_child, 'floor';
is join(', ', map { /$floor_re/ ? 'floor' : $_ } @got), $want,
   "$per_child + 1 connections in child " . ($pid // '?')
   . ": $per_child streams, then 503 (the child keeps a thread)";
$_->{sock}->close(SSL_no_shutdown => 1) for map { @$_ } values %conns;
}
