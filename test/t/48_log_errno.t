# A log line carries an errno (Apache's "(N)text: " before the message)
# only when that errno belongs to it: the system call that failed.  A
# broker that lost the relay because the relay closed the connection (no
# call failed) logged whatever errno its thread had last: here EAGAIN
# from reading a stream client's stray bytes ("(11)Resource temporarily
# unavailable: SSE00104: lost the relay (closed)"), EINTR after a signal.
# A publish or status request the relay did not answer in time logged
# APR_EGENERAL ("(20014)Internal error ...") where nothing but a timeout
# happened.
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

plan tests => 8;

my $chan = uniq_chan('errno');
my $path = "/stream?channel=$chan";
my $mark = log_mark();

# streams in several children; each client sends a stray byte, which its
# broker reads until EAGAIN (the errno its thread then keeps)
my($open, $held) = open_over_children($path, $chan, 10, 100);
my @s = @$open;
cmp_ok scalar(keys %$held), '>=', 2,
       scalar(@s) . ' streams held by ' . scalar(keys %$held) . ' children';
syswrite $_->{sock}, "x" for @s;
sleep 0.3;

# a stopped relay: a publish and a status request wait 5 s for it
my $relay = relay_pid();
ok $relay && kill('STOP', $relay), 'the relay (pid ' . ($relay // '?') . ') stopped';
my $st = fork // die "fork: $!";
if (!$st) {
    Apache::TestRequest::user_agent(reset => 1, timeout => 30);
    Apache::TestRequest::GET('/server-status?auto');
    POSIX::_exit(0);
}
my($r) = publish($chan, data => 'unanswered');
waitpid $st, 0;
is $r->code, 503, 'a publish the relay does not answer: 503';
kill 'CONT', $relay if $relay;

# the relay dies: every child's broker sees its connection close
ok $relay && kill('KILL', $relay), 'kill -9 the relay';
my @lost;
wait_until(10, sub {
    @lost = grep { /SSE00104/ } split /\n/, log_since($mark);
    @lost >= keys %$held;
});
cmp_ok scalar(@lost), '>=', scalar(keys %$held),
       'the brokers of the children with streams logged SSE00104 (' . scalar(@lost) . ' lines)';
wait_until(5, sub { my $p = relay_pid(); $p && $p != $relay });

# Apache's errno prefix: "] (N)text: " right before the message
my $errno = qr/\] \(\d+\)[^:]*: (?:\[client [^\]]*\] )?/;
# ... except the errno of a read or write that failed: a relay killed
# with bytes unread resets the connection (ECONNRESET, or EPIPE on a write)
my $own = qr/\] \((?:104|32)\)[^:]*: SSE00104: lost the relay \((?:read|write) failed\)/;
my @bad104 = grep { /${errno}SSE00104/ && !/$own/ } @lost;
ok !@bad104, 'no "lost the relay" line carries an errno not its own'
    or diag join "\n", @bad104[0 .. ($#bad104 > 3 ? 3 : $#bad104)];
my @since = split /\n/, log_since($mark);
my @no_answer = grep { /SSE00005|SSE00501/ } @since;
my @general = grep { /\(20014\)/ } @no_answer;
ok @no_answer && !@general,
   scalar(@no_answer) . ' "the relay did not answer" lines (SSE00005, SSE00501), none with APR_EGENERAL\'s "(20014)Internal error"'
    or diag join "\n", @general[0 .. ($#general > 3 ? 3 : $#general)];
my @any = grep { /${errno}SSE001/ && !/$own/ } @since;
ok !@any, 'no broker line (SSE001xx) of this test carries an errno not its own'
    or diag join "\n", @any[0 .. ($#any > 3 ? 3 : $#any)];
close_all(@s);
