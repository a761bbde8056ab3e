"""The report as PDF — the form a submission usually takes — printed from the HTML report by headless Chromium.

Why Chromium: the HTML report is already laid out for A4 print (one detailed item
per page, ``@page`` margins); printing it keeps one layout for screen and paper
and embeds the fonts it used, so Korean glyphs travel with the file (Debian:
``chromium`` and ``fonts-noto-cjk``, installed by ``scripts/system-deps.sh pdf``).
The HTML carries a Content Security Policy that forbids any load, and Chromium
runs with networking features off and a throw-away profile: printing opens no
connection. Evidence links in the PDF are relative to where it is written.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

from .html import render_html
from .report_model import ReportModel

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-pdf-header-footer",
         "--hide-scrollbars"]
TIMEOUT = 180


class PdfError(RuntimeError):
    pass


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not exe:
        raise PdfError("report --format pdf needs headless Chromium: run `scripts/system-deps.sh pdf` as root "
                       "(apt-get install -y chromium fonts-noto-cjk)")
    return exe


def cjk_font_present() -> bool:
    pats = ["/usr/share/fonts/opentype/noto/NotoSansCJK*", "/usr/share/fonts/**/*CJK*", "/usr/share/fonts/**/*Nanum*"]
    return any(glob.glob(p, recursive=True) for p in pats)


def write_pdf(model: ReportModel, out_path: str) -> None:
    """Render ``model`` to ``out_path`` (A4). Raises :class:`PdfError` with what to install or what failed."""
    exe = chromium()
    if model.lang == "ko" and not cjk_font_present():
        raise PdfError("report --format pdf --lang ko needs a Korean font: apt-get install -y fonts-noto-cjk "
                       "(or run `scripts/system-deps.sh pdf` as root)")
    out_abs = os.path.abspath(out_path)
    work = tempfile.mkdtemp(prefix="ea-pdf-")
    try:
        # the HTML sits where the PDF goes (same folder, hidden name) so relative evidence links stay right
        html_path = os.path.join(os.path.dirname(out_abs), f".{os.path.basename(out_abs)}.{os.getpid()}.html")
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(render_html(model, out_abs))
        tmp_pdf = os.path.join(work, "report.pdf")
        try:
            p = subprocess.run([exe, *FLAGS, f"--user-data-dir={os.path.join(work, 'profile')}",
                                f"--print-to-pdf={tmp_pdf}", "file://" + html_path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise PdfError(f"chromium did not finish printing within {TIMEOUT}s") from None
        finally:
            os.unlink(html_path)
        if not os.path.isfile(tmp_pdf) or os.path.getsize(tmp_pdf) == 0:
            tail = p.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise PdfError(f"chromium exited {p.returncode} without a PDF: {' | '.join(tail)}")
        shutil.move(tmp_pdf, out_abs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
