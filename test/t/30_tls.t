# Held streams: TLS (mod_ssl) over HTTP/1.1 and HTTP/2 (mod_http2).  Same
# wire format, ids, resume and counts as parked streams; a child keeps a
# quarter of mod_http2's workers from HTTP/2 ones (t/32_held_caps.t: the
# server-wide SSEMaxHeldStreams and the floor of threads); a client leaving
# lowers the count; a graceful restart ends them so old children can exit.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Spec ();
use Protocol::HTTP2::Client ();
use Time::HiRes qw(time);
use IO::Socket::SSL ();
use POSIX ();
use SSETest;

plan tests => 22;

my $port = Apache::Test::config()->{vhosts}{sse_tls}{port};
ok $port, "TLS virtual host on port " . ($port // '?');

# A raw TLS request, its answer read with the same helpers as plaintext
# streams (undef when the connection fails).
sub tls_request {
    my($path, @headers) = @_;
    my $sock = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $port, SSL_verify_mode => 0,
        SSL_alpn_protocols => ['http/1.1'], Timeout => 10)
        or return undef;
    my $req = "GET $path HTTP/1.1\r\nHost: localhost:$port\r\n";
    while (my($k, $v) = splice @headers, 0, 2) { $req .= "$k: $v\r\n" }
    print $sock "$req\r\n";
    return bless { sock => $sock, buf => '', eof => 0, path => $path,
                   method => 'GET' }, 'SSETest::Stream';
}

# A TLS event stream, its head and ": ok" read.
sub tls_stream {
    my $s = tls_request(@_) or return undef;
    $s->open_ok(5);
    return $s;
}

# 1. TLS, HTTP/1.1: headers and bytes as for a parked stream
my $c = uniq_chan('tls');
my $s = tls_stream("/stream?channel=$c");
ok $s && $s->{status} == 200 && $s->{preamble} eq PREAMBLE,
   'TLS stream: 200 and the ": ok" preamble';
