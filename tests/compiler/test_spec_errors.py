"""Bad neuron specs: each gives ONE clear hyprgen.errors.SpecError, never a SymPy traceback.

Every case writes a small spec file to tmp_path, builds it with hyprgen.compiler.build.generate, and checks the
error's parts against what the case wrote: the file and line of the offending declaration (`where`),
the symbol, and words that state the problem. The CLI must print the same as one line,
`hyprgen: error: ...`, and exit with 2.
"""
import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hyprgen.compiler.build import generate
from hyprgen.cli import main
from hyprgen.errors import HyprgenError, SpecError
from hyprgen.paths import neurons_dir
from hyprgen.compiler.spec_file import load_spec
from hyprgen.spec import Neuron

from ..conftest import SHIPPED

HEADER = """\
import sympy as sp
from hyprgen.spec import Neuron, constant, interp, normal, uniform
from hyprgen.surrogates import slayer, straight_through, x
"""

# A valid spec that every case modifies: a LIF neuron without reset.
GOOD = """\
neuron = Neuron("probe")
u = neuron.state("u")
tau = neuron.param("tau", init=uniform(5, 25), clamp=(1, None))
u_new = neuron.let("u_new", u * sp.exp(-1 / tau) + neuron.input)
neuron.spike(u_new - 1, surrogate=slayer())
neuron.update(u, u_new)
"""


