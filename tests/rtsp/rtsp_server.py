#!/usr/bin/python3
"""RTSP test server for rawflow's live-source tests (run with Debian's /usr/bin/python3, which has
python3-gi and GstRtspServer).

    rtsp_server.py PORT [--audio aac|pcmu|opus|none] [--size WxH] [--fps N] [--mount /live]
                   [--file MEDIA]

Serves H.264 video (videotestsrc, x264enc tune=zerolatency, one keyframe a second, SPS/PPS with
every keyframe) and a 440 Hz test tone on rtsp://127.0.0.1:PORT/MOUNT, over TCP or UDP as the client
asks. With --file, the picture and sound of MEDIA instead (any file GStreamer decodes, played in
real time from its start for each client, video re-encoded to H.264 and audio to --audio at
48 kHz); the session ends with the file. PORT 0 picks a free port. Prints one line "READY <port> <url>" on stdout once it listens; a
test reads it instead of sleeping. Each client gets its own pipeline (not shared), so every session
starts with a keyframe. It exits by itself when the process that started it dies.

Faults a test can inject, by signal:

- SIGKILL, then a new server on the same port: the camera is gone, then back.
- SIGSTOP / SIGCONT: the whole server freezes (no RTSP answers, no RTCP, no media), then resumes.
- SIGUSR1 / SIGUSR2: the feeder stalls / resumes. The server process, its RTSP sessions and their
  RTCP stay up, but the sources' buffers are dropped (a `valve` right after each live source), so
  no RTP media packet leaves. Every session is stalled, also one that starts while stalled (its
  DESCRIBE waits for media, as a camera with a stuck encoder would). The live sources keep their
  clock, so after SIGUSR2 the media timestamps jump by the length of the stall. Each change is
  acknowledged with one line on stdout: "STALLED <n>" / "RESUMED <n>" (n = sessions' pipelines
  affected), so a test knows when it took effect.
"""
import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

AUDIO = {
    "aac": "audioconvert ! avenc_aac bitrate=64000 ! rtpmp4gpay name=pay1 pt=97",
    "pcmu": "audioresample ! audio/x-raw,rate=8000 ! audioconvert ! mulawenc ! rtppcmupay name=pay1 pt=0",
    "opus": "audioconvert ! opusenc ! rtpopuspay name=pay1 pt=97",
}

# Sticky events (caps, segment) still pass a closed valve, so the encoders and payloaders of a
# session created while stalled are configured and start at once on resume.
VALVE = "valve drop=false drop-mode=forward-sticky-events"
FEEDS = ("feed0", "feed1")


def file_launch_line(args):
    uri = "file://" + os.path.abspath(args.file)
    video = (f"d. ! queue ! videoconvert ! {VALVE} name={FEEDS[0]} ! x264enc tune=zerolatency speed-preset=ultrafast "
             f"key-int-max={args.fps} ! rtph264pay name=pay0 pt=96 config-interval=1")
    audio = (f"d. ! queue ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! {VALVE} name={FEEDS[1]} ! "
             + AUDIO[args.audio])
    return f"( uridecodebin uri={uri} name=d {video} {audio} )"


def launch_line(args):
    if args.file:
        return file_launch_line(args)
    w, h = args.size.split("x")
    video = (
        f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate={args.fps}/1 "
        f"! {VALVE} name={FEEDS[0]} "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} "
        f"! rtph264pay name=pay0 pt=96 config-interval=1"
    )
    if args.audio == "none":
        return f"( {video} )"
    audio = (
        "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audio/x-raw,rate=48000,channels=2 ! "
        f"{VALVE} name={FEEDS[1]} ! " + AUDIO[args.audio]
    )
    return f"( {video} {audio} )"


class Feeder:
    """The stall switch: every media pipeline's valves follow it."""

    def __init__(self):
        self.stalled = False
        self.media = []  # live GstRTSPMedia objects

    def _valves(self, media):
        bin_ = media.get_element()
        return [v for v in (bin_.get_by_name(n) for n in FEEDS) if v is not None]

    def configure(self, _factory, media):
        self.media.append(media)
        media.connect("unprepared", self._forget)
        for v in self._valves(media):
            v.set_property("drop", self.stalled)

    def _forget(self, media):
        if media in self.media:
            self.media.remove(media)

    def set_stalled(self, stalled):
        self.stalled = stalled
        for m in self.media:
            for v in self._valves(m):
                v.set_property("drop", stalled)
        print(f"{'STALLED' if stalled else 'RESUMED'} {len(self.media)}", flush=True)
        return GLib.SOURCE_CONTINUE


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--audio", choices=["aac", "pcmu", "opus", "none"], default="aac")
    p.add_argument("--size", default="320x240")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--mount", default="/live")
    p.add_argument("--file", help="serve this media file's picture and sound instead of test sources")
    args = p.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args))
    factory.set_shared(False)
    feeder = Feeder()
    factory.connect("media-configure", feeder.configure)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    # Handled in the main loop (not in a Python signal handler) so the valves are switched from the
    # thread that owns the server's objects.
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR1, feeder.set_stalled, True)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR2, feeder.set_stalled, False)
    port = server.get_bound_port()
    print(f"READY {port} rtsp://127.0.0.1:{port}{args.mount}", flush=True)
    loop = GLib.MainLoop()

    # A test killed before it could stop its server must not leave the server running: exit once
    # the parent process is gone (we are then re-parented).
    parent = os.getppid()

    def parent_alive():
        if os.getppid() != parent:
            loop.quit()
            return False
        return True

    GLib.timeout_add(250, parent_alive)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
