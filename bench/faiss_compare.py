#!/usr/bin/python3
"""Search the data of a `facesearch bench --dump DIR` run with FAISS.

Reads DIR/users.npy (one row per user: its normalized mean face) and
DIR/probes.npy (the run's probes, in the order the run uses them) and times,
with k = 10 and the same thread count as the Go run (2 by default):

  flat_1     IndexFlatIP, one query per search call (--single queries)
  flat_B     IndexFlatIP, batches of B probes (--batch, 256 by default)
  sq8_B      IndexScalarQuantizer QT_8bit, inner product, batches of B

It prints queries/s per configuration, then one JSON object. OpenMP, which
FAISS and OpenBLAS split their work with, slows down many times over when
other processes hold the cores (its threads wait for each other at every
step), so the JSON records the load average at the start and the end. With --report
(the `facesearch bench --json` output of the same run) it also prints the
comparisons the targets are stated in; see bench/README.md.

Runs with Debian's /usr/bin/python3 and python3-faiss. FAISS's flat search
of a batch is a BLAS matrix product: with Debian's reference BLAS it runs
tens of times slower than with OpenBLAS (libopenblas0-openmp), so the script
checks which BLAS the process loaded and refuses to report on the reference
one (--allow-reference-blas reports anyway, flagged in the JSON).
"""

import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="the --dump directory of a facesearch bench run")
    p.add_argument("--threads", type=int, default=2, help="OpenMP/BLAS threads (default 2, GOMAXPROCS of the Go run)")
    p.add_argument("--batch", type=int, default=256, help="queries per batched search call (default 256)")
    p.add_argument("--single", type=int, default=20, help="queries timed one per call (default 20)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds each batched configuration runs, at least one call (default 5)")
    p.add_argument("--k", type=int, default=10, help="results per query (default 10, as the Go run)")
    p.add_argument("--report", help="the JSON report of the same facesearch bench run, to compare with")
    p.add_argument("--json", dest="json_out", help="also write the JSON object to this file")
    p.add_argument("--skip-sq8", action="store_true", help="leave out sq8_B, which Debian's generic build scans slowly (minutes a batch at 1M users)")
    p.add_argument("--allow-reference-blas", action="store_true", help="report even if FAISS runs on the reference BLAS")
    return p.parse_args()


ARGS = parse_args()
# Thread counts must be set before numpy and faiss load their libraries.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import faiss  # noqa: E402


def blas_kind(path):
    """What BLAS a mapped library path is, or None if it is not one."""
    low = path.lower()
    name = os.path.basename(low)
    for kind in ("openblas", "mkl", "blis", "atlas"):
        if kind in low:
            return kind
    if name.startswith(("libblas.so", "libcblas.so")):
        # Debian's reference (netlib) BLAS, /usr/lib/<arch>/blas/libblas.so.3,
        # which the libblas.so.3 alternative points to when no optimized
        # BLAS is installed.
        return "reference"
    return None


def loaded_blas():
    """The BLAS libraries mapped into this process, each as (kind, path)."""
    seen = {}
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and blas_kind(parts[5]):
                seen[parts[5]] = blas_kind(parts[5])
    return sorted((kind, path) for path, kind in seen.items())


def check_blas():
    blas = loaded_blas()
    kinds = {kind for kind, _ in blas}
    optimized = kinds - {"reference"}
    for kind, path in blas:
        print(f"BLAS loaded: {kind}: {path}", file=sys.stderr)
    if not optimized:
        bar = "!" * 72
        print(f"{bar}\nFAISS is running on the REFERENCE BLAS (or none was found): its batched\n"
              "flat search is tens of times slower than with an optimized BLAS. Install\n"
              "libopenblas0-openmp (Debian) and run again.\n" + bar, file=sys.stderr)
        if not ARGS.allow_reference_blas:
            sys.exit(2)
    return blas, bool(optimized)


def timed_batches(index, queries, k, duration):
    """Queries per second of index.search(queries) repeated for duration."""
    n = 0
    t0 = time.perf_counter()
    while n == 0 or time.perf_counter() - t0 < duration:
        index.search(queries, k)
        n += len(queries)
    return n / (time.perf_counter() - t0)


