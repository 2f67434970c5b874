# The history on disk (SSEHistoryPath), against one private server that
# test/store/run.sh started the first time (STORE_PORT, STORE_DIR,
# STORE_ARGS: how to start and stop it).  Every check that a client gets
# what it missed resumes with Last-Event-ID and compares ids: every event
# answered 200 is there, in order, once.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use StoreTest;

my $port = store_port() or plan skip_all => 'run by test/store/run.sh';
my $dir = store_dir();
my $run = $$;
$| = 1;         # the RELIABILITY lines among the test's own, in order

my $args = $ENV{STORE_ARGS};
sub parent_pid_alive { sleep 1; my $p = parent_pid(); $p && kill 0, $p }
ok start(), 'the server starts with SSEHistoryPath';
ok -d "$dir/history" && ((stat "$dir/history")[2] & 0777) == 0700,
   'the history directory is made, mode 0700';
# (the relay loads it while the children already answer: wait for its line)
my $t_load = time + 5;
sleep 0.1 while time < $t_load && !log_lines(qr/SSE00221: history store: \d+ events loaded/);
ok log_lines(qr/SSE00221: history store: \d+ events loaded/), 'the relay loaded the store';

# --- a stop and a start ------------------------------------------------------
my $ca = "a$run";
my @ids = map { (publish($ca, "event $_"))[1] } 1 .. 30;
is scalar(grep { defined } @ids), 30, '30 events published';
ok stop(), 'apachectl stop';
ok start(), 'start again';
my($got, $data, $lost) = resume($ca, $ids[9], 20);
is "@$got", "@ids[10 .. 29]", 'resuming after the 10th id gives the 20 events after it, in order, once'
    . ($lost ? ' (the stream said ": history lost")' : '');
