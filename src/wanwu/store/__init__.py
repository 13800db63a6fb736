"""Everything under ``WANWU_HOME``: the home folder and its layout, atomic writes, the clean-up of partial writes."""

from wanwu.store.atomic import pid_alive
from wanwu.store.home import DISK_ERRNOS, HOME_ENV, store_error, wanwu_home

__all__ = ["DISK_ERRNOS", "HOME_ENV", "pid_alive", "store_error", "wanwu_home"]
