# tools/sse-publish, the command-line publisher: through an HTTP publish
# URL (--url) and straight through the relay's unix socket (--socket; this
# test runs as the httpd user, so the relay lets it in), each reaching a
# stream byte for byte and printing the JSON answer; data from standard
# input; several channels; and its exit codes: 1 usage, 2 invalid event
# (refused before anything is sent), 3 nothing to reach, 4 the server
# refused.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Temp ();
use IO::Socket::INET ();
use JSON::PP ();
use SSETest;

plan tests => 34;

my $top = "$FindBin::Bin/../..";
my $cli = "$top/tools/sse-publish";
my $make = `make -s -C '$top' tools/sse-publish 2>&1`;
ok -x $cli, 'make builds tools/sse-publish' or diag $make;

my $port = Apache::Test::vars('port');
my $url = "http://127.0.0.1:$port/pub";
my($sock) = sort { (stat $b)[9] <=> (stat $a)[9] }
            glob(Apache::Test::vars('t_logs') . '/sse-relay.*.sock');
ok defined $sock && -S $sock, 'the relay socket is in t/logs: ' . ($sock // 'none');
$sock //= '/nonexistent';
my $json = JSON::PP->new->utf8;
# the main server's namespace: its ServerName
my $ns = 'localhost';

# Run the CLI: (exit status, stdout, stderr).
sub cli {
    my($args, $stdin) = @_;
    my($in, $out, $err) = map { File::Temp->new } 1 .. 3;
    print $in $stdin // '';
    close $in;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', $in->filename or exit 126;
        open STDOUT, '>', $out->filename or exit 126;
        open STDERR, '>', $err->filename or exit 126;
        exec $cli, @$args or exit 127;
    }
    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    local $/;
    my @text = map { open my $fh, '<', $_->filename or die; scalar <$fh> } $out, $err;
    return ($rc, @text);
}

# usage and help
{
    my($rc, $o, $e) = cli([]);
    ok $rc == 1 && $e =~ /usage: sse-publish/, 'no arguments: exit 1 and the usage';
    ($rc, $o) = cli(['--help']);
    ok $rc == 0 && $o =~ /Exit status: 0 published; 1 usage error; 2 invalid event.*3 the relay or server cannot be reached; 4 the server\s+refused/s,
       '--help: exit 0, the exit codes are documented';
    ($rc) = cli(['--socket', $sock, '--url', $url, 'c', 'd']);
    is $rc, 1, '--socket and --url together: exit 1';
    ($rc, $o, $e) = cli(['--url', "https://127.0.0.1:$port/pub", 'c', 'd']);
    ok $rc == 1 && $e =~ /https/, 'an https URL: exit 1';
    ($rc) = cli(['--frobnicate', 'c', 'd']);
    is $rc, 1, 'an unknown option: exit 1';
    ($rc) = cli(['c', 'd', 'e']);
    is $rc, 1, 'too many arguments: exit 1';
}

my $chan = uniq_chan('cli');
my $chan2 = uniq_chan('cli');
my $s = open_stream("/stream?channel=$chan");
my $s2 = open_stream("/stream?channel=$chan2");
ok $s && $s->{preamble} eq PREAMBLE && $s2 && $s2->{preamble} eq PREAMBLE,
   'two streams open';

# invalid events: exit 2 with the server's reason, nothing sent
{
    my @cases = (
        [ ['--socket', $sock, '--namespace', $ns, 'a;b', 'x'], undef, qr/invalid channel name/, 'a bad channel name' ],
        [ ['--socket', $sock, '--namespace', $ns, '--event', "ev\nid: 666", $chan, 'x'], undef,
          qr/event name contains CR, LF or NUL/, 'LF in the event name' ],
        [ ['--url', $url, '--id', "a\rb", $chan, 'x'], undef, qr/CR, LF/, 'CR in the id (--url)' ],
        [ ['--socket', $sock, '--namespace', $ns, '--retry', '12a', $chan, 'x'], undef, qr/retry/, 'a retry that is not digits' ],
        [ ['--socket', $sock, '--namespace', $ns, '--event', '', $chan, 'x'], undef, qr/empty/, 'an empty event name' ],
        [ ['--socket', $sock, '--namespace', $ns, $chan], "bad \xff utf-8\n", qr/UTF-8/, 'invalid UTF-8 on stdin' ],
        [ ['--url', $url, $chan, '-'], "nul \0 inside", qr/NUL/, 'NUL in the data' ],
    );
    for my $c (@cases) {
        my($args, $in, $re, $what) = @$c;
        my($rc, $o, $e) = cli($args, $in);
        ok $rc == 2 && $e =~ $re && $o eq '', "$what: exit 2 with the reason"
            or diag "exit $rc, stderr " . show($e);
    }
    is $s->pending(0.3), '', 'none of them reached the stream';
}

