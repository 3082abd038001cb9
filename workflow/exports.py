"""The RFC list exported (issue 17 item 3): every row the list's filters keep, as CSV or XLSX.

Both are written a chunk of rows at a time (constant memory whatever the number of RFCs): the CSV
streams to the client as it is written; the XLSX is written row by row by openpyxl's write-only
workbook into a temporary file, then streamed from it. No cell runs as a formula in a spreadsheet
(a leading = + - @ is neutralised) and control characters a workbook may not hold are dropped.
"""

from __future__ import annotations

import csv
import re
import tempfile

from django.http import FileResponse, StreamingHttpResponse
from django.utils import translation

from audit.trail import neutralise
from core import clock

COLUMNS = ["number", "title", "state", "class", "risk", "release", "sites", "author", "filed_utc"]
FORMATS = ("csv", "xlsx")
CHUNK = 500
# XML 1.0 refuses these; openpyxl raises on them.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def cells(rfc) -> list[str]:
    # An export is machine-readable: its labels stay English whatever the reader's language.
    with translation.override(None):
        return [
            neutralise(cell)
            for cell in (
                rfc.number,
                rfc.title,
                rfc.get_state_display(),
                rfc.get_change_class_display(),
                rfc.get_risk_level_display() if rfc.risk_level else "",
                str(rfc.release),
                " ".join(i.site.code for i in rfc.impacts.all()),
                rfc.author.get_username(),
                f"{rfc.created_at:%Y-%m-%d %H:%M}",
            )
        ]


def _filename(extension: str) -> str:
    return f"rfcs-{clock.now():%Y%m%d-%H%M}.{extension}"


def response(rows, fmt: str):
    return csv_response(rows) if fmt == "csv" else xlsx_response(rows)


def csv_response(rows) -> StreamingHttpResponse:
    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())

    def lines():
        yield writer.writerow(COLUMNS)
        for rfc in rows.iterator(chunk_size=CHUNK):
            yield writer.writerow(cells(rfc))

    answer = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    answer["Content-Disposition"] = f'attachment; filename="{_filename("csv")}"'
    return answer


def xlsx_response(rows) -> FileResponse:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("RFCs")
    sheet.append(COLUMNS)
    for rfc in rows.iterator(chunk_size=CHUNK):
        line = []
        for value in cells(rfc):
            cell = WriteOnlyCell(sheet, value=_ILLEGAL.sub("", value))
            cell.data_type = "s"  # text, never a formula, whatever it starts with
            line.append(cell)
        sheet.append(line)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it once sent)
    book.save(spool)
    spool.seek(0)
    return FileResponse(
        spool,
        as_attachment=True,
        filename=_filename("xlsx"),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
