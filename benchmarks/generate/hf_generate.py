#!/usr/bin/env python3
"""The Hugging Face baseline of issue 30's GPU benchmark: transformers' model.generate on the decoders that
make_decoders.py exports (same shapes, same random weights: decoders.build_hf_model with decoders.SEED), fp16.

The prompts are prompts-2048.txt (SentenceData.body(0 .. 2047), the Java benchmarks' sentences), tokenized with
tokenizer.json (GPT-2's byte-level BPE) through transformers.PreTrainedTokenizerFast, padded on the left, batched in
input order. Each prompt gets exactly --new-tokens (64) greedy tokens: no end-of-sequence token is set and
min_new_tokens = max_new_tokens, so no row stops early. A batch is timed from its texts to its decoded texts
(tokenize, generate, decode). Per model and batch size: one untimed warm-up batch, then passes over the prompts
until the run lasts at least --min-seconds (5 s); --max-seconds S ends a run at the first batch past S seconds
(a prefix of the prompts, named in the results) to save device time. After --batch-sizes, the batch size keeps
doubling (up to --max-batch-size) while throughput still grows by 10 % or more and memory holds.

Reported per run: generated tokens/s, prompts/s, batch latency p50/p95/p99, the GPU's mean utilization.gpu and
power.draw (nvidia-smi every 100 ms, as the Java benchmarks' PowerSampler), energy per 1,000 generated tokens
(mean power x time), peak GPU memory. Writes results-hf-<gpu>.json and .md to --out ($OUT, else .).

  python3 hf_generate.py                                   # both models, batch sizes 32..256 and growth
  python3 hf_generate.py --models qwen-0.5b --batch-sizes 64,128 --max-seconds 10
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decoders  # noqa: E402
from decoders import END_OF_TEXT, SHAPES  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class PowerSampler:
    """nvidia-smi --query-gpu=power.draw,utilization.gpu -lms 100, each line stamped with time.monotonic()."""

    def __init__(self, gpu_index=0):
        self.samples = []
        self.lock = threading.Lock()
        try:
            self.process = subprocess.Popen(
                ["nvidia-smi", f"--id={gpu_index}", "--query-gpu=power.draw,utilization.gpu",
                 "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        except OSError:
            self.process = None
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.process.stdout:
            fields = [f.strip() for f in line.split(",")]
            try:
                watts = float(fields[0])
                utilization = float(fields[1]) if len(fields) > 1 else math.nan
            except ValueError:
                continue  # a header or a message, not a sample
            with self.lock:
                self.samples.append((time.monotonic(), watts, utilization))

    def window(self, start, end):
        with self.lock:
            inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:
            return {"samples": 0, "watts": math.nan, "utilization": math.nan}
        return {"samples": len(inside), "watts": sum(s[1] for s in inside) / len(inside),
                "utilization": sum(s[2] for s in inside) / len(inside)}

    def close(self):
        if self.process is not None:
            self.process.terminate()


class Tokenizer:
    """tokenizer.json through transformers.PreTrainedTokenizerFast (the tokenizers library where that fails), left padding."""

    def __init__(self, path, pad_id=END_OF_TEXT):
        self.pad_id = pad_id
        try:
            from transformers import PreTrainedTokenizerFast
            self.fast = PreTrainedTokenizerFast(tokenizer_file=path)
            self.fast.pad_token = self.fast.convert_ids_to_tokens(pad_id)
            self.fast.padding_side = "left"
            self.kind = f"transformers.{type(self.fast).__name__}"
        except Exception as error:  # noqa: BLE001 - fall back, and say so
            from tokenizers import Tokenizer as RawTokenizer
            print(f"PreTrainedTokenizerFast failed ({type(error).__name__}: {error}); using tokenizers", flush=True)
            self.fast = None
            self.raw = RawTokenizer.from_file(path)
            self.kind = "tokenizers.Tokenizer"

    def ids(self, texts):
        if self.fast is not None:
            return self.fast(texts)["input_ids"]
        return [e.ids for e in self.raw.encode_batch(texts)]

    def batch(self, texts, device):
        """Left-padded input_ids and attention_mask, int64, on the device."""
        if self.fast is not None:
            encoded = self.fast(texts, padding=True, return_tensors="pt")
            return encoded["input_ids"].to(device), encoded["attention_mask"].to(device)
        rows = self.ids(texts)
        longest = max(len(r) for r in rows)
        ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(rows), longest), dtype=torch.int64)
        for i, row in enumerate(rows):
            if row:
                ids[i, longest - len(row):] = torch.tensor(row)
                mask[i, longest - len(row):] = 1
        return ids.to(device), mask.to(device)

    def decode(self, ids):
        if self.fast is not None:
            return self.fast.batch_decode(ids, skip_special_tokens=True)
        return self.raw.decode_batch(ids.tolist(), skip_special_tokens=True)


def finite(value):
    """The value with NaN replaced by None, recursively: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def distribution(values):
    return {"min": min(values), "p50": percentile(values, 0.5), "p90": percentile(values, 0.9),
            "p99": percentile(values, 0.99), "max": max(values), "mean": round(sum(values) / len(values), 2)}


