"""pytest plugin (entry point ``pytest11``): hardware-simulator tests.

Options: ``--nd-targets loihi2-emu,rram`` (default: every simulated target available here),
``--nd-hardware PROFILE`` (or ``target=profile,...``), ``--nd-report DIR``,
``--nd-seeds N``, ``--nd-calibration FILE|N`` / ``--nd-calibrate-on-eval`` (what programs
that calibrate on data, RRAM's ADC ranges, are calibrated on). Fixtures: ``nd_target`` (parametrizes a test over the targets),
``nd_seed`` (over the seeds; with ``nd_target`` only targets that take a seed get more
than seed 0), ``nd_compile`` (compile a model once per target in the session),
``nd_session``. Assertions: :mod:`neurodeploy.testing.assertions`. See docs/testing.md.

It costs nothing when unused: this module imports only pytest, adds its options and does
its work only for tests that ask for its fixtures or when an ``--nd-*`` option is given.
"""

from __future__ import annotations

import pytest

_KEY = pytest.StashKey()


def pytest_addoption(parser):
    g = parser.getgroup("neurodeploy", "neurodeploy hardware-simulator tests")
    g.addoption("--nd-targets", default=None, metavar="T1,T2",
                help="targets nd_target runs over (default: every simulated target available: loihi2-emu, rram, lava if installed)")
    g.addoption("--nd-hardware", default=None, metavar="PROFILE",
                help="hardware profile (name or .toml) for targets of its kind, or target=profile,...")
    g.addoption("--nd-report", default=None, metavar="DIR", help="write each test's reports (JSON + HTML) and an index page to DIR")
    g.addoption("--nd-seeds", default=1, type=int, metavar="N", help="seeds nd_seed runs over (device noise of seeded targets)")
    g.addoption("--nd-calibration", default=None, metavar="FILE|N",
                help="calibration inputs (.npy, or .npz with x_cal or x) for programs that calibrate on data (RRAM ADC "
                     "ranges), or N: hold out the first N samples of each check; without it such checks are refused")
    g.addoption("--nd-calibrate-on-eval", action="store_true", default=False,
                help="calibrate data-dependent programs on the checked samples themselves (flagged in the reports)")


def pytest_configure(config):
    from .session import Session, push

    o = config.option
    try:
        s = Session(o.nd_targets, o.nd_hardware, o.nd_report, o.nd_seeds, o.nd_calibration, o.nd_calibrate_on_eval)
        if o.nd_targets:
            s.targets  # noqa: B018 - validate the names now (imports the target registry)
        if o.nd_hardware:
            for name in s.hardware.values():
                from ..hardware import load_profile

                load_profile(name)
    except Exception as exc:  # a bad --nd-* option is a usage error, not a traceback
        raise pytest.UsageError(str(exc).splitlines()[0]) from None
    config.stash[_KEY] = s
    push(s)
    if s.report_dir is not None:
        config.pluginmanager.register(_Reporter(s), "neurodeploy-report")


def pytest_unconfigure(config):
    from .session import pop

    s = config.stash.get(_KEY, None)
    if s is not None:
        pop(s)


def pytest_generate_tests(metafunc):
    names = metafunc.fixturenames
    if "nd_target" not in names and "nd_seed" not in names:
        return
    s = metafunc.config.stash[_KEY]
    seeds = list(range(s.seeds))
    if "nd_target" in names and "nd_seed" in names:
        from .session import takes_option

        pairs = [(t, k) for t in s.targets for k in (seeds if takes_option(t, "seed") else [0])]
        metafunc.parametrize(["nd_target", "nd_seed"], pairs, ids=[f"{t}-seed{k}" for t, k in pairs])
    elif "nd_target" in names:
        metafunc.parametrize("nd_target", s.targets)
    else:
        metafunc.parametrize("nd_seed", seeds, ids=[f"seed{k}" for k in seeds])


@pytest.fixture
def nd_target(request) -> str:
    """The target this instance of the test runs on (from ``--nd-targets``)."""
    return request.param


@pytest.fixture
def nd_seed(request) -> int:
    """The seed this instance of the test runs with (``--nd-seeds N``: 0 … N-1)."""
    return request.param


@pytest.fixture(scope="session")
def nd_session(request):
    """The session's options and caches (:class:`neurodeploy.testing.session.Session`)."""
    return request.config.stash[_KEY]


@pytest.fixture(scope="session")
def nd_compile(nd_session):
    """``nd_compile(model, target, hardware=None, seed=0, **options)``: the compiled
    program, compiled once per (model, target, profile, seed, options) in the session."""

    def compile_(model, target, hardware=None, seed: int = 0, **options):
        graph = nd_session.graph(model)
        return nd_session.program(graph, target, nd_session.profile(target, hardware), seed, options)

    return compile_


class _Reporter:
    """Registered only with ``--nd-report``: tracks the running test and its outcome, and
    writes the index page at the end."""

    def __init__(self, session):
        self.s = session

    def pytest_runtest_setup(self, item):
        self.s.current_test = item.nodeid

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.failed or report.skipped:
            prev = self.s.outcomes.get(report.nodeid)
            self.s.outcomes[report.nodeid] = "error" if report.failed and report.when != "call" else (
                prev if prev in ("failed", "error") else report.outcome)

    def pytest_sessionfinish(self, session):
        from .reports import write_index

        if self.s.checks:
            write_index(self.s.report_dir, self.s)

    def pytest_terminal_summary(self, terminalreporter):
        if self.s.checks:
            terminalreporter.write_line(f"neurodeploy: reports of {len(self.s.checks)} test(s) in {self.s.report_dir / 'index.html'}")