def write_spec(tmp_path: Path, body: str, name: str = "probe.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def line_of(path: Path, snippet: str) -> int:
    """1-based line of the only line of the file that contains snippet."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if snippet in line]
    assert len(hits) == 1, f"snippet {snippet!r} is on lines {hits}"
    return hits[0]


def spec_error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as info:
        generate(path)
    err = info.value
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    return err


def assert_error(path: Path, snippet: str | None, symbol: str | None, *problem: str) -> SpecError:
    """The build fails at the line holding `snippet` (file only when None), naming symbol and problem."""
    err = spec_error(path)
    where = path.name if snippet is None else f"{path.name}:{line_of(path, snippet)}"
    assert err.where is not None and err.where.endswith(where), (err.where, where, str(err))
    assert str(err).startswith(err.where)
    assert err.symbol == symbol, (err.symbol, str(err))
    for words in problem:
        assert re.search(words, err.problem), f"{words!r} not in {err.problem!r}"
    return err


def test_the_base_spec_is_valid(tmp_path):
    ir, text = generate(write_spec(tmp_path, GOOD))
    assert ir.carried == ["u"] and "def step_with_jacobians" in text


# ----------------------------------------------------------------------------------------------
# The list


def test_unknown_symbol(tmp_path):
    path = write_spec(tmp_path, GOOD.replace(
        'u_new = neuron.let("u_new", u * sp.exp(-1 / tau) + neuron.input)',
        'w = sp.Symbol("w", real=True)\nu_new = neuron.let("u_new", u * sp.exp(-1 / tau) + w + neuron.input)'))
    assert_error(path, 'neuron.let("u_new"', "w", "unknown symbol", "u_new", "declare it")


def test_non_real_symbol_shadowing_a_state(tmp_path):
    path = write_spec(tmp_path, GOOD.replace(
        'u_new = neuron.let("u_new", u * sp.exp(-1 / tau) + neuron.input)',
        'u_plain = sp.Symbol("u")\nu_new = neuron.let("u_new", u_plain * sp.exp(-1 / tau) + neuron.input)'))
    assert_error(path, 'neuron.let("u_new"', "u", "not real", "the symbol that neuron.state")


@pytest.mark.parametrize("where, expr", [
    ("let", "u * sp.exp(-sp.I / tau) + neuron.input"),
    ("update", None),
])
def test_imaginary_unit(tmp_path, where, expr):
    if where == "let":
        body = GOOD.replace("u * sp.exp(-1 / tau) + neuron.input", expr)
        path = write_spec(tmp_path, body)
        assert_error(path, 'neuron.let("u_new"', "u_new", "not real-valued", "imaginary")
    else:
        path = write_spec(tmp_path, GOOD.replace("neuron.update(u, u_new)", "neuron.update(u, u_new + 2 * sp.I)"))
        assert_error(path, "neuron.update(u", "u", "new value of state 'u'", "not real-valued")


def test_missing_update(tmp_path):
    path = write_spec(tmp_path, GOOD + 'v = neuron.state("v")\n')
    assert_error(path, 'neuron.state("v")', "v", "no update", r"neuron\.update")


def test_state_read_but_never_updated(tmp_path):
    path = write_spec(tmp_path, GOOD.replace('u = neuron.state("u")', 'u = neuron.state("u")\nv = neuron.state("v")')
                      .replace("+ neuron.input)", "+ v + neuron.input)"))
    assert_error(path, 'neuron.state("v")', "v", "read but never updated")


def test_no_output(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("neuron.spike(u_new - 1, surrogate=slayer())\n", ""))
    assert_error(path, 'Neuron("probe")', None, "probe", "no output", r"neuron\.spike", r"neuron\.output")


@pytest.mark.parametrize("value, problem", [
    ('"u_new"', "must be a SymPy expression"),
    ("None", "must be a SymPy expression"),
    ("[u_new]", "must be a SymPy expression"),
    ("u_new > 0", "got the condition"),
    ("sp.Matrix([u_new])", "scalar"),
])
def test_output_that_is_not_an_expression(tmp_path, value, problem):
    path = write_spec(tmp_path, GOOD.replace("neuron.spike(u_new - 1, surrogate=slayer())",
                                             f"neuron.output({value})"))
    assert_error(path, "neuron.output(", "output", "continuous output", problem)


@pytest.mark.parametrize("surrogate, problem", [
    ('sp.exp(-sp.Symbol("y", real=True) ** 2)', "function of x alone.*reads y"),
    ('sp.exp(-sp.Symbol("x") ** 2)', "'x' that is not real"),
    ("sp.Float(0.3)", "not a function of x.*straight_through"),
    ("1", "not a function of x"),
    ('"slayer"', r"is a string.*surrogates\.slayer\(\)"),
    ("slayer", r"constructor: call it"),
    ("lambda v: v > 0", "not a real-valued expression"),
    ("lambda v: 1 / 0", "calling the surrogate with x failed.*ZeroDivisionError"),
    ("None", "needs a surrogate"),
])
def test_surrogate_that_is_not_a_function_of_x(tmp_path, surrogate, problem):
    path = write_spec(tmp_path, GOOD.replace("surrogate=slayer()", f"surrogate={surrogate}"))
    assert_error(path, "neuron.spike(", "surrogate", problem)


def test_library_and_callable_surrogates_are_accepted(tmp_path):
    for surrogate in ("straight_through()", "lambda v: 1 / (1 + 10 * abs(v)) ** 2", "sp.exp(-x ** 2)"):
        generate(write_spec(tmp_path, GOOD.replace("surrogate=slayer()", f"surrogate={surrogate}")))


@pytest.mark.parametrize("init, clamp, problem", [
    ("uniform(0.5, 25)", "(1, None)", r"uniform\(0\.5, 25\.0\) lies outside the clamp"),
    ("uniform(5, 25)", "(1, 20)", "outside the clamp"),
    ("constant(0.0)", "(1, None)", "outside the clamp"),
    ("normal(0.0, 1.0)", "(1, None)", "mean 0.0 lies outside the clamp"),
    ("uniform(5, 25)", "(30, 1)", "is empty"),
])
def test_parameter_init_outside_its_clamp(tmp_path, init, clamp, problem):
    path = write_spec(tmp_path, GOOD.replace("init=uniform(5, 25), clamp=(1, None)", f"init={init}, clamp={clamp}"))
    assert_error(path, 'neuron.param("tau"', "tau", problem)


def test_syntax_error(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("neuron.update(u, u_new)", "neuron.update(u, (u_new)"))
    err = assert_error(path, "neuron.update(u, (u_new)", None, "syntax error", "never closed")
    assert "neuron.update(u, (u_new)" in err.problem  # the offending text


def brf_spec(tmp_path: Path, clamp: str | None) -> Path:
    """The shipped BRF spec with the clamp of ω replaced (None: no clamp at all)."""
    text = (neurons_dir() / "brf.py").read_text()
    shipped = "clamp=(-0.999 / DELTA, 0.999 / DELTA),"
    assert shipped in text, "neurons/brf.py changed: update this test's clamp text"
    text = text.replace(shipped, "" if clamp is None else f"clamp={clamp},")
    path = tmp_path / "brf_variant.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("clamp", [None, "(-1.5 / DELTA, 1.5 / DELTA)", "(0, 2 / DELTA)"])
def test_domain_hazard_brf_sqrt_with_omega_unclamped(tmp_path, clamp):
    """p(ω) = (−1 + sqrt(1 − (δω)²))/δ needs δω ≤ 1; a clamp that lets |ω| exceed 1/δ is a hazard."""
    path = brf_spec(tmp_path, clamp)
    assert_error(path, 'neuron.let("p_omega"', "p_omega", "domain hazard", "sqrt", "undefined when", "< 0",
                 "reachable", "omega", "clamp")


def test_brf_with_omega_clamped_below_one_over_delta_builds(tmp_path):
    ir, _ = generate(brf_spec(tmp_path, "(-0.5 / DELTA, 0.5 / DELTA)"))
    assert ir.carried == ["u", "v", "q"]


# ----------------------------------------------------------------------------------------------
# Other mistakes a user will plausibly make


@pytest.mark.parametrize("declaration, snippet, symbol, problem", [
    ('neuron.state("lambda")', "lambda", "lambda", "Python keyword"),
    ('neuron.let("class", u)', "class", "class", "Python keyword"),
    ('neuron.param("if", init=uniform(0, 1))', '"if"', "if", "Python keyword"),
    ('neuron.const("for", 1.0)', '"for"', "for", "Python keyword"),
    ('neuron.state("my var")', "my var", "my var", "not a Python identifier"),
    ('neuron.state(3)', "state(3)", "3", "not a Python identifier"),
    ('neuron.let("u", u)', 'let("u"', "u", "already taken by the state 'u'"),
    ('neuron.const("tau", 2.0)', 'const("tau"', "tau", "already taken by the parameter 'tau'"),
    ('neuron.state("I")', 'state("I")', "I", "already taken by the input current"),
    ('neuron.let("z", u)', 'let("z"', "z", "reserved for the previous spike"),
    ('neuron.state("next_u")', "next_u", "next_u", "reserved for the new values"),
    ('neuron.let("reset0", u)', "reset0", "reset0", r"neuron\.reset"),
    ('neuron.let("t0", u)', '"t0"', "t0", "common-subexpression temporary"),
    ('neuron.state("t17")', "t17", "t17", "common-subexpression temporary"),
    ('neuron.state("_hidden")', "_hidden", "_hidden", "starts with '_'"),
])
def test_bad_names(tmp_path, declaration, snippet, symbol, problem):
    path = write_spec(tmp_path, GOOD + declaration + "\n")
    assert_error(path, snippet, symbol, problem)


@pytest.mark.parametrize("name", ["torch", "state", "params", "psi", "heaviside", "surrogate",
                                  "spike_with_surrogate", "jacobians", "step", "init_state", "META", "float"])
def test_names_of_the_generated_code_are_rejected(tmp_path, name):
    path = write_spec(tmp_path, GOOD + f'neuron.state("{name}")\n')
    assert_error(path, f'"{name}"', name, "generated code uses")


def test_every_name_the_generated_steps_use_is_unavailable_to_specs():
    """Independent of RESERVED_NAMES: collect every name that the generated step functions read or
    write (and the module's own globals) that is not a symbol of the spec, and try to declare it."""
    for shipped in SHIPPED:
        ir, text = generate(neurons_dir() / f"{shipped}.py")
        tree = ast.parse(text)
        spec_names = ({d.name for d in ir.definitions} | {s.name for s in ir.states}
                      | {p.name for p in ir.params} | {ir.input})
        used = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.Assign, ast.Import)):
                used |= {getattr(node, "name", None)} | {a.asname or a.name for a in getattr(node, "names", [])}
                used |= {t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)}
            if isinstance(node, ast.FunctionDef) and node.name.startswith("step"):
                used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                used |= {a.arg for a in node.args.args}
        used -= spec_names | {None, "True", "False", "None"}
        assert {"torch", "state", "params", "jacobians"} <= used  # the walk found the step's names
        for name in sorted(used):
            with pytest.raises(SpecError, match=re.escape(name)):
                Neuron("probe").state(name)
        t_names = {n for n in used if re.fullmatch(r"t\d+", n)}
        if ir.jacobians.cse:
            assert t_names, f"{shipped}: CSE temporaries were expected in the generated step"


