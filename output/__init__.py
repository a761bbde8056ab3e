"""Renderers: turn a bundle's results into what people read (terminal summary, HTML, XLSX, Markdown)."""
