# Fault: a child killed with kill -9 must give its streams back to
# SSEMaxSubscribers ("most open event streams in the whole server"; 2100
# in t/conf/resume.conf.in).  Fill the server up to the limit, kill -9 a
# child that holds k of the streams: once the counts show the k gone, k
# new streams must be admitted again.  (The streams are counted in shared memory; a child that dies
# without running its cleanup never takes its streams off that count.)
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/../fault/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Time::HiRes qw(time sleep);
use SSETest;
use SSEFault;

plan tests => 6;

# earlier tests' streams are gone within a second
wait_until(5, sub { my(undef, $j) = admin_get(); ref $j eq 'HASH' && !@{ $j->{channels} } });

my $chan = uniq_chan('limit');
my $path = "/stream?channel=$chan";
my $mark = log_mark();
# fill up to the limit: open in batches until some are refused
my(@s, @refused);
while (@s < 2500 && !@refused) {
    my($ok, $bad) = open_streams(200, $path, batch => 200, timeout => 30);
    push @s, @$ok;
    push @refused, @$bad;
}
my $full = @s;
ok @refused && !(grep { $_ ne 'status 503' } @refused) && $full > 100,
   "filled: $full streams admitted, the others refused with 503"
    or diag 'refused: ' . join ', ', @refused[0 .. ($#refused > 3 ? 3 : $#refused)];
my %pids = stream_pids($chan);
my($victim) = sort { $pids{$b} <=> $pids{$a} } grep { $_ ne '?' } keys %pids;
my $k = $victim ? $pids{$victim} : 0;
ok $victim && kill('KILL', $victim), "kill -9 child " . ($victim // '?') . " holding $k of them";
my $t0 = time;
ok wait_until(3, sub { my(undef, $j) = admin_get($chan); ($j->{subscribers} // -1) == $full - $k }),
   sprintf('the counts drop its %d streams (%.2f s)', $k, time - $t0);
collect(\@s, undef, 0.5);

# the k places it held are free again (the parent notices the death
# within its one-second maintenance: allow 3 s)
my(@more, $extra);
my $t1 = time;
while (time - $t1 < 3 && @more < $k) {
    my($ok2) = open_streams($k - @more, $path, batch => 200, timeout => 30);
    push @more, @$ok2;
    sleep 0.2 if @more < $k;
}
my($over) = open_streams(2, $path, batch => 2, timeout => 10);
is scalar(@more), $k, sprintf('after the kill, %d new streams are admitted within %.1f s', $k, time - $t1)
    or diag 'admitted ' . scalar(@more) . ": the dead child's streams are still counted";
is scalar(@$over), 0, 'and then the limit holds again: the next streams are refused';
my @problems = log_problems($mark, [$victim // 0]);
ok !@problems, 'no crash in the error log' or diag join "\n", @problems[0 .. ($#problems > 5 ? 5 : $#problems)];
reliability('kill_child_limit', filled => $full, killed_child_streams => $k,
            readmitted => scalar(@more), leaked_places => $k - scalar(@more));
close_all(@s, @more, @$over);
