# Several publishers at once, served by different workers and processes:
# every event reaches every subscriber exactly once and whole (no
# interleaving of two events' bytes), each publisher's events in the order
# it sent them, with distinct server ids that increase along the stream.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

my $writers = 5;
my $each = 40;
my $total = $writers * $each;

plan tests => 6;

my $chan = uniq_chan('conc');
my($streams, $fail) = open_streams(10, "/stream?channel=$chan", batch => 10);
is scalar(@$streams), 10, '10 streams open' or diag "@$fail";

my @kids = start_writers($writers, $each, sub {
    my($w, $i) = @_;
    my $data = "w$w-$i " . ('x' x (100 * $i));
    my($res, $j) = publish($chan, event => "w$w", data => $data);
    return $res->code == 200 && !check_pub($j, $chan, 10);
});
# read while the writers write (the streams must not back up)
my @got = map { [] } @$streams;
my $deadline = time + 30;
while (time < $deadline) {
    my $left = grep { @$_ < $total } @got;
    last unless $left;
    my @ev = read_next_events([ map { $streams->[$_] } grep { @{ $got[$_] } < $total } 0 .. $#$streams ], 2);
    my $k = 0;
    for my $i (grep { @{ $got[$_] } < $total } 0 .. $#$streams) {
        my $e = $ev[$k++];
        push @{ $got[$i] }, $e if defined $e;
    }
}
my $kid_fail = wait_writers(@kids);
is $kid_fail, 0, "all $writers publishers got 200 and subscribers == 10 every time";

my(@count_bad, @shape_bad, @order_bad, @id_bad);
for my $s (0 .. $#got) {
    my $evs = $got[$s];
    push @count_bad, "stream $s: " . scalar(@$evs) unless @$evs == $total;
    my(%last, $last_id, %seen);
    for my $e (@$evs) {
        my($id, $w, $w2, $i, $x) =
            $e =~ /\Aid: (\d+)\nevent: w(\d+)\ndata: w(\d+)-(\d+) (x*)\n\n\z/;
        if (!defined $id || $w != $w2 || length($x) != 100 * $i) {
            push @shape_bad, show(substr $e, 0, 60);
            next;
        }
        push @order_bad, "stream $s: w$w $i after $last{$w}" if ($last{$w} // 0) >= $i;
        $last{$w} = $i;
        push @id_bad, "stream $s: id $id after $last_id"
            if defined $last_id && $id <= $last_id;
        push @id_bad, "stream $s: id $id twice" if $seen{$id}++;
        $last_id = $id;
    }
}
ok !@count_bad, "every stream received all $total events" or diag "@count_bad";
ok !@shape_bad, 'every event arrived whole' or diag join ", ", grep { defined } @shape_bad[0 .. 2];
ok !@order_bad, "each publisher's events arrive in the order it sent them"
    or diag join ", ", grep { defined } @order_bad[0 .. 2];
ok !@id_bad, 'ids are distinct and increase along each stream'
    or diag join ', ', grep { defined } @id_bad[0 .. 4];
