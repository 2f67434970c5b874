# SSEMaxSubscribers (2100 in t/conf/resume.conf.in): the stream over the
# limit is refused with 503 and Retry-After; one closing makes room again.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 6;

sub refused_limit {
    my $r = Apache::TestRequest::GET('/server-status?auto');
    return $r->is_success && $r->content =~ /^SSEStreamsRefusedLimit: (\d+)$/m ? $1 : -1;
}

# start from no streams at all (earlier tests' streams are gone within 1 s)
my $idle = wait_until(5, sub {
    my(undef, $j) = admin_get();
    ref $j eq 'HASH' && !@{ $j->{channels} };
});
ok $idle, 'no stream open before the test';

my $chan = uniq_chan('lim');
my($ok, $fail) = open_streams(2100, "/stream?channel=$chan", batch => 200);
is scalar(@$ok), 2100, '2100 streams open (the limit)' or diag "@$fail[0..2]";
my $before = refused_limit();
my $r = raw_http(GET => "/stream?channel=$chan");
is $r->code . ' ' . ($r->header('Retry-After') // '-'), '503 1',
   'stream 2101: 503 with Retry-After';
is refused_limit(), $before + 1, "counted on the status page (SSEStreamsRefusedLimit $before -> " . ($before + 1) . ')';
(pop @$ok)->disconnect;
my $again;
wait_until(3, sub {
    $again = open_stream("/stream?channel=$chan");
    return 1 if $again && $again->{status} == 200;
    $again->disconnect if $again;
    return 0;
});
is $again && $again->{status}, 200, 'after one closes, a new stream is admitted';
my(undef, $j) = admin_get($chan);
is $j->{subscribers}, 2100, 'and 2100 are counted';
close_all(@$ok, $again);
