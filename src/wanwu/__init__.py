"""wanwu (万物识别): offline, CPU-first ImageNet-1k image recognition."""

from __future__ import annotations

__version__ = "0.1.0"
