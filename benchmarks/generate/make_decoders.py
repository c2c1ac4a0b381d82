#!/usr/bin/env python3
"""Writes issue 30's benchmark decoders: decoder-only ONNX models of real size with random weights, in fp16, the
key/value cache as explicit graph inputs and outputs, and checks each before and after the export.

  gpt2-124m: GPT-2 124M (12 layers, 12 heads of 64, 768 wide, vocabulary 50,257, 1,024 positions) in the layout
             onnxruntime.transformers writes: input_ids, position_ids, attention_mask int32; past_N / present_N
             float16 [2, batch, 12, past|total, 64]; logits float16 [batch, seq, 50257].
  qwen-0.5b: a Qwen2-0.5B shape (24 layers, 896 wide, 14 query heads and 2 key/value heads of 64, MLP 4,864,
             vocabulary 151,936, tied embeddings, rope theta 1e6) in Optimum's layout: input_ids, attention_mask,
             position_ids int64; past_key_values.N.key|value / present.N.key|value float16 [batch, 2, past|total, 64];
             logits float16 [batch, seq, 151936]. Standard attention in plain ONNX operators (no GroupQueryAttention):
             left padding with mask 0, positions cumsum(mask) - 1.

Weights: the Hugging Face model built from a hand-written config after torch.manual_seed(decoders.SEED) (the one
hf_generate.py builds), exported through decoders.Gpt2Decoder / Qwen2Decoder, which share its tensors. Checks, per
model: the module's cached, left-padded batch decode against the Hugging Face model's own forward pass on each
prompt alone without a cache (every step, teacher-forced on the same tokens); onnx.checker; the graph's signature;
and, where the onnxruntime Python package is installed, the ONNX model's cached batch decode against the module's.

Writes OUT_DIR/<model>/model.onnx, tokenizer.json (a copy), config.json (Hugging Face's), decoder.json (shape,
seed, weight fingerprint, signature, checks, timings), and a summary JSON (--report).

  python3 make_decoders.py --out-dir /tmp/decoders                # both models, on the GPU
  python3 make_decoders.py --models tiny-gpt2,tiny-qwen --device cpu --dtype fp32 --no-hf --out-dir /tmp/tiny
  python3 make_decoders.py --models gpt2-124m --device cpu --dtype fp32 --no-hf --untied-head --out-dir /tmp/gen-bench
                                                                  # GenerateBenchmark's CPU decoder
"""

import argparse
import inspect
import json
import os
import shutil
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decoders  # noqa: E402
from decoders import END_OF_TEXT, SHAPES, Signature  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# Prompts of the checks: token ids of different lengths, one batch, left-padded.
CHECK_LENGTHS = (7, 2, 5, 11)
CHECK_STEPS = 4


