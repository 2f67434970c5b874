package SSEFault;

# Helpers for the fault-injection tests t/4x_*.t: the httpd parent, its
# children and the relay daemon as processes (pids, descriptors, signals),
# and the server's error log since a given point.  Streams and publishing
# come from SSETest (t/lib).  Used from t/ as
#     use lib "$FindBin::Bin/../fault/lib";
#
# Every process signalled here is one this test run's httpd started: the
# parent is read from t/logs/httpd.pid, its children from `ps --ppid`.
# Every figure a test measures is also printed as a diagnostic line
#     # RELIABILITY <test> <key>=<value> ...
# which test/fault/report.pl collects into test/RELIABILITY.md.

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use File::Spec ();
use Time::HiRes qw(time sleep);
use IO::Select ();
use Apache::Test ();
use Test::More ();

our @EXPORT = qw(
    parent_pid children_pids relay_pid fd_count fd_kinds rss_kb alive
    log_mark log_since log_problems stream_pids open_over_children
    reliability collect
    publish_series all_children
);

sub logs_dir { Apache::Test::vars('t_logs') }

# The httpd parent of this test run.
sub parent_pid {
    my $f = File::Spec->catfile(logs_dir(), 'httpd.pid');
    open my $fh, '<', $f or return undef;
    my $p = <$fh> // '';
    chomp $p;
    return $p =~ /^\d+$/ ? $p : undef;
}

# A live process (a zombie counts as gone).
sub alive {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $st = <$fh> // '';
    my($state) = $st =~ /\)\s+(\S)/;
    return defined $state && $state ne 'Z' && $state ne 'X';
}

sub ppid_of {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $st = <$fh> // '';
    my($ppid) = $st =~ /\)\s+\S\s+(\d+)/;
    return $ppid // 0;
}

# Every process whose parent is the httpd parent (children and the relay).
sub all_children {
    my $ppid = parent_pid() or return ();
    my @p;
    opendir my $d, '/proc' or return ();
    for my $e (readdir $d) {
        next unless $e =~ /^\d+$/;
        push @p, $e if ppid_of($e) == $ppid && alive($e);
    }
    return sort { $a <=> $b } @p;
}

# The relay's pid: the newest "SSE00207: relay N listening" line whose
# process is alive and a child of this parent; undef if none is.
sub relay_pid {
    my $ppid = parent_pid() or return undef;
    my $log = File::Spec->catfile(logs_dir(), 'error_log');
    open my $fh, '<', $log or return undef;
    my @pids;
    while (<$fh>) {
        push @pids, $1 if /SSE00207: relay (\d+) listening/;
    }
    for my $p (reverse @pids) {
        return $p if alive($p) && ppid_of($p) == $ppid;
    }
    return undef;
}

# The children that serve requests: every child but the relay.
sub children_pids {
    my $relay = relay_pid() // -1;
    return grep { $_ != $relay } all_children();
}

sub fd_count {
    my $pid = shift;
    opendir my $d, "/proc/$pid/fd" or return undef;
    my $n = grep { /^\d+$/ } readdir $d;
    return $n;
}

# A process's descriptors in two parts: unix-domain sockets (each worker
# thread keeps one connection to the relay, so there are at most as many as
# threads) and everything else (streams, files, listeners): (other, unix).
sub fd_kinds {
    my $pid = shift;
    my %unix;
    if (open my $fh, '<', '/proc/net/unix') {
        <$fh>;
        while (<$fh>) { my @f = split; $unix{ $f[6] } = 1 if defined $f[6] }
    }
    opendir my $d, "/proc/$pid/fd" or return (undef, undef);
    my($other, $u) = (0, 0);
    for my $fd (grep { /^\d+$/ } readdir $d) {
        my $l = readlink "/proc/$pid/fd/$fd" // next;
        if ($l =~ /^socket:\[(\d+)\]/ && $unix{$1}) { $u++ } else { $other++ }
    }
    return ($other, $u);
}

sub rss_kb {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return undef;
}

# The error log's size now, so a test can look at its own part only.
sub log_mark {
    my $log = File::Spec->catfile(logs_dir(), 'error_log');
    return -s $log // 0;
}

sub log_since {
    my $mark = shift;
    my $log = File::Spec->catfile(logs_dir(), 'error_log');
    open my $fh, '<', $log or return '';
    seek $fh, $mark, 0;
    local $/;
    return <$fh> // '';
}

