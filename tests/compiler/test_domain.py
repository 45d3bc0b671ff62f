"""The domain analysis (compiler/intervals.py, compiler/domain.py) and its escape hatch in the spec.

Interval rules are checked against brute force: the expression evaluated with NumPy at many points
of the argument's range (its endpoints included where they are attained) must lie inside the range
the rule gives (to the last bit of the two libms), and come close to both of its finite ends (a rule may not be vacuous: FULL passes the
first test alone). Spec-level cases build a small spec in tmp_path, as tests/compiler/test_spec_errors.py.
"""
import math
import re
import warnings

import numpy as np
import pytest
import sympy as sp
import torch

from hyprgen.cli import main
from hyprgen.compiler.build import generate
from hyprgen.compiler.domain import hazards
from hyprgen.compiler.intervals import FULL, Range, interval

from hyprgen.errors import SpecWarning
from hyprgen.paths import neurons_dir

from ..conftest import SHIPPED
from .test_spec_errors import GOOD, assert_error, line_of, write_spec

x = sp.Symbol("x", real=True)

# (expression of x, ranges of x to try): every rule the analysis needs for the cases
RULES = [
    (sp.cosh(x), [Range(-3, 2), Range(0.5, 4), Range(-5, -1), Range(-1, 1, True, True)]),
    (sp.sinh(x), [Range(-3, 2), Range(0.5, 4)]),
    (sp.tanh(x), [Range(-3, 2), Range(-50, 50)]),
    (sp.exp(x), [Range(-3, 2), Range(-700, 3)]),
    (1 / sp.exp(x), [Range(-3, 2)]),
    (1 / sp.cosh(x / 60 - sp.Rational(1, 30)), [Range(-100, 100)]),
    ((1 + sp.tanh((x + 1.2) / 18)) / 2, [Range(-100, 60)]),
    (x**2, [Range(-3, 2), Range(1, 2, True, False)]),
    (x**3, [Range(-3, 2)]),
    (1 / x, [Range(0.5, 4), Range(-4, -0.5)]),
    (sp.sqrt(x), [Range(0, 4), Range(2, 9)]),
    (sp.Abs(x), [Range(-3, 2), Range(1, 3)]),
    (sp.log(x), [Range(0.1, 5)]),
    (sp.Min(x, 1), [Range(-2, 3)]),
    (sp.Max(x, 1), [Range(-2, 3)]),
    (sp.exp(sp.Min(0.5 * x + 25.2, 20)), [Range(-100, 200)]),
]


def _samples(r: Range, n: int = 20001) -> np.ndarray:
    """Points of r: a fine grid, its attained endpoints included, its open ones left out."""
    grid = np.linspace(r.lo, r.hi, n)
    keep = np.ones(n, bool)
    keep[0], keep[-1] = not r.lo_open, not r.hi_open
    return grid[keep]


@pytest.mark.parametrize("expr, ranges", RULES, ids=[str(e) for e, _ in RULES])
def test_interval_rule_contains_every_sampled_value_and_is_tight(expr, ranges):
    f = sp.lambdify(x, expr, "numpy")
    for r in ranges:
        values = f(_samples(r))
        got = interval(expr, {x: r})
        lo, hi = values.min(), values.max()
        ulps = 1e-12 * max(abs(lo), abs(hi), 1e-300)  # NumPy's and math's libm may differ in the last bit
        assert got.lo <= lo + ulps and hi - ulps <= got.hi, (str(expr), r, got, (lo, hi))
        for bound, sampled in ((got.lo, lo), (got.hi, hi)):
            assert math.isfinite(bound) and abs(bound - sampled) <= 1e-3 * max(1.0, abs(sampled)), \
                (str(expr), r, got, (lo, hi))


def test_exp_and_cosh_exclude_zero_so_division_is_safe():
    """exp(x) > 0 for every x, cosh(x) ≥ 1: dividing by them is never a hazard, even for x unbounded."""
    env = {x: FULL}
    assert interval(sp.exp(x), env).lo == 0 and interval(sp.exp(x), env).lo_open
    assert interval(sp.cosh(x), env).lo == 1
    assert hazards(1 / sp.exp(x), env) == [] and hazards(1 / sp.cosh(x), env) == []
    assert hazards(sp.log(sp.exp(x) + sp.cosh(x)), env) == []
    assert hazards(1 / x, env) and hazards(1 / sp.sinh(x), env) and hazards(1 / (sp.exp(x) - 1), env)


