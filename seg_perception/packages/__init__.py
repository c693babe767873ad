"""Model packages: loading and checking them (manifest, checksum-verified ONNX, weights), the
shipped zoo, weights recovered from an ONNX graph, and atomic file writes.

Modules here may import ``manifest``, ``labels`` and ``models`` (torch only lazily); never
rclpy or the node pipeline.
"""
