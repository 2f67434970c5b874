# App hand-over (SSEHandover on): an application's response carrying
# X-SSE-Channel becomes a stream on those channels; its status, headers
# and body go first; the header itself never reaches the client.  With a
# CGI script (mod_cgid) and through mod_proxy_http.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 21;

my $APP = ": hello from the app\n\n";

# open a handed-over stream; returns it with its head read and the app's
# body plus the ": ok" preamble checked
sub handover {
    my($path, @h) = @_;
    my($s, $err) = SSETest::Stream->start($path, headers => \@h);
    die $err unless $s;
    $s->read_head(10);
    $s->wait_for(sub { length $s->{buf} >= length($APP . PREAMBLE) }, 10);
    $s->{start} = substr $s->{buf}, 0, length($APP . PREAMBLE), '';
    return $s;
}

for my $via (['/cgi/handover.cgi', 'CGI'], ['/app/handover.cgi', 'proxy']) {
    my($url, $name) = @$via;
    my $c = uniq_chan('ho');
    my $s = handover("$url?channel=$c");
    is $s->status, 200, "$name: 200";
    is join('|', map { $s->header($_) // '-' } qw(X-SSE-Channel X-App Content-Type Content-Length)),
       '-|yes|text/event-stream|-', "$name: app headers kept, X-SSE-Channel removed";
    is show($s->{start}), show($APP . PREAMBLE), "$name: the app's body, then the stream";
    my(undef, $j) = publish($c, data => "to $name");
    is $j->{subscribers}, 1, "$name: counted as a stream";
    is show($s->next_event(5)), show(ev(id => $j->{id}, data => "to $name")),
       "$name: receives the event";
    $s->disconnect;
}

# the application refuses: its 403 goes out as it is
my $r = raw_http(GET => '/cgi/handover.cgi?refuse=1');
is $r->code, 403, 'the app refuses: its 403 goes out';
like $r->content, qr/not for you/, 'with its body';

# the application picks the channel from its own session
my $s = handover('/app/handover.cgi', Cookie => 'session=alice');
my(undef, $j) = publish('user-alice', data => 'hi alice');
is $j->{subscribers}, 1, 'a session chose the channel user-alice';
is show($s->next_event(5)), show(ev(id => $j->{id}, data => 'hi alice')),
   'and the stream gets its events';
$s->disconnect;

# a bad channel from the application: 502, not a broken stream
$r = raw_http(GET => '/cgi/handover.cgi?channel=bad%20chan!');
is $r->code, 502, 'an invalid X-SSE-Channel: 502';
unlike $r->content, qr/hello from the app/, 'and not the app body';

# HEAD: the head of the stream, then nothing; no stream is left open
my $hc = uniq_chan('hohead');
$r = raw_http(HEAD => "/cgi/handover.cgi?channel=$hc");
is $r->code, 200, 'HEAD on a handed-over response: 200';
ok $r->wait_eof(5) && $r->{buf} eq '',
   'nothing after the head, and the connection ends ('
   . SSETest::show($r->{buf}) . ')';
my(undef, $hj) = admin_get($hc);
is $hj && $hj->{subscribers}, 0, 'and no stream was opened';

# without SSEHandover the header is the application's business
$r = raw_http(GET => '/backend/handover.cgi?channel=x');
is $r->code, 200, 'no hand-over where it is off: 200';
is $r->header('X-SSE-Channel'), 'x', 'and the header goes through';
