"""Decoder shapes, their random-weight Hugging Face models, and the ONNX export modules (issue 30's GPU benchmark).

Shared by make_decoders.py (the ONNX files) and hf_generate.py (the Hugging Face baseline), so both use the
same weights: a model is built from a hand-written config (no hub download) after torch.manual_seed(SEED),
in float32 on the CPU, then cast to float16.

The ONNX graphs are written from two small torch modules, Gpt2Decoder and Qwen2Decoder, that hold the very
weight tensors of the Hugging Face model (shared, not copied) and compute the same function with the cache as
plain graph inputs and outputs. They use plain torch operators only (no custom or contrib ops) and do not go
through the Hugging Face attention and mask code, whose internals (Cache objects, mask builders that skip the
mask when it looks all-ones at trace time, attention back ends) change from release to release; make_decoders.py
checks each module against the Hugging Face model's own forward pass before it exports.

Attention rule inside the graphs (left padding, as the consumer feeds them): a query at position q of the
current step (q counts from past_seq) sees key k when k <= q and attention_mask[k] == 1; every query also sees
its own key, so padded positions never have a fully masked row (no NaN in the cache); real tokens never see
padded keys. Position ids come from the caller (the consumer passes cumsum(mask) - 1, 0 at padding).
"""

import hashlib
import math
import os
import struct

import torch
from torch import nn
import torch.nn.functional as F

SEED = 20261208

# The benchmark's shapes, and two tiny ones for quick checks (same layouts, few layers).
SHAPES = {
    "gpt2-124m": dict(family="gpt2", layers=12, hidden=768, heads=12, kv_heads=12, head_dim=64,
                      intermediate=3072, vocab=50257, positions=1024),
    "qwen-0.5b": dict(family="qwen2", layers=24, hidden=896, heads=14, kv_heads=2, head_dim=64,
                      intermediate=4864, vocab=151936, positions=32768, rope_theta=1000000.0, rms_eps=1e-6),
    "tiny-gpt2": dict(family="gpt2", layers=2, hidden=64, heads=4, kv_heads=4, head_dim=16,
                      intermediate=256, vocab=50257, positions=1024),
    "tiny-qwen": dict(family="qwen2", layers=2, hidden=64, heads=4, kv_heads=2, head_dim=16,
                      intermediate=128, vocab=50304, positions=4096, rope_theta=1000000.0, rms_eps=1e-6),
}

# GPT-2's <|endoftext|>: bos, eos and pad of the tokenizer both models use.
END_OF_TEXT = 50256


def default_tokenizer():
    """tokenizer.json beside these scripts (where a device run copies it), else the shared test decoder's."""
    here = os.path.dirname(os.path.abspath(__file__))
    beside = os.path.join(here, "tokenizer.json")
    if os.path.isfile(beside):
        return beside
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "models", "decoders",
                                         "tiny-random-gpt2-fp32", "tokenizer.json"))


def hf_config(name):
    """The Hugging Face config of a shape, built by hand."""
    shape = SHAPES[name]
    if shape["family"] == "gpt2":
        from transformers import GPT2Config
        return GPT2Config(vocab_size=shape["vocab"], n_positions=shape["positions"], n_embd=shape["hidden"],
                          n_layer=shape["layers"], n_head=shape["heads"], n_inner=shape["intermediate"],
                          activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                          bos_token_id=END_OF_TEXT, eos_token_id=END_OF_TEXT, pad_token_id=END_OF_TEXT)
    from transformers import Qwen2Config
    common = dict(vocab_size=shape["vocab"], hidden_size=shape["hidden"], intermediate_size=shape["intermediate"],
                  num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
                  num_key_value_heads=shape["kv_heads"], hidden_act="silu",
                  max_position_embeddings=shape["positions"], rms_norm_eps=shape["rms_eps"],
                  tie_word_embeddings=True, use_sliding_window=False, max_window_layers=shape["layers"],
                  bos_token_id=END_OF_TEXT, eos_token_id=END_OF_TEXT, pad_token_id=END_OF_TEXT)
    try:  # transformers 5: the rope parameters in one dict
        return Qwen2Config(rope_parameters={"rope_type": "default", "rope_theta": shape["rope_theta"]}, **common)
    except TypeError:  # transformers 4
        return Qwen2Config(rope_theta=shape["rope_theta"], **common)


