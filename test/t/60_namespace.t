# Who can read what (t/conf/namespace.conf.in): namespaces keep the
# channels of two virtual hosts apart (events, history, counts, listing,
# DELETE), SSENamespace joins or splits them; protected channels (@...)
# are served only by a location that computes them with SSEChannel and says
# SSEProtectedChannels on; a publish location refuses a POST or DELETE that
# carries credentials from another site's page (CSRF).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Spec ();
use MIME::Base64 ();
use SSETest;

plan tests => 107;

# The virtual hosts a, b (a namespace each), c, d (one shared namespace).
my %port = (main => SSETest::port());
$port{$_} = Apache::Test::config()->{vhosts}{"sse_ns_$_"}{port} for qw(a b c d);
ok !(grep { !$port{$_} } qw(a b c d)),
   'four virtual hosts with their own ports: '
   . join(', ', map { "$_=" . ($port{$_} // '?') } qw(a b c d));

# Run $code with SSETest's raw connections going to the port of $v, so
# open_stream() and raw_http() talk to that virtual host (Host: 127.0.0.1:
# its port).
sub on_host {
    my($v, $code) = @_;
    my $p = $port{$v} or die "no port for $v";
    no warnings 'redefine';
    local *SSETest::port = sub { $p };
    return $code->();
}

# An event stream on virtual host $v, its head and ": ok" read.
sub vstream {
    my($v, $path, %o) = @_;
    return on_host($v, sub { open_stream($path, %o) });
}

# One raw request to virtual host $v; the answer is read whole
# (->code, ->content, ->header).
sub vhttp {
    my($v, $method, $path, %o) = @_;
    return on_host($v, sub { raw_http($method, $path, %o) });
}

sub form {
    my @f = @_;
    return join '&', map { esc($f[2 * $_]) . '=' . esc($f[2 * $_ + 1]) } 0 .. $#f / 2;
}

# Publish on virtual host $v: (answer, decoded JSON).
sub vpub {
    my($v, $chan, $data, %o) = @_;
    my $res = vhttp($v, 'POST', $o{url} || '/pub',
        headers => ['Content-Type' => 'application/x-www-form-urlencoded',
                    @{ $o{headers} || [] }],
        body => form(channel => $chan, data => $data));
    return ($res, decode_json_res($res));
}

sub vadmin_get {
    my($v, $chan, $url) = @_;
    $url ||= '/pub';
    $url .= '?channel=' . esc($chan) if defined $chan;
    my $res = vhttp($v, 'GET', $url);
    return ($res, decode_json_res($res));
}

sub vadmin_delete {
    my($v, $chan, @headers) = @_;
    my $res = vhttp($v, 'DELETE', '/pub?channel=' . esc($chan),
                    headers => \@headers);
    return ($res, decode_json_res($res));
}

# The entries for $chan in a GET /pub listing.
sub listed {
    my($j, $chan) = @_;
    return () unless ref $j eq 'HASH' && ref $j->{channels} eq 'ARRAY';
    return grep { ref $_ eq 'HASH' && ($_->{channel} // '') eq $chan }
           @{ $j->{channels} };
}

sub opened { !(grep { !$_ || ($_->{preamble} // '') ne PREAMBLE } @_) }

sub status_of {
    my $s = shift;
    return $s ? ($s->{status} // 'none') : 'no connection';
}

# A refusal as the spec says: this status, text/plain.
sub refused {
    my($r, $code) = @_;
    return ($r->code // 0) == $code
        && ($r->header('Content-Type') // '') =~ m{^text/plain\b};
}

# What make reliability reports (test/fault/report.pl): what crossed a
# boundary it must not cross, counted from the observations below.
my %iso = (events => 2, map { $_ => 0 } qw(crossed counts_crossed resume_crossed conns_crossed
    closed_crossed shared_got shared_sent split_crossed own_got sent bob_got
    refused forged_delivered accepted));

# What $s got within $t seconds that it must not have; counted in $key.
sub nothing {
    my($st, $t, $key) = @_;
    my $got = $st->pending($t);
    $iso{$key}++ if $got ne '';
    return $got;
}


# ---------------------------------------------------------------------------
# a) one channel name on two virtual hosts is two channels
# ---------------------------------------------------------------------------
my $x = uniq_chan('ns');
my %s = map { $_ => vstream($_, "/stream?channel=$x") } qw(a b);
ok opened($s{a}, $s{b}), "streams on $x open on a.example and b.example"
    or diag 'a: ' . status_of($s{a}) . ', b: ' . status_of($s{b});

my($r, $j) = vpub('a', $x, 'from a');
$iso{counts_crossed}++ if ref $j eq 'HASH' && ($j->{subscribers} // 0) > 1;
is $r->code, 200, 'publish on a.example: 200';
is join('; ', check_pub($j, $x, 1)), '',
   'its answer: the channel, an id, 1 subscriber (b.example\'s not counted)';
is show($s{a}->next_event(5)), show(ev(id => $j->{id}, data => 'from a')),
   'a.example\'s stream receives it';
is show(nothing($s{b}, 0.5, 'crossed')), show(''), 'b.example\'s stream receives nothing';

($r, $j) = vpub('b', $x, 'from b');
$iso{counts_crossed}++ if ref $j eq 'HASH' && ($j->{subscribers} // 0) > 1;
is join('; ', check_pub($j, $x, 1)), '', 'publish on b.example: 1 subscriber';
is show($s{b}->next_event(5)), show(ev(id => $j->{id}, data => 'from b')),
   'b.example\'s stream receives it';
is show(nothing($s{a}, 0.5, 'crossed')), show(''), 'a.example\'s stream receives nothing';

for my $v (qw(a b)) {
    my($res, $l) = vadmin_get($v);
    $iso{counts_crossed}++ if grep { ($_->{subscribers} // 0) > 1 } listed($l, $x);
    is_deeply [listed($l, $x)], [{ channel => $x, subscribers => 1 }],
        "GET /pub on $v.example lists $x once, with 1 subscriber"
        or diag show($res->content);
}
{
    my($res, $l) = admin_get();
    is scalar(listed($l, $x)), 0, 'GET /pub on the main server (localhost) does not list it'
        or diag show($res->content);
}
for my $v (qw(a b)) {
    my($res, $c) = vadmin_get($v, $x);
    $c = {} unless ref $c eq 'HASH';
    $iso{conns_crossed}++ if ref $c->{connections} eq 'ARRAY' && @{ $c->{connections} } > 1;
    is join('|', $c->{channel} // '-', $c->{subscribers} // '-',
            ref $c->{connections} eq 'ARRAY' ? scalar @{ $c->{connections} } : '-'),
       "$x|1|1", "GET /pub?channel=$x on $v.example: 1 subscriber, 1 connection"
        or diag show($res->content);
}
{
    my($res, $c) = admin_get($x);
    is $c->{subscribers} // '-', 0, 'and on the main server: 0'
        or diag show($res->content);
}

($r, $j) = vadmin_delete('a', $x);
$iso{closed_crossed}++ if ref $j eq 'HASH' && ($j->{closed} // 0) > 1;
is_deeply $j, { channel => $x, closed => 1 }, 'DELETE on a.example closes 1 stream'
    or diag show($r->content);
ok $s{a}->wait_eof(3), 'a.example\'s stream ends';
($r, $j) = vpub('b', $x, 'b still here');
is show($s{b}->next_event(5)), show(ev(id => $j->{id}, data => 'b still here')),
   'b.example\'s stream stays open and receives b.example\'s next event';
ok !$s{b}{eof}, 'and is not closed';
$iso{closed_crossed}++ if $s{b}{eof};
my $line;
wait_until(3, sub { $line = log_line(qr{SSE00101: stream ended: channels=a\.example/\Q$x\E }) });
like $line // '', qr/reason=channel deleted/,
     'the error log names a.example\'s stream by its key a.example/name';
$s{b}->disconnect;

# ---------------------------------------------------------------------------
# b) history and resume stay in their namespace (ids are server-wide)
# ---------------------------------------------------------------------------
my $h = uniq_chan('nshist');
my(undef, $h1) = vpub('a', $h, 'a1');
my(undef, $h2) = vpub('a', $h, 'a2');
ok ref $h1 eq 'HASH' && ref $h2 eq 'HASH' && $h1->{id} && $h2->{id} && $h2->{id} > $h1->{id},
   'two events published on a.example (ids ' . ($h1->{id} // '?') . ', '
   . ($h2->{id} // '?') . ')';
my $sb = vstream('b', "/stream?channel=$h", headers => ['Last-Event-ID' => $h1->{id}]);
ok opened($sb), 'b.example: a stream resuming after a.example\'s first id opens'
    or diag status_of($sb);
is show(nothing($sb, 0.5, 'resume_crossed')), show(''), 'it gets none of a.example\'s events';
my(undef, $hb) = vpub('b', $h, 'b1');
is show($sb->next_event(5)), show(ev(id => $hb->{id}, data => 'b1')),
   'then b.example\'s new event, as usual';
$sb->disconnect;
my $sa = vstream('a', "/stream?channel=$h", headers => ['Last-Event-ID' => $h1->{id}]);
ok opened($sa), 'a.example: a stream resuming after the same id opens'
    or diag status_of($sa);
is show($sa->next_event(5)), show(ev(id => $h2->{id}, data => 'a2')),
   'it gets a.example\'s second event';
is show(nothing($sa, 0.5, 'resume_crossed')), show(''), 'and nothing of b.example\'s (published after that id)';
$sa->disconnect;

# ---------------------------------------------------------------------------
# c) SSENamespace: c.example and d.example share; /a-admin/ splits a.example
# ---------------------------------------------------------------------------
my $sh = uniq_chan('shared');
my %t = map { $_ => vstream($_, "/stream?channel=$sh") } qw(c d b);
ok opened(@t{qw(c d b)}), "streams on $sh open on c, d and b.example";
($r, $j) = vpub('c', $sh, 'from c');
is join('; ', check_pub($j, $sh, 2)), '',
   'publish on c.example: 2 subscribers (c and d, namespace "shared")';
my $got = $t{d}->next_event(5);
$iso{shared_sent}++;
$iso{shared_got}++ if ($got // '') eq ev(id => $j->{id}, data => 'from c');
is show($got), show(ev(id => $j->{id}, data => 'from c')),
   'd.example\'s stream receives c.example\'s event';
is show($t{c}->next_event(5)), show(ev(id => $j->{id}, data => 'from c')),
   'so does c.example\'s';
is show(nothing($t{b}, 0.5, 'crossed')), show(''), 'b.example\'s does not';
($r, $j) = vpub('d', $sh, 'from d');
is join('; ', check_pub($j, $sh, 2)), '', 'publish on d.example: 2 subscribers';
$got = $t{c}->next_event(5);
$iso{shared_sent}++;
$iso{shared_got}++ if ($got // '') eq ev(id => $j->{id}, data => 'from d');
is show($got), show(ev(id => $j->{id}, data => 'from d')),
   'c.example\'s stream receives d.example\'s event';
{
    my($res, $l) = vadmin_get('d');
    is_deeply [listed($l, $sh)], [{ channel => $sh, subscribers => 2 }],
        'GET /pub on d.example lists the shared channel with 2 subscribers'
        or diag show($res->content);
}
($r, $j) = vadmin_delete('d', $sh);
is_deeply $j, { channel => $sh, closed => 2 }, 'DELETE on d.example closes both shared streams'
    or diag show($r->content);
ok $t{c}->wait_eof(3) && $t{d}->wait_eof(3), 'c.example\'s and d.example\'s streams end';
($r, $j) = vpub('b', $sh, 'b alone');
is show($t{b}->next_event(5)), show(ev(id => $j->{id}, data => 'b alone')),
   'b.example\'s stream is still open';
wait_until(3, sub { $line = log_line(qr{SSE00101: stream ended: channels=shared/\Q$sh\E }) });
ok $line, 'the error log names the shared streams shared/name';
$t{b}->disconnect;

my $ad = uniq_chan('split');
my $plain = vstream('a', "/stream?channel=$ad");
my $adm = vstream('a', "/a-admin/stream?channel=$ad");
ok opened($plain, $adm), "a.example: $ad open on /stream and /a-admin/stream";
($r, $j) = vpub('a', $ad, 'admin only', url => '/a-admin/pub');
is join('; ', check_pub($j, $ad, 1)), '', 'publish on /a-admin/pub: 1 subscriber';
is show($adm->next_event(5)), show(ev(id => $j->{id}, data => 'admin only')),
   '/a-admin/stream receives it';
is show(nothing($plain, 0.5, 'split_crossed')), show(''), '/stream (namespace a.example) does not';
($r, $j) = vpub('a', $ad, 'site only');
is join('; ', check_pub($j, $ad, 1)), '', 'publish on /pub: 1 subscriber';
is show($plain->next_event(5)), show(ev(id => $j->{id}, data => 'site only')),
   '/stream receives it';
is show(nothing($adm, 0.5, 'split_crossed')), show(''), '/a-admin/stream does not';
close_all($plain, $adm);

# ---------------------------------------------------------------------------
# d) protected channels
# ---------------------------------------------------------------------------
sub basic { ('Authorization' => 'Basic ' . MIME::Base64::encode_base64("$_[0]:$_[0]-secret", '')) }

$r = raw_http('GET', '/stream?channel=@user-alice');
$iso{query_status} = $r->code;
ok refused($r, 403), '/stream?channel=@user-alice: 403 text/plain'
    or diag "$r->{status_line} " . show($r->content);
$r = raw_http('GET', '/events/@user-alice');
$iso{url_status} = $r->code;
ok refused($r, 403), '/events/@user-alice (SSEChannel copies the URL): 403 text/plain'
    or diag "$r->{status_line} " . show($r->content);
$r = vhttp('a', 'GET', '/stream?channel=@user-alice');
ok refused($r, 403), 'a.example\'s /stream?channel=@user-alice: 403 too'
    or diag "$r->{status_line} " . show($r->content);
$r = raw_http('GET', '/me/events');
$iso{anon_status} = $r->code;
is $r->code, 401, '/me/events without credentials: 401';
my $alice = open_stream('/me/events', headers => [basic('alice')]);
ok opened($alice), '/me/events as alice: 200 and ": ok"' or diag status_of($alice);
$iso{own_status} = $alice ? $alice->{status} // 0 : 0;
is $alice && $alice->header('Content-Type'), 'text/event-stream', 'an event stream';
my $bob = open_stream('/me/events', headers => [basic('bob')]);
ok opened($bob), '/me/events as bob: open' or diag status_of($bob);
($r, $j) = publish('@user-alice', data => 'for alice only');
is join('; ', check_pub($j, '@user-alice', 1)), '',
   'publish to @user-alice through /pub: 1 subscriber' or diag show($r->content);
$got = $alice->next_event(5);
$iso{sent}++;
$iso{own_got}++ if ($got // '') eq ev(id => $j->{id}, data => 'for alice only');
is show($got), show(ev(id => $j->{id}, data => 'for alice only')),
   'alice receives it';
is show(nothing($bob, 0.5, 'bob_got')), show(''), 'bob does not';
($r, $j) = publish('@user-bob', data => 'for bob');
is show($bob->next_event(5)), show(ev(id => $j->{id}, data => 'for bob')),
   'bob receives @user-bob\'s';
close_all($alice, $bob);
$r = raw_http('GET', '/me/unprotected', headers => [basic('alice')]);
$iso{unmarked_status} = $r->code;
ok refused($r, 403), 'the same location without SSEProtectedChannels on: 403 for alice'
    or diag "$r->{status_line} " . show($r->content);

my $news = uniq_chan('news');
my $ns = open_stream("/stream?channel=$news");
ok opened($ns), "a stream on $news opens";
$r = raw_http('GET', "/stream?channel=$news,\@user-alice");
ok refused($r, 403), "/stream?channel=$news,\@user-alice: 403 text/plain"
    or diag "$r->{status_line} " . show($r->content);
{
    my($res, $c) = admin_get($news);
    is $c->{subscribers} // '-', 1, "the refused request is not subscribed to $news (still 1)"
        or diag show($res->content);
}
($r, $j) = publish($news, data => 'news');
is join('; ', check_pub($j, $news, 1)), '', "a publish to $news counts 1 subscriber";
$ns->disconnect;

# a user name cannot add a channel to SSEChannel's list
for my $who ('mallory,@user-alice', 'eve @user-alice') {
    my($u) = $who =~ /^(\w+)/;
    my $hdr = 'Basic ' . MIME::Base64::encode_base64("$who:$u-secret", '');
    $r = raw_http('GET', '/me/events', headers => [Authorization => $hdr]);
    $iso{injected_status} = $r->code if $r->code != 400 || !defined $iso{injected_status};
    ok refused($r, 400) && $r->content =~ /not one channel name/,
       "a user called '$who': 400, the item gives not one channel name"
        or diag "$r->{status_line} " . show($r->content);
}

# SSEProtectedChannels on is not inherited by a section with its own SSEChannel
{
    my $own = open_stream('/inherit', headers => [basic('alice')]);
    ok opened($own), '/inherit as alice: her own channel, 200';
    close_all($own) if $own;
    $r = raw_http('GET', '/inherit/ch/@user-bob', headers => [basic('alice')]);
    $iso{inherited_status} = $r->code;
    ok refused($r, 403), '/inherit/ch/@user-bob (its own SSEChannel, from the URL): 403'
        or diag "$r->{status_line} " . show($r->content);
}

# a hand-over of a protected channel needs SSEProtectedChannels on there
{
    $r = raw_http('GET', '/cgi/handover.cgi?channel=@user-alice');
    $iso{handover_status} = $r->code;
    ok $r->code == 403 && $r->content =~ /protected/,
       'hand-over of @user-alice where SSEProtectedChannels is off: 403'
        or diag "$r->{status_line} " . show($r->content);
    my $h = open_stream('/cgi-protected/handover.cgi?channel=@user-alice');
    ok $h && $h->{status} == 200, 'where it is on: the stream opens'
        or diag status_of($h);
    my($res, $pj) = publish('@user-alice', data => 'to the app stream');
    like $h ? $h->pending(3) : '', qr/data: to the app stream/,
         'and gets the protected channel\'s event';
    close_all($h) if $h;
}

# ---------------------------------------------------------------------------
# e) CSRF on publish locations
# ---------------------------------------------------------------------------
my $own = 'http://' . SSETest::host() . ':' . SSETest::port();
my $evil = 'http://evil.example';
my $cs = uniq_chan('csrf');
my $st = open_stream("/stream?channel=$cs");
ok opened($st), "a stream on $cs";

# POST to the main server with these headers; (answer, JSON)
sub post {
    my($url, $data, @headers) = @_;
    my $res = raw_http('POST', $url,
        headers => ['Content-Type' => 'application/x-www-form-urlencoded', @headers],
        body => form(channel => $cs, data => $data));
    return ($res, decode_json_res($res));
}

# refused: 403 text/plain and the stream gets nothing
sub post_refused {
    my($what, $url, @headers) = @_;
    my($res) = post($url, $what, @headers);
    $iso{refused}++ if refused($res, 403);
    ok refused($res, 403), "$what: 403 text/plain"
        or diag "$res->{status_line} " . show($res->content);
    is show(nothing($st, 0.3, 'forged_delivered')), show(''), "$what: nothing published";
}

# accepted: 200 and the stream gets the event
sub post_ok {
    my($what, $url, @headers) = @_;
    my($res, $pj) = post($url, $what, @headers);
    $iso{accepted}++ if $res->code == 200;
    is join('; ', $res->code, check_pub($pj, $cs, 1)), '200', "$what: 200, published"
        or diag show($res->content);
    is show($st->next_event(5)), show(ev(id => $pj->{id} // '?', data => $what)),
       "$what: delivered";
}

post_refused('cookie, Origin evil', '/pub', Cookie => 'sid=1', Origin => $evil);
post_ok('cookie, own Origin', '/pub', Cookie => 'sid=1', Origin => $own);
# no credentials: the browser's address is one too (Require local, ip)
post_refused('no credentials, Origin evil', '/pub', Origin => $evil);
post_ok('no credentials, neither Origin nor Referer (not a browser)', '/pub');
post_refused('Authorization, Origin evil', '/pub', basic('alice'), Origin => $evil);
post_refused('cookie, Referer evil', '/pub', Cookie => 'sid=1', Referer => "$evil/page");
post_ok('cookie, own Referer', '/pub', Cookie => 'sid=1', Referer => "$own/page.html");
post_refused('cookie, Origin null', '/pub', Cookie => 'sid=1', Origin => 'null');
post_ok('cookie, neither Origin nor Referer', '/pub', Cookie => 'sid=1');
post_refused('cookie, Origin https://app.example.com on /pub', '/pub',
             Cookie => 'sid=1', Origin => 'https://app.example.com');

# the own origin is the one of the Host the request named (LWP sends
# Host: servername:port)
{
    my $hp = Apache::TestRequest::hostport();
    my $res = Apache::TestRequest::POST('/pub', Cookie => 'sid=1',
        Origin => "http://$hp", content => form(channel => $cs, data => 'lwp'));
    my $pj = decode_json_res($res);
    is join('; ', $res->code, check_pub($pj, $cs, 1)), '200',
       "cookie, Origin http://$hp with Host: $hp: 200" or diag show($res->content);
    is show($st->next_event(5)), show(ev(id => $pj->{id} // '?', data => 'lwp')),
       'delivered';
}

# DELETE
{
    my $res = raw_http('DELETE', '/pub?channel=' . esc($cs),
                       headers => [Cookie => 'sid=1', Origin => $evil]);
    ok refused($res, 403), 'DELETE with cookie, Origin evil: 403 text/plain'
        or diag "$res->{status_line} " . show($res->content);
    my($pr, $pj) = post('/pub', 'after DELETE');
    is show($st->next_event(5)), show(ev(id => $pj->{id} // '?', data => 'after DELETE')),
       'the stream stays open';
}

post_ok('/pub-origins: cookie, Origin https://app.example.com', '/pub-origins',
        Cookie => 'sid=1', Origin => 'https://app.example.com');
post_ok('/pub-origins: cookie, own Origin', '/pub-origins',
        Cookie => 'sid=1', Origin => $own);
post_refused('/pub-origins: cookie, Origin evil', '/pub-origins',
             Cookie => 'sid=1', Origin => $evil);

# docs/access.md's Require ip + shared secret header (behind a local proxy)
{
    my($res) = post('/pub-secret', 'no key');
    is $res->code, 403, '/pub-secret without X-Publish-Key: 403';
    is show($st->pending(0.3)), show(''), '/pub-secret without the key: nothing published';
    ($res) = post('/pub-secret', 'bad key', 'X-Publish-Key' => 'guess');
    is $res->code, 403, '/pub-secret with a wrong key: 403';
}
post_ok('/pub-secret: the right key', '/pub-secret', 'X-Publish-Key' => 'test-secret-123');

{
    my $res = raw_http('DELETE', '/pub?channel=' . esc($cs),
                       headers => [Cookie => 'sid=1', Origin => $own]);
    is_deeply decode_json_res($res), { channel => $cs, closed => 1 },
        'DELETE with cookie, own Origin: closes the stream'
        or diag show($res->content);
    ok $st->wait_eof(3), 'the stream ends';
}

printf "# RELIABILITY %s %s\n", $_->[0], join ' ', map { "$_=" . ($iso{$_} // -1) } @{ $_->[1] }
    for [ns_vhosts => [qw(events crossed counts_crossed resume_crossed conns_crossed closed_crossed)]],
        [ns_shared => [qw(shared_got shared_sent split_crossed)]],
        [ns_protected => [qw(query_status url_status unmarked_status anon_status own_status own_got sent bob_got
                             injected_status inherited_status handover_status)]],
        [ns_csrf => [qw(refused forged_delivered accepted)]];
