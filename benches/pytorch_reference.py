#!/usr/bin/env python3
"""PyTorch side of `cargo run --release --example perf`: the same NiN, timed the same way.

The network is built from the `NinConfig` JSON that the Rust side passes in, so both sides run
exactly the same layers. One call measures one thing (a training step or inference) on random
data and prints one JSON line: images/s, seconds per step, and the process's peak resident set.

    python3 benches/pytorch_reference.py --config model.json --mode train --batch 128 \
        --optimizer adamw --lr 5e-3 --weight-decay 1e-4 --threads 2 --steps 5 --warmup 2

Each call runs in a fresh process so that its peak memory is its own. `--device cuda` runs it
on a GPU (`perf --torch-device cuda`), with cuDNN's per-shape algorithm search on, and waits
for the device before reading the clock.

`--precision` is how PyTorch computes:
- `default`: f32 as PyTorch does by default, where cuDNN's convolutions may use TF32 tensor
  cores (`torch.backends.cudnn.allow_tf32`, on by default);
- `strict-f32`: f32 with TF32 off in cuDNN and in matrix products;
- `amp-f16`, `amp-bf16`: automatic mixed precision, `torch.autocast` to that type with f32
  parameters, and for f16 training a `torch.amp.GradScaler`.
On the CPU, `default` and `strict-f32` are the same.

With `--layers FILE` it times single convolutions instead (`perf --layers`): FILE lists each
layer's input and weight shapes, stride and padding, and the script prints one JSON line with
the median seconds of each layer's forward pass (with bias and ReLU), weight and bias gradient,
and input gradient, each through `aten.convolution_backward` with only that output asked for.

ONNX Runtime, the peer for CPU inference, runs the same network in two steps:

    python3 benches/pytorch_reference.py --config model.json --export-onnx model.onnx
    python3 benches/pytorch_reference.py --onnx-model model.onnx --batch 128 --threads 2

The first exports the network (in evaluation mode, any batch size) from PyTorch; the second
times `InferenceSession.run` on random images with ONNX Runtime's CPU provider, with
`--threads` intra-op threads, and prints the same JSON line. It does not import PyTorch, so its
peak memory is ONNX Runtime's own.
"""

import argparse
import json
import resource
import sys
import time

# PyTorch is imported where it is used: the ONNX Runtime timing must not load it.
torch = None
nn = None


def import_torch():
    global torch, nn
    import torch as torch_module
    from torch import nn as nn_module

    torch, nn = torch_module, nn_module


def nin_block(block):
    """d2l's nin_block, with the optional batch norm of `NinBlockConfig`."""
    out = block["out_channels"]
    mlp1, mlp2 = block.get("mlp_channels") or [out, out]
    bn = block.get("batch_norm", False)
    layers = []
    for cin, cout, k, s, p in [
        (block["in_channels"], out, block["kernel_size"], block.get("stride", 1), block.get("padding", 0)),
        (out, mlp1, 1, 1, 0),
        (mlp1, mlp2, 1, 1, 0),
    ]:
        layers.append(nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def nin(config):
    """d2l's NiN: blocks with max pools between them, dropout before the last, global pool."""
    blocks = config["blocks"]
    layers = []
    for index, block in enumerate(blocks):
        if index == len(blocks) - 1:
            layers.append(nn.Dropout(config.get("dropout", 0.5)))
        layers.append(nin_block(block))
        if index != len(blocks) - 1:
            size, stride = config.get("pool_size", 3), config.get("pool_stride", 2)
            layers.append(nn.MaxPool2d(size, stride=stride))
    layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()]
    return nn.Sequential(*layers)


PRECISIONS = ["default", "strict-f32", "amp-f16", "amp-bf16"]


def set_precision(precision):
    """TF32 on or off for `default` and `strict-f32`; the autocast type, or None."""
    strict = precision == "strict-f32"
    torch.backends.cudnn.allow_tf32 = not strict
    if strict:
        torch.backends.cuda.matmul.allow_tf32 = False
    return {"amp-f16": torch.float16, "amp-bf16": torch.bfloat16}.get(precision)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn, steps, warmup, device):
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def time_layers(path, steps, warmup, device, dtype):
    """Median seconds of each pass of each convolution listed in the JSON file `path`, with
    tensors of `dtype` on `device`."""
    with open(path) as f:
        layers = json.load(f)
    results = []
    for layer in layers:
        x = torch.randn(layer["input"], device=device, dtype=dtype)
        w = torch.randn(layer["weight"], device=device, dtype=dtype)
        b = torch.randn(layer["weight"][0], device=device, dtype=dtype)
        stride, padding = layer["stride"], layer["padding"]
        with torch.no_grad():
            dy = torch.randn_like(torch.nn.functional.conv2d(x, w, b, stride, padding))

        def backward(mask):
            return lambda: torch.ops.aten.convolution_backward(
                dy, x, w, [w.shape[0]], stride, padding, [1, 1], False, [0, 0], 1, mask
            )

        with torch.no_grad():
            results.append(
                {
                    "name": layer["name"],
                    "forward": median_seconds(
                        lambda: torch.relu_(torch.nn.functional.conv2d(x, w, b, stride, padding)),
                        steps,
                        warmup,
                        device,
                    ),
                    "weight_grad": median_seconds(
                        backward([False, True, True]), steps, warmup, device
                    ),
                    "input_grad": median_seconds(
                        backward([True, False, False]), steps, warmup, device
                    ),
                }
            )
    return results


