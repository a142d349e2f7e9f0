#!/usr/bin/env python3
"""Independent PyTorch reference of the Wan2.1 3D causal VAE (spec §3.1), written from the spec's facts.

    python3 tools/reference/wan_vae.py          smoke test: a random dim-8 VAE, checks the chunked causal path
                                                against the full-sequence path and (T=1) the pure 2-D image path

It is a library first: tools/fixtures/make_vae_fixtures.py imports it to write test/fixtures/vae/. It loads the
published `Wan2.1_VAE.pth` key layout unchanged (`WanVAE(config).load_state_dict(torch.load(path))`).

Layout (read top-down): config, small pieces (RMS norm, causal conv, residual block, attention, resample), encoder,
decoder, the WanVAE wrapper, then a deliberately simple 2-D image path used only as a cross-check.

Three ways to run the same network, which must agree:
  * chunked (the reference behaviour): encode frame 0 alone and then chunks of 4 frames; decode one latent frame at a
    time. Every causal conv keeps a cache of the last CACHE_T = 2 frames of its input stream (`cache` dict below).
  * full-sequence (`cache=None`): each module sees the whole clip at once. This is the closed form of the chunked
    rules (derived in the comments of WanResample) and is what a batched GPU port would naturally compute.
  * 2-D image (`encode_image_2d` / `decode_image_2d`): T=1 only; every 3x3x3 causal conv becomes a 2-D conv with the
    last temporal kernel slice weight[:, :, 2] (the two front frames are zero padding), time_conv is never used.

Cache readings (where the spec is silent; the C++ port should follow these):
  * A k=3 causal conv's cache holds the last 2 frames of its *input* stream (post-norm/SiLU for the residual convs).
    After a chunk of 1 frame with an existing cache, the cache is [previous cache's last frame, this frame]; after a
    1-frame chunk with no cache yet (the very first chunk), it holds just that frame, and the next call pads 1 zero
    frame + that frame in front. Either way the chunked result equals a causal conv over the whole stream with 2
    zero frames in front.
  * 1x1x1 convs (shortcut, conv1, conv2) and the attention have no cache (no temporal extent).
  * downsample3d time_conv (k=(3,1,1), stride 2, no padding), applied after the spatial downsample:
    first chunk: output = input unchanged and the cache is set to the input; later chunks: output =
    time_conv(cat(cache's last frame, chunk)), cache = chunk's last frame. Closed form over a whole stream x_0..x_{T-1}:
    y_0 = x_0, y_j = time_conv(x_{2j-2}, x_{2j-1}, x_{2j}) for j >= 1 (a stride-2 valid conv over x, after x_0).
  * upsample3d time_conv (C -> 2C, k=(3,1,1), causal 2-frame front pad), applied before the spatial upsample:
    first chunk: output = input unchanged, cache marked 'Rep'. Next chunk ('Rep'): time_conv with zero front padding
    (frame 0 is *not* history), cache = last 2 frames, zero-padded in front to 2 frames if the chunk has 1 frame
    (equivalent to keeping 1 frame). Later chunks: the usual cached causal conv. Output channels [0, C) become frame
    2t and [C, 2C) frame 2t+1. Closed form: y = [x_0] + interleave(causal_time_conv(x_1..x_{T-1})), so T frames
    become 1 + 2(T-1).
Frame counts: encode 1 + 4k frames -> 1 + k latents; decode T latents -> 1 + 4(T-1) frames.

Precision: the module runs in whatever dtype its parameters and input have (the fixtures use float64).
"""
from dataclasses import dataclass, field
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

CACHE_T = 2  # frames of input history each causal conv keeps between chunks (spec §3.1)
REP = "Rep"  # upsample3d cache marker: "the first chunk passed through, no history yet"

# Published normalisation of the 16 latent channels (spec §3.1, WanVAE.__init__).
WAN21_LATENTS_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                      0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
WAN21_LATENTS_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                     3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]


@dataclass
class WanVaeConfig:
    dim: int = 96
    z_dim: int = 16
    dim_mult: List[int] = field(default_factory=lambda: [1, 2, 4, 4])
    num_res_blocks: int = 2
    attn_scales: List[float] = field(default_factory=list)  # none in Wan2.1
    temperal_downsample: List[bool] = field(default_factory=lambda: [False, True, True])  # sic, Wan's spelling
    dropout: float = 0.0
    latents_mean: List[float] = field(default_factory=lambda: list(WAN21_LATENTS_MEAN))
    latents_std: List[float] = field(default_factory=lambda: list(WAN21_LATENTS_STD))

    @property
    def temperal_upsample(self):
        return self.temperal_downsample[::-1]


