"""A TCP proxy the chaos test controls: it stands between forewarn's processes and a real server
(PostgreSQL) and turns the link into the faults an operator meets on a bad day.

- :meth:`ChaosProxy.cut`: the server is gone. Every connection is closed and the port refuses
  new ones (the listening socket is closed: a connect gets ECONNREFUSED).
- :meth:`ChaosProxy.blackhole`: a partition. Connections stay open but nothing is forwarded in
  either direction (bytes are read and dropped); new connections are accepted and never
  reach the server. Only a client-side deadline notices: the proxy's kernel acknowledges every
  segment, so TCP keepalives and ``tcp_user_timeout`` see a healthy peer.
- :meth:`ChaosProxy.heal`: traffic flows again for new connections. A connection that was
  blackholed stays silent for good (its byte stream lost data, so it can never be valid again),
  as the issue's partition left its connections: a client must give up on it by itself.

asyncio on a thread of its own; the controls are thread-safe and return once the proxy is in
the new state. A helper of the tests, not part of forewarn.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

CHUNK = 64 * 1024


@dataclass(eq=False)
class _Link:
    """One client connection and, unless it was accepted into a blackhole, its upstream."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None
    silent: bool = False

    def close(self) -> None:
        """Abort both sockets: the pumps reading them see the end and return."""
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class ChaosProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host:target_port`` until told otherwise."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port or _free_port()
        self.state = "forwarding"
        self.accepted = 0
        self.refused_while_cut = 0
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Future[None]] = set()  # the server-to-client pumps (kept referenced)
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxy", daemon=True)

    # ------------------------------------------------------------------ controls (any thread)

    def start(self) -> ChaosProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self._call(self._cut())

    def blackhole(self) -> None:
        """Keep connections open, forward nothing, accept new ones without forwarding them."""
        self._call(self._blackhole())

    def heal(self) -> None:
        """Forward again (new connections; a blackholed one stays silent)."""
        self._call(self._heal())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def open_links(self) -> int:
        return len(self._links)

    def url_for(self, url: str) -> str:
        """``url`` (a server URL with credentials and a path) with its host and port replaced by ours."""
        parts = urlsplit(url)
        auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{self.port}"))

    def __enter__(self) -> ChaosProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: object, timeout: float = 10.0) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the loop's side

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        self.state = "cut"
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for link in list(self._links):
            link.close()
        self._links.clear()

    async def _blackhole(self) -> None:
        await self._listen()
        self.state = "blackhole"
        for link in self._links:
            link.silent = True

    async def _heal(self) -> None:
        await self._listen()
        self.state = "forwarding"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.state == "cut":  # accepted in the instant before the listener closed
            self.refused_while_cut += 1
            writer.transport.abort()
            return
        if self.state == "blackhole":
            link = _Link(writer, None, silent=True)
            self._links.add(link)
            await self._pump(link, reader, None, from_client=True)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()  # the real server is down: so are we, for this client
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        self._tasks.add(asyncio.ensure_future(self._pump(link, up_reader, writer, from_client=False)))
        await self._pump(link, reader, up_writer, from_client=True)

    async def _pump(
        self, link: _Link, src: asyncio.StreamReader, dst: asyncio.StreamWriter | None, *, from_client: bool
    ) -> None:
        """Copy ``src`` to ``dst`` while the link forwards; drop the bytes once it is silent.

        A silent link ends only when its client hangs up (the client gave up on it); the
        server's side closing is never passed on, as across a partition.
        """
        try:
            while True:
                data = await src.read(CHUNK)
                if not data:
                    break
                if link.silent or dst is None:
                    continue  # a partition: the bytes vanish, the connection stays open
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            if not link.silent or from_client:
                self._links.discard(link)
                link.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
