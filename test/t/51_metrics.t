# SetHandler sse-metrics: the Prometheus text format (version 0.0.4).
# Every sample belongs to a family introduced once by # HELP and # TYPE,
# a family's samples are together, counters end in _total and gauges do
# not; the streams gauge counts the open streams, the delivered counter
# grows by N*M for M events on N streams, per-child series add up to the
# totals, counters never fall between scrapes.  GET and HEAD only.  A relay
# that does not answer (stopped here for a few seconds) is reported as
# mod_sse_relay_up 0 with no other series, and as "SSERelay: down".
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use HTTP::Request ();
use SSETest;

plan tests => 31;

# Scrape and parse: (response, { name => value } for unlabelled samples,
# { name => { pid => value } } for samples labelled by pid, [problems],
# { name => type }).
sub scrape {
    my $res = Apache::TestRequest::GET('/metrics');
    my(%val, %child, %type, %help, %done, @bad);
    my $cur = '';
    for my $line (split /\n/, $res->content) {
        if ($line =~ /^# HELP (\S+) (\S.*)$/) {
            push @bad, "second HELP for $1" if $help{$1}++;
            next;
        }
        if ($line =~ /^# TYPE (\S+) (counter|gauge)$/) {
            push @bad, "second TYPE for $1" if $type{$1};
            push @bad, "TYPE before HELP for $1" unless $help{$1};
            $type{$1} = $2;
            next;
        }
        if ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/) {
            my($name, $labels, $v) = ($1, $2, $3);
            push @bad, "$name: no TYPE before its sample" unless $type{$name};
            push @bad, "$name: not a number: $v" unless $v =~ /^\d+\z/;
            push @bad, "$name: samples not together" if $done{$name} && $cur ne $name;
            $done{$name} = 1;
            $cur = $name;
            if (!defined $labels) {
                push @bad, "$name: unlabelled sample twice" if exists $val{$name};
                $val{$name} = $v;
            }
            elsif ($labels =~ /^pid="(\d+)"$/) {
                $child{$name}{$1} = $v;
            }
            elsif ($labels !~ /^state="(off|up|down)"$/) {
                push @bad, "$name: unexpected labels {$labels}";
            }
            next;
        }
        push @bad, 'not a metrics line: ' . show($line);
    }
    for my $name (keys %type) {
        push @bad, "$name is not mod_sse_*" unless $name =~ /^mod_sse_[a-z_]+\z/;
        push @bad, "counter $name does not end in _total"
            if $type{$name} eq 'counter' && $name !~ /_total\z/;
        push @bad, "gauge $name ends in _total"
            if $type{$name} eq 'gauge' && $name =~ /_total\z/;
        push @bad, "$name has a TYPE and no sample" unless $done{$name};
    }
    return ($res, \%val, \%child, \@bad, \%type);
}

my($res, $v0, $c0, $bad, $type) = scrape();
is $res->code, 200, 'GET /metrics: 200';
like $res->header('Content-Type') // '', qr{^text/plain; version=0\.0\.4\b},
     'Content-Type: text/plain; version=0.0.4';
