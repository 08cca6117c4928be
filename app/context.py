"""Who is calling: the app's link between Gradio requests and :class:`core.access.Caller`.

In public mode every browser holds a random visitor token in its local storage
(``gr.BrowserState``), so its runs survive a reload; the page's first event registers the
token for the page's session. A ``gradio_client.Client`` has no browser storage: its session
(one per Client object) is its identity. A login through ``--auth`` is the server's owner.
Off public mode every caller is the owner, as on a single-user machine.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from core.access import Caller
from core.actions import Actions

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
MAX_SESSIONS = 50_000


@dataclass
class AppContext:
    """What every tab and endpoint shares: the action façade and the caller rules.

    Attributes:
        actions: the façade over the runs folder (ownership and limits are checked there).
        public: public mode: visitors are strangers (see docs/SECURITY.md).
        auth: a ``--auth`` login is configured (signed-in users are the owner).
    """

    actions: Actions
    public: bool = False
    auth: bool = False
    _sessions: OrderedDict[str, str] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def runs_dir(self) -> Path:
        return self.actions.runs_dir

    def register_browser(self, token: str | None, request: gr.Request) -> str:
        """Tie this page's session to the browser's visitor token (made on first visit)."""
        if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
            token = secrets.token_urlsafe(32)
        session = getattr(request, "session_hash", None)
        if session:
            with self._lock:
                self._sessions[session] = token
                self._sessions.move_to_end(session)
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
        return token

    def caller(self, request: gr.Request | None) -> Caller:
        """The caller behind a request."""
        if not self.public:
            return Caller()
        if self.auth and request is not None and getattr(request, "username", None):
            return Caller()  # signed in through --auth: the server's owner
        session = getattr(request, "session_hash", None) if request is not None else None
        with self._lock:
            secret = self._sessions.get(session or "") or session
        return Caller.visitor(secret or "")
