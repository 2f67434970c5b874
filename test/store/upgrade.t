# An upgrade: while events are published every few ms, the module is
# replaced by another build (a copy whose build id differs) and httpd
# restarted gracefully.  The relay must be replaced by one of the new
# build, and a client resuming from the first event must get every event
# answered 200, in order, once, without being told the history was lost:
# with the history in memory (handed from the old relay to the new one)
# and on disk (SSEHistoryPath).  Run by test/store/run.sh.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy ();
use HTTP::Tiny ();
use Test::More;
use Time::HiRes qw(time sleep);
use StoreTest;
use SSEBuild;

my $port = store_port() or plan skip_all => 'run by test/store/run.sh';
my $dir = store_dir();
my $top = "$FindBin::Bin/../..";
my $args = store_args();
my $so = "$dir/mod_sse.so";

File::Copy::copy("$top/mod_sse.so", $so) or die "copy: $!";
for my $mode ('memory', 'store') {
    store_args("$args -DUPGRADE" . ($mode eq 'memory' ? ' -DMEMORY' : ''));
    ok start(), "$mode: the server starts";
    my $old_build = build_of($so);
    my $old_relay = relay_pid();
    my $chan = "up$mode$$";
    my $pub = publisher($chan, 300, 0.002, "$dir/upgrade-$mode.txt");
    $pub->wait_for(100, 20);
    my $new_build = new_build($so);
    my $at = $pub->answered;
    ok system("/usr/sbin/apache2 " . store_args() . " -k graceful >/dev/null 2>&1") == 0,
       "$mode: the module replaced by build $new_build (was $old_build) and a graceful restart, after $at publishes";
    my $deadline = time + 15;
    sleep 0.1 while time < $deadline
        && !grep { /SSE00207: relay \d+ .*mod_sse-build $new_build/ } log_lines(qr/SSE00207/);
    my $new_relay = relay_pid();
    my @answers = $pub->finish;
    ok $new_relay && $old_relay && $new_relay != $old_relay,
       "$mode: a relay of the new build runs (pid $new_relay, was $old_relay)";
    ok scalar(log_lines(qr/SSE00211: .*mod_sse-build $new_build, was mod_sse-build $old_build/)),
       "$mode: the replacement is logged with both builds (SSE00211)";
    my $m = HTTP::Tiny->new(timeout => 5)->get("http://127.0.0.1:$port/metrics")->{content} // '';
    my %v = $m =~ /^mod_sse_(relay_\w+_total) (\d+)$/mg;
    ok(($v{relay_starts_total} // 0) == 2 && ($v{relay_upgrades_total} // 0) == 1,
       "$mode: the metrics count 2 relay starts, 1 for an upgrade");
    if ($mode eq 'memory') {
        my($took) = map { /SSE00224: took over the history of the relay before: (\d+) events/ ? $1 : () }
                    log_lines(qr/SSE00224/);
        ok $took && $took >= 80, "$mode: the new relay took over the old one's history (SSE00224: "
           . ($took // 0) . ' events)';
    }
    my @ok = map { $_->[1] } grep { $_->[0] == 200 } @answers;
    my $refused = grep { $_->[0] != 200 } @answers;
    ok @ok >= 250, "$mode: " . scalar(@ok) . " of 300 publishes answered 200, $refused refused while the relay was replaced";
    my($got) = resume($chan, $ok[0], scalar(@ok) - 1, 15);
    my %seen;
    my @dup = grep { $seen{$_}++ } @$got;
    my @missing = grep { !$seen{$_} } @ok[1 .. $#ok];
    is scalar(@missing), 0, "$mode: resuming from the first event gives every event answered 200"
        . (@missing ? " (missing: @missing[0 .. ($#missing < 4 ? $#missing : 4)])" : '');
    is scalar(@dup), 0, "$mode: ... none twice";
    is_deeply $got, [sort { $a <=> $b } @$got], "$mode: ... in order";
    unlike head_of($chan, $ok[0]), qr/SSE-History-Lost/i, "$mode: ... and the history is not called lost";
    print "# RELIABILITY store_upgrade_$mode publishes=300 answered_200=" . scalar(@ok)
        . " refused=$refused graceful_after=$at missing=" . scalar(@missing)
        . " duplicated=" . scalar(@dup) . "\n";
    ok stop(), "$mode: stop";
}
ok !glob("$dir/*.handover"),
   'no handover directory is left after the stop';

done_testing();
