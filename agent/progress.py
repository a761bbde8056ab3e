"""Progress of a run, as an observer of :func:`agent.run.scan`: a live line on a terminal, plain lines otherwise.

The scan loop only announces events (phase started, host started, host done);
what to show is decided here, so the loop stays free of display code and
several observers (the display, the JSON host log) can listen at once.

On a terminal (stderr is a TTY) one status line is redrawn in place — hosts
done / failed / running / waiting, the current phase and the elapsed time —
and failures are printed above it as they happen. Anywhere else (journal, cron
mail, CI) a plain line is printed every ``interval`` seconds and at the end of
each phase, so a log shows progress without a line per redraw.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any, Callable, Iterable, Optional


class ScanObserver:
    """No-op base: subclasses override what they need. Methods may be called from worker threads."""

    def phase(self, name: str, total: Optional[int] = None) -> None:
        pass

    def host_started(self, name: str) -> None:
        pass

    def host_done(self, name: str, collected: bool, error: Optional[str], duration: float) -> None:
        pass

    def task(self, event: str, msg: str, **fields: Any) -> None:
        """Distributed mode (agent.dist): a task sent, taken, given out again, its result accepted or refused;
        ``fields`` name task_id, zone, host and worker."""

    def close(self) -> None:
        pass


class Fanout(ScanObserver):
    def __init__(self, observers: Iterable[ScanObserver]) -> None:
        self.observers = list(observers)

    def phase(self, name: str, total: Optional[int] = None) -> None:
        for o in self.observers:
            o.phase(name, total)

    def host_started(self, name: str) -> None:
        for o in self.observers:
            o.host_started(name)

    def host_done(self, name: str, collected: bool, error: Optional[str], duration: float) -> None:
        for o in self.observers:
            o.host_done(name, collected, error, duration)

    def task(self, event: str, msg: str, **fields: Any) -> None:
        for o in self.observers:
            o.task(event, msg, **fields)

    def close(self) -> None:
        for o in self.observers:
            o.close()


class Progress(ScanObserver):
    """Counts hosts and renders them; ``emit`` (plain mode) receives one finished line per report."""

    def __init__(self, stream: Optional[IO[str]] = None, tty: Optional[bool] = None, interval: float = 10.0,
                 emit: Optional[Callable[[str, dict[str, Any]], None]] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.emit = emit
        self.total = 0
        self.done = 0
        self.failed = 0
        self.running = 0
        self.current = "starting"
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._last_plain: Optional[tuple[Any, ...]] = None
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="ea-progress", daemon=True)
        self._ticker.start()

    # -- state ------------------------------------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        return {"phase": self.current, "hosts_total": self.total, "hosts_done": self.done,
                "hosts_failed": self.failed, "hosts_running": self.running,
                "hosts_waiting": max(0, self.total - self.done - self.running),
                "elapsed_seconds": round(time.monotonic() - self.t0, 1)}

    def line(self) -> str:
        c = self.counts()
        if self.current == "hosts" or (self.current == "starting" and self.total):
            return (f"[hosts] {c['hosts_done']}/{c['hosts_total']} done, {c['hosts_failed']} failed, "
                    f"{c['hosts_running']} running, {c['hosts_waiting']} waiting — {c['elapsed_seconds']:.0f}s")
        return (f"[{self.current}] hosts {c['hosts_done']}/{c['hosts_total']} done, {c['hosts_failed']} failed "
                f"— {c['elapsed_seconds']:.0f}s")

    # -- observer ---------------------------------------------------------------------------------
    def phase(self, name: str, total: Optional[int] = None) -> None:
        with self._lock:
            prev = self.current
            self.current = name
            if total is not None:
                self.total = total
        if prev == "hosts" and not self.tty:
            self._plain()  # the end of the host phase is always reported
        self._draw(force=True)

    def host_started(self, name: str) -> None:
        with self._lock:
            self.running += 1
        self._draw()

    def host_done(self, name: str, collected: bool, error: Optional[str], duration: float) -> None:
        with self._lock:
            self.running -= 1
            self.done += 1
            if not collected:
                self.failed += 1
        if not collected and self.tty:
            self._write(f"\r\x1b[K  {name}: NOT collected — {error}\n")
        self._draw(force=not collected)

    def close(self) -> None:
        self._stop.set()
        if self.tty:
            self._write(f"\r\x1b[K{self.line()}\n")
        else:
            self._plain(force=False)  # the final state, unless that very line was just printed

    # -- rendering --------------------------------------------------------------------------------
    def _write(self, s: str) -> None:
        try:
            self.stream.write(s)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        self._write(f"\r\x1b[K{self.line()}")

    def _plain(self, force: bool = True) -> None:
        key = (self.current, self.total, self.done, self.failed, self.running)
        if not force and key == self._last_plain:
            return
        self._last_plain = key
        if self.emit is not None:
            self.emit(self.line(), self.counts())
        else:
            self._write(f"evidence-agent: {self.line()}\n")

    def _tick(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.5 if self.tty else min(1.0, self.interval)):
            if self.tty:
                self._draw(force=True)
            elif time.monotonic() - last >= self.interval:
                last = time.monotonic()
                self._plain()