def build_hf_model(name, device="cuda", dtype=torch.float16, attn_implementation="sdpa", seed=SEED):
    """The random-weight Hugging Face causal LM of a shape: (model, attention implementation used)."""
    from transformers import AutoModelForCausalLM
    config = hf_config(name)
    used = attn_implementation
    torch.manual_seed(seed)
    try:
        model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)
    except (ValueError, ImportError) as error:
        if attn_implementation != "sdpa":
            raise
        print(f"attn_implementation='sdpa' refused ({error}); using 'eager'", flush=True)
        used = "eager"
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model = model.to(dtype=dtype).to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, used


def fingerprint(module):
    """A short hash of a module's parameter values (shared tensors counted once), to show two programs built the same weights."""
    digest = hashlib.sha256()
    seen = set()
    with torch.no_grad():
        for name, parameter in sorted(module.named_parameters(), key=lambda item: item[0]):
            if parameter.data_ptr() in seen:
                continue
            seen.add(parameter.data_ptr())
            values = parameter.detach().double()
            digest.update(struct.pack("<qdd", values.numel(), values.sum().item(), values.abs().sum().item()))
    return digest.hexdigest()[:16]


def parameter_count(module):
    seen = set()
    total = 0
    for parameter in module.parameters():
        if parameter.data_ptr() not in seen:
            seen.add(parameter.data_ptr())
            total += parameter.numel()
    return total


def random_weights(name, dtype=torch.float32, seed=SEED):
    """A state dict with Hugging Face's names and random values, for checks where transformers is not installed."""
    shape = SHAPES[name]
    generator = torch.Generator().manual_seed(seed)

    # Wide enough that tokens depend on the input (0.02, Hugging Face's, makes small models near constant).
    def normal(*size, std=None):
        std = std if std is not None else 1.0 / math.sqrt(size[-1] if len(size) > 1 else shape["hidden"])
        return (torch.randn(*size, generator=generator) * std).to(dtype)

    def near_one(size):
        return (1 + torch.randn(size, generator=generator) * 0.1).to(dtype)

    h, n = shape["hidden"], shape["intermediate"]
    weights = {}
    if shape["family"] == "gpt2":
        weights["transformer.wte.weight"] = normal(shape["vocab"], h, std=1.0)
        weights["transformer.wpe.weight"] = normal(shape["positions"], h, std=0.5)
        for i in range(shape["layers"]):
            p = f"transformer.h.{i}."
            weights[p + "ln_1.weight"], weights[p + "ln_1.bias"] = near_one(h), normal(h)
            weights[p + "attn.c_attn.weight"], weights[p + "attn.c_attn.bias"] = normal(h, 3 * h), normal(3 * h)
            weights[p + "attn.c_proj.weight"], weights[p + "attn.c_proj.bias"] = normal(h, h), normal(h)
            weights[p + "ln_2.weight"], weights[p + "ln_2.bias"] = near_one(h), normal(h)
            weights[p + "mlp.c_fc.weight"], weights[p + "mlp.c_fc.bias"] = normal(h, n), normal(n)
            weights[p + "mlp.c_proj.weight"], weights[p + "mlp.c_proj.bias"] = normal(n, h), normal(h)
        weights["transformer.ln_f.weight"], weights["transformer.ln_f.bias"] = near_one(h), normal(h)
    else:
        d, kv = shape["head_dim"], shape["kv_heads"]
        weights["model.embed_tokens.weight"] = normal(shape["vocab"], h, std=1.0)
        for i in range(shape["layers"]):
            p = f"model.layers.{i}."
            weights[p + "input_layernorm.weight"] = near_one(h)
            weights[p + "self_attn.q_proj.weight"] = normal(shape["heads"] * d, h)
            weights[p + "self_attn.q_proj.bias"] = normal(shape["heads"] * d, std=0.5)
            weights[p + "self_attn.k_proj.weight"] = normal(kv * d, h)
            weights[p + "self_attn.k_proj.bias"] = normal(kv * d, std=0.5)
            weights[p + "self_attn.v_proj.weight"] = normal(kv * d, h)
            weights[p + "self_attn.v_proj.bias"] = normal(kv * d, std=0.5)
            weights[p + "self_attn.o_proj.weight"] = normal(h, shape["heads"] * d)
            weights[p + "post_attention_layernorm.weight"] = near_one(h)
            weights[p + "mlp.gate_proj.weight"] = normal(n, h)
            weights[p + "mlp.up_proj.weight"] = normal(n, h)
            weights[p + "mlp.down_proj.weight"] = normal(h, n)
        weights["model.norm.weight"] = near_one(h)
    return weights


