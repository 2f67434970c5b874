package StoreTest;

# What the history store's tests (test/store/*.t) share: the private
# server test/store/run.sh set up (STORE_PORT, STORE_DIR, STORE_ARGS: how
# to start and stop it), started and stopped as apachectl does, its error
# log, publishing and resuming with Last-Event-ID.

use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use IO::Socket::INET ();
use IO::Select ();
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(store_port store_dir start stop up down parent_pid log_lines relay_pid
                 publish resume head_of);

my $port = $ENV{STORE_PORT};
my $dir = $ENV{STORE_DIR};
my $args = $ENV{STORE_ARGS};
my $http = HTTP::Tiny->new(timeout => 10);
my $json = JSON::PP->new->utf8;

# undef when not run by test/store/run.sh (the test skips)
sub store_port { $port }
sub store_dir { $dir }

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
# (the status, the id when 200); 599 when the server could not be reached
sub publish {
    my($chan, $data) = @_;
    my $r = $http->post_form("http://127.0.0.1:$port/pub",
                             { channel => $chan, data => $data });
    my $o = $r->{status} == 200 ? eval { $json->decode($r->{content}) } : undef;
    return ($r->{status}, $o ? $o->{id} : undef);
}
# Resume $chan after $last: (the ids and datas got until $n events came
# or $secs passed).
sub resume {
    my($chan, $last, $n, $secs) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 10) or return;
    print $s "GET /stream?channel=$chan HTTP/1.1\r\nHost: localhost\r\n"
        . (defined $last ? "Last-Event-ID: $last\r\n" : '') . "\r\n";
    my($buf, @ids, @data) = ('');
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
            my($id) = $block =~ /^id: (.*)$/m or next;
            push @ids, $id;
            push @data, join "\n", $block =~ /^data: (.*)$/mg;
        }
    }
    close $s;
    return (\@ids, \@data);
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

1;
