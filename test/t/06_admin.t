# Administration on the publish URL: GET with a channel (who is connected),
# GET without (which channels have subscribers), DELETE (close a channel:
# every stream on it reads EOF, "closed" is their number, the count drops
# to 0; streams on other channels are untouched).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SSETest;

my $c1 = uniq_chan('adm1');
my $c2 = uniq_chan('adm2');
my $c3 = uniq_chan('adm3');

# a channel nobody listens to
{
    my($res, $j) = admin_get($c3);
    is $res->code, 200, 'GET with an unused channel: 200';
    like $res->header('Content-Type') // '', qr{^application/json\b}, 'JSON';
    is_deeply $j, { channel => $c3, subscribers => 0, connections => [] },
              'GET with an unused channel: 0 subscribers, no connections'
        or diag show($res->content);
    publish($c3, data => 'nobody hears this');
}

my @s1 = map { open_stream("/stream?channel=$c1") } 1 .. 3;
my @s2 = map { open_stream("/events/$c2") } 1 .. 2;
my $both = open_stream("/stream?channel=$c1,$c2");
ok !(grep { !$_ || $_->{preamble} ne PREAMBLE } @s1, @s2, $both), 'six streams open';

# GET with a channel
{
    my($res, $j) = admin_get($c1);
    $j = {} unless ref $j eq 'HASH';
    is $j->{channel}, $c1, 'GET: channel';
    is $j->{subscribers}, 4, 'GET: 4 subscribers';
    is ref $j->{connections} eq 'ARRAY' ? scalar @{ $j->{connections} } : -1, 4,
       'GET: 4 connections';
    my @bad = grep {
        ref $_ ne 'HASH'
        || ($_->{remote} // '') ne '127.0.0.1'
        || ($_->{since} // '') !~ /\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\z/
        || ($_->{pid} // '') !~ /\A[1-9]\d*\z/
        || keys(%$_) != 3
    } @{ $j->{connections} || [] };
    ok !@bad, 'each connection: exactly remote, since (RFC 3339 UTC), pid'
        or diag show($res->content);
}

# GET without a channel
{
    my($res, $j) = admin_get();
    is $res->code, 200, 'GET without channel: 200';
    like $res->header('Content-Type') // '', qr{^application/json\b}, 'JSON';
    my $list = ref $j eq 'HASH' && ref $j->{channels} eq 'ARRAY' ? $j->{channels} : [];
    my %by = map { ref $_ eq 'HASH' ? ($_->{channel} // '' => $_->{subscribers}) : () } @$list;
    is $by{$c1}, 4, "lists $c1 with 4";
    is $by{$c2}, 3, "lists $c2 with 3";
    ok !exists $by{$c3}, "does not list $c3 (no subscribers)";
    ok !(grep { !defined $by{$_} || $by{$_} !~ /^[1-9]\d*\z/ } keys %by),
       'lists only channels with subscribers' or diag show($res->content);
}

# DELETE
{
    my($res, $j) = admin_delete($c1);
    is $res->code, 200, 'DELETE: 200' or diag show($res->content);
    like $res->header('Content-Type') // '', qr{^application/json\b}, 'JSON';
    is_deeply $j, { channel => $c1, closed => 4 }, 'DELETE answers {"channel":..,"closed":4}'
        or diag show($res->content);
    my @open = grep { !$_->wait_eof(5) } @s1, $both;
    is scalar(@open), 0, 'every stream on the channel reads EOF (the multiplexed one too)';
    my $zero = wait_until(1, sub {
        my(undef, $g) = admin_get($c1);
        ref $g eq 'HASH' && defined $g->{subscribers} && $g->{subscribers} == 0
            && ref $g->{connections} eq 'ARRAY' && !@{ $g->{connections} };
    });
    ok $zero, 'afterwards GET shows 0 subscribers and no connections';
    my(undef, $all) = admin_get();
    ok !(grep { ref $_ eq 'HASH' && ($_->{channel} // '') eq $c1 }
         @{ ref $all eq 'HASH' && $all->{channels} || [] }),
       'and the channel list no longer has it';

    # the other channel lives on, without the closed multiplexed stream
    my($pres, $pj) = publish($c2, data => 'still here');
    my @bad = check_pub($pj, $c2, 2);
    ok !@bad, "publish to $c2: 2 subscribers left" or diag join "\n", @bad;
    my $want = ev(id => ref $pj eq 'HASH' ? $pj->{id} // '?' : '?', data => 'still here');
    is show($_->next_event(5)), show($want), "stream on $c2 still receives" for @s2;

    # a publish to the closed channel reaches nobody
    my(undef, $pj1) = publish($c1, data => 'gone');
    is ref $pj1 eq 'HASH' ? $pj1->{subscribers} : undef, 0, "publish to $c1: 0 subscribers";
}

# DELETE of a channel without streams, and without a channel
{
    my($res, $j) = admin_delete($c3);
    is_deeply $j, { channel => $c3, closed => 0 }, 'DELETE of an unused channel: closed 0'
        or diag show($res->content);
    my $ua = Apache::TestRequest::user_agent();
    my $r = $ua->request(HTTP::Request->new(
        DELETE => Apache::TestRequest::resolve_url('/pub')));
    is $r->code, 400, 'DELETE without a channel: 400';
    my $r2 = $ua->request(HTTP::Request->new(
        DELETE => Apache::TestRequest::resolve_url('/pub?channel=bad%21')));
    is $r2->code, 400, 'DELETE with a bad channel: 400';
}

done_testing;
