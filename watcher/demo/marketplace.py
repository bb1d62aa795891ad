"""A fake marketplace for the demo and tests: ``python -m watcher.demo.marketplace --port PORT``.

Serves product pages of the three marketplaces at their real URL paths under a prefix
(``/wildberries/catalog/{sku}/detail.aspx``, ``/ozon/product/{sku}/``,
``/yandex_market/product/{sku}``). Prices are a deterministic function of the SKU and the night,
so a page reads the same all night and changes from night to night; some demo competitors dump
below our price, some products are out of stock or gone. ``GET /_truth/{marketplace}/{sku}``
answers what the page shows; ``POST /_control`` switches a marketplace to captcha or 403 mode
or slows it down. Standard library only: no Django, runs anywhere the agent does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import html
import json
import re
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from watcher.demo.catalogue import DEMO

MARKETPLACES = ("wildberries", "ozon", "yandex_market")
MODES = ("ok", "captcha", "403")
NBSP = "\u00a0"

PRODUCT_PATHS = {
    "wildberries": re.compile(r"^/wildberries/catalog/(\d+)/detail\.aspx$"),
    "ozon": re.compile(r"^/ozon/product/(?:[\w-]*-)?(\d+)/?$"),
    "yandex_market": re.compile(r"^/yandex_market/product/(?:[\w-]*/)?(\d+)/?$"),
}

# Competitors of the demo catalogue that sell below our price (dumping), and demo SKUs whose
# pages say "out of stock" or "not found", so a first night shows every outcome.
DUMPING = {"145627193": 0.78, "1187365420": 0.75, "1693847201": 0.72}
OUT_OF_STOCK = {"1702938475"}
NOT_FOUND = {"98347261"}

_GENERATED_TITLES = (
    "Термокружка стальная 450 мл",
    "Наушники беспроводные TWS",
    "Рюкзак городской 25 л",
    "Лампа настольная светодиодная",
    "Коврик для йоги 6 мм",
    "Сковорода антипригарная 26 см",
)
_SELLERS = ("ООО «Северный дом»", "ИП Смирнова", "ООО «Трейд Лайн»", "ИП Кузнецов")


def _hash(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return int(digest[:12], 16)


def night_of(moment: dt.datetime | None = None) -> dt.date:
    """The night a moment belongs to: 12:00 to 12:00, so a night's pages read the same."""
    moment = moment or dt.datetime.now().astimezone()
    return (moment - dt.timedelta(hours=12)).date()


@dataclass(frozen=True)
class Product:
    marketplace: str
    sku: str
    found: bool
    title: str = ""
    brand: str = ""
    seller: str = ""
    current_price: int | None = None
    old_price: int | None = None
    spp_price: int | None = None
    in_stock: bool | None = None
    stock_quantity: int | None = None
    rating: str | None = None
    reviews_count: int | None = None

    def truth(self, night: dt.date) -> dict[str, Any]:
        return {**asdict(self), "night": night.isoformat()}


def _catalogue() -> dict[str, tuple[str, str, str | None]]:
    """sku -> (title, brand, our sku it competes with, or None for our own)."""
    known: dict[str, tuple[str, str, str | None]] = {}
    for brand, _mp, sku, title, _priority, competitors in DEMO:
        known[sku] = (title, brand, None)
        for comp_sku, name, _p in competitors:
            known[comp_sku] = (name, name.split()[-1], sku)
    return known


CATALOGUE = _catalogue()


def _base_price(sku: str) -> int:
    return 490 + (_hash("base", sku) % 90) * 50


def _day_price(base: float, sku: str, night: dt.date) -> int:
    """Within ±3 % of the base, different each night; ends in 9 like real prices."""
    swing = 1 + ((_hash("day", sku, night.isoformat()) % 7) - 3) / 100
    return max(99, round(base * swing / 10) * 10 - 1)