def test_unknown_function(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("u * sp.exp(-1 / tau)", 'sp.Function("f")(u) * sp.exp(-1 / tau)'))
    assert_error(path, 'neuron.let("u_new"', "f", "undefined function f", "SymPy's own functions")


def test_function_without_a_printer(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("u * sp.exp(-1 / tau)", "sp.gamma(u) * sp.exp(-1 / tau)"))
    assert_error(path, 'neuron.let("u_new"', "u_new", "gamma", "cannot print", "supported functions")


def test_piecewise_without_default(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("u * sp.exp(-1 / tau)", "sp.Piecewise((u, u > 0)) * sp.exp(-1 / tau)"))
    assert_error(path, 'neuron.let("u_new"', "u_new", "Piecewise", "no default branch", r"\(value, True\)")


def test_piecewise_with_default_builds(tmp_path):
    generate(write_spec(tmp_path, GOOD.replace("u * sp.exp(-1 / tau)",
                                               "sp.Piecewise((u, u > 0), (0.5 * u, True)) * sp.exp(-1 / tau)")))


def test_step_function_inside_the_step_has_no_derivative(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("u * sp.exp(-1 / tau)", "sp.Heaviside(u) * sp.exp(-1 / tau)"))
    assert_error(path, 'neuron.let("u_new"', "u_new", "derivative of 'u_new' with respect to 'u'", "DiracDelta",
                 r"neuron\.spike")


