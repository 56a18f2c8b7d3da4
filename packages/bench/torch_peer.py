"""PyTorch side of `node packages/bench/dist/cli.js --models --peer torch`.

The same models as Transfuse's model benchmarks (defined in ../../shared/design/TORCH_BASELINE.md,
written here in plain PyTorch), driven by the Node runner over stdin/stdout, one JSON object per
line, so that both sides are sampled in alternating rounds under the same machine load:

  {"cmd": "hello"}              -> {"ok": true, "label": "PyTorch 1.13.1, 2 threads, ..."}
  {"cmd": "setup", "case": k}   -> {"ok": true, "params": n}   builds case k and runs one step
  {"cmd": "step"}               -> {"ok": true, "cpuMs": t}     one step; t = this process's CPU time
  {"cmd": "free"}               -> {"ok": true}

Errors answer {"ok": false, "error": "..."}. Run with Debian's /usr/bin/python3 and python3-torch
on the CPU, or with TRANSFUSE_TORCH_DEVICE=cuda on a GPU (each step then ends in a synchronize).
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("TRANSFUSE_TORCH_THREADS", "2")))
DEVICE = torch.device(os.environ.get("TRANSFUSE_TORCH_DEVICE", "cpu"))
# New tensors (inputs, parameters) are made on DEVICE; set_default_device is torch >= 2.0, the
# older call still serves Debian's 1.13 on the CPU.
if hasattr(torch, "set_default_device"):
    torch.set_default_device(DEVICE)
else:
    torch.set_default_tensor_type(torch.cuda.FloatTensor if DEVICE.type == "cuda" else torch.FloatTensor)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, tdim):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(8, c)
        self.q, self.k, self.v, self.out = (nn.Linear(c, c) for _ in range(4))

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.norm(x).reshape(b, c, hh * ww).transpose(1, 2)
        q, k, v = self.q(h), self.k(h), self.v(h)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1) @ v
        return x + self.out(a).transpose(1, 2).reshape(b, c, hh, ww)


class UNet(nn.Module):
    """diffusers' UNet2DModel layout with DownBlock2D/UpBlock2D, attention only in the mid block."""

    def __init__(self, boc=(32, 64, 64), classes=10):
        super().__init__()
        c0, tdim = boc[0], 4 * boc[0]
        self.c0 = c0
        self.time_mlp = nn.Sequential(nn.Linear(c0, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.class_embedding = nn.Embedding(classes, tdim)
        self.conv_in = nn.Conv2d(1, c0, 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        ch, skips = c0, [c0]
        for i, c in enumerate(boc):
            level = nn.ModuleList()
            for _ in range(2):
                level.append(ResnetBlock(ch, c, tdim))
                ch = c
                skips.append(ch)
            self.down.append(level)
            if i < len(boc) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid = nn.ModuleList([ResnetBlock(ch, ch, tdim), AttnBlock(ch), ResnetBlock(ch, ch, tdim)])
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, c in enumerate(reversed(boc)):
            level = nn.ModuleList()
            for _ in range(3):
                level.append(ResnetBlock(ch + skips.pop(), c, tdim))
                ch = c
            self.up.append(level)
            if i < len(boc) - 1:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.norm_out = nn.GroupNorm(8, c0)
        self.conv_out = nn.Conv2d(c0, 1, 3, padding=1)

    def forward(self, x, t, labels):
        half = self.c0 // 2
        freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        arg = t.float()[:, None] * freq[None]
        emb = self.time_mlp(torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)) + self.class_embedding(labels)
        h = self.conv_in(x)
        skips = [h]
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, emb)
                skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        for i, level in enumerate(self.up):
            for block in level:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class Coupling(nn.Module):
    """Half-mask coupling: `a` passes through, `b` is shifted (NICE) or scaled and shifted (RealNVP)."""

    def __init__(self, odd, affine, cond_dim):
        super().__init__()
        self.odd, self.affine = odd, affine
        out = 256 if affine else 128
        self.net = nn.Sequential(nn.Linear(128 + cond_dim, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, out))

    def split(self, x):
        a, b = x[:, :128], x[:, 128:]
        return (b, a) if self.odd else (a, b)

    def join(self, a, b):
        return torch.cat([b, a] if self.odd else [a, b], dim=1)

    def conditioner(self, a, cond):
        return self.net(a if cond is None else torch.cat([a, cond], dim=1))

    def forward(self, x, cond):
        a, b = self.split(x)
        h = self.conditioner(a, cond)
        if not self.affine:
            return self.join(a, b + h), 0.0
        s, t = torch.tanh(h[:, :128]), h[:, 128:]
        return self.join(a, b * torch.exp(s) + t), s.sum(dim=1)

    def inverse(self, y, cond):
        a, b = self.split(y)
        h = self.conditioner(a, cond)
        if not self.affine:
            return self.join(a, b - h)
        s, t = torch.tanh(h[:, :128]), h[:, 128:]
        return self.join(a, (b - t) * torch.exp(-s))


class Flow(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.classes = 10 if kind == "realnvp-cond" else 0
        self.layers = nn.ModuleList(Coupling(k % 2 == 1, kind != "nice", self.classes) for k in range(8))
        self.log_scale = nn.Parameter(torch.zeros(256)) if kind == "nice" else None

    def cond(self, labels):
        return None if self.classes == 0 else F.one_hot(labels, self.classes).float()

    def nll(self, x, labels):
        cond, logdet = self.cond(labels), 0.0
        for layer in self.layers:
            x, ld = layer(x, cond)
            logdet = logdet + ld
        if self.log_scale is not None:
            x = x * torch.exp(self.log_scale)
            logdet = logdet + self.log_scale.sum()
        logp = (-0.5 * x * x - 0.5 * math.log(2 * math.pi)).sum(dim=1) + logdet
        return -logp.mean() / 256

    @torch.no_grad()
    def sample(self, n, labels):
        z, cond = torch.randn(n, 256), self.cond(labels)
        if self.log_scale is not None:
            z = z * torch.exp(-self.log_scale)
        for layer in reversed(self.layers):
            z = layer.inverse(z, cond)
        return z


def train_step(model, loss):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    return step


def ddim_sampler(model, size, steps):
    """Deterministic DDIM (eta 0) over `steps` evenly spaced timesteps of the linear DDPM schedule."""
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), dim=0)
    ts = list(range(0, 1000, 1000 // steps))[::-1]
    labels = (torch.arange(64) % 10).to(DEVICE)

    @torch.no_grad()
    def step():
        x = torch.randn(64, 1, size, size)
        for i, t in enumerate(ts):
            a, a_prev = abar[t], abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
            eps = model(x, torch.full((64,), t, dtype=torch.long, device=DEVICE), labels)
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps

    return step


def make_case(key):
    """Case keys match `torch` in packages/bench/src/models.ts."""
    torch.manual_seed(1)
    model, step = build_case(key)
    model.to(DEVICE)
    if DEVICE.type != "cuda":
        return model, step

    def synced():
        step()
        torch.cuda.synchronize()

    return model, synced


def build_case(key):
    kind, *rest = key.split(":")
    if kind == "unet-train":
        size = int(rest[0])
        model = UNet()
        x, eps = torch.randn(64, 1, size, size), torch.randn(64, 1, size, size)
        t, labels = (torch.arange(64) * 15 % 1000).to(DEVICE), (torch.arange(64) % 10).to(DEVICE)
        return model, train_step(model, lambda: F.mse_loss(model(x, t, labels), eps))
    if kind == "unet-sample":
        size, steps = int(rest[0]), int(rest[1])
        model = UNet().eval()
        return model, ddim_sampler(model, size, steps)
    if kind == "flow-train":
        model = Flow(rest[0])
        x, labels = torch.randn(256, 256) * 0.5, (torch.arange(256) % 10).to(DEVICE)
        return model, train_step(model, lambda: model.nll(x, labels))
    if kind == "flow-sample":
        model = Flow(rest[0]).eval()
        labels = (torch.arange(1000) % 10).to(DEVICE)
        return model, lambda: model.sample(1000, labels)
    raise ValueError(f"unknown case '{key}'")


def main():
    step = None
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            if cmd == "hello":
                blas = "OpenBLAS" if "openblas" in os.environ.get("LD_LIBRARY_PATH", "") else "default BLAS"
                where = torch.cuda.get_device_name(0) if DEVICE.type == "cuda" else f"CPU, {torch.get_num_threads()} threads, {blas}"
                reply = {"label": f"PyTorch {torch.__version__}, {where}"}
            elif cmd == "setup":
                model, step = make_case(msg["case"])
                step()
                reply = {"params": sum(p.numel() for p in model.parameters())}
            elif cmd == "step":
                cpu0 = time.process_time()
                step()
                reply = {"cpuMs": 1000 * (time.process_time() - cpu0)}
            elif cmd == "free":
                step = None
                reply = {}
            else:
                raise ValueError(f"unknown command '{cmd}'")
            reply["ok"] = True
        except Exception as e:  # reported to the Node side, which shows it in the table
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
