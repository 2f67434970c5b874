# The Mercure hub (t/conf/mercure.conf.in) with a publisher nobody here
# wrote: Symfony's Mercure component as Debian packages it
# (php-symfony-mercure), driven by t/mercure/publish.php.  Public updates
# with several topics, a type, a retry, with and without an id; private
# updates reaching only the subscribers whose token allows them (token in
# the header, the cookie, the query); refusals making Symfony throw with
# nothing delivered; data with line breaks, UTF-8 and form metacharacters,
# small and over 4 KB, through both of Symfony's HTTP clients (curl's and
# PHP's own streams: they frame the request differently, Connection: close
# for the latter).
#
# php-cli, php-symfony-mercure and php-curl are required, not optional:
# `make test` installs them, so without them this test fails and says so.
use strict;
use warnings FATAL => 'all';
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Encode ();
use File::Spec ();
use File::Temp ();
use JSON::PP ();
use MIME::Base64 ();
use POSIX ();
use SSETest;

my $HUB = '/.well-known/mercure';
my $URL = 'http://127.0.0.1:' . Apache::Test::vars('port') . $HUB;
my $SECRET = '!ChangeThisMercureHubJWTSecretKey!';
my $SCRIPT = File::Spec->catfile($FindBin::Bin, 'mercure', 'publish.php');
my $json = JSON::PP->new->canonical;
my $run = $$ . int(rand 1e6);        # topics no other run uses

# --- what the test needs: php, Symfony's component, PHP's curl ---------------
my($PHP) = grep { -x $_ && !-d _ } map { "$_/php" } split /:/, $ENV{PATH} // '';
my $missing;
if (!$PHP) {
    $missing = 'php is not installed (no php in PATH)';
}
else {
    my $probe = `'$PHP' -r 'echo stream_resolve_include_path("Symfony/Component/Mercure/autoload.php") ? "mercure" : "none", " ", extension_loaded("curl") ? "curl" : "nocurl";' 2>&1`;
    $missing = "Symfony's Mercure component is not installed" if $probe !~ /^mercure /;
    $missing = "PHP's curl extension is not installed" if !$missing && $probe !~ / curl$/;
    $missing .= " ($PHP said: $probe)" if $missing;
}
if ($missing) {
    plan tests => 1;
    ok 0, "$missing: install php-cli php-symfony-mercure php-curl "
        . "(as root: apt-get install -y php-cli php-symfony-mercure php-curl; make test does)";
    exit 0;
}

plan tests => 39;

