"""The bundled corpus: original articles on the history of the recipe's eight cities.

The articles were written for this project (no text copied from Wikipedia or elsewhere) so that the embedded
default runs offline with no licence questions. Each is a Markdown file whose first line is ``# History of
<City>``; they ship as package data and are read with importlib.resources, never from a path on disk.
"""

from __future__ import annotations

from importlib import resources

from judgeflow.protocol.messages import Document

__all__ = ["CITIES", "load_corpus"]

CITIES: tuple[str, ...] = (
    "San Francisco",
    "Toronto",
    "New York",
    "Vancouver",
    "Montreal",
    "Tokyo",
    "Singapore",
    "Paris",
)


def _slug(city: str) -> str:
    return city.lower().replace(" ", "_")


def load_corpus(cities: tuple[str, ...] = CITIES) -> list[Document]:
    """The bundled articles as documents, in the order of ``cities``."""
    package = resources.files(__name__)
    documents = []
    for city in cities:
        name = f"{_slug(city)}.md"
        text = package.joinpath(name).read_text(encoding="utf-8")
        lines = text.strip().splitlines()
        title = lines[0].lstrip("# ").strip() if lines and lines[0].startswith("#") else f"History of {city}"
        body = "\n".join(lines[1:]).strip() if lines and lines[0].startswith("#") else text.strip()
        documents.append(Document(id=_slug(city), title=title, text=body, source=f"judgeflow:corpus/{name}"))
    return documents
