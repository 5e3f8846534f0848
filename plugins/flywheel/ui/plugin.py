"""The Airflow plugin: the Flywheel entry in the UI's navigation and the app it shows (``flywheel.ui.app``).

Every Airflow process that loads plugins (the scheduler, the dag-processor, each task) imports this module,
so it imports nothing but Airflow's plugin class: the app is built on its first request, in the api-server.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

#: Where the api-server mounts the app; the navigation entry points there with a relative URL, which the
#: UI resolves against its ``<base href>``, so a proxy may serve Airflow under a path prefix.
URL_PREFIX = "/flywheel"
#: The navigation's icon, inline: a link to an icon behind the login would be one more request to refuse.
ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
    "stroke='%23017cee' stroke-width='2'%3E%3Ccircle cx='12' cy='12' r='9'/%3E%3Ccircle cx='12' cy='12' "
    "r='3'/%3E%3Cpath d='M12 3v6M12 15v6M3 12h6M15 12h6'/%3E%3C/svg%3E"
)

Scope = MutableMapping[str, Any]
Message = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class DeferredApp:
    """An ASGI app that builds ``flywheel.ui.app.create_app()`` on its first request and hands every
    request to it."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        """The FastAPI app, built now if it was not yet."""
        with self._lock:
            if self._app is None:
                from flywheel.ui.app import create_app

                self._app = create_app()
            return self._app

    async def __call__(self, scope: Scope, receive: Message, send: Send) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:  # what Airflow's plugin listing shows for the app
        return "flywheel.ui.app:create_app"


class FlywheelPlugin(AirflowPlugin):
    """The Flywheel page: an entry in the UI's top navigation showing the app in Airflow's frame."""

    name = "flywheel"
    fastapi_apps = [{"app": DeferredApp(), "url_prefix": URL_PREFIX, "name": "Flywheel"}]
    external_views = [
        {
            "name": "Flywheel",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "url_route": "flywheel",
            "icon": ICON,
            "nav_top_level": True,
        }
    ]
