"""Sub-commands of ``seg-perception`` (one module each; see ``seg_perception.cli``)."""
