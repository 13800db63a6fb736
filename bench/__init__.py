"""wanwu's benchmarks (not installed). Run the scripts from a checkout: ``python bench/all.py`` or ``python -m bench.all``."""