is $data->[0], 'event 11', '... byte for byte';
my $lost_told = $lost || head_of($ca, $ids[9]) =~ /SSE-History-Lost/i ? 1 : 0;
ok !$lost_told, '... and the history is not called lost (no SSE-History-Lost header, no ": history lost")';
my(undef, $next) = publish($ca, 'after the restart');
ok defined $next && $next > $ids[-1], "ids go on rising (" . ($next // 'none') . " after $ids[-1])";
my($missing, $dup) = missing_and_dups($got, [ @ids[10 .. 29] ]);
reliability(stop_start => events => 30, resumed_after => 10, got => scalar(@$got),
            missed => scalar(@$missing), duplicated => scalar(@$dup),
            history_lost_told => $lost_told, ids_rise => defined $next && $next > $ids[-1] ? 1 : 0);

# --- kill -9 of the relay in a burst ----------------------------------------
my $cb = "b$run";
# 5 ms apart: the kill comes in the middle
my $pub = publisher($cb, 600, 0.005, "$dir/burst.txt", 'burst');
$pub->wait_for(100, 10);
my $relay = relay_pid();
ok $relay && kill('KILL', $relay), "kill -9 the relay (pid " . ($relay // '?') . ") in the middle of a burst";
my $at_kill = $pub->answered;
my @answers = $pub->finish;
my @ok = map { $_->[1] } grep { $_->[0] == 200 } @answers;
my $refused = grep { $_->[0] != 200 } @answers;
ok $at_kill >= 100 && $at_kill < 600 && @ok >= 100,
   "the kill came after $at_kill of 600 publishes; " . scalar(@ok)
   . " answered 200, $refused refused while the relay was away";
my $deadline = time + 10;
sleep 0.2 while time < $deadline && (relay_pid() // 0) == $relay;
($got) = resume($cb, $ok[0], scalar(@ok) - 1, 10);
my $new_relay = relay_pid() // 0;
($missing, $dup) = missing_and_dups($got, [ @ok[1 .. $#ok] ]);
is scalar(@$missing), 0, 'every event answered 200 is in the history after the relay\'s crash'
    . (@$missing ? " (missing: @$missing[0 .. ($#$missing < 4 ? $#$missing : 4)])" : '');
is scalar(@$dup), 0, '... none twice';
my $ordered = "@$got" eq join ' ', sort { $a <=> $b } @$got;
is_deeply $got, [sort { $a <=> $b } @$got], '... in order';
reliability(kill_relay => publishes => scalar(@answers), at_kill => $at_kill, answered_200 => scalar(@ok),
            refused => $refused, missing => scalar(@$missing), duplicated => scalar(@$dup),
            in_order => $ordered ? 1 : 0, new_relay => $new_relay != $relay ? 1 : 0);

# --- kill -9 of every process ------------------------------------------------
my $pp = parent_pid();
my @all = ($pp, split ' ', `pgrep -P $pp` // '');
ok kill('KILL', @all), 'kill -9 the parent, the children and the relay';
down($_) for @all;
ok start(), 'start again';
($got, undef, $lost) = resume($ca, $ids[0], 30);
is "@$got", "@ids[1 .. 29] $next", 'everything is still there after a kill of every process'
    . ($lost ? ' (the stream said ": history lost")' : '');
($missing, $dup) = missing_and_dups($got, [ @ids[1 .. 29], $next ]);
reliability(kill_all => processes => scalar(@all), events => 30, got => scalar(@$got),
            missing => scalar(@$missing), duplicated => scalar(@$dup), history_lost_told => $lost);

# --- a damaged store ------------------------------------------------------------
ok stop(), 'stop';
my $file = "$dir/history/data.mdb";
my $size = -s $file;
ok $size && truncate($file, int($size / 3)), "truncate the store's data file ($size bytes) to a third";
# SSEHistoryStrict On: the start fails, before httpd detaches
my $strict = system("/usr/sbin/apache2 $args -C 'SSEHistoryStrict On' -k start >/dev/null 2>&1");
my $strict_refused = $strict != 0 && !parent_pid_alive();
ok $strict_refused, 'with SSEHistoryStrict On, apachectl start fails';
my $strict_lines = log_lines(qr/SSE00015: SSEHistoryStrict On: history store \S*data\.mdb is truncated.*remove/);
ok $strict_lines, '... saying why, naming the file and the fix (SSE00015)';
is -s $file, int($size / 3), '... and the file is left as it was';
ok start(), 'without it, the server starts all the same';
my $errors = log_lines(qr/SSE00223: history store \S*data\.mdb is truncated.*moved to \S*data\.mdb\.damaged-\d+/);
ok $errors, 'one clear error naming the file and where it was moved (SSE00223)';
$lost_told = head_of($ca, $ids[20]) =~ /SSE-History-Lost: true/i ? 1 : 0;
ok $lost_told, 'a resuming client is told the history was lost';
my($code, $a1) = publish($ca, 'after the damage');
my(undef, $a2) = publish($ca, 'after the damage, 2');
is $code, 200, 'publishing goes on';
ok stop() && start(), 'stop and start';
($got) = resume($ca, $a1, 1);
my $on_disk = "@$got" eq ($a2 // '?') ? 1 : 0;
ok $on_disk, '... the history is on disk again: what was published after the damage is there';
my $kept = () = glob("$dir/history/data.mdb.damaged-*");
ok $kept, '... and the damaged file is kept beside it';
reliability(truncated => bytes => $size, truncated_to => int($size / 3), strict_refused => $strict_refused ? 1 : 0,
            code => 'SSE00223', code_lines => $errors, history_lost_told => $lost_told,
            publish_after => $code, on_disk_again => $on_disk, moved_aside => $kept);

# --- a full store ------------------------------------------------------------------
ok stop(), 'stop';
unlink glob "$dir/history/*";
ok start(), 'start with an empty store (SSEHistoryMaxSize 4M)';
my $cc = "c$run";
my $big = 'x' x 200_000;
my $n005 = () = log_lines(qr/SSE00005/);
my(@full_ok, $full_code);
for my $i (1 .. 60) {
    my($code, $id) = publish($cc, "$i $big");
    if ($code != 200) { $full_code = $code; last }
    push @full_ok, $id;
}
is $full_code, 503, 'past SSEHistoryMaxSize a publish is answered 503 (after ' . scalar(@full_ok) . ' of 200 KB)';
ok scalar(log_lines(qr/SSE00220: the history store is full/)), '... and logged (SSE00220)';
ok scalar(log_lines(qr/SSE00001: 503 \/pub: not published: the history store cannot keep it/)),
   '... the client told why (the relay refused it), not "the relay did not answer"';
is scalar(() = log_lines(qr/SSE00005/)), $n005, '... and no SSE00005';
my $fsize = -s $file;
ok $fsize <= 4 * 1024 * 1024 + 65536, "the store stays within its size ($fsize bytes)";
($got) = resume($cc, $full_ok[0], scalar(@full_ok) - 1);
is "@$got", "@full_ok[1 .. $#full_ok]", 'every event accepted before it is kept';
($missing, $dup) = missing_and_dups($got, [ @full_ok[1 .. $#full_ok] ]);
reliability(full => event_bytes => 200_000, accepted => scalar(@full_ok), code => $full_code,
            logged => scalar(log_lines(qr/SSE00220/)) ? 1 : 0, file_bytes => $fsize,
            cap_bytes => 4 * 1024 * 1024, missing => scalar(@$missing), duplicated => scalar(@$dup));

# --- a full disk (root only: a 1 MB tmpfs as the store's directory) ----------------
SKIP: {
    if ($> != 0) {
        reliability(full_disk => skipped => 1);
        skip 'a full disk needs root (a tmpfs mount)', 5;
    }
    ok stop(), 'stop';
    unlink glob "$dir/history/*";
    my $uid = (getpwnam 'nobody')[2];
    ok system("mount -t tmpfs -o size=1m,mode=0700,uid=$uid tmpfs $dir/history") == 0
       && start(), 'start with the store on a 1 MB file system (SSEHistoryMaxSize 4M)';
    my $cd = "d$run";
    my(@disk_ok, $disk_code);
    for my $i (1 .. 40) {
        my($code, $id) = publish($cd, "$i " . ('y' x 100_000));
        if ($code != 200) { $disk_code = $code; last }
        push @disk_ok, $id;
    }
    is $disk_code, 503, 'a full disk answers the publish 503 (after ' . scalar(@disk_ok) . ' of 100 KB)';
    ($got) = resume($cd, $disk_ok[0], scalar(@disk_ok) - 1);
    is "@$got", "@disk_ok[1 .. $#disk_ok]", 'every event accepted before it is there';
    ($missing, $dup) = missing_and_dups($got, [ @disk_ok[1 .. $#disk_ok] ]);
    stop();
    ok system("umount $dir/history") == 0, 'unmount';
    reliability(full_disk => fs_bytes => 1024 * 1024, event_bytes => 100_000, accepted => scalar(@disk_ok),
                code => $disk_code, missing => scalar(@$missing), duplicated => scalar(@$dup));
}

done_testing();
