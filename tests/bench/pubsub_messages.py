#!/usr/bin/python3
"""Writes the pub/sub messages tests/bench/pubsub_receive feeds a fleet
adapter under callgrind: an Open WebUI "chat-events" emit whose data is
about SIZE bytes of JSON, to room "user:<uuid>" (a user with no tab on
the measured node), published by another node.

    /usr/bin/python3 pubsub_messages.py OUTDIR [SIZE [SHAPE]]

SIZE defaults to 4096. SHAPE "text" (the default): a streamed completion
chunk, one long string; "cjk": the same in Chinese, which json.dumps
(ensure_ascii) writes as nothing but \\u escapes; "rows": a list of small
objects (many values, the harder case for a reader that skips data
without building it).

OUTDIR/emit.pkl  what python-socketio 5.7.2 (Debian) publishes: its own
                 RedisManager.emit -> _publish -> pickle.dumps, with
                 redis.publish replaced by a recorder (no Redis needed);
OUTDIR/emit.json the same emit as python-socketio >= 5.15.1 publishes it
                 (json.dumps of the message; data wrapped in a list,
                 "binary": false);
OUTDIR/all.pkl, OUTDIR/all.json  the same emit to the whole namespace
                 (room None): every node decodes it.
"""
import json
import os
import pickle
import sys
import types

import socketio
import socketio.redis_manager

HOST_ID = '5f3c9a7e1b2d4c6f8a9b0c1d2e3f4a5b'
ROOM = 'user:8d1f3c2a-6b7e-4f90-a1c2-3d4e5f607182'

published = []


class FakeRedis:
    def publish(self, channel, payload):
        published.append(payload)

    def pubsub(self, **kwargs):
        return None


def rows(size):
    """A list of small objects whose JSON is about size bytes."""
    out = []
    while len(json.dumps(out)) < size:
        i = len(out)
        out.append({'id': i, 'name': f'model-{i}', 'active': i % 2 == 0,
                    'score': i / 8, 'tags': ['a', 'b']})
    return out[:-1] if len(out) > 1 else out


def envelope(size, line='Here is the answer, with "quotes", a \\ and an \u00e9.\n'):
    """A streamed completion chunk whose JSON is about size bytes."""
    env = {'chat_id': 'a3b2c1d0-1111-4222-8333-944455566677',
           'message_id': 'f0e1d2c3-aaaa-4bbb-8ccc-dddeeefff000',
           'data': {'type': 'chat:completion',
                    'data': {'id': 'chatcmpl-0123456789', 'done': False,
                             'content': '',
                             'usage': {'prompt_tokens': 812,
                                       'completion_tokens': 377},
                             'sources': []}}}
    base = len(json.dumps(env))
    text = (line * (size // len(line) + 1))
    env['data']['data']['content'] = text[:max(0, size - base)]
    while len(json.dumps(env)) > size:
        env['data']['data']['content'] = env['data']['data']['content'][:-1]
    return env


def main():
    out = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    socketio.redis_manager.redis = types.SimpleNamespace(
        Redis=types.SimpleNamespace(from_url=lambda url, **kw: FakeRedis()))
    mgr = socketio.RedisManager('redis://unused', write_only=True)
    mgr.host_id = HOST_ID
    sio = socketio.Server(client_manager=mgr)
    shape = sys.argv[3] if len(sys.argv) > 3 else 'text'
    data = (envelope(size) if shape == 'text'
            else envelope(size, '\u8fd9\u662f\u7b54\u6848\uff0c\u6a21\u578b\u9010\u5b57\u8f93\u51fa\u3002\n')
            if shape == 'cjk' else rows(size))
    os.makedirs(out, exist_ok=True)
    for name, room in (('emit', ROOM), ('all', None)):
        sio.emit('chat-events', data, to=room)
        payload = published.pop()
        assert pickle.loads(payload)['data'] == data
        with open(os.path.join(out, name + '.pkl'), 'wb') as f:
            f.write(payload)
        message = {'method': 'emit', 'event': 'chat-events', 'data': [data],
                   'binary': False, 'namespace': '/', 'room': room,
                   'skip_sid': None, 'callback': None, 'host_id': HOST_ID}
        with open(os.path.join(out, name + '.json'), 'w') as f:
            f.write(json.dumps(message))
        print(f'{out}/{name}.pkl {len(payload)} bytes, {out}/{name}.json '
              f'{len(json.dumps(message))} bytes, data {len(json.dumps(data))} '
              'bytes of JSON')


main()
