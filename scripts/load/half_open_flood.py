#!/usr/bin/env python3
"""Half-open flood against an engine, with probes timed throughout.

Opens CONNECTIONS connections to HOST:PORT at RATE per second; each sends the start of a request
(`GET /api/orders HTTP/1.1` and one header) and never finishes it. Meanwhile /health and /ready
are requested every 20 ms on fresh connections, as a kubelet does, with a 2 s timeout. The flood
is held for HOLD seconds after its last connection opens. Prints the probes' latency
percentiles, how many failed (no answer in 2 s, or not 200), and how many flood connections the
server had closed by the end. Standard library only.

Usage: half_open_flood.py HOST PORT CONNECTIONS RATE HOLD
"""
import socket
import sys
import threading
import time


def probe(host, port, path):
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: probe\r\n\r\n".encode())
            head = s.recv(12)
            ok = head.startswith(b"HTTP/1.") and head[9:12] == b"200"
    except OSError:
        ok = False
    return ok, time.monotonic() - start


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    total, rate, hold = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    results = []
    done = threading.Event()

    def prober():
        while not done.is_set():
            for path in ("/health", "/ready"):
                results.append(probe(host, port, path))
            time.sleep(0.02)

    thread = threading.Thread(target=prober)
    thread.start()
    flood, refused = [], 0
    started = time.monotonic()
    for i in range(total):
        try:
            s = socket.create_connection((host, port), timeout=2)
            s.sendall(b"GET /api/orders HTTP/1.1\r\nHost: flood\r\n")
            flood.append(s)
        except OSError:
            refused += 1
        behind = started + (i + 1) / rate - time.monotonic()
        if behind > 0:
            time.sleep(behind)
    opened_in = time.monotonic() - started
    time.sleep(hold)
    closed = 0
    for s in flood:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    done.set()
    thread.join()
    times = sorted(t for _, t in results)
    failed = sum(1 for ok, _ in results if not ok)

    def pct(q):
        return times[min(len(times) - 1, int(round(q * (len(times) - 1))))] * 1000

    print(f"flood: {len(flood)} opened in {opened_in:.1f} s ({refused} refused at connect), "
          f"{closed} closed by the server {hold:.0f} s after the last")
    print(f"probes: {len(results)}, failed {failed}, p50 {pct(0.5):.1f} ms, "
          f"p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms")
    for s in flood:
        s.close()


if __name__ == "__main__":
    main()
