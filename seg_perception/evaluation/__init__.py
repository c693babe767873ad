"""Scoring models offline: the bag / folder evaluator (sources, accumulators, output bag,
report), the metrics (mIoU, PQ), and held-out scoring on synthetic frames.

Modules here may import ``segmenter``, ``pipeline.outputs``, ``bags``, ``images``, ``data``
and ``packages``; never rclpy, ``training`` or ``commands``.
"""
