# The Mercure hub across SSECluster servers (test/cluster/run.sh): an
# update published on one server reaches the matching subscribers of the
# others (exact topic, URI template, *), private ones only those whose
# token allows them, and reconciliation (Last-Event-ID, lastEventID=
# earliest) works on a server other than the publisher's.
use strict;
use warnings FATAL => 'all';
use Test::More;
use IO::Select ();
use HTTP::Tiny ();
use JSON::PP ();
use MIME::Base64 ();
use Digest::SHA qw(hmac_sha256);
use Time::HiRes qw(time sleep);
use FindBin;
use lib "$FindBin::Bin/lib";
use ClusterPump qw(pump_with wait_until stream_open stream_head);   # its own Mercure reader

my @ports = split ' ', $ENV{CLUSTER_PORTS} || '';
plan skip_all => 'run by test/cluster/run.sh' unless @ports == 3 && $ENV{REDIS_PORT};
$SIG{PIPE} = 'IGNORE';

my $HUB = '/.well-known/mercure';
my $SECRET = '!ChangeThisMercureHubJWTSecretKey!';
my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 10);
my $run = $$ . int(rand 1e6);        # topics no other run uses
my $UUID = qr/\Aurn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\z/;

# --- tokens (HS256, as t/70_mercure.t) -----------------------------------------
sub b64 { MIME::Base64::encode_base64url($_[0]) }
sub jwt {
    my $h = b64($json->encode({ alg => 'HS256', typ => 'JWT' }));
    my $p = b64($json->encode($_[0]));
    return "$h.$p." . b64(hmac_sha256("$h.$p", $SECRET));
}
my $PUB = jwt({ mercure => { publish => ['*'] } });
sub sub_token { jwt({ mercure => { subscribe => $_[0] } }) }

sub esc {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

# POST an update to server $port's hub: (status, body)
sub publish {
    my($port, @f) = @_;
    my $body = join '&', map { esc($f[2 * $_]) . '=' . esc($f[2 * $_ + 1]) } 0 .. $#f / 2;
    my $res = $http->request('POST', "http://127.0.0.1:$port$HUB", {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     Authorization => "Bearer $PUB" },
        content => $body });
    return wantarray ? ($res->{status}, $res->{content}) : $res->{status} == 200 && $res->{content};
}

# --- a raw subscriber ------------------------------------------------------------
sub subscribe {
    my($port, $topics, %o) = @_;
    my $q = join '&', (map { 'topic=' . esc($_) } @$topics), @{ $o{query} || [] };
    my $st = stream_open($port, "$HUB?$q", @{ $o{headers} || [] }) or die "connect: $!";
    $st->{raw} = '';
    return $st;
}

# read what is there; the head, then each complete block (a comment or an
# update, the latter as a hash of its fields)
sub stream_read {
    my $st = shift;
    return unless stream_head($st);
    $st->{chunked} //= $st->{head} =~ /^Transfer-Encoding: chunked/mi ? 1 : 0;
    $st->{cbuf} //= '';
    if ($st->{chunked}) {           # undo the chunking
        $st->{cbuf} .= $st->{buf};
        $st->{buf} = '';
        while ($st->{cbuf} =~ /\A([0-9a-fA-F]+)\r\n/) {
            my($len, $hl) = (hex $1, length($1) + 2);
            last if length $st->{cbuf} < $hl + $len + 2;
            $st->{body} .= substr $st->{cbuf}, $hl, $len;
            substr $st->{cbuf}, 0, $hl + $len + 2, '';
        }
    }
    else {
        $st->{body} .= $st->{buf};
        $st->{buf} = '';
    }
    $st->{body} //= '';
    while ((my $i = index $st->{body}, "\n\n") >= 0) {
        my $blk = substr $st->{body}, 0, $i + 2, '';
        $st->{raw} .= $blk;
        $st->{ok} = 1 if $blk eq ": ok\n\n";
        next unless $blk =~ /^id: /m;
        my %e;
        for (split /\n/, $blk) {
            my($k, $v) = /^([a-z]+): ?(.*)$/ or next;
            $e{$k} = exists $e{$k} && $k eq 'data' ? "$e{$k}\n$v" : $v;
        }
        push @{ $st->{events} }, \%e;
    }
}

