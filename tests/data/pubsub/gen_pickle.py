#!/usr/bin/python3
"""Regenerates the pickle vectors in this directory (kept for reference; the
tests read the committed files, never this script's output).

Run with Debian's python3 and python3-socketio 5.7.2:

    /usr/bin/python3 gen_pickle.py

Messages come from python-socketio's own RedisManager: its real _publish()
runs pickle.dumps(message) and hands the bytes to redis.publish(), which is
replaced here by a recorder (no Redis needed). Shapes that 5.7.2 cannot
produce (enter_room, leave_room, disconnect with host_id: python-socketio
5.10-5.13) are the dicts those versions build, pickled the way they do
(pickle.dumps, default protocol).

Writes <name>.pkl for each vector and pickle.txt, the manifest that
tests/adapter/test_pickle.c reads:

    ok|<name>|<expected JSON>|<tuple paths>|<attachments>
    bad|<name>|<substring of the rejection reason>

<expected JSON> is the message with tuples as arrays and each bytes value as
{"_placeholder":true,"num":N}, N counted in stream order; <tuple paths> the
comma-separated paths ("/data", "/callback", "/" for the root, "-" for none)
of the values that were tuples; <attachments> the attachments in hex,
comma-separated, or "-".
"""
import json
import os
import pickle
import sys
import types

import socketio
import socketio.redis_manager

HOST_ID = '5f3c9a7e1b2d4c6f8a9b0c1d2e3f4a5b'
SID1 = 'Xb1mfXyM5B9OWc2yAAAB'
SID2 = 'k2T0n4Zz8RrQWw9eAAAC'

published = []


class FakeRedis:
    def publish(self, channel, payload):
        assert channel == 'socketio'
        published.append(payload)

    def pubsub(self, **kwargs):
        return None


socketio.redis_manager.redis = types.SimpleNamespace(
    Redis=types.SimpleNamespace(from_url=lambda url, **kw: FakeRedis()))

mgr = socketio.RedisManager('redis://unused', write_only=True)
mgr.host_id = HOST_ID
sio = socketio.Server(client_manager=mgr)

here = os.path.dirname(os.path.abspath(__file__))
manifest = []


def expected(obj):
    """(JSON value, tuple paths, attachments) as the decoder must see obj."""
    bins, seen, tuples = [], {}, []

    def walk(v, path):
        if isinstance(v, (bytes, bytearray)):
            if id(v) not in seen:
                seen[id(v)] = len(bins)
                bins.append(bytes(v))
            return {'_placeholder': True, 'num': seen[id(v)]}
        if isinstance(v, tuple):
            tuples.append(path or '/')
            return [walk(x, f'{path}/{i}') for i, x in enumerate(v)]
        if isinstance(v, list):
            return [walk(x, f'{path}/{i}') for i, x in enumerate(v)]
        if isinstance(v, dict):
            return {k: walk(x, f'{path}/{k}') for k, x in v.items()}
        return v

    return walk(obj, ''), tuples, bins


def ok(name, payload, obj):
    with open(os.path.join(here, name + '.pkl'), 'wb') as f:
        f.write(payload)
    # the vector must be exactly what python reads back
    assert pickle.loads(payload) == obj, name
    value, tuples, bins = expected(obj)
    text = json.dumps(value, separators=(',', ':'), ensure_ascii=True)
    assert '|' not in text and '\n' not in text, name
    manifest.append('|'.join([
        'ok', name, text, ','.join(tuples) or '-',
        ','.join(b.hex() for b in bins) if bins else '-']))


def bad(name, payload, reason):
    with open(os.path.join(here, name + '.pkl'), 'wb') as f:
        f.write(payload)
    manifest.append('|'.join(['bad', name, reason]))


def last():
    payload = published.pop()
    assert not published
    return payload, pickle.loads(payload)


# ---- emits through the real manager (server.emit -> RedisManager.emit)
envelope = {'chat_id': 'c1', 'message_id': 'm1',
            'data': {'type': 'status', 'data': {'done': True, 'n': 3}}}
sio.emit('chat-events', envelope, to='user:42')
ok('emit_dict', *last())
raw_emit_dict = envelope

sio.emit('events', ('a', 1, 2.5, None, True, False), room='r1')
ok('emit_tuple', *last())

sio.emit('ev', [1, 2, 3])
ok('emit_list_one_arg', *last())

sio.emit('ping')
ok('emit_none', *last())

sio.emit('ev', 'x', room=['r1', 'r2'], skip_sid=[SID1, SID2])
ok('emit_rooms', *last())

sio.emit('ev', 'x', to='r1', skip_sid=SID1, namespace='/chat')
ok('emit_skip_sid', *last())

sio.emit('ask', {'q': 1}, to=SID1, callback=lambda *a: None)
ok('emit_callback', *last())

sio.emit('bin', b'\x00\x01\xff', to=SID1)
ok('emit_bytes', *last())

blob = b'shared blob'
sio.emit('bin', ({'file': b'abc', 'parts': [b'x', b'', b'y' * 300]},
                 'meta', blob, blob))
ok('emit_bytes_nested', *last())

sio.emit('text', ('h\u00e9llo \u2603 \U0001F600', 'x' * 300, '', 'a\x00b',
                  {'cl\u00e9': '\u00e9'}))
ok('emit_unicode', *last())

