"""Post-processing of network heads: the numpy reference and its spec (numpy only, OpenCV for
``components``); ``fused`` is the graph form, needs torch and is imported lazily by callers."""
