#!/usr/bin/env python3
"""Run our engine and llama-bench on the same model and thread count; print a table.

Peak RSS of each process comes from wait4's rusage (ru_maxrss), the same measure for both.
"""
import argparse
import json
import os
import subprocess
import sys


def run(cmd, env=None):
    """Run cmd, return (stdout, peak RSS in bytes)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    return out.decode(), usage.ru_maxrss * 1024


def llama_bench(exe, model, threads, args):
    out, rss = run([exe, "-m", model, "-t", str(threads), "-r", "2", "-o", "json", *args])
    return json.loads(out)[0]["avg_ts"], rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    a = ap.parse_args()

    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), IEXEC_LLM_THREADS=str(a.threads))
    out, ours_rss = run([a.ours, a.model, "--prompt", str(a.prompt), "--gen", str(a.gen)], env)
    ours = json.loads(out.strip().splitlines()[-1])

    ref_pp, rss_pp = llama_bench(a.llama_bench, a.model, a.threads,
                                 ["-p", str(a.prompt), "-n", "0"])
    ref_tg, rss_tg = llama_bench(a.llama_bench, a.model, a.threads,
                                 ["-p", "0", "-n", str(a.gen), "-d", str(a.prompt)])
    ref_rss = max(rss_pp, rss_tg)

    rows = [
        (f"prefill tok/s ({a.prompt}-token prompt)", ours["prefill_tokens_per_second"], ref_pp),
        (f"decode tok/s ({a.gen} after {a.prompt})", ours["decode_tokens_per_second"], ref_tg),
        ("peak RSS (MB)", ours_rss / 1e6, ref_rss / 1e6),
    ]
    print(f"model: {a.model}\nthreads: {a.threads}")
    print(f"{'':40} {'ours':>10} {'llama.cpp':>10} {'ratio':>7}")
    for name, o, r in rows:
        print(f"{name:40} {o:10.2f} {r:10.2f} {o / r:7.2f}")


if __name__ == "__main__":
    main()