def product(marketplace: str, sku: str, night: dt.date) -> Product:
    """What the page of ``sku`` shows on ``night``: a pure function of its arguments."""
    h = _hash(marketplace, sku)
    known = CATALOGUE.get(sku)
    if (known is None and h % 23 == 0) or sku in NOT_FOUND:
        return Product(marketplace, sku, found=False)
    if known is not None:
        title, brand, ours = known
    else:
        title, brand, ours = _GENERATED_TITLES[h % len(_GENERATED_TITLES)], "NoName", None
    seller = _SELLERS[h % len(_SELLERS)]
    rating = f"{4 + (h // 7 % 10) / 10:.1f}".replace(".", ",")
    reviews = 3 + h // 11 % 20_000
    common = {"title": title, "brand": brand, "seller": seller, "rating": rating}
    if (known is None and h % 17 == 0) or sku in OUT_OF_STOCK:
        return Product(marketplace, sku, True, in_stock=False, reviews_count=reviews, **common)
    if ours is not None:
        # A competitor follows our price: a little above it, or well below when it dumps.
        base = _base_price(ours) * DUMPING.get(sku, 1.04 + (h % 9) / 100)
    else:
        base = _base_price(sku)
    price = _day_price(base, sku, night)
    old = (price * (150 + h % 60) // 100 // 100 + 1) * 100 - 10
    wallet = None if marketplace == "yandex_market" and h % 3 == 0 else price * 95 // 100
    stock = 1 + h % 9 if h % 4 == 0 else None
    return Product(
        marketplace, sku, True, current_price=price, old_price=old, spp_price=wallet,
        in_stock=True, stock_quantity=stock, reviews_count=reviews, **common,
    )  # fmt: skip


# --- pages ------------------------------------------------------------------------------------


def rub(amount: int) -> str:
    """``1 299 ₽`` with a non-breaking space between thousands, as the marketplaces print."""
    return f"{amount:,}".replace(",", NBSP) + f"{NBSP}₽"


def _plural(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


WALLET = {"wildberries": "с WB Кошельком", "ozon": "c Ozon Картой", "yandex_market": "с Пэй"}
HEADER = {"wildberries": "Wildberries", "ozon": "OZON", "yandex_market": "Яндекс Маркет"}
CAROUSEL = {
    "wildberries": "Похожие товары",
    "ozon": "Рекомендуем также",
    "yandex_market": "Похожие товары",
}


def _e(text: object) -> str:
    return html.escape(str(text))


def _carousel(p: Product, night: dt.date) -> str:
    items = []
    for i in range(3):
        other = str(_hash("other", p.sku, i) % 900_000_000 + 100_000_000)
        price = _day_price(_base_price(other), other, night)
        items.append(
            f'<a class="card" href="#{other}"><div class="name">'
            f"{_e(_GENERATED_TITLES[(_hash(other) + i) % len(_GENERATED_TITLES)])}</div>"
            f"<div><ins>{rub(price)}</ins></div><div><del>{rub(price * 2 // 100 * 100 - 10)}"
            f"</del></div><div>4,{i + 3}</div></a>"
        )
    return f"<section><h2>{CAROUSEL[p.marketplace]}</h2>{''.join(items)}</section>"


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang=ru><head><meta charset=utf-8>"
        f"<title>{_e(title)}</title><style>body{{font-family:sans-serif}}"
        '</style><script>window.__STATE__ = {"price": 1};</script></head><body>'
        f"{body}<noscript>Включите JavaScript</noscript></body></html>"
    )


def product_page(p: Product, night: dt.date) -> str:
    mp = p.marketplace
    head = f"<header><a href=/>{HEADER[mp]}</a><nav><a>Каталог</a><a>Войти</a></nav></header>"
    if not p.found:
        text = {
            "wildberries": "Такой страницы нет",
            "ozon": "Такой страницы не существует",
            "yandex_market": "Товар не найден",
        }[mp]
        return _page(text, f"{head}<main><h1>{text}</h1><p>Попробуйте поискать что-нибудь "
                           "другое</p><a href=/>На главную</a></main>")  # fmt: skip
    reviews = p.reviews_count or 0
    word = _plural(reviews, "оценка", "оценки", "оценок")
    block = [
        f"<div class=crumbs>Главная / Каталог / {_e(p.title.split()[0])}</div>",
        f"<div class=brand>{_e(p.brand)}</div><h1>{_e(p.title)}</h1>",
        f"<div class=rating><span>{p.rating}</span> · <span>{rub(reviews)[:-2]} {word}</span>"
        "</div>",
        f"<div>Артикул: {p.sku}</div>",
    ]
    if p.in_stock:
        assert p.current_price is not None and p.old_price is not None
        if p.spp_price is not None:
            block.append(f"<div class=wallet>{rub(p.spp_price)} {WALLET[mp]}</div>")
        block.append(f"<div class=price><ins>{rub(p.current_price)}</ins></div>")
        block.append(f"<div class=old><del>{rub(p.old_price)}</del></div>")
        if p.stock_quantity is not None:
            block.append(f"<div>Осталось {p.stock_quantity} шт.</div>")
        block.append("<button>Добавить в корзину</button>")
    else:
        block.append("<div class=oos>Нет в наличии</div><button>Сообщить о поступлении</button>")
    block.append(f"<h2>Продавец</h2><div>{_e(p.seller)}</div>")
    block.append("<h2>Характеристики</h2><dl><dt>Страна</dt><dd>Россия</dd></dl>")
    block.append('<div style="display: none">скрытый текст 1 ₽</div>')
    body = f"{head}<main><div class=product>{''.join(block)}</div>{_carousel(p, night)}</main>"
    return _page(p.title, body)


CAPTCHA_PAGE = _page(
    "Проверка",
    "<main><h1>Подтвердите, что запросы отправляли вы, а не робот</h1>"
    "<p>Мы обнаружили подозрительный трафик с вашего IP-адреса.</p><button>Я не робот</button>"
    "</main>",
)
FORBIDDEN_PAGE = _page("403", "<main><h1>403 Forbidden</h1><p>Доступ ограничен</p></main>")


# --- server -----------------------------------------------------------------------------------


class State:
    """Modes, delays and hit counters per marketplace, shared by the server's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.modes = dict.fromkeys(MARKETPLACES, "ok")
        self.delays_ms = dict.fromkeys(MARKETPLACES, 0)
        self.hits = dict.fromkeys(MARKETPLACES, 0)
        self.night: dt.date | None = None  # fixed by --night, else the current night

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"modes": dict(self.modes), "delays_ms": dict(self.delays_ms),
                    "hits": dict(self.hits)}  # fmt: skip

    def control(self, body: Any) -> dict[str, Any]:
        """Apply ``{"marketplace": mp|"*", "mode"?: ..., "delay_ms"?: ...}``; ValueError if bad."""
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        target = body.get("marketplace", "*")
        names = MARKETPLACES if target == "*" else (target,)
        if target != "*" and target not in MARKETPLACES:
            raise ValueError(f"unknown marketplace {target!r}")
        mode, delay = body.get("mode"), body.get("delay_ms")
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if delay is not None and (not isinstance(delay, int) or not 0 <= delay <= 600_000):
            raise ValueError("delay_ms must be an integer from 0 to 600000")
        with self.lock:
            for name in names:
                if mode is not None:
                    self.modes[name] = mode
                if delay is not None:
                    self.delays_ms[name] = delay
        return self.snapshot()


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeMarketplace/1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the demo runs next to the web server's own log

        def _send(self, code: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json(self, code: int, payload: Any) -> None:
            self._send(code, json.dumps(payload, ensure_ascii=False), "application/json")

        def _night(self) -> dt.date:
            return state.night or night_of()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/_control":
                return self._json(200, state.snapshot())
            if match := re.match(r"^/_truth/(\w+)/(\d+)$", path):
                mp, sku = match.groups()
                if mp not in MARKETPLACES:
                    return self._json(404, {"detail": f"unknown marketplace {mp!r}"})
                night = self._night()
                return self._json(200, product(mp, sku, night).truth(night))
            for mp, pattern in PRODUCT_PATHS.items():
                if match := pattern.match(path):
                    return self._product(mp, match.group(1))
            return self._send(404, _page("404", "<h1>Страница не найдена</h1>"), "text/html")

        def _product(self, mp: str, sku: str) -> None:
            with state.lock:
                state.hits[mp] += 1
                mode, delay = state.modes[mp], state.delays_ms[mp]
            if delay:
                time.sleep(delay / 1000)
            if mode == "captcha":
                return self._send(200, CAPTCHA_PAGE, "text/html")
            if mode == "403":
                return self._send(403, FORBIDDEN_PAGE, "text/html")
            night = self._night()
            page = product(mp, sku, night)
            self._send(200 if page.found else 404, product_page(page, night), "text/html")

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/_control":
                return self._json(404, {"detail": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"null")
                return self._json(200, state.control(body))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                return self._json(400, {"detail": str(exc)})

    return Handler


def serve(host: str, port: int, night: dt.date | None = None) -> ThreadingHTTPServer:
    """A server bound and ready (``serve_forever`` not yet called)."""
    state = State()
    state.night = night
    server = ThreadingHTTPServer((host, port), make_handler(state))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--night", type=dt.date.fromisoformat, help="fix the night (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    server = serve(args.host, args.port, args.night)
    print(f"fake marketplace on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
