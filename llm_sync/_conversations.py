"""The command line's conversation log: one SQLite file under the user's data directory."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ._messages import ChatMessage
from ._values import value

__all__ = ["Conversation", "ConversationLog", "LogError", "Turn", "data_dir", "log_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    system TEXT,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq INTEGER NOT NULL,
    created REAL NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    messages TEXT NOT NULL,
    usage TEXT,
    stop_reason TEXT,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated);
"""
# Several llm-sync processes may write at once; SQLite serialises them, this long at most.
_BUSY_TIMEOUT = 10.0
_TITLE = 80


class LogError(OSError):
    """The log cannot be opened, read or written; the message says which file and why."""


def data_dir() -> Path:
    """``$XDG_DATA_HOME/llm-sync`` (an absolute one), else ``~/.local/share/llm-sync``."""
    base = os.environ.get("XDG_DATA_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "llm-sync"


def log_path() -> Path:
    """The SQLite file holding the conversations."""
    return data_dir() / "logs.db"


@value
class Conversation:
    """One conversation: its id, the model string it used last, and when."""

    id: str
    model: str
    system: Optional[str]
    title: str
    created: float
    updated: float
    turns: int


@value
class Turn:
    """One exchange of a conversation: the prompt, the answer and the messages they became."""

    seq: int
    created: float
    model: str
    prompt: str
    answer: str
    messages: List[ChatMessage]
    usage: Optional[Dict[str, Any]]
    stop_reason: Optional[str]


class ConversationLog:
    """The log at ``path`` (default :func:`log_path`), created on first use; a context manager.

    The folder is made private to the user (mode 0700), as is the file (0600): it
    holds prompts and answers.
    """

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = path or log_path()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(str(self.path), timeout=_BUSY_TIMEOUT)
        except (OSError, sqlite3.Error) as err:
            raise LogError(f"cannot open the conversation log {self.path}: {_why(err)}") from None
        try:
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            self._db.close()
            raise LogError(f"cannot use the conversation log {self.path}: {_why(err)}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ConversationLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def record(
        self,
        conversation_id: Optional[str],
        *,
        model: str,
        system: Optional[str],
        prompt: str,
        answer: str,
        messages: Sequence[ChatMessage],
        usage: Optional[Dict[str, Any]],
        stop_reason: Optional[str],
    ) -> str:
        """Add one turn (to a new conversation when ``conversation_id`` is None); the id."""
        now = time.time()
        stored = json.dumps([m.to_dict() for m in messages], ensure_ascii=False)
        try:
            with self._db:  # one transaction
                if conversation_id is None:
                    conversation_id = secrets.token_hex(6)
                    self._db.execute(
                        "INSERT INTO conversations (id, model, system, title, created, updated) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (conversation_id, model, system, _title(prompt), now, now),
                    )
                else:
                    self._db.execute(
                        "UPDATE conversations SET model = ?, system = ?, updated = ? WHERE id = ?",
                        (model, system, now, conversation_id),
                    )
                (seq,) = self._db.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation_id = ?",
                    (conversation_id,),
                ).fetchone()
                self._db.execute(
                    "INSERT INTO turns (conversation_id, seq, created, model, prompt, answer, messages, "
                    "usage, stop_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        conversation_id,
                        seq,
                        now,
                        model,
                        prompt,
                        answer,
                        stored,
                        json.dumps(usage) if usage is not None else None,
                        stop_reason,
                    ),
                )
        except sqlite3.Error as err:
            raise LogError(f"cannot write to the conversation log {self.path}: {_why(err)}") from None
        return conversation_id

    # -- reading -------------------------------------------------------------------------

    def recent(self, limit: int = 10) -> List[Conversation]:
        """The ``limit`` conversations updated last, newest first."""
        return self._conversations("ORDER BY c.updated DESC, c.rowid DESC LIMIT ?", (limit,))

    def latest(self) -> Optional[Conversation]:
        """The conversation updated last, or None when the log is empty."""
        found = self.recent(1)
        return found[0] if found else None

    def find(self, conversation_id: str) -> Conversation:
        """The conversation whose id is, or uniquely starts with, ``conversation_id``."""
        text = conversation_id.strip().lower()
        if not text or any(c not in "0123456789abcdef" for c in text):
            raise LookupError(f"{conversation_id!r} is not a conversation id (hex digits; llm-sync logs lists them)")
        found = self._conversations("WHERE c.id >= ? AND c.id < ? ORDER BY c.id LIMIT 2", (text, text + "g"))
        if not found:
            raise LookupError(f"no conversation {conversation_id!r} in {self.path} (llm-sync logs lists them)")
        if len(found) > 1 and found[0].id != text:
            raise LookupError(f"{conversation_id!r} starts more than one conversation id: give more of it")
        return found[0]

    def turns(self, conversation_id: str) -> List[Turn]:
        """The turns of a conversation, in order."""
        try:
            rows = self._db.execute(
                "SELECT seq, created, model, prompt, answer, messages, usage, stop_reason FROM turns "
                "WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,),
            ).fetchall()
            return [
                Turn(
                    seq,
                    created,
                    model,
                    prompt,
                    answer,
                    [ChatMessage.from_dict(m) for m in json.loads(messages)],
                    json.loads(usage) if usage else None,
                    stop_reason,
                )
                for seq, created, model, prompt, answer, messages, usage, stop_reason in rows
            ]
        except (sqlite3.Error, ValueError, KeyError, TypeError) as err:
            raise LogError(f"cannot read the conversation log {self.path}: {_why(err)}") from None

    def messages(self, conversation_id: str) -> List[ChatMessage]:
        """Every message of a conversation, the system prompt aside, in order."""
        return [m for turn in self.turns(conversation_id) for m in turn.messages]

    def _conversations(self, tail: str, args: Sequence[Any]) -> List[Conversation]:
        try:
            rows = self._db.execute(
                "SELECT c.id, c.model, c.system, c.title, c.created, c.updated, "
                "(SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) "
                f"FROM conversations c {tail}",
                tuple(args),
            ).fetchall()
        except sqlite3.Error as err:
            raise LogError(f"cannot read the conversation log {self.path}: {_why(err)}") from None
        return [Conversation(*row) for row in rows]


def _title(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= _TITLE else line[: _TITLE - 3] + "..."


def _why(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__
