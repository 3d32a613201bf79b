"""A client for the platform's JSON API (``/api/v1``), on the standard library's urllib.

    >>> client = Client("http://127.0.0.1:8080", token="…")   # `concord user token NAME`
    >>> client.releases("podcasts")
    >>> client.release("podcasts", "v1").to_pandas()
    >>> client.quality("podcasts")
    >>> client.import_items("podcasts", [{"id": "ep1", "data": {...}}])
    >>> client.sql("SELECT count(*) FROM items", project="podcasts")
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterable, Optional, Union

import pandas as pd

__all__ = ["Client", "ClientError", "Release"]


class ClientError(Exception):
    """An HTTP error from the server, with its status and the server's message."""

    def __init__(self, status: int, message: str, url: str):
        super().__init__(f"{status} from {url}: {message}")
        self.status = status
        self.message = message
        self.url = url


class Client:
    def __init__(self, url: str, token: str, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # --- transport ----------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[dict] = None,
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
    ) -> tuple[bytes, str]:
        url = f"{self.url}/api/v1{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                message = json.loads(raw)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode("utf-8", "replace").strip() or error.reason
            raise ClientError(error.code, message, url) from None

    def _json(self, method: str, path: str, payload: Any = None, **kwargs: Any) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        raw, _ = self._request(
            method, path, body=body, content_type="application/json" if body else None, **kwargs
        )
        return json.loads(raw) if raw else None

    @staticmethod
    def _slug(project: str) -> str:
        return urllib.parse.quote(project, safe="")

    # --- projects and releases ------------------------------------------------------------
    def projects(self) -> list[dict]:
        return self._json("GET", "/projects")["projects"]

    def releases(self, project: str) -> list[dict]:
        """The project's releases (name, item count, method, QA summary, …)."""
        return self._json("GET", f"/projects/{self._slug(project)}/releases")["releases"]

    def release(self, project: str, name: str) -> "Release":
        """One release; ``.to_pandas()`` downloads its items."""
        info = self._json(
            "GET", f"/projects/{self._slug(project)}/releases/{urllib.parse.quote(name, safe='')}"
        )
        return Release(self, project, name, info)

    def create_release(self, project: str, name: str, description: str = "") -> "Release":
        info = self._json(
            "POST",
            f"/projects/{self._slug(project)}/releases",
            {"name": name, "description": description},
        )
        return Release(self, project, name, info)

    # --- quality ----------------------------------------------------------------------------
    def quality(self, project: str) -> dict:
        """The latest consensus run, per-annotator quality, escalation and adjudication counts."""
        return self._json("GET", f"/projects/{self._slug(project)}/quality")

    # --- imports ----------------------------------------------------------------------------
    def import_items(
        self,
        project: str,
        records: Union[Iterable[dict], pd.DataFrame],
        *,
        kind: str = "items",
        on_conflict: str = "error",
        wait: bool = True,
        poll_seconds: float = 0.2,
    ) -> dict:
        """Import items (or annotations with ``kind="annotations"``) as JSONL records — a list
        of dicts or a DataFrame, one record per row. Returns the import job; with ``wait``
        (the default) once it has finished, raising ``ClientError`` when it failed."""
        if isinstance(records, pd.DataFrame):
            lines = records.to_json(orient="records", lines=True, force_ascii=False)
        else:
            lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        raw, _ = self._request(
            "POST",
            f"/projects/{self._slug(project)}/imports",
            query={"kind": kind, "format": "jsonl", "on_conflict": on_conflict, "filename": "python.jsonl"},
            body=lines.encode("utf-8"),
            content_type="application/x-ndjson",
        )
        job = json.loads(raw)["job"]
        return self.wait_for_job(job["id"], poll_seconds) if wait else job

    def job(self, job_id: int) -> dict:
        return self._json("GET", f"/jobs/{int(job_id)}")["job"]

    def wait_for_job(self, job_id: int, poll_seconds: float = 0.2, timeout: float = 600.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] not in ("queued", "running"):
                if job["status"] != "succeeded":
                    raise ClientError(422, f"job {job_id} {job['status']}: {job.get('message', '')}", self.url)
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(poll_seconds)

    # --- SQL -------------------------------------------------------------------------------
    def sql(self, query: str, project: Optional[str] = None, limit: Optional[int] = None) -> pd.DataFrame:
        """A read-only SQL query over the platform's documented views (``POST /api/v1/sql``)."""
        payload: dict = {"query": query}
        if project is not None:
            payload["project"] = project
        if limit is not None:
            payload["limit"] = int(limit)
        answer = self._json("POST", "/sql", payload)
        frame = _frame_from_answer(answer)
        if isinstance(answer, dict):
            # Whether more rows matched than came back (the limit or the server's row cap).
            frame.attrs["truncated"] = bool(answer.get("truncated", False))
        return frame


def _frame_from_answer(answer: Any) -> pd.DataFrame:
    """Rows as the server sends them: ``{"columns": [...], "rows": [[...], ...]}`` or a list of
    objects (under ``rows`` or bare)."""
    if isinstance(answer, dict):
        rows = answer.get("rows", [])
        columns = answer.get("columns")
        if columns is not None:
            names = [c["name"] if isinstance(c, dict) else c for c in columns]
            if rows and isinstance(rows[0], dict):
                return pd.DataFrame.from_records(rows, columns=names)
            return pd.DataFrame(rows, columns=names)
        return pd.DataFrame.from_records(rows)
    return pd.DataFrame.from_records(answer)


class Release:
    """A release of a project: ``info`` as the API gives it, ``to_pandas()`` for its items."""

    def __init__(self, client: Client, project: str, name: str, info: dict):
        self.client = client
        self.project = project
        self.name = name
        self.info = info

    def __repr__(self) -> str:
        return f"Release({self.project!r}, {self.name!r})"

    def _path(self, what: str) -> str:
        return (
            f"/projects/{Client._slug(self.project)}/releases/"
            f"{urllib.parse.quote(self.name, safe='')}/{what}"
        )

    def to_pandas(self, labels: bool = False, format: str = "auto") -> pd.DataFrame:
        """The release's items (one row per item), or with ``labels=True`` its individual labels
        (one row per label). ``format="auto"`` takes Parquet when the server offers it and
        pyarrow is installed (typed columns), else the JSONL download; ``"parquet"`` or
        ``"jsonl"`` insist on one."""
        if format not in ("auto", "parquet", "jsonl"):
            raise ValueError(f"format is auto, parquet or jsonl (got {format!r})")
        path = self._path("labels" if labels else "items")
        if format != "jsonl" and (format == "parquet" or _has_pyarrow()):
            try:
                raw, _ = self.client._request("GET", path, query={"format": "parquet"})
            except ClientError as error:
                # A server without Parquet downloads answers 400 (unknown format).
                if format == "parquet" or error.status != 400:
                    raise
            else:
                if raw[:4] != b"PAR1":
                    raise ClientError(200, "the server's Parquet download is not a Parquet file", path)
                return pd.read_parquet(io.BytesIO(raw))
        raw, _ = self.client._request("GET", path, query={"format": "jsonl"})
        records = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
        return pd.DataFrame.from_records(records)


def _has_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True
