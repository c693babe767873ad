"""Fleet evaluation: score many bags with one model and merge them into one report.

Every bag is evaluated by ``run_evaluation`` into ``OUT/bags/<name>/`` (its own metrics.json
and report; an output bag only with ``FleetConfig.bag_outputs``), by one of three runners:

- ``jobs=1``: in this process, the model loaded once;
- ``jobs=N``: a pool of N local processes (``concurrent.futures``, spawned), each loading
  the model once;
- ``ray``: Ray tasks on a Ray cluster, one actor per worker holding the model
  (``fleet_ray``; Ray is an optional extra, imported only then).

Each bag comes back as a ``BagResult`` holding its ``EvalAccumulator``; the driver adds the
confusion matrices and PQ sums (tp, fp, fn, IoU sums) of the bags in input order, whatever
the runner and the order bags finished in, so the fleet metrics are exact (not averages of
averages) and identical to the last digit for every runner. A bag that fails (cannot be
opened, corrupt or truncated part way) is reported with its error and left out of the
merged metrics; the others still count.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import glob
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from .config import EvalConfig, EvalError

FLEET_METRICS_FILE = 'fleet_metrics.json'
BAG_SUFFIXES = ('.mcap', '.db3')


@dataclass
class FleetConfig:
    """What a fleet evaluation runs.

    Attributes:
        bags: Input bags (rosbag2 directories, .mcap or .db3 files), in report order.
        template: The per-bag options (``bag`` and ``out_dir`` are set per bag).
        out_dir: Fleet folder: ``fleet_metrics.json``, the fleet report, ``bags/<name>/``.
        jobs: Local worker processes (1: this process).
        ray_address: Run on Ray: ``''`` = a local Ray (or the one already initialised),
            else the cluster address for ``ray.init(address=...)``; None: no Ray.
        bag_outputs: Write each bag's output bag too (default: metrics and report only).
    """

    bags: Sequence[str]
    template: EvalConfig
    out_dir: str
    jobs: int = 1
    ray_address: Optional[str] = None
    bag_outputs: bool = False


@dataclass
class BagResult:
    """One bag's evaluation as the workers return it (picklable)."""

    bag: str
    name: str
    seconds: float
    error: Optional[str] = None
    metrics: Optional[Dict[str, Any]] = None
    accumulator: Any = field(default=None, repr=False)


def expand_bags(bags: Sequence[str], pattern: Optional[str]) -> List[str]:
    """The bags given, then those of ``--bags DIR_OR_GLOB``: a directory's bag directories
    (with metadata.yaml) and bag files, or a glob's matches; sorted, without duplicates."""
    found = list(bags)
    if pattern:
        if os.path.isdir(pattern) and not os.path.isfile(os.path.join(pattern,
                                                                       'metadata.yaml')):
            matches = [os.path.join(pattern, name) for name in os.listdir(pattern)]
            matches = [path for path in matches
                       if os.path.isfile(os.path.join(path, 'metadata.yaml'))
                       or path.endswith(BAG_SUFFIXES)]
        else:
            matches = glob.glob(pattern)
        if not matches:
            raise EvalError(f'--bags {pattern} matches no bag')
        found += sorted(matches)
    unique: List[str] = []
    for bag in found:
        if os.path.abspath(bag) not in {os.path.abspath(b) for b in unique}:
            unique.append(bag)
    if not unique:
        raise EvalError('give one or more bags, or --bags DIR_OR_GLOB')
    return unique


def bag_names(bags: Sequence[str]) -> List[str]:
    """Unique folder names for the bags' outputs (their base names, numbered if repeated)."""
    names: List[str] = []
    for bag in bags:
        base = os.path.basename(os.path.normpath(bag)) or 'bag'
        for suffix in BAG_SUFFIXES:
            base = base[:-len(suffix)] if base.endswith(suffix) else base
        name, count = base, 2
        while name in names:
            name, count = f'{base}_{count}', count + 1
        names.append(name)
    return names


def bag_config(fleet: FleetConfig, bag: str, name: str) -> EvalConfig:
    """The per-bag ``EvalConfig``: quiet, no Ctrl-C handler, its own output folder."""
    return replace(segmenter_config(fleet), bag=bag, dataset_dir=None,
                   out_dir=os.path.join(fleet.out_dir, 'bags', name), progress=False,
                   handle_sigint=False)


def segmenter_config(fleet: FleetConfig) -> EvalConfig:
    """The template the workers load their Segmenter from: its outputs are those the bags
    record (none without ``bag_outputs``), so no worker computes ``confidence`` for nothing."""
    return replace(fleet.template, outputs=fleet.template.outputs if fleet.bag_outputs else ())


