# Counts and delivery across child processes: open streams in concurrent
# batches until GET /pub?channel=X shows them held by at least two child
# pids; then every count must equal the number of open streams, and one
# publish must reach each of them.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/../fault/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Time::HiRes qw(time);
use Time::Local qw(timegm);
use SSETest;
use SSEFault qw(open_over_children);

plan tests => 12;

my $chan = uniq_chan('kids');
my $path = "/stream?channel=$chan";
my $t0 = time;
my($open, $held, $failed) = open_over_children($path, $chan, 0, 200);
my @open = @$open;
my @fail = @$failed;
my %pids = %$held;
my $j;
my $n = @open;
ok !@fail, "every stream request opened ($n open)"
    or diag scalar(@fail) . ' failed: ' . join ', ', @fail[0 .. ($#fail > 4 ? 4 : $#fail)];
cmp_ok scalar(keys %pids), '>=', 2,
       "streams are held by at least 2 child processes (after $n streams)"
    or diag 'pids seen: ' . join ' ', map { "$_ x $pids{$_}" } sort keys %pids;

# GET /pub?channel=X: subscribers and one connection entry per stream
(undef, $j) = admin_get($chan);
$j = {} unless ref $j eq 'HASH';
is $j->{channel}, $chan, 'GET names the channel';
is $j->{subscribers}, $n, "GET: subscribers == $n open streams";
my @conns = ref $j->{connections} eq 'ARRAY' ? @{ $j->{connections} } : ();
is scalar(@conns), $n, "GET: $n connection entries";

my $parent = do {
    my $f = Apache::Test::vars('t_pid_file')
        || Apache::Test::vars('t_logs') . '/httpd.pid';
    open my $fh, '<', $f ? $f : '/dev/null';
    my $p = <$fh> // '';
    chomp $p;
    $p;
};
my(@bad_remote, @bad_since, @bad_pid);
for my $c (@conns) {
    unless (ref $c eq 'HASH') {
        push @bad_remote, 'not an object';
        next;
    }
    push @bad_remote, show($c->{remote}) unless ($c->{remote} // '') eq '127.0.0.1';
    my $since = $c->{since} // '';
    if (my @t = $since =~ /\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?Z\z/) {
        my $epoch = timegm($t[5], $t[4], $t[3], $t[2], $t[1] - 1, $t[0]);
        push @bad_since, "$since (not between start and now)"
            if $epoch < int($t0) - 2 || $epoch > time + 2;
    }
    else {
        push @bad_since, show($since);
    }
    my $pid = $c->{pid} // '';
    if ($pid !~ /\A[1-9][0-9]*\z/ || $pid eq $parent) {
        push @bad_pid, show($pid) . ($pid eq $parent ? ' (the parent)' : '');
    }
    else {
        my $comm = '';
        if (open my $fh, '<', "/proc/$pid/comm") { $comm = <$fh> // ''; chomp $comm }
        push @bad_pid, "$pid (process '$comm')" unless $comm =~ /^(apache2|httpd)/;
    }
}
ok !@bad_remote, 'every remote is 127.0.0.1' or diag join ", ", grep { defined } @bad_remote[0 .. 2];
ok !@bad_since, 'every since is RFC 3339 UTC, within the test run'
    or diag join ', ', grep { defined } @bad_since[0 .. 2];
ok !@bad_pid, 'every pid is a live httpd child (not the parent)'
    or diag join ', ', grep { defined } @bad_pid[0 .. 2];

# publish: the count covers all processes, and everyone gets the event
my($res, $pj) = publish($chan, event => 'all', data => 'to every child');
my @bad = check_pub($pj, $chan, $n);
ok !@bad, "publish: subscribers == $n" or diag join "\n", @bad;
my $want = ev(id => ref $pj eq 'HASH' ? $pj->{id} // '?' : '?',
              event => 'all', data => 'to every child');
my @got = read_next_events(\@open, 10);
my @miss = grep { !defined $got[$_] || $got[$_] ne $want } 0 .. $#open;
is scalar(@miss), 0, "all $n streams received the event byte for byte"
    or diag scalar(@miss) . ' did not; first got ' . show($got[$miss[0]]);

# closing them all brings the count back to 0
close_all(@open);
my $zero = wait_until(3, sub {
    my(undef, $g) = admin_get($chan);
    ref $g eq 'HASH' && defined $g->{subscribers} && $g->{subscribers} == 0;
});
ok $zero, 'after the clients close, the count returns to 0';
my(undef, $g) = admin_get($chan);
is ref $g eq 'HASH' && ref $g->{connections} eq 'ARRAY' ? scalar @{ $g->{connections} } : -1,
   0, 'and no connection entries remain';
