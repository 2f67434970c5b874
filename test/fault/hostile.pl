#!/usr/bin/perl
# test/fault/hostile.pl: hostile input against a running mod_sse server
# (the private httpd of test/fault/run.sh).  Each case is sent as raw bytes
# and must get the answer docs/publishing.md promises; a stream on every channel
# used checks that nothing refused was published and that every accepted
# event arrives with exactly its fields (parsed as a browser would), so no
# publisher input can add a field, an event or a line of its own.
#
#   perl hostile.pl --port P --out rows.tsv [--quick] [--relay-sock PATH
#        --helper build/fault/ssefault --run-user U --stranger nobody]
#
# Writes one TSV row per group of cases: area, what, tries, result, verdict
# (PASS or FAIL).  Exit status 1 if any row failed.
use strict;
use warnings;
use IO::Socket::INET ();
use IO::Select ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time sleep);
use Getopt::Long;
use JSON::PP ();

$SIG{PIPE} = 'IGNORE';
my %o = (port => 0, out => '-', quick => 0, 'run-user' => '', stranger => 'nobody');
GetOptions(\%o, 'port=i', 'out=s', 'quick', 'relay-sock=s', 'helper=s',
           'run-user=s', 'stranger=s', 'log=s') or die "bad options\n";
die "--port is required\n" unless $o{port};
my $port = $o{port};
open my $OUT, '>>', $o{out} eq '-' ? '/dev/stdout' : $o{out} or die "$o{out}: $!";
$OUT->autoflush(1);
my $failed = 0;

sub row {
    my($area, $what, $tries, $result, $ok) = @_;
    $failed++ unless $ok;
    print $OUT join("\t", $area, $what, $tries, $result, $ok ? 'PASS' : 'FAIL'), "\n";
    printf STDERR "  %-4s %s: %s (%s)\n", $ok ? 'ok' : 'FAIL', $area, $what, $result;
}

sub pct { my $s = shift; $s =~ s/([^A-Za-z0-9._~-])/sprintf('%%%02X', ord $1)/ge; $s }

sub show {
    my $s = shift // 'undef';
    $s =~ s/\\/\\\\/g; $s =~ s/\r/\\r/g; $s =~ s/\n/\\n/g; $s =~ s/\0/\\0/g;
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return $s;
}

# --- raw HTTP ----------------------------------------------------------------

sub connect_srv {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5) or return undef;
    binmode $s;
    $s->autoflush(1);
    return $s;
}

# Send bytes, read the answer until EOF or timeout.  Returns a hash:
# status, head, body, secs, timeout (1 if the deadline passed).
sub raw {
    my($bytes, $timeout) = @_;
    $timeout //= 10;
    my $t0 = time;
    my $s = connect_srv() or return { status => 0, err => "connect: $!", secs => 0 };
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite $s, $bytes, 65536, $off;
        last unless defined $n;     # the server may answer (413) and close early
        $off += $n;
    }
    return read_answer($s, $t0, $timeout);
}