@pytest.mark.parametrize("expr, problem", [
    ("sp.Derivative(u ** 2, u)", "unevaluated Derivative"),
    ("sp.Integral(u, u)", "unevaluated Integral"),
    ("sp.nan", "not finite"),
    ("sp.oo", "not finite"),
    ("sp.zoo", "not finite"),
])
def test_unevaluated_or_non_finite_expressions(tmp_path, expr, problem):
    path = write_spec(tmp_path, GOOD.replace("u * sp.exp(-1 / tau)", f"u * sp.exp(-1 / tau) + {expr}"))
    assert_error(path, 'neuron.let("u_new"', "u_new", problem)


def test_division_by_a_value_that_can_be_zero(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("clamp=(1, None)", "clamp=(None, None)"))
    assert_error(path, 'neuron.let("u_new"', "u_new", "domain hazard", "1/tau", "= 0", r"tau in \[-inf, inf\]")


def test_log_of_a_state_is_a_hazard(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("u * sp.exp(-1 / tau)", "sp.log(u) * sp.exp(-1 / tau)"))
    assert_error(path, 'neuron.let("u_new"', "u_new", "domain hazard", r"log\(u\)", "<= 0")


def test_symbol_named_like_a_sympy_function_the_step_uses(tmp_path):
    path = write_spec(tmp_path, GOOD.replace('u = neuron.state("u")', 'u = neuron.state("exp")'))
    assert_error(path, 'neuron.state("exp")', "exp", "name of the SymPy function", "rename")


def test_unused_parameter(tmp_path):
    path = write_spec(tmp_path, GOOD + 'w = neuron.param("w", init=uniform(0, 1))\n')
    assert_error(path, 'neuron.param("w"', "w", "never read", "gradient")


def test_update_of_something_that_is_not_a_state(tmp_path):
    path = write_spec(tmp_path, GOOD + "neuron.update(tau, u)\n")
    assert_error(path, "neuron.update(tau", "tau", "not a declared state", "states: u")


def test_state_updated_twice(tmp_path):
    path = write_spec(tmp_path, GOOD + "neuron.update(u, 2 * u)\n")
    err = assert_error(path, "neuron.update(u, 2 * u)", "u", "updated twice")
    assert f"{path.name}:{line_of(path, 'neuron.update(u, u_new)')}" in err.problem