# An HS256 JWT with these claims, signed with $key (default the hub's secret).
sub jwt { hs256_jwt($_[0], $_[1] // $SECRET) }
sub pub_token { jwt({ mercure => { publish => $_[0] // ['*'] } }, $_[1]) }
sub sub_token { jwt({ mercure => { subscribe => $_[0] } }) }

# A subscriber: GET the hub with these topic selectors (and query fields),
# its head and ": ok" read.
sub subscribe {
    my($topics, %o) = @_;
    my $q = join '&', (map { 'topic=' . esc($_) } @$topics), @{ $o{query} || [] };
    return open_stream("$HUB?$q", headers => $o{headers} || []);
}

# Publish $u (topics, data, private, id, type, retry: Perl characters) with
# Symfony: { rc => exit code, id => what it printed, err => its stderr }.
# $o{token} (default: may publish anything), $o{client} (native or curl;
# default the one Symfony picks).
sub symfony {
    my($u, %o) = @_;
    my $in = File::Temp->new;
    binmode $in;
    print $in JSON::PP->new->utf8->canonical->encode($u);
    close $in;
    my $err = File::Temp->new;
    close $err;
    local $ENV{MERCURE_JWT} = $o{token} // pub_token();
    local $ENV{MERCURE_HTTP_CLIENT} = $o{client} // '';
    # the hub is on this host: no proxy from the environment in the way
    delete local @ENV{qw(http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY)};
    my $pid = open(my $out, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', $in->filename or POSIX::_exit(126);
        open STDERR, '>', $err->filename or POSIX::_exit(126);
        exec $PHP, $SCRIPT, $URL or POSIX::_exit(127);
    }
    binmode $out;
    my $id = do { local $/; <$out> } // '';
    close $out;
    my $rc = $? >> 8;
    my $e = do { local(@ARGV, $/) = $err->filename; <> } // '';
    chomp $e;
    return { rc => $rc, id => $id, err => $e };
}

# The wire bytes of an update: ev() of SSETest, data as UTF-8, split into
# lines where the hub splits them (LF, CRLF, CR).
sub wire {
    my %e = @_;
    my $d = Encode::encode_utf8($e{data} // '');
    return ev(%e, data => [split /\r\n|\r|\n/, $d, -1]);
}

my $UUID = qr/\Aurn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\z/;
my $book = "https://example.com/books/$run";
my $author = "https://example.com/authors/$run";

# --- 1. a public update with several topics, a type, a retry and an id ----------
my $by_book = subscribe([$book]);
my $by_author = subscribe([$author]);
my $both = subscribe([$book, 'https://example.com/authors/{id}']);
{
    my $r = symfony({ topics => [$book, $author, "https://example.com/shelves/$run"],
                      data => 'Dune', id => "sf-$run-1", type => 'book.created', retry => 2500 });
    is $r->{rc}, 0, 'Symfony publishes a public update with three topics, a type, a retry and an id'
        or diag $r->{err};
    is $r->{id}, "sf-$run-1", "Hub::publish returns the hub's answer: the publisher's id";
    my $want = "id: sf-$run-1\nevent: book.created\nretry: 2500\ndata: Dune\n\n";
    is show($by_book->next_event(5)), show($want),
        'a subscriber to its first topic gets it byte for byte (id, event, retry, data)';
    is show($by_author->next_event(5)), show($want), 'a subscriber to its second topic too';
    is show($both->next_event(5)), show($want),
        'a subscriber whose two selectors match two of its topics too';
    is $both->pending(0.5), '', '... once';
}

# --- 2. without an id: the hub's urn:uuid, with each of Symfony's clients ---------
for my $client (qw(native curl)) {
    my $r = symfony({ topics => [$book], data => "no id ($client)" }, client => $client);
    is $r->{rc}, 0, "Symfony ($client client) publishes an update without an id" or diag $r->{err};
    like $r->{id}, $UUID, "... Hub::publish returns the id the hub generated, a urn:uuid (v4)";
    is show($by_book->next_event(5)), show("id: $r->{id}\ndata: no id ($client)\n\n"),
        '... and subscribers get the update with that id';
}

# --- 3. data with line breaks, UTF-8, form metacharacters; small and over 4 KB ---------
{
    my $text = "première ligne\nzweite Zeile: Grüße ✓\n\n日本語の行\r\n"
             . "a+b=c&d=%20e;f?g#h\rlast line 🚀\n";
    my $big = join "\n", map { "ligne $_ : é ✓ 🚀 " . ('x' x 40) . ' +&=%' } 1 .. 60;
    for my $client (qw(native curl)) {
        my $id = "sf-$run-text-$client";
        my $r = symfony({ topics => [$book], data => $text, id => $id, type => 'note' },
                        client => $client);
        is $r->{rc}, 0, "Symfony ($client client) publishes data with line breaks and UTF-8"
            or diag $r->{err};
        is show($by_book->next_event(5)), show(wire(id => $id, event => 'note', data => $text)),
            '... it reaches subscribers intact: one data line per line (LF, CRLF, CR, an empty one, '
            . 'a last empty one), UTF-8 and + & = % ; ? unchanged';
        $r = symfony({ topics => [$book], data => $big, id => "$id-big" }, client => $client);
        is show($by_book->next_event(5) // $r->{err}), show(wire(id => "$id-big", data => $big)),
            "... so does a " . length(Encode::encode_utf8($big)) . "-byte one"
            . ' (both clients send it in one go: Symfony drops curl\'s Expect header)';
    }
}
$_->disconnect for $by_book, $by_author, $both;

# --- 4. a private update reaches only the subscribers whose token allows it ----------
{
    my $user = "https://example.com/users/$run";
    my $alice = sub_token([$user]);
    my %s = (
        header => subscribe([$user], headers => [Authorization => "Bearer $alice"]),
        cookie => subscribe([$user], headers => [Cookie => "mercureAuthorization=$alice"]),
        query  => subscribe([$user], query => ['authorization=' . esc($alice)]),
        anon   => subscribe([$user]),
        other  => subscribe([$user], headers => [Authorization => 'Bearer '
                                                . sub_token(["https://example.com/users/x$run"])]),
    );
    is $s{$_}->status, 200, "subscriber ($_) has a stream" for qw(header cookie query anon other);
    my $r = symfony({ topics => [$user], data => 'secret', private => JSON::PP::true,
                      id => "sf-$run-private", type => 'message' });
    is $r->{rc}, 0, 'Symfony publishes a private update' or diag $r->{err};
    is $r->{id}, "sf-$run-private", '... and gets its id back';
    $r = symfony({ topics => [$user], data => 'public', id => "sf-$run-public" });
    is $r->{rc}, 0, 'then a public one on the same topic' or diag $r->{err};
    my $private = "id: sf-$run-private\nevent: message\ndata: secret\n\n";
    my $public = "id: sf-$run-public\ndata: public\n\n";
    for my $k (qw(header cookie query)) {
        is show(join '', map { $s{$k}->next_event(5) // '' } 1 .. 2), show($private . $public),
            "a subscriber whose token ($k) allows the topic gets the private update byte for byte, "
            . 'then the public one';
    }
    for my $k (qw(anon other)) {
        is show($s{$k}->next_event(5)), show($public),
            "a subscriber " . ($k eq 'anon' ? 'without a token' : 'whose token is for another topic')
            . ' gets the public update next, not the private one';
    }
    $_->disconnect for values %s;
}

# --- 5. refusals: Symfony throws, nothing reaches subscribers ------------------------
{
    my $topic = "https://example.com/refused/$run";
    my $s = subscribe([$topic]);
    my $r = symfony({ topics => [$topic], data => 'refused: claim' },
                    token => pub_token(['https://example.com/authors/{id}']));
    isnt $r->{rc}, 0, 'a token whose publish claim does not cover the topic: Symfony throws, '
        . 'the script exits non-zero';
    like $r->{err}, qr/Failed to send an update.*\b403\b/, "... on the hub's 403" or diag $r->{err};
    $r = symfony({ topics => [$topic, "$topic/more"], data => 'refused: one of two' },
                 token => pub_token([$topic]));
    isnt $r->{rc}, 0, 'a claim that covers one of two topics: Symfony throws too';
    like $r->{err}, qr/\b403\b/, "... on the hub's 403" or diag $r->{err};
    $r = symfony({ topics => [$topic], data => 'refused: signature' },
                 token => pub_token(['*'], 'not the secret'));
    isnt $r->{rc}, 0, 'a token signed with another key: Symfony throws';
    like $r->{err}, qr/\b401\b/, "... on the hub's 401" or diag $r->{err};
    $r = symfony({ topics => [$topic], data => 'after the refusals', id => "sf-$run-after" },
                 token => pub_token([$topic]));
    is $r->{rc}, 0, 'a token for exactly that topic: published' or diag $r->{err};
    is show($s->next_event(5)), show("id: sf-$run-after\ndata: after the refusals\n\n"),
        'the subscriber got none of the refused updates, then the good one';
    $s->disconnect;
}
