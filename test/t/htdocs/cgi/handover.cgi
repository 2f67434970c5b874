#!/usr/bin/perl
# A stand-in application for t/15_handover.t: it decides, per request,
# whether the response becomes an event stream and on which channel.
use strict;
use warnings;
my %q = map { my($k, $v) = split /=/, $_, 2; ($k => $v // '') }
        split /&/, ($ENV{QUERY_STRING} // '');
my($session) = ($ENV{HTTP_COOKIE} // '') =~ /session=(\w+)/;
if ($q{refuse}) {
    print "Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nnot for you\n";
    exit;
}
my $chan = $session ? "user-$session" : $q{channel};
print "Content-Type: text/event-stream\r\n",
      "X-SSE-Channel: $chan\r\n",
      "X-App: yes\r\n\r\n",
      ": hello from the app\n\n";