def default_inv_freq(name):
    shape = SHAPES[name]
    d = shape["head_dim"]
    return 1.0 / (shape["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))


def hf_weights(model):
    """The Hugging Face model's parameters by name (the tensors themselves) and its rotary inverse frequencies."""
    weights = dict(model.named_parameters(remove_duplicate=False))
    inv_freq = None
    for module_name, buffer in model.named_buffers():
        if module_name.endswith("inv_freq"):
            inv_freq = buffer.detach().float()
            break
    return weights, inv_freq


def _parameter(tensor):
    return tensor if isinstance(tensor, nn.Parameter) else nn.Parameter(tensor, requires_grad=False)


class _Layer(nn.Module):
    def __init__(self, **tensors):
        super().__init__()
        for key, tensor in tensors.items():
            self.register_parameter(key, _parameter(tensor))


def _output_head(lm_head, embedding):
    """The output projection where it is not the (tied) input embedding, else None."""
    if lm_head is None or lm_head.data_ptr() == embedding.data_ptr():
        return None
    return _parameter(lm_head)


def attention_bias(attention_mask, query_length):
    """[batch, query, total] float32: 0 where a query may see a key, -1e9 elsewhere (see the module docstring)."""
    total = attention_mask.shape[1]
    key_index = torch.arange(total, device=attention_mask.device)
    query_index = torch.arange(query_length, device=attention_mask.device) + (total - query_length)
    causal = key_index[None, :] <= query_index[:, None]
    own = key_index[None, :] == query_index[:, None]
    real = attention_mask[:, None, :] > 0
    allowed = (causal[None, :, :] & real) | own[None, :, :]
    return (allowed.to(torch.float32) - 1.0) * 1e9


class Gpt2Decoder(nn.Module):
    """GPT-2 with the onnxruntime.transformers cache layout.

    forward(input_ids [b, s], position_ids [b, s], attention_mask [b, t], past_0 .. past_{L-1} [2, b, heads, p, d])
    -> (logits [b, s, vocab], present_0 .. present_{L-1} [2, b, heads, t, d]), t = p + s.
    """

    def __init__(self, name, weights, last_logits_only=False):
        super().__init__()
        shape = SHAPES[name]
        self.heads, self.head_dim, self.hidden = shape["heads"], shape["head_dim"], shape["hidden"]
        self.last_logits_only = last_logits_only
        self.wte = _parameter(weights["transformer.wte.weight"])
        self.wpe = _parameter(weights["transformer.wpe.weight"])
        self.layers = nn.ModuleList()
        for i in range(shape["layers"]):
            p = f"transformer.h.{i}."
            self.layers.append(_Layer(
                ln1_w=weights[p + "ln_1.weight"], ln1_b=weights[p + "ln_1.bias"],
                attn_w=weights[p + "attn.c_attn.weight"], attn_b=weights[p + "attn.c_attn.bias"],
                proj_w=weights[p + "attn.c_proj.weight"], proj_b=weights[p + "attn.c_proj.bias"],
                ln2_w=weights[p + "ln_2.weight"], ln2_b=weights[p + "ln_2.bias"],
                fc_w=weights[p + "mlp.c_fc.weight"], fc_b=weights[p + "mlp.c_fc.bias"],
                out_w=weights[p + "mlp.c_proj.weight"], out_b=weights[p + "mlp.c_proj.bias"]))
        self.lnf_w = _parameter(weights["transformer.ln_f.weight"])
        self.lnf_b = _parameter(weights["transformer.ln_f.bias"])
        self.head = _output_head(weights.get("lm_head.weight"), self.wte)

    @staticmethod
    def _gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))

    def forward(self, input_ids, position_ids, attention_mask, *past):
        batch = input_ids.shape[0]
        seq = input_ids.shape[1]
        h, heads, d = self.hidden, self.heads, self.head_dim
        x = F.embedding(input_ids.long(), self.wte) + F.embedding(position_ids.long(), self.wpe)
        bias = attention_bias(attention_mask, seq)[:, None, :, :]
        scale = 1.0 / math.sqrt(d)
        presents = []
        for i, layer in enumerate(self.layers):
            a = F.layer_norm(x, (h,), layer.ln1_w, layer.ln1_b, 1e-5)
            qkv = torch.matmul(a, layer.attn_w) + layer.attn_b
            q, k, v = qkv.split(h, dim=-1)
            q = q.reshape(batch, seq, heads, d).transpose(1, 2)
            k = k.reshape(batch, seq, heads, d).transpose(1, 2)
            v = v.reshape(batch, seq, heads, d).transpose(1, 2)
            k = torch.cat([past[i][0], k], dim=2)
            v = torch.cat([past[i][1], v], dim=2)
            presents.append(torch.stack([k, v]))
            scores = torch.matmul(q, k.transpose(-1, -2)).float() * scale + bias
            probs = torch.softmax(scores, dim=-1).to(v.dtype)
            o = torch.matmul(probs, v).transpose(1, 2).reshape(batch, seq, h)
            x = x + (torch.matmul(o, layer.proj_w) + layer.proj_b)
            m = F.layer_norm(x, (h,), layer.ln2_w, layer.ln2_b, 1e-5)
            m = self._gelu_new(torch.matmul(m, layer.fc_w) + layer.fc_b)
            x = x + (torch.matmul(m, layer.out_w) + layer.out_b)
        x = F.layer_norm(x, (h,), self.lnf_w, self.lnf_b, 1e-5)
        if self.last_logits_only:
            x = x[:, -1:, :]
        logits = F.linear(x, self.wte if self.head is None else self.head)
        return (logits, *presents)


