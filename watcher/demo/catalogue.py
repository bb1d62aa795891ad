"""The demo catalogue as plain data, shared by ``load_demo`` and the fake marketplace.

Plain strings (no Django import) so that the fake marketplace runs on its own.
"""

from __future__ import annotations

# (brand, marketplace, our sku, title, priority, [(competitor sku, name, priority)])
DEMO: list[tuple[str, str, str, str, int, list[tuple[str, str, int]]]] = [
    ("Nordic Home", "wildberries", "176308673", "Плед флисовый 150×200", 10,
     [("145627193", "Плед CozyDream", 5), ("98347261", "Плед Uyut", 3)]),
    ("Nordic Home", "wildberries", "181224507", "Подушка ортопедическая", 5,
     [("167734015", "Подушка SleepPro", 5)]),
    ("Nordic Home", "ozon", "1093847562", "Плед флисовый 150×200", 10,
     [("1187365420", "Плед Teplo", 4), ("934857261", "Плед Home&Co", 2)]),
    ("RunFast", "ozon", "1523647789", "Кроссовки беговые мужские", 8,
     [("1498273651", "Кроссовки Stride", 6)]),
    ("RunFast", "yandex_market", "1782364512", "Кроссовки беговые мужские", 8,
     [("1693847201", "Кроссовки Stride", 6), ("1702938475", "Кроссовки Pace", 1)]),
    ("RunFast", "yandex_market", "1802375612", "Носки спортивные, 5 пар", 1, []),
]  # fmt: skip
