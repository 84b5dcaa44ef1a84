"""A modal asking which badge to grant to which user; dismisses with (code, user) or None."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class GrantForm(ModalScreen[tuple[str, str] | None]):
    DEFAULT_CSS = """
    GrantForm { align: center middle; }
    GrantForm > Vertical { width: 60; max-width: 95%; height: auto; padding: 1 2;
                           border: thick $success; background: $surface; }
    GrantForm .grant-row { height: 1; margin-bottom: 1; }
    GrantForm .grant-label { width: 8; color: $text-muted; }
    GrantForm Input { width: 1fr; }
    GrantForm Horizontal#grant-buttons { height: auto; align-horizontal: right; }
    GrantForm Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, code: str = "", user: str = ""):
        super().__init__()
        self.code, self.user = code, user

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Grant a badge by hand", id="grant-title")
            with Horizontal(classes="grant-row"):
                yield Static("Badge", classes="grant-label")
                yield Input(self.code, placeholder="badge code", id="grant-code", compact=True)
            with Horizontal(classes="grant-row"):
                yield Static("User", classes="grant-label")
                yield Input(self.user, placeholder="user id", id="grant-user", compact=True)
            yield Static("", id="grant-error")
            with Horizontal(id="grant-buttons"):
                yield Button("Cancel", id="grant-cancel", variant="primary")
                yield Button("Grant…", id="grant-ok", variant="success")

    def on_mount(self) -> None:
        self.query_one("#grant-user" if self.code else "#grant-code", Input).focus()

    def _submit(self) -> None:
        code = self.query_one("#grant-code", Input).value.strip()
        user = self.query_one("#grant-user", Input).value.strip()
        if not code or not user:
            self.query_one("#grant-error", Static).update("Both a badge code and a user id.")
            return
        self.dismiss((code, user))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "grant-ok":
            self._submit()
        else:
            self.dismiss(None)