class Qwen2Decoder(nn.Module):
    """Qwen2 (grouped-query attention, rotary positions, RMSNorm, SwiGLU) with Optimum's cache layout.

    forward(input_ids [b, s], attention_mask [b, t], position_ids [b, s],
            past_key_values.N.key, past_key_values.N.value [b, kv_heads, p, d] for N = 0 .. L-1, flattened)
    -> (logits [b, s, vocab], present.N.key, present.N.value [b, kv_heads, t, d] ...).
    Key/value heads are shared by broadcasting in the matmuls, not repeated.
    """

    def __init__(self, name, weights, inv_freq, last_logits_only=False):
        super().__init__()
        shape = SHAPES[name]
        self.heads, self.kv_heads, self.head_dim = shape["heads"], shape["kv_heads"], shape["head_dim"]
        self.hidden, self.eps = shape["hidden"], shape["rms_eps"]
        self.last_logits_only = last_logits_only
        self.embed = _parameter(weights["model.embed_tokens.weight"])
        self.register_buffer("inv_freq", inv_freq.float().to(self.embed.device), persistent=False)
        self.layers = nn.ModuleList()
        for i in range(shape["layers"]):
            p = f"model.layers.{i}."
            self.layers.append(_Layer(
                ln1=weights[p + "input_layernorm.weight"],
                q_w=weights[p + "self_attn.q_proj.weight"], q_b=weights[p + "self_attn.q_proj.bias"],
                k_w=weights[p + "self_attn.k_proj.weight"], k_b=weights[p + "self_attn.k_proj.bias"],
                v_w=weights[p + "self_attn.v_proj.weight"], v_b=weights[p + "self_attn.v_proj.bias"],
                o_w=weights[p + "self_attn.o_proj.weight"],
                ln2=weights[p + "post_attention_layernorm.weight"],
                gate=weights[p + "mlp.gate_proj.weight"], up=weights[p + "mlp.up_proj.weight"],
                down=weights[p + "mlp.down_proj.weight"]))
        self.norm = _parameter(weights["model.norm.weight"])
        self.head = _output_head(weights.get("lm_head.weight"), self.embed)

    def _rms(self, x, weight):
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * y.to(x.dtype)

    @staticmethod
    def _rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat([-x[..., half:], x[..., :half]], dim=-1)

    def forward(self, input_ids, attention_mask, position_ids, *past):
        batch = input_ids.shape[0]
        seq = input_ids.shape[1]
        kv, rep, d = self.kv_heads, self.heads // self.kv_heads, self.head_dim
        dtype = self.embed.dtype
        x = F.embedding(input_ids.long(), self.embed)
        freqs = position_ids.float()[:, :, None] * self.inv_freq[None, None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)  # [b, s, d]
        cos_q, sin_q = cos[:, None, None, :, :], sin[:, None, None, :, :]
        cos_k, sin_k = cos[:, None, :, :], sin[:, None, :, :]
        bias = attention_bias(attention_mask, seq)[:, None, None, :, :]
        scale = 1.0 / math.sqrt(d)
        presents = []
        for i, layer in enumerate(self.layers):
            a = self._rms(x, layer.ln1)
            q = F.linear(a, layer.q_w, layer.q_b).reshape(batch, seq, kv, rep, d).permute(0, 2, 3, 1, 4)
            k = F.linear(a, layer.k_w, layer.k_b).reshape(batch, seq, kv, d).transpose(1, 2)
            v = F.linear(a, layer.v_w, layer.v_b).reshape(batch, seq, kv, d).transpose(1, 2)
            q = q * cos_q + self._rotate_half(q) * sin_q
            k = k * cos_k + self._rotate_half(k) * sin_k
            k = torch.cat([past[2 * i], k], dim=2)
            v = torch.cat([past[2 * i + 1], v], dim=2)
            presents += [k, v]
            scores = torch.matmul(q, k[:, :, None, :, :].transpose(-1, -2)).float() * scale + bias
            probs = torch.softmax(scores, dim=-1).to(dtype)
            o = torch.matmul(probs, v[:, :, None, :, :])  # [b, kv, rep, s, d]
            o = o.permute(0, 3, 1, 2, 4).reshape(batch, seq, self.heads * d)
            x = x + F.linear(o, layer.o_w)
            m = self._rms(x, layer.ln2)
            x = x + F.linear(F.silu(F.linear(m, layer.gate)) * F.linear(m, layer.up), layer.down)
        x = self._rms(x, self.norm)
        if self.last_logits_only:
            x = x[:, -1:, :]
        logits = F.linear(x, self.embed if self.head is None else self.head)
        return (logits, *presents)


