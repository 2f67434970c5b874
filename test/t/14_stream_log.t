# When a stream ends, one info line in the error log says which channels,
# who, how long, how many events and bytes, and why it ended.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Spec ();
use SSETest;

plan tests => 4;


# the line names each channel by its key: namespace (the ServerName), /, name
my($a, $b) = (uniq_chan('la'), uniq_chan('lb'));
my $s = open_stream("/stream?channel=$a,$b");
my(undef, $j1) = publish($a, data => 'one');
my(undef, $j2) = publish($b, data => 'two');
my $got = join '', map { $s->next_event(3) // '' } 1 .. 2;
my $bytes = length(PREAMBLE) + length($got);
$s->disconnect;
my $line;
wait_until(3, sub { $line = log_line(qr{SSE00101: stream ended: channels=localhost/\Q$a\E,localhost/\Q$b\E }) });
ok $line, 'a line for the closed stream' or diag "no SSE00101 line for $a in the error log";
like $line // '', qr/remote=127\.0\.0\.1 duration=\d+\.\ds events=2 bytes=$bytes reason=client closed/,
     "channels, remote, duration, 2 events, $bytes bytes, client closed";

# a stream closed by DELETE says so
my $d = uniq_chan('ld');
my $s2 = open_stream("/stream?channel=$d");
admin_delete($d);
$s2->wait_eof(3);
wait_until(3, sub { $line = log_line(qr{SSE00101: stream ended: channels=localhost/\Q$d\E }) });
like $line // '', qr/events=0 bytes=\d+ reason=channel deleted/, 'DELETE: reason=channel deleted';

# a slow client says so (/slowstream: SSEMaxBacklog 16384)
my $c = uniq_chan('ls');
my($slow) = SSETest::Stream->start("/slowstream?channel=$c", rcvbuf => 4096);
$slow->read_head(5);
my $big = 'x' x 60000;
for (1 .. 200) {
    publish($c, data => $big);
    last if log_line(qr{channels=localhost/\Q$c\E .*reason=slow client});
}
wait_until(3, sub { $line = log_line(qr{SSE00101: stream ended: channels=localhost/\Q$c\E }) });
like $line // '', qr/reason=slow client/, 'backlog over the limit: reason=slow client';
$slow->disconnect;