def peak_rss_bytes():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def export_onnx(config, path):
    """Writes the network of `config`, in evaluation mode, to `path` as ONNX, batch size free."""
    net = nin(config).eval()
    channels = config["blocks"][0]["in_channels"]
    height, width = config["input_size"]
    example = torch.rand(1, channels, height, width)
    torch.onnx.export(
        net,
        example,
        path,
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )


def time_onnx(args):
    """Median seconds of `InferenceSession.run` on `args.batch` random images."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(args.onnx_model, options, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    channels, height, width = shape[1:]
    rng = np.random.default_rng(args.seed)
    images = rng.random((args.batch, channels, height, width), dtype=np.float32)

    def step():
        return session.run(None, {"images": images})[0][0, 0]

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    json.dump(
        {
            "framework": f"onnxruntime {ort.__version__}",
            "device": "cpu",
            "threads": args.threads,
            "precision": "strict-f32",
            "seconds_per_step": median,
            "images_per_s": args.batch / median,
            "peak_rss_bytes": peak_rss_bytes(),
        },
        sys.stdout,
    )
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="NinConfig as JSON (a file path)")
    parser.add_argument("--mode", choices=["train", "infer"])
    parser.add_argument("--batch", type=int)
    parser.add_argument("--layers", help="time these convolutions instead (a JSON file)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    parser.add_argument("--precision", choices=PRECISIONS, default="default")
    parser.add_argument("--export-onnx", metavar="PATH", help="write the network as ONNX and exit")
    parser.add_argument("--onnx-model", metavar="PATH", help="time this ONNX model in ONNX Runtime")
    args = parser.parse_args()

    if args.onnx_model:
        if not args.batch:
            parser.error("--onnx-model needs --batch")
        time_onnx(args)
        return
    import_torch()
    if args.export_onnx:
        if not args.config:
            parser.error("--export-onnx needs --config")
        with open(args.config) as f:
            export_onnx(json.load(f), args.export_onnx)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    # cuDNN then benchmarks its convolution algorithms for each shape, as burn's autotune does.
    torch.backends.cudnn.benchmark = device.type == "cuda"
    amp = set_precision(args.precision)
    if args.layers:
        layers = time_layers(args.layers, args.steps, args.warmup, device, amp or torch.float32)
        json.dump({"layers": layers}, sys.stdout)
        print()
        return
    if not (args.config and args.mode and args.batch):
        parser.error("--config, --mode and --batch are required without --layers")
    with open(args.config) as f:
        config = json.load(f)
    net = nin(config).to(device)
    channels = config["blocks"][0]["in_channels"]
    height, width = config["input_size"]
    classes = config["blocks"][-1].get("mlp_channels") or [config["blocks"][-1]["out_channels"]] * 2
    images = torch.rand(args.batch, channels, height, width, device=device)
    labels = torch.randint(0, classes[1], (args.batch,), device=device)

    def autocast():
        return torch.autocast(device.type, dtype=amp, enabled=amp is not None)

    if args.mode == "train":
        net.train()
        if args.optimizer == "adamw":
            optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        else:
            optimizer = torch.optim.SGD(
                net.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
            )
        loss_fn = nn.CrossEntropyLoss()
        scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)

        def step():
            optimizer.zero_grad()
            with autocast():
                loss = loss_fn(net(images), labels)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            return loss.item()
    else:
        net.eval()

        def step():
            with torch.inference_mode(), autocast():
                return net(images)[0, 0].item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    json.dump(
        {
            "framework": f"pytorch {torch.__version__}",
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(),
            "precision": args.precision,
            "seconds_per_step": median,
            "images_per_s": args.batch / median,
            "peak_rss_bytes": peak_rss_bytes(),
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