# ----------------------------------------------------------------------------------------------
# The false positives, through a whole spec


def test_division_by_an_exp_transformed_parameter_builds(tmp_path):
    """τ = exp(τ_raw) is positive whatever the raw value: 1/τ is defined (no clamp needed)."""
    path = write_spec(tmp_path, GOOD.replace('init=uniform(5, 25), clamp=(1, None)',
                                             'init=uniform(1.5, 3.2), transform="exp"'))
    ir, _ = generate(path)
    assert ir.params[0].transform["kind"] == "exp"


def test_one_over_cosh_of_a_state_builds(tmp_path):
    """Morris–Lecar's τ_n(v) ∝ 1/cosh((v − v3)/(2 v4)): cosh ≥ 1, so the division is safe for every v."""
    path = write_spec(tmp_path, GOOD.replace("u * sp.exp(-1 / tau)", "u * sp.exp(-1 / tau) / sp.cosh((u - 2) / 60)"))
    generate(path)


@pytest.mark.parametrize("expr, symbol, advice, not_advice", [
    ("sp.log(u)", "u", r'u is a state.*neuron\.state\("u", bounds=\(lo, hi\)\)', "clamp"),
    ("sp.sqrt(neuron.input)", "I", r"input current.*neuron\.assume\(neuron\.input, bounds=\(lo, hi\)\)", "clamp"),
    ("1 / (tau - 3)", "tau", r"tau is a parameter.*clamp=\(lo, hi\)", "bounds="),
])
def test_hazard_advice_fits_the_kind_of_symbol(tmp_path, expr, symbol, advice, not_advice):
    path = write_spec(tmp_path, GOOD.replace("u * sp.exp(-1 / tau)", f"u * sp.exp(-1 / tau) + {expr}"))
    err = assert_error(path, 'neuron.let("u_new"', "u_new", "domain hazard", "reachable", advice, "guard")
    assert not_advice not in err.problem, err.problem


def test_hazard_advice_for_a_transformed_parameter_names_its_raw_value(tmp_path):
    path = write_spec(tmp_path, GOOD.replace('init=uniform(5, 25), clamp=(1, None)', 'init=uniform(5, 25), '
                                             'transform="abs"').replace("sp.exp(-1 / tau)", "sp.exp(-1 / tau)"))
    assert_error(path, 'neuron.let("u_new"', "u_new", "domain hazard", r"1/tau_value", r"\|tau\|",
                 r"clamp the raw parameter 'tau'.*clamp=\(lo, hi\)")


# ----------------------------------------------------------------------------------------------
# The escape hatch: bounds on a state, neuron.assume for the input or a let


def test_state_bounds_are_used_by_the_analysis(tmp_path):
    log_u = GOOD.replace("u * sp.exp(-1 / tau)", "sp.log(u) * sp.exp(-1 / tau)")
    assert_error(write_spec(tmp_path, log_u), 'neuron.let("u_new"', "u_new", "domain hazard")
    generate(write_spec(tmp_path, log_u.replace('neuron.state("u")', 'neuron.state("u", init=1.0, bounds=(0.5, None))')))
    # a bound that admits the hazard does not hide it: log(0) is undefined
    assert_error(write_spec(tmp_path, log_u.replace('neuron.state("u")', 'neuron.state("u", init=1.0, bounds=(0, 9))')),
                 'neuron.let("u_new"', "u_new", "domain hazard", r"u in \[0, 9\]")


def test_assume_on_the_input_and_on_a_let(tmp_path):
    sqrt_input = GOOD.replace("+ neuron.input)", "+ sp.sqrt(neuron.input))")
    generate(write_spec(tmp_path, sqrt_input.replace("u_new = ", "neuron.assume(neuron.input, bounds=(0, None))\nu_new = ")))
    # a let whose range interval arithmetic overestimates (x − x² ≤ 1/4, seen as up to 2 for x in [0, 1])
    body = GOOD.replace('u = neuron.state("u")', 'u = neuron.state("u", bounds=(0, 1))').replace(
        "u_new = ", 'g = neuron.let("g", u - u**2)\nu_new = ').replace("+ neuron.input)", "+ sp.sqrt(1 - 4*g) + neuron.input)")
    assert_error(write_spec(tmp_path, body), 'neuron.let("u_new"', "u_new", "domain hazard", "sqrt")
    generate(write_spec(tmp_path, body.replace("u_new = ", "neuron.assume(g, bounds=(0, 0.25))\nu_new = ")))