# Lines since $mark that show a crash: a child that died of a signal (but
# for the SIGKILLs of pids in @$expected), a glibc heap abort, a segfault.
sub log_problems {
    my($mark, $expected) = @_;
    my %ok = map { $_ => 1 } @{ $expected || [] };
    my @bad;
    for (split /\n/, log_since($mark)) {
        if (/child pid (\d+) exit signal (.*)/) {
            push @bad, $_ unless $ok{$1} && $2 =~ /^Killed/;
            next;
        }
        push @bad, $_ if /Segmentation fault|double free|corrupted|malloc\(\)|free\(\)|Aborted|AH00060|\bcore dumped\b/;
    }
    return @bad;
}

# pid => number of streams it holds on $chan (GET /pub?channel=...).
sub stream_pids {
    my $chan = shift;
    my(undef, $j) = SSETest::admin_get($chan);
    my %n;
    if (ref $j eq 'HASH' && ref $j->{connections} eq 'ARRAY') {
        $n{ $_->{pid} // '?' }++ for grep { ref $_ eq 'HASH' } @{ $j->{connections} };
    }
    return %n;
}

# Open streams on $path (on channel $chan) ten at a time until at least two
# child processes hold some and at least $min are open, or $max are.
# Returns (\@open, \%pids as stream_pids gives them, \@failed).
sub open_over_children {
    my($path, $chan, $min, $max) = @_;
    my(@open, @failed, %pids);
    while (@open < $max) {
        my($ok, $bad) = SSETest::open_streams(10, $path, batch => 10, timeout => 10);
        push @open, @$ok;
        push @failed, @$bad;
        %pids = stream_pids($chan);
        last if keys %pids >= 2 && @open >= $min;
    }
    return (\@open, \%pids, \@failed);
}

# Read every stream until each open one has received the event $until_id
# (or ended), for at most $timeout seconds.  Appends the ids of the events
# each stream received, in order, to $s->{ids}; a stream that ended has
# $s->{eof} set.  Returns how many open streams still lack $until_id.
sub collect {
    my($streams, $until_id, $timeout) = @_;
    my $deadline = time + $timeout;
    my $take = sub {
        my $s = shift;
        while (defined(my $b = $s->take_block)) {
            # a block of retry: alone (SSERestartSpread) is no event: an
            # EventSource takes the delay and dispatches nothing
            next if $b =~ /\A(?:retry: \d+\n)+\n?\z/;
            my($id) = $b =~ /^id: (.*)$/m;
            push @{ $s->{ids} }, $id // '?';
            $s->{seen}{ $id // '?' } = 1;
        }
    };
    my $missing = sub {
        grep { !$_->{eof} && !(defined $until_id && $_->{seen}{$until_id}) } @$streams;
    };
    $take->($_) for @$streams;
    while (time < $deadline) {
        my @want = $missing->() or last;
        my %by_fd = map { fileno($_->{sock}) => $_ } grep { $_->{sock} } @want;
        my $sel = IO::Select->new(map { $_->{sock} } values %by_fd);
        for my $fh ($sel->can_read(0.2)) {
            my $s = $by_fd{ fileno $fh } or next;
            $s->fill;
            $take->($s);
        }
    }
    return scalar $missing->();
}

# Publish $n events on $chan, $gap seconds apart, each bounded by LWP's
# timeout; returns a list of { code, id, subscribers, secs, retry_after }.
sub publish_series {
    my($chan, $n, $gap, $tag) = @_;
    my @r;
    for my $i (1 .. $n) {
        my $t = time;
        my($res, $j) = SSETest::publish($chan, data => "$tag $i");
        push @r, { code => $res->code, secs => time - $t,
                   retry_after => scalar $res->header('Retry-After'),
                   id => ref $j eq 'HASH' ? $j->{id} : undef,
                   subscribers => ref $j eq 'HASH' ? $j->{subscribers} : undef };
        sleep $gap if $gap;
    }
    return @r;
}

# One measured figure for test/RELIABILITY.md.
sub reliability {
    my($test, %kv) = @_;
    Test::More::diag(join ' ', 'RELIABILITY', $test,
                     map { "$_=" . ($kv{$_} // 'undef') } sort keys %kv);
}

1;
