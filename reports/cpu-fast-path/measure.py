"""Which fast-path settings win on this CPU? Steady-state training images/s per variant.

Each variant trains resnet18 on MNIST (lr 1e-3) for WARM rounds untimed, then
ROUNDS timed rounds of STEPS optimizer steps; the median round is reported. Only what wins
here goes into plan.CPU_FAST. Run: python reports/cpu-fast-path/measure.py [VARIANT ...] > out.md
"""

import statistics
import sys
import time

import torch

from mnistbench.cases.case import TrainCase
from mnistbench.data import load_raw, make_split
from mnistbench.train import plan as P
from mnistbench.train import trainer as T

STEPS, ROUNDS, WARM = 20, 3, 1


def rate(case, split, *, channels_last=False, amp="off", fused=False, compile_=False, threads=None):
    old = dict(P.CPU_FAST)
    P.CPU_FAST.update(channels_last=channels_last, amp=amp, fused_optimizer=fused)
    if threads:
        torch.set_num_threads(threads)
    try:
        trainer = T.Trainer(case, split)
        t0 = time.perf_counter()
        if compile_:
            trainer.model = torch.compile(trainer.model)
        for _ in range(WARM):
            trainer.train_epoch()
        warm_s = time.perf_counter() - t0
        times = []
        for _ in range(ROUNDS):
            t = time.perf_counter()
            trainer.train_epoch()
            times.append(time.perf_counter() - t)
        return len(trainer.split.y_train) / statistics.median(times), warm_s
    finally:
        P.CPU_FAST.clear()
        P.CPU_FAST.update(old)
        torch.set_num_threads(2)


def main():
    split = make_split(load_raw("MNIST"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}\n")
    print("| batch | optimizer | variant | images/s | vs classic | warm-up s |")
    print("| --- | --- | --- | --- | --- | --- |")
    variants = sys.argv[1:] or None
    for bs, opt in ((16, "adam"), (16, "sgd"), (64, "adam")):
        base = dict(dataset="MNIST", model="resnet18", batch_size=bs, optimizer=opt, lr=1e-3,
                    train_limit=STEPS * bs, eval_limit=200)
        classic, w = rate(TrainCase(**base, path="classic"), split)
        rows = [("classic (DataLoader, fp32, eager)", classic, w)]
        fast = TrainCase(**base, path="fast")
        for name, kw in [
            ("tensor loader", {}),
            ("tensor + fused optimizer", {"fused": True}),
            ("tensor + fused + channels_last", {"fused": True, "channels_last": True}),
            ("tensor + channels_last", {"channels_last": True}),
            ("tensor + bf16 autocast", {"amp": "bf16"}),
            ("tensor + torch.compile", {"compile_": True}),
            ("tensor, 1 thread", {"threads": 1}),
        ]:
            if variants and name not in variants:
                continue
            r, w = rate(fast, split, **kw)
            rows.append((name, r, w))
        for name, r, w in rows:
            print(f"| {bs} | {opt} | {name} | {r:.0f} | {r / classic:.2f}x | {w:.1f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
