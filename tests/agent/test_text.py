"""innerText-like extraction of the plain-HTTP engine."""

from __future__ import annotations

from watcher.agent.text import visible_text


def test_visible_text_drops_scripts_styles_and_hidden_elements() -> None:
    page = (
        "<html><head><title>T</title><style>p{}</style><script>var a = '1 ₽';</script></head>"
        "<body><h1>Плед  флисовый</h1><div><span>4,8</span> · <span>12&nbsp;345 оценок</span>"
        "</div><p hidden>скрыто</p><div style='display: none'>тоже</div>"
        "<div aria-hidden=true>и это</div><ins>1&nbsp;299&nbsp;₽</ins><br><del>2 600 ₽</del>"
        "<noscript>Включите JS</noscript></body></html>"
    )
    assert visible_text(page) == "Плед флисовый\n4,8 · 12\xa0345 оценок\n1\xa0299\xa0₽\n2 600 ₽"
