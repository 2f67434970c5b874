# Fault: a graceful restart (SIGUSR1 to the parent) with many streams open
# and events published all the time.  No crash; the old children close
# their streams and exit; the relay (and so the history) lives on, so every
# client that reconnects with its last id gets exactly what it missed;
# the publisher is answered 200 or 503 throughout and never hangs; the
# parent holds as many descriptors afterwards as before.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/../fault/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Time::HiRes qw(time sleep);
use POSIX ();
use SSETest;
use SSEFault;

my $N = $ENV{SSE_GRACEFUL_STREAMS} || 1500;
my $fds = `sh -c 'ulimit -n'`;
chomp $fds;
if ($fds ne 'unlimited' && $fds < $N + 300) {
    plan skip_all => "ulimit -n is $fds; $N streams need more (run-tests.sh raises it)";
}
plan tests => 13;

my $chan = uniq_chan('grace');
my $path = "/stream?channel=$chan";
my $mark = log_mark();
my $ppid = parent_pid();
# the relay from an earlier test's kill may still be settling: wait for it
wait_until(5, sub { relay_pid() });
my $relay = relay_pid();
my $fd_before = fd_count($ppid);

my($ok) = open_streams($N, $path, batch => 200, timeout => 30);
my @s = @$ok;
is scalar(@s), $N, "$N streams open";
# the old children: those that hold the streams
my %held = stream_pids($chan);
my @old = grep { /^\d+$/ } keys %held;

# the publisher: its own process, one event every 50 ms, each request
# bounded by LWP's timeout; reports "code secs id" lines through a pipe
pipe my $rd, my $wr or die "pipe: $!";
my $pub = fork // die "fork: $!";
if (!$pub) {
    close $rd;
    $wr->autoflush(1);
    Apache::TestRequest::user_agent(reset => 1, timeout => 10);
    my $stop = 0;
    local $SIG{TERM} = sub { $stop = 1 };
    my $i = 0;
    while (!$stop) {
        my $t = time;
        my($res, $j) = publish($chan, data => 'seq ' . ++$i);
        printf $wr "%d %.3f %s\n", $res->code, time - $t,
               ref $j eq 'HASH' ? $j->{id} // '-' : '-';
        sleep 0.05;
    }
    POSIX::_exit(0);
}
close $wr;
sleep 1;

ok kill('USR1', $ppid), 'graceful restart: SIGUSR1 to the parent';
my $t0 = time;
collect(\@s, undef, 20);
my $eof_secs = time - $t0;
my @open = grep { !$_->{eof} } @s;
ok !@open, sprintf('the old children closed all %d streams (%.2f s)', $N, $eof_secs)
    or diag scalar(@open) . ' still open';

my $gone = wait_until(20, sub { !grep { alive($_) } @old });
my $exit_secs = time - $t0;
ok $gone, sprintf('the %d old children exited (%.2f s)', scalar @old, $exit_secs)
    or diag 'still there: ' . join ' ', grep { alive($_) } @old;
is relay_pid() // 0, $relay, 'the relay lives on across the restart';

# every client reconnects with the last id it saw
my %by_last;
push @{ $by_last{ $_->{ids} && @{ $_->{ids} } ? $_->{ids}[-1] : '' } }, $_ for @s;
my(@again, @refused);
for my $last (keys %by_last) {
    my @h = length $last ? (headers => ['Last-Event-ID' => $last]) : ();
    my($ok2, $bad) = open_streams(scalar @{ $by_last{$last} }, $path, @h,
                                  batch => 200, timeout => 30);
    push @refused, @$bad;
    for my $i (0 .. $#$ok2) {
        $ok2->[$i]{ids} = [ @{ $by_last{$last}[$i]{ids} || [] } ];
        $ok2->[$i]{old_ids} = scalar @{ $ok2->[$i]{ids} };
        push @again, $ok2->[$i];
    }
}
is scalar(@again), $N, "all $N clients reconnected to the new children"
    or diag scalar(@refused) . ' refused, e.g. ' . ($refused[0] // '');
my @told = grep { defined $_->header('SSE-History-Lost') } @again;
ok !@told, 'none of them is told history was lost';
sleep 1;

kill 'TERM', $pub;
waitpid $pub, 0;
my @p = map { my @f = split; { code => $f[0], secs => $f[1], id => $f[2] } } <$rd>;
my @ids = map { $_->{id} } grep { $_->{code} == 200 } @p;
my @other = grep { $_->{code} != 200 && $_->{code} != 503 } @p;
ok @ids && !@other, sprintf('%d publishes: %d answered 200, %d 503, %d other',
                            scalar @p, scalar @ids, scalar(grep { $_->{code} == 503 } @p),
                            scalar @other);
my $slowest = 0;
$_->{secs} > $slowest and $slowest = $_->{secs} for @p;
cmp_ok $slowest, '<', 10, sprintf('no publish hung (slowest %.3f s)', $slowest);

collect(\@again, $ids[-1], 20);
my $want = join ',', @ids;
my(@lost, @dup);
for my $st (@again) {
    my $got = join ',', @{ $st->{ids} };
    next if $got eq $want;
    my %seen;
    push @dup, $st if grep { $seen{$_}++ } @{ $st->{ids} };
    push @lost, $st;
}
ok !@lost, sprintf('every client has all %d events exactly once, in order', scalar @ids)
    or diag scalar(@lost) . ' differ (' . scalar(@dup) . ' with duplicates); e.g. got '
          . join(',', @{ $lost[0]{ids} }) . "\nwant $want";

# the parent's descriptors: give the restart a moment to settle
my $fd_after;
wait_until(5, sub { ($fd_after = fd_count($ppid)) == $fd_before });
is $fd_after, $fd_before, "the parent holds $fd_before descriptors before and after";

my @problems = log_problems($mark);
ok !@problems, 'no crash in the error log' or diag join "\n", @problems[0 .. ($#problems > 5 ? 5 : $#problems)];
my(undef, $j) = admin_get($chan);
is ref $j eq 'HASH' ? $j->{subscribers} : -1, $N, "the new children count the $N streams";

reliability('graceful', streams => $N, streams_closed_secs => sprintf('%.2f', $eof_secs),
            old_children_exit_secs => sprintf('%.2f', $exit_secs),
            reconnected => scalar(@again), events => scalar(@ids),
            lost_or_dup_streams => scalar(@lost), publishes => scalar(@p),
            publish_503 => scalar(grep { $_->{code} == 503 } @p), publish_other => scalar(@other),
            slowest_publish_secs => sprintf('%.3f', $slowest),
            parent_fds_before => $fd_before, parent_fds_after => $fd_after,
            crashes => scalar(@problems));
close_all(@again);
