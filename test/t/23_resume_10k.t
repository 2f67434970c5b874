# Issue "Nothing lost": a publisher sends 10,000 numbered events while the
# client's TCP connection is killed (RST) at random byte positions, often
# in the middle of an event; each time it reconnects with the id of the
# last whole event it saw.  In the middle, the server does a graceful
# restart.  The client must see every event exactly once, in order.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Spec ();
use IO::Select ();
use IO::Socket::INET ();
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time);
use SSETest;

plan tests => 5;

my $N = 10_000;
my $chan = uniq_chan('tenk');
my $port = Apache::Test::vars('port');
srand(20261125);

sub connect_stream {
    my $last = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5) or return;
    my $req = "GET /stream?channel=$chan HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    $req .= "Last-Event-ID: $last\r\n" if defined $last;
    syswrite $s, "$req\r\n";
    return { sock => $s, buf => '', head => undef };
}

my $pid = fork // die "fork: $!";
if (!$pid) {
    Apache::TestRequest::user_agent(reset => 1, keep_alive => 1, timeout => 30);
    my $bad = 0;
    for my $n (1 .. $N) {
        my $ok;
        for (1 .. 100) {        # a restart may refuse for a moment
            my $res = SSETest::publish($chan, data => "n$n", url => '/bigpub');
            $ok = $res->code == 200 and last;
            select undef, undef, undef, 0.05;
        }
        $bad++ unless $ok;
    }
    POSIX::_exit($bad ? 1 : 0);
}

my(@got, $last, $lost_seen);
my($kills, $reconnects, $restarted) = (0, 0, 0);
my $st = connect_stream(undef);
my $budget = 200 + int rand 3000;       # bytes until the next kill
my $deadline = time + 120;
while (@got < $N && time < $deadline) {
    my $sel = IO::Select->new($st->{sock});
    my $n = $sel->can_read(5) ? sysread($st->{sock}, my $chunk, 4096) : undef;
    my $eof = !$n;
    if ($n) {
        $chunk = substr $chunk, 0, $budget if $n > $budget;   # "the wire broke here"
        $budget -= length $chunk;
        $st->{buf} .= $chunk;
        if (!defined $st->{head} && (my $i = index $st->{buf}, "\r\n\r\n") >= 0) {
            $st->{head} = substr $st->{buf}, 0, $i + 4, '';
            $lost_seen++ if $st->{head} =~ /SSE-History-Lost/i;
        }
        if (defined $st->{head}) {
            while ((my $i = index $st->{buf}, "\n\n") >= 0) {
                my $blk = substr $st->{buf}, 0, $i + 2, '';
                my($id) = $blk =~ /^id: (.*)$/m or next;
                my($d) = $blk =~ /^data: (.*)$/m;
                push @got, $d;
                $last = $id;
            }
        }
    }
    if ($budget <= 0) {                  # kill the connection: RST
        setsockopt $st->{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0);
        $kills++;
        $eof = 1;
        $budget = 200 + int rand 3000;
    }
    if (!$restarted && @got >= $N / 2) {   # graceful restart in the middle
        open my $fh, '<', File::Spec->catfile(Apache::Test::vars('t_logs'), 'httpd.pid');
        chomp(my $ppid = <$fh>);
        kill 'USR1', $ppid;
        $restarted = 1;
    }
    if ($eof) {
        close $st->{sock};
        $st = undef;
        for (1 .. 100) {
            $st = connect_stream($last) and last;
            select undef, undef, undef, 0.05;
        }
        die "cannot reconnect" unless $st;
        $reconnects++;
    }
}
close $st->{sock} if $st;
waitpid $pid, 0;
is $? >> 8, 0, "the publisher's $N publishes all succeeded";
ok $kills >= 20, "the connection was killed $kills times at random byte positions ($reconnects reconnects)";
ok $restarted, 'a graceful restart happened in the middle';
is scalar(@got), $N, "$N events received";
my $want = join ',', map { "n$_" } 1 .. $N;
ok join(',', @got) eq $want && !$lost_seen, 'each exactly once, in order, nothing reported lost'
    or diag 'first difference at ' . (grep({ $got[$_] ne "n" . ($_ + 1) } 0 .. $#got))[0];
