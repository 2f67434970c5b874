#!/usr/bin/env python3
"""Writes the seed corpus of the frame fuzz target (test/fuzz/corpus/frame/).

Relay frames are binary (sse_proto.h: u32 type, seq, payload length in native byte
order, then length-prefixed NUL-terminated strings and u32s), so the seeds are made
here rather than by hand. Each file is one chunk-size byte, then the stream. Run it
again after the frame layout changes: python3 test/fuzz/frame_seeds.py
"""
import os
import struct

(HELLO, PUBLISH, LIST, CONNS, CLOSE, REPLY, RESULT, REPLAY, REPLAYED, CHECK, STATS, COUNT,
 EVENT, SYNC, SYNCED, CATCHUP, AFTER, REFUSED) = range(1, 19)
MAX_FRAME = 16 * 1024 * 1024


def frame(t, seq, payload):
    return struct.pack('=III', t, seq, len(payload)) + payload


def s(b):
    return struct.pack('=I', len(b)) + b + b'\0'


def u(v):
    return struct.pack('=I', v)


F = {
    'hello': frame(HELLO, 0, u(1234)),
    'publish-request': frame(PUBLISH, 1, s(b'news') + s(b'') + s(b'update') + s(b'1000')
                             + s(b'line1\nline2') + u(100) + u(3600)),
    'publish-request-id': frame(PUBLISH, 2, s(b'a') + s(b'42') + s(b'') + s(b'') + s(b'')
                                + u(0) + u(0)),
    'publish-broker': frame(PUBLISH, 3, s(b'news') + s(b'id: 1\ndata: x\n\n')),
    'conns': frame(CONNS, 4, s(b'news')),
    'close': frame(CLOSE, 5, s(b'news')),
    'list': frame(LIST, 6, b''),
    'reply': frame(REPLY, 7, s(b'3')),
    'result': frame(RESULT, 8, s(b'17') + u(2) + s(b'1') + s(b'0')),
    'result-short': frame(RESULT, 8, s(b'17') + u(5) + s(b'1')),
    'replay': frame(REPLAY, 9, s(b'41') + u(2) + s(b'news') + s(b'sports')),
    'check': frame(CHECK, 0, s(b'evt-7') + u(1) + s(b'news')),
    'replayed': frame(REPLAYED, 9, u(0) + s(b'id: 42\ndata: x\n\nid: 43\ndata: y\n\n')),
    'catchup': frame(CATCHUP, 10, struct.pack('=Q', 1796450000000000) + u(2) + s(b'news')
                     + s(b'sports')),
    'after': frame(AFTER, 11, struct.pack('=Q', 1000042) + u(1) + s(b'news')),
    'refused': frame(REFUSED, 12, s(b'not published: Redis is not reachable (see the error log)')),
    'str-no-nul': frame(REPLY, 9, u(3) + b'abcd'),
    'str-len-huge': frame(REPLY, 9, u(0xffffffff) + b'ab\0'),
    'oversized': struct.pack('=III', PUBLISH, 1, MAX_FRAME + 1) + b'xx',
    'truncated': frame(CONNS, 4, s(b'news'))[:-3],
}


def event(chan, data, seq):
    return frame(EVENT, seq & 0xffff, s(chan) + s(b'id: %d\ndata: ' % seq + data + b'\n\n')
                 + u(seq >> 32) + u(seq & 0xffffffff))


# what a broker reads: runs of EVENTs on one channel (a SYNC between two of
# them is part of the run), broken by another channel, a SYNC before
# another channel, and a frame not all there yet
F['event-runs'] = (event(b'news', b'a', 1) + event(b'news', b'b', 2) + event(b'news', b'c', 3)
                   + event(b'sport', b'd', 4) + event(b'news', b'e', 5)
                   + frame(SYNC, 0, u(0) + u(5)) + event(b'news', b'f', 1 << 33)
                   + event(b'news', b'g', (1 << 33) + 1)[:-4])
F['event-runs-sync'] = (event(b'a', b'1', 1) + frame(SYNC, 0, u(0) + u(1))
                        + frame(SYNC, 0, u(0) + u(2)) + event(b'a', b'2', 2)
                        + frame(SYNC, 0, u(0) + u(3)) + event(b'b', b'3', 3)
                        + frame(SYNC, 0, u(0)) + event(b'b', b'4', 4))
STREAM = F['hello'] + F['publish-broker'] + F['list'] + F['result'] + F['replayed']

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'frame')
os.makedirs(out, exist_ok=True)
seeds = {name: b'\0' + b for name, b in F.items()}
seeds['stream-chunk7'] = b'\x07' + STREAM
seeds['stream-chunk1'] = b'\x01' + F['hello'] + F['reply']
seeds['event-runs-chunk9'] = b'\x09' + F['event-runs']
seeds['stream-then-oversized'] = b'\x20' + STREAM + F['oversized']
for name, b in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(b)
