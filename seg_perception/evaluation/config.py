"""The evaluator's options: ``EvalConfig`` and its validation, and the names of the files
an evaluation writes into its output folder.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Optional, Sequence

from .output_bag import OUTPUT_CHOICES

METRICS_FILE = 'metrics.json'
OUTPUT_BAG_DIR = 'segmentation_bag'
REPORT_CHOICES = ('md', 'html', 'none')


class EvalError(ValueError):
    """The evaluation cannot start: bad options, missing inputs, or an existing output."""


@dataclass
class EvalConfig:
    """What to evaluate and how.

    Attributes:
        out_dir: Folder for metrics.json, the report and the output bag (created; must not
            already hold an evaluation).
        model: Zoo model name or model-package directory.
        bag: Input bag; or None with ``dataset_dir`` (folder mode).
        image_topics: Camera image topics of the bag (Image or CompressedImage).
        label_topics: One ground-truth topic per image topic; empty = ``<cam>/labels/panoptic``
            or ``<cam>/labels/semantic``.
        labels_dir: Cityscapes-format folder whose city ``<cam>`` holds the labels of camera
            ``<cam>``'s images in recording order (instead of label topics).
        dataset_dir: Folder mode: evaluate this Cityscapes-format folder (no bag).
        split: Split of ``labels_dir`` / ``dataset_dir``.
        no_labels: Run without ground truth (latency and output bag only).
        backend, device, precision, threads: Passed to ``Segmenter.from_package``.
        workers: Threads decoding images and labels.
        outputs: Segmentation outputs recorded in the output bag; empty = no output bag.
        report_format: ``md``, ``html`` or ``none``.
        max_frames: Stop after this many images (None = all).
        distro: ROS 2 distribution: the typestore that reads the bag, and the one whose
            rosbag2 reads the output bag (None: ``bag_io.default_distro()``).
        min_instance_area, overlay_alpha: As the node's parameters of the same names.
        worst_frames: Lowest-mIoU frames shown in the report.
        progress: Draw a progress bar on stderr.
        handle_sigint: Turn Ctrl-C into a clean stop (main thread only).
    """

    out_dir: str
    model: str
    bag: Optional[str] = None
    image_topics: Sequence[str] = ()
    label_topics: Sequence[str] = ()
    labels_dir: Optional[str] = None
    dataset_dir: Optional[str] = None
    split: str = 'val'
    no_labels: bool = False
    backend: str = 'auto'
    device: str = 'auto'
    precision: str = 'auto'
    threads: int = 0
    workers: int = 1
    outputs: Sequence[str] = OUTPUT_CHOICES
    report_format: str = 'md'
    max_frames: Optional[int] = None
    distro: Optional[str] = None
    min_instance_area: int = 0
    overlay_alpha: float = 0.5
    worst_frames: int = 3
    progress: bool = True
    handle_sigint: bool = True

    def check(self) -> None:
        """Raise ``EvalError`` naming the first bad option."""
        if (self.bag is None) == (self.dataset_dir is None):
            raise EvalError('give exactly one input: a bag, or --dataset DIR (folder mode)')
        if self.dataset_dir is not None and (self.labels_dir or self.label_topics
                                             or self.image_topics):
            raise EvalError('folder mode (--dataset) takes no --image-topic, --label-topic or '
                            '--labels-dir')
        if self.labels_dir and self.label_topics:
            raise EvalError('give --label-topic or --labels-dir, not both')
        if self.no_labels and (self.labels_dir or self.label_topics):
            raise EvalError('--no-labels contradicts --label-topic / --labels-dir')
        if self.workers < 1:
            raise EvalError(f'--workers must be at least 1, got {self.workers}')
        if self.max_frames is not None and self.max_frames < 1:
            raise EvalError(f'--max-frames must be at least 1, got {self.max_frames}')
        if self.report_format not in REPORT_CHOICES:
            raise EvalError(f'report format {self.report_format!r} is not one of '
                            f'{", ".join(REPORT_CHOICES)}')
        unknown = [o for o in self.outputs if o not in OUTPUT_CHOICES]
        if unknown:
            raise EvalError(f'unknown output(s) {", ".join(unknown)}; valid: '
                            f'{", ".join(OUTPUT_CHOICES)}')
        if os.path.exists(os.path.join(self.out_dir, METRICS_FILE)) or \
                os.path.exists(os.path.join(self.out_dir, OUTPUT_BAG_DIR)):
            raise EvalError(f'{self.out_dir} already holds an evaluation ({METRICS_FILE} or '
                            f'{OUTPUT_BAG_DIR}/); choose another --out')
