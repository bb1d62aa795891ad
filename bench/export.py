"""Price-history exports: rows/s, time to first byte and peak RSS of the streamed CSV (1,000,000
rows) and XLSX (200,000 rows), next to a bare ``COPY (SELECT …) TO STDOUT`` of the same rows
and columns in the same run.

    .venv/bin/python bench/export.py [--rows 1000000] [--xlsx-rows 200000] [--rounds 3] [--keep]

Needs PostgreSQL (``DATABASE_URL``): it creates a scratch database ``<name>_export_bench``,
migrates it, fills it with ``INSERT … SELECT generate_series`` and drops it at the end
(``--keep`` keeps it for the next run). Each measurement runs in a fresh process, so its peak
RSS is its own, ``--rounds`` times in turns with the bare COPY; the best round of each counts.
The exports run ``watcher.services.export.export_stream`` — the generator the
admin, the API and ``export_prices`` stream — into /dev/null; the HTTP layer is not measured.
Time to first byte is to the first *data* row (the header line goes out before the query).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTIONS = 1000
COMPETITORS_PER = 9  # 10 series per subscription (ours + 9)

COPY_SQL = """
COPY (
  SELECT p.id, p.parsed_at, p.marketplace, p.brand, s.sku, p.competitor_id IS NULL,
         c.competitor_sku, c.name, p.current_price, p.old_price, p.spp_price, p.in_stock,
         p.stock_quantity, p.rating, p.reviews_count
  FROM watcher_pricehistory p
  JOIN watcher_subscription s ON s.id = p.subscription_id
  LEFT JOIN watcher_competitor c ON c.id = p.competitor_id
  WHERE p.id <= {rows}
  ORDER BY p.id
) TO STDOUT WITH (FORMAT csv, HEADER)
"""


def libpq_url(url: str, name: str | None = None) -> str:
    parts = urlsplit(url)
    path = "/" + name if name else parts.path
    return urlunsplit(("postgresql", parts.netloc, path, parts.query, parts.fragment))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- children: one measurement each ------------------------------------------------------------


def child_export(fmt: str, rows: int) -> dict[str, float]:
    import django

    sys.path.insert(0, str(ROOT))  # run as a script: bench/ is on the path, the project is not
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.utils import translation

    from watcher.models import PriceHistory
    from watcher.services import export

    baseline_rss = peak_rss_mb()
    queryset = PriceHistory.objects.filter(id__lte=rows)
    written = 0
    first_row = None
    started = time.perf_counter()
    with translation.override("ru"), open(os.devnull, "wb") as out:
        for index, piece in enumerate(export.export_stream(queryset, fmt)):
            # CSV: piece 0 is the header. XLSX: the file exists only once every row is in it.
            if first_row is None and (index >= 1 or fmt == export.XLSX):
                first_row = time.perf_counter() - started
            out.write(piece)
            written += len(piece)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "first": first_row or seconds,
        "bytes": written,
        "rss": peak_rss_mb(),
        "rss_at_start": baseline_rss,
    }


def child_copy(rows: int) -> dict[str, float]:
    import psycopg

    baseline_rss = peak_rss_mb()
    written = 0
    first = None
    with psycopg.connect(libpq_url(os.environ["DATABASE_URL"])) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(COPY_SQL.format(rows=int(rows))) as copy, open(os.devnull, "wb") as out:
            for index, data in enumerate(copy):
                if first is None and index >= 1:
                    first = time.perf_counter() - started
                out.write(data)
                written += len(data)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "first": first or seconds,
        "bytes": written,
        "rss": peak_rss_mb(),
        "rss_at_start": baseline_rss,
    }


def run_child(env: dict[str, str], *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode:
        raise SystemExit(f"child {args} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- setup -------------------------------------------------------------------------------------


def prepare(admin_url: str, db_name: str, rows: int, env: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db_name}")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=900,
    )
    with psycopg.connect(libpq_url(admin_url, db_name), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO watcher_subscription (id, brand, marketplace, sku, title, priority, "
            "is_active, created_at, updated_at) SELECT n, 'Brand ' || (n %% 20), "
            "(ARRAY['wildberries','ozon','yandex_market'])[1 + n %% 3], (100000 + n)::text, "
            "'Товар ' || n, 0, true, now(), now() FROM generate_series(1, %s) n",
            (SUBSCRIPTIONS,),
        )
        conn.execute(
            "INSERT INTO watcher_competitor (id, subscription_id, competitor_sku, name, priority, "
            "is_active, created_at) SELECT n, 1 + (n - 1) / %s, (900000 + n)::text, "
            "'Конкурент ' || n, 0, true, now() FROM generate_series(1, %s) n",
            (COMPETITORS_PER, SUBSCRIPTIONS * COMPETITORS_PER),
        )
        # Row n: series (n - 1) % 10000 (a subscription's own, or one of its competitors'),
        # night (n - 1) / 10000, so that parsed_at grows with the id as it does in production.
        series = SUBSCRIPTIONS * (COMPETITORS_PER + 1)
        conn.execute(
            "INSERT INTO watcher_pricehistory (id, sku, marketplace, brand, subscription_id, "
            "competitor_id, attempt, current_price, old_price, spp_price, in_stock, "
            "stock_quantity, rating, reviews_count, card_title, card_description, "
            "card_attributes, parser_backend, parsed_at) "
            "SELECT n, (100000 + sub)::text, (ARRAY['wildberries','ozon','yandex_market'])"
            "[1 + sub %% 3], 'Brand ' || (sub %% 20), sub, "
            "CASE WHEN k = 0 THEN NULL ELSE (sub - 1) * %(per)s + k END, 1, "
            "1000 + (n %% 997), 1500.00, 950.50, n %% 7 <> 0, n %% 50, 4.80, n %% 5000, "
            "'bench', '', '{}', 'rules', "
            "timestamptz '2026-01-01 21:00+03' + ((n - 1) / %(series)s) * interval '1 day' "
            "+ ((n - 1) %% %(series)s) * interval '5 ms' "
            "FROM (SELECT n, 1 + ((n - 1) %% %(series)s) / (%(per)s + 1) AS sub, "
            "((n - 1) %% %(series)s) %% (%(per)s + 1) AS k FROM generate_series(1, %(rows)s) n) g",
            {"per": COMPETITORS_PER, "series": series, "rows": rows},
        )
        conn.execute("ANALYZE")
    print(f"prepared {rows:,} price rows in {time.perf_counter() - started:.1f} s")


def line(name: str, rows: int, result: dict[str, float], base: dict[str, float] | None) -> str:
    rate = rows / result["seconds"]
    text = (
        f"{name:<26} {rate:>10,.0f} rows/s  {result['seconds']:6.2f} s  "
        f"first row {result['first']:6.3f} s  peak RSS {result['rss']:6.1f} MB  "
        f"({result['bytes'] / 1e6:,.0f} MB out)"
    )
    if base:
        text += f"  = {rate / (rows / base['seconds']):.0%} of COPY's rate"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept scratch database")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, rows = args.child[0], int(args.child[1])
        result = child_copy(rows) if kind == "copy" else child_export(kind, rows)
        print(json.dumps(result))
        return

    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith(("postgres", "pgsql", "psql")):
        raise SystemExit("bench/export.py needs DATABASE_URL pointing at PostgreSQL")
    db_name = (urlsplit(admin_url).path.strip("/") or "watcher") + "_export_bench"
    url = urlunsplit(urlsplit(admin_url)._replace(path="/" + db_name))
    env = {**os.environ, "DATABASE_URL": url, "DATABASE_POOL_MAX_SIZE": "0"}
    total = max(args.rows, args.xlsx_rows)
    if not args.reuse:
        prepare(admin_url, db_name, total, env)
    try:
        # The machine is shared: each measurement runs --rounds times, in turns with its
        # baseline, and the best round of each is kept (noise only ever slows a round down).
        results: dict[str, list[dict[str, float]]] = {}
        for _round in range(args.rounds):
            for name, kind, rows in (
                ("copy", "copy", args.rows),
                ("csv", "csv", args.rows),
                ("copy_x", "copy", args.xlsx_rows),
                ("xlsx", "xlsx", args.xlsx_rows),
            ):
                results.setdefault(name, []).append(run_child(env, kind, str(rows)))
        copy, csv, copy_x, xlsx = (
            min(results[name], key=lambda r: r["seconds"])
            for name in ("copy", "csv", "copy_x", "xlsx")
        )
        print(f"CSV, {args.rows:,} rows (targets: >= 50 % of COPY, first byte < 0.5 s, < 150 MB)")
        print(line("  bare COPY TO STDOUT", args.rows, copy, None))
        print(line("  streamed CSV (Excel)", args.rows, csv, copy))
        print(f"XLSX, {args.xlsx_rows:,} rows (target: >= 10,000 rows/s)")
        print(line("  bare COPY TO STDOUT", args.xlsx_rows, copy_x, None))
        print(line("  XLSX (constant memory)", args.xlsx_rows, xlsx, copy_x))
        print(f"(a child process at rest, Django loaded: {csv['rss_at_start']:.0f} MB)")
    finally:
        if not args.keep:
            import psycopg

            with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")


if __name__ == "__main__":
    main()
