#!/usr/bin/env python3
"""secure.py LABEL ROUNDS [WORKLOADS]: plain vs TLS + authentication, side by side.

Each round starts a fresh 3-node, 8-group cluster (cluster.sh) for each configuration
in turn -- plain, then secure with the admin client certificate (cert), then secure
with the bootstrap admin token (token) -- runs each workload once on it, and stops it.
So every configuration sees the same history, and the runs of one workload alternate
plain, cert, token, plain, ... minutes apart, so that drift of the shared machine hits
all three alike.

WORKLOADS (comma list, default w64,w64f,m64,m64f,w1,m1): w = writes, m = 90% reads
(linearizable) and 10% writes, after a prefill of every key; 64 or 1 clients; f =
through the nodes (they forward), otherwise --direct.

Each run appends a line to $PERF_DIR/results.jsonl (label LABEL-CONFIG-WORKLOAD) with,
besides bench's JSON: the 1-minute load average just before the run (uptime), and
during the run the CPU share of everything but this cluster and the bench ("other",
% of all cores) and the steal. A run starts once the rest of the machine is quiet, and
a disturbed run is repeated at once on the same cluster (see DISTURBED). `secure.py
--summary LABEL` prints the medians, the ratios secure/plain and every run.
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PERF_DIR = os.environ.get("PERF_DIR", "/tmp/ringkv-perf")
BIN = os.environ.get("BIN", "./bin/ringkv")
BASE = 9080
CONFIGS = ("plain", "cert", "token")
COMMON = ["--keys", "100000", "--value-size", "100", "--duration", "5s", "--warmup", "1s"]
# A run during which other processes used more than DISTURBED % of the machine (both
# cores) is discarded and repeated, up to TRIES runs; a run starts once they used at
# most QUIET % for 2 s (waiting at most WAIT seconds). Idle, the machine's other work
# (other helpers' idle clusters) takes 1-9 %.
DISTURBED, QUIET, TRIES, WAIT = 10, 6, 8, 600
WORKLOADS = {
    "w64": ["--direct", "--concurrency", "64"],
    "w64f": ["--concurrency", "64"],
    "m64": ["--direct", "--concurrency", "64", "--reads", "0.9", "--prefill=false"],
    "m64f": ["--concurrency", "64", "--reads", "0.9", "--prefill=false"],
    "w1": ["--direct", "--concurrency", "1"],
    "m1": ["--direct", "--concurrency", "1", "--reads", "0.9", "--prefill=false"],
}


def cpu_totals():
    """(steal, all) jiffies of all cores, from /proc/stat."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return f[7], sum(f[:8])


def others_cpu(ours):
    """CPU jiffies used so far by every process but the pids in ours: utime + stime +
    cutime + cstime, so that a process that exits during a run still counts, through
    the parent that reaps it. This process (and, through it, bench) is left out."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in ours:
            continue
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in f[11:15])
    return total


def load1():
    return float(open("/proc/loadavg").read().split()[0])


def credentials(config, data):
    if config == "cert":
        return ["--certs-dir", f"{data}/certs/client"]
    if config == "token":
        token = open(f"{data}/node1/admin.token").read().strip()
        return ["--cacert", f"{data}/certs/ca.crt", "--token", token]
    return []


def bench(addrs, args):
    """Runs bench; returns its JSON result."""
    out = subprocess.run([BIN, "bench", "--addr", addrs, "-o", "json"] + args,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench {args}: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def quiet(ours, limit=WAIT):
    """Waits (up to limit seconds) until the rest of the machine used at most QUIET % of
    it for 2 s; returns how long it waited."""
    start = time.time()
    while time.time() - start < limit:
        _, all0 = cpu_totals()
        other0 = others_cpu(ours)
        time.sleep(2)
        _, all1 = cpu_totals()
        if 100 * (others_cpu(ours) - other0) / max(all1 - all0, 1) <= QUIET:
            break
    return round(time.time() - start)


def measured_run(addrs, args, node_pids):
    """One bench run with the machine's load around it, once the machine is quiet."""
    ours = set(node_pids) | {os.getpid()}
    waited = quiet(ours)
    load = load1()
    steal0, all0 = cpu_totals()
    other0 = others_cpu(ours)
    res = bench(addrs, args)
    steal1, all1 = cpu_totals()
    other1 = others_cpu(ours)
    total = max(all1 - all0, 1)
    return res, {"load1": load, "other_pct": round(100 * (other1 - other0) / total, 1),
                 "steal_pct": round(100 * (steal1 - steal0) / total, 1), "waited_s": waited}


def start_cluster(config):
    env = dict(os.environ, PERF_DIR=PERF_DIR, BIN=BIN)
    if config != "plain":
        env["SECURE"] = "1"
    subprocess.run([f"{HERE}/stop.sh", str(BASE)], env=env, check=True)
    out = subprocess.run([f"{HERE}/cluster.sh", "3", "8", str(BASE)], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"cluster.sh: {out.stderr}")
    data = f"{PERF_DIR}/data-{BASE}"
    pids = [int(p) for p in open(f"{data}/pids").read().split()]
    return out.stdout.strip(), data, pids


