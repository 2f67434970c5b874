package ClusterPump;

# What the cluster tests (test/cluster/*.t) share: reading many streams
# at once, and waiting for a condition.  A stream is a hash with {sock},
# {eof}; each test reads its own bytes (its read function).

use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use IO::Select ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(pump_with wait_until);

# Read every stream of $streams with $read->($stream) as data comes, until
# $done->() or $timeout seconds: 1, or 0 at the timeout.
sub pump_with {
    my($read, $streams, $timeout, $done) = @_;
    my $deadline = time + $timeout;
    my %by = map { fileno($_->{sock}) => $_ } grep { !$_->{eof} } @$streams;
    my $sel = IO::Select->new(map { $_->{sock} } values %by);
    until ($done->()) {
        my $left = $deadline - time;
        return 0 if $left <= 0;
        for my $fh ($sel->can_read($left < 0.2 ? $left : 0.2)) {
            my $st = $by{ fileno $fh } or next;
            $read->($st);
            $sel->remove($fh) if $st->{eof};
        }
    }
    return 1;
}

# $f->() true within $timeout seconds (looked at every 50 ms): 1, else 0.
sub wait_until {
    my($timeout, $f) = @_;
    my $deadline = time + $timeout;
    until ($f->()) { return 0 if time > $deadline; sleep 0.05 }
    return 1;
}

1;