ok !@$bad, 'well-formed exposition: HELP, TYPE, samples, names'
    or diag join "\n", @$bad[0 .. ($#$bad < 9 ? $#$bad : 9)];
is $v0->{mod_sse_relay_up}, 1, 'mod_sse_relay_up 1';
my %want = (
    mod_sse_streams => 'gauge', mod_sse_channels => 'gauge',
    mod_sse_subscriptions => 'gauge', mod_sse_children => 'gauge',
    mod_sse_history_events => 'gauge', mod_sse_history_bytes => 'gauge',
    mod_sse_events_published_total => 'counter',
    mod_sse_events_delivered_total => 'counter',
    mod_sse_sent_bytes_total => 'counter', mod_sse_dropped_slow_total => 'counter',
    mod_sse_streams_opened_total => 'counter',
    mod_sse_streams_closed_total => 'counter',
    mod_sse_events_joined_total => 'counter',
    mod_sse_streams_refused_limit_total => 'counter',
    mod_sse_tls_direct_writes_total => 'counter',
    mod_sse_child_streams => 'gauge',
    mod_sse_child_events_delivered_total => 'counter',
    mod_sse_resumes_history_lost_total => 'counter',
    mod_sse_publish_refused_store_total => 'counter',
    mod_sse_publish_refused_late_total => 'counter',
    mod_sse_streams_dropped_exit_total => 'counter',
    mod_sse_relay_starts_total => 'counter',
    mod_sse_relay_upgrades_total => 'counter',
);
my @wrong = grep { ($type->{$_} // 'none') ne $want{$_} } sort keys %want;
ok !@wrong, 'the expected families with the right types'
    or diag join ', ', map { "$_ is " . ($type->{$_} // 'missing') } @wrong;
is scalar(keys %{ $c0->{mod_sse_child_streams} || {} }), $v0->{mod_sse_children},
   'one mod_sse_child_streams series per child';
like $res->content, qr/^mod_sse_cluster_state\{state="off"\} 1$/m,
     'mod_sse_cluster_state{state="off"} 1';

# N streams, M events
my($n, $m) = (3, 4);
my $chan = uniq_chan('met');
my @s = map { open_stream("/stream?channel=$chan") } 1 .. $n;
ok !(grep { !$_ || ($_->{preamble} // '') ne PREAMBLE } @s), "$n streams open";
my($v1, $c1);
wait_until(5, sub {
    (undef, $v1, $c1) = scrape();
    ($v1->{mod_sse_streams} // -1) == $v0->{mod_sse_streams} + $n;
});
is $v1->{mod_sse_streams} - $v0->{mod_sse_streams}, $n,
   "the mod_sse_streams gauge counts the $n new streams";
my(undef, $list) = admin_get();
my $subs = 0;
$subs += $_->{subscribers} for @{ ref $list eq 'HASH' ? $list->{channels} : [] };
is $v1->{mod_sse_subscriptions}, $subs,
   "mod_sse_subscriptions ($v1->{mod_sse_subscriptions}) is the sum of GET /pub's counts";
my $sum = 0;
$sum += $_ for values %{ $c1->{mod_sse_child_streams} };
is $sum, $v1->{mod_sse_streams}, 'the child_streams series add up to mod_sse_streams';
is $v1->{mod_sse_streams_opened_total} - $v0->{mod_sse_streams_opened_total}, $n,
   "mod_sse_streams_opened_total grew by $n";

my $ok = 1;
for my $i (1 .. $m) {
    my($r, $j) = publish($chan, data => "metric $i");
    $ok = 0 if $r->code != 200 || check_pub($j, $chan, $n);
}
ok $ok, "$m events published to $n streams";
my(undef, $v2, $c2, $bad2) = scrape();
ok !@$bad2, 'still well-formed' or diag "@$bad2";
is $v2->{mod_sse_events_delivered_total} - $v1->{mod_sse_events_delivered_total},
   $n * $m, 'mod_sse_events_delivered_total grew by N*M = ' . $n * $m;
my(undef, $who) = admin_get($chan);
my %pids = map { $_->{pid} => 1 } @{ ref $who eq 'HASH' ? $who->{connections} : [] };
is $v2->{mod_sse_events_published_total} - $v1->{mod_sse_events_published_total},
   scalar(keys %pids) * $m,
   'mod_sse_events_published_total grew by M per child holding a stream';
is $v2->{mod_sse_history_events} - $v1->{mod_sse_history_events}, $m,
   "mod_sse_history_events grew by $m";
my @per = grep {
    my $name = $_;
    my $t = 0;
    $t += $_ for values %{ $c2->{"mod_sse_child_$name"} || {} };
    $t != $v2->{"mod_sse_$name"};
} qw(events_delivered_total events_published_total sent_bytes_total
     streams_opened_total streams_closed_total dropped_slow_total
     events_joined_total streams_refused_limit_total tls_direct_writes_total);
ok !@per, 'each per-child counter adds up to its total' or diag "@per";
my @fell = grep { $type->{$_} eq 'counter' && exists $v1->{$_}
                  && $v2->{$_} < $v1->{$_} } keys %$v2;
ok !@fell, 'no counter fell between two scrapes' or diag "@fell";

close_all(@s);
my $v3;
wait_until(5, sub {
    (undef, $v3) = scrape();
    ($v3->{mod_sse_streams} // -1) == $v0->{mod_sse_streams};
});
is $v3->{mod_sse_streams}, $v0->{mod_sse_streams}, 'the gauge falls back when they close';
is $v3->{mod_sse_streams_closed_total} - $v2->{mod_sse_streams_closed_total}, $n,
   "mod_sse_streams_closed_total grew by $n";

# losses: a resume the history cannot cover is counted once, one it
# covers is not
{
    my $lc = uniq_chan('mlost');
    my(@ids);
    for my $i (1 .. 7) {
        my(undef, $j) = publish($lc, data => "l$i", url => '/hpub');
        push @ids, $j->{id};
    }
    my(undef, $a) = scrape();
    my $s = open_stream("/stream?channel=$lc", headers => ['Last-Event-ID' => $ids[0]]);
    $s->wait_for(sub { $s->{buf} =~ /history lost/ }, 3);
    $s->disconnect;
    $s = open_stream("/stream?channel=$lc", headers => ['Last-Event-ID' => $ids[5]]);
    $s->next_event(3);
    $s->disconnect;
    my(undef, $b) = scrape();
    is $b->{mod_sse_resumes_history_lost_total} - $a->{mod_sse_resumes_history_lost_total}, 1,
       'mod_sse_resumes_history_lost_total: +1 for a resume past the history, +0 for one inside it';
    ok $b->{mod_sse_relay_starts_total} >= 1 && defined $b->{mod_sse_relay_upgrades_total},
       "mod_sse_relay_starts_total $b->{mod_sse_relay_starts_total}, upgrades $b->{mod_sse_relay_upgrades_total}";
    my $st = Apache::TestRequest::GET('/server-status?auto')->content;
    like $st, qr/^SSEResumesHistoryLost: $b->{mod_sse_resumes_history_lost_total}$/m,
         'server-status?auto says the same (SSEResumesHistoryLost)';
    like Apache::TestRequest::GET('/server-status')->content,
         qr/Losses: $b->{mod_sse_resumes_history_lost_total} resumes told the history was lost/,
         'and the status page (Losses)';
}

# methods
{
    my $r = Apache::TestRequest::POST('/metrics', content => 'x=1');
    is $r->code . ' ' . ($r->header('Allow') // '-'), '405 GET, HEAD',
       'POST: 405 with Allow: GET, HEAD';
    my $ua = Apache::TestRequest::user_agent();
    my $d = $ua->request(HTTP::Request->new(DELETE =>
                         Apache::TestRequest::resolve_url('/metrics')));
    is $d->code, 405, 'DELETE: 405';
    my $h = raw_http(HEAD => '/metrics');
    $h->wait_eof(3);
    ok $h->code == 200 && ($h->header('Content-Type') // '') =~ m{^text/plain}
       && $h->{buf} eq '', 'HEAD: 200, the headers only';
}

# a relay that does not answer (it is ours: this test runs as the httpd user)
{
    my($relay) = Apache::TestRequest::GET('/server-status?auto')->content
                 =~ /^SSERelayPid: (\d+)$/m;
    ok $relay && kill(0, $relay), "the relay's pid from ?auto: " . ($relay // 'none');
    SKIP: {
        skip 'no relay pid', 2 unless $relay;
        kill 'STOP', $relay;
        my($r, $v) = eval { scrape() };
        my $auto = eval { Apache::TestRequest::GET('/server-status?auto')->content } // '';
        kill 'CONT', $relay;
        ok $r && $r->code == 200 && ($v->{mod_sse_relay_up} // -1) == 0
           && $r->content !~ /^mod_sse_(?!relay_up)/m,
           'relay stopped: 200, mod_sse_relay_up 0 and no other series';
        like $auto, qr/^SSERelay: down$/m, 'relay stopped: ?auto says SSERelay: down';
    }
    wait_until(5, sub { (scrape())[1]{mod_sse_relay_up} });
}