def versions():
    found = {"python": sys.version.split()[0], "torch": torch.__version__,
             "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    for module in ("transformers", "onnx", "onnxruntime", "tokenizers", "numpy"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - absent or broken: say so
            found[module] = None
    try:
        import onnxruntime
        found["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except Exception:  # noqa: BLE001
        pass
    return found


def check_prompts(vocab_limit):
    generator = torch.Generator().manual_seed(7)
    return [torch.randint(0, vocab_limit, (n,), generator=generator).tolist() for n in CHECK_LENGTHS]


def cached_decode(step, signature, prompts, steps, dtype, device, forced=None):
    """Greedy (or forced) decode of a left-padded batch through step(args) -> (logits, presents)."""
    ids, mask, positions = decoders.left_pad(prompts, END_OF_TEXT, device)
    past = signature.empty_past(len(prompts), 0, dtype, device)
    tokens, last_logits = [], []
    for index in range(steps):
        logits, past = step(signature.arguments(ids, positions, mask, past))
        last = logits[:, -1, :].float().cpu()
        last_logits.append(last)
        chosen = forced[index] if forced is not None else last.argmax(-1)
        tokens.append(chosen)
        ids = chosen[:, None].to(device)
        positions = positions[:, -1:] + 1
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return tokens, last_logits


def alone_uncached(forward_last, prompts, forced, device):
    """Each prompt alone, the whole sequence each step (no cache, no padding): last logits per step [rows]."""
    per_step = [[] for _ in forced]
    for row, prompt in enumerate(prompts):
        sequence = list(prompt)
        for index in range(len(forced)):
            ids = torch.tensor([sequence], dtype=torch.int64, device=device)
            mask = torch.ones_like(ids)
            positions = torch.arange(len(sequence), device=device)[None, :]
            per_step[index].append(forward_last(ids, positions, mask)[0].float().cpu())
            sequence.append(int(forced[index][row]))
    return [torch.stack(rows) for rows in per_step]


def compare(name, reference, candidate, dtype):
    """Max abs difference and argmax agreement of two lists of [rows, vocab] logits."""
    worst, scale, agree, total = 0.0, 0.0, 0, 0
    for ref, got in zip(reference, candidate):
        worst = max(worst, (ref - got).abs().max().item())
        scale = max(scale, ref.abs().max().item())
        agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
        total += ref.shape[0]
    tolerance = (0.05 + 0.02 * scale) if dtype == torch.float16 else (1e-3 + 1e-4 * scale)
    result = {"check": name, "max_abs_diff": round(worst, 6), "max_abs_logit": round(scale, 4),
              "tolerance": round(tolerance, 6), "argmax_agreement": f"{agree}/{total}",
              "passed": worst <= tolerance}
    print(f"  check {name}: max |diff| {worst:.5f} (|logit| up to {scale:.3f}, tolerance {tolerance:.4f}),"
          f" argmax {agree}/{total}: {'ok' if result['passed'] else 'MISMATCH'}", flush=True)
    return result


def named_arguments_module(decoder, count):
    """The decoder behind a forward with one named parameter per graph input (no *args), for torch.export."""
    names = [f"input_{i}" for i in range(count)]
    namespace = {}
    exec(f"def forward(self, {', '.join(names)}):\n    return self.decoder({', '.join(names)})\n", namespace)
    wrapper_class = type("NamedArgumentsDecoder", (torch.nn.Module,), {"forward": namespace["forward"]})
    wrapper = wrapper_class()
    wrapper.decoder = decoder
    return wrapper, names


def export(decoder, signature, path, dtype, device, opset, last_logits_only):
    batch, seq, past_length = 2, 3, 4
    ids = torch.randint(0, 100, (batch, seq), device=device)
    mask = torch.ones((batch, past_length + seq), dtype=torch.int64, device=device)
    positions = torch.arange(past_length, past_length + seq, device=device)[None, :].expand(batch, seq)
    past = [p.normal_(0, 0.1) for p in signature.empty_past(batch, past_length, dtype, device)]
    arguments = signature.arguments(ids, positions, mask, past)
    axes = signature.dynamic_axes()
    if last_logits_only:
        axes["logits"] = {0: "batch_size"}
    module, parameter_names = named_arguments_module(decoder, len(arguments))
    options = dict(input_names=signature.input_names, output_names=signature.output_names, dynamic_axes=axes,
                   opset_version=opset, do_constant_folding=True)
    accepted = inspect.signature(torch.onnx.export).parameters
    if "dynamo" in accepted:
        options["dynamo"] = False
    try:
        with torch.no_grad():
            torch.onnx.export(module, arguments, path, **options)
        return "torch.onnx.export (TorchScript exporter, dynamo=False)"
    except Exception as error:  # noqa: BLE001 - try the other exporter, then give up with both errors
        if "dynamo" not in accepted:
            raise
        print(f"  the TorchScript exporter failed ({type(error).__name__}: {error}); trying dynamo=True", flush=True)
    # torch.export: every named axis dynamic (Dim.DYNAMIC lets it derive total = past + sequence itself).
    dynamic = torch.export.Dim.DYNAMIC
    shapes = {parameter: {axis: dynamic for axis in axes.get(name, {})}
              for parameter, name in zip(parameter_names, signature.input_names)}
    options = dict(input_names=signature.input_names, output_names=signature.output_names, dynamic_shapes=shapes,
                   opset_version=max(opset, 18), dynamo=True, external_data=False, optimize=True)
    with torch.no_grad():
        program = torch.onnx.export(module, arguments, None, **{k: v for k, v in options.items() if k in accepted})
    program.save(path, external_data=False)
    return "torch.onnx.export (dynamo=True)"


def graph_signature(path):
    import onnx
    model = onnx.load(path, load_external_data=False)

    def describe(value):
        tensor = value.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim]
        return {"name": value.name, "type": onnx.TensorProto.DataType.Name(tensor.elem_type).lower(), "shape": dims}

    operators = sorted({node.op_type for node in model.graph.node})
    return {"inputs": [describe(v) for v in model.graph.input],
            "outputs": [describe(v) for v in model.graph.output],
            "opset": [{"domain": o.domain or "ai.onnx", "version": o.version} for o in model.opset_import],
            "operators": operators, "nodes": len(model.graph.node)}


def ort_step(session, signature):
    import numpy

    def step(arguments):
        feeds = {}
        for name, value in zip(signature.input_names, arguments):
            feeds[name] = value.detach().cpu().numpy()
        outputs = session.run(None, feeds)
        logits = torch.from_numpy(numpy.asarray(outputs[0]).astype(numpy.float32))
        presents = [torch.from_numpy(numpy.asarray(o)) for o in outputs[1:]]
        return logits, presents
    return step


def make(name, args, dtype, device):
    shape = SHAPES[name]
    signature = Signature(name)
    folder = os.path.join(args.out_dir, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.onnx")
    record = {"model": name, "shape": shape, "seed": decoders.SEED, "dtype": args.dtype, "layout": signature.layout,
              "pad_token_id": END_OF_TEXT, "bos_token_id": END_OF_TEXT, "eos_token_id": END_OF_TEXT,
              "position_ids": "cumsum(attention_mask) - 1 at real tokens (padding: any, e.g. 0)",
              "padding_side": "left", "last_logits_only": args.last_logits_only, "checks": [], "seconds": {}}
    print(f"{name}: {shape}", flush=True)
    started = time.perf_counter()

    hf_model = None
    if args.no_hf:
        weights, inv_freq = decoders.random_weights(name, dtype), None
        record["weights"] = "decoders.random_weights (no transformers)"
        if args.untied_head:
            # With the output projection tied to an embedding of std 1, each position's logits are led by
            # its own input token, so greedy decoding repeats the prompt's last token forever.
            generator = torch.Generator().manual_seed(decoders.SEED + 1)
            weights["lm_head.weight"] = (torch.randn(shape["vocab"], shape["hidden"], generator=generator)
                                         / shape["hidden"] ** 0.5).to(dtype)
            record["weights"] += ", untied lm_head.weight N(0, 1/hidden), seed SEED + 1"
        weights = {k: v.to(device) for k, v in weights.items()}
    else:
        hf_model, attention = decoders.build_hf_model(name, device, dtype, args.attn_implementation)
        weights, inv_freq = decoders.hf_weights(hf_model)
        record["weights"] = f"{type(hf_model).__name__} from a hand-written config, attn_implementation={attention}"
        hf_model.config.save_pretrained(folder)
        if inv_freq is not None and shape["family"] == "qwen2":
            expected = decoders.default_inv_freq(name).to(inv_freq.device)
            record["rope_theta_checked"] = bool(torch.allclose(inv_freq, expected, rtol=1e-5))
            if not record["rope_theta_checked"]:
                print(f"  warning: the model's rotary frequencies are not theta={shape['rope_theta']}'s", flush=True)
    decoder = decoders.onnx_decoder(name, weights, inv_freq, args.last_logits_only).to(device).eval()
    record["parameters"] = decoders.parameter_count(decoder)
    record["fingerprint"] = decoders.fingerprint(hf_model if hf_model is not None else decoder)
    record["seconds"]["build"] = round(time.perf_counter() - started, 2)
    print(f"  {record['parameters']:,} parameters, fingerprint {record['fingerprint']},"
          f" built in {record['seconds']['build']} s", flush=True)

    # The module against an independent reference: each prompt alone, whole sequence, no cache.
    phase = time.perf_counter()
    prompts = check_prompts(min(shape["vocab"], END_OF_TEXT))

    def module_step(arguments):
        with torch.no_grad():
            outputs = decoder(*arguments)
        return outputs[0], list(outputs[1:])

    tokens, module_logits = cached_decode(module_step, signature, prompts, CHECK_STEPS, dtype, device)
    if hf_model is not None:
        def reference_last(ids, positions, mask):
            with torch.no_grad():
                return hf_model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False).logits[:, -1, :]
        reference_name = "module (cached, left-padded batch) vs transformers forward (alone, no cache)"
    else:
        def reference_last(ids, positions, mask):
            arguments = signature.arguments(ids, positions, mask, signature.empty_past(1, 0, dtype, device))
            with torch.no_grad():
                return decoder(*arguments)[0][:, -1, :]
        reference_name = "module (cached, left-padded batch) vs module (alone, no cache)"
    reference = alone_uncached(reference_last, prompts, tokens, device)
    record["checks"].append(compare(reference_name, reference, module_logits, dtype))
    record["check_prompts"] = prompts
    record["check_tokens"] = [t.tolist() for t in tokens]
    record["seconds"]["check_module"] = round(time.perf_counter() - phase, 2)

    phase = time.perf_counter()
    record["exporter"] = export(decoder, signature, path, dtype, device, args.opset, args.last_logits_only)
    record["seconds"]["export"] = round(time.perf_counter() - phase, 2)
    record["bytes"] = os.path.getsize(path)
    print(f"  exported {path} ({record['bytes'] / 1e6:.1f} MB) in {record['seconds']['export']} s"
          f" with {record['exporter']}", flush=True)

    phase = time.perf_counter()
    import onnx
    onnx.checker.check_model(path)
    record["signature"] = graph_signature(path)
    record["seconds"]["onnx_checker"] = round(time.perf_counter() - phase, 2)
    names_in = [v["name"] for v in record["signature"]["inputs"]]
    names_out = [v["name"] for v in record["signature"]["outputs"]]
    if names_in != signature.input_names or names_out != signature.output_names:
        raise SystemExit(f"{name}: the graph's names are not the layout's: {names_in} -> {names_out}")
    for value in record["signature"]["inputs"] + record["signature"]["outputs"]:
        print(f"    {value['name']}: {value['type']} {value['shape']}", flush=True)
    print(f"  onnx.checker ok; operators: {', '.join(record['signature']['operators'])}", flush=True)

    del hf_model
    if device == "cuda":
        torch.cuda.empty_cache()
    if args.skip_ort:
        record["ort"] = "skipped (--skip-ort)"
    else:
        phase = time.perf_counter()
        try:
            import onnxruntime
            available = onnxruntime.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
            if not args.ort_cuda:
                providers = ["CPUExecutionProvider"]
            session = onnxruntime.InferenceSession(path, providers=providers)
            record["ort"] = f"onnxruntime {onnxruntime.__version__}, {session.get_providers()[0]}"
            _, ort_logits = cached_decode(ort_step(session, signature), signature, prompts, CHECK_STEPS, dtype,
                                          "cpu", forced=tokens)
            record["checks"].append(compare(f"ONNX model on {record['ort']} vs module (cached batch)",
                                            module_logits, ort_logits, dtype))
            del session
        except ImportError:
            record["ort"] = "onnxruntime is not installed: checked with onnx.checker and the signature only"
            print(f"  {record['ort']}", flush=True)
        except Exception as error:  # noqa: BLE001 - report, do not hide the model
            record["ort"] = f"onnxruntime could not run the model: {type(error).__name__}: {error}"[:2000]
            print(f"  {record['ort']}", flush=True)
        record["seconds"]["check_ort"] = round(time.perf_counter() - phase, 2)

    shutil.copyfile(args.tokenizer, os.path.join(folder, "tokenizer.json"))
    record["seconds"]["total"] = round(time.perf_counter() - started, 2)
    with open(os.path.join(folder, "decoder.json"), "w") as out:
        json.dump(record, out, indent=1)
    print(f"  {name} done in {record['seconds']['total']} s", flush=True)
    del decoder, weights
    if device == "cuda":
        torch.cuda.empty_cache()
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="gpt2-124m,qwen-0.5b", help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--out-dir", default="/tmp/sparkinfer-decoders")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "fp32"])
    parser.add_argument("--tokenizer", default=decoders.default_tokenizer())
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--attn-implementation", default="sdpa", help="of the Hugging Face reference model")
    parser.add_argument("--last-logits-only", action="store_true",
                        help="logits [batch, 1, vocab] of the last position only (not Optimum's layout)")
    parser.add_argument("--no-hf", action="store_true", help="random weights without transformers (quick checks)")
    parser.add_argument("--untied-head", action="store_true",
                        help="with --no-hf: a random output projection of its own, so that greedy tokens depend on"
                             " the context (tied to the std-1 embedding, each step repeats its input token)")
    parser.add_argument("--skip-ort", action="store_true", help="no onnxruntime check")
    parser.add_argument("--ort-cuda", action="store_true", help="check on ORT's CUDA provider where installed")
    parser.add_argument("--report", default=None, help="summary JSON (default OUT_DIR/make_decoders.json)")
    args = parser.parse_args()
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    started = time.perf_counter()
    summary = {"versions": versions(), "arguments": vars(args), "models": []}
    print(json.dumps(summary["versions"]), flush=True)
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.models.split(","):
        summary["models"].append(make(name.strip(), args, dtype, args.device))
    summary["seconds"] = round(time.perf_counter() - started, 2)
    report = args.report or os.path.join(args.out_dir, "make_decoders.json")
    with open(report, "w") as out:
        json.dump(summary, out, indent=1)
    failed = [c["check"] for m in summary["models"] for c in m["checks"] if not c["passed"]]
    print(f"made {len(summary['models'])} decoders in {summary['seconds']} s; report {report}", flush=True)
    if failed:
        print("FAILED checks: " + "; ".join(failed), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
