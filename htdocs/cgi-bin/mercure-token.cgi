#!/usr/bin/perl
# The application's half of htdocs/mercure.html: a browser cannot sign a
# JWT, so the server mints one and hands it over as the cookie the Mercure
# hub reads (mercureAuthorization: HttpOnly, so no script can read it;
# SameSite=Strict and Path=/.well-known/mercure, so only this site's pages
# send it, and only to the hub).  A real application checks its user first
# (session, login) and puts only that user's topics in the claims; this
# demo gives a token to whoever asks.
#
# The token: HS256 over the hub's key (MERCURE_KEY, from the environment:
# PassEnv in conf/mercure-demo.conf), valid for 10 minutes, that may
# publish to and receive private updates of the demo's rooms.  Try:
#   curl -si -X POST http://localhost:8080/cgi-bin/mercure-token.cgi
use strict;
use warnings;
use Digest::SHA qw(hmac_sha256);
use JSON::PP;
use MIME::Base64 qw(encode_base64url);

my $TOPICS   = ['https://example.com/demo/{room}'];
my $LIFETIME = 600;

sub answer {
    my ($status, $headers, $body) = @_;
    print "Status: $status\r\n", map({ "$_\r\n" } @$headers),
          "Cache-Control: no-store\r\n\r\n", $body;
    exit 0;
}

# A token changes what the browser may do: not on a GET (a link, a
# prefetch), only on a POST from a page.
($ENV{REQUEST_METHOD} || '') eq 'POST'
    or answer('405 Method Not Allowed',
              ['Allow: POST', 'Content-Type: text/plain'], "POST only\n");
my $key = $ENV{MERCURE_KEY};
defined $key && length $key
    or answer('500 Internal Server Error', ['Content-Type: text/plain'],
              "MERCURE_KEY is not set in the server's environment\n");

my $json = JSON::PP->new->canonical;
my $exp  = time + $LIFETIME;
my $head = encode_base64url($json->encode({alg => 'HS256', typ => 'JWT'}));
my $body = encode_base64url($json->encode({
    exp     => $exp,
    mercure => {publish => $TOPICS, subscribe => $TOPICS},
}));
my $jwt = "$head.$body." . encode_base64url(hmac_sha256("$head.$body", $key));

my $secure = ($ENV{HTTPS} || '') eq 'on' ? '; Secure' : '';
answer('200 OK', [
    "Set-Cookie: mercureAuthorization=$jwt; Path=/.well-known/mercure; "
        . "Max-Age=$LIFETIME; HttpOnly; SameSite=Strict$secure",
    'Content-Type: application/json',
], $json->encode({expires => $exp, topics => $TOPICS}) . "\n");
