package SSEBuild;

# Two builds of the module for the upgrade tests (test/store/upgrade.t,
# test/cluster/rolling.t): the build id a module file carries, and a copy
# of it that differs only in that id.  The relay is replaced when the
# module's build id changes, so a copy with another id is "the new build"
# as far as every process is concerned.

use strict;
use warnings FATAL => 'all';
use Exporter 'import';

our @EXPORT = qw(build_of new_build);

sub slurp {
    my $file = shift;
    open my $fh, '<:raw', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

# The build id of a module file ('' when it has none).
sub build_of {
    my $b = eval { slurp(shift) } // return '';
    return $b =~ /mod_sse-build (\d{6,})/ ? $1 : '';
}

# Replace the module file by a copy whose build id has every digit + 1
# (the same length: otherwise the same bytes); returns the new id.  The
# copy is renamed over the file: a new inode, so a process that has the
# old one mapped is untouched.
sub new_build {
    my $file = shift;
    my $b = slurp($file);
    $b =~ /mod_sse-build (\d{6,})/ or die "no build id in $file";
    my($old, $at) = ($1, $-[1]);
    (my $new = $old) =~ tr/0-9/1-90/;
    substr($b, $at, length $old) = $new;
    open my $out, '>:raw', "$file.new" or die "$file.new: $!";
    print $out $b;
    close $out or die "$file.new: $!";
    rename "$file.new", $file or die "rename: $!";
    return $new;
}

1;
