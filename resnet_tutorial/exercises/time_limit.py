"""A time limit for one call of the learner's function, and a notice while it runs.

A learner's function can loop forever (``while h < n:`` with ``h`` never
changing) or do far more work than needed (all 2⁵⁴ paths of ResNet-110, one by
one). :func:`call_with_time_limit` runs it with a limit and raises
:class:`CaseTimeout` *inside* it when the limit passes, so the check can report
which case was stopped instead of hanging the notebook. While the call is
still running after ``notice_s`` seconds, ``notice()`` is called once from a
watchdog thread (the checker prints "still running case 3 of 5 ...").

How a Python function is stopped, and why this way:

* **In the main thread** (a Jupyter kernel runs every cell there) the limit is
  a ``SIGALRM`` timer (``signal.setitimer``) whose handler raises
  :class:`CaseTimeout` in the learner's code. A signal also interrupts
  ``time.sleep`` and other blocking waits, and the exception unwinds the
  learner's frames normally, running their ``finally`` blocks, so nothing is
  left half-locked. The timer repeats every 0.1 s until the call has ended, so
  a bare ``except:`` in the learner's code cannot swallow the stop for good,
  and the handler never raises inside this module's own frames, so the
  clean-up below cannot be interrupted. The previous handler is restored.
* **Elsewhere** (a check run from a worker thread, a platform without
  ``SIGALRM`` such as Windows, or an outer timer already armed, for example
  pytest-timeout's) the watchdog thread raises :class:`CaseTimeout` in the
  checking thread with ``PyThreadState_SetAsyncExc``. That exception arrives
  between two bytecodes, so a sleeping or blocked call ends only when it wakes.

Neither can cut a single long C call short (a huge matrix product): it is
stopped when it returns. A thread that is simply abandoned was not an option:
it would go on burning a core (and holding the GIL half the time) after the
check has returned, and PyTorch's grad mode is per thread.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable

#: Seconds a check may run before it says it is still running.
NOTICE_AFTER_S = 3.0
#: Seconds one case may run before it is stopped.
TIME_LIMIT_S = 10.0
_REPEAT_S = 0.1


class CaseTimeout(BaseException):
    """Raised inside the learner's function when its case runs past the time limit.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except Exception``
    in the learner's code does not swallow it.
    """


@dataclass
class _Call:
    active: bool = True


def call_with_time_limit(call: Callable[[], Any], limit_s: float | None, notice_s: float | None = None,
                         notice: Callable[[], None] | None = None) -> Any:
    """``call()``, stopped with :class:`CaseTimeout` after ``limit_s`` seconds (``None``: no limit).

    ``notice()`` runs once, from another thread, if the call is still running after
    ``notice_s`` seconds.
    """
    if limit_s is None and (notice is None or notice_s is None):
        return call()
    state = _Call()
    done = threading.Event()
    use_signal = limit_s is not None and _signal_usable()
    inject = limit_s is not None and not use_signal
    target = threading.get_ident()
    lock = threading.Lock()
    watchdog = threading.Thread(target=_watch, args=(done, state, lock, target, limit_s if inject else None,
                                                     notice_s, notice), daemon=True, name="check-watchdog")
    previous = _arm(state, limit_s) if use_signal else None
    watchdog.start()
    try:
        return call()
    finally:
        _finish(state, lock, inject, target, previous, done, watchdog)


def _finish(state: _Call, lock: threading.Lock, inject: bool, target: int, previous: Any,
            done: threading.Event, watchdog: threading.Thread) -> None:
    """End the call's guard: no stop may arrive after this returns."""
    state.active = False  # from here on the signal handler does nothing
    if previous is not None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    while inject:
        try:
            with lock:  # the watchdog injects only while holding the lock and while the call is active
                _set_async_exc(target, None)  # drop a stop that was sent but has not arrived yet
            break
        except CaseTimeout:  # it arrived just now, in our own clean-up: the call is over anyway
            continue
    done.set()
    watchdog.join()


def _signal_usable() -> bool:
    """SIGALRM works here: main thread, a platform that has it, and no outer timer running."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    return signal.getitimer(signal.ITIMER_REAL)[0] == 0


def _arm(state: _Call, limit_s: float) -> Any:
    def handler(signum: int, frame: Any) -> None:
        if state.active and (frame is None or frame.f_code.co_filename != __file__):
            raise CaseTimeout()

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, limit_s, _REPEAT_S)
    return previous if previous is not None else signal.SIG_DFL


def _watch(done: threading.Event, state: _Call, lock: threading.Lock, target: int, limit_s: float | None,
           notice_s: float | None, notice: Callable[[], None] | None) -> None:
    """The watchdog: the notice, and (when signals cannot be used) the stop itself."""
    waited = 0.0
    if notice is not None and notice_s is not None and (limit_s is None or notice_s < limit_s):
        if done.wait(max(notice_s, 0.0)):
            return
        waited = max(notice_s, 0.0)
        try:
            notice()
        except Exception:  # a notice must never break the check
            pass
    if limit_s is None:
        return
    if done.wait(max(limit_s - waited, 0.0)):
        return
    while not done.is_set():
        with lock:
            if not state.active:
                return
            _set_async_exc(target, CaseTimeout)
        done.wait(_REPEAT_S)


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)
