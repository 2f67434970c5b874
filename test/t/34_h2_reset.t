# A held HTTP/2 stream gives its place back promptly when the client resets
# it (RST_STREAM, the connection kept) or closes its connection: within
# 100 ms, not at the worker's next one-second poll timeout.  mod_http2 only
# marks the stream's connection aborted (no descriptor to poll for a
# bodiless GET); sse_held.c's per-child watcher notices and wakes the
# worker.
#
# The place measured: a child's HTTP/2 held streams (H2MaxWorkers 8 in
# t/conf/tls.conf.in: 6, t/31_h2c.t).  One connection (one child) holds
# 6; the 7th is refused (503); one is reset and a new stream on the same
# connection must be admitted (200) within 100 ms of the reset.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use IO::Socket::INET ();
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Protocol::HTTP2::Client ();
use Time::HiRes qw(time sleep);
use SSETest;

use constant CANCEL => 0x8;     # RST_STREAM error code
use constant ROUNDS => 3;
use constant PROMPT => 0.1;     # seconds

plan tests => 2 + 6 * ROUNDS;

my $port = Apache::Test::config()->{vhosts}{sse_h2c}{port};
ok $port, "h2c virtual host on port " . ($port // '?');

sub held_now {
    my($n) = Apache::TestRequest::GET('/server-status?auto')->content
        =~ /^SSEStreamsHeld: (\d+)$/m;
    return $n // -1;
}

ok wait_until(5, sub { held_now() == 0 }), 'no held stream is open';

my %req = (':scheme' => 'http', ':authority' => "localhost:$port",
           ':method' => 'GET');

# One round on a new connection (mod_http2 lowers a connection's number
# of requests processed at once after a few resets: one reset each).
for my $round (1 .. ROUNDS) {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 10)
        or die "h2c connect: $!";
    # the reset and the next request are small writes: no Nagle delay
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    my $h2 = Protocol::HTTP2::Client->new(keepalive => 1);
    my $pump = sub { h2_pump($sock, $h2, @_) };
    # a stream request: (its answer, its HTTP/2 stream id)
    my $stream = sub {
        my $got = h2_get($h2, \%req, shift);
        return ($got, $h2->{con}{last_stream});
    };

    # mod_http2 starts a connection with 6 requests at a time and raises
    # it as requests complete: 40 quick ones first (as t/31_h2c.t).
    my $warm = 0;
    for my $batch (1 .. 4) {
        $h2->request(%req, ':path' => "/index.html?w=$batch$_",
                     on_done => sub { $warm++ }) for 1 .. 10;
        $pump->(20, sub { $warm == 10 * $batch });
    }

    my $c = uniq_chan('h2rst');
    my @open = map { [ $stream->("/stream?channel=$c&n=$_") ] } 1 .. 6;
    $pump->(20, sub { 6 == grep { $_->[0]{data} eq PREAMBLE } @open });
    is join(',', map { $_->[0]{status} // '-' } @open),
       join(',', ('200') x 6),
       "round $round: 6 held streams on one connection (warm-up: $warm)";
    my($x) = $stream->("/stream?channel=$c&n=x");
    $pump->(10, sub { defined $x->{status} && $x->{data} =~ /\n/ });
    like(($x->{status} // '-') . " $x->{data}", qr/^503 .*H2MaxWorkers/,
         "round $round: the 7th: 503, the child's HTTP/2 places are taken");

    # Reset one (RST_STREAM, CANCEL), then ask again until a stream is
    # admitted: the time from sending the reset to the 200.
    $h2->{con}->stream_error($open[0][1], CANCEL);
    while (my $f = $h2->next_frame) { print $sock $f }
    my $t0 = time;
    my($new, $tries, $last) = (undef, 0, '');
    while (time - $t0 < 3) {
        my($got) = $stream->("/stream?channel=$c&t=" . ++$tries);
        $pump->(3, sub { defined $got->{status}
                         && ($got->{status} ne '200'
                             || $got->{data} eq PREAMBLE) });
        $last = $got->{status} // '-';
        if ($last eq '200') { $new = $got; last }
        sleep 0.005;
    }
    my $took = time - $t0;
    ok $new, "round $round: after a reset a new stream is admitted"
             . " ($tries tries, last $last)";
    cmp_ok $took, '<', PROMPT,
           sprintf('round %d: within %d ms of the reset (%.0f ms)',
                   $round, PROMPT * 1000, $took * 1000);

    # The client closes the connection: every place back within 100 ms.
    my $before = held_now();
    close $sock;
    $t0 = time;
    my $now;
    wait_until(3, sub { ($now = held_now()) == 0 });
    $took = time - $t0;
    is $now, 0, "round $round: the connection closes: its $before held "
                . 'streams end';
    cmp_ok $took, '<', PROMPT,
           sprintf('round %d: within %d ms of the close (%.0f ms)',
                   $round, PROMPT * 1000, $took * 1000);
}