def test_read_before_defined(tmp_path):
    path = write_spec(tmp_path, GOOD.replace(
        'u_new = neuron.let("u_new", u * sp.exp(-1 / tau) + neuron.input)',
        'later = sp.Symbol("later", real=True)\nearly = neuron.let("early", later)\n'
        'later = neuron.let("later", u)\nu_new = neuron.let("u_new", u * sp.exp(-1 / tau) + early + neuron.input)'))
    assert_error(path, 'neuron.let("early"', "later", "reads 'later' before it is defined")


def test_spike_given_a_comparison(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("neuron.spike(u_new - 1,", "neuron.spike(u_new > 1,"))
    assert_error(path, "neuron.spike(", "h", "distance above threshold", "not the comparison")


def test_two_outputs(tmp_path):
    path = write_spec(tmp_path, GOOD + "neuron.output(u)\n")
    assert_error(path, "neuron.output(u)", "output", "already declared at .*probe.py:")


def test_prev_spike_with_a_continuous_output(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("+ neuron.input)", "+ neuron.input - neuron.prev_spike)")
                      .replace("neuron.spike(u_new - 1, surrogate=slayer())", "neuron.output(u_new)"))
    assert_error(path, "neuron.output(u_new)", "z", "prev_spike is read but the output is not a spike")


@pytest.mark.parametrize("name, problem", [('"class"', "cannot name a Python module"),
                                           ('"my-lif"', "not a Python identifier")])
def test_bad_neuron_name(tmp_path, name, problem):
    path = write_spec(tmp_path, GOOD.replace('Neuron("probe")', f"Neuron({name})"))
    assert_error(path, "Neuron(", None, problem)


@pytest.mark.parametrize("argument, symbol, problem", [
    ('neuron.state("v", init="zero")', "v", "initial value of a state must be a real number"),
    ('neuron.state("v", init=float("nan"))', "v", "must be finite"),
    ('neuron.const("c", "1.0")', "c", "must be a real number"),
    ('neuron.param("w", init=uniform(0, 1), clamp=5)', "w", "clamp must be a pair"),
    ('neuron.param("w", init=uniform(0, 1), clamp=("low", None))', "w", "low bound must be a real number"),
    ('neuron.param("w", init=3)', "w", r"init must be uniform\(\.\.\)"),
    ('neuron.param("w", init=uniform(0, 1), transform="log")', "w", "unknown transform 'log'"),
    ('neuron.param("w", init=uniform("a", 1))', None, "low must be a real number"),
    ('neuron.param("w", init=uniform(2, 1))', None, "low must not exceed high"),
    ('neuron.param("w", init=normal(0, -1))', None, "std must be >= 0"),
])
def test_bad_declaration_arguments(tmp_path, argument, symbol, problem):
    path = write_spec(tmp_path, GOOD + argument + "\n")
    assert_error(path, argument, symbol, problem)


@pytest.mark.parametrize("statement, snippet, problem", [
    ("import math\nneuron.let('m', math.exp(u))", "math.exp", r"TypeError.*use sp\.exp"),
    ("if u > 0:\n    pass", "if u > 0", r"TypeError.*use sp\.Piecewise"),
    ("neuron.let('m', max(u, 0))", "max(u, 0)", r"TypeError.*sp\.Max"),
    ("1 / 0", "1 / 0", "ZeroDivisionError: division by zero"),
    ("import no_such_module_hyprgen", "import no_such", "ModuleNotFoundError"),
])
def test_python_errors_inside_the_spec_are_located(tmp_path, statement, snippet, problem):
    path = write_spec(tmp_path, GOOD + statement + "\n")
    assert_error(path, snippet, None, problem)


def test_spec_without_a_neuron(tmp_path):
    path = write_spec(tmp_path, "model = 3\n")
    assert_error(path, None, None, "bind a hyprgen.spec.Neuron to the name 'neuron'", "binds nothing")


def test_spec_file_not_found(tmp_path):
    assert_error(tmp_path / "absent.py", None, None, "not found")


def test_spec_file_not_utf8(tmp_path):
    path = tmp_path / "latin1.py"
    path.write_bytes((HEADER + "# caf\xe9\n" + GOOD).encode("latin-1"))
    assert_error(path, None, None, "not UTF-8")


