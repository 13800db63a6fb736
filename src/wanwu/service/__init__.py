"""The HTTP service: a thin layer over ``wanwu.classifier``."""
