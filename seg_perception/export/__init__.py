"""Export: the fused torch graph and ONNX package writing (torch; onnx imported when called),
and the static TensorRT check (onnx only, imported when called); callers import them lazily."""