sio.emit('nums', (0, 1, 255, 256, 65535, 65536, -1, -129, 2**31 - 1, 2**31,
                  -2**31, -2**31 - 1, 2**63 - 1, -2**63, 1.5, -0.0, 1e300,
                  -2.5e-300))
ok('emit_numbers', *last())

shared = [1, 2]
sio.emit('shared', {'a': shared, 'b': shared, 'c': [shared, {'d': shared}]})
ok('emit_shared', *last())

sio.emit('empties', ((), [], {}, '', b'', ((),)))
ok('emit_empties', *last())

sio.emit('big', (list(range(2500)), {f'k{i}': i for i in range(1500)}))
ok('emit_batches', *last())

nest = 'leaf'
for i in range(30):
    nest = [nest] if i % 2 else {'n': nest}
sio.emit('deep', nest)
ok('emit_deep30', *last())

# ---- callback: the ack travelling back (_return_callback, as the partial
# set up by _handle_emit calls it with the client's answer)
mgr._return_callback(HOST_ID, SID1, '/', 7, 'ok', {'x': 1})
ok('callback', *last())
mgr._return_callback(HOST_ID, SID1, '/chat', 8)
ok('callback_noargs', *last())
mgr._return_callback(HOST_ID, SID1, '/', 9, b'\xde\xad\xbe\xef')
ok('callback_bytes', *last())

# ---- disconnect and close_room (5.7.2: no host_id)
sio.disconnect(SID2)
ok('disconnect', *last())
sio.close_room('room1', namespace='/chat')
ok('close_room', *last())

# ---- python-socketio 5.10-5.13 shapes (host_id on every message)
for name, msg in [
        ('enter_room', {'method': 'enter_room', 'sid': SID1, 'room': 'r9',
                        'namespace': '/', 'host_id': HOST_ID}),
        ('leave_room', {'method': 'leave_room', 'sid': SID1, 'room': 'r9',
                        'namespace': '/', 'host_id': HOST_ID}),
        ('disconnect_513', {'method': 'disconnect', 'sid': SID2,
                            'namespace': '/', 'host_id': HOST_ID}),
        ('close_room_513', {'method': 'close_room', 'room': 'room1',
                            'namespace': '/', 'host_id': HOST_ID})]:
    ok(name, pickle.dumps(msg), msg)

# ---- other protocols (pickle.dumps(..., protocol=N)): 2 and 3 use BINPUT
# instead of MEMOIZE and no FRAME; 5 writes bytearray as BYTEARRAY8.
sio.emit('chat-events', envelope, to='user:42')
_, msg = last()
for proto in (2, 3, 5):
    ok(f'emit_dict_p{proto}', pickle.dumps(msg, protocol=proto), msg)
msg5 = dict(msg, data=(bytearray(b'\x01\x02'), b'\x03'))
ok('emit_bytearray_p5', pickle.dumps(msg5, protocol=5), msg5)


# ---- hostile and unsupported pickles
class Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


evil_msg = {'method': 'emit', 'event': 'x', 'data': Evil(), 'namespace': '/',
            'room': None, 'skip_sid': None, 'callback': None,
            'host_id': HOST_ID}
bad('evil_os_system_p4', pickle.dumps(Evil(), protocol=4), 'STACK_GLOBAL')
bad('evil_os_system_p2', pickle.dumps(Evil(), protocol=2), 'GLOBAL')
bad('evil_os_system_p0', pickle.dumps(Evil(), protocol=0), 'protocol')
bad('evil_in_message', pickle.dumps(evil_msg), 'STACK_GLOBAL')
import datetime  # noqa: E402
bad('datetime', pickle.dumps({'t': datetime.datetime(2024, 1, 2)}),
    'STACK_GLOBAL')
bad('set', pickle.dumps({'s': {1, 2}}), 'EMPTY_SET')
bad('frozenset', pickle.dumps({'s': frozenset([1])}), 'FROZENSET')
bad('bytearray_p4', pickle.dumps(msg5, protocol=4), 'STACK_GLOBAL')
bad('bytes_p2', pickle.dumps({'b': b'x'}, protocol=2), 'GLOBAL')
bad('proto0', pickle.dumps(envelope, protocol=0), 'protocol')
bad('proto1', pickle.dumps(envelope, protocol=1), 'protocol')
bad('int_key', pickle.dumps({'data': {1: 'a'}}), 'key')
bad('bigint', pickle.dumps({'n': 2**64}), 'int64')
bad('bigint_neg', pickle.dumps({'n': -2**63 - 1}), 'int64')
bad('surrogate', pickle.dumps({'s': '\ud800'}), 'UTF-8')
bad('nan', pickle.dumps({'f': float('nan')}), 'finite')
rec = []
rec.append(rec)
bad('recursive_list', pickle.dumps(rec), 'cycle')
recd = {}
recd['self'] = recd
bad('recursive_dict', pickle.dumps(recd), 'cycle')
recl = {'l': []}
recl['l'].append(recl)
bad('recursive_indirect', pickle.dumps(recl), 'cycle')

with open(os.path.join(here, 'pickle.txt'), 'w') as f:
    f.write('# Generated by gen_pickle.py (python3-socketio 5.7.2, Python %s).\n'
            % sys.version.split()[0])
    f.write('# Format: see the docstring of gen_pickle.py.\n')
    f.write('\n'.join(manifest) + '\n')
print(f'{len(manifest)} vectors')
