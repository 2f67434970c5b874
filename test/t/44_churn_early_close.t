# Churn: streams that come and go by the thousand, ended every way a client
# can end them, while events are published.  Afterwards every child holds
# as many descriptors as before, every count is 0, and no child crashed.
#
# Part 1: clean close and RST (SO_LINGER 0) after the preamble.
# Part 2: "early" clients that send the request and close at once, before
# the answer: the broker's first write to such a stream fails while the
# worker thread may still hold its own descriptor of the socket.  (Kept in
# its own part because it brings children down: see the final message of
# the hardening work, or test/RELIABILITY.md.)
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/../fault/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use IO::Socket::INET ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time sleep);
use SSETest;
use SSEFault;

my $CYCLES = $ENV{SSE_CHURN_CYCLES} || 2000;
my $EARLY = $ENV{SSE_EARLY_CYCLES} || 3000;
plan tests => 9;

my $port = Apache::Test::vars('port');
my $chan = uniq_chan('churn');
my $path = "/stream?channel=$chan";

# descriptors other than the relay connections (one per worker thread at
# most, kept on purpose): streams, files, listeners
sub per_child_fds {
    my %n;
    for my $pid (children_pids()) {
        my($other) = fd_kinds($pid);
        $n{$pid} = $other if defined $other;
    }
    return %n;
}

# one cycle: open a stream, read the preamble, end it the given way
sub cycle {
    my $how = shift;
    my $s = open_stream($path, timeout => 5) or return 0;
    my $ok = ($s->{status} // 0) == 200 && ($s->{preamble} // '') eq PREAMBLE;
    setsockopt($s->{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) if $how eq 'rst';
    $s->disconnect;
    return $ok;
}

# warm up, then the baseline
cycle($_ % 2 ? 'rst' : 'clean') for 1 .. 200;
wait_until(3, sub { my(undef, $j) = admin_get(); ref $j eq 'HASH' && !@{ $j->{channels} } });
my %before = per_child_fds();
my $mark = log_mark();

# part 1, with a publisher posting to the channel all along
my $pub = fork // die "fork: $!";
if (!$pub) {
    my $stop = 0;
    local $SIG{TERM} = sub { $stop = 1 };
    Apache::TestRequest::user_agent(reset => 1, timeout => 10);
    until ($stop) { publish($chan, data => 'x' x 512); sleep 0.01 }
    CORE::exit(0);
}
my $t0 = time;
my $good = 0;
$good += cycle($_ % 2 ? 'rst' : 'clean') for 1 .. $CYCLES;
my $secs = time - $t0;
kill 'TERM', $pub;
waitpid $pub, 0;
is $good, $CYCLES, sprintf('%d streams opened and ended (clean close or RST) in %.1f s', $CYCLES, $secs);

ok wait_until(3, sub { my(undef, $j) = admin_get(); ref $j eq 'HASH' && !@{ $j->{channels} } }),
   'afterwards no channel has a stream';
my %after;
wait_until(3, sub {
    %after = per_child_fds();
    !grep { defined $after{$_} && $after{$_} != $before{$_} } keys %before;
});
my @leaky = grep { defined $after{$_} && $after{$_} != $before{$_} } sort keys %before;
ok !@leaky, 'every child holds as many descriptors (besides relay connections) as before ('
            . join(', ', map { "$_: $before{$_}" } sort keys %before) . ')'
    or diag join ', ', map { "$_: $before{$_} -> $after{$_}" } @leaky;
my @problems = log_problems($mark);
ok !@problems, 'no crash in the error log' or diag join "\n", @problems[0 .. ($#problems > 5 ? 5 : $#problems)];

# part 2: early closes
my @kids = children_pids();
$mark = log_mark();
my $sent = 0;
$t0 = time;
for (1 .. $EARLY) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5)
        or next;
    syswrite $s, "GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n\r\n";
    close $s;
    $sent++;
}
my $esecs = time - $t0;
is $sent, $EARLY, sprintf('%d clients sent a stream request and closed at once (%.1f s)', $EARLY, $esecs);
sleep 1.5;    # the parent logs a child's death within its 1 s maintenance
@problems = log_problems($mark);
ok !@problems, 'no child crashed'
    or diag scalar(@problems) . " error log lines, e.g.\n"
          . join "\n", @problems[0 .. ($#problems > 5 ? 5 : $#problems)];
my @dead = grep { !alive($_) } @kids;
ok !@dead, 'every child that served them is still alive'
    or diag 'gone: ' . join ' ', @dead;
ok wait_until(3, sub { my(undef, $j) = admin_get(); ref $j eq 'HASH' && !@{ $j->{channels} } }),
   'afterwards no channel has a stream';
my $s = open_stream($path);
my(undef, $j) = publish($chan, data => 'still here');
like $s ? $s->next_event(5) // '' : '', qr/^data: still here$/m, 'streams still work';
$s->disconnect if $s;

my $ebad = grep { /SSE00102/ } split /\n/, log_since($mark);
reliability('churn_early_close', cycles => $CYCLES, early_cycles => $EARLY,
            leaked_fds => scalar(@leaky), crashes => scalar(@problems),
            children_died => scalar(@dead), ebadf_lines => $ebad);
