# A new stream's headers are held (TCP_CORK) until the broker writes ": ok",
# so both leave in one segment; the broker must then let them go at once.
# Had it forgotten, the kernel would release them only after 200 ms: the
# median time to the first byte of 20 streams tells (a loose bound, so a
# busy machine does not fail it), and the first read must hold both the
# headers and the preamble.  The same for a handed-over response (SSEHandover):
# the application's answer is corked until ": ok" too.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use IO::Select;
use Time::HiRes qw(time sleep);
use SSETest;

plan tests => 6;

# open 20 streams on $path (a fresh channel each); returns how many did not
# answer (with why), the median time to the first byte, and the streams
# whose first read did not match $first
sub first_bytes {
    my($path, $first) = @_;
    my(@took, @split, @bad);
    for my $i (1 .. 20) {
        my $chan = uniq_chan('first');
        my $t0 = time;
        my($s, $err) = SSETest::Stream->start("$path$chan");
        unless ($s) { push @bad, $err; next }
        my $sel = IO::Select->new($s->{sock});
        unless ($sel->can_read(5)) { push @bad, "stream $i: nothing in 5 s"; next }
        push @took, time - $t0;
        sleep 0.02;                 # anything sent apart has arrived by now
        $s->fill;
        push @split, "stream $i: " . show(substr $s->{buf}, -40)
            unless $s->{buf} =~ $first;
        $s->disconnect;
    }
    my @sorted = sort { $a <=> $b } @took;
    return (\@bad, (@sorted ? $sorted[$#sorted / 2] : 99), \@split);
}

for my $case (['/stream?channel=', 'stream',
               qr/\A HTTP\/1\.1\ 200 .*? \r\n\r\n : \ ok\n\n/sx, 'the headers and ": ok"'],
              ['/cgi/handover.cgi?channel=', 'hand-over',
               qr/\A HTTP\/1\.1\ 200 .*? \r\n\r\n : \ hello\ from\ the\ app\n\n : \ ok\n\n/sx,
               'the application\'s answer and ": ok"']) {
    my($path, $name, $first, $what) = @$case;
    my($bad, $median, $split) = first_bytes($path, $first);
    is scalar(@$bad), 0, "$name: 20 streams answered" or diag "@$bad";
    cmp_ok $median, '<', 0.15,
           sprintf '%s: the first bytes come at once, not after the 200 ms cork timeout (median %.1f ms)',
           $name, 1000 * $median;
    is scalar(@$split), 0, "$name: the first read holds $what"
        or diag join '; ', @$split[0 .. ($#$split > 2 ? 2 : $#$split)];
}
