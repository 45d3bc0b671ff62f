"""`hyprgen` command line: build, list, show, train."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import HyprgenError
from .train_options import add_arguments


def _cmd_build(args) -> int:
    from . import builder as B

    if args.check:
        problems = B.check()
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print(f"{len(problems)} generated module(s) out of date: run `hyprgen build --all`", file=sys.stderr)
            return 1
        print(f"all {len(B.shipped_specs())} generated modules are current")
        return 0
    if args.all:
        for path in B.build_all():
            print(f"built {path}")
        return 0
    if not args.specs:
        print("hyprgen build: give SPEC files, --all or --check", file=sys.stderr)
        return 2
    for spec in args.specs:
        print(f"built {B.build(spec, args.out)}")
    return 0


def _cmd_list(args) -> int:
    from .builder import shipped_specs
    from .spec import PREV_SPIKE, load_spec

    for path in shipped_specs():
        neuron, _ = load_spec(path)
        states = [s.name for s in neuron.states_] + ([PREV_SPIKE] if neuron.reads_prev_spike else [])
        params = [p.name for p in neuron.params_]
        print(f"{neuron.name:<12} states: {', '.join(states):<16} params: {', '.join(params) or '-':<28} "
              f"output: {neuron.output_kind}")
    return 0


def _cmd_show(args) -> int:
    from .builder import generate
    from .derive import sparsity
    from .paths import neurons_dir

    spec = Path(args.name) if args.name.endswith(".py") else neurons_dir() / f"{args.name}.py"
    if not args.name.endswith(".py") and not spec.is_file():
        from .builder import shipped_specs

        names = ", ".join(p.stem for p in shipped_specs())
        raise HyprgenError(f"no shipped neuron named '{args.name}' (shipped: {names}); pass a spec file (.py) "
                           "instead")
    ir, _ = generate(spec)
    carried, params = ir["carried"], [p["name"] for p in ir["params"]]
    print(f"{ir['name']}: {ir['doc']}")
    print(f"  carried state r = ({', '.join(carried)}), d = {len(carried)}; parameters θ = ({', '.join(params)}), "
          f"p = {len(params)}; output: {ir['output']['kind']}")
    if ir["output"]["surrogate"]:
        print(f"  surrogate ψ(x) = {ir['output']['surrogate']['expr']}  ({ir['output']['surrogate']['name']})")
    print("step:")
    for d in ir["definitions"]:
        tag = {"spike": "H", "reset": "reset" + (", detached" if ir["detach_reset"] else "")}.get(d["kind"])
        print(f"  {d['name']} = {'H(' + d['expr'] + ')' if d['kind'] == 'spike' else d['expr']}"
              + (f"   [{tag}]" if tag and d["kind"] != "spike" else ""))
    for name, e in zip(carried, ir["next_state"]):
        print(f"  {name}' = {e}")
    print("common subexpressions:")
    for t, e in ir["jacobians"]["cse"]:
        print(f"  {t} = {e}")
    j = ir["jacobians"]
    print("local Jacobians (docs/hypr.md §2):")
    for i, ri in enumerate(carried):
        for k, rk in enumerate(carried):
            if j["A"][i][k] is not None:
                print(f"  A[{ri},{rk}] = {j['A'][i][k]}")
        if j["c"][i] is not None:
            print(f"  c[{ri}] = {j['c'][i]}")
        for k, pk in enumerate(params):
            if j["D"][i][k] is not None:
                print(f"  D[{ri},{pk}] = {j['D'][i][k]}")
    for k, rk in enumerate(carried):
        if j["a"][k] is not None:
            print(f"  a[{rk}] = {j['a'][k]}")
    if j["gamma"] is not None:
        print(f"  gamma = {j['gamma']}")
    for k, pk in enumerate(params):
        if j["delta"][k] is not None:
            print(f"  delta[{pk}] = {j['delta'][k]}")
    print("sparsity (X nonzero, . structural zero):")
    for key, rows in sparsity(ir).items():
        print(f"  {key:<6}" + " | ".join(rows))
    return 0


def _cmd_train(args) -> int:
    from .train import main as train_main

    return train_main(args)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hyprgen", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="generate modules from neuron specs")
    b.add_argument("specs", nargs="*", help="spec files (.py)")
    b.add_argument("--out", default=None, help="output folder (default: the cache)")
    b.add_argument("--all", action="store_true", help="rebuild every shipped neuron into generated/")
    b.add_argument("--check", action="store_true", help="fail naming every stale or missing generated module")
    b.set_defaults(fn=_cmd_build)
    sub.add_parser("list", help="the shipped neurons").set_defaults(fn=_cmd_list)
    s = sub.add_parser("show", help="derived Jacobians and sparsity of a neuron")
    s.add_argument("name", help="a shipped neuron's name or a spec file")
    s.set_defaults(fn=_cmd_show)
    t = sub.add_parser("train", help="train an RSNN (default: BRF + HYPR on the delayed cue task)")
    add_arguments(t)
    t.set_defaults(fn=_cmd_train)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except HyprgenError as exc:
        print(f"hyprgen: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unwritable --out folder, a full disk, ...: one line, no traceback
        if isinstance(exc, BrokenPipeError):  # output piped into `head`
            sys.stderr.close()
            return 0
        print(f"hyprgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hyprgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
