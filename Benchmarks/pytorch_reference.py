"""PyTorch CPU counterparts of `deform bench` sections, for same-machine comparisons.

Usage: python3 Benchmarks/pytorch_reference.py   (needs `pip install torch`; not used by the tests)
Prints JSON with the same shapes and step definitions as `deform bench`.
"""
import json
import time

import torch


def best_and_median(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[0], ts[len(ts) // 2]


def mlp_step(steps=500, repeats=5):
    torch.manual_seed(9)
    widths = [82, 256, 128, 64, 32, 16, 123]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(128, widths[0])
    target = torch.randn(128, widths[-1])

    def run():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = ((model(x) - target) ** 2).mean()
            loss.backward()
            opt.step()

    best, med = best_and_median(run, repeats)
    return {"microsecondsPerStep": best / steps * 1e6, "microsecondsPerStepMedian": med / steps * 1e6}


def conv(repeats=5):
    torch.manual_seed(5)
    x = torch.randn(16, 64, 64, 64)
    w = torch.randn(64, 64, 3, 3) * 0.05
    b = torch.randn(64)
    with torch.no_grad():
        fwd = best_and_median(lambda: torch.nn.functional.conv2d(x, w, b, padding=1), repeats)
    xv, wv, bv = (t.clone().requires_grad_() for t in (x, w, b))

    def both():
        y = torch.nn.functional.conv2d(xv, wv, bv, padding=1)
        torch.autograd.grad(y.sum(), [xv, wv, bv])

    fb = best_and_median(both, repeats)
    return {"forwardMilliseconds": fwd[0] * 1e3, "forwardBackwardMilliseconds": fb[0] * 1e3,
            "forwardBackwardMillisecondsMedian": fb[1] * 1e3}


def overhead(iterations=200_000):
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    best, _ = best_and_median(lambda: [x + x for _ in range(iterations)], 3)
    xt = x.clone().requires_grad_()
    tracked, _ = best_and_median(lambda: [xt + xt for _ in range(iterations)], 3)
    n = iterations // 10

    def backward():
        for _ in range(n):
            torch.autograd.grad((xt * xt + xt).sum(), xt)

    bw, _ = best_and_median(backward, 3)
    return {"untrackedAddNanoseconds": best / iterations * 1e9, "trackedAddNanoseconds": tracked / iterations * 1e9,
            "backwardPerOpNanoseconds": bw / n / 3 * 1e9}


if __name__ == "__main__":
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "mlpTrainingStep": mlp_step(), "conv2d": conv(), "elementwiseOverhead": overhead()}, indent=2))
