#!/usr/bin/env python3
"""Load check for `sundae serve` (standard library only): CLIENTS clients at once each ask for 4
images and read their event stream to the end; prints the queue positions each was shown, whether
all finished, the server's peak and final resident memory, and the time to the first step event of
a lone 16-image request against `sundae sample` doing the same work.

    python3 scripts/serve-load-check.py [--clients 20] [--model models/emoji]
"""
import argparse, json, os, re, subprocess, sys, threading, time, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--clients", type=int, default=20)
parser.add_argument("--model", default="models/emoji")
parser.add_argument("--binary", default="target/release/sundae")
args = parser.parse_args()

server = subprocess.Popen([args.binary, "serve", "--model", args.model, "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
base = re.search(r"http://[0-9.:]+", server.stdout.readline()).group(0)

def rss_mib():
    with open(f"/proc/{server.pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

def submit(body):
    request = urllib.request.Request(base + "/api/generate", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(request))

def stream(job, on_event):
    with urllib.request.urlopen(f"{base}/api/jobs/{job}/events") as reply:
        for raw in reply:
            line = raw.decode().strip()
            if line.startswith("data: "):
                event = json.loads(line[6:])
                on_event(event)
                if event["event"] in ("done", "error", "cancelled"):
                    return event["event"]

peak = [rss_mib()]
stop = threading.Event()
def watch():
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mib())
        time.sleep(0.1)
threading.Thread(target=watch, daemon=True).start()
idle = rss_mib()

# A lone request first: time to the first step, and the whole 16-image job against the CLI.
start = time.time()
job = submit({"count": 16, "seed": 0})["job"]
marks = {}
def lone(event):
    marks.setdefault(event["event"], time.time() - start)
stream(job, lone)
served = marks["done"]
started = time.time()
subprocess.run([args.binary, "sample", "--model", args.model, "--out", "/tmp/serve-load-check.png", "--force"],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
cli = time.time() - started

def load_round():
    """All clients at once; returns their outcomes, the positions each saw, the time, memory after."""
    results, positions = [None] * args.clients, [[] for _ in range(args.clients)]
    def client(i):
        job = submit({"count": 4, "seed": i, "steps": 20})["job"]
        def seen(event):
            if event["event"] == "queued":
                positions[i].append(event["position"])
        results[i] = stream(job, seen)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    began = time.time()
    for t in threads: t.start()
    for t in threads: t.join()
    took = time.time() - began
    time.sleep(1)
    return results, positions, took, rss_mib()

# Twice: memory after the second round shows whether finished jobs are let go.
results, positions, took, after = load_round()
results2, _, took2, after2 = load_round()
stop.set()
server.terminate()

print(f"lone 16-image job: first step event after {marks['step']:.2f} s, done after {served:.1f} s; "
      f"sundae sample (same work, new process): {cli:.1f} s; ratio {served / cli:.2f}")
print(f"{args.clients} clients x 4 images (20 steps): {results.count('done')} done in {took:.1f} s; "
      f"queue positions shown: {sorted(set(p for ps in positions for p in ps))}")
print(f"again: {results2.count('done')} done in {took2:.1f} s")
print(f"server memory: idle {idle:.0f} MiB, peak {peak[0]:.0f} MiB, after the first round {after:.0f} MiB, "
      f"after the second {after2:.0f} MiB")
sys.exit(0 if results.count("done") == results2.count("done") == args.clients else 1)
