# An idle stream lives on: parked streams are outside httpd's request
# processing, so its Timeout (3 s in extra.conf.in) does not end them.
# The stream stays open and counted across 4.5 idle seconds, receives
# nothing but (optional) comment lines meanwhile, and then gets the next
# event.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 5;

my $chan = uniq_chan('idle');
my $s = open_stream("/stream?channel=$chan");
ok $s && $s->{preamble} eq PREAMBLE, 'stream open';

my $quiet = $s->next_event(4.5);    # waits the whole 4.5 s unless something comes
is show($quiet), show(undef), 'no event while idle';
ok !$s->{eof}, 'still open after 4.5 s idle (Timeout is 3 s)';

my(undef, $g) = admin_get($chan);
is ref $g eq 'HASH' ? $g->{subscribers} : undef, 1, 'still counted';

my(undef, $j) = publish($chan, data => 'awake');
is show($s->next_event(5)),
   show(ev(id => ref $j eq 'HASH' ? $j->{id} // '?' : '?', data => 'awake')),
   'and receives the next event';
