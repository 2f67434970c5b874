# The server under test is the one asked for: the MPM named by -defines,
# with the process layout of t/conf/extra.conf.in (several children,
# ServerLimit x ThreadLimit = 50 scoreboard slots), and mod_sse loaded.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

plan tests => 5;

my $defines = Apache::Test::vars('defines') // '';
my($want) = $defines =~ /\bMPM_(EVENT|WORKER|PREFORK)\b/;
$want = lc($want // 'event');    # extra.conf.in defaults to event

my $res = Apache::TestRequest::GET('/server-status?auto');
is $res->code, 200, 'mod_status answers (needed to check the MPM)';
my $status = $res->content;
my($mpm) = $status =~ /^ServerMPM:\s*(\S+)/m;
is $mpm, $want, "the running MPM is $want (defines: '$defines')";

my($board) = $status =~ /^Scoreboard:\s*(\S+)/m;
$board //= '';
is length($board), 50,
   'scoreboard has 50 slots: ServerLimit/ThreadLimit of extra.conf.in are in effect';

# processes that are up: a threaded child owns 5 consecutive slots
my $per = $want eq 'prefork' ? 1 : 5;
my $procs = grep { /[^.]/ } unpack "(A$per)*", $board;
cmp_ok $procs, '>=', 2, "at least 2 child processes are running ($procs)";

my $s = open_stream('/stream?channel=' . uniq_chan('setup'));
ok $s && $s->{status} == 200 && $s->{preamble} eq PREAMBLE,
   'mod_sse is loaded and answers a stream request';