sub read_answer {
    my($s, $t0, $timeout, $head_only) = @_;
    my $buf = '';
    my $sel = IO::Select->new($s);
    my $to = 0;
    while (1) {
        my $left = $t0 + $timeout - time;
        if ($left <= 0) { $to = 1; last }
        last if $buf =~ /\r\n\r\n/ && ($head_only || (answer_complete($buf) // 0));
        next unless $sel->can_read($left);
        my $n = sysread $s, $buf, 65536, length $buf;
        last unless $n;
    }
    close $s;
    my($head, $body) = split /\r\n\r\n/, $buf, 2;
    my($st) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    if (defined $body && ($head // '') =~ /^Transfer-Encoding:\s*chunked/mi) {
        my $plain = '';
        while ($body =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $n = hex $1;
            last unless $n;
            $plain .= substr $body, 0, $n, '';
            $body =~ s/\A\r\n//;
        }
        $body = $plain;
    }
    return { status => $st // 0, head => $head // '', body => $body // '',
             secs => time - $t0, timeout => $to };
}

sub answer_complete {
    my $buf = shift;
    my($head, $body) = split /\r\n\r\n/, $buf, 2;
    return undef unless defined $body;
    return length($body) >= $1 if $head =~ /^Content-Length:\s*(\d+)/mi;
    return $body =~ /(?:\A|\r\n)0\r\n\r\n\z/ if $head =~ /^Transfer-Encoding:\s*chunked/mi;
    return undef;   # until EOF
}

sub req {
    my(%r) = @_;
    my $m = $r{method} || 'POST';
    my $h = "$m $r{path} HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nConnection: close\r\n";
    $h .= "Content-Type: $r{ctype}\r\n" if $r{ctype};
    $h .= $r{headers} // '';
    if (defined $r{body} && !$r{no_length}) {
        $h .= 'Content-Length: ' . length($r{body}) . "\r\n";
    }
    return $h . "\r\n" . ($r{body} // '');
}

# --- streams that watch what gets published ----------------------------------

my %watch;      # channel => { sock, buf }

sub watch {
    my $chan = shift;
    my $s = connect_srv() or die "watch $chan: connect: $!";
    print $s "GET /stream?channel=$chan HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n\r\n";
    my $w = { sock => $s, buf => '' };
    my $sel = IO::Select->new($s);
    my $t = time;
    while ($w->{buf} !~ /\r\n\r\n: ok\n\n/ && time - $t < 5) {
        sysread $s, $w->{buf}, 65536, length $w->{buf} if $sel->can_read(0.5);
    }
    die "watch $chan: no preamble: " . show($w->{buf}) . "\n" unless $w->{buf} =~ s/\A.*?\r\n\r\n: ok\n\n//s;
    $watch{$chan} = $w;
}

# Everything the stream on $chan received, parsed as the WHATWG parser
# does: a list of events { id, event, retry, data } and the raw lines.
sub received {
    my($chan, $wait) = @_;
    my $w = $watch{$chan};
    my $sel = IO::Select->new($w->{sock});
    my $deadline = time + ($wait // 0.5);
    while (time < $deadline) {
        next unless $sel->can_read(0.05);
        my $n = sysread $w->{sock}, $w->{buf}, 65536, length $w->{buf};
        last unless $n;
    }
    my(@ev, %cur, @data, @lines);
    my $text = $w->{buf};
    for my $line (split /\r\n|\r|\n/, $text, -1) {
        push @lines, $line;
        if ($line eq '') {
            push @ev, { %cur, data => join("\n", @data) } if @data || %cur;
            %cur = (); @data = ();
            next;
        }
        next if $line =~ /^:/;
        my($f, $v) = $line =~ /^([^:]*)(?::(.*))?$/s;
        $v //= '';
        $v =~ s/^ //;
        if ($f eq 'data') { push @data, $v }
        elsif ($f eq 'id' || $f eq 'event' || $f eq 'retry') { $cur{$f} = $v }
        else { $cur{unknown} = "$f:$v" }
    }
    return (\@ev, \@lines);
}

sub take_received { my $c = shift; my @r = received($c, @_); $watch{$c}{buf} = ''; return @r }

# --- 1. field injection --------------------------------------------------------

my @bad_ctl = ("a\rb", "a\nb", "a\r\nb", "a\0b", "x\nevent: evil", "x\r\ndata: evil",
               "x\n\nid: 666\ndata: injected", "\n", "\r", "\0");
my @bad_retry = ('abc', '1 2', '-1', '+5', '12345678901', '1.5', ' 5', "5\n", "1\nevent: evil", '');
my $inj = "inj$$";
watch($inj);

sub form_pub {
    my($chan, %f) = @_;
    my $body = join '&', map { pct($_) . '=' . pct($f{$_}) } sort keys %f;
    return raw(req(path => "/pub?channel=$chan", ctype => 'application/x-www-form-urlencoded', body => $body));
}

sub query_pub {
    my($chan, $data, %f) = @_;
    my $q = join '', map { '&' . pct($_) . '=' . pct($f{$_}) } sort keys %f;
    return raw(req(path => "/pub?channel=$chan$q", ctype => 'text/plain', body => $data));
}

sub stream_pub {
    my($chan, $body) = @_;
    return raw(req(path => "/pub?channel=$chan", ctype => 'text/event-stream', body => $body));
}

{
    my(@bad, $tries) = ();
    $tries = 0;
    for my $field (qw(event id)) {
        for my $v (@bad_ctl) {
            for my $how (qw(form query)) {
                $tries++;
                my $r = $how eq 'form' ? form_pub($inj, data => 'never', $field => $v)
                                       : query_pub($inj, 'never', $field => $v);
                push @bad, "$how $field=" . show($v) . " -> $r->{status}" unless $r->{status} == 400;
            }
        }
    }
    for my $v (@bad_retry) {
        for my $how (qw(form query)) {
            $tries++;
            my $r = $how eq 'form' ? form_pub($inj, data => 'never', retry => $v)
                                   : query_pub($inj, 'never', retry => $v);
            push @bad, "$how retry=" . show($v) . " -> $r->{status}" unless $r->{status} == 400;
        }
    }
    # NUL in data, by every body type
    for my $d ("a\0b", "\0", "x\0\ndata: evil") {
        $tries += 3;
        my $r = form_pub($inj, data => $d);
        push @bad, "form data=" . show($d) . " -> $r->{status}" unless $r->{status} == 400;
        $r = query_pub($inj, $d);
        push @bad, "text/plain data=" . show($d) . " -> $r->{status}" unless $r->{status} == 400;
        $r = stream_pub($inj, "data: $d\n\n");
        push @bad, "event-stream data=" . show($d) . " -> $r->{status}" unless $r->{status} == 400;
    }
    # text/event-stream bodies that try to smuggle a field
    for my $b ("event: a\0b\ndata: x\n\n", "id: 1\0\ndata: x\n\n", "retry: 1x\ndata: x\n\n",
               "evil: x\ndata: x\n\n", "data: x\nid: a\rb\n\n", "event: x\rstray: y\ndata: x\n\n") {
        $tries++;
        my $r = stream_pub($inj, $b);
        push @bad, "event-stream " . show($b) . " -> $r->{status}" unless $r->{status} == 400;
    }
    my($ev) = take_received($inj, 1);
    row('injection', 'CR, LF, CRLF, NUL in event and id; bad retry; NUL in data; unknown fields (form, query, text/event-stream)',
        $tries, @bad ? scalar(@bad) . " not refused: $bad[0]" : "all 400; stream received " . scalar(@$ev) . ' events',
        !@bad && !@$ev);
}

# data with line breaks is accepted and becomes data lines: never a field
{
    my @cases = ("a\nevent: evil", "a\r\nid: 666", "a\rretry: 1", "x\n\ndata: second event",
                 "\nid: 1\n", "line1\r\n\r\nline3", ": comment?\nevent: x");
    my(@bad, @sent);
    for my $d (@cases) {
        for my $how (qw(form text event-stream)) {
            my $r;
            if ($how eq 'form') { $r = form_pub($inj, data => $d, event => 'safe') }
            elsif ($how eq 'text') { $r = query_pub($inj, $d, event => 'safe') }
            else {
                # in a text/event-stream body, line breaks end fields by
                # definition: send the lines as data lines
                my $b = "event: safe\n" . join('', map { "data: $_\n" } split /\r\n|\r|\n/, $d, -1) . "\n";
                $r = stream_pub($inj, $b);
            }
            if ($r->{status} != 200) { push @bad, "$how " . show($d) . " -> $r->{status}"; next }
            my $j = eval { JSON::PP::decode_json($r->{body}) };
            (my $want = $d) =~ s/\r\n|\r/\n/g;
            push @sent, { id => ref $j eq 'HASH' ? $j->{id} : '?', data => $want };
        }
    }
    my($ev, $lines) = take_received($inj, 1);
    my @odd = grep { $_ ne '' && !/^(?:id|event|retry|data): / && !/^:/ } @$lines;
    for my $i (0 .. $#sent) {
        my $e = $ev->[$i];
        push @bad, "event $i: " . (defined $e ? "got id " . show($e->{id}) . ' event ' . show($e->{event})
                                   . ' data ' . show($e->{data}) . (defined $e->{retry} ? ' retry!' : '')
                                   . (defined $e->{unknown} ? ' unknown!' : '') : 'missing')
            unless defined $e && ($e->{id} // '') eq $sent[$i]{id} && ($e->{event} // '') eq 'safe'
                   && $e->{data} eq $sent[$i]{data} && !defined $e->{retry} && !defined $e->{unknown};
    }
    push @bad, scalar(@$ev) . ' events received for ' . scalar(@sent) . ' published' if @$ev != @sent;
    push @bad, 'a line that is not a field or comment: ' . show($odd[0]) if @odd;
    row('injection', 'CR, LF, CRLF inside data (form, text/plain, text/event-stream): split into data lines, no field injected',
        scalar(@cases) * 3, @bad ? $bad[0] : 'each event arrived with exactly its id, event and data',
        !@bad);
}

# --- 2. invalid UTF-8 --------------------------------------------------------------

{
    my @seq = ("\xff", "\xc0\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
               "\x80", "ok \xc3\x28", "\xf8\x88\x80\x80\x80", "\xfe\xfe\xff\xff");
    my(@bad, $tries);
    $tries = 0;
    for my $u (@seq) {
        for my $case (['form data', sub { form_pub($inj, data => "x$u") }],
                      ['form event', sub { form_pub($inj, data => 'x', event => "e$u") }],
                      ['form id', sub { form_pub($inj, data => 'x', id => "i$u") }],
                      ['text/plain body', sub { query_pub($inj, "x$u") }],
                      ['event-stream data', sub { stream_pub($inj, "data: x$u\n\n") }],
                      ['event-stream event', sub { stream_pub($inj, "event: e$u\ndata: x\n\n") }],
                      ['channel', sub { raw(req(path => '/pub?channel=' . pct("c$u"), ctype => 'text/plain', body => 'x')) }],
                      ['Last-Event-ID', sub { raw(req(method => 'GET', path => "/stream?channel=$inj",
                                                       headers => "Last-Event-ID: 1$u\r\n"), 3) }]) {
            $tries++;
            my $r = $case->[1]->();
            push @bad, "$case->[0] " . show($u) . " -> $r->{status}" unless $r->{status} == 400;
        }
    }
    my($ev) = take_received($inj, 1);
    row('utf-8', 'invalid UTF-8 (overlong, surrogate, > U+10FFFF, truncated, stray continuation, 0xFE/0xFF) in data, event, id, channel, Last-Event-ID',
        $tries, @bad ? scalar(@bad) . " not refused: $bad[0]" : 'all 400, nothing published',
        !@bad && !@$ev);
}

# --- 3. oversized bodies --------------------------------------------------------------

{
    my @bad;
    my $t = 0;
    # a Content-Length over the limit is refused before the body is read:
    # send the headers only and wait for the answer
    my $s = connect_srv();
    print $s "POST /pub?channel=$inj HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 65537\r\n\r\n";
    my $r = read_answer($s, time, 5);
    $t++;
    push @bad, "CL 65537, no body sent: $r->{status} after " . sprintf('%.2f s', $r->{secs})
        unless $r->{status} == 413 && $r->{secs} < 2;
    my $early = $r->{secs};
    $r = raw(req(path => "/pub?channel=$inj", ctype => 'text/plain', body => 'x' x 65537)); $t++;
    push @bad, "65537-byte body: $r->{status}" unless $r->{status} == 413;
    $r = raw(req(path => "/pub?channel=$inj", ctype => 'text/plain', body => 'x' x (4 * 1024 * 1024))); $t++;
    push @bad, "4 MiB body: $r->{status}" unless $r->{status} == 413;
    $r = raw(req(path => "/smallpub?channel=$inj", ctype => 'text/plain', body => 'x' x 1025)); $t++;
    push @bad, "/smallpub 1025 bytes: $r->{status}" unless $r->{status} == 413;
    # chunked, no Content-Length: refused once the limit is passed
    my $chunks = join('', map { sprintf("%x\r\n%s\r\n", 4096, 'y' x 4096) } 1 .. 20) . "0\r\n\r\n";
    $r = raw(req(path => "/pub?channel=$inj", ctype => 'text/plain', headers => "Transfer-Encoding: chunked\r\n",
                 body => $chunks, no_length => 1)); $t++;
    push @bad, "80 KiB chunked: $r->{status}" unless $r->{status} == 413;
    for my $cl ('99999999999999999999', '-1', '1e5', '0x10', '65536 65536') {
        $r = raw(req(path => "/pub?channel=$inj", ctype => 'text/plain', headers => "Content-Length: $cl\r\n",
                     body => 'x', no_length => 1), 5); $t++;
        push @bad, "Content-Length: $cl -> $r->{status}" unless $r->{status} == 400 || $r->{status} == 413;
    }
    my($ev) = take_received($inj, 1);
    $r = raw(req(path => "/pub?channel=$inj", ctype => 'text/plain', body => 'z' x 65536)); $t++;
    push @bad, "exactly 65536 bytes: $r->{status}" unless $r->{status} == 200;
    my($ev2) = take_received($inj, 1);
    push @bad, 'the 65536-byte event did not arrive whole'
        unless @$ev2 == 1 && $ev2->[0]{data} eq 'z' x 65536;
    row('size', 'bodies over SSEMaxEventSize (65537 B, 4 MiB, chunked 80 KiB, /smallpub 1025 B), bad Content-Length values',
        $t, @bad ? $bad[0] : sprintf('all 413/400 (413 for a declared 65537 B after %.3f s, body unread); 65536 B accepted whole', $early),
        !@bad && !@$ev);
}

# many events in one body: one request, thousands of publishes
{
    my $n = $o{quick} ? 2000 : 7000;
    my $body = "data: x\n\n" x $n;
    my $c = "many$$";
    watch($c);
    my $r = raw(req(path => "/pub?channel=$c", ctype => 'text/event-stream', body => $body), 120);
    my $j = eval { JSON::PP::decode_json($r->{body}) };
    my $answers = ref $j eq 'ARRAY' ? scalar @$j : 0;
    my($ev) = take_received($c, 2);
    my $ok = $r->{status} == 200 && $answers == $n && @$ev == $n;
    row('size', "$n event blocks in one " . length($body) . '-byte text/event-stream body',
        1, sprintf('%d, %d answers, %d events received, %.2f s for the request', $r->{status}, $answers, scalar @$ev, $r->{secs}),
        $ok);
    close $watch{$c}{sock};
    delete $watch{$c};
}

# --- 4. slow bodies (slowloris) ------------------------------------------------------

{
    my $n = 20;
    my $c = "slow$$";
    watch($c);
    my @slow;
    my $t0 = time;
    for my $i (1 .. $n) {
        my $s = connect_srv() or next;
        print $s "POST /pub?channel=$c HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n";
        push @slow, { sock => $s, sent => 0, i => $i };
    }
    # one honest slow publisher: 5 bytes, one a second, within the timeout
    my $h = connect_srv();
    print $h "POST /pub?channel=$c HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n";
    my($hsent, $hres) = (0, undef);
    my(@lat, $ended, $closed_at);
    my $sel = IO::Select->new(map { $_->{sock} } @slow);
    my $next_byte = time;
    while (time - $t0 < 40 && (@slow || !$hres)) {
        if (time >= $next_byte) {
            for my $sl (@slow) { syswrite $sl->{sock}, 'a'; $sl->{sent}++ }
            if ($hsent < 5) { syswrite $h, substr('hello', $hsent, 1); $hsent++ }
            $next_byte += 1;
            # meanwhile, ordinary traffic must still be served
            my $r = raw(req(path => "/pub?channel=other$$", ctype => 'text/plain', body => 'ping'), 10);
            push @lat, $r->{status} == 200 ? $r->{secs} : 99;
        }
        for my $fh ($sel->can_read(0.05)) {
            my $buf = '';
            sysread $fh, $buf, 4096;
            my($sl) = grep { $_->{sock} == $fh } @slow;
            $sl->{answer} = ($buf =~ m{^HTTP/1\.\d (\d{3})})[0] // 'closed';
            $sl->{at} = time - $t0;
            $sel->remove($fh);
            close $fh;
            @slow = grep { $_ != $sl } @slow;
            push @{ $ended }, $sl;
        }
        if ($hsent >= 5 && !$hres) {
            my $hs = IO::Select->new($h);
            if ($hs->can_read(0)) { $hres = read_answer($h, time, 5) }
        }
    }
    my($ev) = take_received($c, 1);
    my @ends = @{ $ended || [] };
    my $maxlat = 0; $_ > $maxlat and $maxlat = $_ for @lat;
    my $last = 0; $_->{at} > $last and $last = $_->{at} for @ends;
    my %codes; $codes{ $_->{answer} }++ for @ends;
    my $ok = @ends == $n && !@slow && $last < 30 && $maxlat < 1
             && $hres && $hres->{status} == 200 && @$ev == 1 && $ev->[0]{data} eq 'hello';
    row('slowloris', "$n publish bodies trickled 1 byte/s (Content-Length 64), plus ordinary publishes every second",
        $n, sprintf('slow ones ended by the server after <= %.1f s (%s), none published; ordinary publishes answered in <= %.3f s; '
                    . 'a slow but complete body published once', $last,
                    join(', ', map { "$_: $codes{$_}" } sort keys %codes), $maxlat),
        $ok);
    close $_->{sock} for @slow;
    close $watch{$c}{sock};
    delete $watch{$c};
}

# --- 5. thousands of channel names ---------------------------------------------------

{
    my(@bad, $t);
    $t = 0;
    my @names = map { "c$_" } 1 .. 1300;
    my $r = raw(req(method => 'GET', path => '/stream?channel=' . join(',', @names)), 5); $t++;
    push @bad, "1300 channels in one list: $r->{status}" unless $r->{status} == 400;
    $r = raw(req(method => 'GET', path => '/stream?' . join('&', map { "channel=$_" } @names[0 .. 599])), 5); $t++;
    push @bad, "600 channel= arguments: $r->{status}" unless $r->{status} == 400;
    $r = raw(req(method => 'GET', path => '/stream?channel=' . join(',', @names[0 .. 32])), 5); $t++;
    push @bad, "33 channels: $r->{status}" unless $r->{status} == 400;
    my $big = join('&', map { "channel=x$_" } 1 .. 4000);
    $r = raw(req(path => '/pub', ctype => 'application/x-www-form-urlencoded', body => "data=x&$big")); $t++;
    push @bad, "publish to 4000 channels (form): $r->{status}" unless $r->{status} == 400;
    $r = raw(req(method => 'GET', path => '/stream?channel=' . ('a' x 129)), 5); $t++;
    push @bad, "a 129-byte name: $r->{status}" unless $r->{status} == 400;
    for my $name ("a\0b", 'a<b', "caf\xc3\xa9", 'a%b', "a\x7fb") {
        $r = raw(req(method => 'GET', path => '/stream?channel=' . pct($name)), 5); $t++;
        push @bad, 'the name ' . show($name) . ": $r->{status}" unless $r->{status} == 400;
    }
    # exactly 32 is a stream
    my $s = connect_srv();
    print $s "GET /stream?channel=" . join(',', @names[0 .. 31]) . " HTTP/1.1\r\nHost: x\r\n\r\n"; $t++;
    my $buf = '';
    my $sel = IO::Select->new($s);
    sysread $s, $buf, 4096, length $buf while $buf !~ /: ok\n\n/ && $sel->can_read(3);
    push @bad, '32 channels: ' . show(substr $buf, 0, 20) unless $buf =~ m{^HTTP/1\.1 200} && $buf =~ /: ok\n\n/;
    close $s;
    row('channels', 'too many channel names in one request (1300 in a list, 600 arguments, 33, 4000 in a publish form), overlong and bad names',
        $t, @bad ? $bad[0] : 'all 400; 32 names (SSEMaxChannels) accepted', !@bad);
}

# --- 6. header floods --------------------------------------------------------------------

{
    my(@bad, $t);
    $t = 0;
    my $many = join '', map { "X-Flood-$_: " . ('v' x 50) . "\r\n" } 1 .. 150;
    my $r = raw(req(method => 'GET', path => "/stream?channel=$inj", headers => $many), 5); $t++;
    push @bad, "150 headers: $r->{status}" unless $r->{status} == 400;
    $r = raw(req(method => 'GET', path => "/stream?channel=$inj", headers => 'X-Big: ' . ('v' x 9000) . "\r\n"), 5); $t++;
    push @bad, "a 9000-byte header: $r->{status}" unless $r->{status} == 400;
    $r = raw(req(method => 'GET', path => "/stream?channel=$inj&pad=" . ('p' x 9000)), 5); $t++;
    push @bad, "a 9000-byte request line: $r->{status}" unless $r->{status} == 414;
    $r = raw(req(method => 'GET', path => "/stream?channel=$inj", headers => 'Last-Event-ID: ' . ('1' x 1025) . "\r\n"), 5); $t++;
    push @bad, "a 1025-byte Last-Event-ID: $r->{status}" unless $r->{status} == 400;
    $r = raw(req(method => 'GET', path => "/pub?channel=$inj", headers => join('', map { "Last-Event-ID: $_\r\n" } 1 .. 90)), 5); $t++;
    push @bad, "90 Last-Event-ID headers on GET /pub: $r->{status}" unless $r->{status} == 200;
    # 90 Last-Event-ID headers on a stream: Apache joins them; unknown id
    my $s = connect_srv();
    print $s "GET /stream?channel=$inj HTTP/1.1\r\nHost: x\r\n" . join('', map { "Last-Event-ID: $_\r\n" } 1 .. 90) . "\r\n"; $t++;
    my $buf = '';
    my $sel = IO::Select->new($s);
    sysread $s, $buf, 4096, length $buf while $buf !~ /\r\n\r\n/ && $sel->can_read(3);
    push @bad, '90 Last-Event-ID headers on a stream: ' . show(substr $buf, 0, 30) unless $buf =~ m{^HTTP/1\.1 (200|400)};
    close $s;
    # 500 connections at once, each sending 100 headers of 8000 bytes
    my @c;
    for (1 .. ($o{quick} ? 50 : 200)) { my $x = connect_srv() or last; push @c, $x }
    my $hdrs = join '', map { "X-H$_: " . ('h' x 8000) . "\r\n" } 1 .. 99;
    for my $x (@c) { syswrite $x, "GET /stream?channel=$inj HTTP/1.1\r\nHost: x\r\n"; }
    my $t1 = time;
    for my $x (@c) { my $off = 0; while ($off < length $hdrs) { my $n = syswrite $x, $hdrs, 65536, $off; last unless $n; $off += $n } syswrite $x, "\r\n" }
    my %codes;
    for my $x (@c) { my $a = read_answer($x, time, 10, 1); $codes{ $a->{status} }++ }
    $t += @c;
    push @bad, '792 KB header blocks: ' . join(', ', map { "$_: $codes{$_}" } sort keys %codes)
        if grep { $_ != 200 && $_ != 400 && $_ != 431 } keys %codes;
    my($ev) = take_received($inj, 1);
    row('headers', 'header floods: 150 headers, a 9000-byte header and request line, a 1025-byte and 90 Last-Event-IDs, '
                   . scalar(@c) . ' clients sending 99 headers of 8000 bytes (792 KB, just under the limits) at once',
        $t, @bad ? $bad[0] : 'all refused (400/414) or, for the joined Last-Event-IDs, served; '
                             . join(', ', map { "$_: $codes{$_}" } sort keys %codes) . sprintf(' in %.1f s', time - $t1),
        !@bad && !@$ev);
}

# --- 7. the relay socket, from other local users ------------------------------------------

if ($o{'relay-sock'}) {
    my $sock = $o{'relay-sock'};
    my @st = stat $sock;
    my $owner = @st ? getpwuid($st[4]) // $st[4] : '?';
    my $mode = @st ? sprintf('%04o', $st[2] & 07777) : '?';
    my $ok_mode = @st && ($st[2] & 077) == 0 && $owner eq $o{'run-user'};
    row('relay socket', "socket file owner and mode ($sock)", 1,
        "owner $owner, mode $mode", $ok_mode);
    if ($> == 0 && $o{helper}) {
        my $probe = "probe";
        watch($probe);
        my $stranger = $o{stranger};
        my $uid = getpwnam($stranger);
        my $mark = $o{log} ? -s $o{log} // 0 : 0;
        my $run = sub { my $out = `@_ 2>&1`; my %kv = $out =~ /^(\w+)=(.*)$/mg; return \%kv };
        my $a = $run->("runuser -u $stranger -- $o{helper} relay-probe $sock");
        my $b = $run->("$o{helper} relay-probe $sock --as-uid $uid --keep-dac");
        my($ev) = take_received($probe, 1);
        my $logged = 0;
        if ($o{log} && open my $lf, '<', $o{log}) { seek $lf, $mark, 0; $logged = grep { /SSE00204/ } <$lf> }
        row('relay socket', "user $stranger connects to the relay socket", 2,
            "connect: list $a->{list_connect}, publish $a->{publish_connect}",
            ($a->{list_connect} // '') =~ /^refused/ && ($a->{publish_connect} // '') =~ /^refused/);
        row('relay socket', "user $stranger with CAP_DAC_OVERRIDE (past the file mode): the relay's SO_PEERCRED check", 2,
            "connect $b->{list_connect}; LIST answer: $b->{list_answer}; PUBLISH answer: $b->{publish_answer}; "
            . scalar(@$ev) . " events delivered; SSE00204 logged $logged times",
            ($b->{list_answer} // '') =~ /^closed/ && ($b->{publish_answer} // '') =~ /^closed/
            && !@$ev && (!$o{log} || $logged >= 2));
        # control: the run user itself is served, so the frames above were good
        my $c = $run->("runuser -u $o{'run-user'} -- $o{helper} relay-probe $sock");
        my($ev2) = take_received($probe, 1);
        row('relay socket', "control: the run user $o{'run-user'} sends the same frames", 2,
            "LIST answer: $c->{list_answer}; PUBLISH answer: $c->{publish_answer}; " . scalar(@$ev2) . ' event delivered',
            ($c->{list_answer} // '') =~ /^frame/ && @$ev2 == 1);
    }
}

# everything is still fine
{
    my $r = raw(req(path => "/pub?channel=$inj", ctype => 'text/plain', body => 'final'));
    my($ev) = take_received($inj, 1);
    row('after', 'the server still publishes and streams after all of the above', 1,
        "publish $r->{status}, " . scalar(@$ev) . ' event received',
        $r->{status} == 200 && @$ev == 1 && $ev->[0]{data} eq 'final');
}
close $_->{sock} for values %watch;
exit($failed ? 1 : 0);