# ---------------------------------------------------------------------------------------------------------------
# Small pieces
# ---------------------------------------------------------------------------------------------------------------

class WanRMSNorm(nn.Module):
    """Spec's RMS_norm: F.normalize over channels (L2, eps 1e-12) * sqrt(C) * gamma; no bias.

    gamma is [C,1,1,1] for 5-D inputs (residual blocks, heads) and [C,1,1] for the attention's 4-D per-frame input.
    """

    def __init__(self, dim, images=False):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))  # <prefix>.gamma

    def forward(self, x):  # x: [B, C, T, H, W] or [B*T, C, H, W]
        return F.normalize(x, dim=1, eps=1e-12) * self.scale * self.gamma


class WanCausalConv3d(nn.Conv3d):
    """Conv3d whose time padding is 2*pad_t frames in front only (zeros, or cached frames); space padded symmetrically.

    weight [out, in, kt, kh, kw], bias [out]: keys <prefix>.weight / <prefix>.bias.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        pad_t, pad_h, pad_w = padding if isinstance(padding, tuple) else (padding,) * 3
        self.front_pad = 2 * pad_t
        self.spatial_pad = (pad_w, pad_w, pad_h, pad_h)

    def forward(self, x, history=None):
        # x: [B, Cin, T, H, W]; history: [B, Cin, <=2, H, W] frames that precede x in the stream, or None
        front = self.front_pad
        if history is not None and front > 0:
            x = torch.cat([history, x], dim=2)  # [B, Cin, h+T, H, W]
            front -= history.shape[2]
        x = F.pad(x, self.spatial_pad + (front, 0))  # zeros: W, H symmetric; T in front only
        return super().forward(x)  # [B, Cout, T', H', W']


def next_history(x, previous):
    """The last CACHE_T frames of a conv's input stream after it consumed chunk x.

    A 1-frame chunk keeps the previous cache's last frame in front, so the cache stays 2 frames once it has them.
    """
    tail = x[:, :, -CACHE_T:]
    if tail.shape[2] < CACHE_T and isinstance(previous, torch.Tensor):
        tail = torch.cat([previous[:, :, -1:], tail], dim=2)
    return tail


def causal_conv(conv, x, cache):
    """Run a k=3 causal conv on chunk x, reading and updating its entry in `cache` (None = full sequence)."""
    if cache is None:
        return conv(x)
    previous = cache.get(conv)
    cache[conv] = next_history(x, previous)
    return conv(x, previous)


class WanResidualBlock(nn.Module):
    """shortcut(x) + conv(drop(silu(norm(conv(silu(norm(x))))))) (spec §3.1)."""

    def __init__(self, in_dim, out_dim, dropout=0.0):
        super().__init__()
        self.residual = nn.Sequential(
            WanRMSNorm(in_dim),                                  # residual.0.gamma  [in,1,1,1]
            nn.SiLU(),                                           # residual.1 (no params)
            WanCausalConv3d(in_dim, out_dim, 3, padding=1),      # residual.2.{weight,bias} [out,in,3,3,3]
            WanRMSNorm(out_dim),                                 # residual.3.gamma  [out,1,1,1]
            nn.SiLU(),                                           # residual.4 (no params)
            nn.Dropout(dropout),                                 # residual.5 (no params; 0 at inference)
            WanCausalConv3d(out_dim, out_dim, 3, padding=1),     # residual.6.{weight,bias} [out,out,3,3,3]
        )
        # shortcut.{weight,bias} [out,in,1,1,1] only when the width changes
        self.shortcut = WanCausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x, cache=None):  # x: [B, in, T, H, W]
        residual = self.shortcut(x)                                     # [B, out, T, H, W]
        hidden_states = F.silu(self.residual[0](x))
        hidden_states = causal_conv(self.residual[2], hidden_states, cache)  # [B, out, T, H, W]
        hidden_states = F.silu(self.residual[3](hidden_states))
        hidden_states = self.residual[5](hidden_states)
        hidden_states = causal_conv(self.residual[6], hidden_states, cache)
        return hidden_states + residual


class WanAttentionBlock(nn.Module):
    """Single-head self-attention over the H*W positions of each frame separately, plus a residual."""

    def __init__(self, dim):
        super().__init__()
        self.norm = WanRMSNorm(dim, images=True)       # norm.gamma [C,1,1]
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)       # to_qkv.{weight,bias} [3C,C,1,1]: q, k, v = channel thirds
        self.proj = nn.Conv2d(dim, dim, 1)             # proj.{weight,bias} [C,C,1,1]

    def forward(self, x, cache=None):  # x: [B, C, T, H, W]; no temporal extent, so no cache
        b, c, t, h, w = x.shape
        residual = x
        hidden_states = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)     # [B*T, C, H, W]
        hidden_states = self.norm(hidden_states)
        qkv = self.to_qkv(hidden_states).reshape(b * t, 3 * c, h * w)         # [B*T, 3C, HW]
        query_states, key_states, value_states = (s.transpose(1, 2) for s in qkv.split(c, dim=1))  # [B*T, HW, C]
        attn_weights = torch.softmax(query_states @ key_states.transpose(1, 2) / c ** 0.5, dim=-1)  # [B*T, HW, HW]
        attn_output = (attn_weights @ value_states).transpose(1, 2).reshape(b * t, c, h, w)      # [B*T, C, H, W]
        attn_output = self.proj(attn_output)
        attn_output = attn_output.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)                 # [B, C, T, H, W]
        return attn_output + residual


class WanResample(nn.Module):
    """Spatial x2 up/down per frame, plus the temporal time_conv of the *3d modes (see module docstring)."""

    def __init__(self, dim, mode):
        super().__init__()
        self.mode = mode
        if mode in ("upsample2d", "upsample3d"):
            self.resample = nn.Sequential(
                nn.Upsample(scale_factor=2.0, mode="nearest-exact"),   # resample.0 (no params)
                nn.Conv2d(dim, dim // 2, 3, padding=1),                # resample.1.{weight,bias} [C/2,C,3,3]
            )
        elif mode in ("downsample2d", "downsample3d"):
            self.resample = nn.Sequential(
                nn.ZeroPad2d((0, 1, 0, 1)),                            # resample.0: pad right and bottom by 1
                nn.Conv2d(dim, dim, 3, stride=2),                      # resample.1.{weight,bias} [C,C,3,3]
            )
        else:
            raise ValueError(f"unknown resample mode {mode!r}")
        if mode == "upsample3d":
            self.time_conv = WanCausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))  # time_conv [2C,C,3,1,1]
        elif mode == "downsample3d":
            self.time_conv = WanCausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))      # time_conv [C,C,3,1,1]

    def forward(self, x, cache=None):  # x: [B, C, T, H, W]
        if self.mode == "upsample3d":
            x = self._double_frames(x, cache)                          # [B, C, T', H, W]
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        frames = self.resample(frames)                                 # [B*T, C', H*2 or H/2, ...]
        x = frames.reshape(b, t, *frames.shape[1:]).permute(0, 2, 1, 3, 4)
        if self.mode == "downsample3d":
            x = self._halve_frames(x, cache)
        return x

    def _double_frames(self, x, cache):
        """upsample3d time step: frame 0 of the stream passes through; the rest become 2 frames each."""
        if cache is None:  # full sequence: y = [x_0] + interleave(causal_time_conv(x_1..))
            if x.shape[2] == 1:
                return x
            return torch.cat([x[:, :, :1], interleave_pairs(self.time_conv(x[:, :, 1:]))], dim=2)
        state = cache.get(self.time_conv)
        if state is None:  # first chunk: 'Rep', pass through (the decoder feeds 1 frame here)
            assert x.shape[2] == 1, "the first decode chunk must be one frame"
            cache[self.time_conv] = REP
            return x
        tail = x[:, :, -CACHE_T:]
        if tail.shape[2] < CACHE_T:
            # after 'Rep' there is no history: pad with a zero frame (same result as keeping one frame)
            front = torch.zeros_like(tail) if isinstance(state, str) else state[:, :, -1:]
            tail = torch.cat([front, tail], dim=2)
        y = self.time_conv(x, None if isinstance(state, str) else state)   # [B, 2C, T, H, W]
        cache[self.time_conv] = tail
        return interleave_pairs(y)                                         # [B, C, 2T, H, W]

    def _halve_frames(self, x, cache):
        """downsample3d time step: frame 0 passes through; then stride-2 windows (x_{2j-2}, x_{2j-1}, x_{2j})."""
        if cache is None:
            if x.shape[2] == 1:
                return x
            return torch.cat([x[:, :, :1], self.time_conv(x)], dim=2)     # [B, C, 1 + (T-1)/2, H, W]
        state = cache.get(self.time_conv)
        if state is None:  # first chunk: remember it, pass through
            cache[self.time_conv] = x
            return x
        y = self.time_conv(torch.cat([state[:, :, -1:], x], dim=2))        # [B, C, T/2, H, W]
        cache[self.time_conv] = x[:, :, -1:]
        return y


def interleave_pairs(y):
    """[B, 2C, T, H, W] -> [B, C, 2T, H, W]: channels [0,C) become frame 2t, channels [C,2C) frame 2t+1."""
    b, c2, t, h, w = y.shape
    y = y.reshape(b, 2, c2 // 2, t, h, w)
    return torch.stack((y[:, 0], y[:, 1]), dim=3).reshape(b, c2 // 2, 2 * t, h, w)


# ---------------------------------------------------------------------------------------------------------------
# Encoder and decoder
# ---------------------------------------------------------------------------------------------------------------

def run_layers(layers, x, cache):
    for layer in layers:
        x = layer(x, cache)
    return x


class WanEncoder3d(nn.Module):
    """encoder.*: pixels [B,3,T,H,W] -> [B, 2*z_dim, 1+(T-1)/4, H/8, W/8] (mean and log-variance, before conv1)."""

    def __init__(self, config: WanVaeConfig):
        super().__init__()
        dims = [config.dim * u for u in [1] + config.dim_mult]  # [96, 96, 192, 384, 384]
        scale = 1.0
        self.conv1 = WanCausalConv3d(3, dims[0], 3, padding=1)  # encoder.conv1
        downsamples = []  # encoder.downsamples.N
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(config.num_res_blocks):
                downsamples.append(WanResidualBlock(in_dim, out_dim, config.dropout))
                if scale in config.attn_scales:
                    downsamples.append(WanAttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(config.dim_mult) - 1:
                mode = "downsample3d" if config.temperal_downsample[i] else "downsample2d"
                downsamples.append(WanResample(out_dim, mode))
                scale /= 2.0
        self.downsamples = nn.ModuleList(downsamples)
        self.middle = nn.ModuleList([WanResidualBlock(dims[-1], dims[-1], config.dropout),   # encoder.middle.0
                                     WanAttentionBlock(dims[-1]),                            # encoder.middle.1
                                     WanResidualBlock(dims[-1], dims[-1], config.dropout)])  # encoder.middle.2
        self.head = nn.Sequential(WanRMSNorm(dims[-1]),                                      # encoder.head.0.gamma
                                  nn.SiLU(),                                                 # encoder.head.1
                                  WanCausalConv3d(dims[-1], config.z_dim * 2, 3, padding=1))  # encoder.head.2

    def forward(self, x, cache=None):
        x = causal_conv(self.conv1, x, cache)         # [B, dim, T, H, W]
        x = run_layers(self.downsamples, x, cache)    # [B, 4*dim, T', H/8, W/8]
        x = run_layers(self.middle, x, cache)
        x = F.silu(self.head[0](x))
        return causal_conv(self.head[2], x, cache)    # [B, 2*z_dim, T', H/8, W/8]


class WanDecoder3d(nn.Module):
    """decoder.*: latents [B, z_dim, T, h, w] (after conv2) -> pixels [B, 3, 1+4(T-1), 8h, 8w] (not clamped)."""

    def __init__(self, config: WanVaeConfig):
        super().__init__()
        dims = [config.dim * u for u in [config.dim_mult[-1]] + config.dim_mult[::-1]]  # [384, 384, 384, 192, 96]
        scale = 1.0 / 2 ** (len(config.dim_mult) - 2)
        self.conv1 = WanCausalConv3d(config.z_dim, dims[0], 3, padding=1)  # decoder.conv1
        self.middle = nn.ModuleList([WanResidualBlock(dims[0], dims[0], config.dropout),   # decoder.middle.0
                                     WanAttentionBlock(dims[0]),                           # decoder.middle.1
                                     WanResidualBlock(dims[0], dims[0], config.dropout)])  # decoder.middle.2
        upsamples = []  # decoder.upsamples.N
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if i in (1, 2, 3):
                in_dim = in_dim // 2  # the previous upsample's conv halved the width
            for _ in range(config.num_res_blocks + 1):
                upsamples.append(WanResidualBlock(in_dim, out_dim, config.dropout))
                if scale in config.attn_scales:
                    upsamples.append(WanAttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(config.dim_mult) - 1:
                mode = "upsample3d" if config.temperal_upsample[i] else "upsample2d"
                upsamples.append(WanResample(out_dim, mode))
                scale *= 2.0
        self.upsamples = nn.ModuleList(upsamples)
        self.head = nn.Sequential(WanRMSNorm(dims[-1]),                       # decoder.head.0.gamma
                                  nn.SiLU(),                                  # decoder.head.1
                                  WanCausalConv3d(dims[-1], 3, 3, padding=1))  # decoder.head.2

    def forward(self, x, cache=None):
        x = causal_conv(self.conv1, x, cache)        # [B, 4*dim, T, h, w]
        x = run_layers(self.middle, x, cache)
        x = run_layers(self.upsamples, x, cache)     # [B, dim, 1+4(T-1), 8h, 8w] over the whole stream
        x = F.silu(self.head[0](x))
        return causal_conv(self.head[2], x, cache)   # [B, 3, ...]


# ---------------------------------------------------------------------------------------------------------------
# The VAE
# ---------------------------------------------------------------------------------------------------------------

class WanVAE(nn.Module):
    """encoder + conv1 (split mu/logvar) and conv2 + decoder, with the fixed latent normalisation (spec §3.1)."""

    def __init__(self, config: WanVaeConfig):
        super().__init__()
        self.config = config
        self.encoder = WanEncoder3d(config)
        self.conv1 = WanCausalConv3d(config.z_dim * 2, config.z_dim * 2, 1)  # conv1 [32,32,1,1,1]
        self.conv2 = WanCausalConv3d(config.z_dim, config.z_dim, 1)          # conv2 [16,16,1,1,1]
        self.decoder = WanDecoder3d(config)
        # not in the checkpoint: constants from the config
        self.register_buffer("latents_mean", torch.tensor(config.latents_mean).view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("latents_std", torch.tensor(config.latents_std).view(1, -1, 1, 1, 1), persistent=False)

    def encode_posterior(self, video, chunked=True):
        """video [B,3,T,H,W] in [-1,1], T = 1+4k -> (mu_raw, logvar), each [B, z_dim, 1+k, H/8, W/8]."""
        t = video.shape[2]
        assert (t - 1) % 4 == 0, f"encode needs 1+4k frames, got {t}"
        if chunked:
            cache = {}
            chunks = [video[:, :, :1]] + [video[:, :, 1 + 4 * i:5 + 4 * i] for i in range((t - 1) // 4)]
            out = torch.cat([self.encoder(chunk, cache) for chunk in chunks], dim=2)
        else:
            out = self.encoder(video)
        mu, logvar = self.conv1(out).chunk(2, dim=1)  # first z_dim channels = mean
        return mu, logvar

    def normalize(self, mu):
        return (mu - self.latents_mean.to(mu)) / self.latents_std.to(mu)

    def encode(self, video, chunked=True):
        """Deterministic latent z = (mu - mean) / std (the spec's recommended use of the posterior mean)."""
        return self.normalize(self.encode_posterior(video, chunked)[0])

    def decode(self, z, chunked=True):
        """z [B, z_dim, T, h, w] (normalised) -> pixels [B, 3, 1+4(T-1), 8h, 8w] clamped to [-1, 1]."""
        x = self.conv2(z * self.latents_std.to(z) + self.latents_mean.to(z))
        if chunked:
            cache = {}
            out = torch.cat([self.decoder(x[:, :, i:i + 1], cache) for i in range(x.shape[2])], dim=2)
        else:
            out = self.decoder(x)
        return out.clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Single-image path (spec §3.1 "Single-image simplification"): plain 2-D convs, used only as a cross-check
# ---------------------------------------------------------------------------------------------------------------

def conv2d_last_slice(conv, x):
    """A causal 3-D conv on one frame: only kernel slice t = kt-1 meets real data; the front frames are zeros."""
    weight = conv.weight[:, :, -1]                                  # [out, in, kh, kw]
    return F.conv2d(x, weight, conv.bias, padding=(conv.spatial_pad[2], conv.spatial_pad[0]))


def _image_layer(layer, x):  # x: [B, C, H, W]
    if isinstance(layer, WanResidualBlock):
        residual = x if isinstance(layer.shortcut, nn.Identity) else conv2d_last_slice(layer.shortcut, x)
        h = conv2d_last_slice(layer.residual[2], F.silu(_norm2d(layer.residual[0], x)))
        h = conv2d_last_slice(layer.residual[6], F.silu(_norm2d(layer.residual[3], h)))
        return h + residual
    if isinstance(layer, WanAttentionBlock):
        return layer(x.unsqueeze(2)).squeeze(2)
    if isinstance(layer, WanResample):
        return layer.resample(x)  # time_conv is skipped for a single frame
    raise TypeError(type(layer))


def _norm2d(norm, x):
    return F.normalize(x, dim=1, eps=1e-12) * norm.scale * norm.gamma.view(-1, 1, 1)


@torch.no_grad()
def encode_image_2d(vae: WanVAE, image):
    """image [B,3,H,W] -> (mu_raw, logvar) [B, z_dim, H/8, W/8] with 2-D ops only."""
    enc = vae.encoder
    x = conv2d_last_slice(enc.conv1, image)
    for layer in list(enc.downsamples) + list(enc.middle):
        x = _image_layer(layer, x)
    x = conv2d_last_slice(enc.head[2], F.silu(_norm2d(enc.head[0], x)))
    return conv2d_last_slice(vae.conv1, x).chunk(2, dim=1)


@torch.no_grad()
def decode_image_2d(vae: WanVAE, z):
    """z [B, z_dim, h, w] (normalised) -> pixels [B, 3, 8h, 8w] clamped, with 2-D ops only."""
    dec = vae.decoder
    x = z * vae.latents_std.to(z)[:, :, 0] + vae.latents_mean.to(z)[:, :, 0]
    x = conv2d_last_slice(dec.conv1, conv2d_last_slice(vae.conv2, x))
    for layer in list(dec.middle) + list(dec.upsamples):
        x = _image_layer(layer, x)
    return conv2d_last_slice(dec.head[2], F.silu(_norm2d(dec.head[0], x))).clamp(-1.0, 1.0)


@torch.no_grad()
def random_init_(vae: WanVAE, generator: torch.Generator, gain=1.0):
    """Test weights: conv weights ~ N(0, gain^2/fan_in), biases ~ N(0, 0.02^2), gammas ~ 1 + N(0, 0.1^2).

    With the RMS norms in front of every conv this keeps activations O(1) through the whole network.
    Parameters are visited in state-dict order, so a seed fixes every value.
    """
    for name, p in vae.named_parameters():
        noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
        if name.endswith("gamma"):
            p.copy_(1.0 + 0.1 * noise)
        elif name.endswith("bias"):
            p.copy_(0.02 * noise)
        else:
            fan_in = p[0].numel()
            p.copy_(noise * gain / fan_in ** 0.5)


def _smoke_test():
    """Chunked vs full-sequence (9 frames) and chunked vs 2-D (1 frame) on a random dim-8 VAE, in float64."""
    vae = WanVAE(WanVaeConfig(dim=8)).double().eval()
    random_init_(vae, torch.Generator().manual_seed(0))
    video = torch.rand(1, 3, 9, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        z = vae.encode(video)                                            # [1, 16, 3, 4, 4]
        image_mu = vae.encode_posterior(video[:, :, :1])[0][:, :, 0]     # [1, 16, 4, 4]
        checks = {
            "encode, chunked vs full-sequence": (z, vae.encode(video, chunked=False)),
            "decode, chunked vs full-sequence": (vae.decode(z), vae.decode(z, chunked=False)),
            "image encode, chunked vs 2-D": (image_mu, encode_image_2d(vae, video[:, :, 0])[0]),
            "image decode, chunked vs 2-D": (vae.decode(z[:, :, :1])[:, :, 0], decode_image_2d(vae, z[:, :, 0])),
        }
    for name, (a, b) in checks.items():
        err = (a - b).abs().max().item()
        print(f"{name}: shape {list(a.shape)}, max |diff| {err:.1e}")
        assert err < 1e-12, name
    print("ok")


if __name__ == "__main__":
    _smoke_test()
