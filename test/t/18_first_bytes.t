# A new stream's headers are held (TCP_CORK) until the broker writes ": ok",
# so both leave in one segment; the broker must then let them go at once.
# Had it forgotten, the kernel would release them only after 200 ms: the
# median time to the first byte of 20 streams tells (a loose bound, so a
# busy machine does not fail it), and the first read must hold both the
# headers and the preamble.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use IO::Select;
use Time::HiRes qw(time sleep);
use SSETest;

plan tests => 3;

my(@took, @split, @bad);
for my $i (1 .. 20) {
    my $chan = uniq_chan('first');
    my $t0 = time;
    my($s, $err) = SSETest::Stream->start("/stream?channel=$chan");
    unless ($s) { push @bad, $err; next }
    my $sel = IO::Select->new($s->{sock});
    unless ($sel->can_read(5)) { push @bad, "stream $i: nothing in 5 s"; next }
    push @took, time - $t0;
    sleep 0.02;                 # anything sent apart has arrived by now
    $s->fill;
    push @split, "stream $i: " . show(substr $s->{buf}, -40)
        unless $s->{buf} =~ /\A HTTP\/1\.1\ 200 .*? \r\n\r\n : \ ok\n\n/sx;
    $s->disconnect;
}
is scalar(@bad), 0, '20 streams answered' or diag "@bad";
my @sorted = sort { $a <=> $b } @took;
my $median = @sorted ? $sorted[$#sorted / 2] : 99;
cmp_ok $median, '<', 0.15,
       sprintf 'headers come at once, not after the 200 ms cork timeout (median %.1f ms)',
       1000 * $median;
is scalar(@split), 0, 'the first read holds the headers and ": ok"'
    or diag join '; ', @split[0 .. ($#split > 2 ? 2 : $#split)];
