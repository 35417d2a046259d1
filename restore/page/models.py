"""The models a page offers and those it keeps loaded: the menu (the bundled prior, celebahq when
its weights are cached, the specs the server was started with, programmatic models), a name not
in it refused with the same line whatever it is (unless any model is allowed), and at most
max_models loaded at once, the least recently used dropped."""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Callable

from restore.errors import UsageError
from restore.models.loading import quiet_loading
from restore.models.prior import load_prior
from restore.page.limits import menu_name
from restore.settings.build import resolve_device
from restore.settings.model_spec import BUNDLED, celebahq_available


class ModelMenu:
    """extra: name -> a loaded prior, offered and never unloaded (tests use a slow tiny one).
    specs: model specs the server was started with, offered by their menu_name; warm: some of
    them already loaded (spec -> prior). allow_any_model: a name not in the menu is loaded as a
    spec. on_unload(spec): called when a model is dropped; public(text): a message cut for anyone."""

    def __init__(self, extra: dict[str, Any] | None, specs: Iterable[str], warm: dict[str, Any] | None,
                 allow_any_model: bool, max_models: int, on_unload: Callable[[str], None],
                 public: Callable[[Any], str]):
        self.extra_models = dict(extra or {})
        self.allow_any_model, self.max_models = bool(allow_any_model), max_models
        self.on_unload, self.public = on_unload, public
        self.choices: dict[str, str] = {}  # the menu's names -> their model specs
        started = [BUNDLED, *(["celebahq"] if celebahq_available() else []), *specs]
        for spec in dict.fromkeys(str(s) for s in started):
            name, n = menu_name(spec), 2
            while name in self.choices or name in self.extra_models:
                name, n = f"{menu_name(spec)} ({n})", n + 1
            self.choices[name] = spec
        self.priors: OrderedDict[str, Any] = OrderedDict()  # spec -> loaded prior, the least recently used first
        for spec, prior in list((warm or {}).items())[-max_models:]:
            self.priors[spec] = prior
        self.lock = threading.Lock()

    @property
    def menu(self) -> list[str]:
        """The model menu's entries."""
        return [*self.choices, *self.extra_models]

    def load(self, name: str) -> tuple[str | None, Any]:
        """(spec, loaded prior) of the model menu's entry `name` (spec None for a programmatic
        model). Only the menu's models, unless allow_any_model; at most max_models loaded, the least
        recently used dropped; a model that does not load is a one-line UsageError."""
        spec = self.spec(name)
        if spec is None:
            return None, self.extra_models[name]
        with self.lock:
            if spec in self.priors:
                self.priors.move_to_end(spec)
                return spec, self.priors[spec]
            while len(self.priors) >= self.max_models:  # make room first: at most max_models in memory
                self._unload(next(iter(self.priors)))
            try:
                with quiet_loading():
                    prior = load_prior(spec, device=resolve_device("auto"))
            except Exception as error:  # noqa: BLE001 - a broken file, a wrong folder: one line
                raise UsageError(f"model {menu_name(spec)!r} does not load: {self.public(error)}") from None
            self.priors[spec] = prior
            return spec, prior

    def spec(self, name: Any) -> str | None:
        """The model spec of the menu's entry `name` (None for a programmatic model); a name not in
        the menu is refused, unless allow_any_model (then it is the spec)."""
        if not isinstance(name, str) or not name.strip():
            raise UsageError("choose a model from the menu")
        if name in self.extra_models:
            return None
        spec = self.choices.get(name)
        if spec is None:
            if not self.allow_any_model:  # the same answer whatever the name: nothing learnt of the server
                raise UsageError(f"this page offers only the models of its menu ({', '.join(self.menu)}): "
                                 "choose one of them")
            spec = name.strip()
        return spec

    def _unload(self, spec: str) -> None:
        """Drop a loaded model (and, through on_unload, what holds it) and free its memory."""
        del self.priors[spec]
        self.on_unload(spec)
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001 - freeing is best effort
            pass
