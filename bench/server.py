"""Benchmark the model server: overhead, latency, throughput, reliability and memory.

Starts the real server (``python -m model_server``, 2 workers by default) on a
free port and drives it with BUSI images from ``../shared/busi`` (or
``SONOTRACE_BUSI_DIR``). In the same run it times the bare
``models.runtime.Runtime.predict_mask`` in this process (the model call behind
/predict: the networks, the outline's post-processing and, since 2026-12-01.8,
the outline refiner), with the same number of inference threads as one worker,
so the overhead ratio compares like with like.

Figures printed:

* overhead: /predict p50 at concurrency 1 divided by the bare predict_mask p50
  (target <= 1.2); the two are measured interleaved, image by image, so both
  see the same background load;
* p50/p95 of /predict and /classify at concurrency 1 and 4, and the
  throughput ratio c4/c1 (target >= 1.6 with 2 workers);
* reliability: requests at concurrency 4 with 10% bad inputs mixed in
  (default 400, ``--full`` for 2,000): no 5xx, every bad input the expected
  JSON 4xx, every good request answered with exactly the reference answer
  for its image (mask and probabilities from the concurrency-1 calls);
* worker resident memory after warm-up and after the reliability run
  (target growth < 10%).

The runtime caches its last 8 results; requests cycle through many distinct
images so that no figure comes from that cache.

The timed requests are sent with the standard library's ``http.client``, one
connection per request (the sync workers close it anyway), with the
multipart body encoded inside the timed span. ``requests`` spends another 2-3
ms of its own per call on this machine (environment proxy lookups, adapters),
which says nothing about the server; it is timed too, at the end, against a
server of one worker (both calls of a pair must be answered from the same
worker's cache: with two, one call of a pair could land on the worker that
has not seen the image and run the networks), and that ratio is printed
beside the headline one.

Usage: ``python bench/server.py [--full] [--workers 2] [--images 40] [--json out.json]``
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import requests
from PIL import Image
from urllib3.filepost import encode_multipart_formdata

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------- helpers


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def busi_dir() -> Path:
    configured = os.environ.get("SONOTRACE_BUSI_DIR")
    path = Path(configured) if configured else REPO.parent / "shared" / "busi"
    if not (path / "benign").is_dir():
        sys.exit(f"BUSI not found at {path}; set SONOTRACE_BUSI_DIR")
    return path


def pick_images(root: Path, count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``count`` distinct BUSI images (no masks), from all three classes."""
    paths = sorted(p for p in root.glob("*/*.png") if "_mask" not in p.name)
    random.Random(seed).shuffle(paths)
    return [(p.stem, p.read_bytes()) for p in paths[:count]]


def rss_bytes(pid: int) -> int:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes so far (0 for any that has gone)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def worker_pids(master: int) -> list[int]:
    try:
        import psutil

        return sorted(child.pid for child in psutil.Process(master).children())
    except ImportError:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True
        )
        return sorted(int(p) for p in out.stdout.split())


def huge_png(width: int = 20000, height: int = 20000) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- server


