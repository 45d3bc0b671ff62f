"""One way to build a learner from a method name: `make_learner(method, net, **options)`.

Methods are the runtime's learners; variants are a method with one of its options set, named so
that studies and tables can list them beside the methods:

    hypr         HYPR(net, chunk, backend, trace_dtype, drop_spike_paths, readout_memory)  (runtime/hypr.py)
    bptt         BPTT(net, detach_recurrent)                                               (runtime/bptt.py)
    eprop        EProp(net, jacobians, readout_memory)                                     (runtime/eprop.py)
    hypr_drop       hypr with drop_spike_paths=True (as the HYPR authors' release)
    hypr_same_step  hypr with readout_memory=False (the paper's same-step learning signal, §3)
    bptt_detach     bptt with detach_recurrent=True (no gradient through W_rec's input o^{t-1})

Every option belongs to one or two methods (`OWNER`); an option of another method must be left unset
(None, or False for a flag), so that nothing is silently ignored. Unset options take the learner's
own default. This module imports torch only inside make_learner (the CLI reads METHODS at start-up).
"""
from __future__ import annotations

from typing import Mapping

METHODS = ("hypr", "bptt", "eprop")
VARIANTS = {"hypr_drop": ("hypr", "drop_spike_paths", True), "hypr_same_step": ("hypr", "readout_memory", False),
            "bptt_detach": ("bptt", "detach_recurrent", True)}   # name → (method, option, its value)
NAMES = METHODS + tuple(VARIANTS)
OWNER = {"chunk": ("hypr",), "backend": ("hypr",), "trace_dtype": ("hypr",), "drop_spike_paths": ("hypr",),
         "readout_memory": ("hypr", "eprop"), "detach_recurrent": ("bptt",),
         "jacobians": ("eprop",), "check_finite": ("hypr", "bptt", "eprop")}
# option → the methods whose learners take it


def method_of(name: str) -> str:
    """The method a name (method or variant) builds: 'hypr_drop' → 'hypr'."""
    if name in VARIANTS:
        return VARIANTS[name][0]
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(NAMES)}")
    return name


def options_for(name: str, values: Mapping) -> dict:
    """The options of `name`'s method among `values` (e.g. a run's config, which carries every option)."""
    method = method_of(name)
    return {k: v for k, v in values.items() if method in OWNER.get(k, ())}


def make_learner(name: str, net, *, loss: str = "ce", process_group=None, **options):
    """The learner `name` (a method or a variant) of `net` with the loss and the given options.

    A ValueError names an unknown method or option, or an option of another method that is set;
    the learners' own checks (e.g. runtime.hypr.option_problem for HYPR's backends) raise as theirs."""
    from ..runtime import BPTT, HYPR, EProp

    method = method_of(name)
    for key, value in options.items():
        if key not in OWNER:
            raise ValueError(f"unknown learner option {key!r}; options: {', '.join(OWNER)}")
        if method not in OWNER[key] and value is not None and value is not False:
            raise ValueError(f"{key}={value!r} is an option of {' and '.join(OWNER[key])}, not of {name}")
    kwargs = {k: v for k, v in options.items() if method in OWNER[k] and v is not None}
    if name in VARIANTS:
        _, option, value = VARIANTS[name]
        kwargs[option] = value
    learner = {"hypr": HYPR, "bptt": BPTT, "eprop": EProp}[method]
    return learner(net, loss=loss, process_group=process_group, **kwargs)
