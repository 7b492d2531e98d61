"""Time-driven work: collections, expiries, reminders, settlements plug in here.

A piece of due work is a `DueWork`: it finds its items by an indexed due time, claims a batch
with `FOR UPDATE SKIP LOCKED` (so several workers share it safely), does them and marks them
done in the same transaction, so a crash simply leaves the items due for the next run. There
is never one timer or queued job per future item.
"""

from bnpl.scheduler.core import DueWork, Scheduler

__all__ = ["DueWork", "Scheduler"]
