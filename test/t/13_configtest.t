# apachectl configtest catches mod_sse configuration mistakes with a clear
# message: each bad line below makes `apache2 -t` fail and name the problem.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use File::Spec ();

my $httpd = Apache::Test::vars('httpd');
my $so = File::Spec->rel2abs("$FindBin::Bin/../../mod_sse.so");
my @cases = (
    [ "<Location /x>\nSSEChannel \"bad name!\"\n</Location>", qr/invalid channel name 'name!'/ ],
    [ "<Location /x>\nSSEChannel \"\%{nosuchfn:x}\"\n</Location>", qr/SSEChannel: cannot parse/ ],
    [ "<Location /x>\nSSEMaxBacklog 0\n</Location>", qr/SSEMaxBacklog must be a number of bytes/ ],
    [ "<Location /x>\nSSEHistory ten\n</Location>", qr/SSEHistory: 'ten' is not a whole number/ ],
    [ "<Location /x>\nSSEKeepalive -1\n</Location>", qr/SSEKeepalive: '-1' is not a whole number/ ],
    [ "<Location /x>\nSSEMaxSubscribers 10\n</Location>", qr/not allowed in <Location>/ ],
    [ 'SSECluster http://127.0.0.1:6379', qr/does not start with redis:/ ],
    [ 'SSECluster redis://127.0.0.1:99999', qr/bad port/ ],
    [ 'SSECluster redis://127.0.0.1:6379/one', qr/SSECluster: .* bad database number/ ],
    [ 'SSECluster redis-sentinel://127.0.0.1:26379', qr/SSECluster: .* no \/MASTERNAME/ ],
    [ 'SSECluster redis-sentinel://127.0.0.1:26379,:26380/mymaster', qr/SSECluster: .* no host/ ],
    [ 'SSECluster redis-sentinel://127.0.0.1:26379,127.0.0.1:0/mymaster', qr/SSECluster: .* bad port/ ],
    [ 'SSECluster redis-sentinel://127.0.0.1:26379/my*master', qr/SSECluster: .* master name is 1-128/ ],
    [ 'SSECluster redis-sentinel://127.0.0.1:26379/mymaster/x', qr/SSECluster: .* bad database number/ ],
    [ 'SSEClusterPrefix "a b"', qr/SSEClusterPrefix: 1-64 characters/ ],
    [ 'SSEClusterWait 17', qr/SSEClusterWait: '17' is not a number of replicas from 0 to 16/ ],
    [ 'SSEClusterWait 1 10s', qr/SSEClusterWait: '10s' is not a duration from 1ms to 5s/ ],
    [ "<Location /x>\nSSEClusterWait 1\n</Location>", qr/SSEClusterWait cannot occur within|not allowed/ ],
    [ 'SSEClusterPasswordFile /nonexistent/pass', qr/cannot read/ ],
    [ 'SSEClusterSentinelPasswordFile /dev/null', qr{SSEClusterSentinelPasswordFile: '/dev/null' has no password on its first line} ],
    [ 'SSEClusterSentinelPasswordFile /nonexistent/pass', qr/SSEClusterSentinelPasswordFile: cannot read '\/nonexistent\/pass'/ ],
    [ 'SSENamespace "a/b"', qr{SSENamespace: 'a/b' is not a valid namespace} ],
    [ "<Location /x>\nSSENamespace x;y\n</Location>", qr/SSENamespace: 'x;y' is not a valid namespace/ ],
    [ 'SSEProtectedChannels on', qr/SSEProtectedChannels not allowed here|not allowed/ ],
    [ "<Location /x>\nSSEPublishOrigins https://a.example/path\n</Location>", qr/SSEPublishOrigins: 'https:\/\/a.example\/path' is not an origin/ ],
    [ "<Location /x>\nSSEPublishOrigins ftp://a.example\n</Location>", qr/SSEPublishOrigins: 'ftp:\/\/a.example' is not an origin/ ],
    [ "<Location /x>\nSSECORSOrigins https://a.example/events\n</Location>", qr/SSECORSOrigins: 'https:\/\/a.example\/events' is not an origin .*or \* for any origin/ ],
    [ "<Location /x>\nSSECORSOrigins https://a.example null\n</Location>", qr/SSECORSOrigins: 'null' is not an origin/ ],
    [ "<Location /x>\nSSECORSOrigins a.example\n</Location>", qr/SSECORSOrigins: 'a.example' is not an origin/ ],
    [ "<Location /x>\nSSECORSOrigins\n</Location>", qr/SSECORSOrigins requires at least one argument/ ],
    [ "<Location /x>\nSSECORSOrigins https://*.example.com\n</Location>", qr/SSECORSOrigins: 'https:\/\/\*.example.com' is not an origin/ ],
    [ "<Location /x>\nSSECORSOrigins http://a.example:99999\n</Location>", qr/SSECORSOrigins: 'http:\/\/a.example:99999' is not an origin/ ],
    [ "<Location /x>\nMercureCORSOrigins https://*.example.com\n</Location>", qr/MercureCORSOrigins: 'https:\/\/\*.example.com' is not an origin/ ],
    [ "<Location /x>\nSSEPublishOrigins http://a.example:0\n</Location>", qr/SSEPublishOrigins: 'http:\/\/a.example:0' is not an origin/ ],
    [ "<Location /x>\nMercureCORSOrigins *\n</Location>", qr/MercureCORSOrigins: '\*' is not an origin .*no \*/ ],
    [ "<Location /x>\nSSEPublishOrigins *\n</Location>", qr/SSEPublishOrigins: '\*' is not an origin .*no \*/ ],
    [ 'SSEMaxStreamsPerClient -1', qr/SSEMaxStreamsPerClient: '-1' is not a whole number from 0 to 1000000/ ],
    [ "<Location /x>\nSSEMaxStreamsPerClient ten\n</Location>", qr/SSEMaxStreamsPerClient: 'ten' is not a whole number/ ],
    [ 'SSEClientIPv6Prefix 65', qr/SSEClientIPv6Prefix: '65' is not a whole number from 1 to 64/ ],
    [ "<Location /x>\nSSEClientIPv6Prefix 48\n</Location>", qr/SSEClientIPv6Prefix not allowed here|not allowed in <Location>/ ],
);
my @warn = (
    # [ config, warns?, what ]
    [ "<Location /q>\nSetHandler sse\n</Location>", 1,
      'a stream location where the client names the channels, open to all' ],
    [ "<VirtualHost *:1>\nServerName v.example\n<LocationMatch \"^/q/\">\n  SetHandler \"sse\"\n</LocationMatch>\n</VirtualHost>", 1,
      'the same inside a virtual host, quoted' ],
    [ "<Location /q>\nSetHandler sse\nRequire all granted\n</Location>", 0,
      'with Require all granted (meant)' ],
    [ "<Location /q>\nSetHandler sse\n<RequireAny>\nRequire all denied\n</RequireAny>\n</Location>", 0,
      'with a <RequireAny>' ],
    [ "<Location /q>\nSetHandler sse\nSSEChannel news\n</Location>", 0,
      'with SSEChannel (the admin chose the channels)' ],
    [ "<Location /q>\nSetHandler sse-publish\n</Location>", 0,
      'a publish location (its own rules)' ],
    [ "<Location /q>\nSetHandler sse\nAuthType Basic\nAuthName x\n</Location>", 1,
      'authentication without Require (lets everyone in)' ],
    [ "SetHandler sse", 1, 'SetHandler sse for the whole server' ],
);
plan tests => 1 + @cases + 2 * @warn + 1 + 9;

