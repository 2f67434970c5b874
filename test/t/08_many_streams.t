# 2,000 parked streams on a server with MaxRequestWorkers 50: parked
# streams hold no worker.  All are registered, the server still answers
# ordinary requests quickly while they are open, and one publish reaches
# all 2,000, byte for byte.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Time::HiRes qw(time);
use SSETest;

my $N = $ENV{SSE_MANY_STREAMS} || 2000;

my $fds = `sh -c 'ulimit -n'`;
chomp $fds;
if ($fds ne 'unlimited' && $fds < $N + 200) {
    plan skip_all => "ulimit -n is $fds; $N streams need more (run-tests.sh raises it)";
}
plan tests => 9;

my $chan = uniq_chan('many');
my $t = time;
my($ok, $fail) = open_streams($N, "/stream?channel=$chan", batch => 200, timeout => 30);
my $took = time - $t;
my @s = @$ok;
is scalar(@s), $N, sprintf('%d streams opened (headers + preamble) in %.1f s', scalar(@s), $took)
    or diag scalar(@$fail) . ' failed, e.g. ' . join ', ', @$fail[0 .. ($#$fail > 4 ? 4 : $#$fail)];

my(undef, $j) = admin_get($chan);
is ref $j eq 'HASH' ? $j->{subscribers} : undef, $N, "GET: subscribers == $N";
is ref $j eq 'HASH' && ref $j->{connections} eq 'ARRAY' ? scalar @{ $j->{connections} } : -1,
   $N, "GET: $N connection entries";
my %pids = map { ref $_ eq 'HASH' ? (($_->{pid} // '') => 1) : () }
           @{ ref $j eq 'HASH' && $j->{connections} || [] };
diag sprintf '%d streams held by %d processes', $N, scalar keys %pids;

# ordinary requests are still served, quickly
{
    $t = time;
    my $res = Apache::TestRequest::GET('/index.html');
    my $dt = time - $t;
    is $res->code, 200, 'static file while the streams are open: 200';
    cmp_ok $dt, '<', 2, sprintf('... answered in %.3f s', $dt);

    $t = time;
    my $other = open_stream('/stream?channel=' . uniq_chan('extra'), timeout => 5);
    $dt = time - $t;
    ok $other && $other->{preamble} eq PREAMBLE && $dt < 2,
       sprintf('one more stream opens in %.3f s', $dt);
    $other->disconnect if $other;
}

# one publish reaches them all
{
    $t = time;
    my($res, $pj) = publish($chan, event => 'bulk', data => "to all $N");
    my @bad = check_pub($pj, $chan, $N);
    ok !@bad, "publish: subscribers == $N" or diag join "\n", @bad;
    my $want = ev(id => ref $pj eq 'HASH' ? $pj->{id} // '?' : '?',
                  event => 'bulk', data => "to all $N");
    my @got = read_next_events(\@s, 30);
    my @miss = grep { !defined $got[$_] || $got[$_] ne $want } 0 .. $#s;
    is scalar(@miss), 0,
       sprintf('all %d streams received the event (%.1f s)', scalar(@s), time - $t)
        or diag scalar(@miss) . ' did not; e.g. got ' . show($got[$miss[0]]);
}

close_all(@s);
ok wait_until(10, sub {
        my(undef, $g) = admin_get($chan);
        ref $g eq 'HASH' && defined $g->{subscribers} && $g->{subscribers} == 0 }),
   'all closed: count back to 0';
