# A client that goes away stops being counted within a second, without
# anything being published to find out: orderly close (FIN), abortive
# close (RST), and many at once across child processes.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time);
use SSETest;

plan tests => 9;

my $chan = uniq_chan('disc');

sub count {
    my(undef, $j) = admin_get($chan);
    return ref $j eq 'HASH' ? $j->{subscribers} // -1 : -1;
}

# seconds until the count is $want (undef if not within $limit)
sub time_to_count {
    my($want, $limit) = @_;
    my $t = time;
    my $ok = wait_until($limit, sub { count() == $want });
    return $ok ? time - $t : undef;
}

my @s = map { open_stream("/stream?channel=$chan") } 1 .. 3;
ok !(grep { !$_ || $_->{preamble} ne PREAMBLE } @s), 'three streams open';
is count(), 3, 'count is 3';

# orderly close
$s[0]->disconnect;
my $dt = time_to_count(2, 1);
ok defined $dt, 'after a client closes (FIN), the count is 2 within 1 s'
    or diag 'count now ' . count();

# abortive close: SO_LINGER 0 makes close() send RST
setsockopt $s[1]{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0);
$s[1]->disconnect;
$dt = time_to_count(1, 1);
ok defined $dt, 'after a client resets (RST), the count is 1 within 1 s'
    or diag 'count now ' . count();

# the one left still works, and is the only one counted
my($res, $j) = publish($chan, data => 'survivor');
my @bad = check_pub($j, $chan, 1);
ok !@bad, 'publish: 1 subscriber' or diag join "\n", @bad;
is show($s[2]->next_event(5)),
   show(ev(id => ref $j eq 'HASH' ? $j->{id} // '?' : '?', data => 'survivor')),
   'the remaining stream receives';
$s[2]->disconnect;
ok defined time_to_count(0, 1), 'last one closed: count 0 within 1 s';

# many at once, spread over the children
my($ok, $fail) = open_streams(60, "/stream?channel=$chan", batch => 20);
is count(), scalar(@$ok), scalar(@$ok) . ' streams counted' or diag "@$fail";
close_all(@$ok);
ok defined time_to_count(0, 1), 'all closed at once: count 0 within 1 s'
    or diag 'count now ' . count();
