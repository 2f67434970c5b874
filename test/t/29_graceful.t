# A graceful restart keeps the history: a client whose stream the restart
# closed reconnects with its last id and gets exactly what it missed.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Spec ();
use SSETest;

plan tests => 6;

my $chan = uniq_chan('gr');
my $s = open_stream("/stream?channel=$chan");
my(undef, $j) = publish($chan, data => 'before');
my $blk = $s->next_event(3) // '';
my($last) = $blk =~ /^id: (.*)$/m;
ok defined $last, 'received an event before the restart';

my $pidfile = File::Spec->catfile(Apache::Test::vars('t_logs'), 'httpd.pid');
open my $fh, '<', $pidfile or die "$pidfile: $!";
chomp(my $ppid = <$fh>);
ok kill('USR1', $ppid), 'graceful restart (SIGUSR1 to the parent)';

ok $s->wait_eof(10), 'the old child closes its stream';
# publishing during and after the restart
my @ids;
my $up = wait_until(10, sub {
    my($res, $jj) = publish($chan, data => 'during');
    return 0 unless $res->code == 200;
    push @ids, $jj->{id};
    1;
});
ok $up, 'the server publishes again after the restart';
publish($chan, data => 'after');

my $r = open_stream("/stream?channel=$chan", headers => ['Last-Event-ID' => $last]);
ok !defined $r->header('SSE-History-Lost'), 'history survived: nothing lost';
my @d;
while (my $b = $r->next_event(1)) { push @d, $b =~ /^data: (.*)$/m }
is join(',', @d), 'during,after', 'the reconnecting client gets exactly what it missed';
$r->disconnect;
