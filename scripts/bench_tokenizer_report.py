#!/usr/bin/env python3
"""Collects scripts/bench_tokenizer.sh's raw runs into results/tokenizer/speed.json and speed.png.

Medians over the runs of each configuration (tokenizer x library x threads); the ids of csa and
HF are compared by sha256 of the int32 little-endian stream, and with the committed tokenizer
fixtures' whole-corpus hashes where one exists (tests/fixtures/tokenizers/<name>.json).
"""
import argparse
import glob
import hashlib
import json
import os
import platform
import re
import statistics
import struct
import subprocess
from pathlib import Path


# The fixture holding the reference ids of what csa-tokenize loads for a name: llama-mini's
# tokenizer.json is a stub, the model's tokenizer is its tokenizer.model (Tokenizer::from_files).
FIXTURE_OF = {"llama-mini": "llama-mini-spm"}


def sh(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def sha256_int32le(ids):
    return hashlib.sha256(struct.pack("<%di" % len(ids), *ids)).hexdigest()


def summary(values, n_bytes, n_tokens):
    med = statistics.median(values)
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "runs": values,
        "mb_per_s": n_bytes / 1e6 / med if med > 0 else None,
        "tokens_per_s": n_tokens / med if med > 0 and n_tokens else None,
    }


def machine(raw):
    cpu = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    os_name = None
    if os.path.exists("/etc/os-release"):
        m = re.search(r'^PRETTY_NAME="?([^"\n]*)', Path("/etc/os-release").read_text(), re.M)
        os_name = m.group(1) if m else None
    out = {"cpu_model": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 2**20, 1) if mem_kb else None,
           "os": os_name, "kernel": platform.release()}
    for line in Path(raw, "machine.txt").read_text().splitlines():
        key, *vals = line.split()
        out[key] = [float(v) for v in vals]
    return out


