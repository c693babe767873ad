"""Offline evaluation: run the one ``Segmenter`` over a bag (or a Cityscapes-format folder),
score it against ground truth, and write metrics.json, a report and an output bag.

Pipeline (three stages so that I/O overlaps inference)::

    reader thread      bag -> match images with labels by stamp -> decode jobs submitted to
                       a pool of ``workers`` threads (in order)
    main thread        Segmenter.segment(image)  (the node's inference call)
    writer thread      node's render_outputs -> metrics -> output bag

Frame accounting: every image read is either evaluated or skipped with a reason, so
``read == evaluated + skipped`` always, also after Ctrl-C: the first SIGINT (or a SIGTERM)
stops reading, finishes the frames in flight, and writes everything; a second SIGINT aborts.

Outputs in ``out_dir``: ``metrics.json``, ``report.md`` (or ``report.html``) with PNG plots,
and ``segmentation_bag/`` (MCAP) with the inputs and every topic the node publishes.

This module runs the stages; the options are ``config.EvalConfig``, the Ctrl-C handling is in
``interrupt``, and metrics.json, the report and ``EvalSummary`` come from ``summary``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any, List, Optional

from ..bags.bag_io import BagError, BagReader
from ..images.visualize import PanopticColorizer
from ..pipeline.outputs import render_outputs, RenderSettings
from .accumulators import EvalAccumulator
from .config import EvalConfig, EvalError, METRICS_FILE, OUTPUT_BAG_DIR, REPORT_CHOICES
from .interrupt import RunState, SigintStop
from .output_bag import OutputBag
from .sources import (
    bag_items,
    CopyMessage,
    decode_job,
    EvalFrame,
    folder_frames_by_city,
    folder_items,
    FrameJob,
    resolve_streams,
    Skip,
    SourceState,
)
from .summary import accounting, build_metrics, EvalSummary, write_results

_END = object()


def load_segmenter(config: EvalConfig) -> Any:
    """The Segmenter of ``config``, with only the graph outputs its output bag records
    (``confidence`` only when recorded; folder mode records none)."""
    from ..packages.zoo import resolve_model
    from ..pipeline.graph_outputs import needed_graph_outputs
    from ..segmenter import Segmenter
    options = {'threads': config.threads} if config.threads > 0 else {}
    recorded = config.outputs if config.dataset_dir is None else ()
    return Segmenter.from_package(resolve_model(config.model), backend=config.backend,
                                  device=config.device, precision=config.precision,
                                  outputs=needed_graph_outputs(recorded), **options)


def run_evaluation(config: EvalConfig, segmenter: Any = None,
                   stop: Optional[threading.Event] = None) -> EvalSummary:
    """Evaluate and write all outputs; see the module docstring.

    Args:
        config: What to evaluate.
        segmenter: An open ``Segmenter`` to use (None: load ``config.model``).
        stop: Set it (from another thread) to stop like Ctrl-C.

    Raises:
        EvalError: bad options or an existing evaluation in ``out_dir``.
        BagError: the bag cannot be opened, or a topic is missing / of the wrong type.
        ValueError: the model cannot be loaded (from ``Segmenter.from_package``).
    """
    config.check()
    own_segmenter = segmenter is None
    if own_segmenter:
        segmenter = load_segmenter(config)
    elif config.bag and 'confidence' in config.outputs and \
            'confidence' not in getattr(segmenter, 'graph_outputs', ('confidence',)):
        raise EvalError('the output bag records confidence, but the given Segmenter was '
                        'loaded without that graph output')
    try:
        evaluation = _Evaluation(config, segmenter, stop)
        summary = evaluation.run()
        summary.accumulator = evaluation.accumulator
        return summary
    finally:
        if own_segmenter:
            segmenter.close()


class _Evaluation:
    """One evaluation run (see ``run_evaluation``)."""

    def __init__(self, config: EvalConfig, segmenter: Any,
                 stop: Optional[threading.Event]) -> None:
        self.config = config
        self.segmenter = segmenter
        self.run_state = RunState(stop=stop if stop is not None else threading.Event())
        manifest = segmenter.manifest
        self.label_set = manifest.label_set
        self.accumulator = EvalAccumulator(self.label_set, manifest.label_divisor,
                                           config.worst_frames)
        self.render_settings = RenderSettings(min_instance_area=int(config.min_instance_area),
                                              overlay_alpha=float(config.overlay_alpha))
        self.source_state = SourceState()
        self.reader: Optional[BagReader] = None
        self.dataset = None
        self.streams: List[Any] = []
        self.output: Optional[OutputBag] = None
        self.total: Optional[int] = None

    # ------------------------------------------------------------------ set-up

    def _open_inputs(self) -> None:
        config = self.config
        if config.dataset_dir is not None:
            self.dataset = self._open_dataset(config.dataset_dir)
            self.total = len(self.dataset) + len(self.dataset.skipped)
            return
        self.reader = BagReader(config.bag, distro=config.distro)
        self.streams = resolve_streams(
            self.reader, config.image_topics, config.label_topics,
            use_label_topics=not (config.no_labels or config.labels_dir))
        if config.labels_dir:
            self.dataset = self._open_dataset(config.labels_dir)
            cities = folder_frames_by_city(self.dataset)
            streams = []
            for stream in self.streams:
                city = stream.namespace.strip('/').split('/')[-1] if stream.namespace else ''
                if city not in cities:
                    if len(cities) == 1 and len(self.streams) == 1:
                        city = next(iter(cities))
                    else:
                        raise EvalError(
                            f'--labels-dir {config.labels_dir}: no city folder {city!r} for '
                            f'{stream.image_topic}; cities: {", ".join(sorted(cities))}')
                streams.append(_with_city(stream, city))
            self.streams = streams
        self.total = sum(self.reader.counts.get(s.image_topic, 0) for s in self.streams)
        if config.max_frames is not None:
            self.total = min(self.total, config.max_frames)

    def _open_dataset(self, root: str) -> Any:
        """The folder's frames; content errors surface per frame as listed skips.

        Missing files and label/image size mismatches visible in the PNG headers stop the
        evaluation with the dataset's message (``skip_bad`` would decode every frame twice).
        """
        from ..data.cityscapes import CityscapesDataset, DatasetError
        try:
            return CityscapesDataset(root, self.config.split, label_set=self.label_set,
                                     label_divisor=self.segmenter.manifest.label_divisor)
        except DatasetError as error:
            raise EvalError(f'{root}: {error}') from None

    def _items(self):
        stop = self.run_state.stop
        if self.reader is None:
            return folder_items(self.dataset, self.source_state, stop, self.config.max_frames)
        folder_frames = folder_frames_by_city(self.dataset) if self.config.labels_dir else None
        return bag_items(self.reader, self.streams, self.source_state, stop,
                         self.config.max_frames, folder_frames)

    # ------------------------------------------------------------------ stages

    def _read_stage(self, pool: Any, decoded: 'queue.Queue') -> None:
        """Reader thread: source items in order; jobs become decode futures."""
        manifest = self.segmenter.manifest
        try:
            for item in self._items():
                if isinstance(item, FrameJob):
                    item = pool.submit(decode_job, item, self.label_set,
                                       manifest.label_divisor, self.dataset)
                decoded.put(item)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            self.run_state.errors.append(error)
            self.run_state.stop.set()
        finally:
            decoded.put(_END)

    def _write_stage(self, finished: 'queue.Queue', progress: Any) -> None:
        """Writer thread: render, score and record, in input order."""
        wanted = set(self.config.outputs) if self.output is not None else set()
        wanted |= {'semantic', 'panoptic'}
        colorizer = PanopticColorizer(self.label_set, self.segmenter.manifest.label_divisor) \
            if 'panoptic_color' in wanted else None
        accumulator = self.accumulator
        try:
            while True:
                item = finished.get()
                if item is _END:
                    return
                if isinstance(item, CopyMessage):
                    if self.output is not None:
                        self.output.copy(item.stream, item.message)
                    continue
                if isinstance(item, Skip):
                    accumulator.add_skip(item.topic, item.stamp_ns, item.reason, item.detail)
                else:
                    frame, result, latency_ms = item
                    outputs = render_outputs(
                        frame.rgb, result, self.render_settings, self.label_set,
                        self.segmenter.network_size, wanted.__contains__, colorizer)
                    accumulator.add_frame(frame.job.stream.namespace, frame.job.name, latency_ms,
                                          frame.rgb, outputs.images['semantic'],
                                          outputs.images['panoptic'], frame.gt_semantic,
                                          frame.gt_panoptic)
                    if self.output is not None and frame.job.image is not None:
                        self.output.write_frame(frame, outputs)
                progress.update(accumulator.evaluated + accumulator.skipped_total)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            self.run_state.errors.append(error)
            self.run_state.stop.set()
            while finished.get() is not _END:
                pass

    def _infer_stage(self, decoded: 'queue.Queue', finished: 'queue.Queue') -> None:
        """Main thread: the Segmenter, one frame at a time, in input order."""
        stop = self.run_state.stop
        while True:
            item = decoded.get()
            if item is _END:
                return
            if isinstance(item, (Skip, CopyMessage)):
                finished.put(item)
                continue
            frame = item.result()
            if isinstance(frame, Skip):
                finished.put(frame)
                continue
            if stop.is_set():
                finished.put(Skip(frame.job.stream.image_topic, frame.job.stamp_ns,
                                  'interrupted', 'stopped before inference'))
                continue
            started = time.perf_counter()
            try:
                result = self.segmenter.segment(frame.rgb)
            except ValueError as error:  # this image is unusable (size, ...); others may be fine
                finished.put(Skip(frame.job.stream.image_topic, frame.job.stamp_ns,
                                  'segmenter rejected image', str(error)))
                continue
            finished.put((frame, result, (time.perf_counter() - started) * 1e3))

    # ------------------------------------------------------------------ run

    def run(self) -> EvalSummary:
        from concurrent.futures import ThreadPoolExecutor

        from ..tools.progress import ProgressBar
        config = self.config
        self._open_inputs()
        os.makedirs(config.out_dir, exist_ok=True)
        bag_path = None
        try:
            if self.reader is not None and config.outputs:
                bag_path = os.path.join(config.out_dir, OUTPUT_BAG_DIR)
                self.output = OutputBag(bag_path, self.reader, self.streams, config.outputs,
                                        distro=config.distro)
            progress = ProgressBar(self.total, 'eval', enabled=config.progress)
            decoded: queue.Queue = queue.Queue(maxsize=2 * config.workers + 2)
            finished: queue.Queue = queue.Queue(maxsize=4)
            started = time.perf_counter()
            with ThreadPoolExecutor(config.workers, thread_name_prefix='eval-decode') as pool, \
                    SigintStop(self.run_state, config.handle_sigint):
                reader = threading.Thread(target=self._read_stage, args=(pool, decoded),
                                          name='eval-read', daemon=True)
                writer = threading.Thread(target=self._write_stage, args=(finished, progress),
                                          name='eval-write', daemon=True)
                reader.start()
                writer.start()
                try:
                    self._infer_stage(decoded, finished)
                except BaseException as error:
                    self.run_state.errors.append(error)
                    self.run_state.stop.set()
                    _drain(decoded)
                finally:
                    finished.put(_END)
                    reader.join()
                    writer.join()
            wall_s = time.perf_counter() - started
        finally:
            if self.output is not None:
                self.output.close()
            if self.reader is not None:
                self.reader.close()
        if self.run_state.errors:
            raise self.run_state.errors[0]
        self.accumulator.read = self.source_state.read
        progress.finish(self._summary_note())
        return self._write_results(wall_s, bag_path)

    def _summary_note(self) -> str:
        acc = self.accumulator
        return f'evaluated {acc.evaluated}, skipped {acc.skipped_total}'

    def _write_results(self, wall_s: float, bag_path: Optional[str]) -> EvalSummary:
        run = self.run_state
        interrupted = run.interrupted or run.stop.is_set()
        output_error = self.output.failed if self.output is not None else None
        if output_error:
            bag_path = None  # removed (output_bag.OutputBag._fail)
        metrics = build_metrics(self.config, self.segmenter, self.accumulator,
                                self.source_state, self.streams, wall_s, interrupted, bag_path,
                                output_error)
        return write_results(self.config, metrics, self.accumulator, interrupted,
                             self.source_state.read_error, bag_path, output_error)


def _with_city(stream: Any, city: str) -> Any:
    from dataclasses import replace
    return replace(stream, city=city)


def _drain(items: 'queue.Queue') -> None:
    while items.get() is not _END:
        pass


__all__ = ['BagError', 'EvalConfig', 'EvalError', 'EvalFrame', 'EvalSummary', 'run_evaluation',
           'accounting', 'METRICS_FILE', 'OUTPUT_BAG_DIR', 'REPORT_CHOICES']
