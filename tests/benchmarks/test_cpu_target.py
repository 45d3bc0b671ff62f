"""benchmarks/cpu_target.py: the configurations cover issue 15's targets, and the ratios it reports are
the quotients of the times it measured (checked on made-up results against hand-computed values)."""
from benchmarks.cpu_target import configs, markdown, median_round, ratios


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


def test_a_configuration_measured_in_rounds_reports_its_median_round_whole():
    """--rounds: the round of median time is reported with its own stage times and memory (not a mix of
    rounds), the lower middle one for an even count, and every round's time stays beside it."""
    c = configs(quick=True)[0]
    rounds = [result(c, ms, peak=peak) for ms, peak in ((3.0, 30), (1.0, 10), (2.0, 20), (4.0, 40))]
    got = median_round(rounds)
    assert got["time_per_step_s"] == 2.0e-3 and got["peak_increase_bytes_median"] == 20
    assert got["round_times_per_step_s"] == [3.0e-3, 1.0e-3, 2.0e-3, 4.0e-3]
    assert median_round(rounds[:3])["time_per_step_s"] == 2.0e-3
    assert "| 2.000 (1.000–4.000) |" in markdown([got], [], machine=None, roofline_note=False)
