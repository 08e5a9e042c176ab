"""The command line: exit status, output and options of ``convexrelu crosscheck`` and ``solve``.

The checks themselves are tested on the library function in ``test_crosscheck.py``.
"""

import argparse
import json

import jax
import numpy as np
import pytest

import convexrelu as cr
from convexrelu import cli, datasets


@pytest.mark.slow
def test_crosscheck_tiny_passes_and_writes_report(tmp_path, capsys):
    code = cli.main(
        ["crosscheck", "--dataset", "2d", "--n", "12", "--m", "10", "--runs", "2", "--steps", "30000",
         "--out", str(tmp_path), "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["passed"] and all(rep["checks"].values())
    assert rep["dataset"] == "2d" and rep["seed"] == 0 and rep["n"] == 12
    assert set(rep["times_s"]) >= {"data", "training", "patterns", "native solver", "cvxpy solver", "certificates"}
    for png in ("margins.png", "alignment.png", "directions.png"):
        assert (tmp_path / png).stat().st_size > 0
    assert "crosscheck PASSED" in out


@pytest.mark.slow
def test_crosscheck_with_far_too_few_steps_fails(capsys):
    code = cli.main(
        ["crosscheck", "--dataset", "2d", "--n", "12", "--m", "10", "--runs", "2", "--steps", "50",
         "--no-bridge", "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAIL] every run reaches γ*" in out and "crosscheck FAILED" in out


@pytest.mark.slow
def test_crosscheck_json_is_one_object(capsys):
    code = cli.main(
        ["crosscheck", "--dataset", "2d", "--n", "12", "--m", "10", "--runs", "2", "--steps", "50",
         "--no-bridge", "--json"]
    )
    captured = capsys.readouterr()
    rep = json.loads(captured.out)  # the whole of stdout is one JSON object, no table
    assert code == 1 and rep["passed"] is False
    assert rep["checks"]["every run reaches γ* (within 0.001)"] is False
    assert rep["check_tolerances"]["every run reaches γ* (within 0.001)"] == {"margin_tol": 1e-3}
    assert len(rep["runs_detail"]) == 2 and rep["dataset"] == "2d"
    assert "·" not in captured.err  # --json implies no stage lines


@pytest.fixture
def data_file(tmp_path):
    X, y = datasets.orthogonally_separable(10, 2, key=jax.random.key(3))
    path = tmp_path / "data.npz"
    np.savez(path, X=np.asarray(X), y=np.asarray(y))
    return str(path)


def test_solve_prints_value_status_gap(data_file, capsys):
    assert cli.main(["solve", "--data", data_file, "--program", "regularized", "--beta", "0.1"]) == 0
    out = capsys.readouterr().out
    for field in ("value", "status    : optimal", "gap", "time"):
        assert field in out


def _count_calls(monkeypatch, name):
    calls = []
    real = getattr(cr, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cr, name, counted)
    return calls


@pytest.mark.parametrize("program, solver", [("max-margin", "solve_max_margin"), ("regularized", "solve_regularized")])
def test_solve_runs_once_and_repeat_runs_k_times(data_file, monkeypatch, capsys, program, solver):
    calls = _count_calls(monkeypatch, solver)
    argv = ["solve", "--data", data_file, "--program", program, "--beta", "0.1", "--quiet"]
    assert cli.main(argv) == 0
    assert len(calls) == 1  # one solve, not a second one for the timing
    assert cli.main(argv + ["--repeat", "3", "--json"]) == 0
    assert len(calls) == 1 + 3
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(rep["times_s"]) == 3 and all(t > 0 for t in rep["times_s"])


def test_solve_json_is_one_object_with_value_status_gap(data_file, capsys):
    assert cli.main(["solve", "--data", data_file, "--json"]) == 0
    captured = capsys.readouterr()
    rep = json.loads(captured.out)  # the whole of stdout is one JSON object
    assert rep["status"] == "optimal" and rep["gap"] <= 1e-5
    assert rep["gamma_star"] == pytest.approx(1 / (2 * rep["value"]))
    X, y = datasets.load_file(data_file)
    D = cr.enumerate_patterns(jnp_f64(X))
    ref = cr.solve_max_margin(jnp_f64(X), jnp_f64(y), D, tol=1e-6)  # the same program, directly
    assert rep["value"] == pytest.approx(float(ref.value), rel=1e-5)
    assert rep["patterns"] == {"count": D.shape[0], "exact": True} and rep["n"] == 10
    assert captured.err == ""  # --json: no progress line
    # with an unregularized intercept: the same program as the library's, at most the bias-free value
    assert cli.main(["solve", "--data", data_file, "--json", "--intercept"]) == 0
    with_b = json.loads(capsys.readouterr().out)
    ref_b = cr.solve_max_margin(jnp_f64(X), jnp_f64(y), D, intercept=True)
    assert with_b["status"] == "optimal" and with_b["value"] == pytest.approx(float(ref_b.value), rel=1e-5)
    assert with_b["intercept_b"] == pytest.approx(float(ref_b.intercept), abs=1e-4)
    assert with_b["value"] <= rep["value"] * (1 + 1e-6)


def jnp_f64(a):
    import jax.numpy as jnp

    return jnp.asarray(a, jnp.float64)


def test_solve_shows_live_progress_while_solving(data_file, monkeypatch, capsys):
    """A slow solve: the elapsed-time line appears at once and is redrawn by the thread."""
    import time

    real = cr.solve_max_margin

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(cr, "solve_max_margin", slow)
    monkeypatch.setattr(cli.LiveLine, "__init__", _fast_live_line_init(cli.LiveLine.__init__))
    assert cli.main(["solve", "--data", data_file]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("solving: ")]
    assert len(lines) >= 3 and "elapsed" in lines[0]  # the first at 0 s, then every 0.1 s
    elapsed = [float(ln.split(": ")[1].split(" s")[0]) for ln in lines]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 0.3


def _fast_live_line_init(init):
    def fast(self, label, **kwargs):
        init(self, label, **{**kwargs, "interval": 0.1})

    return fast


def test_live_line_feeds_iteration_and_gap():
    import io

    buf = io.StringIO()
    with cli.LiveLine("solving", stream=buf, interval=0.05) as line:
        line.update(iteration=7, gap=3e-4)
        import time

        time.sleep(0.2)
    assert "solving: 0.0 s elapsed" in buf.getvalue().splitlines()[0]
    assert "iteration 7, gap 3.0e-04" in buf.getvalue()


@pytest.mark.parametrize("command", ["solve", "crosscheck"])
def test_keyboard_interrupt_exits_130_with_one_line(data_file, monkeypatch, capsys, command):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cr, "solve_max_margin", interrupted)
    monkeypatch.setattr(cr, "crosscheck", interrupted)
    argv = [command, "--data" if command == "solve" else "--dataset", data_file]
    assert cli.main(argv + ["--quiet"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "interrupted\n" and captured.out == ""


def _subparsers(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_option_has_help_with_its_default():
    parser = cli.build_parser()
    commands = _subparsers(parser)
    assert set(commands) == {"crosscheck", "solve", "fit", "sweep"}
    for name, sub in [("convexrelu", parser), *commands.items()]:
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help"
            if action.option_strings:
                assert "default" in action.help, f"{name} {action.option_strings}: help names no default"
        text = sub.format_help()
        assert "130 interrupted" in text and "2 bad input or usage" in text  # exit codes in the epilog
    flat = lambda text: " ".join(text.split())  # noqa: E731 - undo the help's line wrapping
    assert "per run (default: 60000)" in flat(commands["crosscheck"].format_help())  # --steps
    assert "compilation (default: 1)" in flat(commands["solve"].format_help())  # --repeat


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["crosscheck", "--runs", "0"])
    with pytest.raises(SystemExit, match="unknown dataset"):
        cli.main(["crosscheck", "--dataset", "no-such-data"])
    with pytest.raises(SystemExit, match="--beta is required"):
        cli.main(["solve", "--program", "regularized", "--n", "8", "--d", "2"])


@pytest.mark.parametrize(
    "argv",
    [
        ["crosscheck", "--runs", "0"],
        ["crosscheck", "--dataset", "no-such-data"],
        ["solve", "--program", "regularized", "--n", "8", "--d", "2"],
        ["solve", "--data", "2d", "--d", "3"],
        ["solve", "--repeat", "0"],
    ],
)
def test_bad_input_exits_2_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


def test_solver_progress_feeds_the_live_line():
    # the CLI's progress callback writes the solver's iteration and gap onto the line shown now
    import jax

    import convexrelu as cr
    from convexrelu import datasets

    X, y = datasets.orthogonally_separable(10, 2, key=jax.random.key(3))
    D = cr.enumerate_patterns(X)
    with cli.LiveLine("solving", enabled=False) as line:
        sol = cr.solve_max_margin(X, y, D, progress=cli._show_progress)
        jax.block_until_ready(sol.value)
        jax.effects_barrier()  # the callbacks have run
        assert line.iteration == int(sol.iterations) and line.gap == pytest.approx(float(sol.gap))
    assert cli.LiveLine.current is None


@pytest.mark.slow
def test_ctrl_c_ends_a_long_solve_at_once(tmp_path):
    # the console script's Ctrl-C: one line, no traceback, status 130, without waiting for the
    # compiled solve in flight (an interior-point solve of tens of seconds)
    import os
    import signal
    import subprocess
    import sys
    import time

    code = "from convexrelu.cli import entry; entry()"
    argv = ["--no-cache", "solve", "--data", "teacher", "--n", "800", "--d", "10", "--patterns", "3000",
            "--program", "max-margin", "--tol", "1e-7"]
    import convexrelu

    repo = os.path.dirname(os.path.dirname(convexrelu.__file__))  # the package under test
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": repo}
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=tmp_path, text=True)
    first = proc.stderr.readline()  # the live line appears as the solve starts
    assert "solving" in first, first
    time.sleep(4.0)
    assert proc.poll() is None, "the solve ended before the interrupt"
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert time.perf_counter() - t0 < 3.0
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
