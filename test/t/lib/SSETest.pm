package SSETest;

# Helpers for the mod_sse black-box tests.
#
# Streams are read with raw sockets and hand-written HTTP/1.1 requests, so
# every byte the server sends can be compared: SSETest::Stream.  Publishing
# and administration go through Apache::TestRequest (LWP), wrapped by
# publish(), admin_get(), admin_delete() which also decode the JSON answer.
# Nothing here sleeps to make a point: every wait has a deadline and
# returns what it saw.

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use IO::Socket::INET ();
use Socket ();
use IO::Select ();
use Time::HiRes qw(time);
use JSON::PP ();
use Digest::SHA ();
use MIME::Base64 ();
use File::Spec ();
use HTTP::Request ();
use HTTP::Request::Common ();
use Apache::Test ();
use Apache::TestRequest ();

our @EXPORT = qw(
    PREAMBLE uniq_chan esc show ev check_pub
    open_stream open_streams read_next_events close_all
    publish publish_form publish_raw admin_get admin_delete decode_json_res
    wait_until raw_http h2_pump h2_get start_writers wait_writers
    writers_order log_line hs256_jwt
);

use constant PREAMBLE => ": ok\n\n";

my $json = JSON::PP->new->utf8->canonical;

# A server that answers early (413) and closes must not kill the test
# process with SIGPIPE while the request body is still being written.
$SIG{PIPE} = 'IGNORE';

# LWP's default timeout in Apache::TestRequest is ten minutes; a hung
# request should fail the test, not the whole run.
Apache::TestRequest::user_agent(reset => 1, timeout => 30);

