# Fault: kill -9 of one child while events are being published.  Only the
# streams that child held end; every stream of the other children receives
# every event, before and after the kill, in order; the counts drop the
# dead child's streams within a second; no publish hangs; nothing else in
# the server crashes.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/../fault/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Time::HiRes qw(time sleep);
use SSETest;
use SSEFault;

plan tests => 12;

my $chan = uniq_chan('kill');
my $path = "/stream?channel=$chan";
my $mark = log_mark();

# streams until at least two children hold some
my($open, $held) = open_over_children($path, $chan, 40, 300);
my @s = @$open;
my %pids = %$held;
my $n = @s;
cmp_ok scalar(keys %pids), '>=', 2, "$n streams held by " . scalar(keys %pids) . ' children';

my($victim) = sort { $pids{$b} <=> $pids{$a} } keys %pids;
my $k = $pids{$victim} // 0;
my $left = $n - $k;

my @before = publish_series($chan, 5, 0.02, 'before');
ok !(grep { $_->{code} != 200 || ($_->{subscribers} // -1) != $n } @before),
   "5 publishes before the kill reach all $n streams";

# kill -9, then publish every 50 ms while watching the count
ok kill('KILL', $victim), "kill -9 child $victim (it holds $k streams)";
my $t0 = time;
my($count_secs, @after);
while (time - $t0 < 1.5 || !defined $count_secs) {
    push @after, publish_series($chan, 1, 0, 'after');
    my(undef, $j) = admin_get($chan);
    $count_secs //= time - $t0
        if ref $j eq 'HASH' && ($j->{subscribers} // -1) == $left;
    last if time - $t0 > 5;
}
ok defined $count_secs && $count_secs < 1,
   sprintf('GET counts %d streams (the dead child\'s %d dropped) after %.3f s',
           $left, $k, $count_secs // -1);

my @bad = grep { $_->{code} != 200 } @after;
ok !@bad, scalar(@after) . ' publishes after the kill all answered 200'
    or diag join ', ', map { "$_->{code} after $_->{secs} s" } @bad[0 .. ($#bad > 4 ? 4 : $#bad)];
my $slowest = 0;
$_->{secs} > $slowest and $slowest = $_->{secs} for @before, @after;
cmp_ok $slowest, '<', 5, sprintf('no publish hangs (slowest %.3f s)', $slowest);
my @wrong = grep { ($_->{subscribers} // -1) != $left } @after[1 .. $#after];
ok !@wrong, "every publish after the first counts the $left live streams"
    or diag 'counts: ' . join ' ', map { $_->{subscribers} // 'undef' } @after;

# every surviving stream got every event; the dead child's streams ended
my @ids = map { $_->{id} } grep { $_->{code} == 200 } @before, @after;
collect(\@s, $ids[-1], 10);
my @ended = grep { $_->{eof} } @s;
my @live = grep { !$_->{eof} } @s;
is scalar(@ended), $k, "the $k streams of the killed child ended";
is scalar(@live), $left, "the other $left streams stay open";
my $want = join ',', @ids;
my @lost = grep { join(',', @{ $_->{ids} || [] }) ne $want } @live;
ok !@lost, sprintf('each of them received all %d events in order', scalar @ids)
    or diag scalar(@lost) . ' did not; e.g. got ' . join(',', @{ $lost[0]{ids} || [] });

# a new stream works (on whichever child takes it)
my $new = open_stream($path);
my(undef, $pj) = publish($chan, data => 'new');
my $blk = $new ? $new->next_event(5) // '' : '';
like $blk, qr/^data: new$/m, 'a stream opened after the kill receives events';

my @problems = log_problems($mark, [$victim]);
ok !@problems, 'no crash in the error log (besides the SIGKILL)'
    or diag join "\n", @problems[0 .. ($#problems > 5 ? 5 : $#problems)];

reliability('kill_child', streams => $n, killed_child_streams => $k,
            survivors => scalar(@live), events => scalar(@ids),
            lost => scalar(@lost), count_drop_secs => sprintf('%.3f', $count_secs // -1),
            publishes => scalar(@before) + scalar(@after),
            publish_non200 => scalar(@bad),
            slowest_publish_secs => sprintf('%.3f', $slowest),
            crashes => scalar(@problems));
close_all(@s, $new // ());