def versions():
    found = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
             "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"}
    for module in ("transformers", "tokenizers", "onnx", "onnxruntime"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001
            found[module] = None
    try:
        found["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                         capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001
        found["driver"] = None
    return found


def gpu_slug(name):
    match = re.search(r"(h100|h200|a100|l40s|l4|a10g|b200|gh200)", name.lower())
    return match.group(1) if match else re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "cpu"


def prepare_model(name, args):
    model, attention = decoders.build_hf_model(name, args.device, torch.float16 if args.dtype == "fp16" else torch.float32,
                                               args.attn_implementation)
    # No end-of-sequence token: every row generates exactly --new-tokens (min_new_tokens guards it as well).
    config = model.generation_config
    config.eos_token_id = None
    config.pad_token_id = END_OF_TEXT
    config.bos_token_id = END_OF_TEXT
    return model, attention


def generate_batch(model, tokenizer, texts, args):
    """One batch from texts to decoded texts: the number of generated tokens."""
    ids, mask = tokenizer.batch(texts, args.device)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.new_tokens,
                             min_new_tokens=args.new_tokens, do_sample=False, num_beams=1,
                             pad_token_id=END_OF_TEXT, use_cache=True)
    new = out[:, ids.shape[1]:]
    if new.shape[1] != args.new_tokens:
        raise RuntimeError(f"generate returned {new.shape[1]} new tokens per row, not {args.new_tokens}")
    tokenizer.decode(new.cpu())
    return new.shape[0] * new.shape[1]


def measure(model, tokenizer, prompts, batch_size, args, sampler):
    batches = [prompts[i:i + batch_size] for i in range(0, len(prompts), batch_size)]
    generate_batch(model, tokenizer, batches[0], args)  # warm-up, untimed
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    latencies, tokens, rows, passes = [], 0, 0, 0
    start = time.monotonic()
    stop = False
    while not stop:
        for batch in batches:
            began = time.perf_counter()
            tokens += generate_batch(model, tokenizer, batch, args)
            latencies.append(time.perf_counter() - began)
            rows += len(batch)
            elapsed = time.monotonic() - start
            if args.max_seconds and elapsed >= max(args.max_seconds, args.min_seconds):
                stop = True
                break
        else:
            passes += 1
        if time.monotonic() - start >= args.min_seconds:
            stop = True
    end = time.monotonic()
    seconds = end - start
    power = sampler.window(start, end)
    energy = power["watts"] * seconds
    result = {"batch_size": batch_size, "seconds": round(seconds, 3), "full_passes": passes,
              "prompts_timed": rows, "distinct_prompts": min(rows, len(prompts)), "batches": len(latencies),
              "generated_tokens": tokens, "tokens_per_second": round(tokens / seconds, 1),
              "prompts_per_second": round(rows / seconds, 2),
              "batch_ms": {"p50": round(percentile(latencies, 0.5) * 1e3, 1),
                           "p95": round(percentile(latencies, 0.95) * 1e3, 1),
                           "p99": round(percentile(latencies, 0.99) * 1e3, 1),
                           "max": round(max(latencies) * 1e3, 1)},
              "gpu_utilization_percent": round(power["utilization"], 1),
              "gpu_watts": round(power["watts"], 1), "power_samples": power["samples"],
              "joules_per_1000_tokens": round(energy / tokens * 1000, 2) if tokens else math.nan,
              "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
              if args.device == "cuda" else None}
    print(f"  batch {batch_size}: {result['tokens_per_second']:,.0f} tokens/s over {result['seconds']} s"
          f" ({rows} prompts, {passes} full passes), batch p50 {result['batch_ms']['p50']} ms"
          f" p95 {result['batch_ms']['p95']} ms, GPU {result['gpu_utilization_percent']} % {result['gpu_watts']} W,"
          f" {result['joules_per_1000_tokens']} J / 1k tokens, peak {result['peak_gpu_memory_gib']} GiB", flush=True)
    return result


def padding(lengths, batch_size):
    padded = 0
    for i in range(0, len(lengths), batch_size):
        chunk = lengths[i:i + batch_size]
        padded += max(chunk) * len(chunk)
    return {"batch_size": batch_size, "padded_tokens": padded, "real_tokens": sum(lengths),
            "padding_fraction": round(1 - sum(lengths) / padded, 3)}


def table(results):
    lines = ["| model | batch | prompts timed | tokens/s | prompts/s | batch p50 / p95 ms | GPU util % | GPU W"
             " | J / 1k tokens | peak GiB | run s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for model in results["models"]:
        for run in model["runs"]:
            if "error" in run:
                lines.append(f"| {model['model']} | {run['batch_size']} | {run['error']} | | | | | | | | |")
                continue
            lines.append(
                f"| {model['model']} | {run['batch_size']} | {run['prompts_timed']:,} | {run['tokens_per_second']:,.0f}"
                f" | {run['prompts_per_second']:,.1f} | {run['batch_ms']['p50']:,.0f} / {run['batch_ms']['p95']:,.0f}"
                f" | {run['gpu_utilization_percent']:.0f} | {run['gpu_watts']:.0f} | {run['joules_per_1000_tokens']:.1f}"
                f" | {run['peak_gpu_memory_gib']} | {run['seconds']:.1f} |")
    return "\n".join(lines)


def markdown(results):
    v = results["versions"]
    a = results["arguments"]
    lengths = results["prompt_tokens"]
    best = ", ".join(f"{m['model']} {m['best']['tokens_per_second']:,.0f} tokens/s at batch {m['best']['batch_size']}"
                     for m in results["models"] if m.get("best"))
    return "\n".join([
        f"## transformers model.generate baseline ({v['gpu']})",
        "",
        f"Written by benchmarks/generate/hf_generate.py, {results['date']}; torch {v['torch']} (CUDA {v['cuda']}),"
        f" transformers {v['transformers']}, driver {v['driver']}; attention {results['attention']}; {a['dtype']}.",
        f"{a['new_tokens']} greedy new tokens per prompt (no end-of-sequence token, min_new_tokens = max_new_tokens);"
        f" {len(results['prompt_tokens_all'])} prompts of prompts-2048.txt (SentenceData.body(0 .. 2047)) in input"
        f" order, left-padded, tokenized with tokenizer.json through {results['tokenizer']}. Timed per batch from"
        f" texts to decoded texts; one untimed warm-up batch, then passes over the prompts for at least"
        f" {a['min_seconds']} s" + (f", ending at the first batch past {a['max_seconds']} s" if a["max_seconds"] else "")
        + ". GPU utilization and power: nvidia-smi utilization.gpu and power.draw every 100 ms, mean over the run;"
        " energy = mean power x time.",
        "",
        f"Prompt tokens: min {lengths['min']}, p50 {lengths['p50']}, p90 {lengths['p90']}, p99 {lengths['p99']},"
        f" max {lengths['max']}, mean {lengths['mean']}.",
        "",
        table(results),
        "",
        f"Best: {best}.",
        ""])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="gpt2-124m,qwen-0.5b")
    parser.add_argument("--batch-sizes", default="32,64,128,256")
    parser.add_argument("--max-batch-size", type=int, default=1024, help="growth limit (0: no growth)")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--max-seconds", type=float, default=0.0, help="0: whole passes over the prompts")
    parser.add_argument("--prompts", default=os.path.join(HERE, "prompts-2048.txt"))
    parser.add_argument("--tokenizer", default=decoders.default_tokenizer())
    parser.add_argument("--attn-implementation", default="sdpa")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "fp32"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "versions": versions(),
               "arguments": vars(args), "models": []}
    print(json.dumps(results["versions"]), flush=True)
    with open(args.prompts, encoding="utf-8") as source:
        prompts = [line.rstrip("\n") for line in source if line.strip()]
    tokenizer = Tokenizer(args.tokenizer)
    results["tokenizer"] = tokenizer.kind
    token_ids = tokenizer.ids(prompts)
    lengths = [len(ids) for ids in token_ids]
    results["prompt_tokens"] = distribution(lengths)
    results["prompt_tokens_all"] = lengths
    print(f"{len(prompts)} prompts, tokens {results['prompt_tokens']} ({tokenizer.kind})", flush=True)
    sampler = PowerSampler()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    results["padding"] = [padding(lengths, size) for size in sorted(set(sizes + [sizes[-1] * 2 ** k for k in range(1, 6)]))
                          if size <= len(prompts)]
    try:
        for name in args.models.split(","):
            name = name.strip()
            shape = SHAPES[name]
            largest_id = max(max(ids) for ids in token_ids)
            if largest_id >= shape["vocab"] or max(lengths) + args.new_tokens > shape["positions"]:
                raise SystemExit(f"{name}: token id {largest_id} or length {max(lengths)} + {args.new_tokens}"
                                 f" outside the model's {shape['vocab']} tokens / {shape['positions']} positions")
            began = time.perf_counter()
            model, attention = prepare_model(name, args)
            results["attention"] = attention
            entry = {"model": name, "shape": shape, "class": type(model).__name__, "attention": attention,
                     "parameters": decoders.parameter_count(model), "fingerprint": decoders.fingerprint(model),
                     "build_seconds": round(time.perf_counter() - began, 2), "runs": []}
            print(f"{name}: {type(model).__name__}, {entry['parameters']:,} parameters, fingerprint"
                  f" {entry['fingerprint']}, attention {attention}, built in {entry['build_seconds']} s", flush=True)
            queue = list(sizes)
            while queue:
                size = queue.pop(0)
                try:
                    entry["runs"].append(measure(model, tokenizer, prompts, size, args, sampler))
                except torch.cuda.OutOfMemoryError:
                    entry["runs"].append({"batch_size": size, "error": "out of GPU memory"})
                    print(f"  batch {size}: out of GPU memory", flush=True)
                    torch.cuda.empty_cache()
                    break
                done = [r for r in entry["runs"] if "error" not in r]
                if (not queue and args.max_batch_size and size * 2 <= min(args.max_batch_size, len(prompts))
                        and len(done) >= 2 and done[-1]["tokens_per_second"] >= 1.1 * done[-2]["tokens_per_second"]):
                    queue.append(size * 2)
            done = [r for r in entry["runs"] if "error" not in r]
            entry["best"] = max(done, key=lambda r: r["tokens_per_second"]) if done else None
            results["models"].append(entry)
            del model
            if args.device == "cuda":
                torch.cuda.empty_cache()
    finally:
        sampler.close()
        os.makedirs(args.out, exist_ok=True)
        slug = gpu_slug(results["versions"]["gpu"])
        with open(os.path.join(args.out, f"results-hf-{slug}.json"), "w") as out:
            json.dump(finite(results), out, indent=1)
        if results["models"]:
            text = markdown(results)
            with open(os.path.join(args.out, f"results-hf-{slug}.md"), "w") as out:
                out.write(text)
            print(text, flush=True)


if __name__ == "__main__":
    main()