# An HS256 JWT (the Mercure hub's tokens) with these claims, signed with
# $key; $alg (default HS256) only names the header's algorithm, so a test
# can lie about it.
sub hs256_jwt {
    my($claims, $key, $alg) = @_;
    my $b64 = \&MIME::Base64::encode_base64url;
    my $h = $b64->($json->encode({ alg => $alg // 'HS256', typ => 'JWT' }));
    my $p = $b64->($json->encode($claims));
    return "$h.$p." . $b64->(Digest::SHA::hmac_sha256("$h.$p", $key));
}

# A channel name no other test (or earlier run) uses.
my $seq = 0;
sub uniq_chan {
    my $tag = shift || 'c';
    $seq++;
    return "$tag-$$-$seq";
}

# Percent-encode every byte that is not unreserved.
sub esc {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9._~-])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# Printable form of bytes, for test names and diagnostics.
sub show {
    my $s = shift;
    return 'undef' unless defined $s;
    $s =~ s/([\\])/\\\\/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    $s =~ s/\0/\\0/g;
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return qq("$s");
}

# The exact bytes of one event as the spec says the stream carries it:
# ev(id => 5, event => 'x', retry => 10, data => ['line1', 'line2'])
sub ev {
    my %e = @_;
    my $s = "id: $e{id}\n";
    $s .= "event: $e{event}\n" if defined $e{event};
    $s .= "retry: $e{retry}\n" if defined $e{retry};
    my @d = ref $e{data} ? @{ $e{data} } : ($e{data} // '');
    $s .= "data: $_\n" for @d;
    return "$s\n";
}

# Check one publish answer object: check_pub($obj, $chan, $subscribers)
# returns a list of problems (empty when it is right).
sub check_pub {
    my($o, $chan, $subs, $id) = @_;
    my @bad;
    return ('not a JSON object') unless ref $o eq 'HASH';
    push @bad, "channel is " . show($o->{channel}) . ", want $chan"
        unless defined $o->{channel} && $o->{channel} eq $chan;
    push @bad, "subscribers is " . show($o->{subscribers}) . ", want $subs"
        unless defined $o->{subscribers} && defined $subs
               && $o->{subscribers} =~ /^\d+\z/ && $o->{subscribers} == $subs;
    if (defined $id) {
        push @bad, "id is " . show($o->{id}) . ", want " . show($id)
            unless defined $o->{id} && $o->{id} eq $id;
    }
    else {
        push @bad, "server id " . show($o->{id}) . " is not a decimal integer"
            unless defined $o->{id} && $o->{id} =~ /^[0-9]+\z/;
    }
    return @bad;
}

sub host { '127.0.0.1' }
sub port { Apache::Test::vars('port') }

# ---------------------------------------------------------------------------
# SSETest::Stream: one raw HTTP connection.
# ---------------------------------------------------------------------------
package SSETest::Stream;

use Time::HiRes qw(time);
use Errno qw(EINTR EAGAIN ECONNRESET);

# Connect and send the request; does not wait for the answer.
#   SSETest::Stream->start($path, method => 'GET', headers => [k => v, ...],
#                          body => '...', raw_body => 1 (no Content-Length),
#                          rcvbuf => bytes (SO_RCVBUF before connect),
#                          local => '127.0.0.2' (the client's address: any
#                          127.x.y.z is this host's))
sub start {
    my($class, $path, %o) = @_;
    my $method = $o{method} || 'GET';
    my $sock;
    if ($o{rcvbuf}) {
        # a small receive buffer must be set before connecting, so that
        # the advertised window stays small: a slow reader
        $sock = IO::Socket::INET->new(Proto => 'tcp')
            or return (undef, "socket: $!");
        setsockopt($sock, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(),
                   pack('i', $o{rcvbuf})) or return (undef, "SO_RCVBUF: $!");
        $sock->connect(Socket::pack_sockaddr_in(SSETest::port(),
                                                Socket::inet_aton(SSETest::host())))
            or return (undef, "connect: $!");
    }
    else {
        $sock = IO::Socket::INET->new(
            PeerAddr => SSETest::host(), PeerPort => SSETest::port(),
            ($o{local} ? (LocalAddr => $o{local}) : ()),
            Proto => 'tcp', Timeout => 10)
            or return (undef, "connect: $!");
    }
    $sock->autoflush(1);
    binmode $sock;
    my $req = "$method $path HTTP/1.1\r\nHost: "
        . SSETest::host() . ':' . SSETest::port() . "\r\n";
    my @h = @{ $o{headers} || [] };
    while (my($k, $v) = splice @h, 0, 2) {
        $req .= "$k: $v\r\n";
    }
    if (defined $o{body} && !$o{raw_body}) {
        $req .= 'Content-Length: ' . length($o{body}) . "\r\n";
    }
    $req .= "\r\n";
    $req .= $o{body} if defined $o{body};
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite $sock, $req, length($req) - $off, $off;
        return (undef, "write: $!") unless defined $n;
        $off += $n;
    }
    my $self = bless { sock => $sock, buf => '', eof => 0, path => $path,
                       method => $method }, $class;
    return $self;
}

sub fd { fileno $_[0]{sock} }

# One sysread into the buffer.  Returns bytes read, 0 at EOF, undef on error.
sub fill {
    my $self = shift;
    my $n = sysread $self->{sock}, $self->{buf}, 65536, length $self->{buf};
    if (!defined $n) {
        return undef if $! == EINTR || $! == EAGAIN;
        $self->{error} = "$!";
        $self->{eof} = 1;   # a reset is an end too
        return 0;
    }
    $self->{eof} = 1 if $n == 0;
    return $n;
}

# Wait (up to the deadline) until $cond->() is true, reading as needed.
sub wait_for {
    my($self, $cond, $timeout) = @_;
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($self->{sock});
    while (1) {
        return 1 if $cond->();
        return 0 if $self->{eof};
        my $left = $deadline - time;
        return 0 if $left <= 0;
        next unless $sel->can_read($left);
        $self->fill;
    }
}

# Read the status line and headers.  Returns true when they are complete;
# then $self->{status}, $self->{status_line}, $self->{head} (raw) and
# header($name) / headers($name) are available.
sub read_head {
    my($self, $timeout) = @_;
    return 1 if defined $self->{status};
    $self->wait_for(sub { index($self->{buf}, "\r\n\r\n") >= 0 },
                    $timeout // 5) or return 0;
    $self->parse_head;
    return 1;
}

sub parse_head {
    my $self = shift;
    my $i = index $self->{buf}, "\r\n\r\n";
    my $head = substr $self->{buf}, 0, $i + 4, '';
    $self->{head} = $head;
    my @lines = split /\r\n/, $head;
    $self->{status_line} = shift @lines;
    ($self->{status}) = $self->{status_line} =~ m{^HTTP/1\.\d (\d{3})};
    $self->{status} //= 0;
    my %h;
    for (@lines) {
        my($k, $v) = /^([^:]+):[ \t]*(.*?)[ \t]*$/ or next;
        push @{ $h{lc $k} }, $v;
    }
    $self->{headers} = \%h;
}

# The single value of a header (undef if absent; all values joined with
# ", " if it was sent more than once).
sub header {
    my($self, $name) = @_;
    my $v = $self->{headers}{lc $name} or return undef;
    return join ', ', @$v;
}

sub header_count {
    my($self, $name) = @_;
    my $v = $self->{headers}{lc $name} or return 0;
    return scalar @$v;
}

sub status { $_[0]{status} }

# So a raw_http() answer can be checked like an HTTP::Response.
sub code    { $_[0]{status} }
sub content { $_[0]{body} // '' }

# Read exactly $n body bytes (after the headers).  Returns them, or undef
# if they did not all arrive in time (what did arrive stays in buf).
sub read_bytes {
    my($self, $n, $timeout) = @_;
    $self->wait_for(sub { length($self->{buf}) >= $n }, $timeout // 5)
        or return undef;
    return substr $self->{buf}, 0, $n, '';
}

# Read the headers and the preamble; true if the stream is open as the
# spec says (200 and the body starting with ": ok\n\n").
sub open_ok {
    my($self, $timeout) = @_;
    $timeout //= 5;
    my $deadline = time + $timeout;
    $self->read_head($timeout) or return 0;
    return 0 unless $self->{status} == 200;
    my $p = $self->read_bytes(length SSETest::PREAMBLE,
                              $deadline - time) // return 0;
    $self->{preamble} = $p;
    return $p eq SSETest::PREAMBLE;
}

# Take one complete block (ending in a blank line) from the buffer, if one
# is there.  Blocks made only of comment lines (keepalives) are skipped.
sub take_block {
    my $self = shift;
    while ((my $i = index $self->{buf}, "\n\n") >= 0) {
        my $block = substr $self->{buf}, 0, $i + 2, '';
        next if $block =~ /\A(?::[^\n]*\n)+\n\z/;
        return $block;
    }
    return undef;
}

# The next event block, byte for byte (e.g. "id: 5\ndata: x\n\n"), or undef
# if none arrived before the timeout or the stream ended.
sub next_event {
    my($self, $timeout) = @_;
    my $block;
    $self->wait_for(sub { defined($block = $self->take_block) },
                    $timeout // 5);
    return $block;
}

# Whatever is in the buffer plus what arrives within $timeout, without
# waiting for a block boundary (for "received nothing" diagnostics).
sub pending {
    my($self, $timeout) = @_;
    $self->wait_for(sub { 0 }, $timeout // 0);
    my $b = $self->{buf};
    $b =~ s/\A(?::[^\n]*\n)+\n//;
    return $b;
}

# True if the server closes the connection within $timeout (any data
# received before the close is left in buf).
sub wait_eof {
    my($self, $timeout) = @_;
    return $self->wait_for(sub { $self->{eof} }, $timeout // 5)
        || $self->{eof};
}

sub disconnect {
    my $self = shift;
    CORE::close($self->{sock}) if $self->{sock};
    delete $self->{sock};
}

# ---------------------------------------------------------------------------
package SSETest;

# Open one stream and read its headers and preamble.  Returns the stream
# (check ->{status}, ->{preamble}) or undef with a diagnostic in $@.
sub open_stream {
    my($path, %o) = @_;
    my($s, $err) = SSETest::Stream->start($path, %o);
    unless ($s) { $@ = $err; return undef; }
    $s->open_ok($o{timeout} // 5);
    return $s;
}

# Open $n streams on $path concurrently and wait for all of them to have
# delivered headers and preamble.  Returns (\@ok, \@failed).
sub open_streams {
    my($n, $path, %o) = @_;
    my $timeout = $o{timeout} // 30;
    my $batch = $o{batch} || 100;
    my(@ok, @failed);
    my $sent = 0;
    while ($sent < $n) {
        my $m = $n - $sent < $batch ? $n - $sent : $batch;
        my @pending;
        for (1 .. $m) {
            my($s, $err) = SSETest::Stream->start($path, %o);
            if ($s) { push @pending, $s } else { push @failed, $err }
        }
        $sent += $m;
        my($good, $bad) = _finish_open(\@pending, $timeout);
        push @ok, @$good;
        push @failed, @$bad;
    }
    return (\@ok, \@failed);
}

sub _finish_open {
    my($pending, $timeout) = @_;
    my $deadline = time + $timeout;
    my $plen = length PREAMBLE;
    my %by_fd = map { $_->fd => $_ } @$pending;
    my(@ok, @bad);
    my $sel = IO::Select->new(map { $_->{sock} } @$pending);
    while (%by_fd) {
        my $left = $deadline - time;
        last if $left <= 0;
        for my $fh ($sel->can_read($left)) {
            my $fd = fileno $fh;
            my $s = $by_fd{$fd} or next;
            $s->fill;
            if (!defined $s->{status}
                && index($s->{buf}, "\r\n\r\n") >= 0) {
                $s->parse_head;
            }
            my $verdict;    # undef: not yet; '': open; else what went wrong
            if (defined $s->{status}) {
                if ($s->{status} != 200) {
                    $verdict = "status $s->{status}";
                }
                elsif (length $s->{buf} >= $plen) {
                    $s->{preamble} = substr $s->{buf}, 0, $plen, '';
                    $verdict = $s->{preamble} eq PREAMBLE
                        ? '' : 'preamble ' . show($s->{preamble});
                }
            }
            $verdict = 'EOF before preamble'
                if !defined $verdict && $s->{eof};
            next unless defined $verdict;
            $sel->remove($fh);
            delete $by_fd{$fd};
            if ($verdict eq '') { push @ok, $s }
            else { push @bad, $verdict; $s->disconnect }
        }
    }
    for my $s (values %by_fd) {
        push @bad, 'timeout before preamble';
        $s->disconnect;
    }
    return (\@ok, \@bad);
}

# Read one event block from each stream, concurrently.  Returns a list of
# blocks in the order of @$streams (undef where nothing complete arrived).
sub read_next_events {
    my($streams, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    my @out = map { $_->take_block } @$streams;
    my %idx;
    for my $i (0 .. $#$streams) {
        $idx{ $streams->[$i]->fd } = $i
            unless defined $out[$i] || $streams->[$i]{eof};
    }
    my $sel = IO::Select->new(map { $streams->[$_]{sock} } values %idx);
    while (%idx) {
        my $left = $deadline - time;
        last if $left <= 0;
        for my $fh ($sel->can_read($left)) {
            my $i = $idx{fileno $fh};
            next unless defined $i;
            my $s = $streams->[$i];
            $s->fill;
            $out[$i] = $s->take_block;
            if (defined $out[$i] || $s->{eof}) {
                $sel->remove($fh);
                delete $idx{fileno $fh};
            }
        }
    }
    return @out;
}

sub close_all { $_->disconnect for @_ }

# ---------------------------------------------------------------------------
# Publishing and administration (LWP through Apache::TestRequest).
# ---------------------------------------------------------------------------

# Decode a JSON response body; undef (with $@ set) if it is not JSON.
sub decode_json_res {
    my $res = shift;
    my $v = eval { $json->decode($res->content) };
    return $v;
}

# POST a raw body: publish_raw($path_and_query, $body, $content_type)
sub publish_raw {
    my($url, $body, $ctype) = @_;
    my @h;
    push @h, 'Content-Type' => $ctype if defined $ctype;
    return Apache::TestRequest::POST($url, @h, content => $body // '');
}

# POST a form: publish_form($path, [field => value, ...])
sub publish_form {
    my($url, $fields) = @_;
    my $body = join '&', map {
        esc($fields->[2 * $_]) . '=' . esc($fields->[2 * $_ + 1])
    } 0 .. $#$fields / 2;
    return Apache::TestRequest::POST($url,
        'Content-Type' => 'application/x-www-form-urlencoded',
        content => $body);
}

# publish($channel, data => ..., event => ..., id => ..., retry => ...):
# the usual form publish to /pub; returns (response, decoded JSON).
sub publish {
    my($chan, %f) = @_;
    my @fields = (channel => $chan);
    for my $k (qw(event id retry data)) {
        push @fields, $k => $f{$k} if defined $f{$k};
    }
    my $res = publish_form($f{url} || '/pub', \@fields);
    return wantarray ? ($res, decode_json_res($res)) : $res;
}

# h2_pump($sock, $h2, $timeout, $done): drive a Protocol::HTTP2::Client
# over $sock (TLS or plain) -- write what it has queued, feed it what
# arrived -- until $done->() is true (1) or the timeout or EOF (0).
sub h2_pump {
    my($sock, $h2, $timeout, $done) = @_;
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($sock);
    while (!$done->()) {
        while (my $f = $h2->next_frame) { print $sock $f }
        my $left = $deadline - time;
        return 0 if $left <= 0;
        next unless ($sock->can('pending') && $sock->pending)
                    || $sel->can_read($left < 0.2 ? $left : 0.2);
        my $n = sysread $sock, my $buf, 65536;
        return 0 unless $n;
        $h2->feed($buf);
    }
    return 1;
}

# h2_get($h2, \%req, $path): queue a GET on a Protocol::HTTP2::Client;
# returns a hash that h2_pump() fills: status, headers (names in lower
# case), data (so far).
sub h2_get {
    my($h2, $req, $path) = @_;
    my $got = { data => '' };
    $h2->request(%$req, ':path' => $path,
        on_headers => sub {
            $got->{headers} = { @{ $_[0] } };
            $got->{status} = $got->{headers}{':status'};
            1;
        },
        on_data => sub { $got->{data} .= $_[0]; 1 },
        on_done => sub { });
    return $got;
}

# GET /pub[?channel=...]: returns (response, decoded JSON).
sub admin_get {
    my $chan = shift;
    my $url = defined $chan ? '/pub?channel=' . esc($chan) : '/pub';
    my $res = Apache::TestRequest::GET($url);
    return ($res, decode_json_res($res));
}

sub admin_delete {
    my $chan = shift;
    my $ua = Apache::TestRequest::user_agent();
    my $req = HTTP::Request->new(DELETE =>
        Apache::TestRequest::resolve_url('/pub?channel=' . esc($chan)));
    my $res = $ua->request($req);
    return ($res, decode_json_res($res));
}

# start_writers($n, $each, $one): $n processes publishing at once, each
# calling $one->($writer, $i) for $i = 1 .. $each (true: that publish went
# as it should); returns their pids for wait_writers().
sub start_writers {
    my($n, $each, $one) = @_;
    my @pids;
    for my $w (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            Apache::TestRequest::user_agent(reset => 1, timeout => 30);
            my $bad = 0;
            for my $i (1 .. $each) { $bad++ unless $one->($w, $i) }
            require POSIX;
            POSIX::_exit($bad ? 1 : 0);
        }
        push @pids, $pid;
    }
    return @pids;
}

# wait_writers(@pids): waits for them; how many had a publish go wrong.
sub wait_writers {
    my $bad = 0;
    for (@_) { waitpid $_, 0; $bad++ if $? }
    return $bad;
}

# writers_order(@events), each [id, writer, i] as a stream got them: ids
# increasing, each writer's i 1, 2, 3, ...  The first problem, or ''.
sub writers_order {
    my(%next, $last);
    for my $e (@_) {
        my($id, $w, $i) = @$e;
        return "id $id after $last" if defined $last && $id <= $last;
        $last = $id;
        return "writer $w: event $i where " . ($next{$w} // 1) . ' was due'
            if $i != ($next{$w} // 1);
        $next{$w} = $i + 1;
    }
    return '';
}

# Poll $check->() until it returns true or $timeout seconds pass; returns
# the last value.  For conditions the spec allows to become true "soon".
sub wait_until {
    my($timeout, $check) = @_;
    my $deadline = time + $timeout;
    my $v;
    while (1) {
        $v = $check->();
        return $v if $v || time >= $deadline;
        select undef, undef, undef, 0.02;
    }
}

# The last line of the server's error log that matches $re, or undef.
sub log_line {
    my $re = shift;
    my $log = File::Spec->catfile(Apache::Test::vars('t_logs'), 'error_log');
    open my $fh, '<', $log or return;
    my @l = grep { /$re/ } <$fh>;
    return $l[-1];
}

# A one-shot raw HTTP/1.1 request with Connection: close.  Returns the
# stream object after reading the whole answer (->{body}) until EOF or
# Content-Length (HEAD: none is read).
sub raw_http {
    my($method, $path, %o) = @_;
    my @h = @{ $o{headers} || [] };
    push @h, Connection => 'close' unless $o{keepalive};
    my($s, $err) = SSETest::Stream->start($path, %o, method => $method,
                                         headers => \@h);
    die "raw_http: $err" unless $s;
    my $timeout = $o{timeout} // 5;
    $s->read_head($timeout) or return $s;
    my $cl = $s->header('Content-Length');
    if ($method eq 'HEAD') {
        $s->{body} = '';
    }
    elsif (defined $cl) {
        $s->{body} = $s->read_bytes($cl, $timeout);
    }
    else {
        $s->wait_eof($timeout);
        $s->{body} = $s->{buf};
        $s->{buf} = '';
    }
    return $s;
}

1;
