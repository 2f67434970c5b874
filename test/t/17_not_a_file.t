# sse and sse-publish URLs skip the directory walk (no stat, no .htaccess
# probe per request): <Directory> and .htaccess do not apply to them, only
# <Location>.  The same directory's real files are still governed by them.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);
use SSETest;

plan tests => 5;

my $res = GET('/nofile/file.txt');
is $res->code, 403, 'control: a file under the denying .htaccess is 403';

my $chan = uniq_chan('nofile');
my $s = open_stream("/nofile/stream?channel=$chan");
ok $s && $s->{status} == 200, 'a stream URL there opens (200)';
is $s && $s->{preamble}, PREAMBLE, '... with ": ok"';
my(undef, $j) = publish($chan, data => 'here', url => '/nofile/pub');
is ref $j eq 'HASH' ? $j->{subscribers} : undef, 1, 'a publish URL there works and counts the stream';
like $s->next_event(5) // '', qr/^data: here\n/m, 'the stream gets the event';
