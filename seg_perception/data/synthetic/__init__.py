"""Procedural driving scenes with panoptic ground truth (``generator.SceneGenerator``).

Frame ``i`` of seed ``s`` is always the same scene, so a seed names a set of frames. Training
draws its scenes from seeds below 1e6; the two seeds here are kept apart from those.
"""

#: Seed of held-out synthetic validation frames: never used for training seeds below it.
SYNTHETIC_VALIDATION_SEED = 1_000_003
#: Seed of the 200-frame held-out test set used in model cards (distinct from the
#: validation seed used during training and from every training seed below 1e6).
SYNTHETIC_TEST_SEED = 2_000_003