# read every stream until $done->() or timeout
sub pump { pump_with(\&stream_read, @_) }
sub opened { my @s = @_; pump(\@s, 5, sub { !grep { !$_->{ok} } @s }) }
sub datas { join ',', map { $_->{data} // '-' } @{ $_[0]{events} } }
sub idsof { join ',', map { $_->{id} // '-' } @{ $_[0]{events} } }
my @all;            # every subscriber, for the check that no tail leaks

# --- 1. the hub answers on the three servers, through Redis ---------------------
ok wait_until(15, sub { !grep { !publish($_, topic => "https://example.com/warmup/$run",
                                         data => 'x') } @ports }),
   'the three servers\' hubs publish (through Redis)';

# --- 2. selectors: published on server 1, received on servers 2 and 3 -----------
my $book = "https://example.com/books/$run";
my $author = "https://example.com/authors/$run";
{
    my %s = (
        exact    => subscribe($ports[1], [$book]),
        template => subscribe($ports[2], ['https://example.com/books/{id}']),
        star2    => subscribe($ports[1], ['*']),
        star3    => subscribe($ports[2], ['*']),
        none     => subscribe($ports[2], ["https://example.com/authors/{id}", "$book/reviews"]),
    );
    push @all, values %s;
    ok opened(values %s), 'five subscribers on servers 2 and 3 (: ok)';
    like $s{exact}{head} // '', qr{^HTTP/1\.1 200}, 'a subscriber\'s answer is 200';
    my($st, $id) = publish($ports[0], topic => $book, data => 'hello', id => "book-$run-1",
                           type => 'book');
    is "$st $id", "200 book-$run-1", 'a publish on server 1 with a given id: 200, the id';
    my($st2, $gen) = publish($ports[0], topic => $book, data => 'second');
    is $st2, 200, 'a second publish on server 1, no id given: 200';
    like $gen, $UUID, '... the answer is a generated urn:uuid: (version 4)';
    my($st3, $aid) = publish($ports[0], topic => $author, data => 'author');
    is $st3, 200, 'a third one on server 1, on an author\'s topic';
    my @want = qw(exact template star2 star3);
    pump([values %s], 5, sub { !grep({ @{ $s{$_}{events} } < 2 } @want)
                               && @{ $s{none}{events} } >= 1 });
    pump([values %s], 0.5, sub { 0 });
    for my $k (qw(exact template)) {
        is datas($s{$k}), 'hello,second', "server " . ($s{$k}{port} - $ports[0] + 1)
           . "'s $k subscriber gets the two book updates, not the author one";
        is idsof($s{$k}), "book-$run-1,$gen", "... with the ids the publisher was answered";
    }
    for my $k (qw(star2 star3)) {
        is datas($s{$k}), 'hello,second,author',
           "server " . ($s{$k}{port} - $ports[0] + 1) . "'s * subscriber gets all three, in order";
        is idsof($s{$k}), "book-$run-1,$gen,$aid", '... with their ids';
    }
    is datas($s{none}), 'author',
       'a subscriber on server 3 whose selectors (authors/{id}, books/N/reviews) do not '
       . 'match the book updates gets only the author one';
    is $s{exact}{events}[0]{event}, 'book', 'the type travels as the event name';
    close $_->{sock} for values %s;
}

# --- 3. a private update published on server 2, subscribers on server 3 ----------
{
    my $user = "https://example.com/users/$run";
    my %s = (
        alice => subscribe($ports[2], [$user],
                           headers => [Authorization => 'Bearer ' . sub_token([$user])]),
        tpl   => subscribe($ports[2], ['https://example.com/users/{id}'],
                           query => ['authorization='
                                     . esc(sub_token(['https://example.com/users/{id}']))]),
        anon  => subscribe($ports[2], [$user]),
        other => subscribe($ports[0], [$user],
                           headers => [Authorization => 'Bearer '
                                       . sub_token(["https://example.com/users/x$run"])]),
    );
    push @all, values %s;
    ok opened(values %s), 'four subscribers to a user\'s topic (three on server 3, one on 1)';
    my($st, $pid) = publish($ports[1], topic => $user, data => 'secret', private => 'on');
    is $st, 200, 'a private update published on server 2';
    my($st2, $qid) = publish($ports[1], topic => $user, data => 'public');
    is $st2, 200, 'then a public one';
    pump([values %s], 5, sub { !grep({ @{ $s{$_}{events} } < 2 } qw(alice tpl))
                               && !grep({ @{ $s{$_}{events} } < 1 } qw(anon other)) });
    pump([values %s], 0.5, sub { 0 });
    is datas($s{alice}) . ' ' . idsof($s{alice}), "secret,public $pid,$qid",
       'server 3: a subscriber whose token (header) allows the topic gets both';
    is datas($s{tpl}), 'secret,public',
       'server 3: one whose token (query, a template claim) allows it gets both';
    is datas($s{anon}), 'public', 'server 3: an anonymous subscriber gets only the public one';
    is datas($s{other}), 'public',
       'server 1: a subscriber with another user\'s token gets only the public one';
    close $_->{sock} for values %s;
}

# --- 4. reconciliation on another server ----------------------------------------
{
    my $log = "https://example.com/log/$run";
    my @p = ([0, $log, 'e1', "log-$run-1"], [0, $log, 'e2'], [2, "$log/x", 'other'],
             [1, $log, 'e3', "log-$run-3"], [2, $log, 'e4']);
    my @ids;
    my $pub = sub {
        my($st, $id) = publish($ports[$_->[0]], topic => $_->[1], data => $_->[2],
                               defined $_->[3] ? (id => $_->[3]) : ());
        push @ids, $st == 200 ? $id : undef;
    };
    # a subscriber on server 1 gets e1 there, then goes away
    my $first = subscribe($ports[0], [$log]);
    push @all, $first;
    opened($first);
    $pub->() for $p[0];
    pump([$first], 5, sub { @{ $first->{events} } >= 1 });
    close $first->{sock};
    my $last = $first->{events}[-1]{id} // '?';
    is "$last " . datas($first), "log-$run-1 e1", 'a subscriber on server 1 got e1 there';
    $pub->() for @p[1 .. $#p];
    ok !grep({ !defined } @ids), 'four more published round the servers (one on another topic)';
    like $ids[1] // '', $UUID, '... the first of them (server 1) with a generated id';
    # it reconnects to server 3 with the last id it had
    my $s = subscribe($ports[2], [$log], headers => ['Last-Event-ID' => $last]);
    my $q = subscribe($ports[2], [$log], query => ['lastEventID=' . esc($ids[1])]);
    my $e = subscribe($ports[1], [$log], query => ['lastEventID=earliest']);
    my $e3 = subscribe($ports[2], ['https://example.com/log/{x}'],
                       query => ['lastEventID=earliest']);
    push @all, $s, $q, $e, $e3;
    pump([$s, $q, $e, $e3], 5, sub { @{ $s->{events} } >= 3 && @{ $q->{events} } >= 2
                                     && @{ $e->{events} } >= 4 && @{ $e3->{events} } >= 4 });
    pump([$s, $q, $e, $e3], 0.5, sub { 0 });
    is datas($s) . ' ' . idsof($s), "e2,e3,e4 $ids[1],$ids[3],$ids[4]",
       'it reconnects to server 3 with Last-Event-ID (a given id): '
       . 'the later ones of its topic, from every server';
    unlike $s->{head} // '', qr/SSE-History-Lost/i, '... and no history lost';
    is datas($q), 'e3,e4',
       'server 3, lastEventID of a generated id (urn:uuid) published on server 1: the later ones';
    is datas($e) . ' ' . idsof($e), "e1,e2,e3,e4 " . join(',', @ids[0, 1, 3, 4]),
       'server 2, lastEventID=earliest: the hub\'s history of the topic';
    is datas($e3), 'e1,e2,e3,e4', 'server 3, earliest with a template: the same';
    my($st, $id5) = publish($ports[0], topic => $log, data => 'e5');
    pump([$s, $q, $e, $e3], 5, sub { !grep { (datas($_) =~ /([^,]*)\z/)[0] ne 'e5' } $s, $q, $e, $e3 });
    is join(' ', map { datas($_) =~ /([^,]*)\z/ } $s, $q, $e, $e3), 'e5 e5 e5 e5',
       '... then each gets the live update published on server 1';
    close $_->{sock} for $s, $q, $e, $e3;
}

# --- 5. the gap fill: server 3's Redis connections cut, updates published on
#        server 1 meanwhile reach server 3's subscribers when it is back ----
SKIP: {
    my $work = $ENV{CLUSTER_WORK};
    my $rp = $ENV{REDIS_PORT};
    open my $pf, '<', "$work/s3/httpd.pid" or skip 'no server 3 pid file', 5;
    chomp(my $parent = <$pf>);
    # the relay: the child of server 3's parent connected to Redis
    my @addrs;
    for (`ss -tnpH state established dst 127.0.0.1:$rp 2>/dev/null`) {
        my($lport, $pid) = /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:$rp\b.*pid=(\d+)/ or next;
        open my $st, '<', "/proc/$pid/stat" or next;
        my @f = split ' ', scalar <$st>;
        push @addrs, "127.0.0.1:$lport" if $f[3] == $parent;
    }
    skip 'server 3\'s connections to Redis not found (ss -p)', 5 unless @addrs;
    my $gap = "https://example.com/gap/$run";
    my %s = (
        anon  => subscribe($ports[2], [$gap]),
        tok   => subscribe($ports[2], [$gap], headers => [Authorization => 'Bearer '
                                                          . sub_token([$gap])]),
        other => subscribe($ports[2], ["$gap/other"]),
    );
    push @all, values %s;
    ok opened(values %s), 'three subscribers on server 3';
    sleep 1.2;      # the relay's once-a-second census: the channels a gap fill fills
    my $lost = () = do { open my $l, '<', "$work/s3/error.log"; local $/; <$l> } =~ /SSE00401/g;
    system "redis-cli -p $rp CLIENT KILL ADDR $_ >/dev/null" for @addrs;
    my @r = ([publish($ports[0], topic => $gap, data => 'g1', private => 'on')],
             [publish($ports[0], topic => $gap, data => 'g2')],
             [publish($ports[0], topic => "$gap/other", data => 'g3')]);
    is join(' ', map { $_->[0] } @r), '200 200 200',
       'server 3\'s Redis connections cut; three updates published on server 1';
    pump([values %s], 8, sub { @{ $s{tok}{events} } >= 2 && @{ $s{anon}{events} } >= 1
                               && @{ $s{other}{events} } >= 1 });
    pump([values %s], 0.5, sub { 0 });
    my $now = () = do { open my $l, '<', "$work/s3/error.log"; local $/; <$l> } =~ /SSE00401/g;
    ok $now > $lost, 'server 3 logged that it lost Redis (so they came by the gap fill)';
    is datas($s{tok}) . ' ' . idsof($s{tok}), "g1,g2 $r[0][1],$r[1][1]",
       'server 3: the token holder gets the private and the public one, with their ids';
    is datas($s{anon}) . ' ' . datas($s{other}), 'g2 g3',
       'server 3: the anonymous one only the public one of its topic, the other only its own';
    close $_->{sock} for values %s;
}

# --- 6. nothing of the topics' tail reaches a client -----------------------------
{
    my @leak = grep { $_->{raw} =~ /[\x1e\x1f]/ } @all;
    ok !@leak, 'no subscriber (of ' . scalar(@all) . ') got a byte of an update\'s topic tail';
}

done_testing;