# through the publish URL
{
    my($rc, $o, $e) = cli(['--url', $url, '--event', 'greet', '--id', 'cli-1',
                           $chan, 'hello world & more']);
    is $rc, 0, '--url: exit 0' or diag $e;
    my $j = eval { $json->decode($o) };
    ok !check_pub($j, $chan, 1, 'cli-1'), '--url: prints the JSON answer, 1 subscriber'
        or diag show($o);
    is $s->next_event(5), ev(id => 'cli-1', event => 'greet', data => 'hello world & more'),
       '--url: the stream got the event';
}

# through the relay socket, data from stdin
{
    my($rc, $o, $e) = cli(['--socket', $sock, '--namespace', $ns, '--retry', '1500', $chan, '-'],
                          "line 1\nline 2\n");
    is $rc, 0, '--socket: exit 0' or diag $e;
    my $j = eval { $json->decode($o) };
    ok !check_pub($j, $chan, 1), '--socket: the JSON answer, a server id, 1 subscriber'
        or diag show($o);
    is $s->next_event(5), ev(id => ref $j eq 'HASH' ? $j->{id} // '?' : '?',
                             retry => 1500, data => ['line 1', 'line 2']),
       '--socket: the stream got it (the final line break of stdin dropped)';

    ($rc, $o, $e) = cli(['--socket', $sock, '--namespace', $ns, '--event', 'both', "$chan,$chan2", 'two']);
    my $arr = eval { $json->decode($o) };
    ok $rc == 0 && ref $arr eq 'ARRAY' && @$arr == 2
       && !check_pub($arr->[0], $chan, 1) && !check_pub($arr->[1], $chan2, 1)
       && $arr->[0]{id} ne $arr->[1]{id},
       'two channels: exit 0, a JSON array of two answers with their own ids'
        or diag show($o) . show($e);
    my $want = ref $arr eq 'ARRAY' ? $arr : [{}, {}];
    ok $s->next_event(5) eq ev(id => $want->[0]{id} // '?', event => 'both', data => 'two')
       && $s2->next_event(5) eq ev(id => $want->[1]{id} // '?', event => 'both', data => 'two'),
       'each stream got its channel\'s event';
}

# the socket reaches every virtual host: the namespace must be given, and
# another namespace's channel of the same name is another channel
{
    my($rc, $o, $e) = cli(['--socket', $sock, $chan, 'no namespace']);
    ok $rc == 1 && $e =~ /give --namespace/, '--socket without --namespace: exit 1, says why'
        or diag "$rc $e";
    my $no_ns_exit = $rc;
    ($rc, $o, $e) = cli(['--socket', $sock, '--namespace', 'a/b', $chan, 'x']);
    ok $rc == 2 && $e =~ /invalid namespace/, 'a namespace with / : exit 2' or diag "$rc $e";
    ($rc, $o, $e) = cli(['--socket', $sock, '--namespace', 'other.example', $chan, 'elsewhere']);
    my $j = eval { $json->decode($o) };
    ok $rc == 0 && ref $j eq 'HASH' && $j->{channel} eq $chan && $j->{subscribers} == 0,
       'another namespace: published, 0 subscribers' or diag show($o) . show($e);
    my $crossed = $s->pending(0.3);
    is $crossed, '', 'the stream of this namespace did not get it';
    printf "# RELIABILITY ns_cli no_ns_exit=%d other_ns_subscribers=%s other_ns_delivered=%d\n",
        $no_ns_exit, ref $j eq 'HASH' ? $j->{subscribers} // -1 : -1, $crossed eq '' ? 0 : 1;
}

# unreachable: exit 3; refused: exit 4
{
    my $l = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0);
    my $dead = $l->sockport;
    close $l;
    my($rc, $o, $e) = cli(['--url', "http://127.0.0.1:$dead/pub", $chan, 'x']);
    ok $rc == 3 && $e =~ /cannot connect/, 'a closed port: exit 3' or diag "$rc $e";
    ($rc, $o, $e) = cli(['--socket', Apache::Test::vars('t_logs') . '/no-such.sock', '--namespace', $ns, $chan, 'x']);
    ok $rc == 3 && $e =~ /cannot connect to the relay/, 'a missing socket: exit 3'
        or diag "$rc $e";
    ($rc, $o, $e) = cli(['--url', "http://127.0.0.1:$port/small", $chan, 'y' x 2000]);
    ok $rc == 4 && $e =~ /HTTP 413.*SSEMaxEventSize/, 'a 413 from the server: exit 4 with its reason'
        or diag "$rc $e";
    ($rc, $o, $e) = cli(['--url', "http://127.0.0.1:$port/no/such/publish", $chan, 'x']);
    ok $rc == 4 && $e =~ /HTTP 404/, 'a 404: exit 4' or diag "$rc $e";
    is $s->pending(0.3), '', 'nothing reached the stream';
}
