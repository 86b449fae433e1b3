"""The "Performance" page: training and simulator speed from the recorded benchmarks.

Reads ``results/bench_train.json`` (``cryo-companion bench train``) and
``results/bench_simulate.json`` (``cryo-companion bench simulate``) and returns table rows for
:func:`cryo_companion.tables.format_table` and a figure; nothing is typed in. A device or a
figure that was not measured shows as missing (``-`` in a table; absent from the figure).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_training_scaling",
    "projection_rows",
    "simulator_rows",
    "training_columns",
    "training_rows",
]

Rows = dict[str, dict[str, object]]


def _devices(record: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((record or {}).get("data") or {})


def _short(commit: object) -> object:
    return commit[:7] if isinstance(commit, str) else commit


def training_columns(bench_train: Mapping[str, Any] | None) -> list[str]:
    """Return the columns of :func:`training_rows`: ``N=1``, ``N=2``, ... then the settings.

    Parameters
    ----------
    bench_train : mapping or None
        The ``bench_train`` result (``{"data": {device: entry}, "provenance": ...}``).

    Returns
    -------
    list of str
        ``["N=1", ..., "batch", "iters x rounds", "commit"]``.
    """
    ns = sorted({int(n) for e in _devices(bench_train).values()
                 for net in e.get("networks", {}).values()
                 for mode in net.get("modes", {}).values() for n in mode})
    return [f"N={n}" for n in ns] + ["batch", "iters x rounds", "commit"]


def training_rows(bench_train: Mapping[str, Any] | None, network: str = "dsrf3d") -> Rows:
    """Return the milliseconds per run and iteration, one row per device and mode.

    Parameters
    ----------
    bench_train : mapping or None
        The ``bench_train`` result, or None when it has not been recorded.
    network : str
        Registered network name.

    Returns
    -------
    dict
        ``{"cuda · vmap": {"N=1": ms, ..., "batch": 32, "iters x rounds": "20 x 3",
        "commit": "abc1234"}, ...}``: the cost of one run's iteration when N runs train at
        once (one process: step / N; N processes: 1 / total rate); a failed or unmeasured
        figure is None.
    """
    rows: Rows = {}
    for dev, e in _devices(bench_train).items():
        net = e.get("networks", {}).get(network)
        if not net:
            continue
        s = e.get("settings", {})
        for mode, by_n in net.get("modes", {}).items():
            row: dict[str, object] = {f"N={n}": v.get("ms_per_run_iteration")
                                      for n, v in by_n.items()}
            row.update({"batch": s.get("batch"),
                        "iters x rounds": f"{s.get('iters')} x {s.get('rounds')}",
                        "commit": _short(e.get("commit"))})
            rows[f"{dev} · {mode}"] = row
    return rows


def projection_rows(bench_train: Mapping[str, Any] | None, network: str = "dsrf3d") -> Rows:
    """Project Table I's wall time (6 runs x 15,000 iterations) on each device.

    Parameters
    ----------
    bench_train : mapping or None
        The ``bench_train`` result.
    network : str
        Registered network name.

    Returns
    -------
    dict
        ``{device: {"mode", "ms per step (6 runs)", "simulation ms per iteration",
        "projected wall s", "target s", "simulator share (N=6)"}}``; devices measured at a
        batch other than the paper's 32 have no projection (None values).
    """
    rows: Rows = {}
    for dev, e in _devices(bench_train).items():
        net = e.get("networks", {}).get(network)
        if not net:
            continue
        p = net.get("table1_projection") or {}
        rows[dev] = {"mode": p.get("mode"), "ms per step (6 runs)": p.get("ms_per_step"),
                     "simulation ms per iteration": p.get("sim_ms_per_iteration"),
                     "projected wall s": p.get("wall_s"), "target s": p.get("target_wall_s"),
                     "simulator share (N=6)": net.get("simulator", {})
                     .get("share_of_iteration", {}).get("6")}
    return rows


def simulator_rows(bench_simulate: Mapping[str, Any] | None) -> Rows:
    """List the simulator's best throughput per recorded device and output set.

    Parameters
    ----------
    bench_simulate : mapping or None
        The ``bench_simulate`` result.

    Returns
    -------
    dict
        ``{key: {"device", "subtomograms/s", "at batch", "outputs", "commit"}}`` with ``key``
        the record's entry (``cpu``, ``cpu-no-clean``, ``cuda``).
    """
    rows: Rows = {}
    for key, e in _devices(bench_simulate).items():
        rows[key] = {"device": e.get("device_name"),
                     "subtomograms/s": e.get("best_subtomograms_per_s"),
                     "at batch": e.get("best_batch"),
                     "outputs": ("noisy + clean + mask" if e.get("need_clean", True)
                                 else "noisy + mask"),
                     "commit": _short(e.get("commit"))}
    return rows


def plot_training_scaling(bench_train: Mapping[str, Any] | None, network: str = "dsrf3d", *,
                          axes: list[Axes] | None = None) -> Figure:
    """Plot milliseconds per run-iteration against the number of runs, one panel per device.

    Parameters
    ----------
    bench_train : mapping or None
        The ``bench_train`` result.
    network : str
        Registered network name.
    axes : list of matplotlib.axes.Axes or None
        One axes per recorded device (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
        Log-log axes, one line per mode (``loop``, ``vmap``, ``processes``); a panel says
        "not measured" for a device without figures of ``network``.

    Raises
    ------
    ValueError
        If nothing is recorded, or ``axes`` has the wrong length.
    """
    import matplotlib.pyplot as plt

    devs = _devices(bench_train)
    if not devs:
        raise ValueError("no training benchmark recorded (results/bench_train.json)")
    if axes is None:
        fig, ax_arr = plt.subplots(1, len(devs), figsize=(4.5 * len(devs), 3.4),
                                   layout="constrained", squeeze=False)
        axes = list(ax_arr[0])
    elif len(axes) != len(devs):
        raise ValueError(f"{len(axes)} axes for {len(devs)} devices")
    # Figure | SubFigure for matplotlib; the axes given are a figure's (subfigures unsupported)
    fig = axes[0].figure  # type: ignore[assignment]
    for ax, (dev, e) in zip(axes, devs.items()):
        net = e.get("networks", {}).get(network, {})
        for mode, by_n in net.get("modes", {}).items():
            pts = sorted((int(n), v["ms_per_run_iteration"]) for n, v in by_n.items()
                         if v.get("ms_per_run_iteration") is not None)
            if pts:
                ax.plot(*zip(*pts), "o-", ms=4, label=mode)
        s = e.get("settings", {})
        ax.set(xscale="log", yscale="log", xlabel="runs trained at once, N",
               ylabel="ms per run and iteration",
               title=f"{e.get('device_name', dev)}\n{network}, batch {s.get('batch')}")
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    return fig
