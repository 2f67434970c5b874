# The Mercure hub (t/conf/mercure.conf.in): subscribing with each kind of
# topic selector, publishing with tokens (and every refusal: no token, a
# bad signature, expired, alg none, a topic the token does not cover, a
# cookie from another site), private updates reaching only the subscribers
# whose token allows them, tokens in each place, reconciliation, CORS,
# discovery and the hub's channel being out of reach of native streams.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use File::Spec ();
use File::Temp ();
use JSON::PP ();
use MIME::Base64 ();
use IO::Socket::INET ();
use IO::Socket::SSL ();
use Socket qw(pack_sockaddr_in inet_aton);
use SSETest;

plan tests => 82;

my $HUB = '/.well-known/mercure';
my $SECRET = '!ChangeThisMercureHubJWTSecretKey!';
my $json = JSON::PP->new->canonical;
my $run = $$ . int(rand 1e6);        # topics no other run uses

sub b64 { MIME::Base64::encode_base64url($_[0]) }

# A JWT with these claims: HS256 with $o{key} (default the hub's secret),
# or alg none, or RS256 signed by openssl with the test's private key.
sub jwt {
    my($claims, %o) = @_;
    my $alg = $o{alg} // 'HS256';
    my $h = b64($json->encode({ alg => $alg, typ => 'JWT' }));
    my $p = b64($json->encode($claims));
    return "$h.$p." if $alg eq 'none';
    if ($alg eq 'RS256') {
        my $dir = File::Spec->catdir(Apache::Test::vars('t_conf'), 'jwt');
        my $tmp = File::Temp->new;
        print $tmp "$h.$p";
        close $tmp;
        my $sig = `openssl dgst -sha256 -sign $dir/rs256.key $tmp`;
        return "$h.$p." . b64($sig);
    }
    return hs256_jwt($claims, $o{key} // $SECRET, $alg);
}
sub pub_token { jwt({ mercure => { publish => $_[0] // ['*'] }, %{ $_[1] // {} } }) }
sub sub_token { jwt({ mercure => { subscribe => $_[0] } }) }

sub form {
    my @f = @_;
    return join '&', map { esc($f[2 * $_]) . '=' . esc($f[2 * $_ + 1]) } 0 .. $#f / 2;
}

# POST an update: (answer). $o{token} (default: may publish anything),
# $o{headers} more headers, $o{ctype}.
sub publish_update {
    my($fields, %o) = @_;
    my $tok = exists $o{token} ? $o{token} : pub_token();
    return raw_http('POST', $o{url} // $HUB, body => form(@$fields),
        headers => [
            'Content-Type' => $o{ctype} // 'application/x-www-form-urlencoded',
            (defined $tok ? (Authorization => "Bearer $tok") : ()),
            @{ $o{headers} || [] } ]);
}

# A subscriber: GET the hub with these topic selectors (and query fields),
# its head and ": ok" read.
sub subscribe {
    my($topics, %o) = @_;
    my $q = join '&', (map { 'topic=' . esc($_) } @$topics), @{ $o{query} || [] };
    return open_stream(($o{url} // $HUB) . "?$q", headers => $o{headers} || []);
}

# The next event of $s within $t seconds, as a hash of its fields.
sub next_update {
    my($s, $t) = @_;
    my $b = $s->next_event($t // 5) // return undef;
    my %e;
    for (split /\n/, $b) {
        my($k, $v) = /^([a-z]+): ?(.*)$/ or next;
        $e{$k} = exists $e{$k} && $k eq 'data' ? "$e{$k}\n$v" : $v;
    }
    return \%e;
}

my $book = "https://example.com/books/$run";

# --- 1. publish and subscribe, exact topic -------------------------------------
{
    my $s = subscribe([$book]);
    is $s->status, 200, 'an anonymous subscriber gets a stream (MercureAnonymous on)';
    my $r = publish_update([topic => $book, data => 'hello', type => 'book']);
    is $r->code, 200, 'a publish with a token answers 200';
    like $r->content, qr/\Aurn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\z/,
        'the answer is the generated id, urn:uuid: (version 4), nothing else';
    like $r->header('Content-Type') // '', qr{^text/plain}, 'as text/plain';
    my $b = $s->next_event(5) // '';
    is $b, "id: " . $r->content . "\nevent: book\ndata: hello\n\n",
        'the subscriber gets the update byte for byte (id, type as event, data)';
    $r = publish_update([topic => $book, data => "two\nlines", id => "book-$run-2", retry => 1500]);
    is $r->content, "book-$run-2", 'a publisher-given id is the answer';
    is $s->next_event(5), "id: book-$run-2\nretry: 1500\ndata: two\ndata: lines\n\n",
        'with retry and a two-line data';
    $s->disconnect;
}

# --- 2. refusals: nothing is published ----------------------------------------
{
    my $s = subscribe([$book]);
    my @cases = (
        [ 'no token',                 undef,                                        401 ],
        [ 'a wrong signature',        jwt({ mercure => { publish => ['*'] } }, key => 'wrong'), 401 ],
        [ 'an expired token',         pub_token(['*'], { exp => time - 60 }),        401 ],
        [ 'a token not valid yet',    pub_token(['*'], { nbf => time + 600 }),       401 ],
        [ 'alg none',                 jwt({ mercure => { publish => ['*'] } }, alg => 'none'), 401 ],
        [ 'no publish claim',         sub_token(['*']),                              401 ],
        [ 'a claim for other topics', pub_token(['https://example.com/authors/{id}']), 403 ],
        [ 'garbage',                  'not.a.jwt',                                   401 ],
    );
    for my $c (@cases) {
        my $r = publish_update([topic => $book, data => "refused: $c->[0]"], token => $c->[1]);
        is $r->code, $c->[2], "publish with $c->[0]: $c->[2]";
    }
    my $r = publish_update([topic => $book, data => 'x'], ctype => 'text/plain');
    is $r->code, 415, 'a body that is not a form: 415';
    $r = publish_update([data => 'no topic']);
    is $r->code, 400, 'no topic: 400';
    $r = publish_update([topic => "bad\x01topic", data => 'x']);
    is $r->code, 400, 'a topic with a control byte: 400';
    $r = publish_update([topic => $book, data => 'x', id => "a\nb"]);
    is $r->code, 400, 'an id with a line break: 400';
    $r = publish_update([topic => $book, data => 'x', retry => 'soon']);
    is $r->code, 400, 'a retry that is not a number: 400';
    my $t = pub_token([$book]);
    $r = publish_update([topic => $book, topic => "$book/other", data => 'x'], token => $t);
    is $r->code, 403, 'a token that covers one topic of two: 403';
    $r = publish_update([topic => $book, data => 'after the refusals'], token => $t);
    is $r->code, 200, 'a token for exactly that topic: 200';
    is((next_update($s) // {})->{data}, 'after the refusals',
       'the subscriber got none of the refused updates, then the good one');
    $s->disconnect;
}

# --- 3. selectors: URI templates, *, one delivery per update --------------------
{
    my $tpl = subscribe(["https://example.com/books/{id}"]);
    my $all = subscribe(['*']);
    my $two = subscribe([$book, "https://example.com/books/{id}"]);
    my $bad = raw_http('GET', "$HUB?topic=" . esc('https://example.com/{id'));
    is $bad->code, 400, 'a template with an unclosed brace: 400';
    $bad = raw_http('GET', $HUB);
    is $bad->code, 400, 'no topic selector: 400';
    publish_update([topic => "https://example.com/books/$run/reviews", data => 'review']);
    publish_update([topic => "https://example.com/authors/$run", data => 'author']);
    publish_update([topic => $book, data => 'book']);
    my $e = next_update($tpl);
    is $e && $e->{data}, 'book',
        'a {id} template matches books/N, not books/N/reviews nor authors/N';
    is join(',', map { (next_update($all) // {})->{data} // '-' } 1 .. 3),
       'review,author,book', '* gets every update, in order';
    $e = next_update($two);
    is $e && $e->{data}, 'book', 'a subscriber two of whose selectors match gets the update';
    is $two->pending(0.5), '', '... once';
    publish_update([topic => $book, topic => "https://example.com/books/x$run", data => 'multi']);
    $e = next_update($tpl);
    is $e && $e->{data}, 'multi', 'an update with two topics that both match';
    is $tpl->pending(0.5), '', '... is delivered once';
    $_->disconnect for $tpl, $all, $two;
}

# --- 4. private updates ------------------------------------------------------
{
    my $user = "https://example.com/users/$run";
    my $other = "https://example.com/users/x$run";
    my $alice = sub_token([$user]);
    my $tplclaim = sub_token(['https://example.com/users/{id}']);
    my %s = (
        header   => subscribe([$user], headers => [Authorization => "Bearer $alice"]),
        cookie   => subscribe([$user], headers => [Cookie => "mercureAuthorization=$alice"]),
        query    => subscribe([$user], query => ['authorization=' . esc($alice)]),
        template => subscribe(['https://example.com/users/{id}'], headers => [Authorization => "Bearer $tplclaim"]),
        anon     => subscribe([$user]),
        other    => subscribe([$user], headers => [Authorization => 'Bearer ' . sub_token([$other])]),
    );
    is $s{$_}->status, 200, "subscriber ($_) has a stream" for sort keys %s;
    my $r = publish_update([topic => $user, data => 'secret', private => 'on']);
    is $r->code, 200, 'a private update is published';
    publish_update([topic => $user, data => 'public']);
    for my $k (qw(header cookie query template)) {
        is join(',', map { (next_update($s{$k}) // {})->{data} // '-' } 1 .. 2),
           'secret,public', "a subscriber whose token ($k) allows the topic gets the private update";
    }
    for my $k (qw(anon other)) {
        is join(',', map { (next_update($s{$k}) // {})->{data} // '-' } 1 .. 1),
           'public', "an anonymous or other user's subscriber ($k) gets only the public one";
    }
    my $log = File::Spec->catfile(Apache::Test::vars('t_logs'), 'access_log');
    my $found = 0;
    for (1 .. 20) {
        open my $fh, '<', $log or last;
        local $/;
        my $all = <$fh>;
        last if ($found = index($all, 'authorization=***') >= 0) && index($all, $alice) < 0;
        select undef, undef, undef, 0.1;
    }
    my $both = subscribe([$user], headers => [Authorization => "Bearer $alice"],
                         query => ['authorization=' . esc(sub_token(['https://example.com/masked']))]);
    $both->disconnect;
    ok $found, 'the access log shows authorization=*** for the query token';
    open my $fh, '<', $log;
    my $txt = do { local $/; <$fh> };
    ok index($txt, $alice) < 0, '... and never the token';
    ok index($txt, sub_token(['https://example.com/masked'])) < 0,
       '... not even one sent beside an Authorization header';
    $_->disconnect for values %s;
    my $bad = raw_http('GET', "$HUB?topic=" . esc($user), headers => [Authorization => 'Bearer nope']);
    is $bad->code, 401, 'a subscriber with a bad token: 401, even where anonymous ones are taken';
    like $bad->header('WWW-Authenticate') // '', qr/^Bearer/, '... with a Bearer challenge';
}

# --- 5. reconciliation ------------------------------------------------------------
{
    my $topic = "https://example.com/log/$run";
    my @ids = map { publish_update([topic => $topic, data => "e$_", id => "log-$run-$_"])->content } 1 .. 3;
    is "@ids", join(' ', map { "log-$run-$_" } 1 .. 3), 'three updates with ids';
    my $newest = publish_update([topic => "https://example.com/elsewhere/$run", data => 'not mine'])->content;
    my $s = subscribe([$topic], headers => ['Last-Event-ID' => $ids[0]]);
    is $s->header('Last-Event-ID'), $newest,
       'the response says the newest id the hub holds (Last-Event-ID)';
    is join(',', map { (next_update($s) // {})->{data} // '-' } 1 .. 2), 'e2,e3',
       'Last-Event-ID: the updates after it, on the selected topics only';
    $s->disconnect;
    $s = subscribe([$topic], query => ['lastEventID=' . esc($ids[1])]);
    is((next_update($s) // {})->{data}, 'e3', 'lastEventID in the query');
    $s->disconnect;
    $s = subscribe([$topic], query => ['lastEventID=earliest']);
    is join(',', map { (next_update($s) // {})->{data} // '-' } 1 .. 3), 'e1,e2,e3',
       'lastEventID=earliest: the whole history';
    ok !defined $s->header('SSE-History-Lost'), '... which is never called lost';
    publish_update([topic => $topic, data => 'e4']);
    is((next_update($s) // {})->{data}, 'e4', '... then live updates');
    $s->disconnect;
}

# --- 6. CORS, the cookie's Origin check, discovery -----------------------------
{
    my $topic = "https://example.com/cors/$run";
    my $s = subscribe([$topic], headers => [Origin => 'http://app.example.com']);
    is $s->header('Access-Control-Allow-Origin'), 'http://app.example.com',
       'a listed origin is echoed in Access-Control-Allow-Origin';
    is $s->header('Access-Control-Allow-Credentials'), 'true', '... with credentials allowed';
    $s->disconnect;
    $s = subscribe([$topic], headers => [Origin => 'http://evil.example']);
    ok !defined $s->header('Access-Control-Allow-Origin'), 'another origin gets no CORS header';
    $s->disconnect;
    my $pre = raw_http('OPTIONS', $HUB, headers => [Origin => 'http://app.example.com',
        'Access-Control-Request-Method' => 'GET']);
    is $pre->code, 204, 'a preflight: 204';
    like $pre->header('Access-Control-Allow-Headers') // '', qr/Last-Event-ID/,
        '... allowing Last-Event-ID and Authorization';
    my $tok = pub_token();
    my $r = raw_http('POST', $HUB, body => form(topic => $topic, data => 'c'), headers => [
        'Content-Type' => 'application/x-www-form-urlencoded',
        Cookie => "mercureAuthorization=$tok", Origin => 'http://evil.example']);
    is $r->code, 403, 'a publish with the cookie from another origin: 403';
    $r = raw_http('POST', $HUB, body => form(topic => $topic, data => 'c'), headers => [
        'Content-Type' => 'application/x-www-form-urlencoded',
        Cookie => "mercureAuthorization=$tok"]);
    is $r->code, 403, 'a publish with the cookie and no Origin: 403';
    $r = raw_http('POST', $HUB, body => form(topic => $topic, data => 'c'), headers => [
        'Content-Type' => 'application/x-www-form-urlencoded',
        Cookie => "mercureAuthorization=$tok", Origin => 'http://app.example.com']);
    is $r->code, 200, 'a publish with the cookie from a listed origin: 200';
    my $page = raw_http('GET', '/app/anything');
    is $page->header('Link'), "</.well-known/mercure>; rel=\"mercure\"",
       'MercureHubLink adds the discovery Link header';
    ok !defined raw_http('GET', '/index.html')->header('Link'), '... only where it is set';
}

# --- 7. the hub's channel is out of reach of native streams --------------------
{
    my $r = raw_http('GET', '/stream?channel=' . esc('#hub'));
    is $r->code, 400, 'a native stream cannot name the hub channel';
    $r = publish_raw('/pub?channel=' . esc('#hub'), 'x', 'text/plain');
    is $r->code, 400, 'a native publish cannot name it either';
    my $native = open_stream('/stream?channel=' . esc("books$run"));
    publish_update([topic => "books$run", data => 'hub only']);
    is $native->pending(0.5), '', 'a hub update on a topic named like a channel does not reach a native stream';
    $native->disconnect;
}

# --- 8. a hub without anonymous subscribers, RS256 keys -----------------------------
{
    my $closed = '/closed-hub';
    my $topic = "https://example.com/closed/$run";
    my $r = raw_http('GET', "$closed?topic=" . esc($topic));
    is $r->code, 401, 'without MercureAnonymous, a subscriber without a token: 401';
    my $rs_sub = jwt({ mercure => { subscribe => [$topic] } }, alg => 'RS256');
    my $s = subscribe([$topic], url => $closed, headers => [Authorization => "Bearer $rs_sub"]);
    is $s->status, 200, 'an RS256 subscriber token is taken';
    is $s->header('Last-Event-ID'), 'earliest', '... on a hub with no update yet: Last-Event-ID earliest';
    $r = publish_update([topic => $topic, data => 'hs'], url => $closed);
    is $r->code, 401, 'an HS256 token where RS256 is pinned: 401';
    my $pem = do { local(@ARGV, $/) = File::Spec->catfile(Apache::Test::vars('t_conf'), 'jwt', 'rs256.pub'); <> };
    $r = publish_update([topic => $topic, data => 'confused'], url => $closed,
                        token => jwt({ mercure => { publish => ['*'] } }, key => $pem));
    is $r->code, 401, 'an HS256 token signed with the RS256 public key (key confusion): 401';
    $r = publish_update([topic => $topic, data => 'rs', private => 'on'], url => $closed,
                        token => jwt({ mercure => { publish => ['*'] } }, alg => 'RS256'));
    is $r->code, 200, 'an RS256 publisher token: 200';
    is((next_update($s) // {})->{data}, 'rs', 'the RS256 subscriber gets the private update');
    $s->disconnect;
    my $open = subscribe([$topic]);
    $r = publish_update([topic => $topic, data => 'other hub'], url => $closed,
                        token => jwt({ mercure => { publish => ['*'] } }, alg => 'RS256'));
    is $r->code, 200, 'another update on the closed hub';
    is $open->pending(0.5), '', 'the two hubs have their own namespaces';
    $open->disconnect;
}

# --- 9. over TLS: the hub's streams are suspended (event) or held ---------------
{
    my $port = Apache::Test::config()->{vhosts}{sse_tls_suspend}{port};
    my $tls = sub {
        my($method, $path, $body, @h) = @_;
        my $raw = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                        Proto => 'tcp', Timeout => 10) or return undef;
        my $sock = IO::Socket::SSL->start_SSL($raw, SSL_verify_mode => 0,
            SSL_alpn_protocols => ['http/1.1'], Timeout => 10) or return undef;
        push @h, 'Content-Length' => length $body if defined $body;
        my $req = "$method $path HTTP/1.1\r\nHost: localhost:$port\r\n";
        while (my($k, $v) = splice @h, 0, 2) { $req .= "$k: $v\r\n" }
        print $sock "$req\r\n" . ($body // '');
        return bless { sock => $sock, buf => '', eof => 0, path => $path,
                       method => $method }, 'SSETest::Stream';
    };
    my $topic = "https://example.com/tls/$run";
    my $s = $tls->('GET', "$HUB?topic=" . esc($topic));
    ok $s && $s->open_ok(10), 'a hub stream over TLS';
    my $p = $tls->('POST', $HUB, form(topic => $topic, data => 'over tls', id => "tls-$run"),
                   'Content-Type' => 'application/x-www-form-urlencoded',
                   Authorization => 'Bearer ' . pub_token(), Connection => 'close');
    ok $p && $p->read_head(10) && $p->status == 200, 'a publish over TLS: 200';
    is $s && $s->next_event(10), "id: tls-$run\ndata: over tls\n\n", 'the TLS subscriber gets the update';
    my $r = publish_update([topic => $topic, data => 'over plain http']);
    is $s && $s->next_event(10), 'id: ' . $r->content . "\ndata: over plain http\n\n",
       'one hub (one ServerName): an update published over plain HTTP reaches it too';
    $s->disconnect if $s;
}