def run(label, rounds, workloads):
    os.makedirs(PERF_DIR, exist_ok=True)
    results = open(f"{PERF_DIR}/results.jsonl", "a")
    first = int(os.environ.get("FIRST_ROUND", "1"))  # to add rounds to a label later
    for rnd in range(first, first + rounds):
        for config in CONFIGS:
            addrs, data, pids = start_cluster(config)
            cred = credentials(config, data)
            prefilled = False
            for w in workloads:
                if "--prefill=false" in WORKLOADS[w] and not prefilled:
                    # Every key written once (unmeasured), as sweep.sh does before reads.
                    bench(addrs, cred + ["--direct", "--concurrency", "64", "--reads", "1", "--duration", "1s",
                                         "--warmup", "0s", "--keys", "100000", "--value-size", "100"])
                    prefilled = True
                for attempt in range(1, TRIES + 1):
                    res, load = measured_run(addrs, cred + COMMON + WORKLOADS[w], pids)
                    line = {"label": f"{label}-{config}-{w}", "run": rnd, "r": res, "load": load}
                    if load["other_pct"] > DISTURBED:
                        line["discard"] = f"disturbed: other work took {load['other_pct']}% of the machine"
                    results.write(json.dumps(line) + "\n")
                    results.flush()
                    errs = sum(res["errors"].values())
                    print(f"round {rnd} {config:5} {w:5} {res['ops_per_sec']:8.0f}/s p50 {res['p50_ms']:6.2f} "
                          f"p99 {res['p99_ms']:7.2f} errs {errs}  load {load['load1']:.2f} "
                          f"other {load['other_pct']}% steal {load['steal_pct']}% waited {load['waited_s']}s"
                          + ("  DISCARDED" if "discard" in line else ""), flush=True)
                    if "discard" not in line:
                        break
            subprocess.run([f"{HERE}/stop.sh", str(BASE)], env=dict(os.environ, PERF_DIR=PERF_DIR), check=True)


def summary(label):
    """Markdown for docs/PERFORMANCE.md: per workload and configuration, the median of
    the runs' throughputs, p50s and p99s, the ratio secure/plain of the medians and the
    median of the rounds' own ratios (each secure run against the plain run of its
    round, minutes apart); then every run with the load around it. Runs marked
    "discard" (disturbed, then repeated) are left out; their count is given."""
    runs, discarded = {}, 0
    for l in open(f"{PERF_DIR}/results.jsonl"):
        d = json.loads(l)
        if not d["label"].startswith(label + "-"):
            continue
        if d.get("discard"):
            discarded += 1
            continue
        config, w = d["label"][len(label) + 1:].split("-")
        runs.setdefault((w, config), {})[d["run"]] = d
    med = lambda rs, k: statistics.median(r["r"][k] for r in rs)
    print("| workload | config | ops/s (median) | p50 ms | p99 ms | secure/plain: ops/s | per-round ratios, median | runs |")
    print("|---|---|---|---|---|---|---|---|")
    for w in WORKLOADS:
        plain = runs.get((w, "plain"))
        if not plain:
            continue
        for config in CONFIGS:
            byround = runs.get((w, config), {})
            rs = [byround[k] for k in sorted(byround)]
            ops = med(rs, "ops_per_sec")
            ratio = paired = ""
            if config != "plain":
                ratio = f"{ops / med(plain.values(), 'ops_per_sec'):.2f}"
                pairs = [byround[k]["r"]["ops_per_sec"] / plain[k]["r"]["ops_per_sec"] for k in byround if k in plain]
                paired = f"{statistics.median(pairs):.2f} ({min(pairs):.2f}-{max(pairs):.2f})"
            print(f"| {w} | {config} | {ops:,.0f} | {med(rs, 'p50_ms'):.2f} | {med(rs, 'p99_ms'):.1f} | {ratio} | {paired} | "
                  + " / ".join(f"{r['r']['ops_per_sec']:,.0f}" for r in rs) + " |")
    print(f"\n{discarded} disturbed runs discarded and repeated.\n")
    print("| round | workload | plain ops/s (load, other %) | cert | token |")
    print("|---|---|---|---|---|")
    rounds = sorted({k for v in runs.values() for k in v})
    for k in rounds:
        for w in WORKLOADS:
            cells = []
            for config in CONFIGS:
                d = runs.get((w, config), {}).get(k)
                cells.append(f"{d['r']['ops_per_sec']:,.0f} ({d['load']['load1']:.1f}, {d['load']['other_pct']:.0f})" if d else "")
            if any(cells):
                print(f"| {k} | {w} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        summary(sys.argv[2])
    elif len(sys.argv) in (3, 4):
        wl = (sys.argv[3] if len(sys.argv) == 4 else ",".join(WORKLOADS)).split(",")
        if unknown := [w for w in wl if w not in WORKLOADS]:
            sys.exit(f"unknown workloads {unknown}; known: {', '.join(WORKLOADS)}")
        started = time.time()
        run(sys.argv[1], int(sys.argv[2]), wl)
        print(f"done in {time.time() - started:.0f}s")
    else:
        sys.exit(__doc__)