def onnx_decoder(name, weights, inv_freq=None, last_logits_only=False):
    if SHAPES[name]["family"] == "gpt2":
        return Gpt2Decoder(name, weights, last_logits_only)
    return Qwen2Decoder(name, weights, inv_freq if inv_freq is not None else default_inv_freq(name), last_logits_only)


class Signature:
    """Names, element types and symbolic shapes of a layout, and how to build its inputs."""

    def __init__(self, name):
        shape = SHAPES[name]
        self.name = name
        self.family = shape["family"]
        self.layers = shape["layers"]
        self.kv_heads = shape["kv_heads"]
        self.head_dim = shape["head_dim"]
        self.vocab = shape["vocab"]
        if self.family == "gpt2":
            self.layout = "onnxruntime.transformers GPT-2 (past_N / present_N)"
            self.index_type = torch.int32
            self.input_names = ["input_ids", "position_ids", "attention_mask"] + [f"past_{i}" for i in range(self.layers)]
            self.output_names = ["logits"] + [f"present_{i}" for i in range(self.layers)]
            self.past_names = self.input_names[3:]
            self.present_names = self.output_names[1:]
        else:
            self.layout = "Optimum (past_key_values.N.key|value / present.N.key|value)"
            self.index_type = torch.int64
            self.input_names = ["input_ids", "attention_mask", "position_ids"]
            self.output_names = ["logits"]
            for i in range(self.layers):
                self.input_names += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
                self.output_names += [f"present.{i}.key", f"present.{i}.value"]
            self.past_names = self.input_names[3:]
            self.present_names = self.output_names[1:]

    def dynamic_axes(self):
        axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
                "position_ids": {0: "batch_size", 1: "sequence_length"},
                "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
                "logits": {0: "batch_size", 1: "sequence_length"}}
        if self.family == "gpt2":
            for name in self.past_names:
                axes[name] = {1: "batch_size", 3: "past_sequence_length"}
            for name in self.present_names:
                axes[name] = {1: "batch_size", 3: "total_sequence_length"}
        else:
            for name in self.past_names:
                axes[name] = {0: "batch_size", 2: "past_sequence_length"}
            for name in self.present_names:
                axes[name] = {0: "batch_size", 2: "total_sequence_length"}
        return axes

    def empty_past(self, batch, past_length, dtype, device):
        if self.family == "gpt2":
            size = (2, batch, self.kv_heads, past_length, self.head_dim)
        else:
            size = (batch, self.kv_heads, past_length, self.head_dim)
        return [torch.zeros(size, dtype=dtype, device=device) for _ in self.past_names]

    def arguments(self, input_ids, position_ids, attention_mask, past):
        """The forward arguments in graph input order."""
        ids = input_ids.to(self.index_type)
        positions = position_ids.to(self.index_type)
        mask = attention_mask.to(self.index_type)
        if self.family == "gpt2":
            return (ids, positions, mask, *past)
        return (ids, mask, positions, *past)


def left_pad(prompts, pad_id, device):
    """Left-padded input_ids, attention_mask and position_ids (cumsum(mask) - 1, 0 at padding), int64."""
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.int64)
    mask = torch.zeros((len(prompts), longest), dtype=torch.int64)
    for row, prompt in enumerate(prompts):
        ids[row, longest - len(prompt):] = torch.tensor(prompt, dtype=torch.int64)
        mask[row, longest - len(prompt):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)
