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

my $top = abs_path(Apache::Test::vars('serverroot') . '/../..');
my $load = "$top/conf/sse.load";
my $conf = "$top/conf/sse.conf";
my $so = "$top/mod_sse.so";
my $httpd = Apache::Test::vars('httpd') || '/usr/sbin/apache2';
my $moddir = '/usr/lib/apache2/modules';

plan skip_all => "conf/sse.load does not exist yet" unless -f $load;
plan tests => 4 + 3 * 3;

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
    my $mods = `$httpd -M -f "$dir/httpd.conf" 2>&1`;
    like $mods, qr/^\s*sse_module \(shared\)/m, "$mpm: sse_module is loaded"
        or diag $mods;
}
