#!/usr/bin/env python3
"""Writes the seed corpus of the token fuzz target (test/fuzz/corpus/token/).

Each file is one mode byte, then the input (see fuzz_token.c): '0' and '1' a token
(for '0', good ones are signed here with the target's HS256 secret; the RS256 key is
made when the target starts, so '1' seeds have the shape but not the signature), '2'
and '3' header JSON, a newline, claims JSON, which the target signs itself.
Run it again after changing them: python3 test/fuzz/token_seeds.py
"""
import base64
import hashlib
import hmac
import json
import os

SECRET = b'fuzz-secret'
NOW = 1700000000


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b'=')


def js(o):
    return json.dumps(o, separators=(',', ':')).encode()


def hs256(head, claims, secret=SECRET):
    signing = b64(head) + b'.' + b64(claims)
    return signing + b'.' + b64(hmac.new(secret, signing, hashlib.sha256).digest())


HEAD = js({'alg': 'HS256', 'typ': 'JWT'})
FULL = js({'mercure': {'publish': ['*'], 'subscribe': ['https://example.com/books/{id}', 'urn:x'],
                       'payload': {'user': 1}}, 'exp': NOW + 3600, 'nbf': NOW - 10})
S = {
    'hs-good': b'0' + hs256(HEAD, FULL),
    'hs-empty-claims': b'0' + hs256(HEAD, b'{}'),
    'hs-expired': b'0' + hs256(HEAD, js({'exp': NOW - 1})),
    'hs-wrong-secret': b'0' + hs256(HEAD, FULL, b'other'),
    'hs-none': b'0' + b64(js({'alg': 'none', 'typ': 'JWT'})) + b'.' + b64(FULL) + b'.',
    'hs-two-parts': b'0' + b64(HEAD) + b'.' + b64(FULL),
    'rs-shape': b'1' + b64(js({'alg': 'RS256', 'typ': 'JWT'})) + b'.' + b64(FULL) + b'.' + b64(bytes(256)),
    'rs-hs-token': b'1' + hs256(HEAD, FULL),
    'signed-good': b'2' + HEAD + b'\n' + FULL,
    'signed-lowercase-alg': b'2' + js({'alg': 'hs256'}) + b'\n' + FULL,
    'signed-dup-alg': b'2' + b'{"alg":"none","alg":"HS256"}\n' + FULL,
    'signed-crit': b'2' + js({'alg': 'HS256', 'crit': ['x']}) + b'\n{}',
    'signed-real-dates': b'2' + HEAD + b'\n' + js({'exp': NOW + 0.5, 'nbf': NOW - 0.5}),
    'signed-bad-mercure': b'2' + HEAD + b'\n' + js({'mercure': {'publish': ['*', 1, ''], 'subscribe': '*'}}),
    'signed-array-claims': b'2' + HEAD + b'\n[1,2]',
    'signed-nul': b'2' + HEAD + b'\n{"mercure":{"subscribe":["a\\u0000b"]}}',
    'confusion': b'3' + HEAD + b'\n' + FULL,
}

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'token')
os.makedirs(d, exist_ok=True)
for name, data in S.items():
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)
