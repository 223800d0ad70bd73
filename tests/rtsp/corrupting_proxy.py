#!/usr/bin/python3
"""A TCP proxy for RTSP over TCP (interleaved RTP) that corrupts media on demand: the network
fault "a burst of corrupt packets" between a camera and rawflow.

    corrupting_proxy.py LISTEN_PORT TARGET_PORT [--burst-s 1.0] [--seed 1]

Forwards every connection to 127.0.0.1:TARGET_PORT unchanged, parsing the server's byte stream
into RTSP messages and `$`-framed interleaved packets (RFC 2326 §10.12). On SIGUSR1, for the next
--burst-s seconds, every RTP packet keeps its framing and its RTP header but gets a third of its
payload bytes replaced by random ones: the depayloaders and decoders downstream see damaged
H.264/AAC, the RTSP session itself stays intact. Prints "READY <port>" once it listens and
"CORRUPTING <n>" / "CLEAN <n>" (n = packets damaged in the burst) when a burst starts and ends.
"""

import argparse
import random
import selectors
import signal
import socket
import sys
import time


class Damage:
    """When the current burst ends, and the packets damaged in it."""

    def __init__(self, burst_s, seed):
        self.burst_s = burst_s
        self.until = 0.0
        self.count = 0
        self.rng = random.Random(seed)

    def start(self, *_):
        self.until = time.monotonic() + self.burst_s
        self.count = 0
        print("CORRUPTING", self.count, flush=True)

    def active(self):
        if self.until and time.monotonic() >= self.until:
            self.until = 0.0
            print("CLEAN", self.count, flush=True)
        return self.until > 0.0

    def rtp(self, packet):
        """The packet with a third of its payload randomised (header and CSRCs kept)."""
        if len(packet) < 12:
            return packet
        header = 12 + 4 * (packet[0] & 0x0F)
        body = bytearray(packet)
        for i in range(header, len(body)):
            if self.rng.random() < 1 / 3:
                body[i] = self.rng.randrange(256)
        self.count += 1
        return bytes(body)


class ServerStream:
    """Splits the server-to-client bytes into RTSP messages and interleaved frames."""

    def __init__(self, damage):
        self.damage = damage
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while self.buf:
            if self.buf[0] == 0x24:  # '$' channel u8, length u16, packet
                if len(self.buf) < 4:
                    break
                n = int.from_bytes(self.buf[2:4], "big")
                if len(self.buf) < 4 + n:
                    break
                packet = self.buf[4:4 + n]
                channel = self.buf[1]
                # Even channels carry RTP, odd ones RTCP (the SETUP's interleaved=0-1, 2-3).
                if channel % 2 == 0 and self.damage.active():
                    packet = self.damage.rtp(packet)
                out.append(self.buf[:4] + packet)
                self.buf = self.buf[4 + n:]
            else:  # an RTSP response: headers, then Content-Length bytes of body
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                length = 0
                for line in self.buf[:end].split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                total = end + 4 + length
                if len(self.buf) < total:
                    break
                out.append(self.buf[:total])
                self.buf = self.buf[total:]
        return b"".join(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("listen_port", type=int)
    p.add_argument("target_port", type=int)
    p.add_argument("--burst-s", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    damage = Damage(args.burst_s, args.seed)
    signal.signal(signal.SIGUSR1, damage.start)

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.listen_port))
    listener.listen()
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    print("READY", listener.getsockname()[1], flush=True)

    peers = {}  # socket -> (its peer, ServerStream or None for the client side)
    while True:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            if s is listener:
                client, _ = listener.accept()
                server = socket.create_connection(("127.0.0.1", args.target_port))
                peers[client] = (server, None)
                peers[server] = (client, ServerStream(damage))
                sel.register(client, selectors.EVENT_READ, None)
                sel.register(server, selectors.EVENT_READ, None)
                continue
            other, stream = peers[s]
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                for x in (s, other):
                    sel.unregister(x)
                    peers.pop(x, None)
                    x.close()
                continue
            try:
                other.sendall(stream.feed(data) if stream else data)
            except OSError:
                pass  # the other side closed; its own read ends the pair
        damage.active()  # ends a burst on time even when no packet arrives


if __name__ == "__main__":
    sys.exit(main())
