"""The user's own documents: text and Markdown files, folders, JSONL; bad input names the file and the line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from judgeflow.inputs.documents import InputError, load_documents, read_documents, slugify
from judgeflow.protocol.messages import Document


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def _jsonl(*records: object) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


# -- text and Markdown files ------------------------------------------------------------------------------------


def test_text_file_without_heading_takes_its_title_from_the_file_stem(tmp_path: Path) -> None:
    path = _write(tmp_path / "harbour notes.txt", "\n  The harbour opened in 1850.\nShips came.\n\n")
    assert load_documents(path) == [
        Document(
            id="harbour notes.txt",
            title="harbour notes",
            text="The harbour opened in 1850.\nShips came.",
            source=str(path),
        )
    ]


def test_leading_markdown_heading_is_the_title_and_not_the_text(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "paris.md", "\n# History of Paris #\n\nParis grew on the Seine.\n\n## Roman era\nLutetia.\n"
    )
    [document] = load_documents(path)
    assert document.title == "History of Paris"
    assert document.text == "Paris grew on the Seine.\n\n## Roman era\nLutetia."
    assert document.id == "paris.md"


def test_first_heading_after_text_is_the_title_and_the_text_stays_whole(tmp_path: Path) -> None:
    path = _write(tmp_path / "notes.md", "A preface.\n\n## Early days\nA village.\n")
    [document] = load_documents(path)
    assert document.title == "Early days"
    assert document.text == "A preface.\n\n## Early days\nA village."


def test_headings_inside_fenced_code_and_hashtags_are_not_titles(tmp_path: Path) -> None:
    text = "```bash\n# not a title\n```\n#hashtag is not a heading\n~~~\n# nor this\n~~~\n### Real title\nBody.\n"
    [document] = load_documents(_write(tmp_path / "code.md", text))
    assert document.title == "Real title"
    assert document.text.startswith("```bash\n# not a title")


def test_utf8_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    [document] = load_documents(_write(tmp_path / "bom.md", b"\xef\xbb\xbf# Montr\xc3\xa9al\nText."))
    assert (document.title, document.text) == ("Montréal", "Text.")


def test_empty_text_file_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.txt", " \n\n")
    with pytest.raises(InputError, match="empty file") as caught:
        load_documents(path)
    assert str(caught.value) == f"{path}: empty file"


def test_markdown_file_with_only_a_heading_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "title-only.md", "# Just a title\n\n")
    with pytest.raises(InputError) as caught:
        load_documents(path)
    assert str(caught.value) == f"{path}: no text: the file holds only a heading"


def test_non_utf8_text_file_names_the_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin1.txt", "first line\nsecond line\nna\xefve\n".encode("latin-1"))
    with pytest.raises(InputError) as caught:
        load_documents(path)
    assert (caught.value.path, caught.value.line) == (str(path), 3)
    assert str(caught.value) == f"{path}:3: not UTF-8 (byte 0xef at column 3)"


def test_unsupported_suffix_and_missing_path_are_errors(tmp_path: Path) -> None:
    csv = _write(tmp_path / "table.csv", "a,b\n")
    with pytest.raises(InputError, match=r"table\.csv: unsupported file type '\.csv'"):
        load_documents(csv)
    with pytest.raises(InputError, match=r"nowhere\.md: no such file or folder"):
        load_documents(tmp_path / "nowhere.md")


# -- folders ----------------------------------------------------------------------------------------------------


def test_folder_reads_text_and_markdown_recursively_in_path_order(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _write(root / "b.txt", "Bee text.")
    _write(root / "a.md", "# Alpha\nAlpha text.")
    _write(root / "sub" / "c.MD", "# Gamma\nGamma text.")
    _write(root / "sub" / "a.txt", "Sub alpha.")
    _write(root / "table.csv", "x,y\n")
    _write(root / "items.jsonl", _jsonl({"title": "t", "text": "not read from a folder"}))
    _write(root / ".hidden" / "secret.md", "# Secret\nNot read.")
    _write(root / ".draft.md", "# Draft\nNot read.")
    documents = load_documents(root)
    assert [document.id for document in documents] == ["a.md", "b.txt", "sub/a.txt", "sub/c.MD"]
    assert [document.title for document in documents] == ["Alpha", "b", "a", "Gamma"]
    assert documents[3] == Document(id="sub/c.MD", title="Gamma", text="Gamma text.", source=str(root / "sub" / "c.MD"))


def test_folder_skips_empty_documents_and_reports_how_many(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "docs"
    _write(root / "a.md", "# Alpha\nAlpha text.")
    empty = _write(root / "empty.txt", "")
    heading_only = _write(root / "z" / "title.md", "# Only a title\n")
    loaded = read_documents(root)
    assert [document.id for document in loaded.documents] == ["a.md"]
    assert loaded.skipped == (empty, heading_only)
    with caplog.at_level(logging.WARNING, logger="judgeflow.inputs.documents"):
        assert [document.id for document in load_documents(root)] == ["a.md"]
    assert [record.getMessage() for record in caplog.records] == [
        f"{root}: skipped 2 file(s) with no text: {empty}, {heading_only}"
    ]


def test_folder_of_only_empty_documents_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _write(root / "a.md", "# Alpha\n")
    _write(root / "b.txt", "")
    with pytest.raises(InputError) as caught:
        load_documents(root)
    assert str(caught.value) == f"{root}: no text: all 2 .txt/.md files in this folder are empty"


def test_folder_without_text_files_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _write(root / "table.csv", "x,y\n")
    with pytest.raises(InputError, match=r"docs: no \.txt or \.md files in this folder"):
        load_documents(root)


def test_non_utf8_file_in_a_folder_names_that_file(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _write(root / "a.md", "# Alpha\nAlpha text.")
    bad = _write(root / "b.txt", b"\xff\xfeoops")
    with pytest.raises(InputError) as caught:
        load_documents(root)
    assert str(caught.value) == f"{bad}:1: not UTF-8 (byte 0xff at column 1)"


# -- JSONL ------------------------------------------------------------------------------------------------------


def test_jsonl_reads_one_document_per_line_and_skips_blank_lines(tmp_path: Path) -> None:
    records = [
        {"id": "sf", "title": "History of San Francisco", "text": " Gold rush. ", "extra": 1},
        {"id": 7, "title": "Seven", "text": "Seven.", "source": "https://example.org/7"},
        {"title": "History of New York City", "text": "New Amsterdam."},
    ]
    content = json.dumps(records[0]) + "\n\n   \n" + json.dumps(records[1]) + "\r\n" + json.dumps(records[2])
    path = _write(tmp_path / "docs.jsonl", content)
    assert load_documents(path) == [
        Document(id="sf", title="History of San Francisco", text="Gold rush.", source=f"{path}:1"),
        Document(id="7", title="Seven", text="Seven.", source="https://example.org/7"),
        Document(
            id="history_of_new_york_city", title="History of New York City", text="New Amsterdam.", source=f"{path}:5"
        ),
    ]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ('{"title": "a", "text": "b"}\n{"title": "c", "text": \n', 2, "invalid JSON (Expecting value at column 24)"),
        ('["title", "text"]\n', 1, "expected a JSON object, got list"),
        ('{"title": "t"}\n', 1, "missing field 'text'"),
        ('{"id": "x"}\n', 1, "missing fields 'title', 'text'"),
        ('{"title": "t", "text": 3}\n', 1, "field 'text' must be a string, got int"),
        ('{"title": null, "text": "x"}\n', 1, "field 'title' must be a string, got NoneType"),
        ('{"title": "t", "text": "x", "source": 1}\n', 1, "field 'source' must be a string, got int"),
        ('{"id": true, "title": "t", "text": "x"}\n', 1, "field 'id' must be a string or an integer, got bool"),
        ('{"id": " ", "title": "t", "text": "x"}\n', 1, "field 'id' is empty"),
        ('\n{"title": "t", "text": "  \\n "}\n', 2, "field 'text' is empty"),
        ('{"title": "!!", "text": "x"}\n', 1, "no 'id', and the title gives none: add an 'id'"),
    ],
)
def test_jsonl_bad_lines_name_the_file_and_line(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = _write(tmp_path / "docs.jsonl", content)
    with pytest.raises(InputError) as caught:
        load_documents(path)
    assert (caught.value.line, caught.value.message) == (line, message)
    assert str(caught.value) == f"{path}:{line}: {message}"


def test_jsonl_non_utf8_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "docs.jsonl", _jsonl({"title": "a", "text": "b"}).encode() + b'{"title": "\xe9"}\n')
    with pytest.raises(InputError) as caught:
        load_documents(path)
    assert str(caught.value) == f"{path}:2: not UTF-8 (byte 0xe9 at column 12)"


def test_jsonl_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "docs.jsonl",
        _jsonl({"id": "a", "title": "A", "text": "x"}, {"id": "b", "title": "B", "text": "y"})
        + "\n"
        + _jsonl({"id": "a", "title": "A again", "text": "z"}),
    )
    with pytest.raises(InputError) as caught:
        load_documents(path)
    assert str(caught.value) == f"{path}:4: duplicate id 'a': line 1 has it too"


def test_jsonl_duplicate_derived_ids_say_where_the_id_came_from(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "docs.jsonl",
        _jsonl({"title": "History of Paris", "text": "x"}, {"title": "History of  paris!", "text": "y"}),
    )
    with pytest.raises(InputError) as caught:
        load_documents(path)
    assert str(caught.value) == (
        f"{path}:2: duplicate id 'history_of_paris' (derived from the title: give each line its own 'id'): "
        "line 1 has it too"
    )


def test_integer_and_string_ids_that_print_alike_are_duplicates(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "docs.jsonl", _jsonl({"id": 1, "title": "A", "text": "x"}, {"id": "1", "title": "B", "text": "y"})
    )
    with pytest.raises(InputError, match=r"docs\.jsonl:2: duplicate id '1': line 1 has it too"):
        load_documents(path)


def test_empty_jsonl_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "docs.jsonl", "\n  \n")
    with pytest.raises(InputError) as caught:
        load_documents(path)
    assert str(caught.value) == f"{path}: no documents: the file is empty"


def test_slugify() -> None:
    assert slugify("History of New York City") == "history_of_new_york_city"
    assert slugify("  Histoire de Montréal (ville) ") == "histoire_de_montréal_ville"
    assert slugify("!!!") == ""
    assert slugify("a " * 100, max_length=10) == "a_a_a_a_a"
