#!/usr/bin/env python3
"""Print rawflow results published over ZeroMQ (docs/results.md).

    /usr/bin/python3 examples/subscriber.py --endpoint tcp://127.0.0.1:5556 --topic lobby/

Each message is two frames: the topic ("<stream>/<task>" by default) and one JSON object.
Subscriptions match topic prefixes: "lobby/" is every task of stream lobby, "" is everything.
Needs python3-zmq (Debian's /usr/bin/python3 has it).

When rawflow's output uses CURVE (outputs.zmq.curve), give the publisher's public key and this
subscriber's secret key, whose public key must be in the publisher's allowed_clients_file:

    rawflow keygen viewer        # viewer.key, viewer.pub: add viewer.pub's key to the list
    /usr/bin/python3 examples/subscriber.py --endpoint tcp://cam-box:5556 \
        --server-key rawflow.pub --client-key viewer.key
"""
import argparse
import json
import sys

import zmq

SCHEMA_VERSION = 1  # the schema this script was written for


def describe(topic, event):
    """One readable line per event."""
    kind = event.get("kind")
    span = "%.1f\u2013%.1fs" % (event.get("media_start", 0.0), event.get("media_end", 0.0))
    if event.get("media_start_utc"):  # live streams: when that media arrived (UTC)
        span += " @ %s" % event["media_start_utc"][11:19]
    if kind == "final":
        return "%s [%s] %s" % (topic, span, event.get("text", ""))
    if kind == "partial":
        return "%s [%s partial] %s" % (topic, span, event.get("text", ""))
    if kind == "gap":
        return "%s [gap %s]" % (topic, span)
    if kind == "error":
        return "%s [error] %s" % (topic, event.get("error", ""))
    if kind == "stats":
        return "%s [stats] %s" % (topic, json.dumps(event.get("stats", {})))
    # A newer publisher may add kinds: show them rather than fail (docs/results.md, compatibility).
    return "%s [%s] %s" % (topic, kind, event.get("text", ""))


def read_key(path):
    """The Z85 key in a file of `rawflow keygen`: its first line that is not a # comment."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                return line.encode()
    sys.exit("%s: no key in it" % path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5556",
                        help="where rawflow publishes (default: %(default)s)")
    parser.add_argument("--topic", action="append",
                        help="topic prefix to subscribe to; repeatable (default: everything)")
    parser.add_argument("--finals-only", action="store_true", help="skip partial results")
    parser.add_argument("--json", action="store_true", help="print the JSON objects as received")
    parser.add_argument("--count", type=int, default=0,
                        help="exit after printing this many events (default: run until Ctrl-C)")
    parser.add_argument("--server-key", help="CURVE: file of the publisher's public key")
    parser.add_argument("--client-key", help="CURVE: file of this subscriber's secret key")
    args = parser.parse_args()
    if bool(args.server_key) != bool(args.client_key):
        parser.error("CURVE needs both --server-key and --client-key")

    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    if args.server_key:
        secret = read_key(args.client_key)
        socket.curve_serverkey = read_key(args.server_key)
        socket.curve_secretkey = secret
        socket.curve_publickey = zmq.curve_public(secret)
    socket.connect(args.endpoint)
    for prefix in args.topic or [""]:
        socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    printed = 0
    warned = False
    try:
        while args.count <= 0 or printed < args.count:
            frames = socket.recv_multipart()
            if len(frames) != 2:
                print("ignoring a message of %d frames" % len(frames), file=sys.stderr)
                continue
            topic = frames[0].decode("utf-8", "replace")
            event = json.loads(frames[1])
            if event.get("schema", 0) > SCHEMA_VERSION and not warned:
                print("note: schema %s is newer than %d; unknown fields are ignored"
                      % (event["schema"], SCHEMA_VERSION), file=sys.stderr)
                warned = True
            if args.finals_only and event.get("kind") == "partial":
                continue
            print(frames[1].decode() if args.json else describe(topic, event), flush=True)
            printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        socket.close()
        context.term()


if __name__ == "__main__":
    main()
