# Held streams over HTTP/2 in cleartext (h2c, prior knowledge): never
# parked (the connection is mod_http2's), same bytes, counts and clean-up as
# parked streams and as h2 over TLS (t/30_tls.t); a child keeps a quarter
# of mod_http2's workers (H2MaxWorkers 8 in t/conf/tls.conf.in: 2) from
# them.  mod_http2 serves h2c
# with prior knowledge under prefork too (h2 over TLS it leaves off there).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use IO::Socket::INET ();
use Protocol::HTTP2::Client ();
use Time::HiRes qw(time);
use SSETest;

plan tests => 12;

my $port = Apache::Test::config()->{vhosts}{sse_h2c}{port};
ok $port, "h2c virtual host on port " . ($port // '?');

my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 Proto => 'tcp', Timeout => 10)
    or die "h2c connect: $!";
my $h2 = Protocol::HTTP2::Client->new(keepalive => 1);
my %req = (':scheme' => 'http', ':authority' => "localhost:$port",
           ':method' => 'GET');

my $pump = sub { h2_pump($sock, $h2, @_) };

my $h = uniq_chan('h2c');
my %got = map { $_ => h2_get($h2, \%req, "/stream?channel=$h&n=$_") } 1 .. 2;
$pump->(10, sub { 2 == grep { defined $_->{status} } values %got });
is join(',', map { $got{$_}{status} // '-' } 1 .. 2), '200,200',
   'two event streams on one h2c connection answer 200';
my(undef, $j) = publish($h, data => "over\nh2c", event => 'tick');
is $j->{subscribers}, 2, 'a publish on the HTTP/1.1 port counts both';
my $want = ev(id => $j->{id}, event => 'tick', data => ['over', 'h2c']);
$pump->(10, sub { 2 == grep { $got{$_}{data} eq PREAMBLE . $want } 1 .. 2 });
is scalar(grep { $got{$_}{data} eq PREAMBLE . $want } 1 .. 2), 2,
   'each received ": ok" and the event, byte for byte';
# an application's response handed over (SSEHandover) on the same connection
my $hc = uniq_chan('h2cho');
my $ho = h2_get($h2, \%req, "/cgi/handover.cgi?channel=$hc");
my $app = ": hello from the app\n\n";
$pump->(10, sub { length $ho->{data} >= length($app . PREAMBLE) });
is join('|', $ho->{status} // '', $ho->{headers}{'x-app'} // '-',
        $ho->{headers}{'x-sse-channel'} // '-', $ho->{data}),
   join('|', 200, 'yes', '-', $app . PREAMBLE),
   'a handed-over response over h2c: the app\'s head and body, then ": ok"';
my(undef, $jh) = publish($hc, data => 'handed over');
my $want_ho = $app . PREAMBLE . ev(id => $jh->{id}, data => 'handed over');
$pump->(10, sub { $ho->{data} eq $want_ho });
is show($ho->{data}), show($want_ho), 'and then its events';
my($held) = Apache::TestRequest::GET('/server-status?auto')->content
    =~ /^SSEStreamsHeld: (\d+)$/m;
is $held, 3, '/server-status counts the three as held, not parked';
close $sock;
my $t0 = time;
ok wait_until(3, sub { my(undef, $x) = admin_get($h); $x->{subscribers} == 0 }),
   'the client goes away: count back to 0';
my $held_now;
ok wait_until(5, sub {
       ($held_now) = Apache::TestRequest::GET('/server-status?auto')->content
           =~ /^SSEStreamsHeld: (\d+)$/m;
       ($held_now // -1) == 0 }),
   'and no stream is held any more (' . ($held_now // '?') . ' after '
   . sprintf('%.2f', time - $t0) . ' s)';

# A child keeps a quarter of H2MaxWorkers (8: 2) from held streams: on one
# connection (one child) 6 are admitted, the 7th gets 503.  40 quick
# requests first: mod_http2 starts a connection with 6 requests at a time.
like log_line(qr/SSE00304/) // '', qr/and 6 over HTTP\/2 \(H2MaxWorkers 8, 2 kept free\)/,
     'start-up log: 6 HTTP/2 streams per child (H2MaxWorkers 8, 2 kept free)';
my $sock2 = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 10)
    or die "h2c connect: $!";
my $c2 = Protocol::HTTP2::Client->new(keepalive => 1);
my $pump2 = sub { h2_pump($sock2, $c2, @_) };
my $warm = 0;
for my $batch (1 .. 4) {
    $c2->request(%req, ':path' => "/index.html?w=$batch$_", on_done => sub { $warm++ })
        for 1 .. 10;
    $pump2->(20, sub { $warm == 10 * $batch });
}
my $f = uniq_chan('h2cfloor');
my %more = map { $_ => h2_get($c2, \%req, "/stream?channel=$f&n=$_") } 1 .. 7;
$pump2->(20, sub { 7 == grep { defined $_->{status} } values %more });
my($no) = grep { ($more{$_}{status} // '') eq '503' } keys %more;
$pump2->(5, sub { !$no || $more{$no}{data} =~ /\n/ });
is join(',', sort map { $more{$_}{status} // '-' } keys %more),
   join(',', ('200') x 6, '503'), "7 streams on one connection: 6 answer 200, one 503 (warm-up: $warm)";
like $no ? $more{$no}{data} : '', qr/H2MaxWorkers/,
     'refused for the child\'s floor of HTTP/2 workers';
close $sock2;
