# make test-fault's gdb checks (test/fault/stalled_relay.sh, lost_event.sh)
# are skipped, with the reason, where they cannot run: ptrace refused.
# Here the refusal is a process that strace already traces (a second
# tracer cannot attach, as under kernel.yama.ptrace_scope or in a
# container without CAP_SYS_PTRACE).  A check that did attach and found
# a fault still fails: the same check against a process that is no relay
# (its publish is never answered 503).  run.sh's row() and report.pl turn
# the skip into SKIP, not FAIL.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use Time::HiRes qw(sleep);

my $fault = "$FindBin::Bin/../fault";
my @missing = grep { system("command -v $_ >/dev/null 2>&1") != 0 } qw(gdb strace curl);
plan skip_all => "needs @missing" if @missing;
plan tests => 8;

sub tracer_of {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/status" or return 0;
    while (<$fh>) { return $1 if /^TracerPid:\s*(\d+)/ }
    return 0;
}

# a process to point the check at (port 1: no server there)
sub target {
    my $secs = shift;
    my $pid = fork // die "fork: $!";
    exec 'sleep', $secs unless $pid;
    return $pid;
}

# run stalled_relay.sh against $pid: (status, result, ok field)
sub stalled {
    my $pid = shift;
    my $out = `timeout 60 bash $fault/stalled_relay.sh 1 $pid 2>/dev/null`;
    my $rc = $? >> 8;
    chomp $out;
    my($res, $ok) = $out =~ /^(.*)\t([^\t]*)$/s ? ($1, $2) : ($out, '');
    return ($rc, $res, $ok);
}

# 1. ptrace refused: another tracer holds the process
my $t = target(60);
my $strace = fork // die "fork: $!";
if (!$strace) {
    open STDERR, '>', '/dev/null';
    exec 'strace', '-p', $t, '-o', '/dev/null';
}
for (1 .. 100) { last if tracer_of($t); sleep 0.05 }
my $tracer = tracer_of($t);
ok $tracer, "strace (pid $strace) traces process $t (TracerPid $tracer)";
my($rc, $res, $ok) = stalled($t);
kill 'TERM', $strace;
waitpid $strace, 0;
kill 'KILL', $t;
waitpid $t, 0;
is $ok, 'skip', "a check that cannot attach is skipped ($res)";
like $res, qr/^skipped: gdb cannot attach to the relay \(pid $t\): .*already traced by $tracer/i,
     'the reason: gdb\'s refusal and who holds the process';
is $rc, 0, 'and the check exits 0';

# 2. run.sh's row() and report.pl: SKIP, nothing failed
my $dir = File::Temp->newdir;
my $row = `sed -n '/^row() {/,/^}/p' $fault/run.sh`;
my $sh = "res=$dir/quick.tsv; failed=0\n$row\n"
       . "row 'stalled relay' 'held with gdb' 1 'skipped: ptrace' skip 2>/dev/null\n"
       . "echo \"failed=\$failed\"\n";
open my $fh, '>', "$dir/row.sh" or die $!;
print $fh $sh;
close $fh;
my $rowout = `bash $dir/row.sh`;
my $tsv = '';
if (open my $in, '<', "$dir/quick.tsv") { local $/; $tsv = <$in> }
like "$rowout|$tsv", qr/^failed=0\n\|stalled relay\theld with gdb\t1\tskipped: ptrace\tSKIP\n$/,
     'run.sh records a SKIP row and does not fail the run';
my $md = `perl $fault/report.pl --mode quick --out - $dir 2>&1`;
like $md, qr/\*\*0 checks passed, 0 failed, 1 skipped \(could not run here\)\.\*\*/,
     'report.pl counts it skipped, not failed';
unlike $md, qr/## Failed checks\n\n- /, 'and lists no failed check';

# 3. attached, and the check found a fault: it fails
# (the check waits for the relay's next epoll_wait: the process ends once
# gdb has held it for 2 s)
$t = target(300);
my $ender = fork // die "fork: $!";
if (!$ender) {
    my $held = 0;
    while ($held < 20 && kill 0, $t) {
        $held = tracer_of($t) ? $held + 1 : 0;
        sleep 0.1;
    }
    kill 'KILL', $t;
    require POSIX;
    POSIX::_exit(0);
}
($rc, $res, $ok) = stalled($t);
kill 'KILL', $t;
waitpid $t, 0;
waitpid $ender, 0;
ok $ok eq '0' && $rc != 0, "a check that ran and found a fault fails ($ok: $res)";