def timed_single(index, queries, k):
    """Queries per second and median ms of one-query search calls."""
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], k)
        times.append(time.perf_counter() - t0)
    times.sort()
    return len(times) / sum(times), 1000 * times[len(times) // 2]


def go_figures(report):
    """The Go run's figures the comparisons use, by name."""
    out = {"search_p50_ms": report.get("search_p50_ms")}
    for prefix, ts in (("", report.get("throughput")), ("int8 ", (report.get("compressed") or {}).get("throughput"))):
        for x in ts or []:
            out[f"{prefix}batched_{x['batch']}_qps"] = x["batched_qps"]
    return out


def compare(res, go):
    """The ratios the targets are stated in, and whether each is met."""
    b = ARGS.batch
    flat_b = res[f"flat_{b}_qps"]
    rows = []

    def add(name, goal, measured, met):
        rows.append({"name": name, "goal": goal, "measured": measured, "met": met})

    if go.get(f"batched_{b}_qps"):
        r = go[f"batched_{b}_qps"] / flat_b
        add(f"batched_{b}_qps / faiss flat_{b}_qps", ">= 0.9", r, r >= 0.9)
    if go.get("search_p50_ms"):
        r = res["flat_1_p50_ms"] / go["search_p50_ms"]
        add("faiss flat_1 p50 / search_p50_ms", ">= 5", r, r >= 5)
    if go.get(f"int8 batched_{b}_qps"):
        r = go[f"int8 batched_{b}_qps"] / flat_b
        add(f"int8 batched_{b}_qps / faiss flat_{b}_qps", ">= 2.5", r, r >= 2.5)
        if f"sq8_{b}_qps" in res:
            r = go[f"int8 batched_{b}_qps"] / res[f"sq8_{b}_qps"]
            add(f"int8 batched_{b}_qps / faiss sq8_{b}_qps", "(for information)", r, None)
    return rows


def load_avg():
    """The 1-minute load average: other work shows up in every timing."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main():
    load0 = load_avg()
    users = np.ascontiguousarray(np.load(os.path.join(ARGS.dir, "users.npy")), dtype=np.float32)
    probes = np.ascontiguousarray(np.load(os.path.join(ARGS.dir, "probes.npy")), dtype=np.float32)
    n, d = users.shape
    b = ARGS.batch
    if len(probes) < max(b, ARGS.single):
        sys.exit(f"{ARGS.dir}/probes.npy has {len(probes)} probes, want at least {max(b, ARGS.single)}")
    faiss.omp_set_num_threads(ARGS.threads)
    print(f"faiss {faiss.__version__} ({faiss.get_compile_options()}), {ARGS.threads} threads; "
          f"{n} users x {d} dims, k={ARGS.k}", file=sys.stderr)

    flat = faiss.IndexFlatIP(d)
    flat.add(users)
    flat.search(probes[:b], ARGS.k)  # warm-up, and loads the BLAS
    blas, optimized = check_blas()

    res = {}
    res["flat_1_qps"], res["flat_1_p50_ms"] = timed_single(flat, probes[:ARGS.single], ARGS.k)
    print(f"flat_1:   {res['flat_1_qps']:10.1f} queries/s (p50 {res['flat_1_p50_ms']:.2f} ms)", file=sys.stderr)
    res[f"flat_{b}_qps"] = timed_batches(flat, probes[:b], ARGS.k, ARGS.duration)
    print(f"flat_{b}: {res[f'flat_{b}_qps']:10.1f} queries/s", file=sys.stderr)
    del flat

    if not ARGS.skip_sq8:
        sq = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        sq.train(users)
        sq.add(users)
        res[f"sq8_{b}_qps"] = timed_batches(sq, probes[:b], ARGS.k, ARGS.duration)
        print(f"sq8_{b}:  {res[f'sq8_{b}_qps']:10.1f} queries/s", file=sys.stderr)

    out = {
        "faiss_version": faiss.__version__,
        "faiss_compile_options": faiss.get_compile_options(),
        "blas": [{"kind": k, "path": p} for k, p in blas],
        "optimized_blas": optimized,
        "threads": ARGS.threads,
        "users": n,
        "dim": d,
        "k": ARGS.k,
        "batch": b,
        "single_queries": ARGS.single,
        "load_avg": [load0, load_avg()],
        **res,
    }
    if ARGS.report:
        with open(ARGS.report) as f:
            go = go_figures(json.load(f))
        out["comparisons"] = compare(res, go)
        for c in out["comparisons"]:
            verdict = {True: "met", False: "MISSED", None: ""}[c["met"]]
            print(f"  {verdict:6} {c['name']} {c['goal']}: {c['measured']:.2f}", file=sys.stderr)
    text = json.dumps(out, indent=2)
    print(text)
    if ARGS.json_out:
        with open(ARGS.json_out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