@pytest.mark.parametrize("declaration, snippet, symbol, problem", [
    ('neuron.state("v", bounds=(2, 1))', "bounds=(2, 1)", "v", "empty"),
    ('neuron.state("v", init=5.0, bounds=(0, 1))', "bounds=(0, 1)", "v", r"initial value 5\.0 lies outside"),
    ('neuron.state("v", bounds=3)', "bounds=3", "v", r"pair \(lo, hi\)"),
    ('neuron.state("v", bounds=(0, float("nan")))', "bounds=(0,", "v", "finite"),
    ("neuron.assume(tau, bounds=(2, 3))", "neuron.assume(tau", "tau", r"parameter.*clamp=\(lo, hi\)"),
    ('neuron.assume(sp.Symbol("w", real=True), bounds=(2, 3))', "neuron.assume(sp.Symbol", "w", "not a state"),
    ("neuron.assume(u + 1, bounds=(2, 3))", "neuron.assume(u + 1", "u + 1", "not a state"),
])
def test_bad_bounds_and_assumptions(tmp_path, declaration, snippet, symbol, problem):
    assert_error(write_spec(tmp_path, GOOD + declaration + "\n"), snippet, symbol, problem)


def test_an_assumption_that_contradicts_the_computed_range_is_an_error(tmp_path):
    """exp(...) > 0: assuming the let lies in [-2, -1] can never hold."""
    body = GOOD.replace("neuron.spike(", 'e = neuron.let("e", sp.exp(u))\nneuron.assume(e, bounds=(-2, -1))\nneuron.spike(')
    assert_error(write_spec(tmp_path, body), "neuron.assume(e", "e", r"\[-2, -1\]", "cannot hold", r"\(0, ")


# ----------------------------------------------------------------------------------------------
# float32 overflow: a SpecWarning at the line, with the threshold where float32 really overflows


def _overflow_warnings(path) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generate(path)
    return [w.message for w in caught if isinstance(w.message, SpecWarning)]


def _float32(expr, value: float) -> float:
    """expr of u evaluated in float32 arithmetic (NumPy) at u = value."""
    with np.errstate(over="ignore"):
        return float(sp.lambdify(u, expr, "numpy")(np.float32(value)))


u = sp.Symbol("u", real=True)
G_LET, V_TILDE_LET = 'neuron.let("g"', 'neuron.let("v_tilde"'


@pytest.mark.parametrize("expr", ["sp.exp(0.5 * u + 25.2)", "sp.exp(-3 * u)", "sp.cosh(u / 3)", "sp.sinh(2 * u - 1)",
                                  "(u / 10) ** 9", "2 ** u"])
def test_overflow_warning_gives_the_float32_threshold(tmp_path, expr):
    """The warning's threshold in u is where NumPy's float32 evaluation turns inf: finite 0.01 % inside
    it, inf 0.01 % beyond it."""
    path = write_spec(tmp_path, GOOD.replace("u_new = ", f'g = neuron.let("g", {expr})\nu_new = ')
                      .replace("+ neuron.input)", "+ 1e-30 * g + neuron.input)"))
    (warning, *others) = _overflow_warnings(path)
    assert not others, [str(w) for w in others]
    assert warning.where.endswith(f"{path.name}:{line_of(path, G_LET)}") and warning.symbol == "g"
    assert "float32 overflow" in warning.problem and "u is a state" in warning.problem, warning.problem
    assert 'neuron.state("u", bounds=(lo, hi))' in warning.problem and "clamp the argument" in warning.problem
    e = eval(expr, {"sp": sp, "u": u})
    for end, outward in _thresholds_in_u(warning.problem):
        inside, beyond = end - outward * 1e-4 * abs(end), end + outward * 1e-4 * abs(end)
        assert math.isfinite(_float32(e, inside)), (expr, end, warning.problem)
        assert math.isinf(_float32(e, beyond)), (expr, end, warning.problem)


def _thresholds_in_u(problem: str) -> list[tuple[float, int]]:
    """(value, direction) for each end of the overflow region in u that the warning states: direction
    +1 when it overflows above the value, −1 below."""
    condition = re.search(r"(?:i\.e\. |when )([^,]*), which is reachable", problem).group(1)
    if "i.e." in problem:
        condition = problem.split("i.e. ")[1].split(", which is reachable")[0]
    number = r"(-?[\d.]+(?:e[-+]?\d+)?)"
    if m := re.fullmatch(rf"u < {number} or u > {number}", condition):
        return [(float(m[1]), -1), (float(m[2]), +1)]
    if m := re.fullmatch(rf"\|u\| > {number}", condition):
        return [(-float(m[1]), -1), (float(m[1]), +1)]
    if m := re.fullmatch(rf"u ([<>]) {number}", condition):
        return [(float(m[2]), +1 if m[1] == ">" else -1)]
    raise AssertionError(f"no threshold in u in {problem!r}")


