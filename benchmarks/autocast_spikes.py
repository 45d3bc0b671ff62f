"""What torch.autocast does to a spiking network's forward: the spike trains under bfloat16 and float16
autocast against float32, per shipped neuron, beside float32 against float64 (why HYPR refuses
autocast, docs/module.md).

    python -m benchmarks.autocast_spikes [--hidden 32] [--steps 120] [--batch 32] [--out FILE]

Autocast runs the GEMMs (W_in x + b, W_rec o^{t-1}) in the reduced dtype, so every synaptic current
I^t is rounded to it (bfloat16: 8 significant bits); the neuron's state stays float32 (type promotion
in the generated step). A current rounded across a threshold moves a spike, and with recurrence a
moved spike moves others. Per neuron: an active float32 network (hyprgen.verify.active_network: every
hidden layer fires on 2–60 % of steps) on a random input; the share of (sample, step, neuron) spikes
that differ, the samples whose hidden spike train differs at all, the median first step where one
does, and the relative L2 error of the readout; the same for float32 against float64, the rounding
every float32 run has. Printed, and written as JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import os

import torch

import hyprgen
from hyprgen import verify
from hyprgen.paths import shipped_specs


COMPARISONS = ("float32 vs float64", "bfloat16 autocast", "float16 autocast")


def differences(ref, ref_rec, out, rec, batch: int) -> dict:
    differ = rec[0] != ref_rec[0]                           # [B, T, n]
    per_sample = differ.any(-1)                             # [B, T]
    diverged = per_sample.any(-1)                           # [B]
    first = per_sample.float().argmax(-1)[diverged]         # first differing step of each diverged sample
    return {"spikes_differing": differ.float().mean().item(),
            "samples_diverged": f"{int(diverged.sum())}/{batch}",
            "median_first_step": first.float().median().item() if diverged.any() else None,
            "readout_rel_error": ((out.double() - ref.double()).norm() / ref.double().norm()).item()}


def compare(neuron: str, args) -> dict:
    """float32 against float64 (the rounding the float32 runs have anyway), then bfloat16 and float16
    autocast against float32."""
    net, x, rates = verify.active_network(neuron, hidden=(args.hidden,), n_in=12, n_out=2, T=args.steps,
                                          B=args.batch, dtype=torch.float32)
    with torch.no_grad():
        ref, _, ref_rec = net(x, record=True)
        row = {"neuron": neuron, "rate": rates[0]}
        out, _, rec = net.double()(x.double(), record=True)
        row["float32 vs float64"] = differences(out, rec, ref, ref_rec, x.shape[0])
        net.float()
        for dtype in (torch.bfloat16, torch.float16):
            with torch.autocast("cpu", dtype=dtype):
                out, _, rec = net(x, record=True)
            row[f"{str(dtype).removeprefix('torch.')} autocast"] = differences(ref, ref_rec, out, rec, x.shape[0])
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for spec in shipped_specs():
        if hyprgen.load(spec.stem).META["output"] == "spike":   # not the readout neuron li
            rows.append(compare(spec.stem, args))
    print(f"{'neuron':11} {'rate':>5}  {'':18} {'spikes differ':>13} {'samples':>7} {'1st step':>8} {'readout err':>11}")
    for row in rows:
        for what in COMPARISONS:
            r = row[what]
            first = "-" if r["median_first_step"] is None else f"{r['median_first_step']:.0f}"
            print(f"{row['neuron']:11} {row['rate']:5.3f}  {what:18} {r['spikes_differing']:13.4f} "
                  f"{r['samples_diverged']:>7} {first:>8} {r['readout_rel_error']:11.2g}")
    result = {"hidden": args.hidden, "steps": args.steps, "batch": args.batch, "torch": torch.__version__,
              "load": os.getloadavg()[0], "neurons": rows}
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
