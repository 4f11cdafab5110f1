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
  left half-locked. A bare ``except:`` could swallow that exception (a
  ``time.sleep`` inside ``try: ... except: pass`` in an endless loop), so the
  first stop also installs a trace function that raises again at the next line
  of the code that was running (the learner's loop): the ``except`` clause's own
  line then raises outside its ``try``. The timer repeats every 0.1 s until the call has ended.
  Neither the handler nor the tracer ever raises in this module's own frames,
  so the clean-up cannot be interrupted; the previous handler and trace
  function are restored.
* **Elsewhere** (a check run from a worker thread, a platform without
  ``SIGALRM`` such as Windows, or an outer timer already armed, for example
  pytest-timeout's) the watchdog thread raises :class:`CaseTimeout` in the
  checking thread with ``PyThreadState_SetAsyncExc``, again every 0.1 s. That
  exception arrives between two bytecodes, so a sleeping or blocked call ends
  only when it wakes, and a bare ``except:`` around a sleep can keep swallowing
  it (the tracer cannot be installed from another thread).

Neither can cut a single long C call short (a huge matrix product): it is
stopped when it returns. A thread that is simply abandoned was not an option:
it would go on burning a core (and holding the GIL half the time) after the
check has returned, and PyTorch's grad mode is per thread.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from dataclasses import dataclass, field
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
    guard: Any = None  # the frame of call_with_time_limit: the call runs in the frames below it
    tracing: bool = False
    previous_trace: Any = None
    codes: set = field(default_factory=set)  # the code objects the tracer may stop


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
    state.guard = sys._getframe()
    previous = _arm(state, limit_s) if use_signal else None
    watchdog.start()
    try:
        return call()
    finally:
        _finish(state, lock, inject, target, previous, done, watchdog)


def _finish(state: _Call, lock: threading.Lock, inject: bool, target: int, previous: Any,
            done: threading.Event, watchdog: threading.Thread) -> None:
    """End the call's guard: no stop may arrive after this returns."""
    state.active = False  # from here on the signal handler and the tracer do nothing
    if previous is not None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if state.tracing:
        sys.settrace(state.previous_trace)
    while inject:
        try:
            with lock:  # the watchdog injects only while holding the lock and while the call is active
                pass
            for _ in range(10):  # a stop sent but not yet delivered arrives at this loop's back edge, here
                pass
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


def _inside(state: _Call, frame: Any) -> bool:
    """``frame`` belongs to the call being timed: below the guard frame, and not this module's code."""
    if frame is None or frame.f_code.co_filename == __file__:
        return False
    while frame is not None:
        if frame is state.guard:
            return True
        frame = frame.f_back
    return False


def _arm(state: _Call, limit_s: float) -> Any:
    def tracer(frame: Any, event: str, arg: Any) -> Any:
        # only in the code that was running when the stop came (not in a weakref callback or __del__ that
        # happens to run inside the call: an exception there would only be printed and ignored)
        if state.active and event == "line" and frame.f_code in state.codes and _inside(state, frame):
            raise CaseTimeout()
        return tracer

    def handler(signum: int, frame: Any) -> None:
        if not state.active or not _inside(state, frame):
            return
        if not state.tracing:  # from now on every new line inside the call stops it too
            state.tracing, state.previous_trace = True, sys.gettrace()
            f = frame
            while f is not None and f is not state.guard:
                if f.f_code.co_filename != __file__:
                    state.codes.add(f.f_code)
                    f.f_trace = tracer
                f = f.f_back
            sys.settrace(tracer)
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


def _set_async_exc(thread_id: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` in thread ``thread_id`` at its next bytecode boundary.

    Never called with NULL to "clear" a stop: in CPython 3.11 that leaves the
    interpreter's eval breaker set for good (no thread owns the exception that
    would reset it), and every later signal is then handled over and over.
    """
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))
