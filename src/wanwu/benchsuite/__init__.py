"""``wanwu bench --all``: engines, preprocessing, HTTP against the seed service and cold start, in one run.

Each part is a module with a ``measure_*`` function returning plain dicts; ``report`` turns them
into the one table and the JSON. The ``bench/`` scripts call the same functions one part at a time.
Nothing here is imported by the core or the service.
"""
