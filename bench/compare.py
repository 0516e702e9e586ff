#!/usr/bin/env python3
"""Run our engine and llama-bench on the same model and thread count; print a table.

Peak RSS of each process comes from wait4's rusage (ru_maxrss), the same measure for both.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def run(cmd, env=None, wall=None):
    """Run cmd, return (stdout, peak RSS in bytes); its wall time is appended to `wall`."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    if wall is not None:
        wall.append(time.monotonic() - t)
    return out.decode(), usage.ru_maxrss * 1024


def llama_bench(exe, model, threads, args, reps=2):
    out, rss = run([exe, "-m", model, "-t", str(threads), "-r", str(reps), "-o", "json", *args])
    return json.loads(out)[0]["avg_ts"], rss


def ours(a, env, *args):
    out, rss = run([a.ours, *args], env)
    return json.loads(out.strip().splitlines()[-1]), rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--llama-batched-bench", required=True)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--long-gen", type=int, default=2048)
    ap.add_argument("--batch-prompt", type=int, default=128)
    ap.add_argument("--batch-gen", type=int, default=32)
    ap.add_argument("--batches", default="1,2,4,8")
    a = ap.parse_args()

    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), IEXEC_LLM_THREADS=str(a.threads))
    bw, _ = ours(a, env, "--bandwidth")
    bw = bw["read_bytes_per_second"]
    # The int8 multiply-adds per second AVX-512 VNNI gives (None where the CPU lacks it).
    peak = subprocess.run([a.ours, "--int8-peak"], env=env, capture_output=True, text=True)
    peak = json.loads(peak.stdout.strip().splitlines()[-1])["int8_macs_per_second"] \
        if peak.returncode == 0 else None
    mine, ours_rss = ours(a, env, a.model, "--prompt", str(a.prompt), "--gen", str(a.gen))
    long, _ = ours(a, env, a.model, "--prompt", str(a.prompt), "--gen", str(a.long_gen))
    step_bytes = mine["weight_bytes_read_per_step"]

    ref_pp, rss_pp = llama_bench(a.llama_bench, a.model, a.threads,
                                 ["-p", str(a.prompt), "-n", "0"])
    ref_tg, rss_tg = llama_bench(a.llama_bench, a.model, a.threads,
                                 ["-p", "0", "-n", str(a.gen), "-d", str(a.prompt)])
    ref_long, _ = llama_bench(a.llama_bench, a.model, a.threads,
                              ["-p", "0", "-n", str(a.long_gen), "-d", str(a.prompt)], reps=1)
    ref_rss = max(rss_pp, rss_tg)

    # Cold start: process start to the first generated token after a --prompt-token prompt,
    # the model file in the page cache (both engines have just read it). Ours hashes the file
    # first, as the app does; llama.cpp hashes nothing. Best of 3 wall times each.
    ours_cold, ref_cold = [], []
    for _ in range(3):
        run([a.ours, a.model, "--prompt", str(a.prompt), "--gen", "0", "--hash"], env,
            ours_cold)
        run([a.llama_bench, "-m", a.model, "-t", str(a.threads), "-r", "1", "--no-warmup",
             "-p", str(a.prompt), "-n", "0", "-o", "json"], None, ref_cold)
    cold, _ = ours(a, env, a.model, "--prompt", str(a.prompt), "--gen", "0", "--hash")

    # Batched decode: the time of one step of B sequences, ours and llama-batched-bench's,
    # each after a prompt of --batch-prompt tokens per sequence.
    batches = [int(b) for b in a.batches.split(",")]
    ctx = max(batches) * (a.batch_prompt + a.batch_gen) + 16
    out, _ = run([a.llama_batched_bench, "-m", a.model, "-t", str(a.threads), "-c", str(ctx),
                  "-b", "2048", "-ub", "512", "-npp", str(a.batch_prompt),
                  "-ntg", str(a.batch_gen), "-npl", a.batches, "--output-format", "jsonl"])
    ref_steps = {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            ref_steps[r["pl"]] = r["t_tg"] / r["tg"]
    our_steps = {}
    for b in batches:
        r, _ = ours(a, env, a.model, "--prompt", str(a.batch_prompt),
                    "--gen", str(a.batch_gen), "--batch", str(b))
        our_steps[b] = r["decode_step_seconds"]

    share = lambda tps: tps * step_bytes / bw
    macs = mine["prefill_macs_per_token"]
    rows = [
        ("read bandwidth (GB/s, this run)", bw / 1e9, None),
        (f"prefill tok/s ({a.prompt}-token prompt)", mine["prefill_tokens_per_second"], ref_pp),
    ]
    if peak is not None:
        # Prefill's multiply-adds per second against what vpdpbusd alone could do: where the
        # share is near 1, no VNNI kernel can be much faster.
        rows += [
            ("int8 VNNI peak (G MAC/s, this run)", peak / 1e9, None),
            ("  prefill share of it", mine["prefill_tokens_per_second"] * macs / peak,
             ref_pp * macs / peak),
        ]
    rows += [
        (f"decode tok/s ({a.gen} after {a.prompt})", mine["decode_tokens_per_second"], ref_tg),
        ("  share of read bandwidth", share(mine["decode_tokens_per_second"]), share(ref_tg)),
        (f"decode tok/s ({a.long_gen} after {a.prompt})", long["decode_tokens_per_second"],
         ref_long),
    ]
    for b in batches:
        rows.append((f"batched step ms (B={b})", our_steps[b] * 1e3, ref_steps[b] * 1e3))
    for b in batches[1:]:
        rows.append((f"  step B={b} / step B={batches[0]}", our_steps[b] / our_steps[batches[0]],
                     ref_steps[b] / ref_steps[batches[0]]))
    rows.append((f"cold start s (to 1st token, {a.prompt} prompt)", min(ours_cold),
                 min(ref_cold)))
    rows.append(("  of which ours: hash s", cold["hash_seconds"], None))
    rows.append(("  of which ours: load s", cold["load_seconds"], None))
    rows.append(("peak RSS (MB)", ours_rss / 1e6, ref_rss / 1e6))
    print(f"model: {a.model}\nthreads: {a.threads}")
    print(f"weights read per decode step: {step_bytes / 1e6:.1f} MB")
    print(f"multiply-adds per prompt token: {macs / 1e9:.3f} G")
    print(f"{'':40} {'ours':>10} {'llama.cpp':>10} {'ratio':>7}")
    for name, o, r in rows:
        if r is None:
            print(f"{name:40} {o:10.2f}")
        else:
            print(f"{name:40} {o:10.2f} {r:10.2f} {o / r:7.2f}")


if __name__ == "__main__":
    main()