def test_doc_with_quotes_and_backslashes_builds_a_valid_module(tmp_path):
    declaration = r'''Neuron("probe", doc='time constant \\tau, \\u00e9 and """triple""" \\N quotes')'''
    path = write_spec(tmp_path, GOOD.replace('Neuron("probe")', declaration))
    ir, text = generate(path)
    namespace = {}
    exec(compile(text, "probe_module.py", "exec"), namespace)
    assert namespace["__doc__"].startswith("probe: " + ir.doc)
    assert namespace["META"]["doc"] == ir.doc == 'time constant \\tau, \\u00e9 and """triple""" \\N quotes'


def test_spec_errors_never_leak_raw_exceptions(tmp_path):
    """Over a hundred wrong arguments in the base spec's calls: all are SpecErrors or build fine."""
    lines = GOOD.splitlines()
    mutations = ["u", "tau", "1", "None", "'u'", "sp.I", "x", "neuron", "neuron.input > 0", "[u]", "sp.oo",
                 "sp.Symbol('u')", "sp.zoo", "-1"]
    for i, line in enumerate(lines[1:], 1):
        head, paren, args = line.partition("(")  # mutate the arguments only, never what is assigned
        for m in mutations:
            for target in ("u_new", "u", "1", "tau"):
                if target not in args:
                    continue
                mutated = lines[:i] + [head + paren + args.replace(target, m, 1)] + lines[i + 1:]
                path = write_spec(tmp_path, "\n".join(mutated) + "\n", name=f"m{i}.py")
                try:
                    generate(path)
                except SpecError as exc:  # any other exception fails the test
                    assert "\n" not in str(exc) and path.name in str(exc), str(exc)


# ----------------------------------------------------------------------------------------------
# Through the CLI


@pytest.mark.parametrize("case", ["unknown_symbol", "syntax", "hazard"])
def test_cli_reports_one_line_and_exit_2(tmp_path, capsys, case):
    if case == "hazard":
        path = brf_spec(tmp_path, None)
    elif case == "syntax":
        path = write_spec(tmp_path, GOOD + "neuron.update(u,\n")
    else:
        path = write_spec(tmp_path, GOOD.replace("+ neuron.input)", "+ sp.Symbol('w', real=True) + neuron.input)"))
    for argv in (["build", str(path), "--out", str(tmp_path / "out")], ["show", str(path)]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith("hyprgen: error: ") and err.count("\n") == 1, err
        assert path.name in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_unknown_shipped_name(capsys):
    assert main(["show", "no_such_neuron"]) == 2
    err = capsys.readouterr().err
    assert "no shipped neuron named 'no_such_neuron'" in err and "lif" in err and "Traceback" not in err


def test_cli_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["build", str(neurons_dir() / "lif.py"), "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyprgen: error: ") and "Traceback" not in err


def test_cli_in_a_subprocess_prints_no_traceback(tmp_path):
    path = write_spec(tmp_path, GOOD + 'neuron.state("v")\n')
    run = subprocess.run([sys.executable, "-m", "hyprgen.cli", "build", str(path), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.startswith("hyprgen: error: ") and "Traceback" not in run.stderr
    line = line_of(path, 'neuron.state("v")')
    assert f"probe.py:{line}: symbol 'v': state has no update" in run.stderr


def test_load_spec_returns_the_neuron(tmp_path):
    neuron, source = load_spec(write_spec(tmp_path, GOOD))
    assert neuron.name == "probe" and source.startswith(HEADER)
    assert isinstance(SpecError("p"), HyprgenError)


def test_every_supported_function_has_a_torch_printer():
    """codegen.functions.SUPPORTED_FUNCTIONS is the contract between validation and the printers."""
    import sympy as sp

    from hyprgen.compiler.codegen.torch_printer import torch_code
    from hyprgen.compiler.codegen.functions import SUPPORTED_FUNCTIONS

    a, b = sp.symbols("a b", real=True)
    samples = {"Max": sp.Max(a, b), "Min": sp.Min(a, b), "Piecewise": sp.Piecewise((a, a > b), (b, True)),
               "Heaviside": sp.Heaviside(a - b)}
    for name in sorted(SUPPORTED_FUNCTIONS):
        expr = samples.get(name) or getattr(sp, name)(a + b)
        assert type(expr).__name__ == name, name
        code = torch_code(expr)
        assert "a" in code and "b" in code, (name, code)
