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
    [ 'SSEClusterPrefix "a b"', qr/SSEClusterPrefix: 1-64 characters/ ],
    [ 'SSEClusterPasswordFile /nonexistent/pass', qr/cannot read/ ],
);
plan tests => 1 + @cases;

my $dir = File::Temp->newdir;
sub configtest {
    my $line = shift;
    my $conf = "$dir/httpd.conf";
    open my $fh, '>', $conf or die $!;
    print $fh <<"EOC";
ServerRoot "$dir"
ServerName localhost
Listen 127.0.0.1:1
PidFile "$dir/pid"
ErrorLog "$dir/error.log"
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule sse_module "$so"
$line
EOC
    close $fh;
    my $out = `"$httpd" -t -f "$conf" 2>&1`;
    return ($? >> 8, $out);
}

my($rc, $out) = configtest('<Location /x>
SetHandler sse
SSEChannel "a, b %{REMOTE_USER}"
SSEHistory 10 60
</Location>');
is $rc, 0, 'a good configuration passes' or diag $out;
for my $c (@cases) {
    my($rc, $out) = configtest($c->[0]);
    (my $name = $c->[0]) =~ s/\n/ /g;
    ok $rc != 0 && $out =~ $c->[1], "refused: $name" or diag $out;
}
