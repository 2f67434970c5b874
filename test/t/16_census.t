# The relay answers a publish from its census of every child's streams
# (kept from the children's COUNT frames), not by asking the children.
# The promise it must keep: a client that has read ": ok" is counted by
# every later publish, and gets the event; a stream that is gone stops
# being counted; the census agrees with what the children hold.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 11;

# the subscribers figure of a JSON answer, -1 when there is none
sub subs { my $j = $_[1]; ref $j eq 'HASH' ? $j->{subscribers} // -1 : -1 }

# 1. open, then publish at once: counted and delivered, every time
my(@miscount, @missed);
for my $i (1 .. 150) {
    my $chan = uniq_chan('census');
    my $s = open_stream("/stream?channel=$chan");
    unless ($s && $s->{preamble} eq PREAMBLE) {
        push @missed, "round $i: stream did not open";
        next;
    }
    my $n = subs(publish($chan, data => "r$i"));
    push @miscount, "round $i: $n" unless $n == 1;
    my $ev = $s->next_event(5) // '';
    push @missed, "round $i: got " . show($ev) unless $ev =~ /^data: r$i\n/m;
    $s->disconnect;
}
is scalar(@miscount), 0,
   'a publish right after ": ok" counts the new stream (150 rounds)'
    or diag join '; ', @miscount[0 .. ($#miscount > 4 ? 4 : $#miscount)];
is scalar(@missed), 0, '... and the stream gets the event'
    or diag join '; ', @missed[0 .. ($#missed > 4 ? 4 : $#missed)];

# 2. many streams over the children, opened concurrently
my $chan = uniq_chan('census-many');
my($open, $bad) = open_streams(60, "/stream?channel=$chan", batch => 20);
is scalar(@$bad), 0, '60 streams opened concurrently' or diag "@$bad";
my $n = @$open;
my(undef, $j) = publish($chan, data => 'all');
is subs(undef, $j), $n, "publish counts all $n";
my @got = read_next_events($open, 10);
is scalar(grep { defined $_ && $_ =~ /^data: all\n/m } @got), $n,
   "all $n got the event";
is subs(admin_get($chan)), $n, 'the children hold as many (GET)';

# 3. half of them leave: once the children hold 30, the census says 30
close_all(@$open[0 .. 29]);
my $left = $n - 30;
ok wait_until(5, sub { subs(admin_get($chan)) == $left }),
   "the children hold $left after 30 left";
(undef, $j) = publish($chan, data => 'half');
is subs(undef, $j), $left, "publish then counts $left";
@got = read_next_events([ @$open[30 .. $#$open] ], 10);
is scalar(grep { defined $_ && $_ =~ /^data: half\n/m } @got), $left,
   "the $left left got the event";
close_all(@$open);

# 4. one stream on two channels is counted on each
my($c1, $c2) = (uniq_chan('census-a'), uniq_chan('census-b'));
my $m = open_stream("/stream?channel=$c1,$c2");
my @counts = map { subs(publish($_, data => 'x')) } $c1, $c2;
is "@counts", '1 1', 'a two-channel stream counts once on each channel';
$m->disconnect;

# 5. a channel nobody holds
is subs(publish(uniq_chan('census-none'), data => 'void')), 0,
   'a channel without streams counts 0';
