"""Plays an HLS playlist in headless Chromium through hls.js and prints what
happened as one JSON object on stdout.

The page (player.html with hls.min.js beside it, in --page-dir) is served
by a small HTTP server of this script's own on a loopback port (--page-port,
or any free one): a page origin of its own, as a player's page has, which
the servers of the playlist and the segments must allow by CORS unless
--disable-web-security is given. Chromium is Debian's, driven by
Playwright for Python; Playwright's own browser builds are not used.

Output: {"ended", "current_time", "duration", "fragments", "start_gap",
"errors", "stalls", "timed_out", "console"}; `errors` holds what the page
recorded (hls.js ERROR events, video element errors, uncaught exceptions),
`stalls` the hls.js stalls with the media ahead buffered, and `console` the
page's console lines, for a failure message.
"""

import argparse
import functools
import http.server
import json
import sys
import threading
import urllib.parse

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def serve(directory, port):
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--page-dir", required=True)
    parser.add_argument("--playlist", required=True)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--deadline", type=float, required=True, help="seconds")
    parser.add_argument("--disable-web-security", action="store_true")
    parser.add_argument(
        "--page-port",
        type=int,
        default=0,
        help="port of the page's origin, http://127.0.0.1:PORT (default: any free one)",
    )
    args = parser.parse_args()

    server = serve(args.page_dir, args.page_port)
    page_url = "http://127.0.0.1:%d/player.html?%s" % (
        server.server_address[1],
        urllib.parse.urlencode({"src": args.playlist, "rate": args.rate}),
    )
    chromium_args = ["--autoplay-policy=no-user-gesture-required"]
    if args.disable_web_security:
        chromium_args.append("--disable-web-security")

    console = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, headless=True, args=chromium_args
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: console.append("%s: %s" % (m.type, m.text)))
            page.on("pageerror", lambda e: console.append("page error: %s" % e))
            page.goto(page_url)
            timed_out = False
            try:
                page.wait_for_function(
                    "() => window.play && (window.play.ended || window.play.fatal)",
                    timeout=args.deadline * 1000,
                    polling=100,
                )
            except PlaywrightTimeout:
                timed_out = True
            state = page.evaluate(
                """() => {
                    const video = document.getElementById('video');
                    return {
                        ended: window.play.ended,
                        current_time: video.currentTime,
                        duration: Number.isFinite(video.duration) ? video.duration : null,
                        fragments: window.play.fragments,
                        start_gap: window.play.startGap,
                        errors: window.play.errors,
                        stalls: window.play.stalls,
                    };
                }"""
            )
        finally:
            browser.close()
    server.shutdown()
    state["timed_out"] = timed_out
    state["console"] = console
    json.dump(state, sys.stdout)
    print()


if __name__ == "__main__":
    main()
