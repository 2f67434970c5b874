package ClusterPump;

# What the cluster tests (test/cluster/*.t) share: a raw stream client,
# reading many streams at once, and waiting for a condition.  A stream is
# a hash with {sock}, {eof}; a test reads its bytes with stream_read or a
# read function of its own.

use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(stream_open stream_read pump_with wait_until);
our @EXPORT_OK = qw(stream_head);

# A stream on $port: GET $path with headers @h (name, value, ...); a hash
# for stream_read, or undef when the connection failed.
sub stream_open {
    my($port, $path, @h) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5) or return;
    binmode $s;
    my $req = "GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n";
    while (my($k, $v) = splice @h, 0, 2) { $req .= "$k: $v\r\n" }
    syswrite $s, "$req\r\n";
    return { sock => $s, buf => '', head => undef, events => [], port => $port };
}

# Read what is there into {buf}, {eof} at the end, the head (once whole)
# into {head}: true once the head is there.  For a reader of the body.
sub stream_head {
    my $st = shift;
    my $n = sysread $st->{sock}, $st->{buf}, 65536, length $st->{buf};
    $st->{eof} = 1 if !$n;
    if (!defined $st->{head} && (my $i = index $st->{buf}, "\r\n\r\n") >= 0) {
        $st->{head} = substr $st->{buf}, 0, $i + 4, '';
    }
    return defined $st->{head};
}

# Read what is there: the head into {head}, ": ok" sets {ok}, each event
# with an id onto {events} as [id, data]; {eof} at the end.
sub stream_read {
    my $st = shift;
    return unless stream_head($st);
    while ((my $i = index $st->{buf}, "\n\n") >= 0) {
        my $blk = substr $st->{buf}, 0, $i + 2, '';
        $st->{ok} = 1 if $blk eq ": ok\n\n";
        next unless $blk =~ /^id: (.*)$/m;
        my $id = $1;
        my($d) = $blk =~ /^data: (.*)$/m;
        push @{ $st->{events} }, [$id, $d];
    }
}

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
