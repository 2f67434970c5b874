# SSESubscriberJWT (t/conf/mercure.conf.in, /tokstream): a native stream
# location that takes only a token whose mercure.subscribe claim allows
# each of its channels -- the hub's token, in the cookie, the query field or
# the Authorization header -- so an application authorizes a browser
# without the hand-over round trip.  Over TLS (a held stream) too: a
# refused request gets its answer and nothing of the channel after it.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use File::Spec ();
use IO::Socket::SSL ();
use SSETest;

plan tests => 21;

my $SECRET = '!ChangeThisMercureHubJWTSecretKey!';
sub jwt { hs256_jwt($_[0], $_[1] // $SECRET) }
sub tok { jwt({ mercure => { subscribe => $_[0] }, %{ $_[1] // {} } }) }

my $u1 = uniq_chan('user1');
my $u2 = uniq_chan('user2');
my $path = sub { '/tokstream?channel=' . join(',', @_) };

my $r = raw_http('GET', $path->($u1));
is $r->code, 401, 'no token: 401';
like $r->header('WWW-Authenticate') // '', qr/^Bearer/, '... with a Bearer challenge';

my $s = open_stream($path->($u1), headers => [Cookie => 'mercureAuthorization=' . tok([$u1])]);
is $s->status, 200, 'a token in the cookie whose claim names the channel: a stream';
my($res, $o) = publish($u1, data => 'for user 1');
is $s->next_event(5), ev(id => $o->{id}, data => 'for user 1'), '... that gets the channel\'s events';
$s->disconnect;

$r = raw_http('GET', $path->($u2), headers => [Cookie => 'mercureAuthorization=' . tok([$u1])]);
is $r->code, 403, 'a channel the claim does not allow: 403';
$r = raw_http('GET', $path->($u1, $u2), headers => [Authorization => 'Bearer ' . tok([$u1])]);
is $r->code, 403, 'two channels, the claim allows one: 403';
$r = raw_http('GET', $path->($u1), headers => [Cookie => 'mercureAuthorization=' . tok([$u1], { exp => time - 10 })]);
is $r->code, 401, 'an expired token: 401';
$r = raw_http('GET', $path->($u1), headers => [Cookie => 'mercureAuthorization=' . jwt({ mercure => { subscribe => [$u1] } }, 'other key')]);
is $r->code, 401, 'a token signed with another key: 401';

my $qtok = tok(['user-{id}']);
my $tname = 'user-' . int(rand 1e9);
$s = open_stream('/tokstream?channel=' . $tname . '&authorization=' . esc($qtok));
is $s->status, 200, 'a template claim (user-{id}) in the query field allows user-N';
$s->disconnect;
$r = raw_http('GET', '/tokstream?channel=admin-' . int(rand 1e9) . '&authorization=' . esc($qtok));
is $r->code, 403, '... and not admin-N';
my $log = File::Spec->catfile(Apache::Test::vars('t_logs'), 'access_log');
my $txt = '';
for (1 .. 20) {
    open my $fh, '<', $log or last;
    $txt = do { local $/; <$fh> };
    last if index($txt, "channel=$tname&authorization=***") >= 0;
    select undef, undef, undef, 0.1;
}
ok index($txt, "channel=$tname&authorization=***") >= 0, 'the access log shows the query token as ***';
ok index($txt, $qtok) < 0, '... never the token';

$s = open_stream($path->($u1, $u2), headers => [Authorization => 'Bearer ' . tok(['*'])]);
is $s->status, 200, 'a * claim allows any channels';
$s->disconnect;

$s = open_stream($path->($u1, '*private*'), headers => [Cookie => 'mercureAuthorization=' . tok([$u1])]);
is $s->status, 200, 'the private channel (a fresh name) needs no claim';
$s->disconnect;

$r = raw_http('GET', '/stream?channel=' . $u2);
is $r->code, 200, 'a location without SSESubscriberJWT is unchanged';

# Over TLS the stream is held (its worker serves it): a 401 or 403 is the
# whole answer, never followed by the channel's events.
{
    my $port = Apache::Test::config()->{vhosts}{sse_tls}{port};
    my $tls = sub {
        my($p, @h) = @_;
        my $sock = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $port,
            SSL_verify_mode => 0, SSL_alpn_protocols => ['http/1.1'], Timeout => 10)
            or return undef;
        my $req = "GET $p HTTP/1.1\r\nHost: localhost:$port\r\nConnection: close\r\n";
        while (my($k, $v) = splice @h, 0, 2) { $req .= "$k: $v\r\n" }
        print $sock "$req\r\n";
        my $s = bless { sock => $sock, buf => '', eof => 0, path => $p,
                        method => 'GET' }, 'SSETest::Stream';
        $s->read_head(5);
        return $s;
    };
    my $chan = uniq_chan('tlstok');
    my $no = $tls->($path->($chan));
    my $other = $tls->($path->($chan), Authorization => 'Bearer ' . tok([$u1]));
    is $no && $no->status, 401, 'over TLS, no token: 401';
    is $other && $other->status, 403, 'over TLS, a token for another channel: 403';
    my(undef, $o) = publish($chan, data => 'not for them');
    for ([$no, 'no token'], [$other, 'another channel']) {
        my($s, $what) = @$_;
        ok $s && $s->wait_eof(5), "... $what: the connection ends after the answer";
        ok $s && index($s->{buf}, 'not for them') < 0 && index($s->{buf}, ': ok') < 0,
           "... $what: no stream, no event" or diag show($s && $s->{buf});
    }
}