is join('|', map { $s->header($_) // '-' }
        qw(Content-Type Cache-Control Transfer-Encoding Content-Length)),
   'text/event-stream|no-cache|-|-', 'TLS stream headers: no chunking, no length';
my(undef, $j) = publish($c, data => "line1\nline2", event => 'tick');
is $j->{subscribers}, 1, 'a publish on the plain port counts the TLS stream';
my($held) = Apache::TestRequest::GET('/server-status?auto')->content =~ /^SSEStreamsHeld: (\d+)$/m;
is $held, 1, '/server-status counts it as held (a worker thread), not parked';
is show($s->next_event(5)),
   show(ev(id => $j->{id}, event => 'tick', data => ['line1', 'line2'])),
   'the TLS stream receives it byte for byte';
$s->{sock}->close(SSL_no_shutdown => 1);
ok wait_until(3, sub { my(undef, $x) = admin_get($c); $x->{subscribers} == 0 }),
   'TLS client closes: count back to 0';

# 2. resume over TLS
my(undef, $j2) = publish($c, data => 'missed');
$s = tls_stream("/stream?channel=$c", 'Last-Event-ID' => $j->{id});
is show($s->next_event(5)), show(ev(id => $j2->{id}, data => 'missed')),
   'resume over TLS replays what was missed';
$s->{sock}->close(SSL_no_shutdown => 1);

# 2b. hand-over (SSEHandover) over TLS: the application's response becomes
#     a held stream, its head and body first
my $app = ": hello from the app\n\n";
sub tls_handover {
    my $s = tls_request(@_)
        or die "TLS connect: $! $IO::Socket::SSL::SSL_ERROR";
    $s->read_head(10);
    $s->wait_for(sub { length $s->{buf} >= length($app . PREAMBLE) }, 10);
    return $s;
}
my $hc = uniq_chan('tlsho');
my $ho = tls_handover("/cgi/handover.cgi?channel=$hc");
is join('|', $ho->status // '-', map { $ho->header($_) // '-' } qw(X-App X-SSE-Channel)),
   '200|yes|-', 'hand-over over TLS: 200, the app\'s header kept, X-SSE-Channel removed';
is show(substr $ho->{buf}, 0, length($app . PREAMBLE), ''), show($app . PREAMBLE),
   'the app\'s body, then ": ok"';
my(undef, $jh) = publish($hc, data => 'handed over');
is show($ho->next_event(5)), show(ev(id => $jh->{id}, data => 'handed over')),
   'the handed-over TLS stream receives its events (counted: ' . ($jh->{subscribers} // '?') . ')';
$ho->{sock}->close(SSL_no_shutdown => 1);
ok wait_until(3, sub { my(undef, $x) = admin_get($hc); $x->{subscribers} == 0 }),
   'its client closes: count back to 0';
# the same through the reverse proxy (the backend answers in plain HTTP)
my $pc = uniq_chan('tlsproxy');
my $po = tls_handover("/app/handover.cgi?channel=$pc");
is show(join '|', $po->status // '-', substr $po->{buf}, 0, length($app . PREAMBLE), ''),
   show(join '|', 200, $app . PREAMBLE), 'hand-over through mod_proxy over TLS: the app\'s answer, then ": ok"';
my(undef, $jp) = publish($pc, data => 'proxied');
is show($po->next_event(5)), show(ev(id => $jp->{id}, data => 'proxied')),
   'and then its events';
$po->{sock}->close(SSL_no_shutdown => 1);

# 3. HTTP/2: 7 streams on one connection, so in one child: H2MaxWorkers 8
#    less the child's floor of 2 admits 6 and refuses the 7th.  mod_http2
#    starts a connection with 6 requests at a time and raises that as
#    requests complete, so 40 quick requests go first, in batches, as a
#    browser loading a page would.
wait_until(5, sub { my($n) = Apache::TestRequest::GET('/server-status?auto')
                     ->content =~ /^SSEStreamsHeld: (\d+)$/m;
                     defined $n && $n == 0 });
my $h = uniq_chan('h2');
my $sock = IO::Socket::SSL->new(
    PeerAddr => '127.0.0.1', PeerPort => $port, SSL_verify_mode => 0,
    SSL_alpn_protocols => ['h2', 'http/1.1'], Timeout => 10)
    or die "h2 connect: $! $IO::Socket::SSL::SSL_ERROR";
SKIP: {
skip 'HTTP/2 is off with this MPM (mod_http2 does not run under prefork)', 6
    unless ($sock->alpn_selected // '') eq 'h2';
my $h2 = Protocol::HTTP2::Client->new(keepalive => 1);
my %req = (':scheme' => 'https', ':authority' => "localhost:$port",
           ':method' => 'GET');

my $pump = sub { h2_pump($sock, $h2, @_) };

my $warm = 0;
for my $batch (1 .. 4) {
    $h2->request(%req, ':path' => "/index.html?w=$batch$_", on_done => sub { $warm++ })
        for 1 .. 10;
    $pump->(20, sub { $warm == 10 * $batch });
}
is $warm, 40, 'HTTP/2 connection warmed up with 40 requests';
my %got = map { $_ => h2_get($h2, \%req, "/stream?channel=$h&n=$_") } 1 .. 7;
$pump->(20, sub { 7 == grep { defined $_->{status} } values %got });
# mod_http2 does not start streams in their order: any one may be refused
my @open = grep { ($got{$_}{status} // '') eq '200' } sort { $a <=> $b } keys %got;
my($no) = grep { ($got{$_}{status} // '') eq '503' } keys %got;
$pump->(5, sub { !$no || $got{$no}{data} =~ /\n/ });
is join(',', sort map { $got{$_}{status} // '-' } keys %got),
   join(',', ('200') x 6, '503'), '6 streams answer 200, the 7th 503';
like $no ? $got{$no}{data} : '', qr/H2MaxWorkers/,
   'refused for the child\'s floor of HTTP/2 workers';
my(undef, $j3) = publish($h, data => 'over h2');
is $j3->{subscribers}, 6, 'publish reaches the 6 HTTP/2 streams';
my $want = ev(id => $j3->{id}, data => 'over h2');
$pump->(10, sub { 6 == grep { $got{$_}{data} =~ /\Q$want\E/ } @open });
is scalar(grep { $got{$_}{data} eq PREAMBLE . $want } @open), 6,
   'each of the 6 received ": ok" and the event, byte for byte';
close $sock;
ok wait_until(3, sub { my(undef, $x) = admin_get($h); $x->{subscribers} == 0 }),
   'the HTTP/2 client goes away: count back to 0';
}

# 4. a graceful restart ends held streams, so old children can exit
my $g = tls_stream('/stream?channel=' . uniq_chan('tg'));
my $pidfile = File::Spec->catfile(Apache::Test::vars('t_logs'), 'httpd.pid');
open my $fh, '<', $pidfile or die "$pidfile: $!";
chomp(my $ppid = <$fh>);
ok kill('USR1', $ppid), 'graceful restart';
ok $g->wait_eof(8), 'the held TLS stream ends';
wait_until(10, sub { Apache::TestRequest::GET('/index.html')->code == 200 });
