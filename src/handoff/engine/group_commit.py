"""Group commit: the events of concurrent requests go into the store together. One thread
writes; while it commits one group, the requests arriving meanwhile wait and form the next, so
the commit cost (the store's write lock, SQLite's WAL write, PostgreSQL's WAL flush) is paid
once per group instead of once per request. A request is answered only once its group has
committed: nothing is acknowledged that is not durable.

A group that fails is tried again submission by submission, so one request's bad luck (a value
the database refuses) fails that request alone.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from handoff.engine.clock import utcnow
from handoff.engine.inbox_store import Parsed, Result, store_parsed
from handoff.store.db import Database

log = logging.getLogger("handoff.intake")

MAX_GROUP = 2000  # events a commit: bounds a transaction's time when a backlog floods in


@dataclass(slots=True)
class _Submission:
    events: list[Parsed]
    future: Future[list[Result]] | asyncio.Future[list[Result]]
    loop: asyncio.AbstractEventLoop | None = None  # where `future` is answered, if it is asyncio's


class GroupCommit:
    """Stores submitted events on `db` from one writer thread, many requests a transaction."""

    def __init__(self, db: Database, max_group: int = MAX_GROUP) -> None:
        self._db, self._max_group = db, max_group
        self._waiting: queue.SimpleQueue[_Submission] = queue.SimpleQueue()
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None
        self.groups = 0  # transactions committed: with `events`, says how well requests group
        self.events = 0

    async def store(self, events: list[Parsed]) -> list[Result]:
        """Each event's result, once committed (in the calling event loop)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Result]] = loop.create_future()
        self._enqueue(_Submission(events, future, loop))
        return await future

    def submit(self, events: list[Parsed]) -> Future[list[Result]]:
        """The same from a thread: a future to wait on."""
        future: Future[list[Result]] = Future()
        self._enqueue(_Submission(events, future))
        return future

    def _enqueue(self, submission: _Submission) -> None:
        self._ensure_writer()
        self._waiting.put(submission)

    def _ensure_writer(self) -> None:
        if self._thread is None:
            with self._started:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._write_forever, daemon=True,
                                                    name="handoff-group-commit")
                    self._thread.start()

    def _write_forever(self) -> None:
        while True:
            self._commit(self._next_group())

    def _next_group(self) -> list[_Submission]:
        """The oldest waiting submission and whoever else is waiting, up to the group's size."""
        group = [self._waiting.get()]
        size = len(group[0].events)
        while size < self._max_group:
            try:
                submission = self._waiting.get_nowait()
            except queue.Empty:
                break
            group.append(submission)
            size += len(submission.events)
        return group

    def _commit(self, group: list[_Submission]) -> None:
        try:
            results = store_parsed(self._db, [event for s in group for event in s.events], utcnow())
        except Exception as exc:
            if len(group) == 1:
                _answer(group, [exc])
                return
            log.warning("a group of %d requests failed to commit (%s); committing them one by one",
                        len(group), exc)
            for submission in group:
                self._commit([submission])
            return
        self.groups += 1
        self.events += len(results)
        answers, start = [], 0
        for submission in group:
            answers.append(results[start:start + len(submission.events)])
            start += len(submission.events)
        _answer(group, answers)


def _answer(group: list[_Submission], answers: list[list[Result] | Exception]) -> None:
    """Each submission its answer; an event loop's all at once (one wake-up, not one each)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for submission, answer in zip(group, answers, strict=True):
        if submission.loop is None:
            _settle(submission.future, answer)
        else:
            by_loop.setdefault(submission.loop, []).append((submission.future, answer))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[Any, Any]]) -> None:
    for future, answer in settled:
        if not future.done():  # its request may have gone (client disconnected)
            _settle(future, answer)


def _settle(future: Any, answer: Any) -> None:
    if isinstance(answer, Exception):
        future.set_exception(answer)
    else:
        future.set_result(answer)
