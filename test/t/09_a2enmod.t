# The Debian-style configuration files of the repository (conf/sse.load,
# conf/sse.conf, as a2enmod would link them) are valid: `apache2 -t`
# accepts them in a small configuration, under each MPM, with the
# LoadModule path rewritten to the module `make` built.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use File::Temp qw(tempdir);
use Cwd qw(abs_path);
use IO::Socket::INET ();
use LWP::UserAgent ();

my $top = abs_path(Apache::Test::vars('serverroot') . '/../..');
my $load = "$top/conf/sse.load";
my $conf = "$top/conf/sse.conf";
my $so = "$top/mod_sse.so";
my $httpd = Apache::Test::vars('httpd') || '/usr/sbin/apache2';
my $moddir = '/usr/lib/apache2/modules';

plan skip_all => "conf/sse.load does not exist yet" unless -f $load;
plan tests => 4 + 3 * 4 + 2 + 4;

my $text = do { local $/; open my $fh, '<', $load or die "$load: $!"; <$fh> };
my @lm = $text =~ /^\s*LoadModule\s+(\S+)\s+(\S+)\s*$/mg;
is_deeply \@lm, ['sse_module', '/usr/lib/apache2/modules/mod_sse.so'],
          'sse.load: LoadModule sse_module /usr/lib/apache2/modules/mod_sse.so';
ok -f $conf, 'conf/sse.conf exists';
ok -f $so, 'the built mod_sse.so exists';
(my $rewritten = $text) =~ s{^(\s*LoadModule\s+sse_module\s+)\S+}{$1"$so"}m;
ok $rewritten ne $text, 'LoadModule path rewritten to the built module';

my $dir = tempdir(CLEANUP => 1);
open my $fh, '>', "$dir/sse.load" or die $!;
print $fh $rewritten;
close $fh;

# the modules a stock Debian apache2 has enabled, when present
my @base = grep { -f "$moddir/mod_$_.so" }
    qw(authz_core authz_host authn_core alias mime env setenvif headers
       filter deflate dir status);
my $warnings = 0;
for my $mpm (qw(event worker prefork)) {
    open my $c, '>', "$dir/httpd.conf" or die $!;
    print $c <<"EOC";
ServerRoot "$dir"
ServerName localhost
DefaultRuntimeDir "$dir"
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error_log"
Listen 127.0.0.1:1
LoadModule mpm_${mpm}_module "$moddir/mod_mpm_$mpm.so"
EOC
    print $c qq{LoadModule ${_}_module "$moddir/mod_$_.so"\n} for @base;
    print $c qq{Include "$dir/sse.load"\n};
    print $c qq{Include "$conf"\n} if -f $conf;
    close $c;

    my $out = `$httpd -t -f "$dir/httpd.conf" 2>&1`;
    my $rc = $? >> 8;
    is $rc, 0, "$mpm: apache2 -t exits 0" or diag $out;
    like $out, qr/Syntax OK/, "$mpm: Syntax OK";
    unlike $out, qr/SSE00011/, "$mpm: no warning of a stream location open to all";
    $warnings += () = $out =~ /SSE00011/g;
    my $mods = `$httpd -M -f "$dir/httpd.conf" 2>&1`;
    like $mods, qr/^\s*sse_module \(shared\)/m, "$mpm: sse_module is loaded"
        or diag $mods;
}

my($stream_locations, $stream_status, $publish_status) = (-1, -1, -1);
# What a2enmod opens: no stream location at all (every stream location in
# it is a commented example), the publish API from this host only.
{
    my @live = grep { !/^\s*#/ } split /\n/, do { local $/; open my $c, '<', $conf or die; <$c> };
    my @stream = grep { /^\s*SetHandler\s+"?sse"?\s*$/i } @live;
    is scalar(@stream), 0, 'conf/sse.conf: no SetHandler sse outside comments';
    $stream_locations = @stream;
    ok scalar(grep { /^\s*SetHandler\s+"?sse-publish"?\s*$/i } @live) == 1
       && scalar(grep { /^\s*Require\s+local\s*$/i } @live) == 1,
       'conf/sse.conf: one publish location, Require local';
}

# ... and a server started with it says so from the outside: a stream URL
# is not there, publishing from this host works and reaches nobody
SKIP: {
    my $sock = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0)
        or skip "no free port: $!", 4;
    my $port = $sock->sockport;
    close $sock;
    open my $c, '>', "$dir/run.conf" or die $!;
    print $c <<"EOC";
ServerRoot "$dir"
ServerName localhost
DefaultRuntimeDir "$dir"
PidFile "$dir/run.pid"
ErrorLog "$dir/run_error_log"
Listen 127.0.0.1:$port
TypesConfig /etc/mime.types
LoadModule mpm_event_module "$moddir/mod_mpm_event.so"
EOC
    print $c qq{LoadModule ${_}_module "$moddir/mod_$_.so"\n} for @base;
    print $c qq{Include "$dir/sse.load"\nInclude "$conf"\n};
    close $c;
    system($httpd, '-f', "$dir/run.conf", '-k', 'start');
    my $ua = LWP::UserAgent->new(timeout => 5);
    my $up;
    for (1 .. 50) {
        last if ($up = $ua->get("http://127.0.0.1:$port/sse/publish"))->code == 200;
        select undef, undef, undef, 0.1;
    }
    is $up->code, 200, 'the server with conf/sse.conf answers GET /sse/publish from this host'
        or diag $up->as_string, `cat "$dir/run_error_log" 2>&1`;
    my $st = $ua->get("http://127.0.0.1:$port/sse/stream?channel=news");
    ok $st->code == 404 && ($st->header('Content-Type') // '') !~ /event-stream/,
       'GET /sse/stream?channel=news: 404, no stream' or diag $st->as_string;
    my $pub = $ua->post("http://127.0.0.1:$port/sse/publish?channel=news", { data => 'hi' });
    ($stream_status, $publish_status) = ($st->code, $pub->code);
    ok $pub->code == 200 && $pub->content =~ /"subscribers":0/,
       'POST /sse/publish from this host: 200, 0 subscribers' or diag $pub->as_string;
    system($httpd, '-f', "$dir/run.conf", '-k', 'stop');
    my $gone = 0;
    for (1 .. 50) {
        last if ($gone = !-e "$dir/run.pid");
        select undef, undef, undef, 0.1;
    }
    ok $gone, 'the server stopped';
}
printf "# RELIABILITY ns_default_conf stream_locations=%d stream_status=%d publish_status=%d warnings=%d\n",
    $stream_locations, $stream_status, $publish_status, $warnings;
