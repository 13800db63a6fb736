"""Models trained on your own classes (``wanwu train``): a base ImageNet model's embeddings plus a trained head.

``store``: versions ``NAME@V`` in the store, written atomically; ``source``: a version as a
``ModelSource`` every engine runs; ``graph``: the ONNX surgery (features model, base + head in one
graph); ``archive``: portable, SHA-256-verified export and import.
"""