def main():
    ap = argparse.ArgumentParser()
    for a in ("--raw", "--out", "--corpus", "--command", "--root", "--tokenize", "--shared",
              "--hf-module", "--hf-reason", "--hf-why"):
        ap.add_argument(a, default="")
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--hf-ok", type=int, default=0)
    ap.add_argument("--spm-ok", type=int, default=0)
    ap.add_argument("--tokenizers", nargs="+", default=[])
    args = ap.parse_args()

    corpus_bytes = Path(args.corpus).read_bytes()
    n_bytes = len(corpus_bytes)
    hf_why = dict(line.split("\t", 1) for line in args.hf_why.splitlines() if "\t" in line)
    fixtures = Path(args.root, "tests/fixtures/tokenizers")
    thread_keys = sorted({1, args.threads})

    csa_version = sh([args.tokenize, "--version"])
    git = sh(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=args.root)
    # Uncommitted changes under lib/ and apps/ that the measured binary may include.
    dirty = sh(["git", "status", "--porcelain", "--", "lib", "apps"], cwd=args.root)
    dirty_files = [line.split(None, 1)[1] for line in dirty.splitlines() if line.strip()] if dirty else []
    hf_version = None
    spm_version = None
    results, hf_versions = [], {}
    for spec in args.tokenizers:
        name, path, hf_kind, hf_path = spec.split("|")
        files = sorted(glob.glob(os.path.join(args.raw, f"csa.{name}.t*.r*.json")))
        if not files:
            continue
        entry = {"name": name, "path": os.path.relpath(path, args.root)}
        ids = None
        csa = {}
        for t in thread_keys:
            enc, wall, load = [], [], []
            for r in range(1, args.runs + 1):
                p = os.path.join(args.raw, f"csa.{name}.t{t}.r{r}.json")
                d = json.load(open(p))
                if "ids" in d:
                    ids = d["ids"]
                enc.append(d["encode_seconds"])
                load.append(d["tokenizer"]["load_seconds"])
                t0, t1 = map(float, Path(p + ".wall").read_text().split())
                wall.append(t1 - t0)
                entry.setdefault("description", d["tokenizer"]["description"])
                entry.setdefault("source", d["tokenizer"]["source"])
                entry.setdefault("n_tokens", d["count"])
                entry.setdefault("add_special_tokens", d["add_special_tokens"])
            csa[str(t)] = {"threads": t,
                           "encode_seconds": summary(enc, n_bytes, entry["n_tokens"]),
                           "load_seconds_median": statistics.median(load),
                           "process_seconds_median": statistics.median(wall)}
        entry["ids_sha256_int32le"] = sha256_int32le(ids) if ids is not None else None
        fx = fixtures / f"{FIXTURE_OF.get(name, name)}.json"
        if fx.exists():
            want = json.loads(fx.read_text()).get("corpora", {}).get(Path(args.corpus).name)
            # The fixture's corpus hashes are of encode(text) with the template, as here.
            entry["reference_fixture"] = fx.name
            entry["matches_reference_fixture"] = (
                None if want is None else want["sha256_int32le"] == entry["ids_sha256_int32le"])
        entry["csa"] = csa

        if hf_kind == "sentencepiece":
            if args.spm_ok:
                enc, load, shas = [], [], set()
                for r in range(1, args.runs + 1):
                    d = json.load(open(os.path.join(args.raw, f"spm.{name}.t1.r{r}.json")))
                    enc += d["encode_seconds"]
                    load += d["load_seconds"]
                    shas.add(d["ids_sha256_int32le"])
                assert len(shas) == 1, f"sentencepiece ids differ between runs for {name}"
                sha = shas.pop()
                entry["sentencepiece"] = {
                    "available": True, "library": d["library"], "version": d["version"],
                    "path": os.path.relpath(hf_path, args.root), "n_tokens": d["n_tokens"],
                    "ids_sha256_int32le": sha, "ids_match_csa": sha == entry["ids_sha256_int32le"],
                    "1": {"threads": 1, "encode_seconds": summary(enc, n_bytes, d["n_tokens"]),
                          "load_seconds_median": statistics.median(load)}}
                spm_version = d["version"]
            else:
                entry["sentencepiece"] = {"available": False,
                                          "reason": "the python running this report has no sentencepiece module"}
        if not args.hf_ok:
            entry["hf_tokenizers"] = {"available": False, "reason": args.hf_reason}
        elif hf_kind in ("-", "sentencepiece"):
            entry["hf_tokenizers"] = {"available": False, "reason": hf_why.get(name, "no loader")}
        else:
            hf = {"available": True, "kind": hf_kind, "path": os.path.relpath(hf_path, args.root)}
            for t in thread_keys:
                enc, load, shas = [], [], set()
                for r in range(1, args.runs + 1):
                    d = json.load(open(os.path.join(args.raw, f"hf.{name}.t{t}.r{r}.json")))
                    hf_version = d["version"]
                    hf_versions["node"] = d["node"]
                    hf["n_tokens"] = d["n_tokens"]
                    shas.add(d["ids_sha256_int32le"])
                    enc += d["encode_seconds"]
                    load += d["load_seconds"]
                assert len(shas) == 1, f"HF ids differ between runs for {name}"
                hf["ids_sha256_int32le"] = shas.pop()
                hf[str(t)] = {"threads": t, "RAYON_NUM_THREADS": t,
                              "encode_seconds": summary(enc, n_bytes, hf["n_tokens"]),
                              "load_seconds_median": statistics.median(load)}
            hf["ids_match_csa"] = hf["ids_sha256_int32le"] == entry["ids_sha256_int32le"]
            m1, c1 = hf["1"]["encode_seconds"]["median"], csa["1"]["encode_seconds"]["median"]
            hf["csa_speedup_1_thread"] = m1 / c1 if c1 > 0 else None
            entry["hf_tokenizers"] = hf
        results.append(entry)

    out = {
        "schema_version": 1,
        "kind": "csa-tokenizer-speed",
        "command": args.command.strip(),
        "git_commit": git,
        "uncommitted_source_files": dirty_files,
        "machine": machine(args.raw),
        "versions": {"csa": csa_version, "hf_tokenizers": hf_version,
                     "hf_tokenizers_module": args.hf_module if args.hf_ok else None,
                     "node": hf_versions.get("node"), "python": platform.python_version(),
                     "sentencepiece_python": spm_version},
        "corpus": {"path": os.path.relpath(args.corpus, args.root), "bytes": n_bytes,
                   "sha256": hashlib.sha256(corpus_bytes).hexdigest()},
        "protocol": {
            "runs_per_configuration": args.runs,
            "statistic": "median",
            "threads": thread_keys,
            "csa": "csa-tokenize MODEL CORPUS --json --threads T: encode_seconds = the "
                   "Tokenizer::encode call alone (UTF-8 check included), one fresh process per run; "
                   "process_seconds = the whole process (libtorch start, tokenizer load, output)",
            "hf_tokenizers": "tokenizers (Node binding) Tokenizer.encode(text) with "
                             "addSpecialTokens, one fresh node process and tokenizer per run, "
                             "RAYON_NUM_THREADS=T",
            "order": "round-robin: every round runs each configuration once, csa and HF interleaved",
            "add_special_tokens": True,
        },
        "hf_tokenizers_available": bool(args.hf_ok),
        "hf_tokenizers_unavailable_reason": None if args.hf_ok else args.hf_reason,
        "notes": [
            "csa encodes one text on one thread: Tokenizer::encode has no parallel path, so "
            "--threads changes nothing but noise; HF's single-text encode is sequential as well "
            "(rayon parallelism is for encode_batch).",
            "SentencePiece rows: csa calls the system libsentencepiece on the whole text; the "
            "'sentencepiece' figure is that library's Python binding on the same text (BOS "
            "prepended as csa's template does), so the two differ only by csa's wrapper.",
        ],
        "tokenizers": results,
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "speed.json").write_text(json.dumps(out, indent=2) + "\n")
    plot(out, Path(args.out, "speed.png"))
    for e in results:
        line = f"{e['name']:>12}: csa {e['csa']['1']['encode_seconds']['mb_per_s']:.2f} MB/s"
        for key, ref in (("HF", e["hf_tokenizers"]), ("sentencepiece", e.get("sentencepiece", {}))):
            if ref.get("available"):
                line += (f", {key} {ref['1']['encode_seconds']['mb_per_s']:.2f} MB/s "
                         f"(ids match: {ref['ids_match_csa']})")
        print(line)