my $dir = File::Temp->newdir;
sub configtest {
    my($line, %o) = @_;
    my $mpm = $o{mpm} // 'event';
    my $conf = "$dir/httpd.conf";
    open my $fh, '>', $conf or die $!;
    print $fh <<"EOC";
ServerRoot "$dir"
ServerName localhost
Listen 127.0.0.1:1
PidFile "$dir/pid"
ErrorLog "$dir/error.log"
LoadModule mpm_${mpm}_module /usr/lib/apache2/modules/mod_mpm_${mpm}.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule sse_module "$so"
$line
EOC
    close $fh;
    my $sh = $o{shell} // '';
    my $out = `$sh "$httpd" -t -f "$conf" 2>&1`;
    return ($? >> 8, $out);
}

my($rc, $out) = configtest('SSEMaxStreamsPerClient 100
SSEClientIPv6Prefix 56
SSECluster redis-sentinel://127.0.0.1:26379,[::1]:26380,sentinel-3/my-master.1/2
<Location /x>
SetHandler sse
SSEChannel "a, b %{REMOTE_USER}"
SSEHistory 10 60
SSEMaxStreamsPerClient 0
SSECORSOrigins https://App.Example.com:443 http://localhost:8080 http://[::1]:8080 *
</Location>');
is $rc, 0, 'a good configuration passes' or diag $out;
for my $c (@cases) {
    my($rc, $out) = configtest($c->[0]);
    (my $name = $c->[0]) =~ s/\n/ /g;
    ok $rc != 0 && $out =~ $c->[1], "refused: $name" or diag $out;
}

# configtest warns, once, naming the file and line, of a stream location
# where any client may read any channel it names
for my $w (@warn) {
    my($conf, $warns, $what) = @$w;
    my($rc, $out) = configtest($conf);
    is $rc, 0, "passes: $what" or diag $out;
    my @lines = $out =~ /(SSE00011: .*)/g;
    if ($warns) {
        my $line = 10 + ($conf =~ /^<VirtualHost/ ? 2 : 0);
        ok @lines == 1 && $lines[0] =~ /httpd\.conf:$line: (<(Location|LocationMatch) .*|the server configuration) serves every channel a client names .* no Require/,
           "warns once with file and line: $what" or diag $out;
    }
    else {
        is scalar(@lines), 0, "no warning: $what" or diag $out;
    }
}

# SSENamespace and SSEProtectedChannels in the places they belong
{
    my($rc, $out) = configtest("SSENamespace shop\n<VirtualHost *:1>\nSSENamespace other.site\n<Location /s>\nSSENamespace s-1\nSetHandler sse\nSSEChannel \"\@user-%{REMOTE_USER}\"\nSSEProtectedChannels on\nRequire all granted\n</Location>\n</VirtualHost>");
    is $rc, 0, 'SSENamespace at server, virtual host and location level; SSEProtectedChannels in a location'
        or diag $out;
}

# The MPM settings that would cut streams, named once at start-up (and by
# configtest) when the configuration serves streams: children retired
# while their streams look idle, prefork with TLS, too few descriptors.
{
    my $streams = "<Location /s>\nSetHandler sse\nRequire all granted\n</Location>\n";
    my($rc, $out) = configtest("${streams}MaxSpareThreads 75\nMaxRequestWorkers 150");
    my @w = $out =~ /(SSE00308: .*)/g;
    ok @w == 1 && $w[0] =~ /MaxSpareThreads 75 is below MaxRequestWorkers 150: the event MPM stops children with idle threads.*set MaxSpareThreads to MaxRequestWorkers/,
       "event, Debian's MaxSpareThreads 75 below MaxRequestWorkers 150: SSE00308 once" or diag $out;
    ($rc, $out) = configtest("${streams}MaxSpareThreads 150\nMaxRequestWorkers 150");
    unlike $out, qr/SSE00308/, '... none with MaxSpareThreads = MaxRequestWorkers';
    ($rc, $out) = configtest("MaxSpareThreads 75\nMaxRequestWorkers 150");
    unlike $out, qr/SSE0030[89]|SSE00313/, '... and none at all where no location serves streams';
    ($rc, $out) = configtest("${streams}MaxSpareServers 10\nMaxRequestWorkers 150", mpm => 'prefork');
    like $out, qr/SSE00308: MaxSpareServers 10 is below MaxRequestWorkers 150: the prefork MPM stops idle processes/,
         'prefork: MaxSpareServers below MaxRequestWorkers (SSE00308)';
    ($rc, $out) = configtest("LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n${streams}MaxSpareServers 150\nMaxRequestWorkers 150",
                             mpm => 'prefork');
    like $out, qr/SSE00309: the prefork MPM holds each event stream over TLS in a whole process: MaxRequestWorkers 150/,
         'prefork with mod_ssl: each TLS stream a process (SSE00309)';
    ($rc, $out) = configtest("${streams}MaxSpareThreads 150\nMaxRequestWorkers 150\nSSEMaxSubscribers 50000",
                             shell => 'ulimit -n 1024;');
    like $out, qr/SSE00313: 1024 descriptors per process \(ulimit -n\) let \d+ children hold about \d+ streams, below SSEMaxSubscribers 50000/,
         'ulimit -n 1024 with SSEMaxSubscribers 50000 (SSE00313)';
    ($rc, $out) = configtest("${streams}MaxSpareThreads 150\nMaxRequestWorkers 150\nSSEMaxSubscribers 2000",
                             shell => 'ulimit -n 1024;');
    unlike $out, qr/SSE00313/, '... none with SSEMaxSubscribers 2000';
    ($rc, $out) = configtest("ThreadsPerChild 25\nMaxRequestWorkers 150\nSSEMaxHeldStreams 100000");
    like $out, qr/SSE00312: SSEMaxHeldStreams 100000 is more than the MPM can hold: 6 children x \(\d+ over HTTP\/1\.1 \+ 0 over HTTP\/2\) = \d+/,
         'SSEMaxHeldStreams past what the MPM can hold (SSE00312)';
    ($rc, $out) = configtest("ThreadsPerChild 25\nMaxRequestWorkers 150\nSSEMaxHeldStreams 50");
    unlike $out, qr/SSE00312/, '... none with SSEMaxHeldStreams 50';
}
