# A subscriber that does not read is dropped once its unsent backlog passes
# SSEMaxBacklog (16384 on /slowstream), and it does not hold anybody back:
# a reading subscriber on the same channel gets every event, whole.
# (DESIGN.md: "Its unsent backlog is bounded; past the bound it is
# dropped.")  The slow client advertises a 4 KB receive window, so at most
# a few MB can sit in kernel buffers; ~10 MB are published.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 8;

my $chan = uniq_chan('slow');
my $slow = open_stream("/slowstream?channel=$chan", rcvbuf => 4096);
my $fast = open_stream("/stream?channel=$chan");
ok $slow && $slow->{preamble} eq PREAMBLE && $fast && $fast->{preamble} eq PREAMBLE,
   'a slow and a fast stream open';

my $size = 32 * 1024;
my $max = 300;
my(@sent, $dropped_at, $fast_ok, $pub_ok);
$fast_ok = $pub_ok = 1;
for my $i (1 .. $max) {
    my $data = sprintf('%05d', $i) . ('p' x ($size - 5));
    my($res, $j) = publish($chan, data => $data);
    my $subs = ref $j eq 'HASH' ? $j->{subscribers} // -1 : -1;
    unless ($res->code == 200) {
        $pub_ok = 0;
        diag "publish $i: " . $res->code . ' ' . show($res->content);
        last;
    }
    my $want = ev(id => $j->{id} // '?', data => $data);
    push @sent, $want;
    my $got = $fast->next_event(5);
    if (!defined $got || $got ne $want) {
        $fast_ok = 0;
        diag "fast stream, event $i: got " . show(substr $got // '', 0, 60);
        last;
    }
    $dropped_at //= $i if $subs == 1;
    last if defined $dropped_at && $i >= $dropped_at + 5;
}
ok $pub_ok, 'every publish answered 200';
ok $fast_ok, 'the fast subscriber received every event whole, at once';
ok defined $dropped_at,
   'the slow subscriber was dropped'
   . (defined $dropped_at ? sprintf(' after %d events (%.1f MB)', $dropped_at,
                                    $dropped_at * $size / 1e6)
                          : sprintf(' (still counted after %.1f MB)', @sent * $size / 1e6));

my(undef, $g) = admin_get($chan);
is ref $g eq 'HASH' ? $g->{subscribers} : undef, 1, 'GET: only the fast subscriber remains';

# the slow client, reading now, gets whole events in order, then EOF
ok $slow->wait_eof(20), 'the slow stream ends with EOF';
my @got;
while (defined(my $b = $slow->take_block)) { push @got, $b }
my($first_bad) = grep { $got[$_] ne ($sent[$_] // '') } 0 .. $#got;
ok !defined $first_bad && @got < @sent,
   sprintf('it received the first %d events intact, in order, and no later ones', scalar @got)
    or diag defined $first_bad
        ? "event $first_bad differs: " . show(substr $got[$first_bad], 0, 60)
        : scalar(@got) . ' of ' . scalar(@sent) . ' events';
my $tail = $slow->{buf};
ok length($tail) < $size + 100 && ($tail eq '' || index($sent[@got] // '', $tail) == 0),
   'anything after the last whole event is the beginning of the next one ('
   . length($tail) . ' bytes)';