def plot(out, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = out["tokenizers"]
    threads = out["protocol"]["threads"]
    series = []
    for t in threads:
        series.append((f"csa, {t} thread{'s' if t > 1 else ''}",
                       [r["csa"][str(t)]["encode_seconds"]["mb_per_s"] for r in rows]))
    if out["hf_tokenizers_available"]:
        for t in threads:
            series.append((f"HF tokenizers {out['versions']['hf_tokenizers']}, {t} thread{'s' if t > 1 else ''}",
                           [r["hf_tokenizers"][str(t)]["encode_seconds"]["mb_per_s"]
                            if r["hf_tokenizers"].get("available") else None for r in rows]))
    if any(r.get("sentencepiece", {}).get("available") for r in rows):
        series.append((f"sentencepiece {out['versions']['sentencepiece_python']} (Python), 1 thread",
                       [r["sentencepiece"]["1"]["encode_seconds"]["mb_per_s"]
                        if r.get("sentencepiece", {}).get("available") else None for r in rows]))
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.9 * len(rows)))
    h = 0.8 / len(series)
    colors = ["#1f77b4", "#6baed6", "#d62728", "#fc9272", "#2ca02c"]
    for i, (label, vals) in enumerate(series):
        ys = [k + (i - (len(series) - 1) / 2) * h for k in range(len(rows))]
        xs = [v if v is not None else 0 for v in vals]
        bars = ax.barh(ys, xs, height=h, label=label, color=colors[i % len(colors)])
        for b, v in zip(bars, vals):
            if v is not None:  # no bar where a library cannot load the tokenizer (see the JSON)
                ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:.2f}", va="center",
                        fontsize=7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['name']}\n{r['n_tokens']:,} tokens" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MB/s (encode only, median of %d runs; higher is better)" % out["protocol"]["runs_per_configuration"])
    m = out["machine"]
    ax.set_title(f"Tokenizer speed on {out['corpus']['path']} ({out['corpus']['bytes'] / 1e6:.2f} MB)\n"
                 f"{m['cpu_model']}, {m['cores']} cores; csa {out['git_commit']}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
