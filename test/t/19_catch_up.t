# A stream that falls behind (its client stops reading for a while) keeps
# its events queued, within SSEMaxBacklog, and gets every one of them whole
# and in order once its client reads again: the broker writes the queue
# many events per call, most writes partial (a 4 KB receive window), so a
# wrong offset would garble the bytes.  A publish burst from several
# connections at once on its channel, so events also come in runs.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 5;

my $chan = uniq_chan('catchup');
my $s = open_stream("/stream?channel=$chan", rcvbuf => 4096);
ok $s && $s->{preamble} eq PREAMBLE, 'a stream with a 4 KB receive window';

# 4 writers x 40 events of ~1 KB each (160 KB < SSEMaxBacklog 256 KB),
# while the stream's client does not read
my($writers, $each) = (4, 40);
my @kids = start_writers($writers, $each, sub {
    my($w, $i) = @_;
    my($res) = publish($chan, data => sprintf('w%d-%03d-', $w, $i) . ('x' x (900 + 7 * $i)));
    return $res->code == 200;
});
my $bad = wait_writers(@kids);
is $bad, 0, "$writers writers published $each events each (200 OK)";

my(undef, $g) = admin_get($chan);
is ref $g eq 'HASH' ? $g->{subscribers} : undef, 1,
   'the stream that fell behind is still there';

# now read: every event whole, each writer's in its order, ids increasing
my(@got, @wrong);
my $total = $writers * $each;
my $n = 0;
while ($n < $total) {
    my $ev = $s->next_event(10);
    unless (defined $ev) { push @wrong, "nothing after $n events"; last }
    $n++;
    my($id) = $ev =~ /^id: (\d+)\n/m;
    my($w, $i, $pad) = $ev =~ /^data: w(\d)-(\d{3})-(x*)\n\n\z/m;
    unless (defined $id && defined $w && length($pad) == 900 + 7 * $i) {
        push @wrong, "event $n garbled: " . show(substr $ev, 0, 60);
        last;
    }
    push @got, [ $id, $w, $i + 0 ];
}
my $order = writers_order(@got);
push @wrong, $order if $order;
is $n, $total, "all $total events arrived";
is scalar(@wrong), 0, 'each whole, each writer\'s in order, ids increasing'
    or diag join '; ', @wrong[0 .. ($#wrong > 4 ? 4 : $#wrong)];
