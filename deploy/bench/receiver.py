#!/usr/bin/env python3
"""A webhook receiver for `just bench-fanout`: answers 200 to every POST, verifies nothing,
and records when each delivery arrived against the event's `created_at` (the publish
time). Prints deliveries per second and end-to-end lag once EXPECTED deliveries arrived.

Usage: receiver.py PORT EXPECTED RESULT_FILE
"""
import json
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, expected, result_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
lags, seen_ids, first, last = [], set(), None, None
duplicates = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global first, last, duplicates
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        now = time.time()
        event = json.loads(body)
        created = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00")).timestamp()
        with lock:
            delivery = self.headers.get("keel-delivery-id")
            if delivery in seen_ids:
                duplicates += 1
            else:
                seen_ids.add(delivery)
                lags.append(now - created)
                first = first or now
                last = now
            done = len(seen_ids) >= expected
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
        if done:
            threading.Thread(target=finish, daemon=True).start()

    def log_message(self, *args):
        pass


def finish():
    with lock:
        ordered = sorted(lags)
        n = len(ordered)
        span = (last - first) if n > 1 else 0
        result = {
            "deliveries": n,
            "duplicates": duplicates,
            "seconds": round(span, 3),
            "per_second": round(n / span, 1) if span else None,
            "lag_p50_ms": round(ordered[n // 2] * 1000, 1),
            "lag_p99_ms": round(ordered[min(n - 1, int(n * 0.99))] * 1000, 1),
            "lag_max_ms": round(ordered[-1] * 1000, 1),
        }
    with open(result_file, "w") as f:
        json.dump(result, f)
    server.shutdown()


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
server.serve_forever()
