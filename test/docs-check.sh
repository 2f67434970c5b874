#!/bin/bash
# test/docs-check.sh: fails when the documentation drifts from the code.
#
#   1. every directive of sse_conf.c's command table (SSE... and
#      Mercure...) has a heading in docs/directives.md;
#   2. every SSE0xxxx message code in the C sources is explained in the
#      logs page (docs/monitoring.md);
#   3. every relative Markdown link in README.md and docs/*.md points at a
#      file that exists, and every #anchor at a heading of that page
#      (GitHub's slugs);
#   4. README.md is at most 260 lines (the front door; the reference is in
#      docs/).
#   5. sse-publish(1) (man/sse-publish.1) names every --option of
#      "sse-publish --help" (tools/sse-publish.c) and no other; and the
#      mod_sse(5) page generated from docs/directives.md (tools/md2man)
#      has every directive.
#   6. debian/changelog's newest entry is the VERSION file's version.
#
# Run from anywhere: test/docs-check.sh.  No network.  Exit 0 when all
# hold, 1 with one line per problem otherwise.

set -u
cd "$(dirname "$0")/.." || exit 2

DIRECTIVES=docs/directives.md
LOGS=docs/monitoring.md
README_MAX=260
fail=0

problem() {
    echo "docs-check: $*" >&2
    fail=1
}

# 1. directives
directives=$(sed -n 's/.*AP_INIT_[A-Z0-9]*("\(\(SSE\|Mercure\)[A-Za-z0-9]*\)".*/\1/p' sse_conf.c)
if [ -z "$directives" ]; then
    problem "no directive found in sse_conf.c's command table"
fi
for d in $directives; do
    if [ ! -f "$DIRECTIVES" ] \
       || ! grep -Eq "^#{1,6} +\`?$d\`?( |$)" "$DIRECTIVES"; then
        problem "directive $d (sse_conf.c) has no heading in $DIRECTIVES"
    fi
done

# 2. message codes
codes=$(grep -oh 'SSE0[0-9]\{4\}' ./*.c | sort -u)
for c in $codes; do
    if [ ! -f "$LOGS" ] || ! grep -q "$c" "$LOGS"; then
        problem "message code $c (in $(grep -l "$c" ./*.c | tr '\n' ' ' \
                | sed 's| $||; s|\./||g')) is not explained in $LOGS"
    fi
done

# 3. links and anchors (perl: Apache::Test needs it already)
links=$(perl -e '
use strict; use warnings;
use File::Basename qw(dirname);
use File::Spec;

my %slugs;      # file -> { slug => 1 }
sub lines_outside_fences {
    my ($f) = @_;
    open(my $fh, "<", $f) or return ();
    my ($fence, @out) = (0);
    while (my $l = <$fh>) {
        if ($l =~ /^\s*(```|~~~)/) { $fence = !$fence; next; }
        push @out, [$., $l] unless $fence;
    }
    return @out;
}
sub slugs_of {
    my ($f) = @_;
    return $slugs{$f} if $slugs{$f};
    my (%s, %seen);
    for my $x (lines_outside_fences($f)) {
        my $l = $x->[1];
        next unless $l =~ /^#{1,6}\s+(.*?)\s*#*\s*$/;
        my $t = lc $1;
        $t =~ s/\[([^\]]*)\]\([^)]*\)/$1/g;   # [text](link) -> text
        $t =~ s/[^\w\- ]//g;                  # GitHub drops punctuation
        $t =~ s/ /-/g;
        my $slug = $t;
        $slug .= "-" . $seen{$t} if $seen{$t};
        $seen{$t}++;
        $s{$slug} = 1;
    }
    return $slugs{$f} = \%s;
}
for my $f (@ARGV) {
    for my $x (lines_outside_fences($f)) {
        my ($n, $l) = @$x;
        $l =~ s/`[^`]*`//g;                   # no links in inline code
        while ($l =~ /\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g) {
            my $target = $1;
            next if $target =~ m{^[a-z][a-z0-9+.-]*:}i;   # http:, mailto:, ...
            my ($path, $anchor) = split /#/, $target, 2;
            my $file = $f;
            if (length $path) {
                $file = File::Spec->catfile(dirname($f), $path);
                unless (-e $file) {
                    print "$f:$n: link to $target: no file $file\n";
                    next;
                }
            }
            next unless defined $anchor && length $anchor;
            if ($file !~ /\.md$/ || -d $file) {
                print "$f:$n: link to $target: anchor into a non-Markdown file\n";
                next;
            }
            print "$f:$n: link to $target: no heading #$anchor in $file\n"
                unless slugs_of($file)->{lc $anchor};
        }
    }
}
' README.md docs/*.md)
if [ -n "$links" ]; then
    while IFS= read -r l; do
        problem "$l"
    done <<< "$links"
fi

# 4. the front door's length
n=$(wc -l < README.md)
if [ "$n" -gt "$README_MAX" ]; then
    problem "README.md has $n lines, more than $README_MAX: move reference text to docs/"
fi

# 5. the manual pages
help_opts=$(sed -n '/usage_text\[\]/,/^;/p' tools/sse-publish.c \
            | grep -o -- '--[a-z][a-z-]*' | sort -u)
man_opts=$(grep -o -- '\\-\\-[a-z][a-z\\-]*' man/sse-publish.1 | sed 's/\\//g' | sort -u)
if [ -z "$help_opts" ]; then
    problem "no --option found in tools/sse-publish.c's usage_text"
fi
for o in $(comm -3 <(echo "$help_opts") <(echo "$man_opts") | tr -d '\t'); do
    if echo "$help_opts" | grep -qx -- "$o"; then
        problem "sse-publish $o (--help) is not in man/sse-publish.1"
    else
        problem "man/sse-publish.1 names $o, which sse-publish --help does not"
    fi
done
page=$(perl tools/md2man check < "$DIRECTIVES" 2>&1) \
    || problem "tools/md2man failed on $DIRECTIVES: $page"
for d in $directives; do
    grep -q "^\.SS \"$d\"" <<< "$page" \
        || problem "directive $d is not a section of the generated mod_sse(5)"
done

# 6. one version
version=$(cat VERSION)
changelog=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' debian/changelog)
if [ "$version" != "$changelog" ]; then
    problem "VERSION says $version, debian/changelog $changelog: add a changelog entry (dch -v $version)"
fi

if [ "$fail" -ne 0 ]; then
    echo "docs-check: FAILED" >&2
    exit 1
fi
echo "docs-check: ok ($(echo "$directives" | wc -w) directives," \
     "$(echo "$codes" | wc -w) message codes, links and anchors of" \
     "README.md and $(ls docs/*.md | wc -l) docs pages, README $n lines," \
     "$(echo "$help_opts" | wc -w) sse-publish options in its man page," \
     "version $version)"
