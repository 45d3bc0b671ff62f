"""benchmarks/cpu_target.py: the configurations cover issue 15's targets, and the ratios it reports are
the quotients of the times it measured (checked on made-up results against hand-computed values)."""
from benchmarks.cpu_target import configs, markdown, ratios


def result(config, ms_per_step: float, peak: int = 1 << 20) -> dict:
    return {"config": config.to_dict(), "label": config.label, "time_per_step_s": ms_per_step / 1e3,
            "peak_increase_bytes_median": peak, "load_before_after": [0.5, 0.6]}


def test_configurations_cover_the_targets():
    cs = configs(quick=False)
    names = [(c.name, c.threads) for c in cs]
    assert len(set(names)) == len(names)
    brf = [c for c in cs if c.suite == "brf"]
    assert {c.chunk for c in brf if c.backend == "cpu"} == {16, 32, 128, 512} and any(c.method == "bptt" for c in brf)
    assert {c.T for c in cs} == {4096}
    assert {c.threads for c in cs if c.suite == "cue"} == {1, 2}


def test_ratios_are_the_measured_quotients():
    cs = [c for c in configs(quick=True) if c.suite == "brf" and c.readout_memory in (None, False)]
    times = {("bptt", None, None): 2.0, ("hypr", 16, "cpu"): 1.6, ("hypr", 32, "cpu"): 1.2, ("hypr", 128, "cpu"): 1.0,
             ("hypr", 512, "cpu"): 1.1, ("hypr", 128, "torch"): 3.0, ("hypr", 512, "torch"): 4.0}
    results = [result(c, times[(c.method, c.chunk, c.backend if c.method == "hypr" else None)],
                      peak=(6 << 20) if (c.backend, c.chunk) == ("torch", 512) else (2 << 20)) for c in cs]
    (row,) = [r for r in ratios(results) if r["suite"] == "brf"]
    assert row["best_chunk"] == 128 and row["hypr_cpu_over_bptt"] == 0.5
    assert row["lambda16_over_best"] == 1.6 and row["torch_over_cpu_time_l128"] == 3.0
    assert row["torch_over_cpu_transient_memory_l512"] == 3.0
    assert "| brf | default | same-step | 2.000 | 128 | 1.000 | 0.50 | 1.60 | 3.00 | 3.0 |" in \
        markdown(results, [row], machine=None, roofline_note=False)
