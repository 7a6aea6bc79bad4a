#!/usr/bin/python3
"""An independent reference for tda's Hugging Face checkpoint support.

Written from the model equations (Llama: RMSNorm, rotary embeddings with rotate-half pairing and
Llama 3 frequency rescaling, grouped-query causal attention, SwiGLU; GPT-2: LayerNorm, fused
qkv Conv1D, gelu_new), not from tda's code. Safetensors files are written and read by hand
(8-byte little-endian header length, JSON header, raw bytes): no transformers or safetensors
package is needed.

  llama_reference.py write VARIANT DIR      tiny random checkpoint as a Hugging Face directory
  llama_reference.py logits DIR TOKENS OUT  logits (float64) of the checkpoint in DIR for token
                                            rows TOKENS ("1,2,3;4,5,6"), written to OUT as JSON
                                            {"shape": [rows, length, vocab], "logits": [...]}
  llama_reference.py all DIR TOKENS         every variant: DIR/NAME (checkpoint) and
                                            DIR/NAME.logits.json (its logits for TOKENS)
  llama_reference.py variants               the variant names, one per line
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

VOCAB = 97
CONTEXT = 32


def llama_config(model_type, heads, kv_heads, tied, **extra):
    config = {
        "model_type": model_type,
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": CONTEXT,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": tied,
        "rope_scaling": None,
    }
    config.update(extra)
    return config


LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64}

# name -> (config, dtype of the stored weights, shards)
VARIANTS = {
    "llama_mha_untied": (llama_config("llama", 4, 4, False), "F32", 1),
    "llama_gqa_tied": (llama_config("llama", 4, 2, True), "F32", 1),
    "llama3_scaled_rope": (llama_config("llama", 4, 2, False, rope_theta=500000.0,
                                        rope_scaling=LLAMA3_SCALING), "F32", 1),
    "llama_attention_bias": (llama_config("llama", 4, 1, False, attention_bias=True), "F32", 1),
    "qwen2_qkv_bias": (llama_config("qwen2", 4, 2, True, use_sliding_window=False,
                                    sliding_window=4096), "F32", 1),
    "llama_bf16": (llama_config("llama", 4, 2, False), "BF16", 1),
    "mistral_f16_sharded": (llama_config("mistral", 4, 2, False, sliding_window=None), "F16", 2),
    "gpt2": ({"model_type": "gpt2", "vocab_size": VOCAB, "n_positions": CONTEXT, "n_embd": 32,
              "n_layer": 2, "n_head": 4, "n_inner": None, "activation_function": "gelu_new",
              "layer_norm_epsilon": 1e-5}, "F32", 1),
}

# --- safetensors by hand -------------------------------------------------------------------

def to_bytes(array, dtype):
    array = np.ascontiguousarray(array, dtype=np.float32)
    if dtype == "F32":
        return array.tobytes()
    if dtype == "F16":
        return array.astype(np.float16).tobytes()
    if dtype == "BF16":  # round to nearest even on the upper 16 bits
        bits = array.view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        return rounded.tobytes()
    raise ValueError(dtype)


def from_bytes(raw, dtype, shape):
    if dtype == "F32":
        values = np.frombuffer(raw, dtype="<f4")
    elif dtype == "F16":
        values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        raise ValueError(dtype)
    return values.astype(np.float64).reshape(shape)


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        blob = to_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    base = 8 + length
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        out[name] = from_bytes(data[base + begin:base + end], entry["dtype"], entry["shape"])
    return out


def read_checkpoint(directory):
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    tensors = {}
    for shard in shards:
        tensors.update(read_safetensors(os.path.join(directory, shard)))
    return {name: torch.tensor(value, dtype=torch.float64) for name, value in tensors.items()}

# --- random checkpoints --------------------------------------------------------------------

def llama_tensors(config, rng):
    d, m, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = d // heads
    qkv_bias = config["model_type"] == "qwen2" or config.get("attention_bias", False)
    o_bias = config["model_type"] != "qwen2" and config.get("attention_bias", False)
    normal = lambda *shape, std=0.2: rng.normal(0.0, std, size=shape).astype(np.float32)
    t = {"model.embed_tokens.weight": normal(v, d, std=1.0),
         "model.norm.weight": 1 + normal(d, std=0.1)}
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = 1 + normal(d, std=0.1)
        t[p + "post_attention_layernorm.weight"] = 1 + normal(d, std=0.1)
        for name, out in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
            t[p + f"self_attn.{name}.weight"] = normal(out, d)
            if qkv_bias:
                t[p + f"self_attn.{name}.bias"] = normal(out)
        t[p + "self_attn.o_proj.weight"] = normal(d, heads * hd)
        if o_bias:
            t[p + "self_attn.o_proj.bias"] = normal(d)
        t[p + "mlp.gate_proj.weight"] = normal(m, d)
        t[p + "mlp.up_proj.weight"] = normal(m, d)
        t[p + "mlp.down_proj.weight"] = normal(d, m)
        t[p + "self_attn.rotary_emb.inv_freq"] = np.ones(hd // 2, dtype=np.float32)  # a buffer
    if not config["tie_word_embeddings"]:
        t["lm_head.weight"] = normal(v, d)
    return t


def gpt2_tensors(config, rng):
    d, v, T = config["n_embd"], config["vocab_size"], config["n_positions"]
    inner = config["n_inner"] or 4 * d
    normal = lambda *shape, std=0.2: rng.normal(0.0, std, size=shape).astype(np.float32)
    t = {"transformer.wte.weight": normal(v, d, std=1.0),
         "transformer.wpe.weight": normal(T, d, std=0.5),
         "transformer.ln_f.weight": 1 + normal(d, std=0.1),
         "transformer.ln_f.bias": normal(d, std=0.1)}
    for l in range(config["n_layer"]):
        p = f"transformer.h.{l}."
        for ln in ("ln_1", "ln_2"):
            t[p + ln + ".weight"] = 1 + normal(d, std=0.1)
            t[p + ln + ".bias"] = normal(d, std=0.1)
        # Conv1D: weights stored in x out.
        for name, shape in (("attn.c_attn", (d, 3 * d)), ("attn.c_proj", (d, d)),
                            ("mlp.c_fc", (d, inner)), ("mlp.c_proj", (inner, d))):
            t[p + name + ".weight"] = normal(*shape)
            t[p + name + ".bias"] = normal(shape[1], std=0.1)
        t[p + "attn.bias"] = np.tril(np.ones((T, T), dtype=np.float32))[None, None]  # a buffer
    return t


def write_variant(name, directory):
    config, dtype, shards = VARIANTS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    tensors = gpt2_tensors(config, rng) if config["model_type"] == "gpt2" else \
        llama_tensors(config, rng)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(dict(config, torch_dtype={"F32": "float32", "BF16": "bfloat16",
                                            "F16": "float16"}[dtype]), f, indent=2)
    if shards == 1:
        write_safetensors(os.path.join(directory, "model.safetensors"), tensors, dtype)
        return
    names = sorted(tensors)
    weight_map = {}
    for s in range(shards):
        shard = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::shards]}
        write_safetensors(os.path.join(directory, shard), part, dtype)
        weight_map.update({n: shard for n in part})
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)

# --- the equations -------------------------------------------------------------------------

def rms_norm(x, weight, eps):
    return weight * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def rotary_frequencies(config, head_dim):
    freqs = [config.get("rope_theta", 10000.0) ** (-2.0 * i / head_dim)
             for i in range(head_dim // 2)]
    scaling = config.get("rope_scaling")
    if scaling:
        kind = scaling.get("rope_type", scaling.get("type"))
        assert kind == "llama3", kind
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], \
            scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        scaled = []
        for f in freqs:
            wavelength = 2 * math.pi / f
            if wavelength < old / high:      # high frequency: unchanged
                scaled.append(f)
            elif wavelength > old / low:     # low frequency: divided by factor
                scaled.append(f / factor)
            else:                            # in between: interpolated
                s = (old / wavelength - low) / (high - low)
                scaled.append((1 - s) * f / factor + s * f)
        freqs = scaled
    return torch.tensor(freqs, dtype=torch.float64)


def apply_rotary(x, positions, freqs):
    # x: heads x T x hd; pairs (i, i + hd/2) rotate by angle position * freqs[i].
    half = x.shape[-1] // 2
    angle = positions[:, None] * freqs[None, :]
    cos, sin = torch.cos(angle), torch.sin(angle)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def causal_attention(q, k, v):
    # q: H x T x hd, k and v: H x T x hd (already shared across a group's heads).
    T, hd = q.shape[1], q.shape[2]
    out = torch.zeros_like(q)
    for t in range(T):
        scores = (q[:, t:t + 1, :] @ k[:, :t + 1, :].transpose(1, 2)) / math.sqrt(hd)
        weights = torch.softmax(scores, dim=-1)
        out[:, t, :] = (weights @ v[:, :t + 1, :])[:, 0, :]
    return out


def llama_logits(config, w, tokens):
    d, heads = config["hidden_size"], config["num_attention_heads"]
    kv = config.get("num_key_value_heads", heads)
    hd, eps = d // heads, config.get("rms_norm_eps", 1e-6)
    T = len(tokens)
    freqs = rotary_frequencies(config, hd)
    positions = torch.arange(T, dtype=torch.float64)
    x = w["model.embed_tokens.weight"][tokens]
    bias = lambda name: w.get(name, torch.zeros(()))
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        proj = lambda name: h @ w[p + f"self_attn.{name}.weight"].T + \
            bias(p + f"self_attn.{name}.bias")
        q = proj("q_proj").reshape(T, heads, hd).transpose(0, 1)
        k = proj("k_proj").reshape(T, kv, hd).transpose(0, 1)
        v = proj("v_proj").reshape(T, kv, hd).transpose(0, 1)
        q, k = apply_rotary(q, positions, freqs), apply_rotary(k, positions, freqs)
        group = heads // kv
        k = torch.stack([k[i // group] for i in range(heads)])
        v = torch.stack([v[i // group] for i in range(heads)])
        attended = causal_attention(q, k, v).transpose(0, 1).reshape(T, heads * hd)
        x = x + attended @ w[p + "self_attn.o_proj.weight"].T + bias(p + "self_attn.o_proj.bias")
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate * torch.sigmoid(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return weight * (x - mean) / torch.sqrt(var + eps) + bias


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gpt2_logits(config, w, tokens):
    prefix = "transformer." if "transformer.wte.weight" in w else ""
    g = lambda name: w[prefix + name]
    d, heads, eps = config["n_embd"], config["n_head"], config.get("layer_norm_epsilon", 1e-5)
    hd, T = d // heads, len(tokens)
    x = g("wte.weight")[tokens] + g("wpe.weight")[:T]
    for l in range(config["n_layer"]):
        p = f"h.{l}."
        h = layer_norm(x, g(p + "ln_1.weight"), g(p + "ln_1.bias"), eps)
        qkv = h @ g(p + "attn.c_attn.weight") + g(p + "attn.c_attn.bias")  # Conv1D: x W + b
        q, k, v = (part.reshape(T, heads, hd).transpose(0, 1) for part in qkv.split(d, dim=-1))
        attended = causal_attention(q, k, v).transpose(0, 1).reshape(T, d)
        x = x + attended @ g(p + "attn.c_proj.weight") + g(p + "attn.c_proj.bias")
        h = layer_norm(x, g(p + "ln_2.weight"), g(p + "ln_2.bias"), eps)
        h = gelu_new(h @ g(p + "mlp.c_fc.weight") + g(p + "mlp.c_fc.bias"))
        x = x + h @ g(p + "mlp.c_proj.weight") + g(p + "mlp.c_proj.bias")
    x = layer_norm(x, g("ln_f.weight"), g("ln_f.bias"), eps)
    head = w.get("lm_head.weight", g("wte.weight"))
    return x @ head.T


def logits_command(directory, token_text, out_path):
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    weights = read_checkpoint(directory)
    rows = [[int(t) for t in row.split(",")] for row in token_text.split(";")]
    compute = gpt2_logits if config["model_type"] == "gpt2" else llama_logits
    with torch.no_grad():
        logits = torch.stack([compute(config, weights, torch.tensor(r)) for r in rows])
    with open(out_path, "w") as f:
        json.dump({"shape": list(logits.shape), "logits": logits.reshape(-1).tolist()}, f)


def main(argv):
    if len(argv) == 2 and argv[1] == "variants":
        print("\n".join(VARIANTS))
    elif len(argv) == 4 and argv[1] == "all":
        for name in VARIANTS:
            write_variant(name, os.path.join(argv[2], name))
            logits_command(os.path.join(argv[2], name), argv[3],
                           os.path.join(argv[2], name + ".logits.json"))
    elif len(argv) == 4 and argv[1] == "write":
        write_variant(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "logits":
        logits_command(argv[2], argv[3], argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
