# Fault: a child that is stopped (SIGSTOP) for longer than a stats tick,
# then killed.  With SSEStatsChannel the relay asks every child for its
# counters once a second; the stopped child never answers, so when it dies
# the relay closes its connection with that question still owed, and
# finishing it publishes the stats event, which reads every broker.  The
# relay must survive that (it once re-entered the closing connection and
# freed it twice), and keep serving: same relay pid, publishes answered,
# the streams on the other children served.
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

my $chan = uniq_chan('stopkill');
my $path = "/stream?channel=$chan";
my $mark = log_mark();

my($open, $held) = open_over_children($path, $chan, 20, 300);
my %pids = %$held;
cmp_ok scalar(keys %pids), '>=', 2, scalar(@$open) . ' streams held by '
       . scalar(keys %pids) . ' children';
my $relay = relay_pid();
ok $relay, 'the relay runs (pid ' . ($relay // '?') . ')';

# the child with the most streams: stopped past two stats ticks, then killed
my($victim) = sort { $pids{$b} <=> $pids{$a} } grep { $_ ne '?' } keys %pids;
my $left = @$open - ($victim ? $pids{$victim} : 0);
kill 'STOP', $victim if $victim;
sleep 2.5;
kill 'KILL', $victim if $victim;
kill 'CONT', $victim if $victim;

# wait until the relay has dropped the killed child's streams
sub held { my(undef, $x) = admin_get($chan); ref $x eq 'HASH' ? $x->{subscribers} // -1 : -1 }
ok wait_until(5, sub { held() == $left }),
   "the count drops to the $left streams on the other children";
is relay_pid(), $relay, 'the same relay still runs';
my($res, $j) = publish($chan, data => 'after');
is $res->code . ' ' . (ref $j eq 'HASH' ? $j->{subscribers} // '?' : '?'), "200 $left",
   "a publish reaches the $left left";
my @bad = grep { !/\Q$victim\E/ } log_problems($mark, [$victim]);
is scalar(@bad), 0, 'no crash in the error log' or diag join "\n", @bad[0 .. ($#bad > 4 ? 4 : $#bad)];
