"""Everything under ``WANWU_HOME``: the home folder and its layout, atomic writes, the clean-up of partial writes."""

from wanwu.store.atomic import (
    STALE_AFTER_S,
    atomic_file,
    atomic_folder,
    install,
    new_partial,
    pid_alive,
    remove_folder,
    remove_stale,
    write_file,
)
from wanwu.store.home import DISK_ERRNOS, HOME_ENV, store_error, wanwu_home
from wanwu.store.layout import Layout

__all__ = [
    "DISK_ERRNOS",
    "HOME_ENV",
    "STALE_AFTER_S",
    "Layout",
    "atomic_file",
    "atomic_folder",
    "install",
    "new_partial",
    "pid_alive",
    "remove_folder",
    "remove_stale",
    "store_error",
    "wanwu_home",
    "write_file",
]
