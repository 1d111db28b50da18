"""Render the paper report (HTML, and PDF through LaTeX) from result files only.

Each section is a module in ``facegen.report.sections`` with ``TITLE``, ``inputs(config)`` (the result
files it reads, so the workflow can depend on them) and ``context(config, results)``; its templates are
``templates/<name>.html.j2`` and ``templates/<name>.tex.j2``. Later parts of the study add a section
by adding a module and listing it in ``SECTIONS``.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import jinja2

from facegen import paths
from facegen.io import atomic_path, read_json, write_text
from facegen.report.sections import SECTIONS

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
TEX_SPECIALS = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                "|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}"}


class ReportError(RuntimeError):
    pass


def tex_escape(value) -> str:
    return "".join(TEX_SPECIALS.get(ch, ch) for ch in str(value))


def tex_header(value, min_cm: float = 1.5) -> str:
    """A table's column header for LaTeX: a long one wraps in a bottom-aligned box at least as wide as its
    longest word at scriptsize (about 0.14 cm a character), so no word runs into the next column."""
    text = str(value)
    if len(text) <= 10:
        return tex_escape(text)
    width = max(min_cm, 0.14 * max(len(w) for w in text.split()))
    return f"\\parbox[b]{{{width:.2f}cm}}{{\\raggedright {tex_escape(text)}}}"


def tex_path(value) -> str:
    """A run or file path for LaTeX that may break after each slash (a narrow column otherwise overflows)."""
    return tex_escape(value).replace("/", "/\\allowbreak{}")


def data_uri(path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def number(value, digits: int = 0) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _environment(kind: str) -> jinja2.Environment:
    if kind == "tex":
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), block_start_string="((*", block_end_string="*))",
            variable_start_string="(((", variable_end_string=")))", comment_start_string="((=", comment_end_string="=))",
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False,
        )
        env.filters["e"] = tex_escape
        env.filters["header"] = tex_header
        env.filters["path"] = tex_path
    else:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                                 autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
        env.filters["data_uri"] = data_uri
    env.filters["num"] = number
    return env


def report_inputs(config: dict) -> list[str]:
    files = [str(paths.provenance(config))]
    for section in SECTIONS:
        files += [str(p) for p in section.inputs(config)]
    return list(dict.fromkeys(files))  # the findings' parts share their files


def collect(config: dict) -> dict:
    results = paths.results(config)
    sections = []
    for section in SECTIONS:
        sections.append({"name": section.NAME, "title": section.TITLE, **section.context(config, results)})
    provenance = read_json(paths.provenance(config))
    return {"title": config["report"]["title"], "sections": sections, "provenance": provenance,
            "provenance_path": str(paths.provenance(config))}


def render(kind: str, context: dict) -> str:
    return _environment(kind).get_template(f"paper.{kind}.j2").render(**context)


def build_pdf(tex: str, pdf_path: str | Path) -> None:
    latexmk = shutil.which("latexmk")
    if latexmk is None or shutil.which("pdflatex") is None:
        raise ReportError(
            "cannot build the PDF report: latexmk/pdflatex not found. Install Debian's TeX packages "
            "(`sudo apt-get install texlive-latex-base texlive-latex-recommended texlive-fonts-recommended latexmk`) "
            "or set report.pdf: false in the config."
        )
    with tempfile.TemporaryDirectory(prefix="facegen-tex-") as tmp:
        (Path(tmp) / "paper.tex").write_text(tex)
        cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-quiet", "paper.tex"]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"})
        if proc.returncode != 0:
            log_text = (Path(tmp) / "paper.log").read_text(errors="replace") if (Path(tmp) / "paper.log").exists() else proc.stdout
            raise ReportError("LaTeX failed to build the report; the end of its log:\n" + log_text[-3000:])
        with atomic_path(pdf_path) as out:
            shutil.copyfile(Path(tmp) / "paper.pdf", out)


def build_report(config: dict, html_path: str | Path, pdf_path: str | Path | None) -> None:
    context = collect(config)
    write_text(html_path, render("html", context))
    if pdf_path is not None:
        if not config["report"]["pdf"]:
            raise ReportError("a PDF path was given but report.pdf is false in the config")
        build_pdf(render("tex", context), pdf_path)
    log.info("report written to %s%s", html_path, f" and {pdf_path}" if pdf_path else "")