ADEX_CAP = "sp.Min((v - v_t) / delta_t, EXP_ARG_MAX)"


def unclamped_adex(tmp_path):
    """The shipped AdEx spec without the cap on its exponential's argument (as it shipped before)."""
    text = (neurons_dir() / "adex.py").read_text()
    assert ADEX_CAP in text, "neurons/adex.py changed: update this test's text"
    path = tmp_path / "adex_unclamped.py"
    path.write_text(text.replace(ADEX_CAP, "(v - v_t) / delta_t").replace('Neuron("adex"', 'Neuron("adex_unclamped"'))
    return path


def test_adex_without_its_cap_warns_at_the_exponential(tmp_path):
    """The issue's shipped case: exp((v − v_T)/Δ_T) overflows float32 above v ≈ 127 mV."""
    path = unclamped_adex(tmp_path)
    (warning,) = _overflow_warnings(path)
    assert warning.where.endswith(f"{path.name}:{line_of(path, V_TILDE_LET)}"), warning.line
    assert warning.symbol == "v_tilde" and "exp(exp_arg)" in warning.problem and "v is a state" in warning.problem
    v = float(re.search(r"i\.e\. v > ([\d.]+)", warning.problem).group(1))
    exp_arg = (sp.Symbol("v", real=True) - (-50.4)) / 2.0     # (v − v_T)/Δ_T
    at = lambda value: _float32(sp.exp(exp_arg.subs(sp.Symbol("v", real=True), u)), value)  # noqa: E731
    assert math.isfinite(at(v * (1 - 1e-4))) and math.isinf(at(v * (1 + 1e-4)))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_neurons_build_without_overflow_warnings(name):
    assert _overflow_warnings(neurons_dir() / f"{name}.py") == []


def test_adex_cap_changes_nothing_below_the_peak(tmp_path):
    """The cap binds only above v = v_T + 20 Δ_T = −10.4 mV; every step leaves v ≤ v_peak = −40.4 mV. On
    v ∈ [−120, v_peak] the shipped AdEx and the uncapped one agree: new state, output and Jacobians."""
    import hyprgen
    capped, uncapped = hyprgen.load("adex"), hyprgen.load(unclamped_adex(tmp_path))
    gen = torch.Generator().manual_seed(0)
    v = torch.linspace(-120.0, -40.4, 4001, dtype=torch.float64)[:, None].expand(-1, 3)
    w = torch.rand(v.shape, generator=gen, dtype=torch.float64) * 20 - 5
    current = torch.randn(v.shape, generator=gen, dtype=torch.float64) * 3
    params = [torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64), torch.tensor([1.0, 2.7, 4.0], dtype=torch.float64),
              torch.tensor([100.0, 144.0, 200.0], dtype=torch.float64)]
    got, ref = (m.step_with_jacobians((v, w), current, params) for m in (capped, uncapped))
    flat = lambda out: [t for t in _leaves(out) if isinstance(t, torch.Tensor)]  # noqa: E731
    assert len(flat(got)) == len(flat(ref)) > 10
    for a, b in zip(flat(got), flat(ref)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _leaves(value):
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(value[key])
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def test_bounds_on_the_state_silence_the_warning(tmp_path):
    body = GOOD.replace("u_new = ", 'g = neuron.let("g", sp.exp(u))\nu_new = ').replace("+ neuron.input)", "+ g + neuron.input)")
    assert len(_overflow_warnings(write_spec(tmp_path, body))) == 1
    assert _overflow_warnings(write_spec(tmp_path, body.replace('neuron.state("u")', 'neuron.state("u", bounds=(None, 80))'))) == []


def test_cli_prints_the_warning_as_one_line_and_builds(tmp_path, capsys):
    path = unclamped_adex(tmp_path)
    assert main(["build", str(path), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"hyprgen: warning: ") and err.count("\n") == 1, err
    assert f"{path.name}:{line_of(path, V_TILDE_LET)}: symbol 'v_tilde': float32 overflow" in err
    assert (tmp_path / "out" / "adex_unclamped.py").exists()