class Server:
    def __init__(self, workers: int, threads: int, model_threads: int, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONUNBUFFERED="1", SONOTRACE_LOG_LEVEL="warning")
        env["SONOTRACE_NUM_THREADS"] = str(model_threads)
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "model_server", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers), "--threads", str(threads)],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 300.0) -> float:
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if self.process.poll() is not None:
                sys.exit(f"server exited with {self.process.returncode}; see {self.log.name}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return time.perf_counter() - start
            except requests.RequestException:
                pass
            time.sleep(0.2)
        sys.exit("server did not become healthy")

    def workers(self) -> list[int]:
        return worker_pids(self.process.pid)

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


# --------------------------------------------------------------------------- requests


def post(session: requests.Session, url: str, endpoint: str, name: str, data: bytes,
         query: str = "") -> tuple[float, requests.Response]:
    start = time.perf_counter()
    response = session.post(
        f"{url}{endpoint}{query}", files={"image": (f"{name}.png", data, "image/png")},
        timeout=120,
    )
    return time.perf_counter() - start, response


class Reply:
    """Status, headers and body of a :func:`post_lean` call."""

    def __init__(self, status: int, headers: dict, body: bytes):
        self.status_code, self.headers, self.content = status, headers, body

    def json(self):
        return json.loads(self.content)


def post_lean(url: str, endpoint: str, name: str, data: bytes,
              query: str = "") -> tuple[float, Reply]:
    """POST ``data`` as multipart field ``image`` with ``http.client``; return the
    seconds from encoding the body to reading the whole answer, and the answer."""
    start = time.perf_counter()
    body, content_type = encode_multipart_formdata({"image": (f"{name}.png", data, "image/png")})
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
    try:
        # A bytes body goes out in the same send as the headers.
        connection.request("POST", f"{endpoint}{query}", body=body,
                           headers={"Content-Type": content_type})
        answer = connection.getresponse()
        reply = Reply(answer.status, dict(answer.getheaders()), answer.read())
    finally:
        connection.close()
    return time.perf_counter() - start, reply


def requests_extra_ms(url: str, images: list, rounds: int) -> float:
    """Median milliseconds ``requests`` adds to a /predict over ``http.client``.

    ``url`` is a server of one worker: each image is sent once, then through
    ``requests`` and ``http.client``, so that both timed calls are answered from
    that worker's cache and only the clients' costs differ.
    """
    session = requests.Session()
    extra = []
    for _ in range(rounds):
        for name, data in images:
            post_lean(url, "/predict", name, data)  # into the worker's cache
            with_requests, first = post(session, url, "/predict", name, data)
            with_lean, second = post_lean(url, "/predict", name, data)
            if first.status_code != 200 or second.status_code != 200:
                sys.exit(f"/predict {name}: {first.status_code} / {second.status_code}")
            extra.append(with_requests - with_lean)
    return statistics.median(extra) * 1000


def run_concurrent(url: str, jobs: list, concurrency: int, handle) -> float:
    """Run ``jobs`` on ``concurrency`` threads (one session each); return the wall time."""
    todo: queue.Queue = queue.Queue()
    for job in jobs:
        todo.put(job)

    def worker():
        session = requests.Session()
        while True:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            handle(session, job)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def latency_phase(url, endpoint, images, concurrency, rounds, pids):
    jobs = [img for _ in range(rounds) for img in images]
    latencies, statuses = [], []
    lock = threading.Lock()

    def handle(session, image):
        name, data = image
        try:
            seconds, response = post_lean(url, endpoint, name, data)
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                statuses.append(type(exc).__name__)
            return
        with lock:
            latencies.append(seconds)
            statuses.append(response.status_code)

    cpu_before = cpu_seconds(pids)
    wall = run_concurrent(url, jobs, concurrency, handle)
    cpu = cpu_seconds(pids) - cpu_before
    bad = [s for s in statuses if s != 200]
    if bad:
        sys.exit(f"{endpoint} at concurrency {concurrency}: non-200 statuses {set(bad)}")
    return {
        "n": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "throughput_rps": len(latencies) / wall,
        # How many cores the workers got: ~1 per busy worker when the CPU is free.
        "worker_cores": cpu / wall,
        "worker_cpu_ms_per_request": cpu / max(1, len(latencies)) * 1000,
    }


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="request threads per worker")
    parser.add_argument("--model-threads", type=int, default=0,
                        help="inference threads per worker (0 = cores / workers)")
    parser.add_argument("--images", type=int, default=40, help="distinct BUSI images")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the images per phase")
    parser.add_argument("--full", action="store_true", help="2,000-request reliability run")
    parser.add_argument("--requests", type=int, default=None, help="reliability run size")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    # Each worker's runtime keeps its last 8 results; with fewer distinct images than
    # all workers' caches hold, /predict would be answered from a cache (ratio < 1).
    if args.images <= 16 * args.workers:
        parser.error(f"--images must be more than {16 * args.workers} with "
                     f"{args.workers} workers, so that no answer comes from a cache")
    n_reliability = args.requests or (2000 if args.full else 400)
    model_threads = args.model_threads or max(1, (os.cpu_count() or 1) // args.workers)
    os.environ["SONOTRACE_NUM_THREADS"] = str(model_threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    images = pick_images(busi_dir(), args.images)
    pixels = {name: np.asarray(Image.open(io.BytesIO(data))) for name, data in images}
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
          f"{len(images)} BUSI images; {args.workers} workers x {args.threads} threads, "
          f"{model_threads} inference thread(s) per worker")

    log_path = REPO / "test-artifacts" / "bench-server.log"
    log_path.parent.mkdir(exist_ok=True)
    server = Server(args.workers, args.threads, model_threads, log_path)
    figures: dict = {"config": vars(args) | {"json": None, "model_threads": model_threads}}
    try:
        startup = server.wait_healthy()
        health = requests.get(f"{server.url}/health", timeout=10).json()
        pids = server.workers()
        figures["startup_s"] = startup
        figures["rss_ready_mb"] = {p: rss_bytes(p) / 2**20 for p in pids}
        print(f"server healthy in {startup:.1f} s: {health.get('model')}, workers {pids}")

        from models.runtime import Runtime

        runtime = Runtime()
        runtime.load()
        runtime.predict_mask(pixels[images[0][0]])  # warm-up

        # Warm-up: every image once through each endpoint, at concurrency 4 so that all
        # workers take part and reach the allocations the largest images need.
        warm_jobs = [(ep, image) for image in images for ep in ("/predict", "/classify")]
        run_concurrent(server.url, warm_jobs, 4,
                       lambda s, job: post(s, server.url, job[0], *job[1]))
        figures["rss_warm_mb"] = {p: rss_bytes(p) / 2**20 for p in pids}
        session = requests.Session()

        # Overhead: bare predict_mask and /predict, interleaved image by image.
        bare, served, server_timing, references = [], [], [], {}
        for _ in range(args.rounds):
            for name, data in images:
                start = time.perf_counter()
                runtime.predict_mask(pixels[name])
                bare.append(time.perf_counter() - start)
                seconds, response = post_lean(server.url, "/predict", name, data)
                if response.status_code != 200:
                    sys.exit(f"/predict {name}: {response.status_code} {response.content[:200]}")
                served.append(seconds)
                body = response.json()
                server_timing.append(body["timing_ms"])
                previous = references.setdefault(name, {"mask": body["mask"]})
                if previous["mask"] != body["mask"]:
                    sys.exit(f"/predict is not deterministic for {name}")
        for name, data in images:
            _, response = post(session, server.url, "/classify", name, data)
            references[name]["probabilities"] = response.json()["probabilities"]
        bare_p50 = percentile(bare, 50) * 1000
        predict_p50 = percentile(served, 50) * 1000
        figures["overhead"] = {
            "bare_predict_mask_p50_ms": bare_p50,
            "predict_c1_p50_ms": predict_p50,
            "ratio": predict_p50 / bare_p50,
            "server_timing_p50_ms": {
                key: statistics.median(t.get(key, 0.0) for t in server_timing)
                for key in ("decode", "segment", "vectorize", "encode", "total")
            },
        }

        # Latency and throughput at concurrency 1 and 4.
        latency = {}
        for endpoint in ("/predict", "/classify"):
            for concurrency in (1, 4):
                latency[f"{endpoint} c{concurrency}"] = latency_phase(
                    server.url, endpoint, images, concurrency, args.rounds, pids
                )
        figures["latency"] = latency
        figures["throughput_ratio"] = {
            endpoint: latency[f"{endpoint} c4"]["throughput_rps"]
            / latency[f"{endpoint} c1"]["throughput_rps"]
            for endpoint in ("/predict", "/classify")
        }

        # Reliability: 10% bad inputs mixed in, at concurrency 4.
        text = b"not an image, just a text file named scan.png\n"
        first_png = images[0][1]
        bad_inputs = [
            ("/predict", "", ("scan.png", first_png[: len(first_png) // 2]), {400}),
            ("/predict", "", ("scan.png", text), {415}),
            ("/predict", "", ("scan.png", b""), {400}),
            ("/predict", "", ("huge.png", huge_png()), {413}),
            ("/predict", "?box=10,10,5,5", ("scan.png", first_png), {400}),
            ("/predict", "?max_vertices=1", ("scan.png", first_png), {400}),
            ("/classify", "", ("scan.gif", b"GIF89a" + bytes(64)), {415}),
            ("/classify", "", ("scan.png", first_png[:100]), {400}),
        ]
        rng = random.Random(1)
        jobs = []
        for i in range(n_reliability):
            if i % 10 == 9:
                jobs.append(("bad", rng.choice(bad_inputs)))
            else:
                jobs.append(("good", (rng.choice(["/predict"] * 3 + ["/classify"]),
                                      rng.choice(images))))
        counts = {"5xx": 0, "connection_errors": 0, "bad_ok": 0, "bad_wrong": 0, "good_ok": 0,
                  "good_wrong": 0}
        problems: list[str] = []
        lock = threading.Lock()

        def handle(session, job):
            kind, spec = job
            try:
                check(session, kind, spec)
            except requests.RequestException as exc:
                with lock:
                    counts["connection_errors"] += 1
                    counts[f"{kind}_wrong"] += 1
                    if len(problems) < 5:
                        problems.append(f"{kind} {spec[0]} -> {type(exc).__name__}: {exc}")

        def check(session, kind, spec):
            if kind == "bad":
                endpoint, query, (fname, payload), expected = spec
                response = session.post(f"{server.url}{endpoint}{query}",
                                        files={"image": (fname, payload)}, timeout=120)
                ok = (response.status_code in expected
                      and response.headers.get("Content-Type") == "application/json"
                      and response.json()["error"]["code"] == response.status_code)
            else:
                endpoint, (name, data) = spec
                _, response = post(session, server.url, endpoint, name, data)
                ok = response.status_code == 200
                if ok and endpoint == "/predict":
                    ok = response.json()["mask"] == references[name]["mask"]
                elif ok:
                    got = response.json()["probabilities"]
                    want = references[name]["probabilities"]
                    ok = all(abs(got[k] - want[k]) < 1e-6 for k in want)
            with lock:
                if response.status_code >= 500:
                    counts["5xx"] += 1
                counts[f"{kind}_{'ok' if ok else 'wrong'}"] += 1
                if not ok and len(problems) < 5:
                    problems.append(f"{kind} {spec[0]} -> {response.status_code}")

        wall = run_concurrent(server.url, jobs, 4, handle)
        figures["reliability"] = counts | {"requests": n_reliability, "wall_s": wall,
                                           "problems": problems}
        figures["rss_after_mb"] = {p: rss_bytes(p) / 2**20 for p in pids}
        alive = server.workers()
        figures["workers_restarted"] = sorted(set(alive) ^ set(pids))
    finally:
        server.stop()

    # After the server above has stopped, so that neither competes for the CPU.
    one_worker = Server(1, 1, model_threads, log_path.with_name("bench-server-1-worker.log"))
    try:
        one_worker.wait_healthy()
        requests_extra = requests_extra_ms(one_worker.url, images, args.rounds)
    finally:
        one_worker.stop()
    overhead = figures["overhead"]
    overhead["requests_extra_ms"] = requests_extra
    overhead["ratio_with_requests"] = ((overhead["predict_c1_p50_ms"] + requests_extra)
                                       / overhead["bare_predict_mask_p50_ms"])

    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


def report(f: dict) -> None:
    o = f["overhead"]
    print("\n== overhead (concurrency 1, interleaved) ==")
    print(f"bare predict_mask p50      {o['bare_predict_mask_p50_ms']:8.1f} ms")
    print(f"/predict end-to-end p50    {o['predict_c1_p50_ms']:8.1f} ms")
    timing = ", ".join(f"{k} {v:.1f}" for k, v in o["server_timing_p50_ms"].items())
    print(f"server-side p50 (ms)       {timing}")
    print(f"overhead ratio             {o['ratio']:8.2f}   target <= 1.20  "
          f"{'PASS' if o['ratio'] <= 1.2 else 'FAIL'}")
    print(f"  with the requests library, which adds {o['requests_extra_ms']:.1f} ms per call: "
          f"{o['ratio_with_requests']:.2f}")
    print("\n== latency ==")
    print(f"{'':18} {'p50 ms':>9} {'p95 ms':>9} {'req/s':>8} {'n':>5} "
          f"{'worker cores':>13} {'CPU ms/req':>11}")
    for key, row in f["latency"].items():
        print(f"{key:18} {row['p50_ms']:9.1f} {row['p95_ms']:9.1f} "
              f"{row['throughput_rps']:8.2f} {row['n']:5d} {row['worker_cores']:13.2f} "
              f"{row['worker_cpu_ms_per_request']:11.1f}")
    for endpoint, ratio in f["throughput_ratio"].items():
        verdict = "PASS" if ratio >= 1.6 else "FAIL"
        print(f"throughput c4/c1 {endpoint:10} {ratio:5.2f}   target >= 1.60  {verdict}")
    r = f["reliability"]
    print(f"\n== reliability ({r['requests']} requests, 10% bad, concurrency 4, "
          f"{r['wall_s']:.1f} s) ==")
    print(f"5xx: {r['5xx']}   connection errors: {r['connection_errors']}   "
          f"good answered correctly: {r['good_ok']}/"
          f"{r['good_ok'] + r['good_wrong']}   bad inputs with the expected 4xx: "
          f"{r['bad_ok']}/{r['bad_ok'] + r['bad_wrong']}   "
          f"{'PASS' if r['5xx'] == 0 and r['good_wrong'] == 0 and r['bad_wrong'] == 0 else 'FAIL'}")
    for problem in r["problems"]:
        print("  problem:", problem)
    print("\n== worker memory (RSS, MB) ==")
    worst = 0.0
    for pid in f["rss_warm_mb"]:
        ready, warm = f["rss_ready_mb"][pid], f["rss_warm_mb"][pid]
        after = f["rss_after_mb"].get(pid, float("nan"))
        growth = after / warm - 1
        worst = max(worst, growth)
        print(f"worker {pid}: ready {ready:7.1f}  after warm-up {warm:7.1f}  "
              f"after run {after:7.1f}  growth {growth * 100:+.1f}%")
    print(f"largest growth after warm-up {worst * 100:+.1f}%   target < 10%  "
          f"{'PASS' if worst < 0.10 else 'FAIL'}")
    if f["workers_restarted"]:
        print("WARNING: worker pids changed during the run:", f["workers_restarted"])


if __name__ == "__main__":
    sys.exit(main())
