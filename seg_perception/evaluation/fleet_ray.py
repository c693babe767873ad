"""The Ray runner of a fleet evaluation (``seg-perception eval --ray [ADDRESS]``).

Ray is an optional extra (``pip install "seg-perception[ray]"``), imported only here. The
driver joins the cluster at ``FleetConfig.ray_address`` (a local Ray when empty, or the one
already initialised), starts one ``BagEvaluator`` actor per worker, each loading the model
once, and hands them the bags through an ``ActorPool``; results come back to the driver,
which merges them in input order (``fleet``).
"""

from __future__ import annotations

from typing import Callable, List

from .config import EvalError
from .fleet import BagResult, evaluate_bag, FleetConfig, segmenter_config

#: The one-line hint printed when ``--ray`` is asked for without Ray installed.
RAY_MISSING = ('--ray needs Ray, an optional extra: pip install "seg-perception[ray]" '
               '(or pip install -r requirements-ray.txt)')


def import_ray():
    try:
        import ray
    except ImportError:
        raise EvalError(RAY_MISSING) from None
    return ray


class BagEvaluator:
    """A Ray actor: one worker's model, loaded once, evaluating bag after bag."""

    def __init__(self, template) -> None:
        from .evaluate import load_segmenter
        self.segmenter = load_segmenter(template)

    def evaluate(self, config, name: str) -> BagResult:
        return evaluate_bag(config, name, self.segmenter)


def run_on_ray(fleet: FleetConfig, jobs: List[tuple], done: Callable) -> List[BagResult]:
    """Evaluate ``jobs`` ((EvalConfig, name) pairs) on Ray; results in input order."""
    ray = import_ray()
    from ray.util import ActorPool
    if not ray.is_initialized():
        if fleet.ray_address:
            ray.init(address=fleet.ray_address, include_dashboard=False,
                     log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    cpus = int(ray.cluster_resources().get('CPU', 1))
    workers = max(1, min(len(jobs), cpus if fleet.jobs <= 1 else fleet.jobs))
    actor = ray.remote(num_cpus=1)(BagEvaluator)
    actors = [actor.remote(segmenter_config(fleet)) for _ in range(workers)]
    pool = ActorPool(actors)
    results = {}
    for index, (config, name) in enumerate(jobs):
        pool.submit(lambda evaluator, job: evaluator.evaluate.remote(*job), (config, name))
    while pool.has_next():
        result = pool.get_next_unordered()
        results[result.name] = result
        done(result)
    for evaluator in actors:
        ray.kill(evaluator)
    return [results[name] for _, name in jobs]
