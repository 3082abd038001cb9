"""Uploaded files: type checked by content, size-limited, stored under generated names outside
the web root, hashed once (X5)."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

CHUNK = 64 * 1024
MAX_NAME = 150

# Content type by the file's first bytes; the name's extension must agree with it.
_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "image/png", {".png"}),
    (b"\xff\xd8\xff", "image/jpeg", {".jpg", ".jpeg"}),
    (b"%PDF-", "application/pdf", {".pdf"}),
]
_TEXT_EXTENSIONS = {
    ".txt": "text/plain",
    ".log": "text/plain",
    ".csv": "text/csv",
    ".json": "application/json",
    ".xml": "application/xml",
    ".sql": "text/plain",
    ".md": "text/plain",
}
# Markup a browser would run if it ever rendered the file, whatever the name says.
_ACTIVE_MARKUP = re.compile(
    rb"<\s*(!doctype\s+html|html|script|svg|iframe|object|embed|body)\b|javascript:", re.I
)
_BAD_NAME = re.compile(r"[\\/\x00-\x1f\x7f]")


class UploadRefused(ValidationError):
    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message, code=code)


@dataclass(frozen=True)
class StoredFile:
    stored_name: str
    original_name: str
    content_type: str
    size: int
    sha256: str


def check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name or "").strip()
    if not name:
        raise UploadRefused(_("The file has no name."))
    if len(name) > MAX_NAME:
        raise UploadRefused(_("The file name is longer than %(max)s characters.") % {"max": MAX_NAME})
    if _BAD_NAME.search(name) or ".." in name or name.startswith("."):
        raise UploadRefused(_("The file name may not contain a path, '..' or control characters."))
    if "." not in name:
        raise UploadRefused(_("The file name needs an extension such as .png, .pdf or .log."))
    return name


def sniff(head: bytes, name: str) -> str:
    """The content type the bytes prove, or UploadRefused naming what is wrong."""
    extension = Path(name).suffix.lower()
    for magic, content_type, extensions in _MAGIC:
        if head.startswith(magic):
            if extension not in extensions:
                raise UploadRefused(
                    _("The file is %(type)s but is named %(extension)s.")
                    % {"type": content_type, "extension": extension}
                )
            return content_type
    if extension in {".png", ".jpg", ".jpeg", ".pdf"}:
        raise UploadRefused(
            _("The file is named %(extension)s but its content is not a %(format)s file.")
            % {"extension": extension, "format": extension[1:].upper()}
        )
    if extension not in _TEXT_EXTENSIONS:
        allowed = ", ".join(sorted({".png", ".jpg", ".pdf", *_TEXT_EXTENSIONS}))
        if extension:
            raise UploadRefused(
                _("%(extension)s files are not accepted; use one of %(allowed)s.")
                % {"extension": extension, "allowed": allowed}
            )
        raise UploadRefused(_("This files are not accepted; use one of %(allowed)s.") % {"allowed": allowed})
    if b"\x00" in head:
        raise UploadRefused(_("The file is binary but named as text."))
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a character cut at the buffer's end is fine
            raise UploadRefused(_("A text file must be UTF-8.")) from None
    if _ACTIVE_MARKUP.search(head):
        raise UploadRefused(_("The file contains HTML, SVG or script, which is not accepted as evidence."))
    return _TEXT_EXTENSIONS[extension]


def storage_dir(kind: str) -> Path:
    folder = Path(settings.MEDIA_ROOT) / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def store(uploaded, kind: str, max_bytes: int | None = None, check_type: bool = True) -> StoredFile:
    """Check and store an uploaded file; nothing stays on disk when a check fails."""
    limit = max_bytes if max_bytes is not None else settings.EVIDENCE_MAX_BYTES
    name = check_name(getattr(uploaded, "name", ""))
    if uploaded.size is not None and uploaded.size > limit:
        raise UploadRefused(
            _("The file is larger than the limit of %(mb)s MB.") % {"mb": limit // (1024 * 1024)},
            code="too_large",
        )
    if uploaded.size == 0:
        raise UploadRefused(_("The file is empty."))
    uploaded.seek(0)
    head = uploaded.read(8192)
    content_type = sniff(head, name) if check_type else "application/octet-stream"
    stored_name = secrets.token_hex(16)
    target = storage_dir(kind) / stored_name
    digest, size = hashlib.sha256(), 0
    try:
        with open(target, "xb") as out:
            uploaded.seek(0)
            for chunk in uploaded.chunks(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadRefused(
                        _("The file is larger than the limit of %(mb)s MB.") % {"mb": limit // (1024 * 1024)},
                        code="too_large",
                    )
                if content_type.startswith(
                    ("text/", "application/json", "application/xml")
                ) and _ACTIVE_MARKUP.search(chunk):
                    raise UploadRefused(
                        _("The file contains HTML, SVG or script, which is not accepted as evidence.")
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StoredFile(stored_name, name, content_type, size, digest.hexdigest())


def path_of(kind: str, stored_name: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", stored_name):
        raise ValueError("not a stored name")
    return Path(settings.MEDIA_ROOT) / kind / stored_name


def discard(kind: str, stored_name: str) -> None:
    path_of(kind, stored_name).unlink(missing_ok=True)
