# Fault: every child's broker loses its relay connection while the relay
# lives on, and stays off it for a while (its reconnects fail: the relay's
# socket is renamed away, as a full listen backlog would make them fail);
# meanwhile a stream is opened, with no Last-Event-ID, and events are
# published straight to the relay (through the renamed socket).  When the
# socket is back, the brokers return to the same relay.  README promises
# that a client that has read ": ok" is counted by every later publish, and
# that nothing is lost: the new stream must stay open and get the events
# published after it opened (not the one before), in order, then the live
# ones; or, if what it missed cannot be known, ": history lost" on the same
# stream and then the live ones.  (It used to be ended, as a stream from
# before the loss is, and its client, with no Last-Event-ID to resume from,
# never got the gap.)  gdb sets the broker's relay.lost in each child, as
# running out of memory for what it read does (test/fault/lost_event.sh).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/../fault/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Temp ();
use JSON::PP ();
use Time::HiRes qw(time sleep);
use SSETest;
use SSEFault;

my $top = "$FindBin::Bin/../..";
my $cli = "$top/tools/sse-publish";
system("make -s -C '$top' tools/sse-publish >/dev/null 2>&1") unless -x $cli;
my($sock) = sort { (stat $b)[9] <=> (stat $a)[9] }
            glob(Apache::Test::vars('t_logs') . '/sse-relay.*.sock');
my $relay = relay_pid();

# gdb reads and writes a child's memory (the module is built with -g); a
# machine where it cannot attach skips the test, as make test-fault does.
# Returns gdb's output, or undef when it failed.
sub gdb_child {
    my($pid, @ex) = @_;
    my $out = `gdb -p $pid -batch @{[ map { "-ex '$_'" } @ex ]} -ex 'print 12345' -ex detach 2>&1`;
    return $out =~ /= 12345$/m
        && $out !~ /ptrace|denied|No symbol|no member|Cannot access|cannot attach/i ? $out : undef;
}
# the children whose broker is on the relay (its link's descriptor)
my @kids = grep {
    my $o = gdb_child($_, 'print B.relay.io.fd');
    defined $o && $o =~ /^\$1 = (\d+)$/m;
} children_pids();
my $why = !`command -v gdb 2>/dev/null` ? 'gdb is missing'
        : !-x $cli ? 'tools/sse-publish is not built'
        : !defined $sock || !-S $sock ? 'no relay socket in t/logs'
        : !$relay ? 'no relay'
        : !@kids ? 'gdb cannot read any child\'s broker'
        : undef;
plan skip_all => $why if $why;
plan tests => 10;

my $hidden = "$sock.hidden";
END { rename $hidden, $sock if defined $hidden && -S $hidden && !-e $sock }
my $json = JSON::PP->new->utf8;

# Publish straight to the relay (its socket renamed or not): the JSON answer.
sub cli_publish {
    my($path, $chan, $data) = @_;
    my $o = `'$cli' --socket '$path' --namespace localhost '$chan' '$data' 2>&1`;
    return eval { $json->decode($o) } // { error => $o };
}

my $chan = uniq_chan('gap');
my $mark = log_mark();

ok rename($sock, $hidden), 'the relay socket renamed away: reconnects fail';
# every broker: its connection marked lost, dropped at its next read (the
# stats channel's question comes every second; an admin request, which the
# relay passes to every broker, if not)
my @marked = grep { defined gdb_child($_, 'set var B.relay.lost = B.s->server_hostname') } @kids;
is scalar(@marked), scalar(@kids), 'relay.lost set in all ' . scalar(@kids) . ' children';
my $n_lost = sub { my @l = log_since($mark) =~ /SSE00104: lost the relay/g; scalar @l };
for (1 .. 20) {
    last if wait_until(0.5, sub { $n_lost->() >= @kids });
    admin_get($chan);
}
ok wait_until(1, sub { $n_lost->() >= @kids }),
   'every broker lost the relay (' . $n_lost->() . ' SSE00104)';

# off the relay: an event before the stream opens, the stream, two after
my $e0 = cli_publish($hidden, $chan, 'before the stream');
my $s = open_stream("/stream?channel=$chan");
ok $s && $s->{preamble} eq PREAMBLE, 'a stream (no Last-Event-ID) opens while its broker is off the relay';
my $e1 = cli_publish($hidden, $chan, 'missed 1');
my $e2 = cli_publish($hidden, $chan, 'missed 2');
ok defined $e0->{id} && defined $e1->{id} && defined $e2->{id},
   'three events published to the relay meanwhile'
   or diag explain [$e0, $e1, $e2];

# back on the same relay
ok rename($hidden, $sock), 'the relay socket is back';
my $back = wait_until(5, sub {
    my(undef, $j) = admin_get($chan);
    ref $j eq 'HASH' && ($j->{subscribers} // 0) >= 1;
});
is relay_pid(), $relay, 'the same relay runs';
my($r3, $e3) = publish($chan, data => 'live');
ok $back && $r3->code == 200, 'the brokers are back: the stream is counted again'
    or diag 'publish: ' . $r3->code . ' ' . show($r3->content);

# what the stream got: every block, comments included
$s->wait_for(sub { $s->{buf} =~ /^data: live$/m }, 5) if $s;
my $got = $s ? $s->{buf} : '';
my $missed = ev(id => $e1->{id} // '?', data => 'missed 1')
           . ev(id => $e2->{id} // '?', data => 'missed 2');
my $live = ev(id => $e3->{id} // '?', data => 'live');
ok $s && !$s->{eof}, 'the stream stayed open' or diag 'ended; it got ' . show($got);
ok $got eq $missed . $live || $got eq ": history lost\n\n" . $live,
   'it got ' . ($got eq $missed . $live ? 'the two events it missed, in order, then the live one'
                : 'the events it missed, in order, then the live one (or the history-lost signal, then the live one)')
   or diag 'got ' . show($got) . "\nwanted " . show($missed . $live);
$s->disconnect if $s;
my @problems = log_problems($mark);
diag join "\n", @problems if @problems;