def evaluate_bag(config: EvalConfig, name: str, segmenter: Any) -> BagResult:
    """Evaluate one bag with an open segmenter; every failure becomes ``error``."""
    from ..bags.bag_io import BagError
    from .evaluate import run_evaluation
    started = time.monotonic()
    try:
        summary = run_evaluation(config, segmenter)
    except (EvalError, BagError, ValueError, OSError) as error:
        line = ' '.join(str(error).split()) or type(error).__name__
        return BagResult(config.bag, name, time.monotonic() - started, error=line)
    except Exception as error:  # noqa: BLE001 - one bad bag must not stop the fleet
        return BagResult(config.bag, name, time.monotonic() - started,
                         error=f'{type(error).__name__}: {" ".join(str(error).split())}')
    accumulator = summary.accumulator
    accumulator._worst = []  # thumbnails stay in the bag's own report
    error = summary.read_error
    return BagResult(config.bag, name, time.monotonic() - started,
                     error=f'read error: {error}' if error else None,
                     metrics=summary.metrics, accumulator=accumulator)


# A worker process's segmenter, loaded once by ``_init_worker``.
_WORKER: Dict[str, Any] = {}


def _init_worker(template: EvalConfig) -> None:
    from .evaluate import load_segmenter
    _WORKER['segmenter'] = load_segmenter(template)


def _evaluate_in_worker(config: EvalConfig, name: str) -> BagResult:
    return evaluate_bag(config, name, _WORKER['segmenter'])


def _run_local(fleet: FleetConfig, jobs: List[tuple], done: Callable) -> List[BagResult]:
    from .evaluate import load_segmenter
    if fleet.jobs <= 1:
        results = []
        with load_segmenter(segmenter_config(fleet)) as segmenter:
            for config, name in jobs:
                results.append(evaluate_bag(config, name, segmenter))
                done(results[-1])
        return results
    import concurrent.futures
    import multiprocessing
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=min(fleet.jobs, len(jobs)), initializer=_init_worker,
            initargs=(segmenter_config(fleet),),
            mp_context=multiprocessing.get_context('spawn')) as pool:
        futures = {pool.submit(_evaluate_in_worker, config, name): (config, name)
                   for config, name in jobs}
        results = {}
        for future in concurrent.futures.as_completed(futures):
            config, name = futures[future]
            try:
                results[name] = future.result()
            except Exception as error:  # noqa: BLE001 - a worker died (killed, out of memory)
                results[name] = BagResult(config.bag, name, 0.0,
                                          error=f'worker failed: {type(error).__name__}: '
                                          f'{" ".join(str(error).split())}')
            done(results[name])
        return [results[name] for _, name in jobs]


def run_fleet(fleet: FleetConfig, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Evaluate every bag, merge, and write the fleet metrics and report.

    Returns:
        The content of ``fleet_metrics.json``.

    Raises:
        EvalError: bad options, an existing fleet evaluation, or Ray missing for ``ray``.
    """
    from .fleet_report import merge_results, write_fleet_outputs
    if fleet.jobs < 1:
        raise EvalError(f'--jobs must be at least 1, got {fleet.jobs}')
    if not fleet.bags:
        raise EvalError('give one or more bags, or --bags DIR_OR_GLOB')
    if os.path.exists(os.path.join(fleet.out_dir, FLEET_METRICS_FILE)):
        raise EvalError(f'{fleet.out_dir} already holds a fleet evaluation; choose another '
                        '--out')
    jobs = [(bag_config(fleet, bag, name), name)
            for bag, name in zip(fleet.bags, bag_names(fleet.bags))]
    for config, _ in jobs:
        config.check()
    os.makedirs(os.path.join(fleet.out_dir, 'bags'), exist_ok=True)
    finished = []

    def done(result: BagResult) -> None:
        finished.append(result)
        state = f'failed: {result.error}' if result.error else 'done'
        log(f'[{len(finished)}/{len(jobs)}] {result.name}: {state} ({result.seconds:.1f} s)')

    started = time.monotonic()
    if fleet.ray_address is not None:
        from .fleet_ray import run_on_ray
        results = run_on_ray(fleet, jobs, done)
    else:
        results = _run_local(fleet, jobs, done)
    runner = (f'ray {fleet.ray_address or "local"}' if fleet.ray_address is not None
              else f'{fleet.jobs} local process{"es" if fleet.jobs > 1 else ""}')
    metrics = merge_results(results, runner, time.monotonic() - started)
    write_fleet_outputs(fleet, metrics)
    return metrics
