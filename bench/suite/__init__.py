"""The benchmark suite: engines, preprocessing, HTTP against the seed service and the peer, cold start.

Not part of the installed package: run from a checkout (``python bench/all.py``, or one part with
``bench/engines.py``, ``preprocess.py``, ``serve.py``). Each part is a module with a ``measure_*``
function returning plain dicts; ``report`` turns them into the one table, ``common`` adds the
machine (CPU model, cores, flags) to every result. The engine timing itself is the package's
(``wanwu.benchmark``, also behind ``wanwu bench``); the synthesized ResNet-18 checkpoint is the
tests' (``tests/checkpoints.py``).
"""
