package StoreTest;

# What the history store's tests (test/store/*.t) share: the private
# server test/store/run.sh set up (STORE_PORT, STORE_DIR, STORE_ARGS: how
# to start and stop it), started and stopped as apachectl does, its error
# log, publishing, resuming with Last-Event-ID, and the "# RELIABILITY"
# line that test/fault/report.pl reads.

use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use IO::Socket::INET ();
use IO::Select ();
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(time sleep);
use POSIX ();

our @EXPORT = qw(store_port store_dir store_args apache start stop up down parent_pid
                 log_lines relay_pid publish resume head_of missing_and_dups reliability
                 publisher);

my $port = $ENV{STORE_PORT};
my $dir = $ENV{STORE_DIR};
my $args = $ENV{STORE_ARGS};
my $http = HTTP::Tiny->new(timeout => 10);
my $json = JSON::PP->new->utf8;

# undef when not run by test/store/run.sh (the test skips)
sub store_port { $port }
sub store_dir { $dir }
# how apachectl is called (-f the config, -D...); a test may add defines
sub store_args { $args = shift if @_; $args }

sub apache { system("/usr/sbin/apache2 $args -k $_[0] >/dev/null 2>&1") == 0 }
sub parent_pid {
    open my $fh, '<', "$dir/httpd.pid" or return undef;
    my $p = <$fh>;
    return $p && $p =~ /(\d+)/ ? $1 : undef;
}
sub up {
    my $deadline = time + 15;
    while (time < $deadline) {
        my $r = $http->get("http://127.0.0.1:$port/pub");
        return 1 if $r->{status} != 599;
        sleep 0.1;
    }
    return 0;
}
sub down {
    my $p = shift;
    my $deadline = time + 15;
    while (time < $deadline) {
        return 1 unless $p && kill 0, $p;
        sleep 0.1;
    }
    return 0;
}
# apachectl start, and wait until it answers; apachectl stop, and wait
# until the parent has gone: 1 when done
sub start { apache('start') && up() }
sub stop { my $p = parent_pid(); apache('stop'); down($p) }
sub log_lines {
    my $re = shift;
    open my $fh, '<', "$dir/error.log" or return ();
    return grep { /$re/ } <$fh>;
}
sub relay_pid {
    my @p = map { /SSE00207: relay (\d+) listening/ ? $1 : () } log_lines(qr/SSE00207/);
    return $p[-1];
}
# Publish $data on $chan: (the status, the id when 200); 599 when the
# server could not be reached or the answer did not come.  The request
# goes in one write on a connection kept open (HTTP::Tiny writes the head
# and the body apart, and the body then waits for the server's delayed
# ACK: 44 ms a publish on loopback).
my($pub_sock, $pub_pid);
sub publish {
    my($chan, $data) = @_;
    local $SIG{PIPE} = 'IGNORE';
    # not a connection of the parent's, nor one the server has closed
    if ($pub_sock && ($pub_pid != $$ || IO::Select->new($pub_sock)->can_read(0))) {
        close $pub_sock;
        undef $pub_sock;
    }
    $pub_sock //= IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                        Proto => 'tcp', Timeout => 10) or return (599, undef);
    $pub_pid = $$;
    my $body = $http->www_form_urlencode({ channel => $chan, data => $data });
    my $req = "POST /pub HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/x-www-form-urlencoded\r\n"
            . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    my($status, $content, $close) = exchange($pub_sock, $req);
    if (!$status || $close) {
        close $pub_sock;
        undef $pub_sock;
    }
    return (599, undef) unless $status;
    my $o = $status == 200 ? eval { $json->decode($content) } : undef;
    return ($status, $o ? $o->{id} : undef);
}
# Write $req on $s and read the answer (Content-Length, else to the end):
# (status, body, 1 when the server closes the connection), () on failure.
sub exchange {
    my($s, $req) = @_;
    my $sel = IO::Select->new($s);
    while (length $req) {
        return () unless $sel->can_write(10);
        my $n = syswrite $s, $req;
        return () unless $n;
        substr $req, 0, $n, '';
    }
    my($buf, $head, $len) = ('');
    my $deadline = time + 10;
    while (1) {
        if (!defined $head && (my $i = index $buf, "\r\n\r\n") >= 0) {
            $head = substr $buf, 0, $i + 4, '';
            ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
        }
        return () if defined $head && $head !~ m{\AHTTP/1\.\d (\d{3})};
        if (defined $len && length $buf >= $len) {
            my($status) = $head =~ m{\AHTTP/1\.\d (\d{3})};
            return ($status, substr($buf, 0, $len), $head =~ /^Connection:\s*close/mi ? 1 : 0);
        }
        my $left = $deadline - time;
        return () if $left <= 0 || !$sel->can_read($left);
        my $n = sysread $s, $buf, 65536, length $buf;
        if (!$n) {          # the end: the answer if it had no length
            return () unless defined $n && defined $head && !defined $len;
            my($status) = $head =~ m{\AHTTP/1\.\d (\d{3})};
            return ($status, $buf, 1);
        }
    }
}
# Resume $chan after $last: (the ids and datas got until $n events came
# or $secs passed, 1 when the stream said ": history lost").
sub resume {
    my($chan, $last, $n, $secs) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 10) or return;
    print $s "GET /stream?channel=$chan HTTP/1.1\r\nHost: localhost\r\n"
        . (defined $last ? "Last-Event-ID: $last\r\n" : '') . "\r\n";
    my($buf, $lost, @ids, @data) = ('', 0);
    my $sel = IO::Select->new($s);
    my $deadline = time + ($secs // 10);
    my $grace;                  # once $n came: 0.3 s more, for extras
    while (time < $deadline) {
        if (@ids >= $n) {
            $grace //= time + 0.3;
            last if time > $grace;
        }
        next unless $sel->can_read(0.2);
        my $got = sysread $s, $buf, 65536, length $buf;
        last unless $got;
        while ($buf =~ s/\A(?:HTTP\/.*?\r\n\r\n)?((?:[^\n]*\n)*?)\n//s) {
            my $block = $1;
            $lost = 1 if $block =~ /^: history lost$/m;
            my($id) = $block =~ /^id: (.*)$/m or next;
            push @ids, $id;
            push @data, join "\n", $block =~ /^data: (.*)$/mg;
        }
    }
    close $s;
    return (\@ids, \@data, $lost);
}
# The response head to a resume of $chan after $last.
sub head_of {
    my($chan, $last) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 10) or return '';
    print $s "GET /stream?channel=$chan HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: $last\r\n\r\n";
    my $buf = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + 5;
    while (index($buf, "\r\n\r\n") < 0 && time < $deadline) {
        sysread($s, $buf, 4096, length $buf) or last if $sel->can_read(0.2);
    }
    close $s;
    return $buf;
}
# (the ids of @$want not in @$got, the ids @$got has more than once)
sub missing_and_dups {
    my($got, $want) = @_;
    my %seen;
    my @dup = grep { $seen{$_}++ == 1 } @$got;
    return ([ grep { !$seen{$_} } @$want ], \@dup);
}
# "# RELIABILITY store_<name> key=value ...": a row of test/RELIABILITY.md
# (test/fault/report.pl); printed after the checks of its part
sub reliability {
    my($name, %f) = @_;
    printf "# RELIABILITY store_%s %s\n", $name,
        join ' ', map { "$_=" . ($f{$_} // -1) } sort keys %f;
}

# A publisher in the background: $n events "$tag $i" on $chan, $gap s
# apart, each answer written to $file as "code id".  Returns an object:
# ->answered (how many so far), ->wait_for($count, $secs), ->finish (waits
# for it, then returns the [code, id] of every publish).
sub publisher {
    my($chan, $n, $gap, $file, $tag) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open my $fh, '>', $file or POSIX::_exit(1);
        select((select($fh), $| = 1)[0]);
        for my $i (1 .. $n) {
            my($code, $id) = publish($chan, ($tag // 'event') . " $i");
            print $fh "$code " . ($id // '-') . "\n";
            sleep $gap;
        }
        POSIX::_exit(0);
    }
    return bless { pid => $pid, file => $file }, 'StoreTest::Publisher';
}

package StoreTest::Publisher;
use Time::HiRes qw(time sleep);

sub answered { open my $fh, '<', $_[0]{file} or return 0; my @l = <$fh>; scalar @l }
sub wait_for {
    my($self, $count, $secs) = @_;
    my $t0 = time;
    sleep 0.05 while $self->answered < $count && time - $t0 < $secs;
    return $self->answered;
}
sub finish {
    my $self = shift;
    waitpid $self->{pid}, 0;
    open my $fh, '<', $self->{file} or return ();
    return map { [split ' '] } <$fh>;
}

package StoreTest;

1;
